package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// TestKillSwitchBadInput sends the admin API and the CLI kill-switch and
// drain requests that must be refused, each with its own status and
// message, and checks that none leaves a switch, a drain or an audit line
// behind.
func TestKillSwitchBadInput(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
  - {name: orders, http: {url: %q}}
`, resource, iss.URL(), d.customers.url(), d.orders.url()), true)
	admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})
	alice := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})

	tests := []struct {
		name       string
		token      string
		method     string
		path       string
		body       string
		wantStatus int
		wantError  string
	}{
		{name: "no reason", token: admin, body: `{"scope":"tool","target":"orders__get_order"}`, wantStatus: 400, wantError: "a reason is required"},
		{name: "blank reason", token: admin, body: `{"scope":"tool","target":"orders__get_order","reason":"   "}`, wantStatus: 400, wantError: "a reason is required"},
		{name: "invalid glob", token: admin, body: `{"scope":"tool","target":"orders__[","reason":"r"}`, wantStatus: 400, wantError: "target is not a valid glob"},
		{name: "negative ttl", token: admin, body: `{"scope":"tool","target":"orders__get_order","reason":"r","ttl":"-1s"}`, wantStatus: 400, wantError: "ttl must not be negative"},
		{name: "zero ttl", token: admin, body: `{"scope":"tool","target":"orders__get_order","reason":"r","ttl":"0s"}`, wantStatus: 400, wantError: "ttl must not be negative"},
		{name: "ttl that is not a duration", token: admin, body: `{"scope":"tool","target":"orders__get_order","reason":"r","ttl":"soon"}`, wantStatus: 400, wantError: "invalid ttl"},
		{name: "unknown scope", token: admin, body: `{"scope":"planet","reason":"r"}`, wantStatus: 400, wantError: "scope must be global, upstream or tool"},
		{name: "unknown upstream", token: admin, body: `{"scope":"upstream","target":"shipping","reason":"r"}`, wantStatus: 400, wantError: `unknown upstream: "shipping"`},
		{name: "global with a target", token: admin, body: `{"scope":"global","target":"x","reason":"r"}`, wantStatus: 400, wantError: "invalid target"},
		{name: "unknown field", token: admin, body: `{"scope":"global","reason":"r","until":"never"}`, wantStatus: 400, wantError: "invalid body"},
		{name: "not JSON", token: admin, body: `scope=global`, wantStatus: 400, wantError: "invalid body"},
		{name: "non-admin principal", token: alice, body: `{"scope":"global","reason":"r"}`, wantStatus: 403},
		{name: "no token", body: `{"scope":"global","reason":"r"}`, wantStatus: 401},
		{name: "revive of an unknown switch", token: admin, method: http.MethodDelete, path: "/admin/v1/killswitches/ks-nope", wantStatus: 404, wantError: "not found"},
		{name: "non-admin revive", token: alice, method: http.MethodDelete, path: "/admin/v1/killswitches/ks-nope", wantStatus: 403},
		{name: "drain without reason", token: admin, path: "/admin/v1/upstreams/orders/drain", body: `{}`, wantStatus: 400, wantError: "a reason is required"},
		{name: "drain of an unknown upstream", token: admin, path: "/admin/v1/upstreams/shipping/drain", body: `{"reason":"r"}`, wantStatus: 400, wantError: "unknown upstream"},
		{name: "non-admin drain", token: alice, path: "/admin/v1/upstreams/orders/drain", body: `{"reason":"r"}`, wantStatus: 403},
		{name: "undrain of an upstream not drained", token: admin, path: "/admin/v1/upstreams/orders/undrain", wantStatus: 404, wantError: "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method, path := tt.method, tt.path
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = "/admin/v1/killswitches"
			}
			status, body := adminDo(t, g.base, tt.token, method, path, tt.body)
			assert.Equal(t, tt.wantStatus, status, body)
			if tt.wantError != "" {
				assert.Contains(t, body["error"], tt.wantError)
			}
		})
	}

	t.Run("the CLI reports the refusal", func(t *testing.T) {
		code, out, errOut := mcpgwCLI(t, []string{"MCPGW_TOKEN=" + admin}, "kill", "orders__get_order", "--reason", "r", "--ttl", "-1s", "-addr", g.base)
		assert.Equal(t, 1, code, out)
		assert.Contains(t, errOut, "ttl must not be negative")
		assert.Contains(t, errOut, "HTTP 400")
		code, _, errOut = mcpgwCLI(t, []string{"MCPGW_TOKEN=" + alice}, "kill", "--all", "--reason", "r", "-addr", g.base)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "HTTP 403")
		code, _, errOut = mcpgwCLI(t, []string{"MCPGW_TOKEN=" + admin}, "kill", "--all", "-addr", g.base)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "a reason is required")
	})

	// Nothing was left behind: no switch, no drain, no audit record, and
	// every tool still answers.
	status, list := adminDo(t, g.base, admin, http.MethodGet, "/admin/v1/killswitches", "")
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, list["killswitches"])
	status, drains := adminDo(t, g.base, admin, http.MethodGet, "/admin/v1/upstreams", "")
	require.Equal(t, http.StatusOK, status)
	assert.Empty(t, drains["drained"])
	hc := &http.Client{Timeout: 30 * time.Second}
	_, r, err := modernCall(hc, g.url, alice, "", "orders__get_order", `{"id":"o-1001"}`)
	require.NoError(t, err)
	assert.Nil(t, r.Error)
	require.NoError(t, g.stop())
	for _, rec := range auditLines(t, g.auditPath) {
		assert.Equal(t, "tools/call", rec["event"], "a refused change left an audit record: %v", rec)
	}
}

// TestUnwritableAuditFileRefusesStart: mcpgw serve refuses to start when an
// audit file cannot be opened for writing, names the problem, and leaves
// no half-written line in the sinks it could open.
func TestUnwritableAuditFileRefusesStart(t *testing.T) {
	d := startDemo(t)
	dir := t.TempDir()
	notADir := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(notADir, []byte("x"), 0o600))
	good := filepath.Join(dir, "good.jsonl")
	bad := filepath.Join(notADir, "audit.jsonl")
	stateFile := filepath.Join(dir, "switches.json")
	cfg := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(d.config(fmt.Sprintf(`
policy:
  kill_switches: {state_file: %q}
  rate_limits:
    per_principal: {rate: 1, burst: 1}
audit:
  sinks: [{type: file, path: %q}, {type: file, path: %q}]
`, stateFile, good, bad))), 0o600))

	code, _, errOut := mcpgwCLI(t, nil, "serve", "-config", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "audit: opening audit file")
	assert.Contains(t, errOut, bad)
	if data, err := os.ReadFile(good); err == nil {
		assert.Empty(t, data, "the sink that opened holds no record")
	}
	assert.NoFileExists(t, stateFile, "no kill-switch state was written")
	assert.NoFileExists(t, bad)
}

// TestInvalidCallsAreAudited: a tools/call that names no tool or an
// unknown one is refused with -32602 and audited with the decision
// invalid, in the 2025 session era as in 2026-07-28.
func TestInvalidCallsAreAudited(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	c := initialized(t, g.url)
	c.header.Set("X-Request-ID", "invalid-unknown")
	r := c.call("tools/call", `{"name":"orders__nope","arguments":{"a":1}}`)
	require.NotNil(t, r.Error)
	assert.Equal(t, -32602, r.Error.Code)
	c.header.Set("X-Request-ID", "invalid-no-name")
	r = c.call("tools/call", `{"arguments":{}}`)
	require.NotNil(t, r.Error)
	assert.Equal(t, -32602, r.Error.Code)
	c.header.Set("X-Request-ID", "not-a-call")
	r = c.call("prompts/get", `{"name":"nope"}`)
	require.NotNil(t, r.Error, "prompts/get of an unknown prompt fails, unaudited")

	// A tool whose upstream is down and withdrawn: refused before the
	// policy chain, audited as unavailable.
	d.orders.stop()
	n := 0
	require.Eventually(t, func() bool {
		n++
		c.header.Set("X-Request-ID", fmt.Sprintf("down-%d", n))
		return errCode(c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)) == -32050 &&
			!slices.Contains(rawToolNames(t, g.url), "orders__get_order")
	}, 20*time.Second, 20*time.Millisecond, "orders was never withdrawn")
	c.header.Set("X-Request-ID", "unavailable")
	require.Equal(t, -32050, errCode(c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)))

	require.NoError(t, g.stop())
	got := map[string]map[string]any{}
	for _, rec := range auditLines(t, g.auditPath) {
		id, _ := rec["request_id"].(string)
		require.NotContains(t, got, id, "two records for %s", id)
		got[id] = rec
	}
	require.Contains(t, got, "invalid-unknown")
	assert.Equal(t, "invalid", got["invalid-unknown"]["decision"])
	assert.Equal(t, "orders__nope", got["invalid-unknown"]["tool"])
	assert.InDelta(t, -32602, got["invalid-unknown"]["error_code"], 0)
	assert.NotEmpty(t, got["invalid-unknown"]["args_sha256"])
	require.Contains(t, got, "invalid-no-name")
	assert.Equal(t, "invalid", got["invalid-no-name"]["decision"])
	assert.NotContains(t, got, "not-a-call", "only tools/call is audited")
	require.Contains(t, got, "unavailable")
	assert.Equal(t, "unavailable", got["unavailable"]["decision"])
	assert.Equal(t, "upstream_unavailable", got["unavailable"]["rule"])
	assert.Equal(t, "orders", got["unavailable"]["upstream"])
	for i := 1; i <= n; i++ {
		assert.Contains(t, got, fmt.Sprintf("down-%d", i), "every call while orders was down is audited")
	}
}

// TestBadRateLimitsRefuseStart: zero or negative rates stop `mcpgw serve`
// with every problem named by its path, before any limiter, switch or
// audit file exists.
func TestBadRateLimitsRefuseStart(t *testing.T) {
	d := startDemo(t)
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	stateFile := filepath.Join(dir, "switches.json")
	cfg := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(d.config(fmt.Sprintf(`
policy:
  kill_switches: {state_file: %q}
  rate_limits:
    per_principal: {rate: 0, burst: 5}
    per_principal_tool: {rate: -2}
    per_upstream_overrides:
      orders: {rate: 1, burst: -1}
audit:
  sinks: [{type: file, path: %q}]
`, stateFile, auditPath))), 0o600))

	code, _, errOut := mcpgwCLI(t, nil, "serve", "-config", cfg)
	assert.Equal(t, 1, code)
	for _, want := range []string{
		"policy.rate_limits.per_principal.rate: must be a positive number of calls per second",
		"policy.rate_limits.per_principal_tool.rate: must be a positive number of calls per second",
		"policy.rate_limits.per_upstream_overrides[orders].burst: must be at least 1",
	} {
		assert.Contains(t, errOut, want)
	}
	assert.NoFileExists(t, auditPath)
	assert.NoFileExists(t, stateFile)

	code, _, errOut = mcpgwCLI(t, nil, "validate", cfg)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "policy.rate_limits.per_principal.rate")
}
