package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/internal/redistest"
)

// Codes of gateway refusals (gateway/admit.go).
const (
	codeKilled      = -32060
	codeRateLimited = -32061
	codeDrained     = -32062
)

// errData decodes an error's data object.
func errData(t *testing.T, r rpcResponse) map[string]any {
	t.Helper()
	require.NotNil(t, r.Error)
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Error.Data, &m), string(r.Error.Data))
	return m
}

// errCode is the JSON-RPC error code of r, 0 for a result.
func errCode(r rpcResponse) int {
	if r.Error == nil {
		return 0
	}
	return r.Error.Code
}

// switchJSON is a kill switch as the CLI prints it with -o json.
type switchJSON struct {
	ID      string    `json:"id"`
	Scope   string    `json:"scope"`
	Target  string    `json:"target"`
	Reason  string    `json:"reason"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// TestRedisSharedPolicy runs two mcpgw processes, A and B, sharing one
// redis-server, with OAuth on so that limits are per principal (the
// token's subject).
func TestRedisSharedPolicy(t *testing.T) {
	rs := redistest.Start(t)
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	cfg := fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
  - {name: orders, http: {url: %q}}
redis: {url: %q}
policy:
  rate_limits:
    per_principal: {rate: 0.001, burst: 10}
`, resource, iss.URL(), d.customers.url(), d.orders.url(), rs.URL())
	a := startProc(t, cfg, true)
	b := startProc(t, cfg, true)
	hc := &http.Client{Timeout: 30 * time.Second}
	admin := []string{"MCPGW_TOKEN=" + iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})}

	call := func(t *testing.T, p *proc, token, tool, args string) rpcResponse {
		t.Helper()
		status, r, err := modernCall(hc, p.url, token, "", tool, args)
		require.NoError(t, err)
		requireAnswer(t, status, r)
		return r
	}
	// fresh is a token of a principal never seen before, so that polling
	// never runs into the per-principal limit.
	polls := 0
	fresh := func() string {
		polls++
		return iss.Mint(map[string]any{"sub": fmt.Sprintf("poller-%d", polls), "scope": "mcp"})
	}

	t.Run("a per-principal limit holds across both processes", func(t *testing.T) {
		alice := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})
		for i := range 6 {
			r := call(t, a, alice, "customers__lookup_customer", `{"id":"c-001"}`)
			require.Nil(t, r.Error, "call %d on A", i+1)
		}
		// Had B its own buckets, it would allow 10 more.
		for i := range 4 {
			r := call(t, b, alice, "customers__lookup_customer", `{"id":"c-001"}`)
			require.Nil(t, r.Error, "call %d on B", i+7)
		}
		for _, p := range []*proc{a, b} {
			r := call(t, p, alice, "customers__lookup_customer", `{"id":"c-001"}`)
			require.Equal(t, codeRateLimited, errCode(r), "the 11th call is limited on either process")
			data := errData(t, r)
			assert.Equal(t, "per_principal", data["rule"])
			assert.Greater(t, data["retryAfterMs"], float64(0))
		}
		bob := iss.Mint(map[string]any{"sub": "bob", "scope": "mcp"})
		for _, p := range []*proc{a, b} {
			require.Nil(t, call(t, p, bob, "customers__lookup_customer", `{"id":"c-002"}`).Error, "another principal has its own budget")
		}
	})

	t.Run("a kill switch set through the CLI on A holds on B within 1s", func(t *testing.T) {
		require.Nil(t, call(t, b, fresh(), "orders__get_order", `{"id":"o-1001"}`).Error)
		cliStart := time.Now()
		code, out, errOut := mcpgwCLI(t, admin, "kill", "orders__get_order", "--reason", "bad deploy", "--ticket", "INC-7",
			"-addr", a.base, "-o", "json")
		cliDone := time.Now()
		require.Equal(t, 0, code, errOut)
		var sw switchJSON
		require.NoError(t, json.Unmarshal([]byte(out), &sw), out)

		var r rpcResponse
		deadline := cliDone.Add(10 * time.Second)
		for {
			r = call(t, b, fresh(), "orders__get_order", `{"id":"o-1001"}`)
			if r.Error != nil || time.Now().After(deadline) {
				break
			}
		}
		refused := time.Now()
		require.Equal(t, codeKilled, errCode(r), "B never enforced the switch")
		data := errData(t, r)
		assert.Equal(t, sw.ID, data["killSwitch"])
		assert.Equal(t, "INC-7", data["ticket"])
		assert.Contains(t, r.Error.Message, "bad deploy")
		sinceCreated, sinceCLI := refused.Sub(sw.Created), refused.Sub(cliDone)
		t.Logf("kill switch propagation A→B: %v after it was created on A, %v after the CLI returned (the CLI took %v)",
			sinceCreated.Round(time.Microsecond), sinceCLI.Round(time.Microsecond), cliDone.Sub(cliStart).Round(time.Microsecond))
		// An acceptance requirement of the fleet-wide switch, not a
		// synchronisation: B is polled until it refuses.
		assert.Less(t, sinceCreated, time.Second, "a switch flipped on A must hold on B within 1s")

		require.Eventually(t, func() bool { return !slices.Contains(listTools(t, b, fresh()), "orders__get_order") }, 10*time.Second,
			10*time.Millisecond, "the killed tool leaves B's tools/list")

		code, _, errOut = mcpgwCLI(t, admin, "revive", sw.ID, "-addr", b.base)
		require.Equal(t, 0, code, "revived on the other replica: %s", errOut)
		require.Eventually(t, func() bool { return call(t, a, fresh(), "orders__get_order", `{"id":"o-1001"}`).Error == nil },
			10*time.Second, 5*time.Millisecond, "A serves the tool again after the revive on B")
	})

	t.Run("an expired switch lifts itself", func(t *testing.T) {
		code, out, errOut := mcpgwCLI(t, admin, "kill", "orders__list_orders", "--reason", "short", "--ttl", "1s",
			"-addr", a.base, "-o", "json")
		require.Equal(t, 0, code, errOut)
		var sw switchJSON
		require.NoError(t, json.Unmarshal([]byte(out), &sw), out)
		require.False(t, sw.Expires.IsZero())

		require.Eventually(t, func() bool { return errCode(call(t, b, fresh(), "orders__list_orders", `{}`)) == codeKilled },
			10*time.Second, 5*time.Millisecond, "B never enforced the switch")
		require.Eventually(t, func() bool { return call(t, b, fresh(), "orders__list_orders", `{}`).Error == nil },
			15*time.Second, 20*time.Millisecond, "the switch never lifted itself")
		assert.False(t, time.Now().Before(sw.Expires), "lifted before it expired")
		require.Nil(t, call(t, a, fresh(), "orders__list_orders", `{}`).Error, "lifted on A too")

		// The expired switch is pruned from the shared store.
		rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
		defer rc.Close()
		require.Eventually(t, func() bool {
			ok, err := rc.HExists(t.Context(), "mcpgw:killswitches", sw.ID).Result()
			return err == nil && !ok
		}, 15*time.Second, 20*time.Millisecond, "the expired switch stays in Redis")
		code, out, errOut = mcpgwCLI(t, admin, "switches", "-addr", b.base, "-o", "json")
		require.Equal(t, 0, code, errOut)
		assert.NotContains(t, out, sw.ID)

		// The replica that pruned it audits the expiry.
		require.Eventually(t, func() bool {
			for _, p := range []*proc{a, b} {
				// The process is running: read only the complete lines.
				data, _ := os.ReadFile(p.auditPath)
				for line := range strings.Lines(string(data)) {
					var rec map[string]any
					if strings.HasSuffix(line, "\n") && json.Unmarshal([]byte(line), &rec) == nil &&
						rec["event"] == "killswitch" && rec["action"] == "expire" && rec["switch_id"] == sw.ID {
						return true
					}
				}
			}
			return false
		}, 15*time.Second, 20*time.Millisecond, "no audit record of the expiry")
	})
}

// listTools lists the tool names of a process over 2026-07-28.
func listTools(t *testing.T, p *proc, token string) []string {
	t.Helper()
	c := newRawClient(t, p.url)
	_, r := c.modern(modernRequest{
		method: "tools/list", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`,
		header: map[string]string{"Authorization": "Bearer " + token},
	})
	require.Nil(t, r.Error)
	var res struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	require.NoError(t, json.Unmarshal(r.Result, &res))
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// adminDo sends one admin API request to base (no token when empty) and
// returns the status and decoded body.
func adminDo(t *testing.T, base, token, method, path, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, base+path, rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp.StatusCode, out
}

// readyz returns the status and body of an in-process gateway's /readyz.
func readyz(t *testing.T, base string) (int, map[string]any) {
	t.Helper()
	return adminDo(t, base, "", http.MethodGet, "/readyz", "")
}

// TestRedisDiesMidRun kills redis-server under a running gateway: rate
// limits follow rate_limits.on_redis_error (local buckets, or refusal), kill
// switches keep serving from the last known state, and when Redis comes
// back empty the gateway puts its switches back.
func TestRedisDiesMidRun(t *testing.T) {
	for _, mode := range []string{configs.OnRedisErrorLocal, configs.OnRedisErrorRefuse} {
		t.Run("on_redis_error "+mode, func(t *testing.T) {
			rs := redistest.Start(t)
			d := startDemo(t)
			g := startGateway(t, d.config(fmt.Sprintf(`
redis: {url: %q}
policy:
  rate_limits:
    per_principal: {rate: 0.001, burst: 3}
    on_redis_error: %s
`, rs.URL(), mode)), true)
			hc := &http.Client{Timeout: 30 * time.Second}
			call := func(tool, args string) rpcResponse {
				t.Helper()
				status, r, err := modernCall(hc, g.url, "", "", tool, args)
				require.NoError(t, err)
				requireAnswer(t, status, r)
				return r
			}
			status, sw := adminDo(t, g.base, "", http.MethodPost, "/admin/v1/killswitches",
				`{"scope":"tool","target":"orders__get_order","reason":"data leak"}`)
			require.Equal(t, http.StatusCreated, status, sw)
			id, _ := sw["id"].(string)

			for i := range 3 {
				require.Nil(t, call("customers__lookup_customer", `{"id":"c-001"}`).Error, "call %d", i+1)
			}
			r := call("customers__lookup_customer", `{"id":"c-001"}`)
			require.Equal(t, codeRateLimited, errCode(r), "the Redis bucket is empty")
			require.Equal(t, codeKilled, errCode(call("orders__get_order", `{"id":"o-1001"}`)))

			rs.Stop()

			switch mode {
			case configs.OnRedisErrorLocal:
				// The local buckets, untouched while Redis answered, decide.
				for i := range 3 {
					r := call("customers__lookup_customer", `{"id":"c-001"}`)
					require.Nil(t, r.Error, "local call %d: %+v", i+1, r.Error)
				}
				r := call("customers__lookup_customer", `{"id":"c-001"}`)
				require.Equal(t, codeRateLimited, errCode(r), "the local bucket is empty too")
				assert.Equal(t, "per_principal", errData(t, r)["rule"])
			case configs.OnRedisErrorRefuse:
				for range 3 {
					r := call("customers__lookup_customer", `{"id":"c-001"}`)
					require.Equal(t, codeRateLimited, errCode(r))
					data := errData(t, r)
					assert.Equal(t, "redis_unavailable", data["rule"])
					assert.Greater(t, data["retryAfterMs"], float64(0))
				}
			}
			// Kill switches keep the last known state.
			r = call("orders__get_order", `{"id":"o-1001"}`)
			require.Equal(t, codeKilled, errCode(r), "the switch holds while Redis is down")
			assert.Equal(t, id, errData(t, r)["killSwitch"])
			status, list := adminDo(t, g.base, "", http.MethodGet, "/admin/v1/killswitches", "")
			require.Equal(t, http.StatusOK, status)
			assert.Equal(t, false, list["degraded"])
			status, body := readyz(t, g.base)
			assert.Equal(t, http.StatusOK, status, "the switch state is known: %v", body)

			// Redis comes back empty: the gateway puts its switch back, and
			// shared limiting resumes.
			rs.Restart()
			rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
			defer rc.Close()
			require.Eventually(t, func() bool {
				ok, err := rc.HExists(t.Context(), "mcpgw:killswitches", id).Result()
				return err == nil && ok
			}, 15*time.Second, 20*time.Millisecond, "the switch was never put back into Redis")
			require.Equal(t, codeKilled, errCode(call("orders__get_order", `{"id":"o-1001"}`)))
			if mode == configs.OnRedisErrorRefuse {
				require.Eventually(t, func() bool { return call("customers__lookup_customer", `{"id":"c-001"}`).Error == nil },
					15*time.Second, 20*time.Millisecond, "calls are still refused after Redis came back")
			}
		})
	}
}

// TestSwitchStateUnloadableAtStart starts a gateway whose kill-switch state
// cannot be loaded (a corrupt record in Redis, a corrupt state file): it
// does not serve tools it cannot vouch for, says so in /readyz, and
// recovers once the state loads.
func TestSwitchStateUnloadableAtStart(t *testing.T) {
	tests := []struct {
		name string
		// setup breaks the state and returns the config section that
		// points at it and a function that repairs it.
		setup func(t *testing.T) (string, func())
	}{
		{name: "redis", setup: func(t *testing.T) (string, func()) {
			t.Helper()
			rs := redistest.Start(t)
			rc := redis.NewClient(&redis.Options{Addr: rs.Addr()})
			t.Cleanup(func() { _ = rc.Close() })
			require.NoError(t, rc.HSet(t.Context(), "mcpgw:killswitches", "ks-broken", "{not json").Err())
			require.NoError(t, rc.Set(t.Context(), "mcpgw:killswitches:seeded", "1", 0).Err())
			return fmt.Sprintf("redis: {url: %q}\n", rs.URL()), func() {
				require.NoError(t, rc.HDel(t.Context(), "mcpgw:killswitches", "ks-broken").Err())
			}
		}},
		{name: "state file", setup: func(t *testing.T) (string, func()) {
			t.Helper()
			path := filepath.Join(t.TempDir(), "switches.json")
			require.NoError(t, os.WriteFile(path, []byte(`{"switches":[{"id":`), 0o600))
			return fmt.Sprintf("policy:\n  kill_switches: {state_file: %q}\n", path), func() {
				require.NoError(t, os.WriteFile(path, []byte(`{"switches":[]}`), 0o600))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			extra, repair := tt.setup(t)
			d := startDemo(t)
			g := startGateway(t, d.config(extra), true)
			hc := &http.Client{Timeout: 30 * time.Second}

			_, r, err := modernCall(hc, g.url, "", "", "customers__lookup_customer", `{"id":"c-001"}`)
			require.NoError(t, err)
			require.Equal(t, codeKilled, errCode(r), "a replica without switch state refuses calls")
			assert.Equal(t, "state-unavailable", errData(t, r)["killSwitch"])
			assert.Contains(t, r.Error.Message, "kill-switch state unavailable")

			status, body := readyz(t, g.base)
			assert.Equal(t, http.StatusServiceUnavailable, status)
			assert.Equal(t, "degraded", body["status"])
			assert.Equal(t, "unavailable", body["killswitches"])
			assert.Empty(t, rawToolNames(t, g.url), "no tool is listed while the switch state is unknown")

			repair()
			require.Eventually(t, func() bool {
				_, r, err := modernCall(hc, g.url, "", "", "customers__lookup_customer", `{"id":"c-001"}`)
				return err == nil && r.Error == nil
			}, 15*time.Second, 20*time.Millisecond, "calls never resumed after the state loaded")
			status, body = readyz(t, g.base)
			assert.Equal(t, http.StatusOK, status, body)
			require.Eventually(t, func() bool { return slices.Contains(rawToolNames(t, g.url), "customers__lookup_customer") },
				15*time.Second, 20*time.Millisecond, "tools never came back to tools/list")
		})
	}
}

// rawToolNames lists the tools of a gateway over a fresh session.
func rawToolNames(t *testing.T, url string) []string {
	t.Helper()
	var names []string
	for _, raw := range rawList(t, initialized(t, url), "tools/list", "tools") {
		n, err := toolName(raw)
		require.NoError(t, err)
		names = append(names, n)
	}
	return names
}

// TestRedisDownAtStart: a Redis that does not answer stops the gateway at
// start with an error naming its address (never the URL, which may hold a
// password), before anything is created: no audit file, no listener.
func TestRedisDownAtStart(t *testing.T) {
	rs := redistest.Start(t)
	rs.Stop()
	d := startDemo(t)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	yaml := d.config(fmt.Sprintf(`
redis: {url: "redis://user:hunter2@%s/0"}
audit:
  sinks: [{type: file, path: %q}]
`, rs.Addr(), auditPath))

	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err)
	_, err = gateway.New(cfg, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "redis at "+rs.Addr()+" does not answer PING")
	assert.NotContains(t, err.Error(), "hunter2")
	assertNoRecords(t, auditPath)

	p := filepath.Join(t.TempDir(), "mcpgw.yaml")
	require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
	code, _, errOut := mcpgwCLI(t, nil, "serve", "-config", p)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "does not answer PING")
	assert.NotContains(t, errOut, "hunter2")
	assertNoRecords(t, auditPath)
}

// assertNoRecords checks that an audit file is missing or empty.
func assertNoRecords(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err == nil {
		assert.Empty(t, data, "audit records were written")
	} else {
		assert.ErrorIs(t, err, os.ErrNotExist)
	}
}
