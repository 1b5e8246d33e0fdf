package e2e

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestShutdownUnderLoad sends 2,000 tools/call at concurrency 16 to an
// mcpgw process and sends it SIGTERM mid-run, with a long call in flight.
// As docs/operations.md ("Shutdown") says: /readyz answers 503 before any
// call is refused; for server.shutdown_delay calls are served as before
// (no refused connection); then new calls get -32053 while the long call
// finishes; every call either succeeds or gets -32053; the process exits
// cleanly; and the audit file has exactly one record per call.
func TestShutdownUnderLoad(t *testing.T) {
	const (
		total       = 2000
		concurrency = 16
		sigtermAt   = 400 // answers before SIGTERM
		delay       = 2 * time.Second
		stepMs      = 30     // each call's time upstream
		longMs      = 10_000 // the long call outlives the load and the delay
	)
	customers := startDemoUpstreamProc(t, "customers")
	orders := startDemoUpstreamProc(t, "orders")
	p := startProc(t, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  shutdown_delay: %s
  shutdown_timeout: 30s
upstreams:
  - {name: customers, http: {url: %q}}
  - {name: orders, http: {url: %q}, timeout: 60s}
`, delay, customers, orders), true)

	type result struct {
		status, code int
		err          error
	}
	hc := &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxIdleConns: concurrency},
	}
	t.Cleanup(hc.CloseIdleConnections)
	args := fmt.Sprintf(`{"steps":1,"delay_ms":%d}`, stepMs)

	// The long call is in flight before the load starts, and still when
	// the delay ends.
	longDone := make(chan result, 1)
	go func() {
		lc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{}}
		defer lc.CloseIdleConnections()
		status, r, err := modernCall(lc, p.url, "", "sigterm-long", "orders__export_orders", fmt.Sprintf(`{"steps":1,"delay_ms":%d}`, longMs))
		longDone <- result{status: status, code: errCode(r), err: err}
	}()
	require.Eventually(t, func() bool { return inFlightCalls(t, p) == 1 }, 30*time.Second, 5*time.Millisecond, "the long call never started")

	results := make([]result, total)
	var answered, refused atomic.Int64 // refused: answers with -32053
	var sigOnce sync.Once
	sigterm := make(chan struct{})
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range concurrency {
		wg.Go(func() {
			for i := range jobs {
				status, r, err := modernCall(hc, p.url, "", fmt.Sprintf("sigterm-%05d", i), "orders__export_orders", args)
				results[i] = result{status: status, code: errCode(r), err: err}
				if errCode(r) == -32053 {
					refused.Add(1)
				}
				if err == nil && answered.Add(1) == sigtermAt {
					sigOnce.Do(func() { close(sigterm) })
				}
			}
		})
	}
	go func() {
		defer close(jobs)
		for i := range total {
			jobs <- i
		}
	}()

	<-sigterm
	require.NoError(t, p.signal(syscall.SIGTERM))

	// /readyz turns 503 before any call is refused.
	require.Eventually(t, func() bool { return p.readyz() == http.StatusServiceUnavailable }, 30*time.Second, 5*time.Millisecond)
	assert.Zero(t, refused.Load(), "a call was refused before /readyz answered 503")
	answeredAt503 := answered.Load()

	wg.Wait()
	long := <-longDone
	require.NoError(t, p.wait(), "mcpgw exits cleanly after SIGTERM")

	var ok, shuttingDown int
	for i, r := range results {
		switch {
		case r.err != nil:
			t.Errorf("call %d got no answer: %v", i, r.err)
		case r.status == http.StatusOK && r.code == 0:
			ok++
		case r.code == -32053:
			shuttingDown++
		default:
			t.Errorf("call %d: HTTP %d, code %d", i, r.status, r.code)
		}
	}
	require.NoError(t, long.err)
	assert.Equal(t, http.StatusOK, long.status, "the call in flight finishes")
	assert.Zero(t, long.code)
	assert.Greater(t, int64(ok), answeredAt503, "calls were served after /readyz turned 503, during shutdown_delay")
	assert.Positive(t, shuttingDown, "calls after shutdown_delay get -32053")

	// Exactly one audit record per call, the long one included.
	records := map[string]int{}
	for _, rec := range auditLines(t, p.auditPath) {
		if rec["event"] == "tools/call" {
			id, _ := rec["request_id"].(string)
			records[id]++
		}
	}
	for i := range total {
		assert.Equal(t, 1, records[fmt.Sprintf("sigterm-%05d", i)], "records of call %d", i)
	}
	assert.Equal(t, 1, records["sigterm-long"], "records of the long call")
	assert.Len(t, records, total+1, "records of calls never made")
	t.Logf("%d calls: %d succeeded (%d answered when /readyz turned 503), %d got -32053; the long call succeeded",
		total, ok, answeredAt503, shuttingDown)
}

// inFlightCalls is the number of calls holding the bulkhead slots of every
// upstream of an mcpgw process, from /readyz.
func inFlightCalls(t *testing.T, p *proc) int {
	t.Helper()
	_, body := readyz(t, p.base)
	ups, _ := body["upstreams"].([]any)
	n := 0
	for _, u := range ups {
		m, _ := u.(map[string]any)
		f, _ := m["in_flight"].(float64)
		n += int(f)
	}
	return n
}
