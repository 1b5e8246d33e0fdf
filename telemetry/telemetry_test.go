package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/telemetry"
)

// TestMetricNames checks the exposition against the metrics contract
// (METRICS.md): names, units as suffixes, labels.
func TestMetricNames(t *testing.T) {
	tel, err := telemetry.New(configs.Telemetry{Tracing: configs.Tracing{Exporter: configs.TracingNone}}, telemetry.Options{ServiceVersion: "test"})
	require.NoError(t, err)
	// t.Context is cancelled before cleanups run; shutdown needs a live context.
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(t.Context())) })
	assert.False(t, tel.Tracing())
	m := tel.Metrics()
	ctx := t.Context()
	m.ServerDuration.Record(ctx, 0.03, metric.WithAttributeSet(telemetry.ServerAttributes("tools/call", "orders__get_order", "2026-07-28", "")))
	m.ClientDuration.Record(ctx, 0.02, metric.WithAttributeSet(telemetry.ClientAttributes("tools/call", "orders", telemetry.ErrorTool)))
	m.Decisions.Add(ctx, 1, metric.WithAttributeSet(telemetry.DecisionAttributes(telemetry.DecisionDenied, "orders")))
	m.ConfigReload(true)
	m.ConfigReload(false)
	m.ConfigReload(false)
	m.AuditRefused(ctx)
	m.ToolContractChange(ctx, "payments", "payments__refund", "warn")
	unregister, err := m.Observe(telemetry.Sources{
		Breakers:        func(report func(string, string, string)) { report("orders", "get_order", telemetry.BreakerOpen) },
		Sessions:        func() int64 { return 4 },
		Catalog:         func(report func(string, string, int64)) { report("orders", "tools", 6) },
		CatalogVersion:  func() int64 { return 9 },
		AuditQueueDepth: func() int64 { return 2 },
		KillSwitches:    func(report func(string, int64)) { report("tool", 1) },
	})
	require.NoError(t, err)

	rec := httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	body := rec.Body.String()
	for _, want := range []string{
		"# TYPE mcp_server_operation_duration_seconds histogram",
		`mcp_server_operation_duration_seconds_bucket{error_type="",gen_ai_tool_name="orders__get_order",mcp_method_name="tools/call",mcp_protocol_version="2026-07-28",`,
		`le="0.05"} 1`,
		"# TYPE mcp_client_operation_duration_seconds histogram",
		`mcp_client_operation_duration_seconds_count{error_type="tool_error",mcp_method_name="tools/call",`,
		`mcpgw_decisions_total{decision="denied",`,
		`mcpgw_breaker_state{`,
		`state="open",tool="get_order",upstream="orders"} 1`,
		`state="closed",tool="get_order",upstream="orders"} 0`,
		`state="half_open",tool="get_order",upstream="orders"} 0`,
		"mcpgw_sessions_active{",
		`mcpgw_catalog_items{kind="tools",`,
		"mcpgw_catalog_version{",
		`mcpgw_config_reloads_total{`,
		`result="failed"} 2`,
		"mcpgw_audit_queue_depth{",
		"mcpgw_audit_refused_total{",
		`mcpgw_killswitches_active{`,
		`mcpgw_tool_contract_changes_total{mode="warn",`,
		`tool="payments__refund",upstream="payments"} 1`,
	} {
		assert.Contains(t, body, want)
	}

	require.NoError(t, unregister())
	rec = httptest.NewRecorder()
	tel.MetricsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.NotContains(t, rec.Body.String(), "mcpgw_sessions_active{", "gauges stop with their gateway")
}

func TestNilTelemetryIsOff(t *testing.T) {
	var tel *telemetry.Telemetry
	assert.False(t, tel.Tracing())
	assert.Nil(t, tel.Metrics())
	tel.Metrics().ConfigReload(true) // a nil *Metrics records nothing
	require.NoError(t, tel.ForceFlush(t.Context()))
	require.NoError(t, tel.Shutdown(t.Context()))
}

func TestLoggerAddsRequestAndTraceIDs(t *testing.T) {
	var buf bytes.Buffer
	log, level := telemetry.NewLogger(configs.Log{Level: "info", Format: "json"}, &buf)
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID}))
	ctx = telemetry.WithRequestID(ctx, "req-1")

	log.InfoContext(ctx, "hello", slog.String("k", "v"))
	log.DebugContext(ctx, "hidden")
	level.Set(slog.LevelDebug)
	log.With(slog.String("component", "x")).DebugContext(ctx, "shown", slog.String("request_id", "explicit"))
	log.InfoContext(t.Context(), "no context")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	require.Len(t, lines, 3)
	var first, second, third map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &first))
	require.NoError(t, json.Unmarshal([]byte(lines[1]), &second))
	require.NoError(t, json.Unmarshal([]byte(lines[2]), &third))
	assert.Equal(t, "hello", first["msg"])
	assert.Equal(t, "req-1", first["request_id"])
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", first["trace_id"])
	assert.Equal(t, "00f067aa0ba902b7", first["span_id"])
	assert.Equal(t, "shown", second["msg"])
	assert.Equal(t, "explicit", second["request_id"], "an explicit request_id is not doubled")
	assert.Equal(t, "x", second["component"])
	assert.NotContains(t, third, "request_id")
	assert.NotContains(t, third, "trace_id")
}
