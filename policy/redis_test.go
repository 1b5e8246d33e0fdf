package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
)

func TestNewRedisClient(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	c, err := policy.NewRedisClient(t.Context(), &configs.Redis{URL: srv.URL()})
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// A Redis that does not answer stops the gateway at start, with an
	// error naming the address but never the password.
	srv.Stop()
	cfg := &configs.Redis{
		URL:         "redis://:url-password@" + srv.Addr() + "/0",
		Password:    configs.SecretRef{Resolved: "hunter2-secret"},
		DialTimeout: time.Second,
	}
	_, err = policy.NewRedisClient(t.Context(), cfg)
	require.ErrorIs(t, err, policy.ErrRedisUnavailable)
	assert.Contains(t, err.Error(), srv.Addr())
	assert.NotContains(t, err.Error(), "hunter2")
	assert.NotContains(t, err.Error(), "url-password")

	_, err = policy.NewRedisClient(t.Context(), &configs.Redis{URL: "http://:pw@host"})
	require.ErrorIs(t, err, policy.ErrInvalidConfig)
	assert.NotContains(t, err.Error(), "pw")
}

func TestDrainsSharedThroughRedis(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	newReplica := func() (*policy.Drains, chan struct{}) {
		store, err := policy.NewRedisStore(redisClient(t, srv), "test:", policy.RedisStoreDrains)
		require.NoError(t, err)
		onChange, changed := changes()
		d, err := policy.NewDrains(t.Context(), store, policy.DrainOptions{OnChange: onChange})
		require.NoError(t, err)
		t.Cleanup(func() { _ = d.Close() })
		return d, changed
	}
	a, _ := newReplica()
	b, bChanged := newReplica()

	require.NoError(t, a.Drain(t.Context(), "orders", "alice", "upgrade"))
	waitFor(t, bChanged, func() bool { return b.IsDrained("orders") }, "replica B to see the drain")
	require.NoError(t, b.Undrain(t.Context(), "orders", "bob"))
	tick(t, a)
	assert.False(t, a.IsDrained("orders"))
}
