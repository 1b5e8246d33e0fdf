package gateway

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readyz is GET /readyz, decoded.
func readyz(t *testing.T, tg *testGateway) (int, map[string]any) {
	t.Helper()
	w := tg.do(t, http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
	return w.Code, decode(t, w.Body.Bytes())
}

// TestHealthEndpoints: /healthz is always ok; /readyz is ready once every
// required upstream has listed its catalog (an optional one does not
// count), details each upstream, and turns 503 while the gateway drains.
func TestHealthEndpoints(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
  - name: extra
    optional: true
    http:
      url: http://extra.invalid/mcp
`
	orders := newLiveFake("orders", toolsCatalog(`{"name":"a","inputSchema":{"type":"object"}}`, `{"name":"b","inputSchema":{"type":"object"}}`))
	extra := newLiveFake("extra", nil) // never lists
	tg := buildGateway(t, yaml, nil, orders, extra)

	for _, m := range []string{http.MethodGet, http.MethodHead} {
		w := tg.do(t, m, "/healthz", "", nil)
		assert.Equal(t, http.StatusOK, w.Code, m)
	}
	assert.JSONEq(t, `{"status":"ok"}`, tg.do(t, http.MethodGet, "/healthz", "", nil).Body.String())

	code, body := readyz(t, tg)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready", body["status"])
	assert.Equal(t, "loaded", body["killswitches"])
	ups, _ := body["upstreams"].([]any)
	require.Len(t, ups, 2)
	assert.Equal(t, map[string]any{"name": "orders", "required": true, "loaded": true, "available": true, "tools": 2.0, "breaker": "", "in_flight": 0.0, "tools_dropped_name": 0.0, "tools_clashed": 0.0}, ups[0])
	assert.Equal(t, map[string]any{"name": "extra", "required": false, "loaded": false, "available": true, "tools": 0.0, "breaker": "", "in_flight": 0.0, "tools_dropped_name": 0.0, "tools_clashed": 0.0}, ups[1])

	sid := tg.session(t, nil)
	_, body = readyz(t, tg)
	assert.InDelta(t, 1, body["sessions"], 0)

	tg.beginDrain()
	code, body = readyz(t, tg)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "draining", body["status"])
	w, _ := tg.post(t, legacyCall(sid, 1, "orders__a", `{}`))
	assert.Equal(t, -32053, errorCode(t, w), "no new calls while draining")
}

// TestReadyzWhileLoading: a required upstream that has not listed its
// catalog keeps the gateway from being ready.
func TestReadyzWhileLoading(t *testing.T) {
	slow := newLiveFake("orders", nil)
	tg := buildGateway(t, fakesYAML("orders"), nil, slow)
	require.False(t, tg.Ready())
	code, body := readyz(t, tg)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "loading", body["status"])
	ups, _ := body["upstreams"].([]any)
	require.Len(t, ups, 1)
	u, _ := ups[0].(map[string]any)
	assert.Equal(t, false, u["loaded"])
}

// TestReadyzWaitsForEveryFirstListing: /readyz is 503 while a required
// upstream's first listing is under way, and turns 200 once that listing
// has either answered or failed: an upstream that is down does not hold
// readiness forever, and shows as not loaded and unavailable.
func TestReadyzWaitsForEveryFirstListing(t *testing.T) {
	tests := []struct {
		name      string
		settle    func(f *liveFake)
		loaded    bool
		available bool
		tools     float64
	}{
		{
			name:   "the slow upstream answers",
			settle: func(f *liveFake) { f.setCatalog(toolsCatalog(`{"name":"refund","inputSchema":{"type":"object"}}`)) },
			loaded: true, available: true, tools: 1,
		},
		{
			name:   "the slow upstream fails",
			settle: (*liveFake).failFirst,
			loaded: false, available: false, tools: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orders := newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
			payments := newLiveFake("payments", nil)
			tg := buildGateway(t, fakesYAML("orders", "payments"), nil, orders, payments)

			code, body := readyz(t, tg)
			assert.Equal(t, http.StatusServiceUnavailable, code, "payments is still listing")
			assert.Equal(t, "loading", body["status"])

			tt.settle(payments)
			// The catalog loop rebuilds after its debounce; readiness
			// follows the rebuild.
			require.Eventually(t, tg.Ready, 10*time.Second, time.Millisecond)
			code, body = readyz(t, tg)
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, "ready", body["status"])
			ups, _ := body["upstreams"].([]any)
			require.Len(t, ups, 2)
			u, _ := ups[1].(map[string]any)
			assert.Equal(t, "payments", u["name"])
			assert.Equal(t, tt.loaded, u["loaded"])
			assert.Equal(t, tt.available, u["available"])
			assert.InDelta(t, tt.tools, u["tools"], 0)
		})
	}
}

// TestChainRecoversPanics: a handler that panics answers 500 and the
// gateway goes on serving.
func TestChainRecoversPanics(t *testing.T) {
	orders := newLiveFake("orders", toolsCatalog(`{"name":"a","inputSchema":{"type":"object"}}`))
	tg := buildGateway(t, fakesYAML("orders"), nil, orders)
	orders.panics.Store(true) // /readyz reads the catalog
	w := tg.do(t, http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusInternalServerError, w.Code)
	assert.Equal(t, "internal error\n", w.Body.String())
	orders.panics.Store(false)
	w = tg.do(t, http.MethodGet, "/readyz", "", nil)
	assert.Equal(t, http.StatusOK, w.Code)
}

// TestRequestIDs: a well-formed X-Request-ID is kept and echoed; anything
// else is replaced by a fresh id, so a caller cannot inject into logs.
func TestRequestIDs(t *testing.T) {
	tg := newTestGateway(t, fakesYAML("orders"), newFake("orders"))
	fresh := regexp.MustCompile(`^[0-9a-f]{32}$`)
	tests := []struct {
		name, id string
		kept     bool
	}{
		{"well-formed", "abc-123_XYZ", true},
		{"absent", "", false},
		{"with a space", "abc 123", false},
		{"with a newline", "abc\n123", false},
		{"too long", strings.Repeat("a", 129), false},
		{"not ASCII", "abcé", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tg.do(t, http.MethodGet, "/healthz", "", map[string]string{"X-Request-Id": tt.id})
			got := w.Header().Get("X-Request-Id")
			if tt.kept {
				assert.Equal(t, tt.id, got)
				return
			}
			assert.NotEqual(t, tt.id, got)
			assert.Regexp(t, fresh, got)
		})
	}
}

// TestOriginsAndCORS: /mcp refuses an Origin it does not allow (DNS
// rebinding); by default the loopback origins are allowed. With CORS on,
// preflights are answered and allowed origins get the CORS headers.
func TestOriginsAndCORS(t *testing.T) {
	const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}}`
	post := func(tg *testGateway, origin string) *httptest.ResponseRecorder {
		t.Helper()
		return tg.do(t, http.MethodPost, "/mcp", initBody, map[string]string{"Content-Type": "application/json", "Origin": origin})
	}

	def := newTestGateway(t, fakesYAML("orders"), newFake("orders"))
	for _, tt := range []struct {
		origin string
		status int
	}{
		{"", http.StatusOK},
		{"http://localhost:3000", http.StatusOK},
		{"http://127.0.0.1", http.StatusOK},
		{"http://[::1]:8080", http.StatusOK},
		{"https://evil.example", http.StatusForbidden},
		{"file://localhost", http.StatusForbidden},
		{"::not a url", http.StatusForbidden},
	} {
		assert.Equal(t, tt.status, post(def, tt.origin).Code, "origin %q", tt.origin)
	}
	assert.Empty(t, post(def, "http://localhost:3000").Header().Get("Access-Control-Allow-Origin"), "CORS is off by default")

	const corsYAML = `server:
  listen: 127.0.0.1:0
  allowed_origins: ["https://app.example", "https://other.example"]
  cors:
    enabled: true
    allowed_origins: ["https://app.example"]
    max_age: 1m
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
`
	tg := newTestGateway(t, corsYAML, newFake("orders"))
	res := post(tg, "https://app.example")
	assert.Equal(t, http.StatusOK, res.Code)
	assert.Equal(t, "https://app.example", res.Header().Get("Access-Control-Allow-Origin"))
	assert.Contains(t, res.Header().Get("Access-Control-Expose-Headers"), "Mcp-Session-Id")

	res = post(tg, "https://other.example")
	assert.Equal(t, http.StatusOK, res.Code, "allowed, but not a CORS origin")
	assert.Empty(t, res.Header().Get("Access-Control-Allow-Origin"))
	assert.Equal(t, http.StatusForbidden, post(tg, "http://localhost:3000").Code, "an explicit list replaces the loopback default")

	w := tg.do(t, http.MethodOptions, "/mcp", "", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
	assert.Equal(t, http.StatusNoContent, w.Code)
	assert.Equal(t, "60", w.Header().Get("Access-Control-Max-Age"))
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Headers"), "Mcp-Protocol-Version")
	assert.Contains(t, w.Header().Get("Access-Control-Allow-Methods"), "DELETE")

	anyOrigin := newTestGateway(t, "server:\n  listen: 127.0.0.1:0\n  allowed_origins: [\"*\"]\nupstreams:\n  - name: orders\n    http:\n      url: http://orders.invalid/mcp\n", newFake("orders"))
	assert.Equal(t, http.StatusOK, post(anyOrigin, "https://anywhere.example").Code)
}

// TestUnknownPaths: the router answers 404 for what it does not serve,
// and 405 for a method a health route does not take.
func TestUnknownPaths(t *testing.T) {
	tg := newTestGateway(t, fakesYAML("orders"), newFake("orders"))
	assert.Equal(t, http.StatusNotFound, tg.do(t, http.MethodGet, "/nope", "", nil).Code)
	assert.Equal(t, http.StatusNotFound, tg.do(t, http.MethodGet, "/metrics", "", nil).Code, "no metrics without telemetry")
	assert.Equal(t, http.StatusMethodNotAllowed, tg.do(t, http.MethodPost, "/healthz", "", nil).Code)
}
