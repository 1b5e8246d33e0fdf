// Package telemetry builds mcpgw's OpenTelemetry providers (traces exported
// over OTLP, metrics exported through the Prometheus exporter), the process
// logger (slog, with the request id and trace id on every line), and holds
// the MCP semantic-convention names. The OTel SDK and exporters live here
// only; every other package uses the OTel API. The audit stream is
// separate (telemetry/audit) and never sampled.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/exemplar"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/mcpgw/mcpgw/configs"
)

// ScopeName is the instrumentation scope of mcpgw's tracers and meters.
const ScopeName = "github.com/mcpgw/mcpgw"

// Options are the process-level inputs of New.
type Options struct {
	// ServiceVersion is reported as service.version.
	ServiceVersion string
	// ServiceInstance is reported as service.instance.id; optional.
	ServiceInstance string
}

// Telemetry owns the trace and meter providers of one process. Its
// providers are private instances, never the OTel globals, so that tests
// can run several gateways in one process.
type Telemetry struct {
	tracer   trace.Tracer
	sdkTP    *sdktrace.TracerProvider // nil when tracing is off
	mp       *sdkmetric.MeterProvider
	registry *prometheus.Registry
	metrics  *Metrics
	listen   string
}

// New builds the providers from cfg. With tracing off the tracer is a
// no-op and Tracing reports false, so callers skip span work entirely.
func New(cfg configs.Telemetry, opts Options) (*Telemetry, error) {
	attrs := []attribute.KeyValue{attribute.String("service.name", "mcpgw")}
	if opts.ServiceVersion != "" {
		attrs = append(attrs, attribute.String("service.version", opts.ServiceVersion))
	}
	if opts.ServiceInstance != "" {
		attrs = append(attrs, attribute.String("service.instance.id", opts.ServiceInstance))
	}
	res := resource.NewSchemaless(attrs...)

	t := &Telemetry{listen: cfg.Metrics.Listen, registry: prometheus.NewRegistry()}
	t.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(t.registry),
		otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	mopts := []sdkmetric.Option{sdkmetric.WithReader(exp), sdkmetric.WithResource(res)}
	if !tracingOn(cfg.Tracing) {
		// Exemplars point at sampled spans; without tracing there are
		// none, and the default filter would look for one per measurement.
		mopts = append(mopts, sdkmetric.WithExemplarFilter(exemplar.AlwaysOffFilter))
	}
	t.mp = sdkmetric.NewMeterProvider(mopts...)
	if t.metrics, err = NewMetrics(t.mp.Meter(ScopeName)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}

	t.tracer = noop.NewTracerProvider().Tracer(ScopeName)
	if tracingOn(cfg.Tracing) {
		sx, err := spanExporter(cfg.Tracing)
		if err != nil {
			return nil, fmt.Errorf("telemetry.tracing: %w", err)
		}
		t.sdkTP = sdktrace.NewTracerProvider(
			sdktrace.WithBatcher(sx),
			sdktrace.WithResource(res),
			sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Tracing.Ratio()))),
		)
		t.tracer = t.sdkTP.Tracer(ScopeName)
	}
	return t, nil
}

func tracingOn(c configs.Tracing) bool {
	return c.Exporter != configs.TracingNone && c.Exporter != ""
}

// spanExporter builds the OTLP exporter the configuration names. It does
// not connect: exports that fail are retried and then dropped by the SDK,
// never blocking a call.
func spanExporter(c configs.Tracing) (sdktrace.SpanExporter, error) { //nolint:ireturn // the configuration chooses the exporter; the SDK takes any SpanExporter.
	headers := make(map[string]string, len(c.Headers))
	for k, v := range c.Headers {
		val := v.Resolved.Reveal()
		if val == "" {
			val = v.Value.Reveal()
		}
		headers[k] = val
	}
	ctx := context.Background()
	switch c.Exporter {
	case configs.TracingOTLPGRPC:
		return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpointURL(c.Endpoint), otlptracegrpc.WithHeaders(headers))
	case configs.TracingOTLPHTTP:
		endpoint := c.Endpoint
		if u, err := url.Parse(endpoint); err == nil && (u.Path == "" || u.Path == "/") {
			// The OTLP/HTTP default path; WithEndpointURL takes the path
			// literally.
			u.Path = "/v1/traces"
			endpoint = u.String()
		}
		return otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(endpoint), otlptracehttp.WithHeaders(headers))
	default:
		return nil, fmt.Errorf("unknown exporter %q", c.Exporter)
	}
}

// Tracer returns the tracer of mcpgw; a no-op tracer when tracing is off
// or t is nil.
func (t *Telemetry) Tracer() trace.Tracer { //nolint:ireturn // an SDK tracer or a no-op one; callers need only the trace API.
	if t == nil {
		return noop.NewTracerProvider().Tracer(ScopeName)
	}
	return t.tracer
}

// Tracing reports whether spans are exported. Callers skip all span work
// (attributes, propagation) when it is false.
func (t *Telemetry) Tracing() bool { return t != nil && t.sdkTP != nil }

// Metrics returns the instruments; nil when t is nil.
func (t *Telemetry) Metrics() *Metrics {
	if t == nil {
		return nil
	}
	return t.metrics
}

// MetricsHandler serves the Prometheus exposition of every instrument.
func (t *Telemetry) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{})
}

// MetricsListen is the separate metrics address; "" means /metrics on the
// main listener.
func (t *Telemetry) MetricsListen() string { return t.listen }

// ForceFlush exports the spans ended so far.
func (t *Telemetry) ForceFlush(ctx context.Context) error {
	if t == nil || t.sdkTP == nil {
		return nil
	}
	return t.sdkTP.ForceFlush(ctx)
}

// Shutdown flushes and stops the providers.
func (t *Telemetry) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.sdkTP != nil {
		errs = append(errs, t.sdkTP.Shutdown(ctx))
	}
	errs = append(errs, t.mp.Shutdown(ctx))
	return errors.Join(errs...)
}

// Propagator returns the W3C Trace Context propagator mcpgw uses on both
// sides: HTTP headers and params._meta (SEP-414 keys traceparent,
// tracestate). It is stateless, so a zero value serves every call.
func Propagator() propagation.TraceContext { return propagation.TraceContext{} }
