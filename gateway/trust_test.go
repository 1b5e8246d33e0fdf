package gateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// trustYAML has the three rules of docs/policy.md, and checks the
// arguments of payments' refund against its schema.
const trustYAML = `server:
  listen: 127.0.0.1:0
upstreams:
  - name: orders
    http: {url: "http://orders.invalid/mcp"}
  - name: payments
    http: {url: "http://payments.invalid/mcp"}
    check_arguments: ["refund"]
policy:
  rules:
    - name: support-read-only
      when: '"support" in principal.claims.?groups.orValue([]) && !tool.annotations.?readOnlyHint.orValue(false)'
    - name: destructive-step-up
      when: 'tool.annotations.?destructiveHint.orValue(false) && !("orders:admin" in principal.scopes)'
    - name: refunds-need-a-human
      when: 'tool.original == "refund" && args.amount > 100 && !has(principal.claims.act)'
`

func trustGateway(t *testing.T) *testGateway {
	t.Helper()
	orders := newFake("orders",
		`{"name":"get_order","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`,
		`{"name":"update_order","inputSchema":{"type":"object"}}`,
		`{"name":"cancel_order","inputSchema":{"type":"object"},"annotations":{"destructiveHint":true}}`)
	payments := newFake("payments",
		`{"name":"refund","inputSchema":{"type":"object","properties":{"amount":{"type":"number"},"order":{"type":"string"}},"required":["amount"]}}`)
	return newTestGateway(t, trustYAML, orders, payments)
}

var (
	supportAgent = &authn.Principal{Subject: "ann", TokenHash: "t-ann", Claims: map[string]any{"groups": []any{"support"}}}
	opsAgent     = &authn.Principal{Subject: "bob", TokenHash: "t-bob", Claims: map[string]any{"groups": []any{"ops"}}}
	admin        = &authn.Principal{Subject: "cy", TokenHash: "t-cy", Scopes: []string{"orders:admin"}, Claims: map[string]any{}}
	onBehalf     = &authn.Principal{Subject: "agent", TokenHash: "t-human", Claims: map[string]any{"act": map[string]any{"sub": "dora"}}}
)

// TestRulesOnTheCallPath: each kind of rule (claims, annotations,
// arguments) allows and denies, in both eras; a denial names the rule in
// the error's data and in the audit record, and never reaches the
// upstream.
func TestRulesOnTheCallPath(t *testing.T) {
	tg := trustGateway(t)
	tests := []struct {
		name string
		p    *authn.Principal
		tool string
		args string
		rule string // the denying rule; "" when allowed
	}{
		{"claims allow: support reads", supportAgent, "orders__get_order", `{}`, ""},
		{"claims deny: support may not write", supportAgent, "orders__update_order", `{}`, "support-read-only"},
		{"annotations deny: destructive without step-up", opsAgent, "orders__cancel_order", `{}`, "destructive-step-up"},
		{"annotations allow: destructive with step-up", admin, "orders__cancel_order", `{}`, ""},
		{"arguments allow: small refund", opsAgent, "payments__refund", `{"amount":20}`, ""},
		{"arguments deny: large refund without a human", opsAgent, "payments__refund", `{"amount":250}`, "refunds-need-a-human"},
		{"arguments allow: large refund on behalf of a human", onBehalf, "payments__refund", `{"amount":250}`, ""},
	}
	var ids []string
	want := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, modern := range []bool{false, true} {
				up := tg.ups[upstreamOf(tt.tool)]
				before := len(up.requests())
				var rq request
				if modern {
					rq = modernCall(1, tt.tool, tt.args)
				} else {
					rq = legacyCall(tg.session(t, tt.p), 1, tt.tool, tt.args)
				}
				rq.principal = tt.p
				w, id := tg.post(t, rq)
				status := http.StatusOK
				if modern && tt.rule != "" && tt.rule != "refunds-need-a-human" {
					// Refused on its headers, before the body is read.
					status = http.StatusForbidden
				}
				require.Equal(t, status, w.Code, w.Body.String())
				ids = append(ids, id)
				want[id] = tt.rule
				if tt.rule == "" {
					assert.Equal(t, 0, errorCode(t, w), w.Body.String())
					assert.Len(t, up.requests(), before+1)
					continue
				}
				assert.Equal(t, mcpwire.CodePolicyDenied, errorCode(t, w))
				data, _ := rpcAnswer(t, w)["error"].(map[string]any)["data"].(map[string]any)
				assert.Equal(t, tt.rule, data["rule"], "modern=%v", modern)
				assert.Equal(t, tt.tool, data["tool"])
				assert.Len(t, up.requests(), before, "a denied call never reaches the upstream")
			}
		})
	}
	tg.Close() // flushes the audit stream
	byID := map[string]map[string]any{}
	for _, rec := range tg.audit.records(t) {
		if id, _ := rec["request_id"].(string); id != "" {
			byID[id] = rec
		}
	}
	for _, id := range ids {
		rec := byID[id]
		require.NotNil(t, rec, id)
		if want[id] == "" {
			assert.Equal(t, "allowed", rec["decision"], id)
			continue
		}
		assert.Equal(t, "denied", rec["decision"], id)
		assert.Equal(t, "rule:"+want[id], rec["rule"], id)
		assert.InDelta(t, mcpwire.CodePolicyDenied, rec["error_code"], 0, id)
	}
}

// TestRulesFilterLists: a principal never sees a tool the rules refuse it
// whatever the arguments; a tool an argument rule may refuse stays
// listed.
func TestRulesFilterLists(t *testing.T) {
	tg := trustGateway(t)
	tests := []struct {
		p    *authn.Principal
		want []string
	}{
		{supportAgent, []string{"orders__get_order"}}, // refund is not read-only
		{opsAgent, []string{"orders__get_order", "orders__update_order", "payments__refund"}},
		{admin, []string{"orders__get_order", "orders__update_order", "orders__cancel_order", "payments__refund"}},
		{opsAgent, []string{"orders__get_order", "orders__update_order", "payments__refund"}}, // cached
	}
	for _, tt := range tests {
		rq := modernRequest(1, "tools/list", "", "", `{}`)
		rq.principal = tt.p
		w, _ := tg.post(t, rq)
		modern := listed(t, resultOf(t, w), "tools", "name")
		sid := tg.session(t, tt.p)
		rq = legacyRequest(sid, 2, "tools/list", `{}`)
		rq.principal = tt.p
		w, _ = tg.post(t, rq)
		assert.Equal(t, tt.want, modern, tt.p.Subject)
		assert.Equal(t, modern, listed(t, resultOf(t, w), "tools", "name"), tt.p.Subject)
	}
}

// TestArgumentsCheckedAgainstSchema: a call whose arguments do not
// conform to the tool's inputSchema is refused as invalid params with the
// schema error's path, in both eras, and never reaches the upstream; a
// conforming one does. A tool whose upstream does not check is passed
// through as is.
func TestArgumentsCheckedAgainstSchema(t *testing.T) {
	tg := trustGateway(t)
	payments := tg.ups["payments"]
	tests := []struct {
		name, args string
		path       string // the schema error's path; "" when accepted
	}{
		{"wrong type", `{"amount":"twenty"}`, "/amount"},
		{"missing required", `{"order":"o-1"}`, "/"},
		{"nested wrong type", `{"amount":5,"order":7}`, "/order"},
		{"conforming", `{"amount":5,"order":"o-1"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, modern := range []bool{false, true} {
				before := len(payments.requests())
				rq := modernCall(1, "payments__refund", tt.args)
				if !modern {
					rq = legacyCall(tg.session(t, opsAgent), 1, "payments__refund", tt.args)
				}
				rq.principal = opsAgent
				w, _ := tg.post(t, rq)
				if tt.path == "" {
					assert.Equal(t, 0, errorCode(t, w), w.Body.String())
					assert.Len(t, payments.requests(), before+1)
					continue
				}
				require.Equal(t, mcpwire.CodeInvalidParams, errorCode(t, w), w.Body.String())
				data, _ := rpcAnswer(t, w)["error"].(map[string]any)["data"].(map[string]any)
				errs, _ := data["errors"].([]any)
				require.NotEmpty(t, errs, w.Body.String())
				first, _ := errs[0].(map[string]any)
				assert.Equal(t, tt.path, first["path"], w.Body.String())
				assert.Len(t, payments.requests(), before, "the upstream never saw the call")
			}
		})
	}
	// orders checks nothing: any arguments reach it.
	rq := modernCall(1, "orders__get_order", `{"id":["not","checked"]}`)
	rq.principal = opsAgent
	w, _ := tg.post(t, rq)
	assert.Equal(t, 0, errorCode(t, w), w.Body.String())
}

// upstreamOf is the upstream of an exposed name in these tests.
func upstreamOf(exposed string) string {
	for i := range len(exposed) - 1 {
		if exposed[i:i+2] == "__" {
			return exposed[:i]
		}
	}
	return ""
}
