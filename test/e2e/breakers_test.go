package e2e

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/internal/testio"
)

// toolBreakers reads the per-tool breaker states of an upstream from the
// admin API: tool → state.
func toolBreakers(t *testing.T, g *gw, name string) map[string]string {
	t.Helper()
	code, body := adminDo(t, g.base, "", http.MethodGet, "/admin/v1/upstreams", "")
	require.Equal(t, http.StatusOK, code)
	raw, err := json.Marshal(body["upstreams"])
	require.NoError(t, err)
	var ups []struct {
		Name     string `json:"name"`
		Breakers []struct {
			Tool  string `json:"tool"`
			State string `json:"state"`
		} `json:"breakers"`
	}
	require.NoError(t, json.Unmarshal(raw, &ups))
	out := map[string]string{}
	for _, u := range ups {
		if u.Name == name {
			for _, b := range u.Breakers {
				out[b.Tool] = b.State
			}
		}
	}
	return out
}

// TestBreakersPerToolAndKill runs the orders demo upstream as a real
// process. A slow tool's timeouts open its own breaker and leave the
// upstream's other tools serving (breakers are per tool by default); a
// kill -9 of the process then opens every breaker of the upstream within
// the configured number of failures (its reconnects are refused); each
// transition is logged and audited.
func TestBreakersPerToolAndKill(t *testing.T) {
	url, proc := startDemoUpstreamCmd(t, "orders")
	logs := &testio.LockedBuffer{}
	auditPath := t.TempDir() + "/audit.jsonl"
	cfg, err := configs.Parse(fmt.Appendf(nil, `
server: {listen: 127.0.0.1:0}
upstreams:
  - name: orders
    http: {url: %q}
    breaker: {failures: 3, window: 1m, open_for: 1h}
    retry: {attempts: 1}
    timeouts:
      - {match: "export_*", timeout: 200ms}
audit:
  sinks: [{type: file, path: %q}]
`, url, auditPath))
	require.NoError(t, err)
	g := serveGatewayOpts(t, cfg, auditPath, true, &gateway.Options{
		HealthInterval: 100 * time.Millisecond,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
	})
	c := initialized(t, g.url)

	for i := range 3 {
		r := c.call("tools/call", `{"name":"orders__export_orders","arguments":{"steps":100,"delay_ms":100}}`)
		require.NotNil(t, r.Error, "call %d", i)
		require.Equal(t, -32052, r.Error.Code, r.Error.Message)
	}
	r := c.call("tools/call", `{"name":"orders__export_orders","arguments":{"steps":1,"delay_ms":1}}`)
	require.NotNil(t, r.Error)
	require.Equal(t, -32064, r.Error.Code, "the slow tool's breaker is open")
	r = c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	require.Nil(t, r.Error, "the upstream's other tools still serve")
	assert.Equal(t, map[string]string{"export_orders": "open", "get_order": "closed"}, toolBreakers(t, g, "orders"))
	assert.Equal(t, "closed", breakerState(t, g, "orders"))

	require.NoError(t, proc.Process.Signal(syscall.SIGKILL))
	require.Eventually(t, func() bool {
		return toolBreakers(t, g, "orders")["get_order"] == "open" && breakerState(t, g, "orders") == "open"
	}, 30*time.Second, 20*time.Millisecond, "a killed upstream opens its breakers")

	// Each opening is in the log and in the audit stream.
	for _, tool := range []string{"export_orders", "get_order", ""} {
		assert.Contains(t, logs.String(), fmt.Sprintf(`"msg":"circuit breaker changed state","upstream":"orders","scope":%q,"tool":%q,"from":"closed","to":"open"`,
			map[bool]string{true: "upstream", false: "tool"}[tool == ""], tool))
	}
	require.Eventually(t, func() bool {
		data, err := readFile(auditPath)
		return err == nil && strings.Count(data, `"event":"breaker"`) == 3
	}, 10*time.Second, 10*time.Millisecond)
	data, err := readFile(auditPath)
	require.NoError(t, err)
	for l := range strings.SplitSeq(data, "\n") {
		if strings.Contains(l, `"event":"breaker"`) {
			assert.Contains(t, l, `"action":"open"`)
			assert.Contains(t, l, `"target":"orders"`)
			assert.Contains(t, l, `"from":"closed"`)
		}
	}
}
