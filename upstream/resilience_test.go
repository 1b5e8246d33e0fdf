package upstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// replies answers the tools/call of one tool with the next of its
// handlers, then passes calls through once they run out; it counts the
// calls it sees.
type replies struct {
	next  []http.HandlerFunc
	i     atomic.Int64
	calls atomic.Int64
}

func (r *replies) serve(w http.ResponseWriter, req *http.Request) bool {
	r.calls.Add(1)
	i := int(r.i.Add(1)) - 1
	if i >= len(r.next) {
		return false
	}
	r.next[i](w, req)
	return true
}

// scripted serves the test servers' tools, except that calls of tool go
// through r first.
func scripted(t *testing.T, tool string, r *replies, opts ...clientOpt) (*upstream.Client, *fixture) {
	t.Helper()
	f := newFixture()
	inner := mcpgoLegacy(mcpgoServer(f))
	h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"tools/call"`)) && bytes.Contains(body, []byte(`"name":"`+tool+`"`)) && r.serve(w, req) {
				return
			}
		}
		inner.ServeHTTP(w, req)
	})
	ts := serve(t, h)
	c, _ := startClient(t, httpConfig("orders", ts.url("/mcp")), opts...)
	return c, f
}

func status(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { http.Error(w, http.StatusText(code), code) }
}

func times(n int, h http.HandlerFunc) []http.HandlerFunc {
	out := make([]http.HandlerFunc, n)
	for i := range out {
		out[i] = h
	}
	return out
}

func withBreaker(failures int) clientOpt {
	return withConfig(func(u *configs.Upstream) {
		u.Breaker = configs.Breaker{Failures: failures, Window: time.Hour, OpenFor: time.Hour, HalfOpenProbes: 1}
		u.Retry.Attempts = 1
	})
}

func breakerOf(c *upstream.Client) string { return c.Breakers()[0].State }

func TestBreakerTripsOnSickness(t *testing.T) {
	r := &replies{next: times(3, status(http.StatusInternalServerError))}
	c, _ := scripted(t, "echo", r, withBreaker(3))
	for range 3 {
		_, err := c.Call(t.Context(), call("echo", `{}`))
		require.ErrorIs(t, err, upstream.ErrUnavailable)
	}
	assert.Equal(t, upstream.BreakerOpen, breakerOf(c))

	// Open: refused without reaching the upstream, even for other tools.
	for _, tool := range []string{"echo", "schema"} {
		_, err := c.Call(t.Context(), call(tool, `{}`))
		require.ErrorIs(t, err, upstream.ErrCircuitOpen)
		var e *upstream.Error
		require.ErrorAs(t, err, &e)
		assert.Equal(t, upstream.BreakerOpen, e.Breaker)
		assert.Positive(t, e.RetryAfter)
		assert.LessOrEqual(t, e.RetryAfter, time.Hour)
	}
	assert.Equal(t, int64(3), r.calls.Load())
}

func TestBreakerIgnoresAnswersAndCallers(t *testing.T) {
	toolError := func(w http.ResponseWriter, req *http.Request) {
		var m struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.NewDecoder(req.Body).Decode(&m)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(m.ID) + `,"result":{"content":[{"type":"text","text":"no"}],"isError":true}}`))
	}
	next := append(times(5, toolError), times(5, status(http.StatusTooManyRequests))...)
	r := &replies{next: next}
	c, f := scripted(t, "echo", r, withBreaker(1))

	for i := range 10 {
		_, err := c.Call(t.Context(), call("echo", `{}`))
		if i < 5 {
			require.NoError(t, err, "an isError result is an answer")
		} else {
			require.ErrorIs(t, err, upstream.ErrUnavailable, "429")
		}
	}
	// JSON-RPC errors of the upstream.
	for range 3 {
		_, err := c.Call(t.Context(), call("no_such_tool", `{}`))
		var rpcErr *upstream.RPCError
		require.ErrorAs(t, err, &rpcErr)
	}
	// A caller that cancels, and one whose own deadline passes.
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, call("slow", `{"tag":"c"}`))
		errc <- err
	}()
	receive(t, f.started, "the slow tool to start")
	cancel()
	require.ErrorIs(t, receive(t, errc, "the cancelled call"), context.Canceled)
	dctx, dcancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer dcancel()
	_, err := c.Call(dctx, call("slow", `{"tag":"d"}`))
	require.ErrorIs(t, err, upstream.ErrTimeout)

	assert.Equal(t, upstream.BreakerClosed, breakerOf(c), "with failures: 1, any counted failure would have opened it")
	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.NoError(t, err)
}

func TestBreakerOwnTimeoutTrips(t *testing.T) {
	r := &replies{}
	c, f := scripted(t, "echo", r, withBreaker(1), withTimeout(100*time.Millisecond))
	_, err := c.Call(t.Context(), call("slow", `{"tag":"t"}`))
	require.ErrorIs(t, err, upstream.ErrTimeout)
	var e *upstream.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 100*time.Millisecond, e.Timeout)
	receive(t, f.cancelled, "the upstream to see the cancellation")
	assert.Equal(t, upstream.BreakerOpen, breakerOf(c))
}

func TestBreakerPerTool(t *testing.T) {
	r := &replies{next: times(2, status(http.StatusBadGateway))}
	c, _ := scripted(t, "echo", r, withConfig(func(u *configs.Upstream) {
		u.Breaker = configs.Breaker{Failures: 2, Window: time.Hour, OpenFor: time.Hour, PerTool: true}
		u.Retry.Attempts = 1
	}))
	echo := call("echo", `{}`)
	echo.Tool = "echo"
	for range 2 {
		_, err := c.Call(t.Context(), echo)
		require.ErrorIs(t, err, upstream.ErrUnavailable)
	}
	_, err := c.Call(t.Context(), echo)
	require.ErrorIs(t, err, upstream.ErrCircuitOpen)
	schema := call("schema", `{}`)
	schema.Tool = "schema"
	_, err = c.Call(t.Context(), schema)
	require.NoError(t, err, "another tool has its own breaker")
	assert.Equal(t, []upstream.BreakerState{{State: "closed"}, {Tool: "echo", State: "open"}, {Tool: "schema", State: "closed"}}, c.Breakers())
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		req       func() *upstream.Request
		cfg       func(*configs.Upstream)
		failures  []http.HandlerFunc
		wantCalls int64
		wantErr   bool
	}{
		{
			name:      "tools/call is not retried",
			req:       func() *upstream.Request { return call("echo", `{}`) },
			failures:  times(1, status(http.StatusServiceUnavailable)),
			wantCalls: 1, wantErr: true,
		},
		{
			name: "idempotent tool is retried",
			req: func() *upstream.Request {
				r := call("echo", `{}`)
				r.Idempotent, r.Tool = true, "echo"
				return r
			},
			failures:  times(1, status(http.StatusServiceUnavailable)),
			wantCalls: 2,
		},
		{
			name:      "tool marked in config is retried",
			req:       func() *upstream.Request { r := call("echo", `{}`); r.Tool = "echo"; return r },
			cfg:       func(u *configs.Upstream) { u.Retry.Tools = []string{"ech*"} },
			failures:  times(1, status(http.StatusBadGateway)),
			wantCalls: 2,
		},
		{
			name: "at most attempts tries",
			req: func() *upstream.Request {
				r := call("echo", `{}`)
				r.Idempotent = true
				return r
			},
			cfg:       func(u *configs.Upstream) { u.Retry.Attempts = 3 },
			failures:  times(5, status(http.StatusInternalServerError)),
			wantCalls: 3, wantErr: true,
		},
		{
			name: "429 is not retried",
			req: func() *upstream.Request {
				r := call("echo", `{}`)
				r.Idempotent = true
				return r
			},
			failures:  times(1, status(http.StatusTooManyRequests)),
			wantCalls: 1, wantErr: true,
		},
		{
			name: "backoff that does not fit the deadline is not taken",
			req: func() *upstream.Request {
				r := call("echo", `{}`)
				r.Idempotent = true
				return r
			},
			cfg:       func(u *configs.Upstream) { u.Retry.Backoff = time.Hour },
			failures:  times(1, status(http.StatusServiceUnavailable)),
			wantCalls: 1, wantErr: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &replies{next: tt.failures}
			c, _ := scripted(t, "echo", r, withConfig(func(u *configs.Upstream) {
				u.Breaker.Disabled = true
				u.Retry.Backoff = time.Millisecond
				if tt.cfg != nil {
					tt.cfg(u)
				}
			}))
			_, err := c.Call(t.Context(), tt.req())
			if tt.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantCalls, r.calls.Load())
		})
	}
}

// TestNoRetryAfterProgress: once a progress notification reached the
// caller, a failed call is not sent again.
func TestNoRetryAfterProgress(t *testing.T) {
	progressThenDrop := func(w http.ResponseWriter, req *http.Request) {
		var m struct {
			Params struct {
				Meta struct {
					ProgressToken json.RawMessage `json:"progressToken"`
				} `json:"_meta"`
			} `json:"params"`
		}
		_ = json.NewDecoder(req.Body).Decode(&m)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		if len(m.Params.Meta.ProgressToken) > 0 {
			_, _ = w.Write([]byte(`data: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":` +
				string(m.Params.Meta.ProgressToken) + `,"progress":1}}` + "\n\n"))
		}
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler) // the connection breaks mid-stream
	}
	for _, withProgress := range []bool{false, true} {
		r := &replies{next: times(2, progressThenDrop)}
		c, _ := scripted(t, "echo", r, withConfig(func(u *configs.Upstream) {
			u.Breaker.Disabled = true
			u.Retry.Attempts = 2
			u.Retry.Backoff = time.Millisecond
		}))
		req := call("echo", `{}`)
		req.Idempotent = true
		var seen atomic.Int64
		if withProgress {
			req.ProgressToken = json.RawMessage(`"p"`)
			req.OnProgress = func(json.RawMessage) { seen.Add(1) }
		}
		_, err := c.Call(t.Context(), req)
		require.Error(t, err)
		if withProgress {
			assert.Equal(t, int64(1), seen.Load())
			assert.Equal(t, int64(1), r.calls.Load(), "progress was relayed: no second try")
		} else {
			assert.Equal(t, int64(2), r.calls.Load(), "nothing relayed: retried")
		}
	}
}

func TestBulkheadRefuses(t *testing.T) {
	r := &replies{}
	c, f := scripted(t, "echo", r, withConfig(func(u *configs.Upstream) {
		u.Bulkhead = configs.Bulkhead{MaxConcurrent: 1, MaxQueued: 1, QueueTimeout: time.Hour}
		u.Breaker.Failures = 1
	}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	errs := make(chan error, 2)
	go func() {
		_, err := c.Call(ctx, call("slow", `{"tag":"a"}`))
		errs <- err
	}()
	receive(t, f.started, "the first call to hold the slot")
	go func() {
		_, err := c.Call(ctx, call("echo", `{}`))
		errs <- err
	}()
	require.Eventually(t, func() bool { return c.Load().Queued == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, upstream.Load{InFlight: 1, Queued: 1, MaxConcurrent: 1}, bulkLoad(c))

	_, err := c.Call(t.Context(), call("echo", `{}`))
	require.ErrorIs(t, err, upstream.ErrBusy, "the queue is full")
	var e *upstream.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, time.Hour, e.RetryAfter)
	assert.Equal(t, upstream.BreakerClosed, breakerOf(c), "a busy refusal says nothing about the upstream's health")

	cancel()
	for range 2 {
		require.ErrorIs(t, receive(t, errs, "the held and queued calls"), context.Canceled)
	}
	require.Eventually(t, func() bool { return bulkLoad(c) == upstream.Load{MaxConcurrent: 1} }, 10*time.Second, time.Millisecond)
	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.NoError(t, err)
}

// bulkLoad is c's Load without the pooled session counts.
func bulkLoad(c *upstream.Client) upstream.Load {
	l := c.Load()
	l.PoolStats = upstream.PoolStats{}
	return l
}
