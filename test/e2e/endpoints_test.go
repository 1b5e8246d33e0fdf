package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

// TestVirtualEndpoints serves two virtual endpoints with different
// selectors and scopes beside /mcp, behind a real issuer and in front of
// the demo upstreams (issue 18, item 4): each lists only its tools in
// both eras, names its own resource in its metadata, refuses the other's
// tokens and sessions, and answers a tool it does not select as unknown;
// a kill switch applies to both, and the audit records name the endpoint.
func TestVirtualEndpoints(t *testing.T) {
	const (
		host        = "https://mcp.example.test"
		supportURI  = host + "/mcp/support"
		readonlyURI = host + "/mcp/readonly"
	)
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	base := fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp, support, ops, mcpgw:admin]
catalog:
  page_size: 2
policy:
  rules:
    - name: no-deletes-at-support
      when: 'endpoint == "/mcp/support" && tool.original == "confirm_delete"'
upstreams:
  - {name: customers, http: {url: %q}}
  - {name: orders, http: {url: %q}}
`, resource, iss.URL(), d.customers.url(), d.orders.url())
	g := startGateway(t, base+`
endpoints:
  - path: /mcp/support
    tools: ["customers__*", "orders__get_order"]
    required_scopes: [support]
    instructions: Tools for the support desk.
  - path: /mcp/readonly
    when: 'tool.upstream == "orders" && tool.annotations.?readOnlyHint.orValue(false)'
    required_scopes: [ops]
`, true)

	mint := func(aud any, scope string) string {
		return iss.Mint(map[string]any{"sub": "alice", "aud": aud, "scope": scope})
	}
	supportTok := mint(supportURI, "support")
	readonlyTok := mint(readonlyURI, "ops")
	mainTok := mint(resource, "mcp support ops")
	bothTok := mint([]any{supportURI, readonlyURI}, "support ops")
	admin := mint(resource, "mcpgw:admin")

	client := func(path, tok string) *rawClient {
		c := newRawClient(t, g.base+path)
		c.header.Set("Authorization", "Bearer "+tok)
		return c
	}
	legacyTools := func(path, tok string) []string {
		c := client(path, tok)
		c.initialize()
		return names(t, rawList(t, c, "tools/list", "tools"))
	}
	// modernTools follows the cursors of the endpoint's own pages.
	modernTools := func(path, tok string) []string {
		c := client(path, tok)
		var all []json.RawMessage
		cursor := ""
		for page := 0; ; page++ {
			require.Less(t, page, 100, "too many pages")
			params := modernMeta
			if cursor != "" {
				params = fmt.Sprintf(`"cursor":%q,%s`, cursor, modernMeta)
			}
			status, r := c.modern(modernRequest{
				method: "tools/list", header: map[string]string{"Authorization": "Bearer " + tok},
				body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + params + `}}`,
			})
			require.Equal(t, http.StatusOK, status)
			require.Nil(t, r.Error)
			var res struct {
				Tools      []json.RawMessage `json:"tools"`
				NextCursor string            `json:"nextCursor"`
			}
			require.NoError(t, json.Unmarshal(r.Result, &res))
			require.LessOrEqual(t, len(res.Tools), 2, "catalog.page_size")
			all = append(all, res.Tools...)
			if cursor = res.NextCursor; cursor == "" {
				return names(t, all)
			}
		}
	}

	// confirm_delete is selected, and hidden by a rule that names the
	// endpoint.
	supportWant := []string{"customers__lookup_customer", "customers__search_customers", "customers__update_customer", "orders__get_order"}
	readonlyWant := []string{"orders__export_orders", "orders__get_order", "orders__label_preview", "orders__list_orders"}

	t.Run("each endpoint lists only its tools, in both eras", func(t *testing.T) {
		all := legacyTools("/mcp", mainTok)
		require.Greater(t, len(all), len(supportWant), "the MCP endpoint lists the whole catalog: %v", all)
		assert.Contains(t, all, "customers__confirm_delete", "the rule names /mcp/support only")
		for _, era := range []struct {
			name string
			list func(path, tok string) []string
		}{{"2025", legacyTools}, {"2026-07-28", modernTools}} {
			t.Run(era.name, func(t *testing.T) {
				assert.Equal(t, supportWant, era.list("/mcp/support", supportTok))
				assert.Equal(t, readonlyWant, era.list("/mcp/readonly", readonlyTok))
			})
		}
	})

	t.Run("each endpoint has its own instructions", func(t *testing.T) {
		c := client("/mcp/support", supportTok)
		resp, body := c.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
		assert.Contains(t, string(body), `"instructions":"Tools for the support desk."`)

		status, r := client("/mcp/support", supportTok).modern(modernRequest{
			method: "server/discover", header: map[string]string{"Authorization": "Bearer " + supportTok},
			body: `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + modernMeta + `}}`,
		})
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error)
		assert.Contains(t, string(r.Result), `"instructions":"Tools for the support desk."`)
	})

	t.Run("each endpoint's metadata names its own resource", func(t *testing.T) {
		for path, want := range map[string]string{
			"/.well-known/oauth-protected-resource/mcp/support":  supportURI,
			"/.well-known/oauth-protected-resource/mcp/readonly": readonlyURI,
			"/.well-known/oauth-protected-resource/mcp":          resource,
		} {
			resp, err := http.Get(g.base + path) //nolint:forbidigo,noctx // test.
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, path)
			var doc struct {
				Resource string `json:"resource"`
			}
			require.NoError(t, json.Unmarshal(body, &doc))
			assert.Equal(t, want, doc.Resource, path)
		}
		resp, _ := newRawClient(t, g.base+"/mcp/support").post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Equal(t, `Bearer resource_metadata="`+host+`/.well-known/oauth-protected-resource/mcp/support", scope="support"`,
			resp.Header.Get("WWW-Authenticate"))
	})

	t.Run("a token for one endpoint is refused at the other", func(t *testing.T) {
		tests := []struct {
			path, tok  string
			wantStatus int
		}{
			{"/mcp/readonly", supportTok, http.StatusUnauthorized},
			{"/mcp/support", readonlyTok, http.StatusUnauthorized},
			{"/mcp", supportTok, http.StatusUnauthorized},
			{"/mcp/support", mainTok, http.StatusUnauthorized},
			// The right audience without the endpoint's scope.
			{"/mcp/readonly", mint(readonlyURI, "support"), http.StatusForbidden},
			{"/mcp/support", supportTok, http.StatusOK},
		}
		for _, tt := range tests {
			resp, body := client(tt.path, tt.tok).post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s: %s", tt.path, body)
			if tt.wantStatus == http.StatusUnauthorized {
				assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`, tt.path)
			}
		}
	})

	t.Run("a session is bound to its endpoint", func(t *testing.T) {
		c := client("/mcp/support", bothTok)
		c.initialize()
		other := client("/mcp/readonly", bothTok)
		other.session = c.session
		resp, body := other.post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			req, err := http.NewRequestWithContext(t.Context(), method, g.base+"/mcp/readonly", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+bothTok)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Session-Id", c.session)
			resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, method)
		}
		r := c.call("tools/list", `{}`)
		assert.Nil(t, r.Error, "the session lives on at its own endpoint")
	})

	t.Run("rules see the endpoint", func(t *testing.T) {
		c := client("/mcp/support", supportTok)
		c.initialize()
		r := c.call("tools/call", `{"name":"customers__confirm_delete","arguments":{}}`)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32068, r.Error.Code)
		assert.Contains(t, string(r.Error.Data), "no-deletes-at-support")
	})

	t.Run("a tool the endpoint does not select is an unknown tool", func(t *testing.T) {
		c := client("/mcp/readonly", readonlyTok)
		c.initialize()
		r := c.call("tools/call", `{"name":"orders__cancel_order","arguments":{"id":"o-1001"}}`)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32602, r.Error.Code)
		assert.Contains(t, r.Error.Message, "unknown tool")

		m := client("/mcp/readonly", readonlyTok)
		status, mr := m.modern(modernRequest{
			method: "tools/call", name: "customers__lookup_customer", header: map[string]string{"Authorization": "Bearer " + readonlyTok},
			body: `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"customers__lookup_customer","arguments":{"id":"c-001"},` + modernMeta + `}}`,
		})
		assert.Equal(t, http.StatusBadRequest, status)
		require.NotNil(t, mr.Error)
		assert.Equal(t, -32602, mr.Error.Code)

		r = c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		assert.Nil(t, r.Error, "a selected tool is called")
	})

	t.Run("a kill switch applies to every endpoint", func(t *testing.T) {
		status, sw := adminDo(t, g.base, admin, http.MethodPost, "/admin/v1/killswitches",
			`{"scope":"tool","target":"orders__get_order","reason":"incident 18"}`)
		require.Equal(t, http.StatusCreated, status, "%v", sw)
		for path, tok := range map[string]string{"/mcp/support": supportTok, "/mcp/readonly": readonlyTok} {
			assert.NotContains(t, legacyTools(path, tok), "orders__get_order", path)
			assert.NotContains(t, modernTools(path, tok), "orders__get_order", path)
			c := client(path, tok)
			c.initialize()
			r := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
			require.NotNil(t, r.Error, path)
			assert.Equal(t, -32060, r.Error.Code, path)
		}
		id, _ := sw["id"].(string)
		status, _ = adminDo(t, g.base, admin, http.MethodDelete, "/admin/v1/killswitches/"+id, "")
		require.Equal(t, http.StatusOK, status)
		assert.Contains(t, legacyTools("/mcp/support", supportTok), "orders__get_order", "revived everywhere")
		assert.Contains(t, modernTools("/mcp/readonly", readonlyTok), "orders__get_order", "revived everywhere")
	})

	t.Run("audit records name the endpoint", func(t *testing.T) {
		seen := map[string]bool{}
		f, err := os.Open(g.auditPath)
		require.NoError(t, err)
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec struct {
				Event, Endpoint, Tool, Decision string
			}
			require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
			if rec.Event == "tools/call" {
				seen[rec.Endpoint+" "+rec.Tool+" "+rec.Decision] = true
			}
		}
		for _, want := range []string{
			"/mcp/readonly orders__get_order allowed",
			"/mcp/readonly orders__get_order killed",
			"/mcp/support orders__get_order killed",
		} {
			assert.True(t, seen[want], "no record %q in %v", want, seen)
		}
	})

	t.Run("a reload adds, changes and removes endpoints", func(t *testing.T) {
		cfg, err := configs.Parse([]byte(base + fmt.Sprintf(`
endpoints:
  - path: /mcp/support
    tools: ["customers__lookup_*"]
    required_scopes: [support]
  - path: /mcp/orders
    tools: ["orders__*_order"]
audit:
  sinks: [{type: file, path: %q}]
`, g.auditPath)))
		require.NoError(t, err)
		require.NoError(t, g.Reload(t.Context(), cfg))
		assert.Equal(t, []string{"customers__lookup_customer"}, modernTools("/mcp/support", supportTok))
		assert.Equal(t, []string{"orders__cancel_order", "orders__create_order", "orders__get_order"},
			legacyTools("/mcp/orders", mint(host+"/mcp/orders", "")))
		resp, _ := client("/mcp/readonly", readonlyTok).post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, "a removed endpoint is gone")
		resp, _ = client("/mcp/orders", supportTok).post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a new endpoint has its own audience")
	})
}

// names returns the sorted names of list items.
func names(t *testing.T, items []json.RawMessage) []string {
	t.Helper()
	out := make([]string, 0, len(items))
	for _, raw := range items {
		n, err := toolName(raw)
		require.NoError(t, err)
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}
