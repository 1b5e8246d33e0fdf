package authn_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

func TestAuthenticateValid(t *testing.T) {
	t.Parallel()

	f := setup(t, func(c *configs.Auth) {
		c.Issuers[0].ScopeClaims = []string{"scope", "scp"}
	})
	tests := []struct {
		name   string
		claims map[string]any
		opts   []authntest.MintOption
		want   authn.Principal
	}{
		{
			name: "RS256 with scope string, client_id and roles",
			claims: map[string]any{
				"sub": "alice", "client_id": "claude", "azp": "ignored", "scope": "mcp:tools orders:read mcp:tools",
				"realm_access": map[string]any{"roles": []string{"admin", "ops"}},
			},
			want: authn.Principal{Subject: "alice", ClientID: "claude", Scopes: []string{"mcp:tools", "orders:read"}, Roles: []string{"admin", "ops"}},
		},
		{
			name:   "ES256 with scp array and azp",
			claims: map[string]any{"sub": "bob", "azp": "cursor", "scp": []string{"mcp:tools", "orders:write"}},
			opts:   []authntest.MintOption{authntest.WithAlg("ES256")},
			want:   authn.Principal{Subject: "bob", ClientID: "cursor", Scopes: []string{"mcp:tools", "orders:write"}},
		},
		{
			name:   "scope and scp merged, aud array containing the resource (Dex)",
			claims: map[string]any{"sub": "carol", "aud": []string{"dex-client", testResource}, "scope": "a", "scp": "b a"},
			want:   authn.Principal{Subject: "carol", Scopes: []string{"a", "b"}},
		},
		{
			name:   "a single role as a string",
			claims: map[string]any{"sub": "dave", "realm_access": map[string]any{"roles": "viewer"}},
			want:   authn.Principal{Subject: "dave", Roles: []string{"viewer"}},
		},
		{
			name:   "within the skew after exp",
			claims: map[string]any{"sub": "erin", "exp": f.clock.Now().Add(-30 * time.Second).Unix()},
			want:   authn.Principal{Subject: "erin"},
		},
		{
			name:   "nbf and iat within the skew ahead",
			claims: map[string]any{"sub": "frank", "nbf": f.clock.Now().Add(59 * time.Second).Unix(), "iat": f.clock.Now().Add(59 * time.Second).Unix()},
			want:   authn.Principal{Subject: "frank"},
		},
		{
			name:   "fractional times",
			claims: map[string]any{"sub": "gina", "exp": float64(f.clock.Now().Add(time.Minute).Unix()) + 0.5, "iat": float64(f.clock.Now().Unix()) - 0.25},
			want:   authn.Principal{Subject: "gina"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := f.iss.Mint(tt.claims, tt.opts...)
			p, err := f.auth.Authenticate(t.Context(), bearer(tok))
			require.NoError(t, err)
			assert.Equal(t, tt.want.Subject, p.Subject)
			assert.Equal(t, f.iss.URL(), p.Issuer)
			assert.Equal(t, tt.want.ClientID, p.ClientID)
			assert.Equal(t, tt.want.Scopes, p.Scopes)
			assert.Equal(t, tt.want.Roles, p.Roles)
			assert.Equal(t, tok, p.Token.Reveal())
			assert.Len(t, p.TokenHash, 64)
			assert.False(t, p.Expiry.IsZero())
		})
	}
}

func TestAuthenticateRejects(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	// forger signs with keys the gateway does not trust, claiming to be
	// the trusted issuer.
	forger := authntest.NewIssuer(t, authntest.WithClock(f.clock.Now), authntest.WithAudience(testResource))
	untrusted, untrustedHits := countingServer(t)
	now := f.clock.Now()
	mint := func(claims map[string]any, opts ...authntest.MintOption) string {
		if _, ok := claims["sub"]; !ok {
			claims["sub"] = "alice"
		}
		return f.iss.Mint(claims, opts...)
	}
	// The forger's keys are its own (a key id is a thumbprint), and "nope"
	// names none of the issuer's keys.
	require.NotEqual(t, f.iss.KeyID("RS256"), forger.KeyID("RS256"))
	requireUnknownKID(t, f.iss, "nope")
	// Warm the key set so unknown-kid cases below hit the rate limit, not
	// the first fetch.
	_, err := f.auth.Authenticate(t.Context(), bearer(mint(map[string]any{})))
	require.NoError(t, err)

	tests := []struct {
		name string
		req  func() *http.Request
		want error // the specific sentinel
		root error // the class, which decides the answer
	}{
		{"no token", func() *http.Request { return request("") }, authn.ErrNoToken, authn.ErrNoToken},
		{"wrong scheme (Basic)", func() *http.Request { return request("Basic YWxpY2U6c2VjcmV0") }, authn.ErrUnsupportedScheme, authn.ErrNoToken},
		{"token in query string", func() *http.Request {
			r := bearer(mint(map[string]any{}))
			r.URL.RawQuery = "access_token=" + mint(map[string]any{})
			return r
		}, authn.ErrTokenInQuery, authn.ErrInvalidRequest},
		{"two Authorization headers", func() *http.Request {
			r := bearer(mint(map[string]any{}))
			r.Header.Add("Authorization", "Bearer x")
			return r
		}, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"two spaces", func() *http.Request { return request("Bearer  " + mint(map[string]any{})) }, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"not token68", func() *http.Request { return request("Bearer a,b") }, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"scheme only", func() *http.Request { return request("Bearer") }, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"expired", func() *http.Request {
			return bearer(mint(map[string]any{"exp": now.Add(-61 * time.Second).Unix()}))
		}, authn.ErrExpired, authn.ErrInvalidToken},
		{"no exp", func() *http.Request { return bearer(mint(map[string]any{"exp": nil})) }, authn.ErrMissingClaim, authn.ErrInvalidToken},
		{"exp not a number", func() *http.Request { return bearer(mint(map[string]any{"exp": "tomorrow"})) }, authn.ErrMalformedToken, authn.ErrInvalidToken},
		{"not yet valid (nbf)", func() *http.Request {
			return bearer(mint(map[string]any{"nbf": now.Add(61 * time.Second).Unix()}))
		}, authn.ErrNotYetValid, authn.ErrInvalidToken},
		{"issued in the future beyond the skew", func() *http.Request {
			return bearer(mint(map[string]any{"iat": now.Add(61 * time.Second).Unix()}))
		}, authn.ErrIssuedInFuture, authn.ErrInvalidToken},
		{"untrusted issuer", func() *http.Request {
			return bearer(mint(map[string]any{"iss": untrusted.URL}))
		}, authn.ErrUntrustedIssuer, authn.ErrInvalidToken},
		{"issuer differing by a trailing slash", func() *http.Request {
			return bearer(mint(map[string]any{"iss": f.iss.URL() + "/"}))
		}, authn.ErrUntrustedIssuer, authn.ErrInvalidToken},
		{"wrong audience", func() *http.Request {
			return bearer(mint(map[string]any{"aud": "https://other.example.com/mcp"}))
		}, authn.ErrAudience, authn.ErrInvalidToken},
		{"audience array without the resource", func() *http.Request {
			return bearer(mint(map[string]any{"aud": []string{"a", "b"}}))
		}, authn.ErrAudience, authn.ErrInvalidToken},
		{"missing audience", func() *http.Request { return bearer(mint(map[string]any{"aud": nil})) }, authn.ErrAudience, authn.ErrInvalidToken},
		{"audience prefix is not the resource", func() *http.Request {
			return bearer(mint(map[string]any{"aud": testResource + "/extra"}))
		}, authn.ErrAudience, authn.ErrInvalidToken},
		{"no sub", func() *http.Request { return bearer(f.iss.Mint(map[string]any{})) }, authn.ErrMissingClaim, authn.ErrInvalidToken},
		{"alg none", func() *http.Request { return bearer(mint(map[string]any{}, authntest.WithAlg("none"))) }, authn.ErrAlgorithm, authn.ErrInvalidToken},
		{"HS256 keyed with the issuer's public key", func() *http.Request {
			return bearer(mint(map[string]any{}, authntest.WithAlg("HS256")))
		}, authn.ErrAlgorithm, authn.ErrInvalidToken},
		{"unknown kid", func() *http.Request { return bearer(mint(map[string]any{}, authntest.WithKID("nope"))) }, authn.ErrSignature, authn.ErrInvalidToken},
		{"tampered signature", func() *http.Request {
			return bearer(mint(map[string]any{}, authntest.WithTamperedSignature()))
		}, authn.ErrSignature, authn.ErrInvalidToken},
		{"tampered payload", func() *http.Request {
			return bearer(mint(map[string]any{}, authntest.WithTamperedPayload()))
		}, authn.ErrSignature, authn.ErrInvalidToken},
		{"signed by someone else's key with the same kid", func() *http.Request {
			return bearer(forger.Mint(map[string]any{"iss": f.iss.URL(), "sub": "alice"}, authntest.WithKID(f.iss.KeyID("RS256"))))
		}, authn.ErrSignature, authn.ErrInvalidToken},
		{"oversized", func() *http.Request {
			return bearer(mint(map[string]any{"pad": strings.Repeat("x", 9000)}))
		}, authn.ErrTokenTooLarge, authn.ErrInvalidToken},
		{"garbage base64", func() *http.Request { return bearer("eyJ!!!.eyJ***.sig") }, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"base64 that is not JSON", func() *http.Request { return bearer("aGVsbG8.d29ybGQ.c2ln") }, authn.ErrMalformedToken, authn.ErrInvalidToken},
		{"padded base64url", func() *http.Request {
			parts := strings.Split(mint(map[string]any{}), ".")
			return bearer(parts[0] + "=." + parts[1] + "." + parts[2])
		}, authn.ErrMalformedHeader, authn.ErrInvalidRequest},
		{"two parts", func() *http.Request { return bearer("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0") }, authn.ErrMalformedToken, authn.ErrInvalidToken},
		{"four parts", func() *http.Request { return bearer(mint(map[string]any{}) + ".x") }, authn.ErrMalformedToken, authn.ErrInvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := f.auth.Authenticate(t.Context(), tt.req())
			require.Error(t, err)
			assert.Nil(t, p)
			require.ErrorIs(t, err, tt.want)
			assert.ErrorIs(t, err, tt.root)
		})
	}
	assert.Zero(t, untrustedHits.Load(), "an untrusted issuer is never contacted")
}

func TestUntrustedIssuerIsNeverContacted(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	untrusted, hits := countingServer(t)
	other := authntest.NewIssuer(t, authntest.WithAudience(testResource))
	for _, iss := range []string{untrusted.URL, other.URL()} {
		tok := f.iss.Mint(map[string]any{"sub": "alice", "iss": iss})
		_, err := f.auth.Authenticate(t.Context(), bearer(tok))
		require.ErrorIs(t, err, authn.ErrUntrustedIssuer)
	}
	assert.Zero(t, hits.Load())
	assert.Zero(t, other.Counts().Requests)
	assert.Zero(t, f.iss.Counts().Requests, "not even the trusted issuer is asked about a foreign token")
}

func TestCache(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	tok := f.iss.Mint(map[string]any{"sub": "alice", "exp": f.clock.Now().Add(10 * time.Minute).Unix()})
	p1, err := f.auth.Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	p2, err := f.auth.Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	assert.Same(t, p1, p2, "a cached token is not verified again")

	// An entry never outlives its token: at exp the token is verified
	// again (accepted within the skew, not cached), and refused after.
	f.clock.Advance(10 * time.Minute)
	p3, err := f.auth.Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	assert.NotSame(t, p1, p3)
	p4, err := f.auth.Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	assert.NotSame(t, p3, p4, "a token past its exp is not cached")
	f.clock.Advance(time.Minute)
	_, err = f.auth.Authenticate(t.Context(), bearer(tok))
	require.ErrorIs(t, err, authn.ErrExpired)
}

func TestCacheIsBounded(t *testing.T) {
	t.Parallel()

	f := setup(t, func(c *configs.Auth) { c.CacheSize = 2 })
	toks := []string{
		f.iss.Mint(map[string]any{"sub": "a"}),
		f.iss.Mint(map[string]any{"sub": "b"}),
		f.iss.Mint(map[string]any{"sub": "c"}),
	}
	var first []*authn.Principal
	for _, tok := range toks {
		p, err := f.auth.Authenticate(t.Context(), bearer(tok))
		require.NoError(t, err)
		first = append(first, p)
	}
	p, err := f.auth.Authenticate(t.Context(), bearer(toks[0]))
	require.NoError(t, err)
	assert.NotSame(t, first[0], p, "the oldest entry was evicted")
	p, err = f.auth.Authenticate(t.Context(), bearer(toks[2]))
	require.NoError(t, err)
	assert.Same(t, first[2], p)
}

func TestDiscovery(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		discovery string
		opts      []authntest.Option
		wantErr   error
	}{
		{name: "oidc", discovery: "oidc"},
		{name: "auto falls back to RFC 8414", discovery: "auto", opts: []authntest.Option{authntest.WithOAuthMetadataOnly()}},
		{name: "oauth only", discovery: "oauth"},
		{name: "RFC 8414 path insertion", discovery: "oauth", opts: []authntest.Option{authntest.WithPath("/realms/mcp")}},
		{name: "OIDC path appending", discovery: "oidc", opts: []authntest.Option{authntest.WithPath("/realms/mcp")}},
		{name: "oidc without an OIDC document", discovery: "oidc", opts: []authntest.Option{authntest.WithOAuthMetadataOnly()}, wantErr: authn.ErrIssuerUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, func(c *configs.Auth) { c.Issuers[0].Discovery = tt.discovery }, tt.opts...)
			_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"})))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

// flakyTransport fails every request while down is set.
type flakyTransport struct {
	down  atomic.Bool
	tries atomic.Int64
}

func (ft *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ft.tries.Add(1)
	if ft.down.Load() {
		return nil, errors.New("connection refused")
	}
	return http.DefaultTransport.RoundTrip(r)
}

func TestIssuerDownAtStartIsRetried(t *testing.T) {
	t.Parallel()

	c := newClock()
	iss := authntest.NewIssuer(t, authntest.WithClock(c.Now), authntest.WithAudience(testResource))
	ft := &flakyTransport{}
	ft.down.Store(true)
	a, err := authn.New(&configs.Auth{
		Resource: testResource,
		Issuers:  []configs.AuthIssuer{{Issuer: iss.URL()}},
	}, authn.Options{Now: c.Now, HTTPClient: &http.Client{Transport: ft}})
	require.NoError(t, err, "New makes no request, so a down issuer cannot fail it")
	assert.Zero(t, ft.tries.Load())

	tok := iss.Mint(map[string]any{"sub": "alice"})
	_, err = a.Authenticate(t.Context(), bearer(tok))
	require.ErrorIs(t, err, authn.ErrIssuerUnavailable)
	tries := ft.tries.Load()
	require.Positive(t, tries)

	rec := newRecorder()
	a.Middleware(okHandler()).ServeHTTP(rec, bearer(tok))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotEmpty(t, rec.Header().Get("Retry-After"))
	assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
	assert.Equal(t, tries, ft.tries.Load(), "no new attempt within the backoff")

	ft.down.Store(false)
	_, err = a.Authenticate(t.Context(), bearer(tok))
	require.ErrorIs(t, err, authn.ErrIssuerUnavailable, "still backing off")
	c.Advance(time.Second)
	p, err := a.Authenticate(t.Context(), bearer(tok))
	require.NoError(t, err)
	assert.Equal(t, "alice", p.Subject)
}

func TestWarm(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	require.NoError(t, f.auth.Warm(t.Context()))
	assert.EqualValues(t, 1, f.iss.Counts().Discovery)
	_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"})))
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.iss.Counts().Discovery, "discovered once")

	down := authntest.NewIssuer(t)
	down.Close()
	a, err := authn.New(&configs.Auth{Resource: testResource, Issuers: []configs.AuthIssuer{{Issuer: down.URL()}}}, authn.Options{})
	require.NoError(t, err)
	assert.ErrorIs(t, a.Warm(t.Context()), authn.ErrIssuerUnavailable)
}

func TestConcurrentAuthenticate(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	toks := make([]string, 8)
	for i := range toks {
		toks[i] = f.iss.Mint(map[string]any{"sub": fmt.Sprint("user", i)}, authntest.WithAlg([]string{"RS256", "ES256"}[i%2]))
	}
	bad := f.iss.Mint(map[string]any{"sub": "x"}, authntest.WithTamperedSignature())
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 50 {
				tok := toks[(g+i)%len(toks)]
				p, err := f.auth.Authenticate(t.Context(), bearer(tok))
				if !assert.NoError(t, err) { //nolint:testifylint // runs in a spawned goroutine, where require (FailNow) must not be called
					return
				}
				assert.Equal(t, fmt.Sprint("user", (g+i)%len(toks)), p.Subject)
				_, err = f.auth.Authenticate(t.Context(), bearer(bad))
				assert.ErrorIs(t, err, authn.ErrSignature)
			}
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, f.iss.Counts().Discovery)
}

func TestNewValidates(t *testing.T) {
	t.Parallel()

	_, err := authn.New(nil, authn.Options{})
	require.Error(t, err)
	_, err = authn.New(&configs.Auth{Resource: "https://mcp.example.com/mcp"}, authn.Options{})
	require.ErrorContains(t, err, "auth.issuers: at least one issuer is required")
	_, err = authn.New(&configs.Auth{
		Resource: "https://mcp.example.com/mcp",
		Issuers:  []configs.AuthIssuer{{Issuer: "https://login.example.com", Algorithms: []string{"HS256"}}},
	}, authn.Options{})
	require.ErrorContains(t, err, "symmetric")

	cfg := &configs.Auth{Resource: "https://mcp.example.com/mcp", Issuers: []configs.AuthIssuer{{Issuer: "https://login.example.com"}}}
	_, err = authn.New(cfg, authn.Options{})
	require.NoError(t, err)
	assert.Zero(t, cfg.CacheSize, "New does not modify the caller's configuration")
	assert.Empty(t, cfg.Issuers[0].Audience)
}

func TestPrincipal(t *testing.T) {
	t.Parallel()

	p := &authn.Principal{Subject: "alice", Scopes: []string{"a", "b"}, Token: "secret-token-value"}
	assert.True(t, p.HasScopes())
	assert.True(t, p.HasScopes("a", "b"))
	assert.False(t, p.HasScopes("a", "c"))

	assert.Nil(t, authn.InsufficientScope(p, []string{"b", "a"}))
	assert.Equal(t, []string{"c", "d"}, authn.InsufficientScope(p, []string{"a", "c", "d", "c"}))
	assert.Equal(t, []string{"a"}, authn.InsufficientScope(nil, []string{"a"}))

	ctx := authn.WithPrincipal(t.Context(), p)
	got, ok := authn.PrincipalFrom(ctx)
	require.True(t, ok)
	assert.Same(t, p, got)
	_, ok = authn.PrincipalFrom(t.Context())
	assert.False(t, ok)
	_, ok = authn.PrincipalFrom(authn.WithPrincipal(t.Context(), nil))
	assert.False(t, ok)

	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, p), "secret-token-value", format)
		assert.NotContains(t, fmt.Sprintf(format, *p), "secret-token-value", format)
	}
	assert.NotContains(t, p.LogValue().String(), "secret-token-value")
}

// requireUnknownKID fails the test when kid names one of iss's keys: a
// refusal of such a token would then not be about the key id.
func requireUnknownKID(t *testing.T, iss *authntest.Issuer, kid string) {
	t.Helper()
	keys := iss.Keys()
	for i := range keys {
		require.NotEqual(t, keys[i].KeyID, kid)
	}
}
