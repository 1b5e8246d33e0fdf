package upstream

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/telemetry"
)

func TestObserverServerAddress(t *testing.T) {
	tel, err := telemetry.New(configs.Telemetry{Tracing: configs.Tracing{Exporter: configs.TracingNone}}, telemetry.Options{})
	require.NoError(t, err)
	// t.Context is cancelled before cleanups run; shutdown needs a live context.
	t.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(t.Context())) })

	tests := []struct {
		name string
		cfg  configs.Upstream
		want []attribute.KeyValue
	}{
		{
			name: "http with a port",
			cfg:  configs.Upstream{Name: "a", HTTP: &configs.HTTPTransport{URL: "http://orders.internal:8080/mcp"}},
			want: []attribute.KeyValue{telemetry.ServerAddress.String("orders.internal"), telemetry.NetworkTransport.String("tcp"), telemetry.ServerPort.Int(8080)},
		},
		{
			name: "https default port",
			cfg:  configs.Upstream{Name: "b", SSE: &configs.SSETransport{URL: "https://crm.example.com/sse"}},
			want: []attribute.KeyValue{telemetry.ServerAddress.String("crm.example.com"), telemetry.NetworkTransport.String("tcp"), telemetry.ServerPort.Int(443)},
		},
		{
			name: "stdio has no address",
			cfg:  configs.Upstream{Name: "c", Stdio: &configs.StdioTransport{Command: "true"}},
			want: []attribute.KeyValue{telemetry.NetworkTransport.String("pipe")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(&tt.cfg, &Options{Telemetry: tel})
			require.NoError(t, err)
			t.Cleanup(func() { _ = c.Close() })
			require.NotNil(t, c.obs)
			assert.Equal(t, tt.want, c.obs.spanAttrs)
		})
	}

	c, err := New(&configs.Upstream{Name: "d", Stdio: &configs.StdioTransport{Command: "true"}}, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	assert.Nil(t, c.obs, "no telemetry, no observer")
}

func TestTraceContextInjection(t *testing.T) {
	traceID, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	spanID, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	ts, err := trace.ParseTraceState("rojo=00f067aa0ba902b7")
	require.NoError(t, err)
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled, TraceState: ts,
	}))
	in := http.Header{"Mcp-Param-Region": {"eu"}}
	h := traceHeaders(ctx, in)
	assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", h.Get("Traceparent"))
	assert.Equal(t, "rojo=00f067aa0ba902b7", h.Get("Tracestate"))
	assert.Equal(t, "eu", h.Get("Mcp-Param-Region"))
	assert.Empty(t, in.Get("Traceparent"), "the caller's header is not modified")
	assert.Equal(t, `"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"rojo=00f067aa0ba902b7"`, string(traceMeta(h)))
	assert.Nil(t, traceMeta(http.Header{}))
}

func TestClassifyCall(t *testing.T) {
	tests := []struct {
		name   string
		method string
		res    string
		err    error
		want   string
	}{
		{name: "ok", method: "tools/call", res: `{"content":[]}`, want: ""},
		{name: "tool error", method: "tools/call", res: `{"content":[],"isError":true}`, want: "tool_error"},
		{name: "isError only counts for tools", method: "prompts/get", res: `{"isError":true}`, want: ""},
		{name: "isError in content is not an error", method: "tools/call", res: `{"content":[{"type":"text","text":"\"isError\":true"}]}`, want: ""},
		{name: "json-rpc code", method: "tools/call", err: &RPCError{Code: -32602}, want: "-32602"},
		{name: "timeout", method: "tools/call", err: &Error{Kind: ErrTimeout}, want: "timeout"},
		{name: "unavailable", method: "tools/call", err: &Error{Kind: ErrUnavailable}, want: "unavailable"},
		{name: "cancelled", method: "tools/call", err: &Error{Err: context.Canceled}, want: "cancelled"},
		{name: "other", method: "tools/call", err: errors.New("boom"), want: "_OTHER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := classifyCall(tt.method, []byte(tt.res), tt.err)
			assert.Equal(t, tt.want, got)
		})
	}
}
