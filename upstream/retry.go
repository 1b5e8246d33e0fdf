package upstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/backoff"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// toolPolicy is what the configuration says about one tool, resolved from
// the upstream's globs once per catalog rather than per call.
type toolPolicy struct {
	// cause ends the call's context at its timeout; it carries the
	// timeout for the error message.
	cause *timeoutCauseError
	// retry: the configuration marks the tool safe to retry.
	retry bool
}

// timeoutCauseError is the cause of a call context that hit the upstream's own
// (per-tool) timeout rather than the caller's deadline.
type timeoutCauseError struct{ d time.Duration }

func (t *timeoutCauseError) Error() string        { return "upstream timeout after " + t.d.String() }
func (t *timeoutCauseError) Is(target error) bool { return target == errOwnTimeout }

// toolRules are the upstream's per-tool settings as configured.
type toolRules struct {
	timeouts []configs.ToolTimeout
	retry    []string
	causes   map[time.Duration]*timeoutCauseError
}

func newToolRules(cfg *configs.Upstream, def *timeoutCauseError) *toolRules {
	r := &toolRules{timeouts: cfg.Timeouts, retry: cfg.Retry.Tools, causes: map[time.Duration]*timeoutCauseError{def.d: def}}
	for _, t := range cfg.Timeouts {
		if r.causes[t.Timeout] == nil {
			r.causes[t.Timeout] = &timeoutCauseError{d: t.Timeout}
		}
	}
	return r
}

// table resolves the rules for every tool of a catalog: the first timeout
// rule that matches a tool's original name wins, and any retry glob marks
// it. Tools no rule matches are left out (the upstream's defaults apply);
// nil means no tool has a rule.
func (r *toolRules) table(tools []json.RawMessage, def *timeoutCauseError) map[string]toolPolicy {
	if len(r.timeouts) == 0 && len(r.retry) == 0 {
		return nil
	}
	out := make(map[string]toolPolicy)
	for _, raw := range tools {
		name, ok := rawjson.DecodeString(rawjson.Member(raw, "name"))
		if !ok || name == "" {
			continue
		}
		p := toolPolicy{cause: def}
		hit := false
		for _, t := range r.timeouts {
			if ok, _ := path.Match(t.Match, name); ok {
				p.cause, hit = r.causes[t.Timeout], true
				break
			}
		}
		for _, g := range r.retry {
			if ok, _ := path.Match(g, name); ok {
				p.retry, hit = true, true
				break
			}
		}
		if hit {
			out[name] = p
		}
	}
	return out
}

// setCatalog publishes cat and the per-tool policies resolved for it.
func (c *Client) setCatalog(cat *Catalog) {
	t := c.rules.table(cat.Tools, c.defaultCause)
	c.toolTable.Store(&t)
	c.catalog.Store(cat)
}

// policyFor returns the policy of req: its tool's, or the upstream's.
func (c *Client) policyFor(req *Request) toolPolicy {
	if req.Tool != "" {
		if t := c.toolTable.Load(); t != nil && *t != nil {
			if p, ok := (*t)[req.Tool]; ok {
				return p
			}
		}
	}
	return toolPolicy{cause: c.defaultCause}
}

// retryable reports whether req may be sent again after a transient
// failure: resources/read (MCP resources are reads), and tools/call only
// for tools annotated read-only or idempotent (req.Idempotent, set by the
// gateway from the catalog) or marked in the configuration.
func (c *Client) retryable(req *Request, p toolPolicy) bool {
	if c.attempts < 2 {
		return false
	}
	switch req.Method {
	case mcpwire.MethodResourcesRead:
		return true
	case mcpwire.MethodToolsCall:
		return req.Idempotent || p.retry
	default:
		return false
	}
}

// transient reports whether a failure may pass on a second try: the
// exchange broke, or the upstream answered 5xx (429 is the upstream asking
// for less traffic, not more).
func transient(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return isTransportError(err) || e.Status >= 500
}

// retryBackoff is the jittered backoff between tries of one call: before
// try n+1, between half and all of base·2^(n-1).
func retryBackoff(base time.Duration) backoff.Exponential {
	return backoff.Exponential{Initial: base, Jitter: true}
}

// fitsDeadline reports whether waiting d leaves ctx time for another try.
func fitsDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return !ok || time.Until(dl) > d
}

// withRetries sends req, and again after transient failures while it is
// retryable, attempts remain, the backoff fits in ctx's deadline and no
// progress notification was relayed (the client has seen part of this
// call; sending it again would show it a second run).
func (c *Client) withRetries(ctx context.Context, req *Request, retry bool) (json.RawMessage, error) {
	if !retry {
		return c.callSession(ctx, req)
	}
	var relayed atomic.Bool
	if fn := req.OnProgress; fn != nil {
		r := *req
		r.OnProgress = func(p json.RawMessage) {
			relayed.Store(true)
			fn(p)
		}
		req = &r
	}
	bo := retryBackoff(c.backoff)
	for n := 1; ; n++ {
		res, err := c.callSession(ctx, req)
		if err == nil || n >= c.attempts || relayed.Load() || ctx.Err() != nil || !transient(err) {
			return res, err
		}
		wait := bo.Next()
		if !fitsDeadline(ctx, wait) {
			return res, err
		}
		c.log.DebugContext(ctx, "retrying upstream call", slog.String("method", req.Method), slog.Int("attempt", n+1), slog.Any("error", err))
		if !backoff.Wait(ctx, wait) {
			return nil, c.ctxError(ctx, err)
		}
	}
}

// discoverWithRetries is discover, tried again after transient failures
// within ctx: the catalog refresh lists are reads, always safe to repeat.
func (c *Client) discoverWithRetries(ctx context.Context, s *session) (*Catalog, error) {
	bo := retryBackoff(c.backoff)
	cat, err := c.discover(ctx, s)
	for n := 1; err != nil && n < c.attempts && transient(err) && ctx.Err() == nil; n++ {
		wait := bo.Next()
		if !fitsDeadline(ctx, wait) || !backoff.Wait(ctx, wait) {
			break
		}
		cat, err = c.discover(ctx, s)
	}
	return cat, err
}

// newResilience builds the breakers, bulkhead and per-tool rules of cfg.
// Zero settings mean the configs defaults, so a Config built in code
// without SetDefaults works.
func (c *Client) newResilience(cfg *configs.Upstream) {
	bc := cfg.Breaker
	bc.Failures = cmp.Or(bc.Failures, configs.DefaultBreakerFailures)
	bc.Window = cmp.Or(bc.Window, configs.DefaultBreakerWindow)
	bc.OpenFor = cmp.Or(bc.OpenFor, configs.DefaultBreakerOpenFor)
	bc.HalfOpenProbes = cmp.Or(bc.HalfOpenProbes, configs.DefaultBreakerHalfOpenProbes)
	var onChange func(tool, from, to string)
	if c.onBreaker != nil {
		name, hear := cfg.Name, c.onBreaker
		onChange = func(tool, from, to string) { hear(name, tool, from, to) }
	}
	c.breakers = newBreakers(cfg.Name, bc, onChange)
	bh := cfg.Bulkhead
	c.bulk = newBulkhead(cmp.Or(bh.MaxConcurrent, configs.DefaultMaxConcurrent), cmp.Or(bh.MaxQueued, configs.DefaultMaxQueued),
		cmp.Or(bh.QueueTimeout, configs.DefaultQueueTimeout))
	c.attempts = cmp.Or(cfg.Retry.Attempts, configs.DefaultRetryAttempts)
	c.backoff = cmp.Or(cfg.Retry.Backoff, configs.DefaultRetryBackoff)
	c.defaultCause = &timeoutCauseError{d: c.timeout}
	c.rules = newToolRules(cfg, c.defaultCause)
}
