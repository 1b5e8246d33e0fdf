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
// eras: list, call, read and get work through every pair, and each upstream
// is spoken to in its own era whatever the client's. It runs twice: with
// protocol_version auto, which calls the mcp-go server that offers both
// eras and keeps sessions in pooled 2025-11-25 sessions, and with that
// server pinned to 2026-07-28, so that each library is met in each era.
func TestEveryEraMeetsEveryEra(t *testing.T) {
	for _, mode := range []struct {
		name     string
		payments string // the payments upstream's protocol_version
		era      string // the era the gateway must speak to payments
	}{
		{"auto", "auto", era2025},
		{"payments pinned to 2026-07-28", era2026, era2026},
	} {
		t.Run(mode.name, func(t *testing.T) { everyEraMeetsEveryEra(t, mode.payments, mode.era) })
	}
}

func everyEraMeetsEveryEra(t *testing.T, paymentsVersion, paymentsEra string) {
	t.Helper()
	// era is the version the gateway must speak to each upstream.
	era := map[string]string{
		"c25":      era2025,     // go-sdk, sessions
		"c26":      era2026,     // go-sdk, stateless
		"orders":   era2025,     // mcp-go, sessions only
		"payments": paymentsEra, // mcp-go, serves both
	}
	obs := map[string]*upstreams.Observer{}
	for n := range era {
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
  - {name: payments, http: {url: %q}, protocol_version: %q}   # mcp-go, both eras
`, c25.url(), c26.url(), orders.url(), payments.url(), paymentsVersion), true, 1<<40)

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

	// spoke asserts that the request the upstream saw last, the one the
	// client's request just caused, was in the upstream's own era: a
	// session id for 2025-11-25, and for 2026-07-28 the Mcp-Method and
	// Mcp-Name headers naming the upstream's own method and name
	// (basic/transports, "Standard Headers").
	spoke := func(t *testing.T, up, method, name string) {
		t.Helper()
		h := obs[up].LastHeaders()
		require.NotNil(t, h, "%s saw no request", up)
		assert.Equal(t, era[up], h.Get("Mcp-Protocol-Version"), "%s %s", up, method)
		assert.Equal(t, era[up] == era2025, h.Get("Mcp-Session-Id") != "", "%s %s: session id %q", up, method, h.Get("Mcp-Session-Id"))
		if era[up] == era2026 {
			assert.Equal(t, method, h.Get("Mcp-Method"), up)
			assert.Equal(t, name, h.Get("Mcp-Name"), "%s %s", up, method)
		}
	}

	// Each upstream's exposed names, the names the upstream itself knows
	// them by, and what the answers must contain. Both customers servers
	// expose customer:// URIs, so the gateway names those by upstream.
	type op struct {
		exposed, upstream string
		args              map[string]any
		want              []string
	}
	perUpstream := []struct {
		up              string
		call, read, get op
	}{
		{
			up:   "c25",
			call: op{"c25__lookup_customer", "lookup_customer", map[string]any{"id": "c-001"}, []string{"Ada Lovelace"}},
			read: op{"mcpgw://c25/customer://c-003", "customer://c-003", nil, []string{"Alan Turing"}},
			get:  op{"c25__customer_brief", "customer_brief", map[string]any{"id": "c-005"}, []string{"Edsger Dijkstra"}},
		},
		{
			up:   "c26",
			call: op{"c26__lookup_customer", "lookup_customer", map[string]any{"id": "c-002"}, []string{"Grace Hopper"}},
			read: op{"mcpgw://c26/customer://c-004", "customer://c-004", nil, []string{"Katherine Johnson"}},
			get:  op{"c26__customer_brief", "customer_brief", map[string]any{"id": "c-006"}, []string{"Barbara Liskov"}},
		},
		{
			up:   "orders",
			call: op{"orders__get_order", "get_order", map[string]any{"id": "o-1001"}, []string{"o-1001"}},
			read: op{"orders://o-1002", "orders://o-1002", nil, []string{`"id":"o-1002"`, `"customer_id":"c-002"`}},
			get:  op{"orders__order_summary", "order_summary", map[string]any{"order_id": "o-1005"}, []string{"Summary of order o-1005", "Summarise this order", `\"customer_id\":\"c-004\"`}},
		},
		{
			up:   "payments",
			call: op{"payments__get_payment", "get_payment", map[string]any{"payment_id": "p-5001"}, []string{"p-5001"}},
			read: op{"payment://p-5004", "payment://p-5004", nil, []string{`"payment_id":"p-5004"`, `"order_id":"o-1004"`}},
			get: op{
				"payments__refund_note", "refund_note",
				map[string]any{"payment_id": "p-5002", "reason": "late delivery"},
				[]string{"Refund note for payment p-5002", "customer c-002: payment p-5002 for order o-1002 (498.00 EUR)", "Reason: late delivery."},
			},
		},
	}

	for name, connect := range clients(t, g.url) {
		t.Run(name, func(t *testing.T) {
			c := connect(t)
			ctx := t.Context()
			names := c.listTools(ctx)
			sort.Strings(names)
			require.Equal(t, wantTools, names)
			for i := range perUpstream {
				u := &perUpstream[i]
				t.Run(u.up, func(t *testing.T) {
					text, isErr, err := c.callText(ctx, u.call.exposed, u.call.args, nil)
					require.NoError(t, err, u.call.exposed)
					assert.False(t, isErr, "%s: %s", u.call.exposed, text)
					assertContainsAll(t, text, u.call.want, u.call.exposed)
					spoke(t, u.up, "tools/call", u.call.upstream)

					assertContainsAll(t, c.readResource(ctx, u.read.exposed), u.read.want, u.read.exposed)
					spoke(t, u.up, "resources/read", u.read.upstream)

					args := map[string]string{}
					for k, v := range u.get.args {
						args[k] = v.(string)
					}
					assertContainsAll(t, c.getPrompt(ctx, u.get.exposed, args), u.get.want, u.get.exposed)
					spoke(t, u.up, "prompts/get", u.get.upstream)
				})
			}
		})
	}
}

// assertContainsAll asserts that s contains every one of want.
func assertContainsAll(t *testing.T, s string, want []string, what string) {
	t.Helper()
	for _, w := range want {
		assert.Contains(t, s, w, what)
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
	// post gives the data of an event stream's last event: the answer,
	// when the gateway streams it as its go-sdk upstreams do.
	if ct := resp.Header.Get("Content-Type"); len(data) > 0 && (strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "text/event-stream")) {
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
		func(t *testing.T) mcpClient { t.Helper(); return newSDKClientAt(t, lb.URL+"/mcp", era2026) },
		func(t *testing.T) mcpClient { t.Helper(); return newGoClientAt(t, lb.URL+"/mcp", era2026) },
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
