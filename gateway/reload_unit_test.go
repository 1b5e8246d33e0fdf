package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
)

// reloadYAML configures the named upstreams with a short debounce, so
// that list_changed follows a change at once.
func reloadYAML(listTTL string, names ...string) string {
	var y strings.Builder
	y.WriteString("server:\n  listen: 127.0.0.1:0\ncatalog:\n  list_changed_debounce: 1ms\n  list_ttl: " + listTTL + "\nupstreams:\n")
	for _, n := range names {
		y.WriteString("  - name: " + n + "\n    http:\n      url: http://" + n + ".invalid/mcp\n")
	}
	return y.String()
}

func parseConfig(t *testing.T, yaml string) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err, yaml)
	return cfg
}

// reloadFakes are orders and payments, each with one tool.
func reloadFakes() (orders, payments *liveFake) {
	orders = newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
	payments = newLiveFake("payments", toolsCatalog(`{"name":"refund","inputSchema":{"type":"object"}}`))
	return orders, payments
}

// toolNames lists the tools a legacy session sees.
func toolNames(t *testing.T, tg *testGateway, sid string) []string {
	t.Helper()
	w, _ := tg.post(t, legacyRequest(sid, 1, "tools/list", `{}`))
	return listed(t, resultOf(t, w), "tools", "name")
}

// TestReloadAppliesANewConfiguration: a reload connects an added
// upstream, keeps the unchanged one with its sessions, tells sessions
// what changed, and closes the upstream a later reload removes once its
// calls are done. Each reload is counted and audited.
func TestReloadAppliesANewConfiguration(t *testing.T) {
	orders, payments := reloadFakes()
	tg := buildGateway(t, reloadYAML("30s", "orders"), nil, orders, payments)
	require.True(t, tg.Ready())
	sid := tg.session(t, nil)
	stream, done := tg.serveAsync(mcpRequest(t.Context(), http.MethodGet, "", map[string]string{"Mcp-Session-Id": sid}), nil)
	require.Equal(t, http.StatusOK, stream.statusOf(t))
	assert.Equal(t, []string{"orders__get_order"}, toolNames(t, tg, sid))

	require.NoError(t, tg.Reload(t.Context(), parseConfig(t, reloadYAML("45s", "orders", "payments"))))
	assert.Equal(t, "notifications/tools/list_changed", stream.event(t)["method"])
	assert.Equal(t, []string{"orders__get_order", "payments__refund"}, toolNames(t, tg, sid), "the session outlives the reload")
	w, _ := tg.post(t, modernCall(1, "payments__refund", `{}`))
	assert.Zero(t, errorCode(t, w), w.Body.String())
	w, _ = tg.post(t, modernRequest(2, "server/discover", "", "", `{}`))
	assert.InDelta(t, 45000, resultOf(t, w)["ttlMs"], 0, "catalog settings apply")

	require.NoError(t, tg.Reload(t.Context(), parseConfig(t, reloadYAML("45s", "orders"))))
	assert.Equal(t, "notifications/tools/list_changed", stream.event(t)["method"])
	assert.Equal(t, []string{"orders__get_order"}, toolNames(t, tg, sid))
	w, _ = tg.post(t, modernCall(3, "payments__refund", `{}`))
	assert.Equal(t, -32602, errorCode(t, w), "a removed upstream's tools are gone")

	applied, rejected := tg.ReloadCounts()
	assert.Equal(t, uint64(2), applied)
	assert.Zero(t, rejected)

	recs := tg.auditEvents(t, "config_reload") // closes the gateway
	wait(t, done)
	assert.Equal(t, int32(1), payments.closed.Load(), "the removed upstream is closed by the reload")
	assert.Equal(t, int32(1), orders.closed.Load(), "the kept upstream is closed once, at shutdown")
	require.Len(t, recs, 2)
	for i, ups := range []string{"2", "1"} {
		assert.Equal(t, "applied", recs[i]["action"])
		assert.Equal(t, ups, at(t, recs[i], "detail", "upstreams"))
	}
}

// TestReloadRejected: a configuration that does not validate or build,
// or any reload while the gateway shuts down, changes nothing; it is
// counted and audited with its problems.
func TestReloadRejected(t *testing.T) {
	orders, payments := reloadFakes()
	tg := buildGateway(t, reloadYAML("30s", "orders"), nil, orders, payments)
	sid := tg.session(t, nil)
	before := tg.Catalog()

	invalid := parseConfig(t, reloadYAML("30s", "orders", "payments"))
	invalid.Catalog.PageSize = 0
	unbuildable := parseConfig(t, reloadYAML("30s", "orders", "ghost"))
	for _, tt := range []struct {
		name string
		cfg  *configs.Config
		want string
	}{
		{"invalid", invalid, "catalog.page_size"},
		{"an upstream that cannot be dialled", unbuildable, "ghost"},
	} {
		err := tg.Reload(t.Context(), tt.cfg)
		require.Error(t, err, tt.name)
		assert.Contains(t, err.Error(), tt.want, tt.name)
		assert.Same(t, before, tg.Catalog(), "%s: the running configuration stays", tt.name)
		assert.Equal(t, []string{"orders__get_order"}, toolNames(t, tg, sid))
	}
	assert.Zero(t, payments.closed.Load())

	tg.beginDrain()
	err := tg.Reload(t.Context(), parseConfig(t, reloadYAML("30s", "orders", "payments")))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "shutting down")

	applied, rejected := tg.ReloadCounts()
	assert.Zero(t, applied)
	assert.Equal(t, uint64(3), rejected)
	recs := tg.auditEvents(t, "config_reload")
	require.Len(t, recs, 3)
	for _, rec := range recs {
		assert.Equal(t, "rejected", rec["action"])
		assert.NotEmpty(t, at(t, rec, "detail", "error"))
	}
	assert.Contains(t, at(t, recs[0], "detail", "error"), "page_size")
}

// TestReloadNeedsRestart: settings read only at start are not applied;
// the reload reports them with ErrRestartRequired and applies the rest.
func TestReloadNeedsRestart(t *testing.T) {
	orders, payments := reloadFakes()
	tg := buildGateway(t, reloadYAML("30s", "orders"), nil, orders, payments)
	sid := tg.session(t, nil)
	changed := strings.Replace(reloadYAML("30s", "orders", "payments"), "server:\n", "server:\n  session_idle_ttl: 5m\n", 1)
	changed += "log:\n  level: debug\n"

	err := tg.Reload(t.Context(), parseConfig(t, changed))
	require.ErrorIs(t, err, ErrRestartRequired)
	assert.Contains(t, err.Error(), "server, log")
	assert.Equal(t, []string{"orders__get_order", "payments__refund"}, toolNames(t, tg, sid), "the rest is applied")

	recs := tg.auditEvents(t, "config_reload")
	require.Len(t, recs, 1)
	assert.Equal(t, "applied", recs[0]["action"])
	assert.Equal(t, "server,log", at(t, recs[0], "detail", "restart_required"))
}

// TestReloadFile: ReloadFile applies a file that loads and validates, and
// audits the hash of the bytes applied; a missing or broken file changes
// nothing.
func TestReloadFile(t *testing.T) {
	orders, payments := reloadFakes()
	tg := buildGateway(t, reloadYAML("30s", "orders"), nil, orders, payments)
	sid := tg.session(t, nil)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	goodYAML := reloadYAML("30s", "orders", "payments")
	require.NoError(t, os.WriteFile(good, []byte(goodYAML), 0o600))
	broken := filepath.Join(dir, "broken.yaml")
	require.NoError(t, os.WriteFile(broken, []byte("upstreams: [\n"), 0o600))

	err := tg.ReloadFile(t.Context(), filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Error(t, tg.ReloadFile(t.Context(), broken))
	assert.Equal(t, []string{"orders__get_order"}, toolNames(t, tg, sid))

	require.NoError(t, tg.ReloadFile(t.Context(), good))
	assert.Equal(t, []string{"orders__get_order", "payments__refund"}, toolNames(t, tg, sid))

	recs := tg.auditEvents(t, "config_reload")
	require.Len(t, recs, 3)
	assert.Equal(t, "rejected", recs[0]["action"])
	assert.Nil(t, at(t, recs[0], "detail", "config_sha256"), "nothing was read")
	assert.Equal(t, "rejected", recs[1]["action"])
	assert.Equal(t, broken, at(t, recs[1], "detail", "path"))
	assert.NotEmpty(t, at(t, recs[1], "detail", "config_sha256"))
	sum := sha256.Sum256([]byte(goodYAML))
	assert.Equal(t, "applied", recs[2]["action"])
	assert.Equal(t, hex.EncodeToString(sum[:]), at(t, recs[2], "detail", "config_sha256"))
	assert.Equal(t, good, at(t, recs[2], "detail", "path"))
}

// TestReloadDoesNotOutwaitItsContext: a reload whose context ends does not
// wait for a new upstream to list its catalog; it swaps, and the gateway
// is not ready until that upstream has listed.
func TestReloadDoesNotOutwaitItsContext(t *testing.T) {
	orders, _ := reloadFakes()
	slow := newLiveFake("payments", nil)
	tg := buildGateway(t, reloadYAML("30s", "orders"), nil, orders, slow)
	require.True(t, tg.Ready())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := tg.Reload(ctx, parseConfig(t, reloadYAML("30s", "orders", "payments")))
	require.NoError(t, err)
	assert.False(t, tg.Ready(), "payments has not listed yet")
	code, body := readyz(t, tg)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, "loading", body["status"])
}

// TestReloadRevertingARestartOnlyChange: restart-only sections are
// compared with what the gateway runs. Reverting a restart-only change
// that was never applied to the running value needs no restart, and a
// later reload that still differs from the running value still needs one.
func TestReloadRevertingARestartOnlyChange(t *testing.T) {
	start := reloadYAML("30s", "orders")
	changed := strings.Replace(start, "server:\n", "server:\n  session_idle_ttl: 5m\n", 1)
	t.Run("an unapplied change is reported again", func(t *testing.T) {
		tg := buildGateway(t, start, nil, newLiveFake("orders", toolsCatalog()))
		require.ErrorIs(t, tg.Reload(t.Context(), parseConfig(t, changed)), ErrRestartRequired)
		require.ErrorIs(t, tg.Reload(t.Context(), parseConfig(t, changed)), ErrRestartRequired,
			"session_idle_ttl 5m is still not what runs")
	})
	t.Run("a revert needs no restart", func(t *testing.T) {
		tg := buildGateway(t, start, nil, newLiveFake("orders", toolsCatalog()))
		require.ErrorIs(t, tg.Reload(t.Context(), parseConfig(t, changed)), ErrRestartRequired)
		require.NoError(t, tg.Reload(t.Context(), parseConfig(t, start)),
			"the running server section is the start one: nothing needs a restart")
	})
}
