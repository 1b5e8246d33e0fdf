package gateway

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionResume: a replica sharing the key resumes another's session
// for its owner only, while it is young enough and has not ended; nothing
// else gets past the seal.
func TestSessionResume(t *testing.T) {
	key := make([]byte, 32)
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	graves := &localGraves{}
	a, err := newSessions(key, time.Hour, 24*time.Hour, graves, clock)
	require.NoError(t, err)
	b, err := newSessions(key, time.Hour, 24*time.Hour, graves, clock)
	require.NoError(t, err)

	s, err := a.create("2025-06-18", "alice", json.RawMessage(`{"elicitation":{}}`))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(s.id, sessionIDPrefix))

	got, ok := b.get(s.id, "alice")
	require.True(t, ok, "the owner resumes the session on another replica")
	assert.Equal(t, "2025-06-18", got.protocolVersion)
	assert.JSONEq(t, `{"elicitation":{}}`, string(got.clientCaps), "capabilities travel with the id")
	assert.Equal(t, int64(1), b.count())

	_, ok = b.get(s.id, "mallory")
	assert.False(t, ok, "another principal")
	c, err := newSessions(key, time.Hour, 24*time.Hour, graves, clock) // graves shared, as through Redis
	require.NoError(t, err)
	_, ok = c.get(s.id, "mallory")
	assert.False(t, ok, "another principal, on a replica that does not hold it")

	other := make([]byte, 32)
	other[0] = 1
	d, err := newSessions(other, time.Hour, 24*time.Hour, nil, clock)
	require.NoError(t, err)
	_, ok = d.get(s.id, "alice")
	assert.False(t, ok, "a replica with another key")

	for _, forged := range []string{"", "s2.", "s2.AAAA", "s1." + s.id[3:], s.id[:len(s.id)-2] + "AA", s.id + "A"} {
		_, ok := c.get(forged, "alice")
		assert.False(t, ok, "forged id %q", forged)
	}

	b.end(got)
	_, ok = c.get(s.id, "alice")
	assert.False(t, ok, "an ended session is not resumed")

	s2, err := a.create("2025-11-25", "", nil)
	require.NoError(t, err)
	now = now.Add(25 * time.Hour)
	_, ok = c.get(s2.id, "")
	assert.False(t, ok, "older than session_max_age")
}
