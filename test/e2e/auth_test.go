package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

const resource = "https://mcp.example.test/mcp"

// TestOAuthAtTheEdge runs the gateway as an OAuth resource server in front
// of the demo upstreams, with an in-process issuer that really signs tokens.
func TestOAuthAtTheEdge(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp, orders:write, mcpgw:admin]
upstreams:
  - {name: customers, http: {url: %q}}
  - name: orders
    http: {url: %q}
    scopes:
      tools: [{match: "cancel_*", scopes: [orders:write]}]
`, resource, iss.URL(), d.customers.url(), d.orders.url()), true)

	alice := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})
	aliceWrite := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp orders:write"})
	bob := iss.Mint(map[string]any{"sub": "bob", "scope": "mcp"})
	admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})

	withToken := func(tok string) *rawClient {
		c := newRawClient(t, g.url)
		if tok != "" {
			c.header.Set("Authorization", "Bearer "+tok)
		}
		return c
	}

	t.Run("no token gets a challenge naming the metadata", func(t *testing.T) {
		resp, _ := withToken("").post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="https://mcp.example.test/.well-known/oauth-protected-resource/mcp"`)
	})

	t.Run("a tampered token is refused", func(t *testing.T) {
		dot := strings.LastIndexByte(alice, '.')
		sig := alice[dot+1:]
		tampered := alice[:dot+1] + flipBit(t, sig, len(sig)*3/8)
		require.NotEqual(t, alice, tampered)
		resp, _ := withToken(tampered).post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`)
	})

	t.Run("protected resource metadata", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"} {
			resp, err := http.Get(g.base + path) //nolint:forbidigo,noctx // test.
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			var doc struct {
				Resource             string   `json:"resource"`
				AuthorizationServers []string `json:"authorization_servers"`
			}
			require.NoError(t, json.Unmarshal(body, &doc))
			assert.Equal(t, resource, doc.Resource)
			assert.Equal(t, []string{iss.URL()}, doc.AuthorizationServers)
		}
	})

	t.Run("step-up: a tool's scope is required, then the call succeeds", func(t *testing.T) {
		c := withToken(alice)
		c.initialize()
		resp, body := c.post(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"orders__cancel_order","arguments":{"id":"o-1001","reason":"x"}}}`)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		wa := resp.Header.Get("WWW-Authenticate")
		assert.Contains(t, wa, `error="insufficient_scope"`)
		assert.Contains(t, wa, "orders:write")
		assert.Contains(t, wa, "resource_metadata=")

		r := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, r.Error, "tools without extra scopes still work")

		c2 := withToken(aliceWrite)
		c2.initialize()
		r = c2.call("tools/call", `{"name":"orders__cancel_order","arguments":{"id":"o-1002","reason":"customer asked"}}`)
		require.Nil(t, r.Error)
		assert.Contains(t, string(r.Result), "o-1002")
	})

	t.Run("another principal's session id is unknown", func(t *testing.T) {
		a := withToken(alice)
		a.initialize()
		b := withToken(bob)
		b.session = a.session
		resp, _ := b.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode)
		r := a.call("tools/list", `{}`)
		assert.Nil(t, r.Error, "the owner keeps the session")
	})

	t.Run("the client's token never reaches an upstream", func(t *testing.T) {
		c := withToken(alice)
		c.initialize()
		r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
		require.Nil(t, r.Error)
		assert.Empty(t, d.customersObs.LastHeaders().Get("Authorization"))
		for _, h := range d.customersObs.LastHeaders() {
			for _, v := range h {
				assert.NotContains(t, v, alice)
			}
		}
	})

	t.Run("admin API needs the admin scope", func(t *testing.T) {
		get := func(tok string) int {
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.base+"/admin/v1/killswitches", nil)
			require.NoError(t, err)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		assert.Equal(t, http.StatusUnauthorized, get(""))
		assert.Equal(t, http.StatusForbidden, get(alice))
		assert.Equal(t, http.StatusOK, get(admin))
	})

	t.Run("the audit stream names the principal", func(t *testing.T) {
		c := withToken(bob)
		c.initialize()
		require.Nil(t, c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-002"}}`).Error)
		g.Close()
		data, err := readFile(g.auditPath)
		require.NoError(t, err)
		assert.Contains(t, data, `"subject":"bob"`)
		assert.Contains(t, data, `"decision":"denied"`)
	})
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return strings.TrimSpace(string(b)), err
}
