package telemetry

import (
	"context"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/configs"
)

type requestIDKey struct{}

// WithRequestID stores the request id (X-Request-ID) in ctx, for logs,
// audit records and upstream headers.
func WithRequestID(ctx context.Context, id string) context.Context {
	return WithRequestIDRef(ctx, &id)
}

// WithRequestIDRef is WithRequestID for an id the caller already holds in
// memory that is never written again (the HTTP chain's X-Request-Id
// response header value): the context keeps the pointer, which costs no
// allocation of its own, where a string would be copied to the heap.
func WithRequestIDRef(ctx context.Context, id *string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request id stored in ctx, or "".
func RequestIDFrom(ctx context.Context) string {
	if id, ok := ctx.Value(requestIDKey{}).(*string); ok {
		return *id
	}
	return ""
}

// NewLogger builds the process logger from the log section: JSON (default)
// or text on w, at a level held in the returned LevelVar so that the admin
// API can change it at run time. Every record logged with a context gets
// request_id, trace_id and span_id from it.
func NewLogger(c configs.Log, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	level := new(slog.LevelVar)
	var l slog.Level
	if err := l.UnmarshalText([]byte(c.Level)); err == nil {
		level.Set(l)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if c.Format == "text" {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(NewContextHandler(h)), level
}

// ContextHandler adds the request-scoped fields of the record's context to
// every record: request_id (unless the record already has one), trace_id
// and span_id of the current span.
type ContextHandler struct {
	next slog.Handler
}

var _ slog.Handler = ContextHandler{}

// NewContextHandler wraps next.
func NewContextHandler(next slog.Handler) ContextHandler { return ContextHandler{next: next} }

// Enabled implements slog.Handler.
func (h ContextHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h ContextHandler) Handle(ctx context.Context, r slog.Record) error { //nolint:gocritic // hugeParam: slog.Handler's signature takes the record by value.
	if ctx == nil {
		return h.next.Handle(ctx, r)
	}
	if id := RequestIDFrom(ctx); id != "" && !hasAttr(&r, "request_id") {
		r.AddAttrs(slog.String("request_id", id))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.next.Handle(ctx, r)
}

// hasAttr reports whether r has a top-level attribute named key.
func hasAttr(r *slog.Record, key string) bool {
	found := false
	r.Attrs(func(a slog.Attr) bool {
		found = a.Key == key
		return !found
	})
	return found
}

// WithAttrs implements slog.Handler.
func (h ContextHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return ContextHandler{next: h.next.WithAttrs(as)}
}

// WithGroup implements slog.Handler.
func (h ContextHandler) WithGroup(name string) slog.Handler {
	return ContextHandler{next: h.next.WithGroup(name)}
}
