package upstream

import (
	"cmp"
	"errors"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Breaker states as the admin API and /readyz report them.
const (
	BreakerClosed   = "closed"
	BreakerOpen     = "open"
	BreakerHalfOpen = "half-open"
	BreakerDisabled = "disabled"
)

// breakerBuckets is the number of buckets of a breaker's rolling window.
const breakerBuckets = 10

// breakers are the circuit breakers of one client: one for the whole
// upstream and, with breaker.per_tool, one per tool (by original name),
// made on first use. Tool names reach Call only after the gateway resolved
// them against the catalog, so the set stays as small as the catalog.
type breakers struct {
	cfg     configs.Breaker
	whole   *breaker // nil when disabled
	perTool bool
	tools   sync.Map // original tool name → *breaker
	// onChange hears every state change of these breakers: the tool of a
	// per-tool breaker ("" for the upstream's own) and the states as the
	// admin API spells them. Nil when nobody listens.
	onChange func(tool, from, to string)
}

func newBreakers(name string, cfg configs.Breaker, onChange func(tool, from, to string)) *breakers {
	bs := &breakers{cfg: cfg, perTool: cfg.PerToolScope(), onChange: onChange}
	if cfg.Disabled {
		return bs
	}
	bs.whole = newBreaker(name, "", cfg, onChange)
	return bs
}

// failAll counts err, a failure to reach the upstream at all, against
// every breaker of the upstream: a connection that cannot be made fails
// every tool alike. An open breaker is left as it is.
func (bs *breakers) failAll(err error) {
	if bs.whole == nil {
		return
	}
	fail := func(b *breaker) {
		if done, aerr := b.cb.Allow(); aerr == nil {
			done(err)
		}
	}
	fail(bs.whole)
	bs.tools.Range(func(_, v any) bool {
		fail(v.(*breaker)) //nolint:errcheck // tools holds only *breaker.
		return true
	})
}

// pick returns the breaker that guards req, nil when breakers are off.
func (bs *breakers) pick(upstream string, req *Request) *breaker {
	if bs.whole == nil || !bs.perTool || req.Method != mcpwire.MethodToolsCall || req.Tool == "" {
		return bs.whole
	}
	if b, ok := bs.tools.Load(req.Tool); ok {
		return b.(*breaker) //nolint:errcheck // tools holds only *breaker.
	}
	b, _ := bs.tools.LoadOrStore(req.Tool, newBreaker(upstream+"/"+req.Tool, req.Tool, bs.cfg, bs.onChange))
	return b.(*breaker) //nolint:errcheck // tools holds only *breaker.
}

// breaker is one gobreaker two-step breaker and when it last opened, for
// retryAfterMs.
type breaker struct {
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	openFor  time.Duration
	openedAt atomic.Int64 // unix nanoseconds of the last change to open
}

// atLeastOne is a configured count as gobreaker's uint32: at least one, and
// capped rather than wrapped when it does not fit.
func atLeastOne(n int) uint32 {
	if n < 1 {
		return 1
	}
	if uint64(n) > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(n) //nolint:gosec // 1 <= n <= MaxUint32, checked above.
}

func newBreaker(name, tool string, cfg configs.Breaker, onChange func(tool, from, to string)) *breaker {
	b := &breaker{openFor: cfg.OpenFor}
	failures := atLeastOne(cfg.Failures)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        name,
		MaxRequests: atLeastOne(cfg.HalfOpenProbes),
		// A rolling window: failures older than Window no longer count.
		Interval:     cfg.Window,
		BucketPeriod: cfg.Window / breakerBuckets,
		Timeout:      cfg.OpenFor,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.TotalFailures >= failures },
		OnStateChange: func(_ string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
			if onChange != nil {
				onChange(tool, stateName(from), stateName(to))
			}
		},
		// Exclusion is checked first: a call that says nothing about the
		// upstream's health is neither a success nor a failure, and in the
		// half-open state it gives its probe slot back.
		IsExcluded:   func(err error) bool { return classify(err) == verdictNeutral },
		IsSuccessful: func(err error) bool { return classify(err) == verdictHealthy },
	})
	return b
}

// state returns the breaker's state; reading it moves an open breaker
// whose time is up to half-open.
func (b *breaker) state() string { return stateName(b.cb.State()) }

// stateName spells a gobreaker state as the admin API does.
func stateName(s gobreaker.State) string {
	switch s {
	case gobreaker.StateOpen:
		return BreakerOpen
	case gobreaker.StateHalfOpen:
		return BreakerHalfOpen
	default:
		return BreakerClosed
	}
}

// retryAfter is how long until an open breaker lets a probe through; for a
// half-open one whose probes are taken, a short wait for their outcome.
func (b *breaker) retryAfter(halfOpen bool) time.Duration {
	if halfOpen {
		return min(b.openFor, time.Second)
	}
	left := time.Until(time.Unix(0, b.openedAt.Load()).Add(b.openFor))
	return max(left, time.Millisecond)
}

// verdict is what a call's outcome says about the upstream's health.
type verdict int

const (
	// verdictHealthy: the upstream answered (a result, isError or not, a
	// JSON-RPC error that did not come with a 5xx, or a 4xx other than
	// 429).
	verdictHealthy verdict = iota
	// verdictSick: a transport error, HTTP 5xx, the upstream's own timeout,
	// or a malformed response.
	verdictSick
	// verdictNeutral: nothing learned: HTTP 429 (alive, pushing back), the
	// caller cancelled or ran out of its own deadline, the call was
	// refused before it was sent (down, busy, bad request), the session
	// expired, or the response was over the configured size.
	verdictNeutral
)

// classify judges a call's error for the circuit breaker.
func classify(err error) verdict {
	if err == nil {
		return verdictHealthy
	}
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		if rpcErr.Status >= 500 {
			return verdictSick
		}
		return verdictHealthy
	}
	var e *Error
	if !errors.As(err, &e) {
		return verdictNeutral
	}
	switch {
	case e.Status == http.StatusTooManyRequests:
		return verdictNeutral
	case e.Status >= 500:
		return verdictSick
	case e.Status >= 400:
		return verdictHealthy
	case errors.Is(err, ErrTimeout):
		if e.Timeout > 0 {
			return verdictSick
		}
		return verdictNeutral
	case errors.Is(err, ErrBadResponse), isTransportError(err):
		return verdictSick
	default:
		return verdictNeutral
	}
}

// circuitOpen is the error of a call a breaker refused.
func (c *Client) circuitOpen(b *breaker, tool string, err error) error {
	halfOpen := errors.Is(err, gobreaker.ErrTooManyRequests)
	state := BreakerOpen
	detail := "the circuit breaker is open"
	if halfOpen {
		state = BreakerHalfOpen
		detail = "the circuit breaker is half-open and its probes are in flight"
	}
	if tool != "" && b != nil && c.breakers.perTool {
		detail += " for tool " + tool
	}
	e := c.fail(ErrCircuitOpen, detail, nil)
	e.Breaker = state
	e.RetryAfter = b.retryAfter(halfOpen)
	return e
}

// BreakerState is the state of one circuit breaker.
type BreakerState struct {
	// Tool is the original tool name of a per-tool breaker; "" for the
	// upstream's own.
	Tool string `json:"tool,omitempty"`
	// State is closed, open, half-open or disabled.
	State string `json:"state"`
}

// Breakers returns the state of the upstream's breaker, then of its
// per-tool breakers by tool name. It takes each breaker's lock briefly;
// it is meant for health and admin endpoints, not the call path.
func (c *Client) Breakers() []BreakerState {
	bs := c.breakers
	if bs.whole == nil {
		return []BreakerState{{State: BreakerDisabled}}
	}
	out := []BreakerState{{State: bs.whole.state()}}
	var tools []BreakerState
	bs.tools.Range(func(k, v any) bool {
		tools = append(tools, BreakerState{Tool: k.(string), State: v.(*breaker).state()}) //nolint:errcheck // tools maps tool names to *breaker.
		return true
	})
	slices.SortFunc(tools, func(a, b BreakerState) int { return cmp.Compare(a.Tool, b.Tool) })
	return append(out, tools...)
}

// BreakerState returns the state of the upstream's own breaker as a metric
// label: closed, half_open or open; "" when the breaker is disabled.
func (c *Client) BreakerState() string {
	b := c.breakers.whole
	if b == nil {
		return ""
	}
	if s := b.state(); s != BreakerHalfOpen {
		return s
	}
	return "half_open"
}
