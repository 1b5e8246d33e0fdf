package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// exitsYAML configures three fakes behind an authenticated gateway (the
// tests put the principal in the request context themselves) with a
// scope on orders' cancel_* tools and a per-tool rate limit.
const exitsYAML = `server:
  listen: 127.0.0.1:0
auth:
  resource: https://gw.example/mcp
  issuers:
    - issuer: https://idp.invalid
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
    scopes:
      tools:
        - match: "cancel_*"
          scopes: [orders:write]
  - name: payments
    http:
      url: http://payments.invalid/mcp
  - name: gone
    http:
      url: http://gone.invalid/mcp
policy:
  rate_limits:
    per_principal_tool: {rate: 0.001, burst: 1}
`

// exitsGateway is the gateway of the exits tests.
func exitsGateway(t *testing.T) *testGateway {
	t.Helper()
	orders := newFake("orders",
		`{"name":"get_order","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`,
		`{"name":"cancel_order","inputSchema":{"type":"object"},"annotations":{"destructiveHint":true}}`,
		`{"name":"tool_error","inputSchema":{"type":"object"}}`,
		`{"name":"rpc_error","inputSchema":{"type":"object"}}`,
		`{"name":"transport","inputSchema":{"type":"object"}}`,
		`{"name":"timeout","inputSchema":{"type":"object"}}`,
		`{"name":"circuit","inputSchema":{"type":"object"}}`,
		`{"name":"busy","inputSchema":{"type":"object"}}`,
		`{"name":"panics","inputSchema":{"type":"object"}}`,
		`{"name":"waits","inputSchema":{"type":"object"}}`,
	)
	orders.handle = func(ctx context.Context, req *upstream.Request) (json.RawMessage, error) {
		switch req.Tool {
		case "tool_error":
			return json.RawMessage(`{"content":[{"type":"text","text":"no"}],"isError":true}`), nil
		case "rpc_error":
			return nil, &upstream.RPCError{Code: -32602, Message: "bad id", Data: json.RawMessage(`{"field":"id"}`)}
		case "transport":
			return nil, &upstream.Error{Upstream: "orders", Kind: upstream.ErrUnavailable, Detail: "connection refused"}
		case "timeout":
			return nil, &upstream.Error{Upstream: "orders", Kind: upstream.ErrTimeout, Detail: "no answer", Timeout: time.Second}
		case "circuit":
			return nil, &upstream.Error{Upstream: "orders", Kind: upstream.ErrCircuitOpen, Detail: "5 failures", Breaker: "open", RetryAfter: time.Second}
		case "busy":
			return nil, &upstream.Error{Upstream: "orders", Kind: upstream.ErrBusy, Err: errors.New("16 in flight"), RetryAfter: time.Second}
		case "panics":
			panic("a step panicked")
		case "waits":
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`), nil
	}
	payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`)
	gone := newFake("gone", `{"name":"ping","inputSchema":{"type":"object"}}`)
	gone.down.Store(true)
	return newTestGateway(t, exitsYAML, orders, payments, gone)
}

// TestEveryExitWritesOneRecord: every way a tools/call can end, in both
// eras, answers once and writes exactly one audit record, with the
// decision and outcome of that exit.
func TestEveryExitWritesOneRecord(t *testing.T) {
	tg := exitsGateway(t)
	alice := &authn.Principal{Issuer: "https://idp.invalid", Subject: "alice", Scopes: []string{"orders:write"}}
	bob := &authn.Principal{Issuer: "https://idp.invalid", Subject: "bob"}
	sid := tg.session(t, alice)
	ctx := t.Context()
	_, err := tg.controls.switches.Add(ctx, &policy.Switch{Scope: policy.ScopeUpstream, Target: "payments", Reason: "incident 7", Actor: "sre"})
	require.NoError(t, err)

	type exit struct {
		name     string
		rq       request
		status   int // HTTP status
		code     int // JSON-RPC error code, 0 for a result
		decision audit.Decision
		outcome  audit.Outcome
	}
	// Each modern call is made by a principal of its own, so that the
	// per-principal rate limit refuses only the calls meant to be refused.
	n := 0
	fresh := func() *authn.Principal {
		n++
		return &authn.Principal{Issuer: alice.Issuer, Subject: "m" + strconv.Itoa(n), Scopes: alice.Scopes}
	}
	modern := func(name, args string, p *authn.Principal) request {
		if p == nil {
			p = fresh()
		}
		rq := modernCall(1, name, args)
		rq.principal = p
		return rq
	}
	carol := fresh()
	legacy := func(name, args string) request {
		rq := legacyCall(sid, 1, name, args)
		rq.principal = alice
		return rq
	}
	exits := []exit{
		{"ok", modern("orders__get_order", `{"id":"o-1"}`, carol), 200, 0, audit.DecisionAllowed, audit.OutcomeOK},
		{"ok legacy", legacy("orders__get_order", `{"id":"o-2"}`), 200, 0, audit.DecisionAllowed, audit.OutcomeOK},
		{"tool error", modern("orders__tool_error", `{}`, nil), 200, 0, audit.DecisionAllowed, audit.OutcomeToolError},
		{"upstream JSON-RPC error", modern("orders__rpc_error", `{}`, nil), 400, -32602, audit.DecisionAllowed, audit.OutcomeJSONRPCError},
		{"transport", legacy("orders__transport", `{}`), 200, mcpwire.CodeUpstreamUnavailable, audit.DecisionAllowed, audit.OutcomeTransportError},
		{"timeout", modern("orders__timeout", `{}`, nil), 200, mcpwire.CodeUpstreamTimeout, audit.DecisionAllowed, audit.OutcomeTimeout},
		{"circuit open", modern("orders__circuit", `{}`, nil), 200, mcpwire.CodeCircuitOpen, audit.DecisionCircuitOpen, ""},
		{"bulkhead", legacy("orders__busy", `{}`), 200, mcpwire.CodeUpstreamBusy, audit.DecisionBusy, ""},
		{"panic", modern("orders__panics", `{}`, nil), 200, mcpwire.CodeInternalError, audit.DecisionAllowed, audit.OutcomeJSONRPCError},
		{"panic legacy", legacy("orders__panics", `{}`), 200, mcpwire.CodeInternalError, audit.DecisionAllowed, audit.OutcomeJSONRPCError},
		{"unknown tool", modern("orders__nope", `{}`, nil), 400, mcpwire.CodeInvalidParams, audit.DecisionInvalid, ""},
		{"unknown tool legacy", legacy("orders__nope", `{}`), 200, mcpwire.CodeInvalidParams, audit.DecisionInvalid, ""},
		{"unavailable upstream", modern("gone__ping", `{}`, nil), 200, mcpwire.CodeUpstreamUnavailable, audit.DecisionUnavailable, ""},
		{"kill switch on headers", modern("payments__refund", `{}`, nil), 403, mcpwire.CodeKilled, audit.DecisionKilled, ""},
		{"kill switch legacy", legacy("payments__refund", `{}`), 200, mcpwire.CodeKilled, audit.DecisionKilled, ""},
		{"insufficient scope", modern("orders__cancel_order", `{}`, bob), 403, 0, audit.DecisionDenied, ""},
		{"rate limited on headers", modern("orders__get_order", `{}`, carol), 429, mcpwire.CodeRateLimited, audit.DecisionLimited, ""},
		{"rate limited legacy", legacy("orders__get_order", `{}`), 200, mcpwire.CodeRateLimited, audit.DecisionLimited, ""},
		{"body does not match its headers", request{
			principal: fresh(), header: modernHeaders("tools/call", "orders__tool_error"),
			body: modernBody(1, "tools/call", `"name":"orders__transport","arguments":{}`),
		}, 400, mcpwire.CodeHeaderMismatch, audit.DecisionAllowed, audit.OutcomeJSONRPCError},
		{"malformed body after admission", request{
			principal: fresh(), header: modernHeaders("tools/call", "orders__rpc_error"), body: `{"jsonrpc":"2.0",`,
		}, 400, mcpwire.CodeParseError, audit.DecisionAllowed, audit.OutcomeJSONRPCError},
	}
	ids := make(map[string]exit, len(exits))
	for _, e := range exits {
		w, id := tg.post(t, e.rq)
		require.Equal(t, e.status, w.Code, "%s: %s", e.name, w.Body.String())
		if e.decision != audit.DecisionDenied {
			assert.Equal(t, e.code, errorCode(t, w), "%s: %s", e.name, w.Body.String())
		} else {
			assert.Contains(t, w.Header().Get("WWW-Authenticate"), "insufficient_scope", e.name)
		}
		ids[id] = e
	}

	// The client goes away while the upstream works on its call.
	cctx, cancel := context.WithCancel(ctx)
	rq := modern("orders__waits", `{}`, nil)
	r := httptest.NewRequestWithContext(cctx, http.MethodPost, "/mcp", strings.NewReader(rq.body))
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-Id", "req-cancelled")
	done := make(chan struct{})
	go func() {
		defer close(done)
		tg.serve(httptest.NewRecorder(), r, rq.principal)
	}()
	require.Eventually(t, func() bool { return len(tg.ups["orders"].requests()) > 0 && lastTool(tg.ups["orders"]) == "waits" },
		10*time.Second, time.Millisecond, "the call reached the upstream")
	cancel()
	<-done
	ids["req-cancelled"] = exit{name: "client cancel", decision: audit.DecisionAllowed, outcome: audit.OutcomeTransportError}

	// The gateway begins to shut down: new calls are refused.
	tg.draining.Store(true)
	w, id := tg.post(t, modern("orders__get_order", `{}`, nil))
	assert.Equal(t, mcpwire.CodeShuttingDown, errorCode(t, w))
	ids[id] = exit{name: "shutting down", decision: audit.DecisionUnavailable}
	tg.draining.Store(false)

	tg.Close() // flushes the audit stream
	byID := map[string][]map[string]any{}
	for _, rec := range tg.audit.records(t) {
		if rec["event"] == string(audit.EventToolsCall) {
			id, _ := rec["request_id"].(string)
			byID[id] = append(byID[id], rec)
		}
	}
	for id, e := range ids {
		recs := byID[id]
		if !assert.Len(t, recs, 1, "%s: one record", e.name) {
			continue
		}
		assert.Equal(t, string(e.decision), recs[0]["decision"], "%s: decision", e.name)
		outcome, _ := recs[0]["outcome"].(string)
		assert.Equal(t, string(e.outcome), outcome, "%s: outcome", e.name)
	}
	assert.Len(t, byID, len(ids), "no record for anything else")
}

// lastTool is the original tool name of the last call f got.
func lastTool(f *fakeUpstream) string {
	reqs := f.requests()
	if len(reqs) == 0 {
		return ""
	}
	return reqs[len(reqs)-1].Tool
}

// TestCallReachesUpstreamAsItsOwn: through either era, the upstream gets
// its own tool name, the arguments byte for byte, the request id, and
// (2026-07-28) the Mcp-Param-* headers the client sent; the client gets the
// result byte for byte.
func TestCallReachesUpstreamAsItsOwn(t *testing.T) {
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
	orders.handle = func(_ context.Context, _ *upstream.Request) (json.RawMessage, error) {
		return json.RawMessage(`{"content":[{"type":"text","text":"o-1 is shipped"}],"structuredContent":{"id":"o-1"}}`), nil
	}
	tg := newTestGateway(t, fakesYAML("orders"), orders)
	sid := tg.session(t, nil)
	args := `{"id":"o-1","note":"  spaced  "}`
	modern := modernCall(3, "orders__get_order", args)
	modern.header["Mcp-Param-Region"] = "eu"
	for _, rq := range []request{modern, legacyCall(sid, 4, "orders__get_order", args)} {
		w, id := tg.post(t, rq)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		res, ok := rpcAnswer(t, w)["result"].(map[string]any)
		require.True(t, ok, w.Body.String())
		assert.Equal(t, map[string]any{"id": "o-1"}, res["structuredContent"])
		got := lastRequest(t, orders)
		assert.Equal(t, "get_order", got.Tool)
		assert.Equal(t, "tools/call", got.Method)
		assert.Equal(t, id, got.RequestID)
		assert.Contains(t, string(got.Params), `"name":"get_order"`)
		assert.Contains(t, string(got.Params), `"arguments":`+args)
	}
	reqs := orders.requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, "eu", reqs[0].Header.Get("Mcp-Param-Region"), "2026-07-28 forwards Mcp-Param-*")
	assert.Empty(t, reqs[1].Header.Get("Mcp-Param-Region"))
}
