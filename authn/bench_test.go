package authn_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
)

// BenchmarkAuthenticateCached measures the hot path: a token verified
// before, found in the cache by its SHA-256.
func BenchmarkAuthenticateCached(b *testing.B) {
	f := setup(b, nil)
	r := bearer(f.iss.Mint(map[string]any{"sub": "alice", "scope": "mcp:tools orders:read", "client_id": "claude"}))
	_, err := f.auth.Authenticate(b.Context(), r)
	require.NoError(b, err)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.auth.Authenticate(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateUncached measures a full verification (RS256),
// for comparison.
func BenchmarkAuthenticateUncached(b *testing.B) {
	f := setup(b, func(c *configs.Auth) { c.CacheSize = 1 })
	toks := []*http.Request{
		bearer(f.iss.Mint(map[string]any{"sub": "alice"})),
		bearer(f.iss.Mint(map[string]any{"sub": "bob"})),
	}
	ctx := b.Context()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := f.auth.Authenticate(ctx, toks[i%2]); err != nil {
			b.Fatal(err)
		}
	}
}
