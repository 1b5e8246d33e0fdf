package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// TestDexShapedToken runs a token shaped as Dex issues it (docs/identity-
// providers.md) through a gateway with required_scopes: aud is an array
// holding the gateway's Dex client id and the requesting client, there is no scope
// claim, and the groups claim carries what the operator maps to scopes.
// With the issuer's scope_claims set to groups it lists and calls; with
// the default scope_claims (scope, scp) the same token gets 403
// insufficient_scope, which is what Dex users hit before.
func TestDexShapedToken(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	// Dex's subject is connector-encoded; aud holds the gateway's Dex
	// client, then the requesting one.
	dex := iss.Mint(map[string]any{
		"sub":            "CgVhbGljZRIFbG9jYWw",
		"aud":            []any{"mcpgw", "mcpgw-cli"},
		"azp":            "mcpgw-cli",
		"email":          "alice@example.com",
		"email_verified": true,
		"groups":         []any{"mcp", "orders:read"},
		"name":           "Alice",
	})
	config := func(scopeClaims string) string {
		return fmt.Sprintf(`
auth:
  resource: %q
  required_scopes: [mcp]
  issuers:
    - issuer: %q
      audience: mcpgw
      %s
upstreams:
  - {name: customers, http: {url: %q}}
`, resource, iss.URL(), scopeClaims, d.customers.url())
	}
	list := func(g *gw) (int, rpcResponse) {
		c := newRawClient(t, g.url)
		return c.modern(modernRequest{
			method: "tools/list",
			body:   `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`,
			header: map[string]string{"Authorization": "Bearer " + dex},
		})
	}

	mapped := startGateway(t, config("scope_claims: [groups]"), true)
	status, r := list(mapped)
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, r.Error, "%+v", r.Error)
	assert.Contains(t, string(r.Result), "customers__")

	// A session-era client gets through as well.
	c := newRawClient(t, mapped.url)
	c.header.Set("Authorization", "Bearer "+dex)
	c.initialize()
	assert.NotEmpty(t, rawList(t, c, "tools/list", "tools"))

	unmapped := startGateway(t, config(""), true)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, unmapped.url,
		strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+dex)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "without scope_claims a Dex token carries no scope")
	assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `scope="mcp"`)
}
