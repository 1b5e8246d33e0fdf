package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// The call path. Every forwarded request of either protocol era
// (tools/call, resources/read, prompts/get, completion/complete) is one
// *call that runs the steps of (*call).run in order, and ends in
// (*call).finish, which answers the client, writes the audit record of a
// tools/call, and records the call's telemetry. finish runs once per call,
// deferred by whoever started it, so a call has exactly one answer and one
// record whichever step ended it: a refusal, an upstream failure, a panic
// in a step, or the client going away.
//
// A 2026-07-28 tools/call is started on its headers, before its body is
// read (servePost, headerCall): the steps up to the rate limit run on the
// name Mcp-Name mirrors, so a refused call costs no body read. Once the
// body arrives and matches its headers (checkModernEnvelope), the same
// call goes on from the audit gate.

// stepID names one step of the call path, in the order the steps run. A
// byte, beside needArgs in call: the call value is sized to stay in the
// 1152-byte allocation class (with the runtime's 8-byte header).
type stepID uint8

const (
	stepOpen       stepID = iota // the gateway is not shutting down
	stepRoute                    // the route table names the upstream and original name
	stepKillSwitch               // no kill switch stops the tool (tools/call)
	stepAuthorize                // the principal has the tool's scopes (tools/call)
	stepRules                    // no policy rule refuses the call, arguments unknown (tools/call)
	stepQuarantine               // the tool's contract matches its pin, under enforce (tools/call)
	stepDrain                    // the upstream is not drained (tools/call)
	stepRateLimit                // the rate limits allow the call (tools/call)
	stepAuditGate                // a destructive tool runs only with a healthy audit log (tools/call)
	stepArguments                // the rules that need the arguments, and the input schema (tools/call)
	stepUpstream                 // the upstream answers, through its breaker and bulkhead
	stepDone
)

// call is one forwarded request, from its first step to its answer.
type call struct {
	g    *Gateway
	rt   *runtime
	snap *catalog.Snapshot
	ep   *mcpEndpoint // the virtual endpoint; nil for the MCP endpoint
	w    http.ResponseWriter
	r    *http.Request
	s    *session // the 2025-era session; nil in 2026-07-28
	// m is the request; nil while a header-first call waits for its body.
	m      *message
	method string
	start  time.Time // on the gateway's clock, for the audit record
	began  time.Time // on the wall clock, for telemetry; zero without it

	next stepID // the next step to run
	// needArgs is set by stepRules when the rules' answer depends on the
	// arguments, which stepArguments then decodes.
	needArgs bool
	t        target // set by stepRoute
	up       Upstream
	// rec is the audit record of a tools/call, started by stepRoute; nil
	// for other methods, and for a tools/call that ended before it had a
	// route (finish then writes an unrouted record).
	rec *audit.Record
	ob  *callObs // nil without telemetry

	// rp answers the request once its body is read; a header-first
	// refusal has no body and is answered with an HTTP error (answer).
	rp     *replier
	rerr   *rpcError       // the refusal or failure answered, if any
	upErr  error           // the upstream's error, if any
	result json.RawMessage // the upstream's result

	// The values rp, rec and the upstream request point to, allocated with
	// the call rather than one allocation each. (The upstream identity is
	// not: only an authenticated call has one, and the call value stays in
	// the 1152-byte allocation class without it.)
	rpVal  replier
	recVal audit.Record
	reqVal upstream.Request
}

// run runs the call's steps in order, from the next one not yet taken,
// until one ends the call or until is reached. This is the call path.
func (c *call) run(until stepID) {
	for ; c.rerr == nil && c.next < until; c.next++ {
		tool := c.rec != nil
		switch c.next {
		case stepOpen:
			c.rerr = c.open()
		case stepRoute:
			c.rerr = c.route()
		case stepKillSwitch:
			c.rerr = when(tool, c.killSwitch)
		case stepAuthorize:
			c.rerr = when(tool, c.authorize)
		case stepRules:
			c.rerr = when(tool, c.checkRules)
		case stepQuarantine:
			c.rerr = when(tool, c.quarantine)
		case stepDrain:
			c.rerr = when(tool, c.drain)
		case stepRateLimit:
			c.rerr = when(tool, c.rateLimit)
		case stepAuditGate:
			c.rerr = when(tool, c.auditGate)
		case stepArguments:
			c.rerr = when(tool, c.checkArguments)
		case stepUpstream:
			c.rerr = c.exchange()
		case stepDone:
		}
	}
}

// when runs a step that applies only to some calls.
func when(applies bool, step func() *rpcError) *rpcError {
	if !applies {
		return nil
	}
	return step()
}

// forward serves one request with a body through the call path. c is the
// request's header-first call when it had one, nil otherwise.
func (g *Gateway) forward(w http.ResponseWriter, r *http.Request, s *session, m *message, c *call, ep *mcpEndpoint) {
	if c == nil {
		c = g.newCall(w, r, s, m.Method, ep)
		defer c.finish()
	}
	c.attach(m)
	c.run(stepDone)
}

// newCall starts a call at ep (nil: the MCP endpoint); the caller defers
// its finish.
func (g *Gateway) newCall(w http.ResponseWriter, r *http.Request, s *session, method string, ep *mcpEndpoint) *call {
	rt := g.acquire()
	c := &call{g: g, rt: rt, w: w, r: r, s: s, method: method, start: g.now()}
	if ep == nil {
		c.snap = rt.snapshot()
	} else {
		c.ep = rt.endpointIn(ep)
		c.snap = c.ep.snapshot()
	}
	if g.obs != nil {
		c.began = time.Now()
	}
	return c
}

// headerCall starts a 2026-07-28 tools/call on its headers and runs its
// steps up to the rate limit. It returns nil when the headers do not route
// a call (the body path then answers with the body's id); otherwise the
// caller defers the call's finish, and a refused call is answered there.
func (g *Gateway) headerCall(w http.ResponseWriter, r *http.Request, ep *mcpEndpoint) *call {
	h := r.Header
	if h.Get(mcpwire.HeaderMethod) != mcpwire.MethodToolsCall || !slices.Contains(mcpwire.ModernVersions(), h.Get(mcpwire.HeaderProtocolVersion)) || g.draining.Load() {
		return nil
	}
	name, ok := decodeHeaderValue(h.Get(mcpwire.HeaderName))
	if !ok || name == "" {
		return nil // the body path reports the header error
	}
	route, ok := g.rt.Load().snapshotAt(ep).Tool(name)
	if !ok || !route.Available {
		return nil // unknown or unavailable: answered with the body's id
	}
	c := g.newCall(w, r, nil, mcpwire.MethodToolsCall, ep)
	c.t = target{upstream: route.Upstream, original: route.Name, name: name, hints: route.Hints}
	c.startRecord()
	c.next = stepKillSwitch
	c.run(stepAuditGate)
	return c
}

// attach gives the call its request. A header-first call's route is
// checked against the body's, and its params are rewritten for the
// upstream.
func (c *call) attach(m *message) {
	c.m = m
	c.rp = &c.rpVal
	c.rp.init(c.w, c.r, c.s == nil)
	if c.s != nil {
		c.rp.streams = c.s.streams
	}
	c.observe()
	if c.next <= stepRoute || c.rerr != nil {
		return
	}
	t, rerr := resolve(c.snap, m)
	if rerr == nil && (t.upstream != c.t.upstream || t.name != c.t.name) {
		rerr = newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Name header does not match the body's tool", nil)
	}
	if rerr != nil {
		c.rerr = rerr
		return
	}
	c.t.params = t.params
	c.recordArgs()
	c.rerr = c.checkParamHeaders()
}

// open refuses new calls while the gateway shuts down.
func (c *call) open() *rpcError {
	if c.g.draining.Load() {
		return newRPCError(mcpwire.CodeShuttingDown, "gateway is shutting down", nil)
	}
	return nil
}

// route resolves the call's target in the route table and starts the
// audit record of a tools/call.
func (c *call) route() *rpcError {
	t, rerr := resolve(c.snap, c.m)
	if rerr != nil {
		if rerr.Code == mcpwire.CodeResourceNotFound && c.s == nil {
			// SEP-2164: from 2026-07-28 on, a resource that does not exist
			// is invalid params; the session era keeps -32002.
			rerr.Code = mcpwire.CodeInvalidParams
		}
		return rerr
	}
	c.t = t
	if c.method == mcpwire.MethodToolsCall {
		c.startRecord()
		c.recordArgs()
	}
	return c.checkParamHeaders()
}

// killSwitch refuses a tool a kill switch stops.
func (c *call) killSwitch() *rpcError {
	sw, killed := c.g.controls.switches.Check(c.t.name, c.t.upstream)
	if !killed {
		return nil
	}
	c.rec.Decision, c.rec.Rule = audit.DecisionKilled, "killswitch:"+sw.ID
	data := map[string]any{"reason": sw.Reason, "killSwitch": sw.ID, "scope": sw.Scope, "upstream": c.t.upstream}
	if sw.Ticket != "" {
		data["ticket"] = sw.Ticket
	}
	return newRPCError(mcpwire.CodeKilled, "tool "+strconv.Quote(c.t.name)+" is disabled by a kill switch: "+sw.Reason, data)
}

// authorize refuses a principal that lacks a scope the tool needs; the
// refusal is answered with HTTP 403 and a step-up challenge naming every
// scope the tool needs.
func (c *call) authorize() *rpcError {
	p, ok := authn.PrincipalFrom(c.r.Context())
	if !ok {
		return nil
	}
	need := c.rt.scopes.Scopes(c.t.upstream, c.t.original)
	if missing := policy.Missing(p.Scopes, need); len(missing) > 0 {
		c.rec.Decision, c.rec.Rule = audit.DecisionDenied, "scope:"+strings.Join(missing, " ")
		return newRPCError(mcpwire.CodeInsufficientScope, "insufficient scope", need)
	}
	return nil
}

// drain refuses calls to an upstream drained for maintenance.
func (c *call) drain() *rpcError {
	if !c.g.controls.drains.IsDrained(c.t.upstream) {
		return nil
	}
	c.rec.Decision, c.rec.Rule = audit.DecisionDrained, "drain:"+c.t.upstream
	return newRPCError(mcpwire.CodeDrained, "upstream "+strconv.Quote(c.t.upstream)+" is drained; try again later",
		map[string]any{"upstream": c.t.upstream})
}

// rateLimit refuses a call over a rate limit; a call it lets through is
// allowed.
func (c *call) rateLimit() *rpcError {
	who := c.rec.Subject
	if p, ok := authn.PrincipalFrom(c.r.Context()); ok {
		who = p.Key() // the same sub from another issuer is another principal
	}
	d := c.rt.limiter.Allow(c.r.Context(), who, c.t.name, c.t.upstream)
	if !d.Allowed {
		c.rec.Decision, c.rec.Rule = audit.DecisionLimited, d.Rule
		return newRPCError(mcpwire.CodeRateLimited, "rate limit "+d.Rule+" exceeded; retry in "+d.RetryAfter.Round(time.Millisecond).String(),
			map[string]any{"rule": d.Rule, "retryAfterMs": d.RetryAfter.Milliseconds(), "upstream": c.t.upstream})
	}
	c.rec.Decision = audit.DecisionAllowed
	return nil
}

// auditGate refuses a call to a tool annotated destructive while the audit
// stream cannot take records: such a call must not run unaudited.
func (c *call) auditGate() *rpcError {
	if !c.t.hints.Destructive {
		return nil
	}
	err := c.g.controls.audit.Healthy()
	if err == nil {
		return nil
	}
	c.g.auditRefusals.Add(1)
	c.g.auditRefused(c.r.Context())
	c.rec.Decision, c.rec.Rule = audit.DecisionAuditUnavailable, "audit:"+err.Error()
	return newRPCError(mcpwire.CodeAuditUnavailable, "tool "+strconv.Quote(c.t.name)+" is destructive and the audit log is unavailable ("+err.Error()+"); try again later",
		map[string]any{"tool": c.t.name, "upstream": c.t.upstream, "reason": err.Error()})
}

// exchange sends the call to its upstream, through the upstream's
// breaker, bulkhead and timeouts, and handles the input rounds the mix of
// eras needs (mrtr.go).
func (c *call) exchange() *rpcError {
	c.up = c.rt.byName[c.t.upstream]
	c.rp.eager = streamsAnswers(c.up)
	ctx := c.r.Context()
	if c.rp.open() {
		// A resumable stream outlives its connection: the client that
		// lost it reconnects with Last-Event-ID for the rest, so losing
		// the connection does not cancel the call ("Disconnection SHOULD
		// NOT be interpreted as the client cancelling its request",
		// 2025-11-25 basic/transports). notifications/cancelled, the end
		// of the session and the upstream's timeout still do.
		ctx = context.WithoutCancel(ctx)
	}
	if c.s != nil {
		// notifications/cancelled names the call by its id within the
		// session; the stateless era cancels by closing the request.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		defer c.s.untrack(c.s.track(c.m.ID, cancel))
	}
	c.result, c.upErr = c.g.exchange(ctx, c.s, c.rp, &c.t, c.up, c.request(ctx), c.m)
	if c.upErr != nil {
		return c.g.upstreamError(ctx, &c.t, c.upErr)
	}
	if c.method == mcpwire.MethodResourcesRead && c.t.original != c.t.name {
		// The host reads the URI it was shown (a gateway form): the
		// contents name that URI, as a direct read's name the one asked
		// for (server/resources, "Reading Resources").
		c.result = catalog.RewriteReadURIs(c.result, c.t.original, c.t.name)
	}
	return nil
}

// request is the upstream request of the call.
func (c *call) request(ctx context.Context) *upstream.Request {
	req := &c.reqVal
	*req = upstream.Request{
		Method:     c.method,
		Params:     c.t.params,
		RequestID:  requestIDFrom(ctx),
		Idempotent: c.method != mcpwire.MethodToolsCall || c.t.hints.Retryable(),
		Identity:   identityFor(ctx, c.rt.upCfg[c.t.upstream]),
	}
	if c.method == mcpwire.MethodToolsCall {
		req.Tool = c.t.original
	}
	if c.s == nil {
		req.Header = withParamHeaders(req.Header, c.r.Header)
	}
	meta := rawjson.Member(c.m.Params, "_meta")
	if c.rp.sseOK {
		req.Notify = c.rp
		c.logLevel(ctx, req, meta)
	}
	if tok := rawjson.Member(meta, mcpwire.MetaProgressToken); len(tok) > 0 {
		rp := c.rp
		req.ProgressToken = tok
		req.OnProgress = func(params json.RawMessage) {
			rp.notify(appendNotification(nil, mcpwire.NotifyProgress, params))
		}
	}
	return req
}

// logLevel applies the log level the client asked for to the call: the
// replier filters by it, and the upstream request carries it whatever the
// client's era (logging.go): a 2026-07-28 upstream gets it in _meta, the
// caller's pooled session-era session through logging/setLevel. A
// 2026-07-28 client's level also reaches an upstream whose one session
// carries every call (stdio, legacy SSE), as a 2025-era client's
// logging/setLevel does.
func (c *call) logLevel(ctx context.Context, req *upstream.Request, meta json.RawMessage) {
	level := clientLogLevel(c.s, meta)
	if level == "" {
		return
	}
	c.rp.minLog = mcpwire.LogLevelRank(level)
	req.LogLevel = level
	if c.s == nil {
		c.g.setUpstreamLevel(ctx, c.up, level)
	}
}

// finish ends the call, once: it answers the client, writes the audit
// record of a tools/call, records the call's telemetry, and releases the
// runtime. A panic in a step ends the call as an internal error.
func (c *call) finish() {
	p := recover()
	if p != nil {
		c.rerr, c.upErr = newRPCError(mcpwire.CodeInternalError, "internal error", nil), nil
		c.g.log.ErrorContext(c.r.Context(), "call path panicked", slog.Any("panic", p),
			slog.String("request_id", requestIDFrom(c.r.Context())), slog.String("stack", string(debug.Stack())))
	}
	c.answer()
	var rec *audit.Record
	if c.method == mcpwire.MethodToolsCall {
		rec = c.writeRecord()
	}
	c.observeEnd(rec)
	c.rt.release()
	if p == http.ErrAbortHandler { //nolint:errorlint // the sentinel net/http panics with, compared as it does.
		panic(p)
	}
}

// answer writes the call's answer. A header-first call whose body never
// reached the call path was answered by the body path.
func (c *call) answer() {
	switch {
	case c.rerr != nil && c.rerr.Code == mcpwire.CodeInsufficientScope:
		// Step-up: HTTP 403 naming every scope the tool needs (MCP
		// authorization, "Runtime Insufficient Scope Errors").
		need, _ := c.rerr.Data.([]string)
		if c.ep != nil && c.ep.auth != nil {
			c.ep.auth.Challenge(c.w, c.r, need)
			break
		}
		c.g.auth.Challenge(c.w, c.r, need)
	case c.rp == nil && c.rerr != nil:
		writeHeaderRefusal(c.w, c.rerr)
	case c.rp == nil:
	case c.rerr != nil:
		c.rp.fail(c.m.ID, c.rerr)
	default:
		if c.s == nil && c.up != nil {
			c.result = c.bridgedResult(c.result)
		}
		buf := getMsgBuf()
		*buf = appendResult(slices.Grow((*buf)[:0], len(c.result)+64), c.m.ID, c.result)
		c.rp.send(*buf)
		putMsgBuf(buf)
	}
}

// bridgedResult gives a 2026-07-28 client's result from a session-era
// upstream the resultType every 2026-07-28 result carries (SEP-2322); a
// 2026-07-28 upstream's result is relayed as it is.
func (c *call) bridgedResult(res json.RawMessage) json.RawMessage {
	if cat, _ := c.up.Catalog(); cat == nil || cat.Stateless {
		return res
	}
	return withResultType(res)
}

// withResultType returns the result object res with resultType "complete"
// first, unless it has a resultType already.
func withResultType(res json.RawMessage) json.RawMessage {
	i := rawjson.SkipSpace(res, 0)
	if i >= len(res) || res[i] != '{' || len(rawjson.Member(res, mcpwire.ResultTypeKey)) > 0 {
		return res
	}
	out := make([]byte, 0, len(res)+32)
	out = append(out, `{"`+mcpwire.ResultTypeKey+`":"`+mcpwire.ResultComplete+`"`...)
	if j := rawjson.SkipSpace(res, i+1); j < len(res) && res[j] != '}' {
		out = append(out, ',')
	}
	return append(out, res[i+1:]...)
}

// writeHeaderRefusal answers a call refused on its headers. With no body
// read there is no JSON-RPC id to answer, so it is an HTTP error with a
// JSON-RPC error body without id: 429 with Retry-After for a rate limit,
// 503 for a drained upstream, 403 otherwise.
func writeHeaderRefusal(w http.ResponseWriter, rerr *rpcError) {
	status := http.StatusForbidden
	switch rerr.Code {
	case mcpwire.CodeRateLimited:
		status = http.StatusTooManyRequests
		if data, ok := rerr.Data.(map[string]any); ok {
			if ms, ok := data["retryAfterMs"].(int64); ok {
				w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
			}
		}
	case mcpwire.CodeDrained:
		status = http.StatusServiceUnavailable
	case mcpwire.CodeInternalError:
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, appendError(nil, nil, rerr))
}

// startRecord starts the audit record of a routed tools/call.
func (c *call) startRecord() {
	c.rec = &c.recVal
	c.fillRecord(c.rec)
	c.rec.Tool, c.rec.Upstream, c.rec.UpstreamTool = c.t.name, c.t.upstream, c.t.original
}

// newRecord is a tools/call record with who and when filled in.
func (c *call) newRecord() *audit.Record {
	rec := new(audit.Record)
	c.fillRecord(rec)
	return rec
}

// fillRecord sets rec to a tools/call record with who and when filled in.
func (c *call) fillRecord(rec *audit.Record) {
	ctx := c.r.Context()
	*rec = audit.Record{Time: c.start, Event: audit.EventToolsCall, RequestID: requestIDFrom(ctx), Endpoint: c.r.URL.Path, Subject: anonymous}
	if p, ok := authn.PrincipalFrom(ctx); ok {
		rec.Subject, rec.Issuer, rec.ClientID = p.Subject, p.Issuer, p.ClientID
	}
	if c.s != nil {
		rec.SessionID = c.s.digest
	}
}

// recordArgs adds the call's arguments to its record, as the upstream's
// audit_arguments setting says.
func (c *call) recordArgs() {
	args := rawjson.Member(c.t.params, "arguments")
	if len(args) == 0 {
		return
	}
	c.rec.ArgsSHA256 = audit.CanonicalSHA256(args)
	switch c.rt.upCfg[c.t.upstream].AuditArguments.Effective() {
	case configs.ArgumentsFull:
		c.rec.Args = args
	case configs.ArgumentsRedacted:
		if red, err := audit.Redact(args); err == nil {
			c.rec.Args = red
		}
	default:
	}
}

// writeRecord completes the call's audit record from how the call ended,
// writes it and returns it. A record the audit stream cannot take is
// logged and counted, never dropped silently.
func (c *call) writeRecord() *audit.Record {
	rec := c.rec
	switch {
	case rec == nil:
		rec = c.unroutedRecord()
	case c.upErr != nil:
		rec.Outcome, rec.ErrorCode = outcomeOf(c.upErr), c.rerr.Code
		refusedUpstream(rec, c.upErr)
	case c.rerr != nil && c.rerr.Code != mcpwire.CodeInsufficientScope:
		rec.ErrorCode = c.rerr.Code
		if rec.Decision == audit.DecisionAllowed {
			rec.Outcome = audit.OutcomeJSONRPCError
		}
	case c.rerr != nil:
	case c.next == stepDone:
		rec.Outcome = audit.OutcomeOK
		if isToolError(c.result) {
			rec.Outcome = audit.OutcomeToolError
		}
	default:
		// Admitted on its headers, but the body never became this call
		// (malformed, or not matching its headers).
		rec.Outcome, rec.ErrorCode = audit.OutcomeJSONRPCError, mcpwire.CodeInvalidRequest
	}
	rec.LatencyMicros = c.g.now().Sub(rec.Time).Microseconds()
	ctx := c.r.Context()
	if err := c.g.controls.audit.LogDetached(rec); err != nil {
		c.g.auditRefused(ctx)
		c.g.log.ErrorContext(ctx, "audit record not written", slog.String("tool", rec.Tool),
			slog.String("decision", string(rec.Decision)), slog.String("request_id", rec.RequestID), slog.Any("error", err))
	}
	return rec
}

// unroutedRecord is the record of a tools/call that ended before it had a
// route: the gateway shutting down, an unknown tool, invalid params, or an
// unavailable upstream. With no route there is no upstream audit setting,
// so only the arguments' hash is recorded.
func (c *call) unroutedRecord() *audit.Record {
	rec := c.newRecord()
	rec.Decision = audit.DecisionInvalid
	if c.rerr != nil {
		rec.ErrorCode = c.rerr.Code
	}
	if c.m != nil {
		_ = json.Unmarshal(rawjson.Member(c.m.Params, "name"), &rec.Tool)
		if args := rawjson.Member(c.m.Params, "arguments"); len(args) > 0 {
			rec.ArgsSHA256 = audit.CanonicalSHA256(args)
		}
	}
	switch rec.ErrorCode {
	case mcpwire.CodeShuttingDown:
		rec.Decision, rec.Rule = audit.DecisionUnavailable, "shutting_down"
	case mcpwire.CodeUpstreamUnavailable:
		rec.Decision, rec.Rule = audit.DecisionUnavailable, "upstream_unavailable"
		if data, ok := c.rerr.Data.(map[string]any); ok {
			rec.Upstream, _ = data["upstream"].(string)
		}
	case mcpwire.CodeInternalError:
		rec.Outcome = audit.OutcomeJSONRPCError
	}
	return rec
}

// anonymous is the principal of an unauthenticated gateway, for rate limits
// and the audit stream.
const anonymous = "anonymous"

// outcomeOf classifies a failed upstream call for the audit stream.
func outcomeOf(err error) audit.Outcome {
	var rpcErr *upstream.RPCError
	var own *rpcError
	switch {
	case errors.As(err, &rpcErr), errors.As(err, &own):
		return audit.OutcomeJSONRPCError
	case errors.Is(err, upstream.ErrTimeout):
		return audit.OutcomeTimeout
	default:
		return audit.OutcomeTransportError
	}
}

// isToolError reports whether a tools/call result has "isError": true.
func isToolError(result []byte) bool {
	if !bytes.Contains(result, []byte(`"isError"`)) {
		return false
	}
	return string(rawjson.Member(result, "isError")) == "true"
}
