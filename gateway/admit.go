package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// Gateway refusal codes for tools/call, in the documented range.
const (
	// codeKilled: a kill switch stops the call; data carries its reason,
	// ticket and id.
	codeKilled = -32060
	// codeRateLimited: a rate limit refused the call; data.retryAfterMs.
	codeRateLimited = -32061
	// codeDrained: the upstream is drained for maintenance.
	codeDrained = -32062
	// codeInsufficientScope marks a refusal that is answered with HTTP 403
	// and a step-up challenge rather than a JSON-RPC error.
	codeInsufficientScope = -32063
)

// anonymous is the principal of an unauthenticated gateway, for rate limits
// and the audit stream.
const anonymous = "anonymous"

// admit runs the early decisions of the tools/call path, in order: kill
// switch, authorization, drain, rate limit. It fills in the record's
// decision and returns the refusal, or nil. A refusal for missing scopes has
// codeInsufficientScope and lists the scopes the tool needs in Data.
func (g *Gateway) admit(ctx context.Context, rt *runtime, t target, rec *audit.Record) *rpcError {
	c := g.controls
	if sw, killed := c.switches.Check(t.name, t.upstream); killed {
		rec.Decision, rec.Rule = audit.DecisionKilled, "killswitch:"+sw.ID
		data := map[string]any{"reason": sw.Reason, "killSwitch": sw.ID, "scope": sw.Scope, "upstream": t.upstream}
		if sw.Ticket != "" {
			data["ticket"] = sw.Ticket
		}
		return newRPCError(codeKilled, "tool "+strconv.Quote(t.name)+" is disabled by a kill switch: "+sw.Reason, data)
	}
	if p, ok := authn.PrincipalFrom(ctx); ok {
		need := rt.scopes.Scopes(t.upstream, t.original)
		if missing := policy.Missing(p.Scopes, need); len(missing) > 0 {
			rec.Decision, rec.Rule = audit.DecisionDenied, "scope:"+strings.Join(missing, " ")
			return newRPCError(codeInsufficientScope, "insufficient scope", need)
		}
	}
	if c.drains.IsDrained(t.upstream) {
		rec.Decision, rec.Rule = audit.DecisionDrained, "drain:"+t.upstream
		return newRPCError(codeDrained, "upstream "+strconv.Quote(t.upstream)+" is drained; try again later",
			map[string]any{"upstream": t.upstream})
	}
	if d := rt.limiter.Allow(ctx, rec.Subject, t.name, t.upstream); !d.Allowed {
		rec.Decision, rec.Rule = audit.DecisionLimited, d.Rule
		retry := d.RetryAfter.Milliseconds()
		return newRPCError(codeRateLimited, "rate limit "+d.Rule+" exceeded; retry in "+d.RetryAfter.Round(time.Millisecond).String(),
			map[string]any{"rule": d.Rule, "retryAfterMs": retry, "upstream": t.upstream})
	}
	rec.Decision = audit.DecisionAllowed
	return nil
}

// newRecord starts the audit record of one tools/call.
func (g *Gateway) newRecord(r *http.Request, rt *runtime, s *session, t target) *audit.Record {
	rec := &audit.Record{
		Time:         g.now(),
		Event:        audit.EventToolsCall,
		RequestID:    requestIDFrom(r.Context()),
		Subject:      anonymous,
		Tool:         t.name,
		Upstream:     t.upstream,
		UpstreamTool: t.original,
	}
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		rec.Subject, rec.ClientID = p.Subject, p.ClientID
	}
	if s != nil {
		rec.SessionID = s.digest
	}
	g.recordArgs(rec, rt, t)
	return rec
}

// recordArgs adds the call's arguments to its record, as the upstream's
// audit_arguments setting says.
func (g *Gateway) recordArgs(rec *audit.Record, rt *runtime, t target) {
	args := member(t.params, "arguments")
	if len(args) > 0 {
		rec.ArgsSHA256 = audit.CanonicalSHA256(args)
		switch rt.upCfg[t.upstream].AuditArguments.Effective() {
		case configs.ArgumentsFull:
			rec.Args = args
		case configs.ArgumentsRedacted:
			if red, err := audit.Redact(args); err == nil {
				rec.Args = red
			}
		default:
		}
	}
}

// auditUnrouted writes the record of a tools/call that ended before the
// policy chain: the gateway shutting down, an unknown tool, invalid params,
// or an unavailable upstream. Every tools/call exit writes exactly one
// record; other methods are not audited. With no route there is no
// upstream audit setting, so only the arguments' hash is recorded.
func (g *Gateway) auditUnrouted(r *http.Request, s *session, m *message, rerr *rpcError) {
	if m.Method != "tools/call" {
		return
	}
	if e := earlyFrom(r.Context()); e != nil {
		// Admitted on its headers: this record replaces the one
		// finishEarly would write.
		e.used = true
	}
	rec := &audit.Record{
		Time:      g.now(),
		Event:     audit.EventToolsCall,
		RequestID: requestIDFrom(r.Context()),
		Subject:   anonymous,
		ErrorCode: rerr.Code,
		Decision:  audit.DecisionInvalid,
	}
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		rec.Subject, rec.ClientID = p.Subject, p.ClientID
	}
	if s != nil {
		rec.SessionID = s.digest
	}
	_ = json.Unmarshal(member(m.Params, "name"), &rec.Tool)
	if args := member(m.Params, "arguments"); len(args) > 0 {
		rec.ArgsSHA256 = audit.CanonicalSHA256(args)
	}
	switch rerr.Code {
	case codeShuttingDown:
		rec.Decision, rec.Rule = audit.DecisionUnavailable, "shutting_down"
	case codeUpstreamUnavailable:
		rec.Decision, rec.Rule = audit.DecisionUnavailable, "upstream_unavailable"
		if data, ok := rerr.Data.(map[string]any); ok {
			rec.Upstream, _ = data["upstream"].(string)
		}
	}
	g.writeAudit(r.Context(), rec)
}

// writeAudit finishes and writes a record. A record the audit stream
// cannot take is logged and counted, never dropped silently.
func (g *Gateway) writeAudit(ctx context.Context, rec *audit.Record) {
	rec.LatencyMicros = g.now().Sub(rec.Time).Microseconds()
	if err := g.controls.audit.Log(context.WithoutCancel(ctx), rec); err != nil {
		g.auditRefused(ctx)
		g.log.ErrorContext(ctx, "audit record not written", slog.String("tool", rec.Tool),
			slog.String("decision", string(rec.Decision)), slog.String("request_id", rec.RequestID), slog.Any("error", err))
	}
}

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
	return string(member(result, "isError")) == "true"
}
