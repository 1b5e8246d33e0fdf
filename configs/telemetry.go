package configs

import "net/url"

// Tracing exporters.
const (
	// TracingNone exports no spans; tracing costs nothing on the call path.
	TracingNone = "none"
	// TracingOTLPGRPC exports spans over OTLP/gRPC.
	TracingOTLPGRPC = "otlp_grpc"
	// TracingOTLPHTTP exports spans over OTLP/HTTP (protobuf).
	TracingOTLPHTTP = "otlp_http"
)

// Defaults of the telemetry section.
const (
	// DefaultTracingExporter turns tracing off.
	DefaultTracingExporter = TracingNone
	// DefaultSampleRatio samples every trace that has no sampled parent
	// decision of its own.
	DefaultSampleRatio = 1.0
)

// Telemetry configures traces and metrics. The process log is configured
// under log; the audit stream under audit.
type Telemetry struct {
	// Tracing exports OpenTelemetry spans (one server span per MCP request,
	// one client span per upstream call). Off by default.
	Tracing Tracing `mapstructure:"tracing" yaml:"tracing"`
	// Metrics exposes Prometheus metrics (OpenTelemetry instruments through
	// the Prometheus exporter).
	Metrics Metrics `mapstructure:"metrics" yaml:"metrics"`
	// Profiling serves Go's pprof profiles under /admin/v1/debug/pprof/,
	// behind the admin API's scope like the rest of it: CPU, heap,
	// goroutine and mutex profiles of a running replica, for finding where
	// a call's time goes under real load. Off by default.
	Profiling bool `mapstructure:"profiling" yaml:"profiling"`
}

// Tracing configures span export.
type Tracing struct {
	// Exporter is none, otlp_grpc or otlp_http. Default none.
	Exporter string `mapstructure:"exporter" yaml:"exporter"`
	// Endpoint is the collector URL, such as http://otel-collector:4318 for
	// otlp_http (the path defaults to /v1/traces) or
	// http://otel-collector:4317 for otlp_grpc. An http scheme sends in
	// plain text, https uses TLS. Required unless the exporter is none.
	Endpoint string `mapstructure:"endpoint" yaml:"endpoint"`
	// SampleRatio is the fraction of new traces sampled, from 0 to 1. A
	// request that carries a trace context follows its parent's decision
	// (parent-based sampling). Default 1.
	SampleRatio *float64 `mapstructure:"sample_ratio" yaml:"sample_ratio,omitempty"`
	// Headers are sent with every export, such as an API key of a hosted
	// collector.
	Headers map[string]SecretRef `mapstructure:"headers" yaml:"headers,omitempty"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	// Listen is a separate host:port that serves /metrics; it must not
	// bind server.listen's port. Empty serves /metrics on the main
	// listener (server.listen), unauthenticated like /healthz.
	Listen string `mapstructure:"listen" yaml:"listen,omitempty"`
}

// Ratio returns the effective sample ratio.
func (t *Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return DefaultSampleRatio
	}
	return *t.SampleRatio
}

func (t *Telemetry) setDefaults() {
	setDefault(&t.Tracing.Exporter, DefaultTracingExporter)
}

func (v *validator) telemetry(t *Telemetry) {
	tr := &t.Tracing
	switch tr.Exporter {
	case TracingNone:
	case TracingOTLPGRPC, TracingOTLPHTTP:
		if tr.Endpoint == "" {
			v.add("telemetry.tracing.endpoint", "required with exporter %s", tr.Exporter)
			break
		}
		u, err := url.Parse(tr.Endpoint)
		switch {
		case err != nil:
			v.add("telemetry.tracing.endpoint", "not a URL")
		case u.Scheme != "http" && u.Scheme != "https":
			v.add("telemetry.tracing.endpoint", "scheme must be http or https")
		case u.Host == "":
			v.add("telemetry.tracing.endpoint", "host required")
		}
	default:
		v.add("telemetry.tracing.exporter", "%q must be one of none, otlp_grpc, otlp_http%s", tr.Exporter, didYouMean(tr.Exporter, "none", "otlp_grpc", "otlp_http"))
	}
	if r := tr.Ratio(); r < 0 || r > 1 || r != r {
		v.add("telemetry.tracing.sample_ratio", "%v must be between 0 and 1", r)
	}
	v.headers("telemetry.tracing.headers", tr.Headers)
	if t.Metrics.Listen != "" {
		v.listen("telemetry.metrics.listen", t.Metrics.Listen)
	}
}

// metricsListener checks that the metrics listener and the main one do
// not bind the same port.
func (v *validator) metricsListener(c *Config) {
	if l := c.Telemetry.Metrics.Listen; l != "" && sameListener(l, c.Server.Listen) {
		v.add("telemetry.metrics.listen", "%q binds the port of server.listen (%q); leave it empty to serve /metrics there", l, c.Server.Listen)
	}
}

// secretRefs visits the secrets of the telemetry section.
func (t *Telemetry) secretRefs(each func(path string, m map[string]SecretRef)) {
	each("telemetry.tracing.headers", t.Tracing.Headers)
}
