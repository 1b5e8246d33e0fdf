package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// policyGateway runs a gateway over the orders demo upstream, with a rate
// limit and a file audit sink.
type policyGateway struct {
	gw    *gateway.Gateway
	base  string
	audit string
}

func startPolicyGateway(t *testing.T) *policyGateway {
	t.Helper()
	orders := httptest.NewServer(upstreams.OrdersHandler(nil))
	t.Cleanup(orders.Close)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg, err := configs.Parse(fmt.Appendf(nil, `
catalog: {list_changed_debounce: 20ms}
upstreams:
  - {name: orders, http: {url: %q}}
policy:
  rate_limits:
    per_principal_tool: {rate: 0.001, burst: 3}
audit:
  sinks: [{type: file, path: %q}]
`, orders.URL, auditPath))
	require.NoError(t, err)
	g, err := gateway.New(cfg, nil)
	require.NoError(t, err)
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The gateway serves until stop runs in a cleanup, after t.Context is
	// cancelled: other cleanups may still talk to it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	g.Start()
	go func() { done <- g.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	require.Eventually(t, g.Ready, 30*time.Second, 10*time.Millisecond)
	return &policyGateway{gw: g, base: "http://" + l.Addr().String(), audit: auditPath}
}

// call makes a stateless 2026-07-28 tools/call and returns the error object
// (nil on success).
func (p *policyGateway) call(t *testing.T, tool, args string) map[string]any {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`, tool, args)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.base+"/mcp", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	resp, err := (&http.Client{}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out struct {
		Error map[string]any `json:"error"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return out.Error
}

func (p *policyGateway) listed() []string { return p.gw.Catalog().Names(catalog.Tools) }

func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestBreakGlass flips kill switches and drains through the CLI against a
// running gateway and checks their effect on calls, lists and the audit
// stream.
func TestBreakGlass(t *testing.T) {
	p := startPolicyGateway(t)
	addr := "-addr=" + p.base
	require.Nil(t, p.call(t, "orders__get_order", `{"id":"o-1001"}`))

	code, out, errOut := cli(t, "kill", "orders__cancel_*", "--reason", "refund storm", "--ticket", "INC-42", "--ttl", "1h", addr, "-o", "json")
	require.Equal(t, 0, code, errOut)
	var sw switchView
	require.NoError(t, json.Unmarshal([]byte(out), &sw))
	assert.Equal(t, "tool", sw.Scope)

	e := p.call(t, "orders__cancel_order", `{"id":"o-1001","reason":"x"}`)
	require.NotNil(t, e)
	assert.InDelta(t, -32060, e["code"], 0)
	assert.Contains(t, e["message"], "refund storm")
	assert.Equal(t, "INC-42", e["data"].(map[string]any)["ticket"])
	require.Eventually(t, func() bool { return !slices.Contains(p.listed(), "orders__cancel_order") }, 10*time.Second, 10*time.Millisecond,
		"a killed tool leaves tools/list")
	require.Nil(t, p.call(t, "orders__list_orders", `{}`), "other tools are untouched")

	code, out, _ = cli(t, "switches", addr)
	require.Equal(t, 0, code)
	assert.Contains(t, out, "refund storm")
	assert.Contains(t, out, sw.ID)

	code, _, errOut = cli(t, "revive", sw.ID, addr)
	require.Equal(t, 0, code, errOut)
	require.Eventually(t, func() bool { return slices.Contains(p.listed(), "orders__cancel_order") }, 10*time.Second, 10*time.Millisecond)

	code, _, errOut = cli(t, "drain", "orders", addr, "--reason", "deploy")
	require.Equal(t, 0, code, errOut)
	e = p.call(t, "orders__list_orders", `{}`)
	require.NotNil(t, e)
	assert.InDelta(t, -32062, e["code"], 0)
	code, _, errOut = cli(t, "undrain", "orders", addr)
	require.Equal(t, 0, code, errOut)

	// The rate limit (burst 3 per principal and tool) refuses the next
	// get_order: two earlier calls plus this one.
	require.Nil(t, p.call(t, "orders__get_order", `{"id":"o-1002"}`))
	require.Nil(t, p.call(t, "orders__get_order", `{"id":"o-1003"}`))
	e = p.call(t, "orders__get_order", `{"id":"o-1004"}`)
	require.NotNil(t, e)
	assert.InDelta(t, -32061, e["code"], 0)
	assert.Positive(t, e["data"].(map[string]any)["retryAfterMs"])

	t.Run("bad requests", func(t *testing.T) {
		for _, args := range [][]string{
			{"kill", "orders__get_order"},                                  // no reason
			{"kill", "--upstream", "nope", "--reason", "x"},                // unknown upstream
			{"kill", "orders__get_order", "--reason", "x", "--ttl", "-1h"}, // negative TTL
			{"revive", "ks-does-not-exist"},                                // unknown id
		} {
			code, _, errOut := cli(t, append(args, addr)...)
			assert.Equal(t, 1, code, "%v: %s", args, errOut)
			assert.NotEmpty(t, errOut)
		}
		code, out, _ := cli(t, "switches", addr, "-o", "json")
		require.Equal(t, 0, code)
		assert.Contains(t, out, `"killswitches": []`, "no switch was left behind")
	})

	// One audit record per decision, and one per change.
	p.gw.Close()
	counts := map[string]int{}
	f, err := os.Open(p.audit)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec))
		key, _ := rec["event"].(string)
		if d, ok := rec["decision"].(string); ok {
			key += ":" + d
		}
		if a, ok := rec["action"].(string); ok {
			key += ":" + a
		}
		counts[key]++
	}
	assert.Equal(t, map[string]int{
		"tools/call:allowed": 4, "tools/call:killed": 1, "tools/call:drained": 1, "tools/call:limited": 1,
		"killswitch:add": 1, "killswitch:remove": 1, "drain:drain": 1, "drain:undrain": 1,
	}, counts)
}
