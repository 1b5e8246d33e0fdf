package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/redistest"
)

// fleet is three gateway replicas sharing one redis-server and one session
// key, behind a round-robin balancer without affinity.
type fleet struct {
	replicas []*gw
	lb       *httptest.Server
	served   []atomic.Int64
	down     []atomic.Bool
}

func startFleet(t *testing.T, d *demo, rs *redistest.Server, n int) *fleet {
	t.Helper()
	cfg := fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  session_key: {value: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}
catalog:
  list_changed_debounce: 50ms
redis:
  url: %q
  key_prefix: "fleet-%s:"
policy:
  rate_limits:
    per_upstream_overrides:
      orders: {rate: 0.001, burst: 6}
  kill_switches:
    resync_interval: 200ms
upstreams:
  - name: customers
    http: {url: %q}
  - name: orders
    http: {url: %q}
`, rs.URL(), t.Name(), d.customers.url(), d.orders.url())
	f := &fleet{served: make([]atomic.Int64, n), down: make([]atomic.Bool, n)}
	targets := make([]*url.URL, n)
	for i := range n {
		f.replicas = append(f.replicas, startGateway(t, cfg, true))
		targets[i] = mustParse(t, f.replicas[i].base)
	}
	var next atomic.Int64
	f.lb = httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			// Round robin over the replicas still up, as a balancer that
			// health-checks them would.
			for {
				i := int(next.Add(1) % int64(n))
				if !f.down[i].Load() {
					f.served[i].Add(1)
					r.SetURL(targets[i])
					return
				}
			}
		},
	})
	t.Cleanup(f.lb.Close)
	return f
}

func (f *fleet) url() string { return f.lb.URL + "/mcp" }

// TestThreeReplicas runs three replicas on loopback behind a round-robin
// balancer with one redis-server: a 2026-07-28 client spreads over all
// three, a 2025 session moves on when its replica stops, and a rate limit
// and a kill switch hold fleet-wide.
func TestThreeReplicas(t *testing.T) {
	rs := redistest.Start(t)
	d := startDemo(t)
	f := startFleet(t, d, rs, 3)

	t.Run("a 2026-07-28 client spreads over every replica", func(t *testing.T) {
		before := [3]int64{f.served[0].Load(), f.served[1].Load(), f.served[2].Load()}
		c := newSDKClientAt(t, f.url(), era2026)
		for i := range 9 {
			text, isErr, err := c.callText(t.Context(), "customers__lookup_customer", map[string]any{"id": fmt.Sprintf("c-%03d", i+1)}, nil)
			require.NoError(t, err)
			require.False(t, isErr, text)
		}
		for i := range 3 {
			assert.Greater(t, f.served[i].Load(), before[i], "replica %d served none of the calls", i)
		}
	})

	t.Run("a 2025 session moves to another replica", func(t *testing.T) {
		// Open the session on replica 0 directly, then stop replica 0 and
		// carry on through the balancer.
		c := initialized(t, f.replicas[0].url)
		r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
		require.Nil(t, r.Error)
		f.down[0].Store(true)
		require.NoError(t, f.replicas[0].stop())
		c.url = f.url()
		for i := range 4 {
			r := c.call("tools/call", fmt.Sprintf(`{"name":"customers__lookup_customer","arguments":{"id":"c-00%d"}}`, i+1))
			require.Nil(t, r.Error, "call %d after the replica stopped", i)
		}
		// The session's end is fleet-wide too: DELETE through one
		// replica, and no replica resumes it.
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, c.url, nil)
		require.NoError(t, err)
		req.Header.Set("Mcp-Session-Id", c.session)
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client is the point here.
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		// The replicas that hold the session drop it when the end is
		// published; then every replica answers 404.
		for _, r := range f.replicas[1:] {
			direct := *c
			direct.url = r.url
			require.Eventually(t, func() bool {
				resp, _ := direct.post(`{"jsonrpc":"2.0","id":99,"method":"tools/list","params":{}}`)
				return resp.StatusCode == http.StatusNotFound
			}, 5*time.Second, 10*time.Millisecond, "an ended session is still served by %s", r.base)
		}
	})

	t.Run("a rate limit holds fleet-wide", func(t *testing.T) {
		// orders allows a burst of 6, refilled once in 1000 s: whichever
		// replicas serve them, six calls pass and the rest are limited.
		c := newRawClient(t, f.url())
		var allowed, limited int
		for range 8 {
			_, r := c.modern(modernRequest{
				method: "tools/call", name: "orders__get_order",
				body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__get_order","arguments":{"id":"o-1001"},` + modernMeta + `}}`,
			})
			switch {
			case r.Error == nil:
				allowed++
			case r.Error.Code == -32061:
				limited++
			default:
				t.Fatalf("unexpected error %d %s", r.Error.Code, r.Error.Message)
			}
		}
		assert.Equal(t, 6, allowed)
		assert.Equal(t, 2, limited)
	})

	t.Run("a kill switch holds fleet-wide", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"scope": "tool", "target": "customers__lookup_customer", "reason": "fleet test", "ttl": "1m"})
		resp, err := http.Post(f.replicas[1].base+"/admin/v1/killswitches", "application/json", bytes.NewReader(body)) //nolint:forbidigo,noctx // test.
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)
		set := time.Now()
		for _, i := range []int{1, 2} {
			c := newRawClient(t, f.replicas[i].url)
			require.Eventually(t, func() bool {
				_, r := c.modern(modernRequest{
					method: "tools/call", name: "customers__lookup_customer",
					body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"customers__lookup_customer","arguments":{"id":"c-001"},` + modernMeta + `}}`,
				})
				return r.Error != nil && r.Error.Code == -32060
			}, 5*time.Second, 10*time.Millisecond, "replica %d never enforced the switch", i)
		}
		t.Logf("kill switch enforced on every replica %v after it was set", time.Since(set))
	})
}
