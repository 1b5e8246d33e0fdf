package gateway

import (
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// toolsListed is the tool names a modern tools/list returns, and the
// same through a 2025-era session.
func toolsListed(t *testing.T, tg *testGateway, sid string) (modern, legacy []string) {
	t.Helper()
	w, _ := tg.post(t, modernRequest(1, "tools/list", "", "", `{}`))
	modern = listed(t, resultOf(t, w), "tools", "name")
	w, _ = tg.post(t, legacyRequest(sid, 2, "tools/list", `{}`))
	legacy = listed(t, resultOf(t, w), "tools", "name")
	return modern, legacy
}

// TestKillSwitchListedAtOnce: the lists hide a killed tool as soon as the
// admin call that set the switch returns, and show it again as soon as
// the call that lifted it returns, with no wait for the catalog's
// list_changed debounce.
func TestKillSwitchListedAtOnce(t *testing.T) {
	tg := adminGateway(t, nil)
	sid := tg.session(t, nil)

	w := tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"orders__cancel_order","reason":"incident 10"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	id, _ := decode(t, w.Body.Bytes())["id"].(string)
	modern, legacy := toolsListed(t, tg, sid)
	assert.NotContains(t, modern, "orders__cancel_order", "set, then listed at once")
	assert.NotContains(t, legacy, "orders__cancel_order")
	assert.Contains(t, modern, "orders__get_order")

	w = tg.do(t, http.MethodDelete, "/admin/v1/killswitches/"+id, "", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	modern, legacy = toolsListed(t, tg, sid)
	assert.Contains(t, modern, "orders__cancel_order", "lifted, then listed at once")
	assert.Contains(t, legacy, "orders__cancel_order")
}

// TestKillSwitchExpireAudited: the expire record of a switch with a TTL
// is written at its expiry. The gateway runs in a synctest bubble, whose
// clock moves only when every goroutine waits: the record's time must be
// the switch's expiry exactly, and the record must be in the sink by then
// plus the audit stream's flush delay.
func TestKillSwitchExpireAudited(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tg := adminGateway(t, nil)
		const ttl = 90*time.Second + 300*time.Millisecond
		w := tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"upstream","target":"payments","reason":"r","ttl":"`+ttl.String()+`"}`, nil)
		require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
		expires, err := time.Parse(time.RFC3339Nano, decode(t, w.Body.Bytes())["expires"].(string))
		require.NoError(t, err)

		time.Sleep(ttl)
		synctest.Wait()
		w = tg.do(t, http.MethodGet, "/admin/v1/killswitches", "", nil)
		assert.JSONEq(t, `{"killswitches":[],"degraded":false}`, w.Body.String())
		time.Sleep(audit.FlushDelay)
		synctest.Wait()
		var expire map[string]any
		for _, rec := range tg.audit.records(t) {
			if rec["event"] == "killswitch" && rec["action"] == "expire" {
				expire = rec
			}
		}
		require.NotNil(t, expire, "the expire record is written by the expiry")
		at, err := time.Parse(time.RFC3339Nano, expire["time"].(string))
		require.NoError(t, err)
		assert.True(t, at.Equal(expires), "written at %v, expires %v", at, expires)
	})
}

// TestReadyzCountsWhatClientsSee: an upstream's tool count in /readyz is
// what its tools contribute to the merged catalog, after the configured
// include and exclude filters, not what the upstream listed.
func TestReadyzCountsWhatClientsSee(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
    tools:
      exclude: ["cancel_*"]
  - name: payments
    http:
      url: http://payments.invalid/mcp
    tools:
      include: ["refund"]
`
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`, `{"name":"cancel_order","inputSchema":{"type":"object"}}`)
	payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`, `{"name":"charge","inputSchema":{"type":"object"}}`, `{"name":"void","inputSchema":{"type":"object"}}`)
	tg := newTestGateway(t, yaml, orders, payments)
	code, body := readyz(t, tg)
	require.Equal(t, http.StatusOK, code)
	ups, _ := body["upstreams"].([]any)
	require.Len(t, ups, 2)
	counts := map[string]any{}
	for _, u := range ups {
		m, _ := u.(map[string]any)
		counts[m["name"].(string)] = m["tools"]
	}
	assert.Equal(t, map[string]any{"orders": 1.0, "payments": 1.0}, counts)
}

// TestIndex: / answers an index of the endpoints, as JSON by default and
// as HTML to a browser, and names the MCP endpoint.
func TestIndex(t *testing.T) {
	tg := adminGateway(t, nil)
	tests := []struct {
		name, accept, contentType string
	}{
		{"no Accept", "", "application/json"},
		{"curl", "*/*", "application/json"},
		{"JSON", "application/json", "application/json"},
		{"browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tg.do(t, http.MethodGet, "/", "", map[string]string{"Accept": tt.accept})
			require.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, tt.contentType, w.Header().Get("Content-Type"))
			assert.Contains(t, w.Body.String(), "/mcp")
			assert.Contains(t, w.Body.String(), "/readyz")
			if tt.contentType == "application/json" {
				eps, _ := decode(t, w.Body.Bytes())["endpoints"].([]any)
				assert.NotEmpty(t, eps)
			}
		})
	}
	assert.Equal(t, http.StatusNotFound, tg.do(t, http.MethodGet, "/nope", "", nil).Code, "/ is not a catch-all")
}
