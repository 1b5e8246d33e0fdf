package gateway

import (
	"bytes"
	"encoding/base64"
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

	sealed, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(s.id, sessionIDPrefix))
	require.NoError(t, err)
	require.NotZero(t, len(sealed)%3, "the id's last character carries padding bits")
	forgeries := []struct{ name, id string }{
		{"empty", ""},
		{"prefix only", sessionIDPrefix},
		{"short", sessionIDPrefix + "AAAA"},
		{"old prefix", "s1." + strings.TrimPrefix(s.id, sessionIDPrefix)},
		{"nonce bit flipped", reseal(sealed, 0)},
		{"ciphertext bit flipped", reseal(sealed, len(sealed)/2)},
		{"tag bit flipped", reseal(sealed, len(sealed)-1)},
		{"last byte cut", sessionIDPrefix + base64.RawURLEncoding.EncodeToString(sealed[:len(sealed)-1])},
		{"one character more", s.id + "A"},
		{"padding bit set", nonCanonical(s.id)},
	}
	for _, f := range forgeries {
		// A forgery equal to the genuine id would be resumed and fail the
		// test by chance (it once did: "AA" over an id ending in "AA").
		require.NotEqual(t, s.id, f.id, f.name)
		_, ok := c.get(f.id, "alice")
		assert.False(t, ok, "forged id (%s) %q", f.name, f.id)
	}

	b.end(got)
	_, ok = c.get(s.id, "alice")
	assert.False(t, ok, "an ended session is not resumed")
	_, ok = c.get(nonCanonical(s.id), "alice")
	assert.False(t, ok, "an ended session is not resumed under another spelling of its id")

	s2, err := a.create("2025-11-25", "", nil)
	require.NoError(t, err)
	now = now.Add(25 * time.Hour)
	_, ok = c.get(s2.id, "")
	assert.False(t, ok, "older than session_max_age")
}

// reseal returns a session id over sealed with bit 0 of byte i flipped:
// always a different id, since base64 encodes distinct bytes distinctly.
func reseal(sealed []byte, i int) string {
	b := bytes.Clone(sealed)
	b[i] ^= 0x01
	return sessionIDPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// nonCanonical sets a padding bit in id's last base64 character: the same
// bytes to a lenient decoder, but another string to the session map and
// the tombstones. id's length must not be a multiple of 4.
func nonCanonical(id string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	v := strings.IndexByte(alphabet, id[len(id)-1])
	return id[:len(id)-1] + alphabet[v^1:v^1+1]
}

// TestSessionKeepsViewsOnAnotherReplica: whether the client renders MCP
// Apps views travels in the sealed id apart from its capabilities, so a
// session whose capabilities did not fit keeps it on another replica.
func TestSessionKeepsViewsOnAnotherReplica(t *testing.T) {
	key := make([]byte, 32)
	clock := func() time.Time { return time.Unix(1_800_000_000, 0) }
	a, err := newSessions(key, time.Hour, 24*time.Hour, nil, clock)
	require.NoError(t, err)
	b, err := newSessions(key, time.Hour, 24*time.Hour, nil, clock)
	require.NoError(t, err)
	ui := `"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}}`
	pad := `"experimental":{"pad":"` + strings.Repeat("x", maxSealedCaps) + `"}`
	tests := []struct {
		name, caps string
		views      bool
		travel     bool // the capabilities fit in the id
	}{
		{"views, small", "{" + ui + "}", true, true},
		{"views, too large", "{" + pad + "," + ui + "}", true, false},
		{"no views, small", `{"sampling":{}}`, false, true},
		{"no views, too large", "{" + pad + "}", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := a.create("2025-11-25", "alice", json.RawMessage(tt.caps))
			require.NoError(t, err)
			require.Equal(t, tt.views, s.views)
			got, ok := b.get(s.id, "alice")
			require.True(t, ok)
			assert.Equal(t, "2025-11-25", got.protocolVersion)
			assert.Equal(t, tt.views, got.views)
			assert.Equal(t, tt.travel, len(got.clientCaps) > 0)
		})
	}
}
