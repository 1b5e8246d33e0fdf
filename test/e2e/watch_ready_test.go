package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// logCount counts the process log's lines with message msg.
func (p *proc) logCount(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(p.log.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var entry struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == msg {
			n++
		}
	}
	return n
}

// TestConfigWatchSurvivesRmAndCp: `mcpgw serve` reloads its file when it
// is replaced by rm then cp, as editors and deploy tools do, and keeps
// watching it afterwards: each of three replacements is applied (a call
// under the newest prefix answers), and each trigger and reload is logged.
func TestConfigWatchSurvivesRmAndCp(t *testing.T) {
	customers := startServer(t, func() http.Handler { return upstreams.CustomersHandler(upstreams.NewObserver()) })
	p := startProc(t, fmt.Sprintf("upstreams:\n  - name: customers\n    http: {url: %q}\n", customers.url()), true)
	raw, err := os.ReadFile(p.cfgPath)
	require.NoError(t, err)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}

	for i, prefix := range []string{"c1", "c2", "c3"} {
		next := strings.Replace(string(raw), "  - name: customers\n", "  - name: customers\n    prefix: "+prefix+"\n", 1)
		require.NotEqual(t, string(raw), next)
		require.NoError(t, os.Remove(p.cfgPath))
		require.NoError(t, os.WriteFile(p.cfgPath, []byte(next), 0o600))
		require.Eventually(t, func() bool { return p.logCount("configuration reloaded") >= i+1 }, 30*time.Second, 10*time.Millisecond,
			"replacement %d was not reloaded", i+1)
		status, r, err := modernCall(client, p.url, "", "", prefix+"__lookup_customer", `{"id":"c-001"}`)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error, "replacement %d: the tool under prefix %s", i+1, prefix)
	}
	assert.GreaterOrEqual(t, p.logCount("config file changed; reloading"), 3, "each trigger is logged")
}

// TestReadyzWaitsForFirstListings: `mcpgw serve` with three required
// upstreams: customers answers at once, orders holds its first tools/list,
// and payments is down (its port refuses). /readyz is 503 while orders'
// first listing is under way, and 200 once it answers; payments, down,
// counts as failed and does not hold readiness.
func TestReadyzWaitsForFirstListings(t *testing.T) {
	customers := startServer(t, func() http.Handler { return upstreams.CustomersHandler(upstreams.NewObserver()) })
	listing := make(chan struct{}, 1)
	release := make(chan struct{})
	orders := startServer(t, func() http.Handler {
		inner := upstreams.OrdersHandler(upstreams.NewObserver())
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				body, _ := io.ReadAll(r.Body)
				r.Body = io.NopCloser(bytes.NewReader(body))
				if bytes.Contains(body, []byte(`"tools/list"`)) {
					select {
					case listing <- struct{}{}:
					default:
					}
					select {
					case <-release:
					case <-r.Context().Done():
						return
					}
				}
			}
			inner.ServeHTTP(w, r)
		})
	})
	payments := startServer(t, func() http.Handler { return upstreams.CustomersHandler(upstreams.NewObserver()) })
	paymentsURL := payments.url()
	payments.stop()

	p := startProc(t, fmt.Sprintf(`upstreams:
  - name: customers
    http: {url: %q}
  - name: orders
    http: {url: %q}
  - name: payments
    http: {url: %q}
`, customers.url(), orders.url(), paymentsURL), false)

	select {
	case <-listing:
	case <-time.After(30 * time.Second):
		t.Fatal("orders was never listed")
	}
	status, body := readyz(t, p.base)
	assert.Equal(t, http.StatusServiceUnavailable, status, "orders' first listing is under way: %v", body)
	assert.Equal(t, "loading", body["status"])

	close(release)
	require.Eventually(t, func() bool { return p.readyz() == http.StatusOK }, 30*time.Second, 10*time.Millisecond,
		"orders answered and payments failed, yet /readyz stayed 503")
	status, body = readyz(t, p.base)
	require.Equal(t, http.StatusOK, status)
	ups, _ := body["upstreams"].([]any)
	require.Len(t, ups, 3)
	state := map[string][2]any{}
	for _, u := range ups {
		m, _ := u.(map[string]any)
		name, _ := m["name"].(string)
		state[name] = [2]any{m["loaded"], m["available"]}
	}
	assert.Equal(t, map[string][2]any{
		"customers": {true, true},
		"orders":    {true, true},
		"payments":  {false, false},
	}, state)
}
