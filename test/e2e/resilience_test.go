package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// flaky wraps an upstream: it passes every request through, or, once
// failing is set, answers every tools/call with HTTP 500 (the rest of the
// protocol, pings and lists, still works, so only the breaker can stop the
// calls). It counts the tools/call requests it sees.
type flaky struct {
	next    http.Handler
	failing atomic.Bool
	calls   atomic.Int64
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if bytes.Contains(body, []byte(`"method":"tools/call"`)) {
			f.calls.Add(1)
			if f.failing.Load() {
				http.Error(w, "upstream is sick", http.StatusInternalServerError)
				return
			}
		}
	}
	f.next.ServeHTTP(w, r)
}

// upstreamState is one entry of GET /admin/v1/upstreams.
type upstreamState struct {
	Name     string `json:"name"`
	Breaker  string `json:"breaker"`
	Drained  bool   `json:"drained"`
	InFlight int    `json:"in_flight"`
}

// breakerState reads an upstream's breaker state from the admin API.
func breakerState(t *testing.T, g *gw, name string) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.base+"/admin/v1/upstreams", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client is the point here.
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var body struct {
		Upstreams []upstreamState `json:"upstreams"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	for _, u := range body.Upstreams {
		if u.Name == name {
			return u.Breaker
		}
	}
	t.Fatalf("upstream %q not listed", name)
	return ""
}

// TestCircuitBreaker trips the breaker of an upstream answering 500, checks
// that calls then fail fast without reaching it while another upstream
// serves on, and that the breaker half-opens and closes once the upstream
// recovers. Tool errors (isError) never trip it.
func TestCircuitBreaker(t *testing.T) {
	customers := startServer(t, func() http.Handler { return upstreams.CustomersHandler(nil) })
	f := &flaky{}
	orders := startServer(t, func() http.Handler {
		f.next = upstreams.OrdersHandler(nil)
		return f
	})
	g := startGateway(t, fmt.Sprintf(`
server: {listen: 127.0.0.1:0}
catalog: {list_changed_debounce: 50ms}
upstreams:
  - name: customers
    http: {url: %q}
  - name: orders
    http: {url: %q}
    breaker: {failures: 3, window: 1m, open_for: 200ms, half_open_probes: 1, scope: upstream}
    retry: {attempts: 1}
`, customers.url(), orders.url()), true)
	c := initialized(t, g.url)
	getOrder := func(id string) rpcResponse {
		return c.call("tools/call", fmt.Sprintf(`{"name":"orders__get_order","arguments":{"id":%q}}`, id))
	}

	// isError results are answers: ten of them leave the breaker closed.
	for range 10 {
		r := getOrder("o-nope")
		require.Nil(t, r.Error)
		require.Contains(t, string(r.Result), `"isError":true`)
	}
	require.Equal(t, "closed", breakerState(t, g, "orders"))

	// Three 500s trip it.
	f.failing.Store(true)
	for i := range 3 {
		r := getOrder("o-1002")
		require.NotNil(t, r.Error, "call %d", i)
		require.Equal(t, -32050, r.Error.Code, "call %d: the upstream's 500 is an upstream error", i)
	}
	require.Equal(t, "open", breakerState(t, g, "orders"))

	// Open: calls fail fast, never reaching the upstream.
	seen := f.calls.Load()
	for range 5 {
		r := getOrder("o-1002")
		require.NotNil(t, r.Error)
		require.Equal(t, -32064, r.Error.Code, r.Error.Message)
		var data struct {
			Upstream     string `json:"upstream"`
			State        string `json:"state"`
			RetryAfterMs int64  `json:"retryAfterMs"`
		}
		require.NoError(t, json.Unmarshal(r.Error.Data, &data))
		assert.Equal(t, "orders", data.Upstream)
		assert.Equal(t, "open", data.State)
		assert.Positive(t, data.RetryAfterMs)
		assert.LessOrEqual(t, data.RetryAfterMs, int64(200))
	}
	assert.Equal(t, seen, f.calls.Load(), "an open circuit sends nothing upstream")

	// The other upstream is unaffected.
	r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-004"}}`)
	require.Nil(t, r.Error)
	assert.Equal(t, "closed", breakerState(t, g, "customers"))

	// Recovery: after open_for the breaker half-opens, and one successful
	// probe closes it.
	f.failing.Store(false)
	require.Eventually(t, func() bool { return breakerState(t, g, "orders") == "half-open" },
		10*time.Second, 10*time.Millisecond)
	r = getOrder("o-1002")
	require.Nil(t, r.Error)
	assert.Contains(t, string(r.Result), "o-1002")
	assert.Equal(t, "closed", breakerState(t, g, "orders"))
	assert.Equal(t, seen+1, f.calls.Load(), "only the probe reached the upstream")

	// Every call wrote its audit record, the refused ones as circuit_open.
	require.Eventually(t, func() bool {
		data, err := readFile(g.auditPath)
		return err == nil && strings.Count(data, `"decision":"circuit_open"`) == 5 &&
			strings.Count(data, `"event":"tools/call"`) == 20
	}, 10*time.Second, 10*time.Millisecond)
}

// TestToolTimeout gives the slow export a short per-tool timeout: the
// client gets the timeout error naming it, and the upstream sees the call
// cancelled.
func TestToolTimeout(t *testing.T) {
	obs := upstreams.NewObserver()
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(obs) })
	g := startGateway(t, fmt.Sprintf(`
server: {listen: 127.0.0.1:0}
upstreams:
  - name: orders
    http: {url: %q}
    timeout: 20s
    timeouts:
      - {match: "export_*", timeout: 300ms}
`, orders.url()), true)
	c := initialized(t, g.url)

	r := c.call("tools/call", `{"name":"orders__export_orders","arguments":{"steps":1000,"delay_ms":100}}`)
	require.NotNil(t, r.Error)
	require.Equal(t, -32052, r.Error.Code, r.Error.Message)
	assert.Contains(t, r.Error.Message, "300ms")
	var data struct {
		Upstream  string `json:"upstream"`
		TimeoutMs int64  `json:"timeoutMs"`
	}
	require.NoError(t, json.Unmarshal(r.Error.Data, &data))
	assert.Equal(t, "orders", data.Upstream)
	assert.Equal(t, int64(300), data.TimeoutMs)

	select {
	case tool := <-obs.Cancelled():
		assert.Equal(t, "export_orders", tool)
	case <-time.After(10 * time.Second):
		t.Fatal("the upstream never saw the cancellation")
	}

	// Other tools keep the upstream's timeout.
	r = c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1002"}}`)
	require.Nil(t, r.Error)
	require.Eventually(t, func() bool {
		data, err := readFile(g.auditPath)
		return err == nil && strings.Contains(data, `"outcome":"timeout"`)
	}, 10*time.Second, 10*time.Millisecond)
}
