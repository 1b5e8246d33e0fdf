package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/telemetry"
)

// The client side of the MCP semantic conventions
// (semantic-conventions docs/gen-ai/mcp.md, "Client"): one CLIENT span per
// call named "{mcp.method.name} {target}", with server.address and
// server.port of the upstream, and mcp.client.operation.duration. The
// span's W3C trace context travels both in the HTTP headers and in
// params._meta (traceparent, tracestate: SEP-414), so an upstream that reads
// either joins the trace.

// errorClass is one value of error.type for failures that carry no
// JSON-RPC code: the sentinel that selects it, and its name.
type errorClass struct {
	err  error
	name string
}

// numErrorClasses is the length of errorClasses.
const numErrorClasses = 9

// errorClasses are the error classes, in the order classifyCall tries
// them. An array value, built on the stack: the loop over it does not
// allocate.
func errorClasses() [numErrorClasses]errorClass {
	return [...]errorClass{
		{ErrCircuitOpen, "circuit_open"},
		{ErrBusy, "busy"},
		{ErrTimeout, "timeout"},
		{ErrResponseTooLarge, "response_too_large"},
		{ErrBadResponse, "bad_response"},
		{ErrBadRequest, "bad_request"},
		{ErrClosed, "closed"},
		{ErrUnavailable, "unavailable"},
		{context.Canceled, "cancelled"},
	}
}

// observedMethods are the methods whose duration options are pre-built.
func observedMethods() [4]string {
	return [...]string{mcpwire.MethodToolsCall, mcpwire.MethodResourcesRead, mcpwire.MethodPromptsGet, mcpwire.MethodComplete}
}

// observer records the calls of one client.
type observer struct {
	c       *Client
	tracer  trace.Tracer // nil when tracing is off
	metrics *telemetry.Metrics
	// spanAttrs are the upstream's fixed span attributes.
	spanAttrs []attribute.KeyValue
	// durations holds the pre-built record options per method and error
	// class: index 0 is success, 1 tool_error, then errorClasses.
	// Each is a one-element slice, so that the variadic Record does not
	// allocate.
	durations map[string]*[2 + numErrorClasses][]metric.RecordOption
}

func newObserver(c *Client, t *telemetry.Telemetry) *observer {
	if t == nil {
		return nil
	}
	o := &observer{c: c, metrics: t.Metrics()}
	if t.Tracing() {
		o.tracer = t.Tracer()
	}
	raw := ""
	switch {
	case c.cfg.HTTP != nil:
		raw = c.cfg.HTTP.URL
	case c.cfg.SSE != nil:
		raw = c.cfg.SSE.URL
	}
	if raw == "" {
		o.spanAttrs = append(o.spanAttrs, telemetry.NetworkTransport.String("pipe"))
	} else if u, err := url.Parse(raw); err == nil {
		o.spanAttrs = append(o.spanAttrs, telemetry.ServerAddress.String(u.Hostname()), telemetry.NetworkTransport.String("tcp"))
		if port := portOf(u); port > 0 {
			o.spanAttrs = append(o.spanAttrs, telemetry.ServerPort.Int(port))
		}
	}
	methods := observedMethods()
	o.durations = make(map[string]*[2 + numErrorClasses][]metric.RecordOption, len(methods))
	for _, m := range methods {
		var opts [2 + numErrorClasses][]metric.RecordOption
		opts[0] = []metric.RecordOption{metric.WithAttributeSet(telemetry.ClientAttributes(m, c.name, ""))}
		opts[1] = []metric.RecordOption{metric.WithAttributeSet(telemetry.ClientAttributes(m, c.name, telemetry.ErrorTool))}
		for i, ec := range errorClasses() {
			opts[2+i] = []metric.RecordOption{metric.WithAttributeSet(telemetry.ClientAttributes(m, c.name, ec.name))}
		}
		o.durations[m] = &opts
	}
	return o
}

// portOf returns the URL's port, or the scheme's default.
func portOf(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if u.Scheme == "https" {
		return 443
	}
	return 80
}

// call is Call with a client span and the duration metric.
func (o *observer) call(ctx context.Context, req *Request) (json.RawMessage, error) {
	start := time.Now()
	var span trace.Span
	if o.tracer != nil {
		ctx, span = o.startSpan(ctx, req)
		r := *req
		r.Header = traceHeaders(ctx, req.Header)
		r.traceMeta = traceMeta(r.Header)
		req = &r
	}
	res, err := o.c.call(ctx, req)
	errType, idx := classifyCall(req.Method, res, err)
	if span != nil {
		if errType != "" {
			span.SetAttributes(telemetry.ErrorType.String(errType))
			var rpcErr *RPCError
			switch {
			case errors.As(err, &rpcErr):
				span.SetAttributes(telemetry.ResponseStatusCode.String(errType))
				span.SetStatus(codes.Error, rpcErr.Message)
			case err != nil:
				span.SetStatus(codes.Error, err.Error())
			default:
				span.SetStatus(codes.Error, errType)
			}
		}
		span.End()
	}
	if o.metrics != nil {
		secs := time.Since(start).Seconds()
		if opts, ok := o.durations[req.Method]; ok && idx >= 0 {
			o.metrics.ClientDuration.Record(ctx, secs, opts[idx]...)
		} else {
			o.metrics.ClientDuration.Record(ctx, secs,
				metric.WithAttributeSet(telemetry.ClientAttributes(req.Method, o.c.name, errType)))
		}
	}
	return res, err
}

// startSpan starts the client span of req.
//
//nolint:ireturn // trace.Span is the OpenTelemetry API's own type; the SDK's span is not ours to name.
func (o *observer) startSpan(ctx context.Context, req *Request) (context.Context, trace.Span) {
	attrs := make([]attribute.KeyValue, 0, len(o.spanAttrs)+4)
	attrs = append(attrs, telemetry.MethodName.String(req.Method))
	attrs = append(attrs, o.spanAttrs...)
	name := req.Method
	switch req.Method {
	case mcpwire.MethodToolsCall, mcpwire.MethodPromptsGet:
		if target, ok := rawjson.DecodeString(rawjson.Member(req.Params, "name")); ok && target != "" {
			name += " " + target
			if req.Method == mcpwire.MethodToolsCall {
				attrs = append(attrs, telemetry.ToolName.String(target), telemetry.OperationName.String(telemetry.OperationExecuteTool))
			} else {
				attrs = append(attrs, telemetry.PromptName.String(target))
			}
		}
	case mcpwire.MethodResourcesRead:
		if uri, ok := rawjson.DecodeString(rawjson.Member(req.Params, "uri")); ok {
			attrs = append(attrs, telemetry.ResourceURI.String(uri))
		}
	}
	if s := o.c.sess.Load(); s != nil {
		attrs = append(attrs, telemetry.ProtocolVersion.String(s.version))
	}
	return o.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(attrs...))
}

// traceHeaders returns h plus the W3C trace context of ctx, without
// modifying h.
func traceHeaders(ctx context.Context, h http.Header) http.Header {
	out := make(http.Header, len(h)+2)
	maps.Copy(out, h)
	telemetry.Propagator().Inject(ctx, propagation.HeaderCarrier(out))
	return out
}

// traceMeta returns the _meta members carrying the trace context in h:
// "traceparent":"…"[,"tracestate":"…"].
func traceMeta(h http.Header) []byte {
	tp := h.Get("Traceparent")
	if tp == "" {
		return nil
	}
	m := make([]byte, 0, 96)
	m = append(m, `"traceparent":`...)
	m = rawjson.AppendString(m, tp)
	if ts := h.Get("Tracestate"); ts != "" {
		m = append(m, `,"tracestate":`...)
		m = rawjson.AppendString(m, ts)
	}
	return m
}

// classifyCall returns error.type of a call's outcome and the index of its
// pre-built duration option, -1 when there is none (a JSON-RPC code).
func classifyCall(method string, res json.RawMessage, err error) (string, int) {
	if err == nil {
		if method == mcpwire.MethodToolsCall && isToolError(res) {
			return telemetry.ErrorTool, 1
		}
		return "", 0
	}
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		return strconv.Itoa(rpcErr.Code), -1
	}
	for i, ec := range errorClasses() {
		if errors.Is(err, ec.err) {
			return ec.name, 2 + i
		}
	}
	return "_OTHER", -1
}

// isToolError reports whether a tools/call result has "isError": true.
func isToolError(result []byte) bool {
	if !bytes.Contains(result, []byte(`"isError"`)) {
		return false
	}
	return string(rawjson.Member(result, "isError")) == "true"
}
