package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// TestEveryEraMeetsEveryEra puts go-sdk and mcp-go upstreams of both eras
// behind one gateway and drives it with go-sdk and mcp-go clients of both
// eras: list, call, read and get work through every pair.
func TestEveryEraMeetsEveryEra(t *testing.T) {
	obs := map[string]*upstreams.Observer{}
	for _, n := range []string{"c25", "c26", "orders", "payments"} {
		obs[n] = upstreams.NewObserver()
	}
	c25 := startServer(t, func() http.Handler { return upstreams.CustomersHandler(obs["c25"]) })
	c26 := startServer(t, func() http.Handler { return upstreams.CustomersStatelessHandler(obs["c26"]) })
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(obs["orders"]) })
	payments := startServer(t, func() http.Handler { return upstreams.PaymentsHandler(obs["payments"]) })
	g := startGatewayWith(t, fmt.Sprintf(`
upstreams:
  - {name: c25, http: {url: %q}}        # go-sdk, sessions
  - {name: c26, http: {url: %q}}        # go-sdk, stateless 2026-07-28
  - {name: orders, http: {url: %q}}     # mcp-go, sessions only
  - {name: payments, http: {url: %q}}   # mcp-go, 2026-07-28 capable
`, c25.url(), c26.url(), orders.url(), payments.url()), true, 1<<40)

	wantTools := []string{}
	for _, up := range []string{"c25", "c26"} {
		for _, tool := range []string{"confirm_delete", "lookup_customer", "search_customers", "update_customer"} {
			wantTools = append(wantTools, up+"__"+tool)
		}
	}
	for _, tool := range []string{"cancel_order", "create_order", "export_orders", "get_order", "label_preview", "list_orders"} {
		wantTools = append(wantTools, "orders__"+tool)
	}
	wantTools = append(wantTools, "payments__approve_refund", "payments__find_payment", "payments__get_payment", "payments__refund")
	sort.Strings(wantTools)

	for name, connect := range clients(t, g.url) {
		t.Run(name, func(t *testing.T) {
			c := connect(t)
			ctx := t.Context()
			names := c.listTools(ctx)
			sort.Strings(names)
			require.Equal(t, wantTools, names)
			for _, call := range []struct {
				tool string
				args map[string]any
				want string
			}{
				{"c25__lookup_customer", map[string]any{"id": "c-001"}, "Ada Lovelace"},
				{"c26__lookup_customer", map[string]any{"id": "c-002"}, "Grace Hopper"},
				{"orders__get_order", map[string]any{"id": "o-1001"}, "o-1001"},
				{"payments__get_payment", map[string]any{"payment_id": "p-5001"}, "p-5001"},
			} {
				text, isErr, err := c.callText(ctx, call.tool, call.args, nil)
				require.NoError(t, err, call.tool)
				assert.False(t, isErr, "%s: %s", call.tool, text)
				assert.Contains(t, text, call.want, call.tool)
			}
			// Both customers servers expose customer:// URIs, so the
			// gateway names them by upstream.
			assert.Contains(t, c.readResource(ctx, "mcpgw://c25/customer://c-003"), "Alan Turing")
			assert.Contains(t, c.readResource(ctx, "mcpgw://c26/customer://c-004"), "Katherine Johnson")
			assert.Contains(t, c.readResource(ctx, "orders://o-1002"), "o-1002")
			assert.Contains(t, c.getPrompt(ctx, "c25__customer_brief", map[string]string{"id": "c-005"}), "Edsger Dijkstra")
			assert.Contains(t, c.getPrompt(ctx, "c26__customer_brief", map[string]string{"id": "c-006"}), "Barbara Liskov")
		})
	}

	// The gateway spoke each upstream's own era.
	for up, want := range map[string]string{"c25": era2025, "c26": era2026, "orders": era2025, "payments": era2026} {
		h := obs[up].LastHeaders()
		assert.Equal(t, want, h.Get("Mcp-Protocol-Version"), up)
		assert.Equal(t, want == era2025, h.Get("Mcp-Session-Id") != "", "%s: session id %q", up, h.Get("Mcp-Session-Id"))
	}
}

// modernRequest is a raw 2026-07-28 request.
type modernRequest struct {
	method, name, body string
	header             map[string]string
}

func (c *rawClient) modern(r modernRequest) (int, rpcResponse) {
	c.t.Helper()
	c.header = http.Header{}
	c.header.Set("Mcp-Protocol-Version", era2026)
	c.header.Set("Mcp-Method", r.method)
	if r.name != "" {
		c.header.Set("Mcp-Name", r.name)
	}
	for k, v := range r.header {
		if v == "" {
			c.header.Del(k)
		} else {
			c.header.Set(k, v)
		}
	}
	resp, data := c.post(r.body)
	var out rpcResponse
	if len(data) > 0 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(c.t, json.Unmarshal(data, &out), string(data))
	}
	return resp.StatusCode, out
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// TestModernHeaderRules sends 2026-07-28 requests that break the header
// rules, and ones that use their less common forms.
func TestModernHeaderRules(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	call := func(name string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{"id":"o-1001"},%s}}`, name, modernMeta)
	}
	tests := []struct {
		name       string
		req        modernRequest
		wantStatus int
		wantCode   int // 0: success
	}{
		{name: "ok", req: modernRequest{method: "tools/call", name: "orders__get_order", body: call("orders__get_order")}, wantStatus: 200},
		{name: "base64 name", req: modernRequest{method: "tools/call", name: "=?base64?" + base64.StdEncoding.EncodeToString([]byte("orders__get_order")) + "?=", body: call("orders__get_order")}, wantStatus: 200},
		{name: "discover", req: modernRequest{method: "server/discover", body: `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{` + modernMeta + `}}`}, wantStatus: 200},
		{name: "name mismatch", req: modernRequest{method: "tools/call", name: "orders__cancel_order", body: call("orders__get_order")}, wantStatus: 400, wantCode: -32020},
		{name: "method mismatch", req: modernRequest{method: "tools/list", name: "orders__get_order", body: call("orders__get_order")}, wantStatus: 400, wantCode: -32020},
		{name: "missing name header", req: modernRequest{method: "tools/call", body: call("orders__get_order")}, wantStatus: 400, wantCode: -32020},
		{name: "missing method header", req: modernRequest{method: "tools/call", name: "orders__get_order", body: call("orders__get_order"), header: map[string]string{"Mcp-Method": ""}}, wantStatus: 400, wantCode: -32020},
		{name: "bad base64", req: modernRequest{method: "tools/call", name: "=?base64?!!!?=", body: call("orders__get_order")}, wantStatus: 400, wantCode: -32020},
		{name: "no version in _meta", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}}`}, wantStatus: 400, wantCode: -32602},
		{name: "no capabilities in _meta", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`}, wantStatus: 400, wantCode: -32602},
		{name: "version header disagrees with _meta", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-08-01","io.modelcontextprotocol/clientCapabilities":{}}}}`}, wantStatus: 400, wantCode: -32020},
		{name: "_meta without version header", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`, header: map[string]string{"Mcp-Protocol-Version": ""}}, wantStatus: 400, wantCode: -32020},
		{name: "unsupported version", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`, header: map[string]string{"Mcp-Protocol-Version": "2099-01-01"}}, wantStatus: 400, wantCode: -32022},
		{name: "session id on a modern request", req: modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`, header: map[string]string{"Mcp-Session-Id": "s1.whatever"}}, wantStatus: 400, wantCode: -32600},
		{name: "removed method", req: modernRequest{method: "ping", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{` + modernMeta + `}}`}, wantStatus: 404, wantCode: -32601},
		{name: "removed initialize", req: modernRequest{method: "initialize", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{` + modernMeta + `}}`}, wantStatus: 404, wantCode: -32601},
		{name: "unknown tool", req: modernRequest{method: "tools/call", name: "orders__nope", body: call("orders__nope")}, wantStatus: 400, wantCode: -32602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, r := newRawClient(t, g.url).modern(tt.req)
			require.Equal(t, tt.wantStatus, status)
			if tt.wantCode == 0 {
				require.Nil(t, r.Error)
				return
			}
			require.NotNil(t, r.Error)
			assert.Equal(t, tt.wantCode, r.Error.Code, r.Error.Message)
			if tt.wantCode == -32022 {
				assert.Contains(t, string(r.Error.Data), `"supported":["2026-07-28"`)
			}
		})
	}

	t.Run("lists carry cache hints", func(t *testing.T) {
		status, r := newRawClient(t, g.url).modern(modernRequest{method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`})
		require.Equal(t, 200, status)
		var res struct {
			Tools      []json.RawMessage `json:"tools"`
			TTLMs      *int64            `json:"ttlMs"`
			CacheScope string            `json:"cacheScope"`
		}
		require.NoError(t, json.Unmarshal(r.Result, &res))
		assert.Len(t, res.Tools, len(wantTools))
		require.NotNil(t, res.TTLMs)
		assert.Equal(t, "private", res.CacheScope)
	})
}

// TestModernClientAcrossTwoGateways puts two gateway processes behind one
// port with no affinity: a 2026-07-28 client's requests alternate between
// them and all succeed.
func TestModernClientAcrossTwoGateways(t *testing.T) {
	d := startDemo(t)
	a := startGateway(t, d.config(""), true)
	b := startGateway(t, d.config(""), true)
	var n atomic.Int64
	var served [2]atomic.Int64
	targets := []*url.URL{mustParse(t, a.base), mustParse(t, b.base)}
	lb := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := n.Add(1) % 2
			served[i].Add(1)
			r.SetURL(targets[i])
		},
	})
	t.Cleanup(lb.Close)

	for _, connect := range []func(t *testing.T) mcpClient{
		func(t *testing.T) mcpClient { return newSDKClientAt(t, lb.URL+"/mcp", era2026) },
		func(t *testing.T) mcpClient { return newGoClientAt(t, lb.URL+"/mcp", era2026) },
	} {
		c := connect(t)
		for i := range 10 {
			text, isErr, err := c.callText(t.Context(), "customers__lookup_customer", map[string]any{"id": fmt.Sprintf("c-%03d", i%10+1)}, nil)
			require.NoError(t, err)
			require.False(t, isErr, text)
			assert.Len(t, c.listTools(t.Context()), len(wantTools))
		}
	}
	assert.Positive(t, served[0].Load())
	assert.Positive(t, served[1].Load())
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}
