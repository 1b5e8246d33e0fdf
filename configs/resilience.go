package configs

import (
	"fmt"
	"path"
	"time"
)

// The resilience settings of an upstream: its circuit breaker, its
// bulkhead, which calls are retried, and per-tool timeouts. As in the
// policy section, a zero value means the documented default and negative
// values are errors.
//
//	upstreams:
//	  - name: orders
//	    timeout: 30s
//	    timeouts:
//	      - {match: "export_*", timeout: 2m}
//	    breaker: {failures: 5, window: 30s, open_for: 10s, half_open_probes: 1, scope: tool}
//	    bulkhead: {max_concurrent: 64, max_queued: 64, queue_timeout: 1s}
//	    retry: {attempts: 2, backoff: 100ms, tools: ["get_*"]}

// Breaker is an upstream's circuit breaker. It counts only failures that
// show the upstream is sick: transport errors (refused, reset), HTTP 5xx
// (with or without a JSON-RPC error in the body), the upstream's own
// timeouts and malformed responses. A tool result with isError, a JSON-RPC
// error, HTTP 4xx (429 included) and a caller that cancels or runs out of
// its own deadline do not count. An open circuit refuses calls at once, without upstream
// traffic, until OpenFor has passed; then HalfOpenProbes calls are let
// through, and as many successes in a row close it again while one failure
// opens it anew.
type Breaker struct {
	// Disabled turns the breaker off. Default false: every upstream has one.
	Disabled bool `mapstructure:"disabled" yaml:"disabled,omitempty"`
	// Failures is the number of failed calls within Window that opens the
	// circuit. Default 5.
	Failures int `mapstructure:"failures" yaml:"failures"`
	// Window is the rolling period over which failures are counted.
	// Default 30s.
	Window time.Duration `mapstructure:"window" yaml:"window"`
	// OpenFor is how long an open circuit refuses calls before it lets
	// probes through. Default 10s.
	OpenFor time.Duration `mapstructure:"open_for" yaml:"open_for"`
	// HalfOpenProbes is the number of calls let through at once while the
	// circuit is half-open, and the number of successes that close it.
	// Default 1.
	HalfOpenProbes int `mapstructure:"half_open_probes" yaml:"half_open_probes"`
	// Scope is what one breaker guards: tool (one breaker per tool, by
	// original name, so a slow or broken tool does not shut its upstream's
	// other tools) or upstream (one breaker for every call to the
	// upstream). Resource reads and prompts share the upstream's breaker
	// either way. An upstream that cannot be reached at all (its
	// reconnects fail with transport errors) counts against every one of
	// its breakers. Default tool.
	Scope string `mapstructure:"scope" yaml:"scope"`
	// PerTool is the former spelling of scope: tool, kept so that old
	// files load; true means scope: tool. Deprecated: use Scope.
	PerTool bool `mapstructure:"per_tool" yaml:"per_tool,omitempty"`
}

// Breaker scopes (Breaker.Scope).
const (
	// BreakerScopeTool keeps one breaker per tool.
	BreakerScopeTool = "tool"
	// BreakerScopeUpstream keeps one breaker per upstream.
	BreakerScopeUpstream = "upstream"
)

// PerToolScope reports whether tools get their own breakers.
func (b *Breaker) PerToolScope() bool {
	return b.PerTool || b.Scope != BreakerScopeUpstream
}

// Bulkhead bounds the calls in flight to one upstream, so a slow upstream
// holds at most MaxConcurrent calls and their response buffers. A call over
// the limit waits in a queue of at most MaxQueued calls for at most
// QueueTimeout, then is refused with a busy error.
type Bulkhead struct {
	// MaxConcurrent is the number of calls in flight to the upstream at
	// once. Default 64: at the default max_response_bytes that bounds the
	// response memory one upstream can hold to 1 GiB, and it stays well
	// under the 256 keep-alive connections kept per HTTP upstream, so calls
	// reuse connections rather than dialing new ones.
	MaxConcurrent int `mapstructure:"max_concurrent" yaml:"max_concurrent"`
	// MaxQueued is the number of calls that may wait for a slot; one more is
	// refused at once. Default 64; with the default filled in for 0, a
	// queue cannot be turned off, only made short with QueueTimeout.
	MaxQueued int `mapstructure:"max_queued" yaml:"max_queued"`
	// QueueTimeout is how long a call waits for a slot before it is
	// refused. Default 1s.
	QueueTimeout time.Duration `mapstructure:"queue_timeout" yaml:"queue_timeout"`
}

// Retry says which calls to an upstream are sent again after a transient
// failure (a transport error or HTTP 5xx): resources/read, tools annotated
// readOnlyHint or idempotentHint by the upstream, and the tools matching
// Tools. tools/call is never retried otherwise, nor once any progress
// notification was relayed to the client. Every attempt shares the call's
// one deadline; a backoff that would not fit in it is not taken. The
// catalog refresh (tools/list and the other lists) is retried the same way.
type Retry struct {
	// Attempts is the total number of tries of a retryable call, the first
	// included; 1 turns retries off. Default 2.
	Attempts int `mapstructure:"attempts" yaml:"attempts"`
	// Backoff is the base of the jittered exponential backoff between
	// tries. Default 100ms.
	Backoff time.Duration `mapstructure:"backoff" yaml:"backoff"`
	// Tools are path.Match globs on original tool names that are safe to
	// retry although the upstream does not annotate them so.
	Tools []string `mapstructure:"tools" yaml:"tools,omitempty"`
}

// ToolTimeout overrides an upstream's timeout for the tools whose original
// name matches.
type ToolTimeout struct {
	// Match is a path.Match glob on the tool's original (upstream) name, as
	// in tools.include and scopes. Required.
	Match string `mapstructure:"match" yaml:"match"`
	// Timeout bounds one call of the matching tools, longer or shorter than
	// the upstream's timeout. Required.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
}

// Defaults of the resilience settings.
const (
	// DefaultBreakerFailures opens a circuit.
	DefaultBreakerFailures = 5
	// DefaultBreakerWindow is the period failures are counted over.
	DefaultBreakerWindow = 30 * time.Second
	// DefaultBreakerOpenFor is how long an open circuit refuses calls.
	DefaultBreakerOpenFor = 10 * time.Second
	// DefaultBreakerHalfOpenProbes is the number of probes of a half-open
	// circuit.
	DefaultBreakerHalfOpenProbes = 1
	// DefaultMaxConcurrent is the bulkhead's limit of calls in flight.
	DefaultMaxConcurrent = 64
	// DefaultMaxQueued is the bulkhead's queue length.
	DefaultMaxQueued = 64
	// DefaultQueueTimeout is the bulkhead's longest wait.
	DefaultQueueTimeout = time.Second
	// DefaultRetryAttempts is the number of tries of a retryable call.
	DefaultRetryAttempts = 2
	// DefaultRetryBackoff is the base backoff between tries.
	DefaultRetryBackoff = 100 * time.Millisecond
)

func (u *Upstream) setResilienceDefaults() {
	b := &u.Breaker
	setDefault(&b.Failures, DefaultBreakerFailures)
	setDefault(&b.Window, DefaultBreakerWindow)
	setDefault(&b.OpenFor, DefaultBreakerOpenFor)
	setDefault(&b.HalfOpenProbes, DefaultBreakerHalfOpenProbes)
	setDefault(&b.Scope, BreakerScopeTool)
	setDefault(&u.Bulkhead.MaxConcurrent, DefaultMaxConcurrent)
	setDefault(&u.Bulkhead.MaxQueued, DefaultMaxQueued)
	setDefault(&u.Bulkhead.QueueTimeout, DefaultQueueTimeout)
	setDefault(&u.Retry.Attempts, DefaultRetryAttempts)
	setDefault(&u.Retry.Backoff, DefaultRetryBackoff)
}

// resilience checks an upstream's breaker, bulkhead, retry and timeouts
// settings; p is the upstream's path. Zero values mean the defaults, as in
// the policy section, so only negative ones are errors.
func (v *validator) resilience(p string, u *Upstream) {
	nonNegative := func(path string, n int) {
		if n < 0 {
			v.add(path, "must not be negative")
		}
	}
	nonNegativeDuration := func(path string, d time.Duration) {
		if d < 0 {
			v.add(path, "must not be negative")
		}
	}
	b := &u.Breaker
	nonNegative(p+".breaker.failures", b.Failures)
	nonNegativeDuration(p+".breaker.window", b.Window)
	nonNegativeDuration(p+".breaker.open_for", b.OpenFor)
	nonNegative(p+".breaker.half_open_probes", b.HalfOpenProbes)
	switch b.Scope {
	case "", BreakerScopeTool, BreakerScopeUpstream:
		if b.PerTool && b.Scope == BreakerScopeUpstream {
			v.add(p+".breaker.per_tool", "contradicts scope: upstream; per_tool is deprecated, set only scope")
		}
	default:
		v.add(p+".breaker.scope", "must be %s or %s, not %q", BreakerScopeTool, BreakerScopeUpstream, b.Scope)
	}
	nonNegative(p+".bulkhead.max_concurrent", u.Bulkhead.MaxConcurrent)
	nonNegative(p+".bulkhead.max_queued", u.Bulkhead.MaxQueued)
	nonNegativeDuration(p+".bulkhead.queue_timeout", u.Bulkhead.QueueTimeout)
	nonNegative(p+".retry.attempts", u.Retry.Attempts)
	nonNegativeDuration(p+".retry.backoff", u.Retry.Backoff)
	v.globs(p+".retry.tools", u.Retry.Tools)
	for i, t := range u.Timeouts {
		tp := fmt.Sprintf("%s.timeouts[%d]", p, i)
		switch _, err := path.Match(t.Match, ""); {
		case t.Match == "":
			v.add(tp+".match", "required")
		case err != nil:
			v.add(tp+".match", "%q is not a valid glob: %v", t.Match, err)
		}
		v.positiveDuration(tp+".timeout", t.Timeout)
	}
}
