package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// TestOIDCProviderThroughGateway puts panva oidc-provider, a real
// third-party OpenID provider, in front of the gateway: its client
// credentials tokens, requested with the gateway's resource indicator
// (RFC 8707), call tools end to end; a token it issued for another
// resource gets 401 with a challenge; a token without a tool's scope gets
// the 403 step-up challenge.
func TestOIDCProviderThroughGateway(t *testing.T) {
	const clientID, secret = "mcpgw-e2e-host", "e2e-host-secret-0123456789"
	const other = "https://other.example.test/mcp"
	issuer := authntest.StartOIDCProvider(t, &authntest.OIDCProvider{
		ClientID: clientID, Secret: secret,
		Resources: []string{resource, other},
		Scopes:    []string{"mcp:tools", "orders:read"},
	})
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp:tools, orders:read]
  required_scopes: [mcp:tools]
upstreams:
  - {name: customers, http: {url: %q}}
  - name: orders
    http: {url: %q}
    scopes: {default: [orders:read]}
`, resource, issuer, d.customers.url(), d.orders.url()), true)

	token := func(resource string, scopes ...string) string {
		t.Helper()
		cc := clientcredentials.Config{
			ClientID: clientID, ClientSecret: secret, TokenURL: issuer + "/token",
			Scopes: scopes, EndpointParams: url.Values{"resource": {resource}},
		}
		tok, err := cc.Token(t.Context())
		require.NoError(t, err)
		return tok.AccessToken
	}
	client := func(tok string) *rawClient {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+tok)
		return c
	}

	t.Run("a token for the gateway calls tools end to end", func(t *testing.T) {
		c := client(token(resource, "mcp:tools", "orders:read"))
		c.initialize()
		r := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, r.Error, "%+v", r.Error)
		assert.Contains(t, string(r.Result), "o-1001")
		r = c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
		require.Nil(t, r.Error, "%+v", r.Error)
	})

	t.Run("a token for another resource gets 401", func(t *testing.T) {
		resp, body := client(token(other, "mcp:tools", "orders:read")).post(
			`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, string(body))
		wa := resp.Header.Get("WWW-Authenticate")
		assert.Contains(t, wa, `error="invalid_token"`)
		assert.Contains(t, wa, `resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"`)
	})

	t.Run("a token without a tool's scope gets the step-up challenge", func(t *testing.T) {
		c := client(token(resource, "mcp:tools"))
		c.initialize()
		resp, body := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"orders__get_order","arguments":{"id":"o-1001"}}}`)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		wa := resp.Header.Get("WWW-Authenticate")
		assert.Contains(t, wa, `error="insufficient_scope"`)
		assert.Contains(t, wa, `orders:read`)
	})
}
