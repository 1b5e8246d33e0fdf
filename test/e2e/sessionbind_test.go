package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// userOfToken is a go-sdk TokenVerifier naming the token's subject as the
// user: go-sdk then binds each session to the user whose token opened it,
// and refuses any other user's request on it with 403 "session user
// mismatch". The recorder in front has checked the signature already.
func userOfToken(_ context.Context, token string, _ *http.Request) (*sdkauth.TokenInfo, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, sdkauth.ErrInvalidToken
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, sdkauth.ErrInvalidToken
	}
	var claims struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Sub == "" {
		return nil, sdkauth.ErrInvalidToken
	}
	return &sdkauth.TokenInfo{UserID: claims.Sub, Expiration: time.Unix(claims.Exp, 0)}, nil
}

// TestTokenExchangeOnSessionBindingUpstream: a go-sdk upstream that binds
// each session to the user of the token that opened it, behind mcpgw with
// token_exchange under protocol_version auto (it keeps sessions: the 2025
// era). Alice's and Bob's calls, from 2025-era sessions and as 2026-07-28
// requests, interleaved, all succeed: each goes on an upstream session
// opened with its caller's exchanged token (upstream/pool.go), and each
// upstream request's token names its caller. With one upstream session for
// every principal, go-sdk refused every call but those of the principal
// whose token had opened it.
func TestTokenExchangeOnSessionBindingUpstream(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource),
		authntest.WithClient(authntest.Client{ID: gwClientID, Secret: gwClientSecret}))
	bound := sdkauth.RequireBearerToken(userOfToken, nil)(upstreams.CustomersHandler(nil))
	customers := &recorder{next: bound, check: issuedFor(iss, custResource)}
	cs := startServer(t, func() http.Handler { return customers })
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - name: customers
    http: {url: %q}
    auth: {type: token_exchange, token_url: %q, client_id: %s, client_secret: {value: %s}, resource: %s}
`, resource, iss.URL(), cs.url(), iss.TokenURL(), gwClientID, gwClientSecret, custResource), true)

	admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})
	state := func() map[string]any {
		t.Helper()
		code, body := adminDo(t, g.base, admin, http.MethodGet, "/admin/v1/upstreams", "")
		require.Equal(t, http.StatusOK, code)
		ups, _ := body["upstreams"].([]any)
		require.Len(t, ups, 1)
		up, _ := ups[0].(map[string]any)
		return up
	}
	up := state()
	assert.Equal(t, "session", up["era"], "auto chose the 2025 era: the upstream keeps sessions")
	assert.Equal(t, "2025-11-25", up["protocol_version"])

	tokens := map[string]string{}
	for _, sub := range []string{"alice", "bob"} {
		tokens[sub] = iss.Mint(map[string]any{"sub": sub, "scope": "mcp"})
	}
	sessions := map[string]*rawClient{}
	var want []string
	for round := range 3 {
		for _, sub := range []string{"alice", "bob"} {
			params := fmt.Sprintf(`{"name":"customers__lookup_customer","arguments":{"id":"c-00%d"}}`, round+1)
			c := sessions[sub]
			if c == nil {
				c = newRawClient(t, g.url)
				c.header.Set("Authorization", "Bearer "+tokens[sub])
				c.initialize()
				sessions[sub] = c
			}
			r := c.call("tools/call", params)
			require.Nil(t, r.Error, "%s, 2025-era client, round %d: %+v", sub, round, r.Error)

			status, mr := newRawClient(t, g.url).modern(modernRequest{
				method: "tools/call", name: "customers__lookup_customer",
				body:   fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":%s,%s}}`, params[:len(params)-1], modernMeta),
				header: map[string]string{"Authorization": "Bearer " + tokens[sub]},
			})
			require.Equal(t, http.StatusOK, status)
			require.Nil(t, mr.Error, "%s, 2026-07-28 client, round %d: %+v", sub, round, mr.Error)
			want = append(want, sub, sub)
		}
	}

	calls := customers.calls()
	require.Len(t, calls, len(want))
	var got []string
	owner := map[string]string{}
	for _, s := range calls {
		sub, _ := bearerClaims(t, iss, s.header)["sub"].(string)
		got = append(got, sub)
		sid := s.header.Get("Mcp-Session-Id")
		require.NotEmpty(t, sid, "a session-era call")
		if prev, ok := owner[sid]; ok {
			assert.Equal(t, prev, sub, "one upstream session carried two principals' calls")
		}
		owner[sid] = sub
	}
	assert.Equal(t, want, got, "each upstream call's exchanged token names its caller")
	assert.Len(t, owner, 2, "calls one after another reuse their principal's one session")
	assert.InDelta(t, 2, state()["pooled_sessions"], 0, "the admin API counts the pooled sessions")
	assertNoPassthrough(t, customers.all(), tokens["alice"], tokens["bob"])
}
