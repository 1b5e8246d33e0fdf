package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// startDemoUpstreamProc runs a demo upstream as its own process (built
// without -race, so that it is not the bottleneck of a load test) and
// returns its MCP URL.
func startDemoUpstreamProc(t *testing.T, server string) string {
	t.Helper()
	url, _ := startDemoUpstreamCmd(t, server)
	return url
}

// startDemoUpstreamCmd is startDemoUpstreamProc that also returns the
// process, for tests that kill it.
func startDemoUpstreamCmd(t *testing.T, server string) (string, *exec.Cmd) {
	t.Helper()
	// Not t.Context: that is cancelled before cleanups run, and the cleanup
	// below stops the process gracefully with SIGTERM.
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), demoUpstreamBin, "-server", server, "-listen", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "demo-upstream %s printed no URL", server)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "MCP_URL=")
	require.True(t, ok, "unexpected first line %q", line)
	return url, cmd
}

// auditCall is one call of the audit load test and what came back.
type auditCall struct {
	tool   string
	status int // 0 when no response arrived
	code   int // JSON-RPC error code, 0 for a result
	err    error
}

// TestAuditEveryCallExactlyOnceAcrossSIGTERM sends 10,000 tools/call at
// concurrency 32 through an mcpgw process, mixing calls that are allowed,
// denied (missing scope, HTTP 403), limited, killed and invalid, and sends
// the process SIGTERM halfway. Every call that got an answer has exactly
// one audit record, found by its X-Request-ID, with the decision its answer
// shows; a call that got no answer has none; the file is valid JSON Lines.
func TestAuditEveryCallExactlyOnceAcrossSIGTERM(t *testing.T) {
	const (
		total       = 10_000
		concurrency = 32
		sigtermAt   = total / 2 // responses before SIGTERM
	)
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	customers := startDemoUpstreamProc(t, "customers")
	orders := startDemoUpstreamProc(t, "orders")
	p := startProc(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
  - name: orders
    http: {url: %q}
    scopes:
      tools: [{match: "cancel_*", scopes: [orders:write]}]
policy:
  rate_limits:
    per_upstream_overrides:
      orders: {rate: 0.001, burst: 1}
`, resource, iss.URL(), customers, orders), true)

	admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})
	status, sw := adminDo(t, p.base, admin, http.MethodPost, "/admin/v1/killswitches",
		`{"scope":"tool","target":"orders__get_order","reason":"audit test"}`)
	require.Equal(t, http.StatusCreated, status, sw)
	alice := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})

	// The mix: 40% allowed, 20% denied, 20% limited (after the first),
	// 19% killed, 1% invalid.
	toolOf := func(i int) (string, string) {
		switch i % 10 {
		case 0, 1, 2, 3:
			return "customers__lookup_customer", `{"id":"c-003"}`
		case 4, 5:
			return "orders__cancel_order", `{"id":"o-1001","reason":"x"}`
		case 6, 7:
			return "orders__list_orders", `{}`
		default:
			if i%100 == 99 {
				return "nope__missing", `{}`
			}
			return "orders__get_order", `{"id":"o-1001"}`
		}
	}

	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxIdleConns: concurrency},
	}
	t.Cleanup(hc.CloseIdleConnections)
	calls := make([]auditCall, total)
	jobs := make(chan int)
	var answered atomic.Int64
	sigterm := make(chan struct{})
	var sigOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range concurrency {
		wg.Go(func() {
			for i := range jobs {
				tool, args := toolOf(i)
				status, r, err := modernCall(hc, p.url, alice, requestID(i), tool, args)
				calls[i] = auditCall{tool: tool, status: status, code: errCode(r), err: err}
				if status != 0 && answered.Add(1) == sigtermAt {
					sigOnce.Do(func() { close(sigterm) })
				}
			}
		})
	}
	sent := make(chan time.Time, 1)
	go func() {
		<-sigterm
		sent <- time.Now()
		_ = p.signal(syscall.SIGTERM)
	}()
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	elapsed := time.Since(start)
	require.NoError(t, p.wait(), "mcpgw exits cleanly after SIGTERM")
	var sigAt time.Time
	select {
	case sigAt = <-sent:
	default:
		t.Fatal("SIGTERM was never sent")
	}

	// What each answer says the decision was. A JSON-RPC error may come with an HTTP error status in 2026-07-28
	// (400 for invalid params; 403, 429 or 503 for a refusal decided on
	// the headers); a missing scope is a 403 OAuth challenge.
	wantDecision := func(c auditCall) (string, bool) {
		switch c.code {
		case 0:
			switch c.status {
			case http.StatusOK:
				return "allowed", true
			case http.StatusForbidden:
				return "denied", true
			default:
				return "", false
			}
		case codeKilled:
			return "killed", true
		case codeRateLimited:
			return "limited", true
		case -32602:
			return "invalid", true
		case -32053:
			return "unavailable", true
		default:
			return "", false
		}
	}

	records := map[string][]map[string]any{}
	lines := auditLines(t, p.auditPath)
	for _, rec := range lines {
		if rec["event"] != "tools/call" {
			continue
		}
		id, _ := rec["request_id"].(string)
		records[id] = append(records[id], rec)
	}

	counts := map[string]int{}
	var refusedAtConnect, otherErrors int
	for i, c := range calls {
		id := requestID(i)
		recs := records[id]
		delete(records, id)
		if c.err != nil || c.status == 0 {
			if errors.Is(c.err, syscall.ECONNREFUSED) {
				refusedAtConnect++
			} else {
				otherErrors++
				if otherErrors <= 3 {
					t.Logf("call %s got no answer: %v", id, c.err)
				}
			}
			assert.Empty(t, recs, "call %s got no answer (%v) but has a record", id, c.err)
			continue
		}
		want, ok := wantDecision(c)
		if !assert.True(t, ok, "call %s (%s): unexpected answer: HTTP %d, code %d", id, c.tool, c.status, c.code) {
			continue
		}
		counts[want]++
		if !assert.Len(t, recs, 1, "call %s (%s, %s) must have exactly one record", id, c.tool, want) {
			continue
		}
		rec := recs[0]
		assert.Equal(t, want, rec["decision"], "call %s (%s)", id, c.tool)
		assert.Equal(t, c.tool, rec["tool"], "call %s", id)
		assert.Equal(t, "alice", rec["subject"], "call %s", id)
		if want == "allowed" {
			assert.Equal(t, "ok", rec["outcome"], "call %s", id)
		}
	}
	assert.Empty(t, records, "records of calls that were never made")

	t.Logf("%d calls at concurrency %d in %v; SIGTERM after %d answers (%v in); answered by decision: %v; refused at connect: %d; other transport errors: %d; audit lines: %d",
		total, concurrency, elapsed.Round(time.Millisecond), sigtermAt, sigAt.Sub(start).Round(time.Millisecond), counts,
		refusedAtConnect, otherErrors, len(lines))
	for _, d := range []string{"allowed", "denied", "limited", "killed", "invalid"} {
		assert.Positive(t, counts[d], "the mix has %s calls", d)
	}
	assert.GreaterOrEqual(t, counts["allowed"]+counts["denied"]+counts["limited"]+counts["killed"]+counts["invalid"]+counts["unavailable"], sigtermAt)
	assert.Positive(t, refusedAtConnect, "calls after the shutdown are refused at connect")
}

func requestID(i int) string { return fmt.Sprintf("audit-%05d", i) }
