package policy_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
)

var (
	digestA = "sha256:" + strings.Repeat("a", 64)
	digestB = "sha256:" + strings.Repeat("b", 64)
)

func TestApprovals(t *testing.T) {
	t.Parallel()

	onChange, changed := changes()
	a, err := policy.NewApprovals(t.Context(), &policy.MemoryStore{}, policy.ApprovalOptions{OnChange: onChange})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	assert.False(t, a.Degraded())
	_, ok := a.Approved("payments", "refund")
	assert.False(t, ok)

	tests := []struct {
		name               string
		upstream, tool, dg string
		want               error
	}{
		{"no upstream", "", "refund", digestA, policy.ErrInvalidTarget},
		{"no tool", "payments", "", digestA, policy.ErrInvalidTarget},
		{"slash in upstream", "pay/ments", "refund", digestA, policy.ErrInvalidTarget},
		{"no digest", "payments", "refund", "", policy.ErrInvalidDigest},
		{"short digest", "payments", "refund", "sha256:abc", policy.ErrInvalidDigest},
		{"upper case", "payments", "refund", "sha256:" + strings.Repeat("A", 64), policy.ErrInvalidDigest},
	}
	for _, tt := range tests {
		_, err := a.Approve(t.Context(), tt.upstream, tt.tool, tt.dg, "alice", "")
		require.ErrorIs(t, err, tt.want, tt.name)
	}

	rec, err := a.Approve(t.Context(), "payments", "refund", digestA, "alice", " reviewed ")
	require.NoError(t, err)
	<-changed
	assert.Equal(t, "reviewed", rec.Reason)
	got, ok := a.Approved("payments", "refund")
	require.True(t, ok)
	assert.Equal(t, digestA, got.Digest)
	assert.Equal(t, "alice", got.Actor)

	// A new approval of the same tool replaces the old one.
	_, err = a.Approve(t.Context(), "payments", "refund", digestB, "bob", "")
	require.NoError(t, err)
	got, _ = a.Approved("payments", "refund")
	assert.Equal(t, digestB, got.Digest)
	assert.Len(t, a.List(), 1)

	_, err = a.Revoke(t.Context(), "payments", "refund", "carol")
	require.NoError(t, err)
	_, ok = a.Approved("payments", "refund")
	assert.False(t, ok)
	_, err = a.Revoke(t.Context(), "payments", "refund", "carol")
	require.ErrorIs(t, err, policy.ErrNotFound)
}

// TestApprovalsSharedThroughRedis: an approval made on one replica reaches
// the other through the store's pub/sub channel, as kill switches do.
func TestApprovalsSharedThroughRedis(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	newReplica := func() (*policy.Approvals, chan struct{}) {
		store, err := policy.NewRedisStore(redisClient(t, srv), "test:", policy.RedisStoreApprovals)
		require.NoError(t, err)
		onChange, changed := changes()
		a, err := policy.NewApprovals(t.Context(), store, policy.ApprovalOptions{OnChange: onChange})
		require.NoError(t, err)
		t.Cleanup(func() { _ = a.Close() })
		return a, changed
	}
	a, _ := newReplica()
	b, bChanged := newReplica()

	_, err := a.Approve(t.Context(), "payments", "refund", digestA, "alice", "benign wording change")
	require.NoError(t, err)
	waitFor(t, bChanged, func() bool {
		got, ok := b.Approved("payments", "refund")
		return ok && got.Digest == digestA
	}, "replica B to see the approval")
	_, err = b.Revoke(t.Context(), "payments", "refund", "bob")
	require.NoError(t, err)
	tick(t, a)
	_, ok := a.Approved("payments", "refund")
	assert.False(t, ok)
}
