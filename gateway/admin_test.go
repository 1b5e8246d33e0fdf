package gateway

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream"
)

// adminYAML is an unauthenticated gateway (the admin API is then open to
// the local operator) over orders and payments, with profiling on.
const adminYAML = `server:
  listen: 127.0.0.1:0
telemetry:
  profiling: true
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
  - name: payments
    http:
      url: http://payments.invalid/mcp
`

func adminGateway(t *testing.T, opts *Options) *testGateway {
	t.Helper()
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`, `{"name":"cancel_order","inputSchema":{"type":"object"}}`)
	payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`)
	tg := buildGateway(t, adminYAML, opts, orders, payments)
	require.True(t, tg.Ready())
	return tg
}

// decode decodes a JSON answer body.
func decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "body %s", body)
	return m
}

// TestAdminKillSwitches: a kill switch added through the admin API stops
// the calls it targets at once, in both eras, until it is removed; every
// change is audited with its actor. Invalid switches are refused with
// 400 and a reason.
func TestAdminKillSwitches(t *testing.T) {
	tg := adminGateway(t, nil)
	sid := tg.session(t, nil)
	call := func(tool string) (int, int) {
		w, _ := tg.post(t, legacyCall(sid, 1, tool, `{}`))
		mw, _ := tg.post(t, modernCall(1, tool, `{}`))
		return errorCode(t, w), errorCode(t, mw)
	}

	w := tg.do(t, http.MethodGet, "/admin/v1/killswitches", "", nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"killswitches":[],"degraded":false}`, w.Body.String())

	w = tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"orders__cancel_*","reason":"incident 9","ticket":"INC-9","ttl":"1h"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	added := decode(t, w.Body.Bytes())
	id, _ := added["id"].(string)
	require.NotEmpty(t, id)
	assert.Equal(t, "local-operator", added["actor"])
	assert.NotEmpty(t, added["expires"], "a ttl sets an expiry")

	legacy, modern := call("orders__cancel_order")
	assert.Equal(t, -32060, legacy)
	assert.Equal(t, -32060, modern)
	legacy, modern = call("orders__get_order")
	assert.Zero(t, legacy, "another tool of the upstream")
	assert.Zero(t, modern)

	w = tg.do(t, http.MethodGet, "/admin/v1/killswitches", "", nil)
	list, _ := decode(t, w.Body.Bytes())["killswitches"].([]any)
	require.Len(t, list, 1)
	first, _ := list[0].(map[string]any)
	assert.Equal(t, id, first["id"])

	w = tg.do(t, http.MethodDelete, "/admin/v1/killswitches/"+id, "", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	legacy, _ = call("orders__cancel_order")
	assert.Zero(t, legacy, "the switch is lifted")
	w = tg.do(t, http.MethodDelete, "/admin/v1/killswitches/"+id, "", nil)
	assert.Equal(t, http.StatusNotFound, w.Code)

	invalid := []struct{ name, body string }{
		{"not JSON", `{`},
		{"unknown field", `{"scope":"global","reason":"x","force":true}`},
		{"bad ttl", `{"scope":"global","reason":"x","ttl":"soon"}`},
		{"negative ttl", `{"scope":"global","reason":"x","ttl":"-1h"}`},
		{"no reason", `{"scope":"global"}`},
		{"unknown scope", `{"scope":"planet","reason":"x"}`},
		{"unknown upstream", `{"scope":"upstream","target":"nope","reason":"x"}`},
		{"invalid glob", `{"scope":"tool","target":"[","reason":"x"}`},
		{"global with a target", `{"scope":"global","target":"x","reason":"x"}`},
	}
	for _, tt := range invalid {
		w := tg.do(t, http.MethodPost, "/admin/v1/killswitches", tt.body, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, "%s: %s", tt.name, w.Body.String())
		assert.NotEmpty(t, decode(t, w.Body.Bytes())["error"], tt.name)
	}

	// Break glass during an outage: a glob that matches no tool now is
	// accepted, with a warning.
	w = tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"nope_*","reason":"x"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	unmatched := decode(t, w.Body.Bytes())
	assert.Contains(t, unmatched["warning"], `no tool in the catalog matches "nope_*"`)
	w = tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"orders__*","reason":"x"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	assert.NotContains(t, decode(t, w.Body.Bytes()), "warning", "a glob that matches gets no warning")

	recs := tg.auditEvents(t, "killswitch")[:2]
	require.Len(t, recs, 2)
	assert.Equal(t, "add", recs[0]["action"])
	assert.Equal(t, "remove", recs[1]["action"])
	for _, rec := range recs {
		assert.Equal(t, id, rec["switch_id"])
		assert.Equal(t, "local-operator", rec["actor"])
	}
	assert.Equal(t, "INC-9", recs[0]["ticket"])
	assert.Equal(t, "orders__cancel_*", recs[0]["target"])
}

// TestAdminDrains: a drained upstream refuses calls (503 on a modern
// call's headers) until undrained; GET /admin/v1/upstreams reports it.
func TestAdminDrains(t *testing.T) {
	tg := adminGateway(t, nil)
	sid := tg.session(t, nil)

	w := tg.do(t, http.MethodPost, "/admin/v1/upstreams/orders/drain", `{"reason":"maintenance"}`, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"upstream":"orders","drained":true}`, w.Body.String())

	lw, _ := tg.post(t, legacyCall(sid, 1, "orders__get_order", `{}`))
	assert.Equal(t, -32062, errorCode(t, lw))
	mw, _ := tg.post(t, modernCall(1, "orders__get_order", `{}`))
	assert.Equal(t, http.StatusServiceUnavailable, mw.Code)
	assert.Equal(t, -32062, errorCode(t, mw))
	pw, _ := tg.post(t, modernCall(1, "payments__refund", `{}`))
	assert.Zero(t, errorCode(t, pw), "other upstreams serve")

	w = tg.do(t, http.MethodGet, "/admin/v1/upstreams", "", nil)
	require.Equal(t, http.StatusOK, w.Code)
	ups, _ := decode(t, w.Body.Bytes())["upstreams"].([]any)
	require.Len(t, ups, 2)
	for _, u := range ups {
		m, _ := u.(map[string]any)
		assert.Equal(t, m["name"] == "orders", m["drained"], "%v", m)
		assert.Equal(t, true, m["available"])
	}
	drained, _ := decode(t, w.Body.Bytes())["drained"].([]any)
	assert.Len(t, drained, 1)

	refusals := []struct {
		name, path, body string
		status           int
	}{
		{"no reason", "/admin/v1/upstreams/orders/drain", ``, http.StatusBadRequest},
		{"not JSON", "/admin/v1/upstreams/orders/drain", `{`, http.StatusBadRequest},
		{"unknown upstream", "/admin/v1/upstreams/nope/drain", `{"reason":"x"}`, http.StatusBadRequest},
		{"undrain what is not drained", "/admin/v1/upstreams/payments/undrain", ``, http.StatusNotFound},
	}
	for _, rf := range refusals {
		w := tg.do(t, http.MethodPost, rf.path, rf.body, nil)
		assert.Equal(t, rf.status, w.Code, "%s: %s", rf.name, w.Body.String())
	}

	w = tg.do(t, http.MethodPost, "/admin/v1/upstreams/orders/undrain", ``, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"upstream":"orders","drained":false}`, w.Body.String())
	lw, _ = tg.post(t, legacyCall(sid, 2, "orders__get_order", `{}`))
	assert.Zero(t, errorCode(t, lw))

	recs := tg.auditEvents(t, "drain")
	require.Len(t, recs, 2)
	assert.Equal(t, "drain", recs[0]["action"])
	assert.Equal(t, "maintenance", recs[0]["reason"])
	assert.Equal(t, "undrain", recs[1]["action"])
	assert.Equal(t, "orders", recs[1]["target"])
	calls := tg.auditEvents(t, "tools/call")
	decisions := make([]any, 0, len(calls))
	for _, rec := range calls {
		decisions = append(decisions, rec["decision"])
	}
	assert.Equal(t, []any{"drained", "drained", "allowed", "allowed"}, decisions)
}

// TestAdminKeyRotation: the JWKS is public; rotating the identity
// assertion key makes a fresh key current, and the previous one stays
// published while an assertion it signed is unexpired.
func TestAdminKeyRotation(t *testing.T) {
	tg := adminGateway(t, nil)
	kids := func(w *httptest.ResponseRecorder) []string {
		t.Helper()
		require.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, "application/jwk-set+json", w.Header().Get("Content-Type"))
		ks, _ := decode(t, w.Body.Bytes())["keys"].([]any)
		out := make([]string, 0, len(ks))
		for _, k := range ks {
			m, _ := k.(map[string]any)
			kid, _ := m["kid"].(string)
			out = append(out, kid)
		}
		return out
	}
	w := tg.do(t, http.MethodGet, "/.well-known/mcpgw/jwks.json", "", nil)
	assert.Contains(t, w.Header().Get("Cache-Control"), "max-age")
	first := kids(w)
	require.Len(t, first, 1)

	rotated := kids(tg.do(t, http.MethodPost, "/admin/v1/keys/rotate", "", nil))
	require.Len(t, rotated, 1, "a key that signed nothing is not kept")
	assert.NotEqual(t, first, rotated)

	_, err := tg.asserter.Assert("https://gw.example", "orders", time.Minute, &upstream.Identity{Subject: "alice"})
	require.NoError(t, err)
	again := kids(tg.do(t, http.MethodPost, "/admin/v1/keys/rotate", "", nil))
	require.Len(t, again, 2, "the key that signed an unexpired assertion stays published")
	assert.Equal(t, rotated[0], again[1])
	assert.Equal(t, again, kids(tg.do(t, http.MethodGet, "/.well-known/mcpgw/jwks.json", "", nil)))
}

// TestAdminLogLevel: the log level is read and changed at run time; a
// gateway without a level variable has no such endpoint.
func TestAdminLogLevel(t *testing.T) {
	level := new(slog.LevelVar)
	tg := adminGateway(t, &Options{LogLevel: level})
	w := tg.do(t, http.MethodGet, "/admin/v1/loglevel", "", nil)
	require.Equal(t, http.StatusOK, w.Code)
	assert.JSONEq(t, `{"level":"info"}`, w.Body.String())

	for _, l := range []struct {
		name string
		want slog.Level
	}{{"debug", slog.LevelDebug}, {"error", slog.LevelError}, {"warn", slog.LevelWarn}, {"info", slog.LevelInfo}} {
		w = tg.do(t, http.MethodPut, "/admin/v1/loglevel", `{"level":"`+l.name+`"}`, nil)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		assert.Equal(t, l.want, level.Level())
		w = tg.do(t, http.MethodGet, "/admin/v1/loglevel", "", nil)
		assert.JSONEq(t, `{"level":"`+l.name+`"}`, w.Body.String())
	}
	for _, body := range []string{`{"level":"trace"}`, `{"level":"info","extra":1}`, `info`} {
		w = tg.do(t, http.MethodPut, "/admin/v1/loglevel", body, nil)
		assert.Equal(t, http.StatusBadRequest, w.Code, body)
	}
	assert.Equal(t, slog.LevelInfo, level.Level(), "refused changes change nothing")

	plain := adminGateway(t, nil)
	w = plain.do(t, http.MethodGet, "/admin/v1/loglevel", "", nil)
	assert.Equal(t, http.StatusNotFound, w.Code)
}

// TestAdminProfiling: with telemetry.profiling the pprof endpoints are
// served under /admin/v1/debug/pprof/.
func TestAdminProfiling(t *testing.T) {
	tg := adminGateway(t, nil)
	for _, p := range []string{"/admin/v1/debug/pprof/", "/admin/v1/debug/pprof/heap?debug=1", "/admin/v1/debug/pprof/goroutine?debug=1", "/admin/v1/debug/pprof/cmdline", "/admin/v1/debug/pprof/symbol"} {
		w := tg.do(t, http.MethodGet, p, "", nil)
		assert.Equal(t, http.StatusOK, w.Code, p)
		assert.NotEmpty(t, w.Body.String(), p)
	}
	w := tg.do(t, http.MethodGet, "/admin/v1/debug/pprof/", "", nil)
	assert.Contains(t, w.Body.String(), "heap")

	off := newTestGateway(t, fakesYAML("orders"), newFake("orders"))
	w = off.do(t, http.MethodGet, "/admin/v1/debug/pprof/", "", nil)
	assert.Equal(t, http.StatusNotFound, w.Code, "profiling is off by default")
}
