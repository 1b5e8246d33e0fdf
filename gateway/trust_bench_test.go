package gateway

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/authn"
)

// BenchmarkCallRules measures a whole 2026-07-28 tools/call through the
// call path to an in-memory upstream, with and without policy rules. A
// call that no argument rule can match must allocate no more with the
// rules than without them ("none" against "rules-no-args-match"): its
// verdict is cached per token and tool, and its arguments are never
// decoded. "args-rule-applies" is the cost of a call whose verdict needs
// its arguments, and "schema" of one whose arguments are checked against
// the tool's input schema.
func BenchmarkCallRules(b *testing.B) {
	noRules, _, _ := strings.Cut(trustYAML, "policy:")
	noSchema := strings.Replace(trustYAML, `    check_arguments: ["refund"]`+"\n", "", 1)
	tests := []struct {
		name, yaml, tool, args string
	}{
		{"none", strings.Replace(noRules, `    check_arguments: ["refund"]`+"\n", "", 1), "orders__get_order", `{"id":"o-1"}`},
		{"rules-no-args-match", noSchema, "orders__get_order", `{"id":"o-1"}`},
		{"args-rule-applies", noSchema, "payments__refund", `{"amount":20,"order":"o-1"}`},
		{"schema", noRules, "payments__refund", `{"amount":20,"order":"o-1"}`},
	}
	p := &authn.Principal{Subject: "bob", TokenHash: "t-bob", Claims: map[string]any{"groups": []any{"ops"}}}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`)
			payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object","properties":{"amount":{"type":"number"},"order":{"type":"string"}}}}`)
			tg := newTestGateway(b, tt.yaml, orders, payments)
			orders.handle, payments.handle = nil, nil
			benchModernCall(authn.WithPrincipal(b.Context(), p), b, tg, modernCall(1, tt.tool, tt.args))
		})
	}
}

// benchModernCall measures serveMCP answering the 2026-07-28 request rq,
// made in ctx, and fails on any answer but a result.
func benchModernCall(ctx context.Context, b *testing.B, tg *testGateway, rq request) {
	b.Helper()
	body := []byte(rq.body)
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/mcp", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	b.ReportAllocs()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		w := httptest.NewRecorder()
		tg.serveMCP(w, r)
		if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"error"`)) {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
