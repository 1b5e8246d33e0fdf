package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
)

// TestClassify pins what the circuit breaker counts: only what shows the
// upstream is sick trips it.
func TestClassify(t *testing.T) {
	c := &Client{name: "orders"}
	status := func(code int) error {
		e := c.fail(ErrUnavailable, "", &statusError{code: code})
		e.Status = code
		return e
	}
	ownTimeout := c.fail(ErrTimeout, "no response within 1s", context.DeadlineExceeded)
	ownTimeout.Timeout = time.Second
	tests := []struct {
		name string
		err  error
		want verdict
	}{
		{"result", nil, verdictHealthy},
		{"json-rpc application error", &RPCError{Code: -32602, Message: "bad"}, verdictHealthy},
		{"json-rpc internal error", &RPCError{Code: -32603, Message: "oops"}, verdictHealthy},
		{"json-rpc error with http 400", &RPCError{Code: -32602, Message: "bad", Status: http.StatusBadRequest}, verdictHealthy},
		{"json-rpc error with http 503", &RPCError{Code: -32603, Message: "down", Status: http.StatusServiceUnavailable}, verdictSick},
		{"http 400", status(http.StatusBadRequest), verdictHealthy},
		{"http 401", status(http.StatusUnauthorized), verdictHealthy},
		{"http 429", status(http.StatusTooManyRequests), verdictNeutral},
		{"http 500", status(http.StatusInternalServerError), verdictSick},
		{"http 503", status(http.StatusServiceUnavailable), verdictSick},
		{"transport error", c.transportFail("", errors.New("connection refused")), verdictSick},
		{"wrapped transport error", c.wrap("tools/list", c.transportFail("", errors.New("reset"))), verdictSick},
		{"malformed response", c.fail(ErrBadResponse, "response is not JSON", nil), verdictSick},
		{"own timeout", ownTimeout, verdictSick},
		{"caller deadline", c.fail(ErrTimeout, "caller deadline exceeded", context.DeadlineExceeded), verdictNeutral},
		{"caller cancelled", &Error{Upstream: "orders", Detail: "call cancelled", Err: context.Canceled}, verdictNeutral},
		{"oversized response", c.fail(ErrResponseTooLarge, "", nil), verdictNeutral},
		{"upstream known down", c.fail(ErrUnavailable, "upstream is down", errors.New("dial")), verdictNeutral},
		{"session expired", c.fail(ErrUnavailable, "", errSessionExpired), verdictNeutral},
		{"bad request", c.fail(ErrBadRequest, "tools/call", errors.New("params")), verdictNeutral},
		{"busy", c.fail(ErrBusy, "", errQueueFull), verdictNeutral},
		{"circuit open", c.fail(ErrCircuitOpen, "", nil), verdictNeutral},
		{"closed", c.fail(ErrClosed, "", nil), verdictNeutral},
		{"foreign error", errors.New("something"), verdictNeutral},
		{"wrapped rpc error", fmt.Errorf("x: %w", &RPCError{Code: 1}), verdictHealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, classify(tt.err))
		})
	}
}

func TestBulkheadQueue(t *testing.T) {
	b := newBulkhead(2, 1, time.Hour)
	ctx := t.Context()
	assert.NoError(t, b.acquire(ctx))
	assert.NoError(t, b.acquire(ctx))
	assert.Equal(t, 2, b.inFlight())

	// A third call queues; a fourth finds the queue full.
	queued := make(chan error, 1)
	go func() { queued <- b.acquire(ctx) }()
	require.Eventually(t, func() bool { return b.waiting() == 1 }, 10*time.Second, time.Millisecond, "the third call never queued")
	require.ErrorIs(t, b.acquire(ctx), errQueueFull)

	// A released slot goes to the queued call.
	b.release()
	require.NoError(t, <-queued)
	assert.Equal(t, 2, b.inFlight())
	assert.Equal(t, 0, b.waiting())

	// A caller that gives up while queued gets its context's error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	require.ErrorIs(t, b.acquire(cctx), context.Canceled)
	assert.Equal(t, 0, b.waiting())
}

func TestBulkheadQueueTimeout(t *testing.T) {
	b := newBulkhead(1, 4, time.Millisecond)
	require.NoError(t, b.acquire(t.Context()))
	require.ErrorIs(t, b.acquire(t.Context()), errQueueTimeout)
	assert.Equal(t, 0, b.waiting())
	b.release()
	assert.NoError(t, b.acquire(t.Context()), "a free slot is taken without waiting")
}

func TestRetryBackoff(t *testing.T) {
	lo, hi := retryBackoff(100*time.Millisecond), retryBackoff(100*time.Millisecond)
	lo.Rand = func(int64) int64 { return 0 }
	hi.Rand = func(n int64) int64 { return n - 1 }
	for n := 1; n <= 5; n++ {
		full := 100 * time.Millisecond << (n - 1)
		assert.Equal(t, full/2, lo.Next(), "before try %d, at least half of base·2^(n-1)", n+1)
		assert.Equal(t, full, hi.Next(), "before try %d, at most base·2^(n-1)", n+1)
	}
}

// BenchmarkBreaker measures the breaker's admission of one call and the
// report of its outcome on a closed breaker: what every tools/call pays.
func BenchmarkBreaker(b *testing.B) {
	bs := newBreakers("bench", configs.Breaker{Failures: 5, Window: 30 * time.Second, OpenFor: 10 * time.Second, HalfOpenProbes: 1}, nil)
	req := &Request{Method: "tools/call", Tool: "echo"}
	b.ReportAllocs()
	for b.Loop() {
		done, err := bs.pick("bench", req).cb.Allow()
		if err != nil {
			b.Fatal(err)
		}
		done(nil)
	}
}

// TestBreakersScopeAndTransitions: tools get their own breakers by default
// and scope upstream shares one; an upstream that cannot be reached fails
// every breaker; every state change is reported with its tool.
func TestBreakersScopeAndTransitions(t *testing.T) {
	cfg := configs.Breaker{Failures: 2, Window: time.Hour, OpenFor: time.Hour, HalfOpenProbes: 1}
	var changes []string
	bs := newBreakers("orders", cfg, func(tool, from, to string) { changes = append(changes, tool+":"+from+">"+to) })
	get := &Request{Method: "tools/call", Tool: "get_order"}
	export := &Request{Method: "tools/call", Tool: "export_orders"}
	require.NotSame(t, bs.pick("orders", get), bs.pick("orders", export), "scope tool is the default")

	c := &Client{name: "orders"}
	sick := c.fail(ErrTimeout, "", nil)
	sick.Timeout = time.Second
	for range 2 {
		done, err := bs.pick("orders", export).cb.Allow()
		require.NoError(t, err)
		done(sick)
	}
	assert.Equal(t, BreakerOpen, bs.pick("orders", export).state())
	assert.Equal(t, BreakerClosed, bs.pick("orders", get).state(), "a slow tool leaves the others closed")
	assert.Equal(t, []string{"export_orders:closed>open"}, changes)

	refused := c.transportFail("", errors.New("connection refused"))
	bs.failAll(refused)
	bs.failAll(refused)
	assert.Equal(t, BreakerOpen, bs.whole.state())
	assert.Equal(t, BreakerOpen, bs.pick("orders", get).state())
	assert.ElementsMatch(t, []string{"export_orders:closed>open", ":closed>open", "get_order:closed>open"}, changes)

	cfg.Scope = configs.BreakerScopeUpstream
	one := newBreakers("orders", cfg, nil)
	assert.Same(t, one.pick("orders", get), one.pick("orders", export))
}
