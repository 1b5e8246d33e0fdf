package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/gateway/catalog"
)

// TestListsPerPrincipal: each principal's tools/list shows only the tools
// it may call, in both protocol eras, with cursors that page through its
// own list; a call to a hidden tool still gets the step-up challenge.
func TestListsPerPrincipal(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
catalog:
  page_size: 2
upstreams:
  - {name: customers, http: {url: %q}}
  - name: orders
    http: {url: %q}
    scopes:
      default: [orders:read]
      tools: [{match: "cancel_*", scopes: [orders:write]}]
`, resource, iss.URL(), d.customers.url(), d.orders.url()), true)

	tokens := map[string]string{
		"writer": iss.Mint(map[string]any{"sub": "w", "scope": "orders:read orders:write"}),
		"reader": iss.Mint(map[string]any{"sub": "r", "scope": "mcp orders:read"}),
		"other":  iss.Mint(map[string]any{"sub": "o", "scope": "mcp"}),
	}
	names := func(items []json.RawMessage) []string {
		var out []string
		for _, it := range items {
			n, err := toolName(it)
			require.NoError(t, err)
			out = append(out, n)
		}
		return out
	}
	sessionList := func(who string) []string {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+tokens[who])
		c.initialize()
		return names(rawList(t, c, "tools/list", "tools"))
	}
	modernList := func(who string) []string {
		c := newRawClient(t, g.url)
		var all []string
		cursor := ""
		for range 100 {
			params := `{` + modernMeta + `}`
			if cursor != "" {
				params = fmt.Sprintf(`{"cursor":%q,%s}`, cursor, modernMeta)
			}
			status, r := c.modern(modernRequest{
				method: "tools/list",
				body:   `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":` + params + `}`,
				header: map[string]string{"Authorization": "Bearer " + tokens[who]},
			})
			require.Equal(t, http.StatusOK, status)
			require.Nil(t, r.Error, "%+v", r.Error)
			var res struct {
				Tools      []json.RawMessage `json:"tools"`
				NextCursor string            `json:"nextCursor"`
				CacheScope string            `json:"cacheScope"`
			}
			require.NoError(t, json.Unmarshal(r.Result, &res))
			assert.Equal(t, "private", res.CacheScope, "a per-principal list is never shared")
			all = append(all, names(res.Tools)...)
			if res.NextCursor == "" {
				return all
			}
			cursor = res.NextCursor
		}
		t.Fatal("too many pages")
		return nil
	}

	all := g.Catalog().Names(catalog.Tools)
	require.Contains(t, all, "orders__cancel_order")
	require.Contains(t, all, "orders__get_order")
	var customersOnly, withoutCancel []string
	for _, n := range all {
		if strings.HasPrefix(n, "customers__") {
			customersOnly = append(customersOnly, n)
		}
		if n != "orders__cancel_order" {
			withoutCancel = append(withoutCancel, n)
		}
	}
	want := map[string][]string{"writer": all, "reader": withoutCancel, "other": customersOnly}

	for _, era := range []struct {
		name string
		list func(who string) []string
	}{{"2025 sessions", sessionList}, {"2026-07-28", modernList}} {
		t.Run(era.name, func(t *testing.T) {
			for who, w := range want {
				got := era.list(who)
				assert.ElementsMatch(t, w, got, who)
				assert.Len(t, slices.Compact(slices.Sorted(slices.Values(got))), len(got), "%s: no duplicates across pages", who)
			}
		})
	}

	t.Run("a hidden tool still gets the step-up challenge", func(t *testing.T) {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+tokens["reader"])
		c.initialize()
		resp, body := c.post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"orders__cancel_order","arguments":{"id":"o-1001","reason":"x"}}}`)
		require.Equal(t, http.StatusForbidden, resp.StatusCode, string(body))
		wa := resp.Header.Get("WWW-Authenticate")
		assert.Contains(t, wa, `error="insufficient_scope"`)
		assert.Contains(t, wa, "orders:write")
	})
}
