package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// Telemetry of the call path, following the server side of the OpenTelemetry
// MCP semantic conventions (semantic-conventions docs/gen-ai/mcp.md,
// "Server"): one SERVER span per forwarded request named
// "{mcp.method.name} {target}", mcp.server.operation.duration, and the
// mcpgw.decisions counter. Without Options.Telemetry the gateway has no
// observer and the call path pays one nil check.
//
// Parent of the server span: the trace context in params._meta
// (traceparent, tracestate; SEP-414) when present, linked to the HTTP
// headers' context (the ambient one) when that differs, as the semconv
// says servers SHOULD; otherwise the traceparent HTTP header.

// observer holds the gateway's instruments and label caches.
type observer struct {
	tel     *telemetry.Telemetry
	metrics *telemetry.Metrics
	tracer  trace.Tracer // nil when tracing is off

	// labels caches the pre-built metric options of the current catalog.
	labels atomic.Pointer[labelCache]
	// methods holds the options of calls without a catalog tool: every
	// method but tools/call, and tools/call of an unknown tool.
	methods map[string]*routeLabels
	// unregister drops the gauges' callback.
	unregister func() error
}

// labelCache is built per catalog snapshot, so that labels only ever name
// tools of the catalog and the hot path looks options up without
// building attribute sets.
type labelCache struct {
	snap      *catalog.Snapshot
	tools     map[string]*routeLabels                      // exposed tool name →
	decisions map[string]*[numDecisions][]metric.AddOption // upstream →
}

// decisionNames are the decisions, in the order of a labelCache's options.
func decisionNames() [numDecisions]string {
	return [...]string{
		telemetry.DecisionAllowed, telemetry.DecisionDenied, telemetry.DecisionLimited, telemetry.DecisionKilled,
		telemetry.DecisionCircuitOpen, telemetry.DecisionDrained, telemetry.DecisionInvalid,
		telemetry.DecisionBusy, telemetry.DecisionAuditUnavailable, telemetry.DecisionUnavailable,
		telemetry.DecisionQuarantined,
	}
}

const numDecisions = 11

// routeLabels are the mcp.server.operation.duration options of one
// (method, tool), built per protocol version on first use.
type routeLabels struct {
	method, tool string
	// byVersion[i] holds the options for supportedVersions[i]: success and
	// tool_error.
	byVersion [8]atomic.Pointer[[2][]metric.RecordOption]
}

// record returns the options of one measurement. They are one-element
// slices built once, so that passing them to the variadic Record does
// not allocate.
func (rl *routeLabels) record(version, errType string) []metric.RecordOption {
	vi := mcpwire.VersionIndex(version)
	if vi < 0 || (errType != "" && errType != telemetry.ErrorTool) {
		// Error codes and unknown versions are rare: build the set.
		return []metric.RecordOption{metric.WithAttributeSet(telemetry.ServerAttributes(rl.method, rl.tool, version, errType))}
	}
	p := rl.byVersion[vi].Load()
	if p == nil {
		p = &[2][]metric.RecordOption{
			{metric.WithAttributeSet(telemetry.ServerAttributes(rl.method, rl.tool, version, ""))},
			{metric.WithAttributeSet(telemetry.ServerAttributes(rl.method, rl.tool, version, telemetry.ErrorTool))},
		}
		rl.byVersion[vi].Store(p)
	}
	if errType == "" {
		return p[0]
	}
	return p[1]
}

// numForwarded is the number of methods the call path serves.
const numForwarded = 4

// forwardedMethods are the methods the call path serves.
func forwardedMethods() [numForwarded]string {
	return [...]string{mcpwire.MethodToolsCall, mcpwire.MethodResourcesRead, mcpwire.MethodPromptsGet, mcpwire.MethodComplete}
}

// initTelemetry wires the gateway's telemetry; it does nothing without
// opts.Telemetry.
func (g *Gateway) initTelemetry(opts *Options) error {
	g.logLevel = opts.LogLevel
	if opts.Telemetry == nil {
		return nil
	}
	o := &observer{tel: opts.Telemetry, metrics: opts.Telemetry.Metrics(), methods: make(map[string]*routeLabels, numForwarded)}
	if opts.Telemetry.Tracing() {
		o.tracer = opts.Telemetry.Tracer()
	}
	for _, m := range forwardedMethods() {
		o.methods[m] = &routeLabels{method: m}
	}
	unregister, err := o.metrics.Observe(telemetry.Sources{
		Breakers:        g.breakerStates,
		Sessions:        func() int64 { return g.sessions.count() },
		Catalog:         g.catalogCounts,
		CatalogDropped:  g.catalogDropped,
		CatalogVersion:  func() int64 { return int64(g.Catalog().Version()) }, //nolint:gosec // versions count up from 1.
		AuditQueueDepth: func() int64 { return int64(g.controls.audit.QueueDepth()) },
		KillSwitches:    g.switchCounts,
	})
	if err != nil {
		return err
	}
	o.unregister = unregister
	g.obs = o
	return nil
}

// closeTelemetry unregisters the gauges, which read this gateway's state.
func (g *Gateway) closeTelemetry() {
	if g.obs != nil && g.obs.unregister != nil {
		_ = g.obs.unregister()
	}
}

func (g *Gateway) breakerStates(report func(upstream, tool, state string)) {
	for _, c := range g.rt.Load().clients {
		r, ok := c.(reporter)
		if !ok {
			continue
		}
		// The gauge's label spells half-open as half_open and leaves
		// disabled breakers out.
		for _, b := range r.Breakers() {
			switch b.State {
			case "", upstream.BreakerDisabled:
			case upstream.BreakerHalfOpen:
				report(c.Name(), b.Tool, "half_open")
			default:
				report(c.Name(), b.Tool, b.State)
			}
		}
	}
}

// kindLabel is the kind label of mcpgw.catalog.items.
func kindLabel(k catalog.Kind) string {
	switch k {
	case catalog.Resources:
		return "resources"
	case catalog.ResourceTemplates:
		return "resource_templates"
	case catalog.Prompts:
		return "prompts"
	default:
		return "tools"
	}
}

// catalogDropped reports the tools each upstream lost to the name pattern
// or to a name clash: only the live catalog can show these.
func (g *Gateway) catalogDropped(report func(upstream, reason string, n int64)) {
	snap := g.Catalog()
	if snap == nil {
		return
	}
	for _, u := range snap.Upstreams() {
		report(u.Name, string(catalog.CauseNamePattern), int64(u.ToolsDroppedName))
		report(u.Name, string(catalog.CauseNameClash), int64(u.ToolsClashed))
	}
}

func (g *Gateway) catalogCounts(report func(upstream, kind string, n int64)) {
	snap := g.Catalog()
	if snap == nil {
		return
	}
	ups := snap.Upstreams()
	for i := range ups {
		for _, l := range lists() {
			report(ups[i].Name, kindLabel(l.kind), int64(ups[i].Count(l.kind)))
		}
	}
}

func (g *Gateway) switchCounts(report func(scope string, n int64)) {
	counts := map[policy.Scope]int64{policy.ScopeGlobal: 0, policy.ScopeUpstream: 0, policy.ScopeTool: 0}
	sws := g.controls.switches.List()
	for i := range sws {
		counts[sws[i].Scope]++
	}
	for _, s := range []policy.Scope{policy.ScopeGlobal, policy.ScopeUpstream, policy.ScopeTool} {
		report(string(s), counts[s])
	}
}

// cache returns the label cache of snap, building it when the catalog
// changed. Concurrent builders are harmless: the last one wins.
func (o *observer) cache(snap *catalog.Snapshot) *labelCache {
	if c := o.labels.Load(); c != nil && c.snap == snap {
		return c
	}
	c := &labelCache{snap: snap}
	// Every routed tool, listed or not: a killed tool is hidden from the
	// lists, and its refused calls keep their tool label.
	names := snap.ToolNames()
	c.tools = make(map[string]*routeLabels, len(names))
	prev := o.labels.Load()
	for _, n := range names {
		// Keep the options built for the previous snapshot.
		if prev != nil {
			if rl, ok := prev.tools[n]; ok {
				c.tools[n] = rl
				continue
			}
		}
		c.tools[n] = &routeLabels{method: mcpwire.MethodToolsCall, tool: n}
	}
	ups := snap.Upstreams()
	c.decisions = make(map[string]*[numDecisions][]metric.AddOption, len(ups)+1)
	for _, u := range append(ups, catalog.UpstreamInfo{}) {
		var opts [numDecisions][]metric.AddOption
		for i, d := range decisionNames() {
			opts[i] = []metric.AddOption{metric.WithAttributeSet(telemetry.DecisionAttributes(d, u.Name))}
		}
		c.decisions[u.Name] = &opts
	}
	o.labels.Store(c)
	return c
}

// callObs is the telemetry of one forwarded request.
type callObs struct {
	o       *observer
	ctx     context.Context
	start   time.Time
	cache   *labelCache
	method  string
	version string
	span    trace.Span // nil when tracing is off

	t       *target
	rec     *audit.Record
	rerr    *rpcError
	errType string
	upErr   error
}

// observe starts the call's telemetry, once its request is known: a
// header-first call refused before its body is observed when it finishes.
// With tracing on, the call's request carries the server span from then on.
func (c *call) observe() {
	o := c.g.obs
	if o == nil || c.ob != nil {
		return
	}
	r := c.r
	ob := &callObs{o: o, ctx: r.Context(), start: c.began, cache: o.cache(c.snap), method: c.method}
	c.ob = ob
	if c.s != nil {
		ob.version = c.s.protocolVersion
	} else {
		ob.version = r.Header.Get(mcpwire.HeaderProtocolVersion)
	}
	if o.tracer == nil {
		return
	}
	var params, id json.RawMessage
	if c.m != nil {
		params, id = c.m.Params, c.m.ID
	}
	ctx := r.Context()
	ambient := telemetry.Propagator().Extract(ctx, propagation.HeaderCarrier(r.Header))
	parent := ambient
	var links []trace.Link
	if meta := rawjson.Member(params, "_meta"); len(meta) > 0 {
		if mc := metaCarrier(meta); mc != nil {
			if fromMeta := telemetry.Propagator().Extract(ctx, mc); trace.SpanContextFromContext(fromMeta).IsValid() {
				parent = fromMeta
				if asc := trace.SpanContextFromContext(ambient); asc.IsValid() && !asc.Equal(trace.SpanContextFromContext(fromMeta)) {
					links = append(links, trace.Link{SpanContext: asc})
				}
			}
		}
	}
	attrs := make([]attribute.KeyValue, 0, 6)
	attrs = append(attrs, telemetry.MethodName.String(c.method))
	if ob.version != "" {
		attrs = append(attrs, telemetry.ProtocolVersion.String(ob.version))
	}
	if c.s != nil {
		// The session id is a bearer credential: record its digest only.
		attrs = append(attrs, telemetry.SessionID.String(c.s.digest))
	}
	if len(id) > 0 {
		sid := string(id)
		if id[0] == '"' {
			_ = json.Unmarshal(id, &sid)
		}
		attrs = append(attrs, telemetry.RequestID.String(sid))
	}
	if c.method == mcpwire.MethodToolsCall {
		attrs = append(attrs, telemetry.OperationName.String(telemetry.OperationExecuteTool))
	}
	ctx, ob.span = o.tracer.Start(parent, c.method, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attrs...), trace.WithLinks(links...))
	// The request context keeps its values (request id, principal); only
	// the span comes from the trace context.
	ob.ctx = trace.ContextWithSpan(r.Context(), trace.SpanFromContext(ctx))
	c.r = r.WithContext(ob.ctx)
}

// observeEnd records the call's duration, decision and span; rec is the
// audit record of a tools/call.
func (c *call) observeEnd(rec *audit.Record) {
	if c.g.obs == nil {
		return
	}
	c.observe()
	ob := c.ob
	if c.t.upstream != "" {
		ob.t = &c.t
	}
	ob.rec, ob.upErr = rec, c.upErr
	switch {
	case c.rerr != nil && c.rerr.Code == mcpwire.CodeInsufficientScope:
		ob.errType = "insufficient_scope"
	case c.rerr != nil:
		ob.rerr, ob.errType = c.rerr, strconv.Itoa(c.rerr.Code)
	case c.method == mcpwire.MethodToolsCall && c.next == stepDone && isToolError(c.result):
		ob.errType = telemetry.ErrorTool
	}
	ob.end()
}

// metaCarrier reads traceparent and tracestate from a _meta object.
func metaCarrier(meta json.RawMessage) propagation.MapCarrier {
	tp, ok := rawjson.DecodeString(rawjson.Member(meta, "traceparent"))
	if !ok {
		return nil
	}
	mc := propagation.MapCarrier{"traceparent": tp}
	if ts, ok := rawjson.DecodeString(rawjson.Member(meta, "tracestate")); ok {
		mc["tracestate"] = ts
	}
	return mc
}

// circuitOpen is implemented by the upstream error of a call an open
// breaker refused.
type circuitOpen interface {
	CircuitOpen() bool
}

func isCircuitOpen(err error) bool {
	var co circuitOpen
	return errors.As(err, &co) && co.CircuitOpen()
}

// end records the duration, the decision and the span of the call.
func (ob *callObs) end() {
	o := ob.o
	rl := o.methods[ob.method]
	tool := ""
	if ob.t != nil && ob.method == mcpwire.MethodToolsCall {
		tool = ob.t.name
		if x, ok := ob.cache.tools[tool]; ok {
			rl = x
		}
	}
	if rl == nil {
		rl = &routeLabels{method: ob.method}
	}
	o.metrics.ServerDuration.Record(ob.ctx, time.Since(ob.start).Seconds(), rl.record(ob.version, ob.errType)...)

	if ob.method == mcpwire.MethodToolsCall {
		up, d := "", -1
		if ob.rec != nil {
			up = ob.rec.Upstream
			d = decisionIndex(string(ob.rec.Decision))
			if ob.rec.Decision == audit.DecisionAllowed && isCircuitOpen(ob.upErr) {
				d = decisionIndex(telemetry.DecisionCircuitOpen)
			}
		}
		if d >= 0 {
			if opts, ok := ob.cache.decisions[up]; ok {
				o.metrics.Decisions.Add(ob.ctx, 1, opts[d]...)
			} else {
				o.metrics.Decisions.Add(ob.ctx, 1, metric.WithAttributeSet(telemetry.DecisionAttributes(decisionNames()[d], up)))
			}
		}
	}

	if ob.span == nil {
		return
	}
	if ob.t != nil {
		switch ob.method {
		case mcpwire.MethodToolsCall:
			ob.span.SetName(ob.method + " " + ob.t.name)
			ob.span.SetAttributes(telemetry.ToolName.String(ob.t.name), telemetry.Upstream.String(ob.t.upstream))
		case mcpwire.MethodPromptsGet:
			ob.span.SetName(ob.method + " " + ob.t.name)
			ob.span.SetAttributes(telemetry.PromptName.String(ob.t.name), telemetry.Upstream.String(ob.t.upstream))
		case mcpwire.MethodResourcesRead:
			ob.span.SetAttributes(telemetry.ResourceURI.String(ob.t.name), telemetry.Upstream.String(ob.t.upstream))
		default:
			ob.span.SetAttributes(telemetry.Upstream.String(ob.t.upstream))
		}
	}
	if ob.rec != nil {
		ob.span.SetAttributes(telemetry.Decision.String(string(ob.rec.Decision)))
	}
	if ob.errType != "" {
		ob.span.SetAttributes(telemetry.ErrorType.String(ob.errType))
		msg := ob.errType
		if ob.rerr != nil {
			ob.span.SetAttributes(telemetry.ResponseStatusCode.String(ob.errType))
			msg = ob.rerr.Message
		}
		ob.span.SetStatus(codes.Error, msg)
	}
	ob.span.End()
}

func decisionIndex(d string) int {
	for i, n := range decisionNames() {
		if n == d {
			return i
		}
	}
	return -1
}

// auditRefused counts a record the audit stream did not take.
func (g *Gateway) auditRefused(ctx context.Context) {
	if g.obs != nil {
		g.obs.metrics.AuditRefused(ctx)
	}
}

// metricsRoute serves /metrics on the main listener unless a separate
// listener is configured. Like /healthz it is not authenticated: labels
// carry upstream and catalog tool names, never arguments or principals.
func (g *Gateway) metricsRoute(r *mux.Router) {
	if g.obs == nil || g.obs.tel.MetricsListen() != "" {
		return
	}
	r.Handle("/metrics", g.obs.tel.MetricsHandler()).Methods(http.MethodGet, http.MethodHead)
}

// logLevelRoutes serves GET and PUT /admin/v1/loglevel (behind the admin
// scope): the process log level, changed at run time.
func (g *Gateway) logLevelRoutes(a *mux.Router) {
	if g.logLevel == nil {
		return
	}
	a.HandleFunc("/loglevel", g.getLogLevel).Methods(http.MethodGet)
	a.HandleFunc("/loglevel", g.putLogLevel).Methods(http.MethodPut)
}

type logLevelBody struct {
	Level string `json:"level"`
}

func (g *Gateway) getLogLevel(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, logLevelBody{Level: levelName(g.logLevel.Level())})
}

func (g *Gateway) putLogLevel(w http.ResponseWriter, r *http.Request) {
	var req logLevelBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		adminError(w, http.StatusBadRequest, "invalid body: "+err.Error())
		return
	}
	var l slog.Level
	switch req.Level {
	case "debug", "info", "warn", "error":
		_ = l.UnmarshalText([]byte(req.Level))
	default:
		adminError(w, http.StatusBadRequest, "level must be one of debug, info, warn, error")
		return
	}
	old := g.logLevel.Level()
	g.logLevel.Set(l)
	// Logged at the higher of the two levels, so the change shows either way.
	g.log.Log(r.Context(), max(old, l, slog.LevelInfo), "log level changed", slog.String("from", levelName(old)),
		slog.String("to", req.Level), slog.String("actor", actor(r)))
	writeAdmin(w, http.StatusOK, logLevelBody{Level: req.Level})
}

// levelName is the configuration spelling of a level.
func levelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	default:
		return "error"
	}
}
