package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/upstream"
)

// reportingFake is a fake with a breaker and a bulkhead to report, as
// *upstream.Client has.
type reportingFake struct {
	*fakeUpstream
	state    atomic.Value // string, the upstream's own breaker
	inFlight atomic.Int64
}

var _ reporter = (*reportingFake)(nil)

func (f *reportingFake) Breakers() []upstream.BreakerState {
	st, _ := f.state.Load().(string)
	return []upstream.BreakerState{{State: st}, {Tool: "get_order", State: upstream.BreakerOpen}}
}

func (f *reportingFake) Load() upstream.Load {
	return upstream.Load{InFlight: int(f.inFlight.Load()), MaxConcurrent: 8}
}

// telemetryGateway serves orders (reporting a breaker) and payments with
// metrics on /metrics, tracing off.
func telemetryGateway(t *testing.T) (*testGateway, *reportingFake) {
	t.Helper()
	tel, err := telemetry.New(configs.Telemetry{Tracing: configs.Tracing{Exporter: configs.TracingNone}}, telemetry.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(t.Context())) })
	orders := &reportingFake{fakeUpstream: newFake("orders",
		`{"name":"get_order","inputSchema":{"type":"object"}}`,
		`{"name":"tool_error","inputSchema":{"type":"object"}}`,
		`{"name":"circuit","inputSchema":{"type":"object"}}`)}
	orders.state.Store(upstream.BreakerHalfOpen)
	orders.cat.Prompts = []json.RawMessage{json.RawMessage(`{"name":"summary"}`)}
	orders.cat.Resources = []json.RawMessage{json.RawMessage(`{"uri":"orders://readme","name":"readme"}`)}
	orders.handle = func(_ context.Context, req *upstream.Request) (json.RawMessage, error) {
		switch req.Tool {
		case "tool_error":
			return json.RawMessage(`{"content":[],"isError":true}`), nil
		case "circuit":
			return nil, &upstream.Error{Upstream: "orders", Kind: upstream.ErrCircuitOpen, Detail: "open", Breaker: "open", RetryAfter: time.Second}
		}
		return json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`), nil
	}
	payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`)
	tg := buildGateway(t, fakesYAML("orders", "payments"), &Options{Telemetry: tel}, orders, payments)
	tg.ups["orders"] = orders.fakeUpstream
	require.True(t, tg.Ready())
	return tg, orders
}

// metricValue is the value of the /metrics sample named name whose labels
// include every one of labels (`key="value"`); ok is false when there is
// none.
func metricValue(t *testing.T, exposition, name string, labels ...string) (float64, bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
				break
			}
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		require.NoError(t, err, line)
		return v, true
	}
	return 0, false
}

// TestMetricsCountCalls: /metrics on the main handler counts each call's
// decision per upstream and its duration per method, tool, version and
// error type, and reports the gateway's gauges.
func TestMetricsCountCalls(t *testing.T) {
	tg, orders := telemetryGateway(t)
	sid := tg.session(t, nil)
	_, err := tg.controls.switches.Add(t.Context(), &policy.Switch{Scope: policy.ScopeTool, Target: "payments__refund", Reason: "incident", Actor: "sre"})
	require.NoError(t, err)

	calls := []request{
		modernCall(1, "orders__get_order", `{}`),
		modernCall(2, "orders__get_order", `{}`),
		legacyCall(sid, 3, "orders__get_order", `{}`),
		modernCall(4, "orders__tool_error", `{}`),
		modernCall(5, "orders__circuit", `{}`),
		modernCall(6, "orders__nope", `{}`),
		modernCall(7, "payments__refund", `{}`),
		modernRequest(8, "prompts/get", "orders__summary", `"name":"orders__summary"`, `{}`),
		legacyRequest(sid, 9, "resources/read", `{"uri":"orders://readme"}`),
	}
	for _, c := range calls {
		w, _ := tg.post(t, c)
		require.NotEqual(t, http.StatusInternalServerError, w.Code)
	}
	orders.inFlight.Store(3)

	w := tg.do(t, http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, w.Code)
	m := w.Body.String()
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"mcpgw_decisions_total", []string{`decision="allowed"`, `upstream="orders"`}, 4},
		{"mcpgw_decisions_total", []string{`decision="circuit_open"`, `upstream="orders"`}, 1},
		{"mcpgw_decisions_total", []string{`decision="invalid"`}, 1},
		{"mcpgw_decisions_total", []string{`decision="killed"`, `upstream="payments"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`mcp_method_name="tools/call"`, `gen_ai_tool_name="orders__get_order"`, `mcp_protocol_version="2026-07-28"`}, 2},
		{"mcp_server_operation_duration_seconds_count", []string{`mcp_method_name="tools/call"`, `gen_ai_tool_name="orders__get_order"`, `mcp_protocol_version="2025-11-25"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`gen_ai_tool_name="orders__tool_error"`, `error_type="tool_error"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`gen_ai_tool_name="orders__circuit"`, `error_type="-32064"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`gen_ai_tool_name="payments__refund"`, `error_type="-32060"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`mcp_method_name="prompts/get"`}, 1},
		{"mcp_server_operation_duration_seconds_count", []string{`mcp_method_name="resources/read"`, `mcp_protocol_version="2025-11-25"`}, 1},
		{"mcpgw_sessions_active", nil, 1},
		{"mcpgw_catalog_items", []string{`kind="tools"`, `upstream="orders"`}, 3},
		{"mcpgw_catalog_items", []string{`kind="prompts"`, `upstream="orders"`}, 1},
		{"mcpgw_catalog_items", []string{`kind="resources"`, `upstream="orders"`}, 1},
		{"mcpgw_killswitches_active", []string{`scope="tool"`}, 1},
		{"mcpgw_killswitches_active", []string{`scope="global"`}, 0},
		{"mcpgw_breaker_state", []string{`upstream="orders"`, `state="half_open"`}, 1},
	}
	for _, tt := range want {
		v, ok := metricValue(t, m, tt.name, tt.labels...)
		if assert.True(t, ok, "%s%v in\n%s", tt.name, tt.labels, m) {
			assert.InDelta(t, tt.value, v, 0, "%s%v", tt.name, tt.labels)
		}
	}
	_, ok := metricValue(t, m, "mcp_server_operation_duration_seconds_count", `gen_ai_tool_name="orders__nope"`)
	assert.False(t, ok, "labels name only catalog tools")

	code, body := readyz(t, tg)
	assert.Equal(t, http.StatusOK, code)
	ups, _ := body["upstreams"].([]any)
	require.NotEmpty(t, ups)
	u, _ := ups[0].(map[string]any)
	assert.Equal(t, "half-open", u["breaker"])
	assert.InDelta(t, 3, u["in_flight"], 0)

	aw := tg.do(t, http.MethodGet, "/admin/v1/upstreams", "", nil)
	status, _ := decode(t, aw.Body.Bytes())["upstreams"].([]any)
	require.NotEmpty(t, status)
	first, _ := status[0].(map[string]any)
	assert.Equal(t, "half-open", first["breaker"])
	assert.Equal(t, []any{map[string]any{"tool": "get_order", "state": "open"}}, first["breakers"], "per-tool breakers")
	assert.InDelta(t, 8, first["max_concurrent"], 0)
}

// TestServerSpans: each forwarded request is one SERVER span named
// "{method} {target}", parented by the trace context in params._meta and
// linked to the HTTP headers' one, with the decision and error type;
// a session appears by its digest only.
func TestServerSpans(t *testing.T) {
	tg, _ := telemetryGateway(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.WithoutCancel(t.Context())) })
	tg.obs.tracer = tp.Tracer("test")
	sid := tg.session(t, nil)

	const (
		metaParent   = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
		headerParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	traced := modernCall(1, "orders__get_order", `{}`)
	traced.body = strings.Replace(traced.body, `"_meta":{`, `"_meta":{"traceparent":"`+metaParent+`","tracestate":"k=v",`, 1)
	traced.header["Traceparent"] = headerParent
	fromHeader := modernCall(2, "orders__get_order", `{}`)
	fromHeader.header["Traceparent"] = headerParent
	legacy := legacyCall(sid, 3, "orders__tool_error", `{}`)
	legacy.body = strings.Replace(legacy.body, `"id":3`, `"id":"three"`, 1)
	for _, rq := range []request{
		traced,
		fromHeader,
		legacy,
		modernCall(4, "orders__nope", `{}`),
		modernRequest(5, "prompts/get", "orders__summary", `"name":"orders__summary"`, `{}`),
		modernRequest(6, "resources/read", "orders://readme", `"uri":"orders://readme"`, `{}`),
		modernRequest(7, "completion/complete", "", `"ref":{"type":"ref/prompt","name":"orders__summary"},"argument":{"name":"a","value":""}`, `{}`),
	} {
		_, _ = tg.post(t, rq)
	}

	spans := rec.Ended()
	require.Len(t, spans, 7)
	attrs := func(s sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = kv.Value.String()
		}
		return m
	}
	for _, s := range spans {
		assert.Equal(t, trace.SpanKindServer, s.SpanKind(), s.Name())
	}

	s := spans[0]
	assert.Equal(t, "tools/call orders__get_order", s.Name())
	assert.Equal(t, "0af7651916cd43dd8448eb211c80319c", s.Parent().TraceID().String(), "parent from _meta")
	require.Len(t, s.Links(), 1)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", s.Links()[0].SpanContext.TraceID().String(), "linked to the HTTP context")
	a := attrs(s)
	assert.Equal(t, "tools/call", a["mcp.method.name"])
	assert.Equal(t, "orders__get_order", a["gen_ai.tool.name"])
	assert.Equal(t, "execute_tool", a["gen_ai.operation.name"])
	assert.Equal(t, "orders", a["upstream"])
	assert.Equal(t, "allowed", a["decision"])
	assert.Equal(t, "1", a["jsonrpc.request.id"])
	assert.Equal(t, "2026-07-28", a["mcp.protocol.version"])
	assert.NotContains(t, a, "error.type")

	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[1].Parent().TraceID().String(), "parent from the headers")
	assert.Empty(t, spans[1].Links())

	a = attrs(spans[2])
	assert.Equal(t, "tool_error", a["error.type"])
	assert.Equal(t, "three", a["jsonrpc.request.id"])
	assert.Len(t, a["mcp.session.id"], 12)
	assert.NotEqual(t, sid, a["mcp.session.id"], "a session id is a credential: only its digest is recorded")
	assert.Equal(t, "Error", spans[2].Status().Code.String())

	assert.Equal(t, "tools/call", spans[3].Name(), "no target for an unknown tool")
	a = attrs(spans[3])
	assert.Equal(t, "-32602", a["error.type"])
	assert.Equal(t, "-32602", a["rpc.response.status_code"])
	assert.Equal(t, "invalid", a["decision"])

	assert.Equal(t, "prompts/get orders__summary", spans[4].Name())
	assert.Equal(t, "orders__summary", attrs(spans[4])["gen_ai.prompt.name"])
	assert.Equal(t, "resources/read", spans[5].Name())
	assert.Equal(t, "orders://readme", attrs(spans[5])["mcp.resource.uri"])
	assert.Equal(t, "orders", attrs(spans[6])["upstream"])
}
