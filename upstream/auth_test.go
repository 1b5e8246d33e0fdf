package upstream_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// authSeen records the credential headers of every request an upstream
// received, by JSON-RPC method ("GET"/"DELETE" for requests without a body).
type authSeen struct {
	mu   sync.Mutex
	reqs []authReq
}

type authReq struct {
	method, authorization, assertion, session string
}

func (a *authSeen) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			var env struct {
				Method string `json:"method"`
			}
			_ = json.Unmarshal(body, &env)
			method = env.Method
		}
		a.mu.Lock()
		a.reqs = append(a.reqs, authReq{method, r.Header.Get("Authorization"), r.Header.Get("X-Mcpgw-Identity"), r.Header.Get("Mcp-Session-Id")})
		a.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

func (a *authSeen) all() []authReq {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]authReq(nil), a.reqs...)
}

// TestOutboundCredentials: every transport with headers sends the
// configured credential on every request, the gateway's own traffic
// included, and the identity assertion on calls made for a caller only.
func TestOutboundCredentials(t *testing.T) {
	t.Parallel()

	asserter, err := upstream.NewAsserter(nil)
	require.NoError(t, err)
	static := configs.UpstreamAuth{Type: configs.UpstreamAuthStatic, Value: configs.SecretRef{Value: "Bearer upstream-key"}}
	assertion := configs.IdentityAssertion{Enabled: true}
	alice := &upstream.Identity{Subject: "alice", ClientID: "host", Scopes: []string{"a"}, Token: "the-callers-own-token"}

	tests := []struct {
		name    string
		handler func() http.Handler
		cfg     func(url string) configs.Upstream
		path    string
	}{
		{
			"http 2025", func() http.Handler { return mcpgoLegacy(mcpgoServer(newFixture())) },
			func(url string) configs.Upstream { return httpConfig("up", url) }, "/mcp",
		},
		{
			"http 2026-07-28", func() http.Handler { return mcpgoModern(mcpgoServer(newFixture())) },
			func(url string) configs.Upstream { return statelessConfig("up", url) }, "/mcp",
		},
		{
			"legacy sse", func() http.Handler { return mcpserver.NewSSEServer(mcpgoServer(newFixture())) },
			func(url string) configs.Upstream {
				return configs.Upstream{Name: "up", SSE: &configs.SSETransport{URL: url}}
			}, "/sse",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seen := &authSeen{}
			ts := serve(t, seen.wrap(tt.handler()))
			cfg := tt.cfg(ts.url(tt.path))
			cfg.Auth, cfg.IdentityAssertion = static, assertion
			c, _ := startClient(t, cfg, func(_ *configs.Upstream, o *upstream.Options) {
				o.Asserter, o.AssertionIssuer = asserter, "https://gw.example.com/mcp"
			})
			req := call("echo", `{"text":"x"}`)
			req.Identity = alice
			_, err := c.Call(t.Context(), req)
			require.NoError(t, err)

			reqs := seen.all()
			require.NotEmpty(t, reqs)
			calls := 0
			for _, r := range reqs {
				assert.Equal(t, "Bearer upstream-key", r.authorization, "%s request", r.method)
				assert.NotContains(t, r.authorization+r.assertion, alice.Token.Reveal())
				switch {
				case r.method == "tools/call":
					calls++
					assert.NotEmpty(t, r.assertion, "a call for a caller carries the assertion")
				case r.assertion != "":
					// A session-era call goes on a session opened for its
					// caller (pool.go): its handshake asserts the caller.
					assert.Contains(t, []string{"initialize", "notifications/initialized"}, r.method, "only a pooled session's handshake asserts the caller")
					assert.Equal(t, "http 2025", tt.name)
				default:
					assert.Empty(t, r.assertion, "the gateway's own %s request asserts no one", r.method)
				}
			}
			assert.Equal(t, 1, calls)
		})
	}
}

// TestOutboundCredentialFailure: a credential that cannot be obtained
// fails the call with ErrCredentials and sends nothing.
func TestOutboundCredentialFailure(t *testing.T) {
	t.Parallel()

	iss := authntest.NewIssuer(t, authntest.WithClient(authntest.Client{ID: "gw", Secret: "s"}))
	seen := &authSeen{}
	ts := serve(t, seen.wrap(mcpgoModern(mcpgoServer(newFixture()))))
	cfg := httpConfig("up", ts.url("/mcp"))
	cfg.Auth = configs.UpstreamAuth{
		Type: configs.UpstreamAuthTokenExchange, TokenURL: iss.TokenURL(),
		ClientID: "gw", ClientSecret: configs.SecretRef{Value: "s"},
	}
	c, _ := startClient(t, cfg)
	before := len(seen.all())

	// No caller token: a forwarded call never falls back to the gateway's
	// own credential.
	_, err := c.Call(t.Context(), call("echo", `{"text":"x"}`))
	require.ErrorIs(t, err, upstream.ErrCredentials)
	require.ErrorIs(t, err, upstream.ErrNoIdentity)

	// An exchange the token endpoint refuses.
	req := call("echo", `{"text":"x"}`)
	req.Identity = &upstream.Identity{Subject: "mallory", Token: "not-a-token-of-this-issuer"}
	_, err = c.Call(t.Context(), req)
	require.ErrorIs(t, err, upstream.ErrCredentials)
	assert.Contains(t, err.Error(), "invalid_grant")

	for _, r := range seen.all()[before:] {
		assert.NotEqual(t, "tools/call", r.method, "a call without its credential is never sent")
	}
	for _, r := range seen.all() {
		assert.True(t, strings.HasPrefix(r.authorization, "Bearer "), "own traffic uses client credentials: %q", r.method)
	}
}

// TestAutoEraFollowsTheCredential: under protocol_version auto, an mcp-go
// server that offers both eras and keeps sessions is called in 2025-era
// sessions, whatever the credential, because they cost it least; each
// principal's calls go on sessions of its own (pool.go), opened with the
// principal's credential. Two callers' calls carry the gateway's one
// token with client credentials, each its own exchanged token with token
// exchange, and the handshake of each caller's session carries the same
// token as the caller's calls on it.
func TestAutoEraFollowsTheCredential(t *testing.T) {
	t.Parallel()
	iss := authntest.NewIssuer(t, authntest.WithClient(authntest.Client{ID: "gw", Secret: "s"}))
	tests := []struct {
		name      string
		auth      configs.UpstreamAuth
		perCaller bool
	}{
		{"client credentials: pooled sessions, one token", configs.UpstreamAuth{
			Type: configs.UpstreamAuthClientCredentials, TokenURL: iss.TokenURL(),
			ClientID: "gw", ClientSecret: configs.SecretRef{Value: "s"},
		}, false},
		{"token exchange: pooled sessions, each caller's token", configs.UpstreamAuth{
			Type: configs.UpstreamAuthTokenExchange, TokenURL: iss.TokenURL(),
			ClientID: "gw", ClientSecret: configs.SecretRef{Value: "s"},
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seen := &authSeen{}
			ts := serve(t, seen.wrap(mcpgoModern(mcpgoServer(newFixture()))))
			cfg := httpConfig("up", ts.url("/mcp"))
			cfg.ProtocolVersion = configs.ProtocolAuto
			cfg.Auth = tt.auth
			c, _ := startClient(t, cfg)
			cat, ok := c.Catalog()
			require.True(t, ok)
			assert.False(t, cat.Stateless, "the upstream keeps sessions: the 2025 era")
			assert.Equal(t, "2025-11-25", cat.ProtocolVersion)

			subjects := []string{"alice", "bob"}
			for _, sub := range subjects {
				req := call("echo", `{"text":"x"}`)
				req.Identity = &upstream.Identity{Subject: sub, Token: configs.Secret(iss.Mint(map[string]any{"sub": sub}))}
				_, err := c.Call(t.Context(), req)
				require.NoError(t, err)
			}
			var calls []authReq
			tokenOf := map[string]string{} // session id → the token of its handshake
			for _, r := range seen.all() {
				switch r.method {
				case "tools/call":
					calls = append(calls, r)
				case "notifications/initialized":
					tokenOf[r.session] = r.authorization
				}
			}
			require.Len(t, calls, 2)
			assert.NotEqual(t, calls[0].session, calls[1].session, "each principal's own upstream session")
			for _, r := range calls {
				assert.NotEmpty(t, r.session)
				assert.Equal(t, tokenOf[r.session], r.authorization, "the session was opened with its caller's credential")
			}
			if tt.perCaller {
				assert.NotEqual(t, calls[0].authorization, calls[1].authorization, "each caller's own exchanged token")
			} else {
				assert.Equal(t, calls[0].authorization, calls[1].authorization, "the gateway's one token")
			}
		})
	}
}
