package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// TestDecisionsCountEveryCall sends tools/call requests of both protocol
// eras that end every way a call can end (answered, tool error, unknown
// tool, bad params, killed, denied, limited, drained, circuit open, refused
// on the headers, malformed envelopes, unknown sessions) and checks that
// mcpgw_decisions_total and the server duration histogram each count every
// one of them, with the tool label whenever the tool is a catalog tool.
func TestDecisionsCountEveryCall(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(nil) })
	sick := &flaky{}
	sick.failing.Store(true)
	customers := startServer(t, func() http.Handler {
		sick.next = upstreams.CustomersHandler(nil)
		return sick
	})
	g, _ := startGatewayTel(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp, orders:write, mcpgw:admin]
policy:
  rate_limits:
    per_principal_tool: {rate: 0.001, burst: 1}
upstreams:
  - name: orders
    http: {url: %q}
    scopes:
      tools: [{match: "cancel_*", scopes: [orders:write]}]
  - name: customers
    http: {url: %q}
    breaker: {failures: 1, window: 1m, open_for: 1h}
    retry: {attempts: 1}
`, resource, iss.URL(), orders.url(), customers.url()))

	// Each case is one principal, so the rate limit (one call per tool)
	// refuses only where a case means it to.
	n := 0
	token := func(scope string) string {
		n++
		return iss.Mint(map[string]any{"sub": fmt.Sprintf("user-%d", n), "scope": scope})
	}
	admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})
	legacy := func(scope string) *rawClient {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+token(scope))
		c.initialize()
		return c
	}
	sent := 0
	legacyCall := func(c *rawClient, params string) int {
		sent++
		c.nextID++
		resp, _ := c.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s}`, c.nextID, params))
		return resp.StatusCode
	}
	modern := func(tok string, header map[string]string, body string) int {
		sent++
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+tok)
		c.header.Set("Content-Type", "application/json")
		for k, v := range header {
			c.header.Set(k, v)
		}
		resp, _ := c.post(body)
		return resp.StatusCode
	}
	modernHeaders := func(name string) map[string]string {
		return map[string]string{"Mcp-Protocol-Version": era2026, "Mcp-Method": "tools/call", "Mcp-Name": name}
	}
	modernBody := func(name, args string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,%s}}`, name, args, modernMeta)
	}

	// 2025 era.
	c := legacy("mcp orders:write")
	legacyCall(c, `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)   // allowed
	legacyCall(c, `{"name":"orders__list_orders","arguments":{"id":"o-9999"}}`) // allowed, maybe a tool error
	legacyCall(c, `{"name":"orders__get_order","arguments":{"id":"o-1002"}}`)   // limited
	legacyCall(c, `{"name":"orders__no_such_tool","arguments":{}}`)             // unknown tool
	legacyCall(c, `{"arguments":{}}`)                                           // no name
	legacyCall(legacy("mcp"), `{"name":"orders__cancel_order","arguments":{"id":"o-1001"}}`)
	legacyCall(legacy("mcp"), `{"name":"customers__lookup_customer","arguments":{"id":"c-004"}}`) // upstream 500
	legacyCall(legacy("mcp"), `{"name":"customers__lookup_customer","arguments":{"id":"c-004"}}`) // circuit open
	stale := legacy("mcp")
	stale.session = "s1.not-a-session"
	require.Equal(t, http.StatusNotFound, legacyCall(stale, `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`))
	stale.session = ""
	require.Equal(t, http.StatusBadRequest, legacyCall(stale, `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`))

	// 2026-07-28.
	modern(token("mcp"), modernHeaders("orders__get_order"), modernBody("orders__get_order", `{"id":"o-1001"}`))
	lim := token("mcp")
	modern(lim, modernHeaders("orders__get_order"), modernBody("orders__get_order", `{"id":"o-1001"}`))
	require.Equal(t, http.StatusTooManyRequests, modern(lim, modernHeaders("orders__get_order"), "never read"))
	require.Equal(t, http.StatusForbidden, modern(token("mcp"), modernHeaders("orders__cancel_order"), "never read"))
	modern(token("mcp"), modernHeaders("orders__nope"), modernBody("orders__nope", `{}`))
	modern(token("mcp"), modernHeaders("orders__get_order"), modernBody("orders__list_orders", `{}`)) // name mismatch
	modern(token("mcp"), modernHeaders("orders__list_orders"), modernBody("orders__get_order", `{}`))
	modern(token("mcp"), modernHeaders("orders__nope"), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__nope"}}`) // no _meta
	modern(token("mcp"), map[string]string{"Mcp-Protocol-Version": era2026, "Mcp-Method": "tools/call"}, modernBody("orders__get_order", `{}`))
	modern(token("mcp"), map[string]string{"Mcp-Protocol-Version": "2099-01-01", "Mcp-Method": "tools/call", "Mcp-Name": "orders__get_order"}, modernBody("orders__get_order", `{}`))
	modern(token("mcp"), modernHeaders("orders__nope"), `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`) // not JSON

	// Kill switch and drain, in both eras.
	code, body := adminDo(t, g.base, admin, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"orders__list_orders","reason":"incident 42"}`)
	require.Equal(t, http.StatusCreated, code, body)
	legacyCall(legacy("mcp"), `{"name":"orders__list_orders","arguments":{}}`)
	require.Equal(t, http.StatusForbidden, modern(token("mcp"), modernHeaders("orders__list_orders"), "never read"))
	code, body = adminDo(t, g.base, admin, http.MethodPost, "/admin/v1/upstreams/orders/drain", `{"reason":"maintenance"}`)
	require.Equal(t, http.StatusOK, code, body)
	legacyCall(legacy("mcp"), `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	require.Equal(t, http.StatusServiceUnavailable, modern(token("mcp"), modernHeaders("orders__get_order"), "never read"))

	fams := scrape(t, g.base+"/metrics")
	total := 0.0
	byDecision := map[string]float64{}
	for _, m := range fams["mcpgw_decisions_total"].GetMetric() {
		total += m.GetCounter().GetValue()
		byDecision[label(m, "decision")] += m.GetCounter().GetValue()
	}
	assert.InDelta(t, float64(sent), total, 0, "every tools/call is a decision: %v", byDecision)
	for _, d := range []string{"allowed", "limited", "invalid", "denied", "circuit_open", "killed", "drained"} {
		assert.Positive(t, byDecision[d], "decision %s counted", d)
	}

	timed := uint64(0)
	for _, m := range series(fams["mcp_server_operation_duration_seconds"], map[string]string{"mcp_method_name": "tools/call"}) {
		timed += m.GetHistogram().GetSampleCount()
		if strings.HasPrefix(label(m, "error_type"), "-3206") { // killed, limited, drained: the tool is known.
			assert.NotEmpty(t, label(m, "gen_ai_tool_name"), "refused calls of a catalog tool carry its name: %v", m)
		}
	}
	assert.Equal(t, uint64(sent), timed, "every tools/call is timed")
	killed := uint64(0)
	for _, m := range series(fams["mcp_server_operation_duration_seconds"], map[string]string{"gen_ai_tool_name": "orders__list_orders", "error_type": "-32060"}) {
		killed += m.GetHistogram().GetSampleCount()
	}
	assert.Equal(t, uint64(2), killed, "both eras' killed calls, under the tool's name")
}

// label is the value of one label of a metric, "" when absent.
func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
