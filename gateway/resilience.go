package gateway

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// AuditRefused returns the number of destructive calls refused because the
// audit stream was stuck or failing (exported as mcpgw_audit_refused_total).
func (g *Gateway) AuditRefused() uint64 { return g.auditRefusals.Load() }

// resilienceError maps a call the upstream's breaker or bulkhead refused
// to the wire; nil for any other error.
func resilienceError(t *target, err error) *rpcError {
	var e *upstream.Error
	switch {
	case !errors.As(err, &e):
		return nil
	case errors.Is(err, upstream.ErrCircuitOpen):
		return newRPCError(mcpwire.CodeCircuitOpen, "upstream "+strconv.Quote(t.upstream)+" is failing: "+e.Detail+"; retry in "+
			e.RetryAfter.Round(time.Millisecond).String(),
			map[string]any{"upstream": t.upstream, "state": e.Breaker, "retryAfterMs": retryMs(e.RetryAfter)})
	case errors.Is(err, upstream.ErrBusy):
		return newRPCError(mcpwire.CodeUpstreamBusy, "upstream "+strconv.Quote(t.upstream)+" is busy: "+e.Err.Error(),
			map[string]any{"upstream": t.upstream, "retryAfterMs": retryMs(e.RetryAfter)})
	default:
		return nil
	}
}

// retryMs is a retry hint in whole milliseconds, at least 1.
func retryMs(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// withTimeout adds timeoutMs to the data of a timeout error when it was
// the upstream's own (per-tool) timeout that expired.
func withTimeout(data map[string]any, err error) map[string]any {
	var e *upstream.Error
	if errors.As(err, &e) && e.Timeout > 0 {
		data["timeoutMs"] = e.Timeout.Milliseconds()
	}
	return data
}

// refusedUpstream records in rec that the upstream's breaker or bulkhead
// refused the call: that is the gateway's decision, not an outcome.
func refusedUpstream(rec *audit.Record, err error) {
	switch {
	case errors.Is(err, upstream.ErrCircuitOpen):
		rec.Decision, rec.Rule, rec.Outcome = audit.DecisionCircuitOpen, "breaker:"+rec.Upstream, ""
	case errors.Is(err, upstream.ErrBusy):
		rec.Decision, rec.Rule, rec.Outcome = audit.DecisionBusy, "bulkhead:"+rec.Upstream, ""
	}
}

// listUpstreams answers GET /admin/v1/upstreams: each upstream with its
// health, era, breaker, drain, load and tool counts, and the drain records.
func (g *Gateway) listUpstreams(w http.ResponseWriter, _ *http.Request) {
	writeAdmin(w, http.StatusOK, map[string]any{"upstreams": g.Upstreams(), "drained": g.Drains()})
}
