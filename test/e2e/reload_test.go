package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// TestReloadUnderLoad reloads the gateway's file twice while clients of
// both eras call tools without pause: once changing orders' timeout and
// adding an upstream, once with a broken file. No call fails, the new
// upstream's tools are served, and the broken file changes nothing.
func TestReloadUnderLoad(t *testing.T) {
	d := startDemo(t)
	extra := startServer(t, func() http.Handler { return upstreams.CustomersHandler(upstreams.NewObserver()) })
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgw.yaml")
	auditPath := filepath.Join(dir, "audit.jsonl")
	auditYAML := fmt.Sprintf("\naudit:\n  sinks: [{type: file, path: %q}]\n", auditPath)
	base := d.config(auditYAML)
	require.NoError(t, os.WriteFile(path, []byte(base), 0o600))
	cfg, err := configs.Load(path)
	require.NoError(t, err)
	tel, err := telemetry.New(cfg.Telemetry, telemetry.Options{ServiceVersion: "e2e"})
	require.NoError(t, err)
	// t.Context is cancelled before cleanups run; shutdown needs a live context.
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(t.Context())) })
	g := serveGatewayOpts(t, cfg, auditPath, true, &gateway.Options{HealthInterval: 200 * time.Millisecond, Telemetry: tel})
	reloads := func(result string) float64 {
		t.Helper()
		fam := scrape(t, g.base+"/metrics")["mcpgw_config_reloads_total"]
		if fam == nil {
			return 0
		}
		var n float64
		for _, m := range series(fam, map[string]string{"result": result}) {
			n += m.GetCounter().GetValue()
		}
		return n
	}

	// Steady load: 2025 sessions and 2026-07-28 requests on customers and
	// on orders, the upstream whose client the reload replaces.
	var (
		stop   atomic.Bool
		calls  atomic.Int64
		wg     sync.WaitGroup
		failMu sync.Mutex
		fails  []string
	)
	worker := func(call func(tool, args string) rpcResponse, tool, args string) {
		defer wg.Done()
		for !stop.Load() {
			r := call(tool, args)
			calls.Add(1)
			if r.Error != nil {
				failMu.Lock()
				fails = append(fails, fmt.Sprintf("%s: %d %s", tool, r.Error.Code, r.Error.Message))
				failMu.Unlock()
			}
		}
	}
	for _, tc := range []struct{ tool, args string }{
		{"orders__get_order", `{"id":"o-1001"}`},
		{"customers__lookup_customer", `{"id":"c-001"}`},
	} {
		c := initialized(t, g.url)
		m := newRawClient(t, g.url)
		wg.Add(2)
		go worker(func(tool, args string) rpcResponse {
			return c.call("tools/call", fmt.Sprintf(`{"name":%q,"arguments":%s}`, tool, args))
		}, tc.tool, tc.args)
		go worker(func(tool, args string) rpcResponse {
			_, r := m.modern(modernRequest{
				method: "tools/call", name: tool,
				body: fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,%s}}`, tool, args, modernMeta),
			})
			return r
		}, tc.tool, tc.args)
	}
	defer func() { stop.Store(true); wg.Wait() }()
	waitCalls := func(n int64) {
		t.Helper()
		target := calls.Load() + n
		require.Eventually(t, func() bool { return calls.Load() >= target }, 30*time.Second, 5*time.Millisecond)
	}
	waitCalls(20)

	changed := d.config(fmt.Sprintf(`
  - name: extra
    http: {url: %q}
`, extra.url()) + auditYAML)
	// orders' timeout changes: 20s → 25s, so its client is rebuilt.
	changed = replaceOnce(t, changed, "timeout: 20s", "timeout: 25s")
	writeAtomically(t, path, changed)
	require.NoError(t, g.ReloadFile(t.Context(), path))
	applied, rejected := g.ReloadCounts()
	assert.Equal(t, uint64(1), applied)
	assert.Equal(t, uint64(0), rejected)
	waitCalls(20)

	c := initialized(t, g.url)
	require.Eventually(t, func() bool {
		return slices.Contains(g.Catalog().Names(catalog.Tools), "extra__lookup_customer")
	}, 20*time.Second, 10*time.Millisecond, "the added upstream's tools are never served")
	r := c.call("tools/call", `{"name":"extra__lookup_customer","arguments":{"id":"c-002"}}`)
	require.Nil(t, r.Error, "a call to the added upstream")
	assert.Contains(t, string(r.Result), "Grace Hopper")

	before := g.Catalog()
	writeAtomically(t, path, "upstreams: [ this is not: valid")
	require.Error(t, g.ReloadFile(t.Context(), path))
	_, rejected = g.ReloadCounts()
	assert.Equal(t, uint64(1), rejected, "the broken file is counted")
	// Counters hold whole numbers: a delta of 0 keeps the comparison exact.
	assert.InDelta(t, 1.0, reloads("failed"), 0, "mcpgw_config_reloads_total{result=\"failed\"}")
	assert.InDelta(t, 1.0, reloads("ok"), 0, "mcpgw_config_reloads_total{result=\"ok\"}")
	assert.Same(t, before, g.Catalog(), "a broken file changes nothing")
	waitCalls(20)

	stop.Store(true)
	wg.Wait()
	assert.Empty(t, fails, "calls failed across the reloads (of %d)", calls.Load())

	data, err := os.ReadFile(g.auditPath)
	require.NoError(t, err)
	var actions []string
	for line := range bytes.SplitSeq(bytes.TrimSpace(data), []byte("\n")) {
		var rec struct{ Event, Action string }
		require.NoError(t, json.Unmarshal(line, &rec), string(line))
		if rec.Event == "config_reload" {
			actions = append(actions, rec.Action)
		}
	}
	assert.Equal(t, []string{"applied", "rejected"}, actions, "one audit record per reload")
}

// TestReloadRejectsInvalidConfig: a file that parses but does not validate
// is rejected with every problem, and the running configuration stays.
func TestReloadRejectsInvalidConfig(t *testing.T) {
	d := startDemo(t)
	g, path := startFileGateway(t, d.config(""))
	before := g.Catalog()
	writeAtomically(t, path, d.config(`
  - name: customers
    http: {url: "ftp://nowhere"}
`))
	err := g.ReloadFile(t.Context(), path)
	require.Error(t, err)
	assert.GreaterOrEqual(t, len(configs.Problems(err)), 2, "every problem is reported: %v", err)
	assert.Same(t, before, g.Catalog())
	c := initialized(t, g.url)
	r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
	require.Nil(t, r.Error)
}

// TestReloadNeedsRestart: a change to a setting read only at start is
// reported, and the rest of the file is applied.
func TestReloadNeedsRestart(t *testing.T) {
	d := startDemo(t)
	g, path := startFileGateway(t, d.config(""))
	next := replaceOnce(t, d.config(""), "max_body_bytes: 65536", "max_body_bytes: 131072")
	next = replaceOnce(t, next, "  - name: payments\n", "  - name: payments\n    prefix: pay\n")
	writeAtomically(t, path, next)
	err := g.ReloadFile(t.Context(), path)
	require.ErrorIs(t, err, gateway.ErrRestartRequired)
	assert.Contains(t, err.Error(), "server")
	require.Eventually(t, func() bool {
		return slices.Contains(g.Catalog().Names(catalog.Tools), "pay__get_payment")
	}, 20*time.Second, 10*time.Millisecond, "the applicable part of the file was not applied")
}

// startFileGateway writes yaml to a file and serves a gateway loaded from
// it, as `mcpgw serve -config` does; it returns the file's path.
func startFileGateway(t *testing.T, yaml string) (*gw, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o600))
	cfg, err := configs.Load(path)
	require.NoError(t, err)
	return serveGateway(t, cfg, filepath.Join(dir, "audit.jsonl"), true, 200*time.Millisecond), path
}

func replaceOnce(t *testing.T, s, old, repl string) string {
	t.Helper()
	require.Contains(t, s, old)
	return strings.Replace(s, old, repl, 1)
}

// writeAtomically replaces a file the way editors and kubelet do: write
// beside it, rename over it.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o600))
	require.NoError(t, os.Rename(tmp, path))
}
