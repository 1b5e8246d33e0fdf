package gateway

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// BenchmarkObserve measures what telemetry adds to one tools/call on the
// gateway side: starting and ending the call's observation with its
// duration and decision recorded (metrics), with the server span as well
// (tracing, exported to a sink), and nothing (off: a nil observer).
func BenchmarkObserve(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	snap, problems := catalog.Build(1, catalog.Options{Separator: "__"}, []catalog.Source{{
		Upstream: "orders", Prefix: "orders", Available: true,
		Tools: []json.RawMessage{json.RawMessage(`{"name":"get_order","inputSchema":{"type":"object"}}`)},
	}})
	require.Empty(b, problems)
	m := &message{
		Method: "tools/call", ID: json.RawMessage(`7`),
		Params: json.RawMessage(`{"name":"orders__get_order","arguments":{"id":"o-1001"}}`),
	}
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(""))
	r.Header.Set(mcpwire.HeaderProtocolVersion, "2026-07-28")
	t := target{upstream: "orders", original: "get_order", name: "orders__get_order"}
	result := []byte(`{"content":[{"type":"text","text":"ok"}]}`)

	for _, v := range []struct {
		name string
		cfg  *configs.Telemetry
	}{
		{name: "off"},
		{name: "metrics", cfg: &configs.Telemetry{Tracing: configs.Tracing{Exporter: configs.TracingNone}}},
		{name: "metrics+tracing", cfg: &configs.Telemetry{Tracing: configs.Tracing{Exporter: configs.TracingOTLPHTTP, Endpoint: sink.URL}}},
	} {
		b.Run(v.name, func(b *testing.B) {
			g := &Gateway{}
			if v.cfg != nil {
				tel, err := telemetry.New(*v.cfg, telemetry.Options{})
				require.NoError(b, err)
				b.Cleanup(func() { _ = tel.Shutdown(b.Context()) })
				require.NoError(b, g.initTelemetry(&Options{Telemetry: tel}))
			}
			rec := &audit.Record{Upstream: "orders", Decision: audit.DecisionAllowed}
			b.ReportAllocs()
			for b.Loop() {
				c := &call{g: g, r: r, snap: snap, m: m, method: m.Method, began: time.Now(), t: t, next: stepDone, result: result}
				c.observe()
				c.observeEnd(rec)
			}
		})
	}
}
