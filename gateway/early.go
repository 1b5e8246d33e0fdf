package gateway

import (
	"context"
	"net/http"
	"slices"
	"strconv"

	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// The header-first fast path. A 2026-07-28 request mirrors its method and
// name in Mcp-Method and Mcp-Name "so that intermediaries can route and
// inspect requests without parsing the body" (basic/transports/
// streamable-http, "Request Metadata"). For tools/call the gateway routes
// and runs the early decisions (kill switch, authorization, drain, rate
// limit) on those headers before it reads the body; a refused request is
// answered without reading it. An admitted request's body is read and
// checked against the headers as usual (a mismatch is -32020, so a header
// cannot smuggle a call past the checks of another tool), and the call
// path skips the decisions already taken.
//
// Only a version that requires header-body validation is trusted this way
// (the spec's note for intermediaries that enforce policy on mirrored
// headers).
//
// A refusal before the body has no JSON-RPC id to answer, so it is an HTTP
// error with a JSON-RPC error body without id: 429 with Retry-After for a
// rate limit, 403 for a kill switch, 503 for a drained upstream, and the
// usual 403 step-up challenge for missing scopes. Each writes exactly one
// audit record, without argument digests (the arguments were never read).

// early is a tools/call admitted on its headers.
type early struct {
	t    target
	rec  *audit.Record
	used bool // the call path took over the record
}

type earlyKey struct{}

// earlyFrom returns the header-first admission of a request, if any.
func earlyFrom(ctx context.Context) *early {
	e, _ := ctx.Value(earlyKey{}).(*early)
	return e
}

// admitEarly decides a modern tools/call on its headers. It reports true
// when it answered the request (a refusal). Otherwise r may carry the
// admission for the call path.
func (g *Gateway) admitEarly(w http.ResponseWriter, r *http.Request) (*http.Request, *early, bool) {
	h := r.Header
	if h.Get(headerMethod) != "tools/call" || !slices.Contains(modernVersions, h.Get(headerProtocolVersion)) || g.draining.Load() {
		return r, nil, false
	}
	name, ok := decodeHeaderValue(h.Get(headerName))
	if !ok || name == "" {
		return r, nil, false // the body path reports the header error
	}
	rt := g.rt.Load()
	route, ok := rt.snapshot().Tool(name)
	if !ok || !route.Available {
		return r, nil, false // unknown or unavailable: answered with the body's id
	}
	t := target{upstream: route.Upstream, original: route.Name, name: name}
	rec := g.newRecord(r, rt, nil, t)
	rerr := g.admit(r.Context(), rt, t, rec)
	if rerr == nil {
		e := &early{t: t, rec: rec}
		return r.WithContext(context.WithValue(r.Context(), earlyKey{}, e)), e, false
	}
	g.writeAuditRefusal(r, rec, rerr)
	if rerr.Code == codeInsufficientScope {
		need, _ := rerr.Data.([]string)
		g.auth.Challenge(w, r, need)
		return r, nil, true
	}
	status := http.StatusForbidden
	switch rerr.Code {
	case codeRateLimited:
		status = http.StatusTooManyRequests
		if data, ok := rerr.Data.(map[string]any); ok {
			if ms, ok := data["retryAfterMs"].(int64); ok {
				w.Header().Set("Retry-After", strconv.FormatInt((ms+999)/1000, 10))
			}
		}
	case codeDrained:
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, appendError(nil, nil, rerr))
	return r, nil, true
}

// writeAuditRefusal writes the record of a refused call.
func (g *Gateway) writeAuditRefusal(r *http.Request, rec *audit.Record, rerr *rpcError) {
	if rerr.Code != codeInsufficientScope {
		rec.ErrorCode = rerr.Code
	}
	g.writeAudit(r.Context(), rec)
}

// finishEarly writes the record of an admitted request whose body never
// became a call (malformed, or not matching its headers).
func (g *Gateway) finishEarly(r *http.Request, e *early) {
	if e == nil || e.used {
		return
	}
	e.rec.Outcome, e.rec.ErrorCode = audit.OutcomeJSONRPCError, codeInvalidRequest
	g.writeAudit(r.Context(), e.rec)
}
