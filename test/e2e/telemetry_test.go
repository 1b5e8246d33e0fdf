package e2e

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// otlpReceiver is an in-test OTLP/HTTP collector: it accepts protobuf
// POST /v1/traces and keeps every span.
type otlpReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	spans []*tracepb.Span
}

func startOTLPReceiver(t *testing.T) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	rcv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want protobuf POST /v1/traces", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rcv.mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				rcv.spans = append(rcv.spans, ss.GetSpans()...)
			}
		}
		rcv.mu.Unlock()
		out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(out)
	}))
	t.Cleanup(rcv.srv.Close)
	return rcv
}

// span returns the first received span matching the predicate.
func (rcv *otlpReceiver) span(match func(*tracepb.Span) bool) *tracepb.Span {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	for _, s := range rcv.spans {
		if match(s) {
			return s
		}
	}
	return nil
}

func spanAttr(s *tracepb.Span, key string) *commonpb.AnyValue {
	for _, kv := range s.GetAttributes() {
		if kv.GetKey() == key {
			return kv.GetValue()
		}
	}
	return nil
}

// upstreamSeen records the trace context an upstream received for each
// tools/call: the traceparent HTTP header and params._meta.traceparent.
type upstreamSeen struct {
	mu    sync.Mutex
	calls []seenCall
}

type seenCall struct {
	header, meta string
}

func (u *upstreamSeen) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err == nil {
				var msg struct {
					Method string `json:"method"`
					Params struct {
						Meta map[string]any `json:"_meta"`
					} `json:"params"`
				}
				if json.Unmarshal(body, &msg) == nil && msg.Method == "tools/call" {
					meta, _ := msg.Params.Meta["traceparent"].(string)
					u.mu.Lock()
					u.calls = append(u.calls, seenCall{header: r.Header.Get("Traceparent"), meta: meta})
					u.mu.Unlock()
				}
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

func (u *upstreamSeen) all() []seenCall {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenCall(nil), u.calls...)
}

// startGatewayTel starts a gateway like startGateway, with telemetry built
// from the configuration's telemetry section.
func startGatewayTel(t *testing.T, yaml string) (*gw, *telemetry.Telemetry) {
	t.Helper()
	yaml += fmt.Sprintf("\naudit:\n  sinks: [{type: file, path: %q}]\n", filepath.Join(t.TempDir(), "audit.jsonl"))
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err, "config:\n%s", yaml)
	tel, err := telemetry.New(cfg.Telemetry, telemetry.Options{ServiceVersion: "e2e"})
	require.NoError(t, err)
	// Registered first, so it runs after the gateway has stopped.
	// t.Context is cancelled before cleanups run; shutdown needs a live context.
	t.Cleanup(func() { require.NoError(t, tel.Shutdown(context.WithoutCancel(t.Context()))) })
	log := slog.New(telemetry.NewContextHandler(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn})))
	g := serveGatewayOpts(t, cfg, "", true, &gateway.Options{Logger: log, HealthInterval: time.Hour, Telemetry: tel, LogLevel: new(slog.LevelVar)})
	return g, tel
}

func TestTraceAcrossGatewayAndUpstream(t *testing.T) {
	rcv := startOTLPReceiver(t)
	seen := &upstreamSeen{}
	orders := startServer(t, func() http.Handler { return seen.wrap(upstreams.OrdersHandler(nil)) })
	g, tel := startGatewayTel(t, fmt.Sprintf(`
upstreams:
  - name: orders
    http: {url: %q}
telemetry:
  tracing:
    exporter: otlp_http
    endpoint: %s
`, orders.url(), rcv.srv.URL))

	c := newRawClient(t, g.url)
	c.initialize()
	// The host's trace context travels in _meta (SEP-414), and a different
	// one in the HTTP header (the host's HTTP client span): _meta wins.
	const metaTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	const metaParent = "00f067aa0ba902b7"
	c.header.Set("Traceparent", "00-11111111111111111111111111111111-2222222222222222-01")
	res := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"},"_meta":{"traceparent":"00-`+metaTrace+`-`+metaParent+`-01"}}`)
	require.Nil(t, res.Error)
	require.NoError(t, tel.ForceFlush(t.Context()))

	var server, client *tracepb.Span
	require.Eventually(t, func() bool {
		server = rcv.span(func(s *tracepb.Span) bool { return s.GetKind() == tracepb.Span_SPAN_KIND_SERVER })
		client = rcv.span(func(s *tracepb.Span) bool { return s.GetKind() == tracepb.Span_SPAN_KIND_CLIENT })
		return server != nil && client != nil
	}, 10*time.Second, 10*time.Millisecond, "spans never reached the collector")

	// One trace: the host's, through the gateway's server span, to the
	// upstream client span.
	assert.Equal(t, metaTrace, hex.EncodeToString(server.GetTraceId()))
	assert.Equal(t, metaParent, hex.EncodeToString(server.GetParentSpanId()))
	assert.Equal(t, server.GetTraceId(), client.GetTraceId())
	assert.Equal(t, server.GetSpanId(), client.GetParentSpanId())
	require.Len(t, server.GetLinks(), 1, "the HTTP header context is linked")
	assert.Equal(t, "11111111111111111111111111111111", hex.EncodeToString(server.GetLinks()[0].GetTraceId()))

	assert.Equal(t, "tools/call orders__get_order", server.GetName())
	assert.Equal(t, "tools/call", spanAttr(server, "mcp.method.name").GetStringValue())
	assert.Equal(t, "orders__get_order", spanAttr(server, "gen_ai.tool.name").GetStringValue())
	assert.Equal(t, "execute_tool", spanAttr(server, "gen_ai.operation.name").GetStringValue())
	assert.Equal(t, "2025-11-25", spanAttr(server, "mcp.protocol.version").GetStringValue())
	assert.Equal(t, "1", spanAttr(server, "jsonrpc.request.id").GetStringValue())
	sid := spanAttr(server, "mcp.session.id").GetStringValue()
	assert.Len(t, sid, 12, "a digest of the session id")
	assert.NotContains(t, c.session, sid, "never the session id itself")
	assert.Nil(t, spanAttr(server, "error.type"))

	assert.Equal(t, "tools/call get_order", client.GetName())
	assert.Equal(t, "get_order", spanAttr(client, "gen_ai.tool.name").GetStringValue())
	host, port, err := net.SplitHostPort(strings.TrimSuffix(strings.TrimPrefix(orders.url(), "http://"), "/mcp"))
	require.NoError(t, err)
	assert.Equal(t, host, spanAttr(client, "server.address").GetStringValue())
	assert.Equal(t, port, fmt.Sprint(spanAttr(client, "server.port").GetIntValue()))

	// The upstream saw the client span's context in its HTTP headers and
	// in params._meta, and not the host's own parent.
	calls := seen.all()
	require.Len(t, calls, 1)
	want := "00-" + metaTrace + "-" + hex.EncodeToString(client.GetSpanId()) + "-01"
	assert.Equal(t, want, calls[0].header)
	assert.Equal(t, want, calls[0].meta)

	t.Run("a tool error is error.type tool_error", func(t *testing.T) {
		res := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-9999"}}`)
		require.Nil(t, res.Error)
		require.Contains(t, string(res.Result), `"isError":true`)
		require.NoError(t, tel.ForceFlush(t.Context()))
		var s *tracepb.Span
		require.Eventually(t, func() bool {
			s = rcv.span(func(s *tracepb.Span) bool {
				return s.GetKind() == tracepb.Span_SPAN_KIND_SERVER && spanAttr(s, "jsonrpc.request.id").GetStringValue() == "2"
			})
			return s != nil
		}, 10*time.Second, 10*time.Millisecond)
		assert.Equal(t, "tool_error", spanAttr(s, "error.type").GetStringValue())
		assert.Equal(t, tracepb.Status_STATUS_CODE_ERROR, s.GetStatus().GetCode())
	})
}

// scrape parses /metrics.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain scrape.
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// series returns the metrics of fam whose labels include want.
func series(fam *dto.MetricFamily, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fam.GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func TestMetricsAfterTraffic(t *testing.T) {
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(nil) })
	g, _ := startGatewayTel(t, fmt.Sprintf(`
upstreams:
  - name: orders
    http: {url: %q}
`, orders.url()))

	c := newRawClient(t, g.url)
	c.initialize()
	for range 3 {
		res := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, res.Error)
	}
	// An unknown tool is invalid, and its raw name is never a label.
	res := c.call("tools/call", `{"name":"orders__no_such_tool_xyz","arguments":{}}`)
	require.NotNil(t, res.Error)

	// A kill switch stops the next call.
	body := `{"scope":"tool","target":"orders__cancel_order","reason":"incident 42"}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+"/admin/v1/killswitches", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain admin call.
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	res = c.call("tools/call", `{"name":"orders__cancel_order","arguments":{"id":"o-1001"}}`)
	require.NotNil(t, res.Error)
	require.Equal(t, -32060, res.Error.Code)

	fams := scrape(t, g.base+"/metrics")

	srv := fams["mcp_server_operation_duration_seconds"]
	require.NotNil(t, srv, "server histogram exported")
	assert.Equal(t, dto.MetricType_HISTOGRAM, srv.GetType())
	ok := series(srv, map[string]string{
		"mcp_method_name": "tools/call", "gen_ai_tool_name": "orders__get_order",
		"mcp_protocol_version": "2025-11-25", "error_type": "",
	})
	require.Len(t, ok, 1)
	assert.Equal(t, uint64(3), ok[0].GetHistogram().GetSampleCount())
	var bounds []float64
	for _, b := range ok[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	assert.Equal(t, append(telemetry.DurationBuckets(), math.Inf(1)), bounds, "semconv buckets, in seconds")
	killed := series(srv, map[string]string{"gen_ai_tool_name": "orders__cancel_order", "error_type": "-32060"})
	require.Len(t, killed, 1)
	for _, m := range srv.GetMetric() {
		for _, lp := range m.GetLabel() {
			assert.NotContains(t, lp.GetValue(), "no_such_tool", "raw input never becomes a label")
		}
	}

	cli := fams["mcp_client_operation_duration_seconds"]
	require.NotNil(t, cli, "client histogram exported")
	calls := series(cli, map[string]string{"mcp_method_name": "tools/call", "upstream": "orders", "error_type": ""})
	require.Len(t, calls, 1)
	assert.Equal(t, uint64(3), calls[0].GetHistogram().GetSampleCount(), "the killed and invalid calls never reached the upstream")

	dec := fams["mcpgw_decisions_total"]
	require.NotNil(t, dec)
	count := func(decision, upstream string) float64 {
		s := series(dec, map[string]string{"decision": decision, "upstream": upstream})
		if len(s) == 0 {
			return 0
		}
		return s[0].GetCounter().GetValue()
	}
	assert.InDelta(t, 3, count("allowed", "orders"), 0)
	assert.InDelta(t, 1, count("killed", "orders"), 0)
	assert.InDelta(t, 1, count("invalid", ""), 0)

	ks := fams["mcpgw_killswitches_active"]
	require.NotNil(t, ks)
	require.Len(t, series(ks, map[string]string{"scope": "tool"}), 1)
	assert.InDelta(t, 1, series(ks, map[string]string{"scope": "tool"})[0].GetGauge().GetValue(), 0)
	require.NotNil(t, fams["mcpgw_sessions_active"])
	assert.InDelta(t, 1, fams["mcpgw_sessions_active"].GetMetric()[0].GetGauge().GetValue(), 0)
	items := series(fams["mcpgw_catalog_items"], map[string]string{"upstream": "orders", "kind": "tools"})
	require.Len(t, items, 1)
	assert.Positive(t, items[0].GetGauge().GetValue())
	require.NotNil(t, fams["mcpgw_catalog_version"])
	require.NotNil(t, fams["mcpgw_audit_queue_depth"])
}

func TestLogLevelAtRunTime(t *testing.T) {
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(nil) })
	g, _ := startGatewayTel(t, fmt.Sprintf(`
upstreams:
  - name: orders
    http: {url: %q}
`, orders.url()))
	do := func(method, body string) (int, string) {
		req, err := http.NewRequestWithContext(t.Context(), method, g.base+"/admin/v1/loglevel", strings.NewReader(body))
		require.NoError(t, err)
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain admin call.
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	code, body := do(http.MethodGet, "")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"level":"info"}`, body)
	code, _ = do(http.MethodPut, `{"level":"debug"}`)
	assert.Equal(t, http.StatusOK, code)
	_, body = do(http.MethodGet, "")
	assert.JSONEq(t, `{"level":"debug"}`, body)
	code, body = do(http.MethodPut, `{"level":"loud"}`)
	assert.Equal(t, http.StatusBadRequest, code, body)
	_, body = do(http.MethodGet, "")
	assert.JSONEq(t, `{"level":"debug"}`, body, "a bad level changes nothing")
}

func TestMetricsCountScopeDenials(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(nil) })
	g, _ := startGatewayTel(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp, orders:write]
upstreams:
  - name: orders
    http: {url: %q}
    scopes:
      tools: [{match: "cancel_*", scopes: [orders:write]}]
`, resource, iss.URL(), orders.url()))

	c := newRawClient(t, g.url)
	c.header.Set("Authorization", "Bearer "+iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"}))
	c.initialize()
	resp, _ := c.post(`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"orders__cancel_order","arguments":{"id":"o-1001"}}}`)
	require.Equal(t, http.StatusForbidden, resp.StatusCode, "step-up: the tool needs orders:write")

	fams := scrape(t, g.base+"/metrics")
	denied := series(fams["mcpgw_decisions_total"], map[string]string{"decision": "denied", "upstream": "orders"})
	require.Len(t, denied, 1)
	assert.InDelta(t, 1, denied[0].GetCounter().GetValue(), 0)
	refused := series(fams["mcp_server_operation_duration_seconds"], map[string]string{
		"gen_ai_tool_name": "orders__cancel_order", "error_type": "insufficient_scope",
	})
	require.Len(t, refused, 1)
	assert.Equal(t, uint64(1), refused[0].GetHistogram().GetSampleCount())
	assert.Empty(t, series(fams["mcp_client_operation_duration_seconds"], map[string]string{"upstream": "orders", "mcp_method_name": "tools/call"}),
		"a denied call never reaches the upstream")
}

func TestProfilingBehindAdminScope(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	orders := startServer(t, func() http.Handler { return upstreams.OrdersHandler(nil) })
	config := func(profiling bool) string {
		return fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
telemetry: {profiling: %t}
upstreams:
  - name: orders
    http: {url: %q}
`, resource, iss.URL(), profiling, orders.url())
	}
	get := func(g *gw, path, scope string) (int, []byte) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, g.base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+iss.Mint(map[string]any{"sub": "sre", "scope": scope}))
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain admin call.
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, b
	}

	off, _ := startGatewayTel(t, config(false))
	code, _ := get(off, "/admin/v1/debug/pprof/heap", "mcpgw:admin")
	assert.Equal(t, http.StatusNotFound, code, "profiling is off by default")

	on, _ := startGatewayTel(t, config(true))
	code, _ = get(on, "/admin/v1/debug/pprof/heap", "mcp")
	assert.Equal(t, http.StatusForbidden, code, "profiles need the admin scope")
	code, body := get(on, "/admin/v1/debug/pprof/heap", "mcpgw:admin")
	require.Equal(t, http.StatusOK, code, string(body))
	// A heap profile is a gzip-compressed protocol buffer.
	assert.True(t, bytes.HasPrefix(body, []byte{0x1f, 0x8b}), "heap profile is gzip")
	code, body = get(on, "/admin/v1/debug/pprof/", "mcpgw:admin")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, string(body), "goroutine")
}
