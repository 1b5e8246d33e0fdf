package upstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// sessionWatch wraps an upstream handler and records, per Mcp-Session-Id,
// the tools/call requests in flight, which session each call (named by its
// tag or text argument) went on, when each call's request was answered,
// and the DELETEs that ended sessions.
type sessionWatch struct {
	mu          sync.Mutex
	inFlight    map[string]int
	maxInFlight map[string]int
	sessionOf   map[string]string        // call label → session id
	answered    map[string]chan struct{} // call label → closed when its handler returned
	deleted     chan string              // session ids ended with DELETE
}

func newSessionWatch() *sessionWatch {
	return &sessionWatch{
		inFlight: map[string]int{}, maxInFlight: map[string]int{}, sessionOf: map[string]string{},
		answered: map[string]chan struct{}{}, deleted: make(chan string, 64),
	}
}

func (w *sessionWatch) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		sid := r.Header.Get("Mcp-Session-Id")
		if r.Method == http.MethodDelete {
			next.ServeHTTP(rw, r)
			w.deleted <- sid
			return
		}
		if r.Method != http.MethodPost {
			next.ServeHTTP(rw, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var env struct {
			Method string `json:"method"`
			Params struct {
				Arguments map[string]any `json:"arguments"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &env)
		if env.Method != "tools/call" {
			next.ServeHTTP(rw, r)
			return
		}
		label, _ := env.Params.Arguments["tag"].(string)
		if text, ok := env.Params.Arguments["text"].(string); ok {
			label = text
		}
		w.mu.Lock()
		w.sessionOf[label] = sid
		w.inFlight[sid]++
		w.maxInFlight[sid] = max(w.maxInFlight[sid], w.inFlight[sid])
		answered := w.answeredLocked(label)
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			w.inFlight[sid]--
			w.mu.Unlock()
			close(answered)
		}()
		next.ServeHTTP(rw, r)
	})
}

func (w *sessionWatch) session(label string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.sessionOf[label]
}

// answeredLocked returns the channel closed when label's request has been
// answered; w.mu is held.
func (w *sessionWatch) answeredLocked(label string) chan struct{} {
	ch, ok := w.answered[label]
	if !ok {
		ch = make(chan struct{})
		w.answered[label] = ch
	}
	return ch
}

// waitAnswered waits until the upstream has answered label's request: a
// cancelled call's handler sees the cancellation before its request ends.
func (w *sessionWatch) waitAnswered(t *testing.T, label string) {
	t.Helper()
	w.mu.Lock()
	ch := w.answeredLocked(label)
	w.mu.Unlock()
	select {
	case <-ch:
	case <-t.Context().Done():
		t.Fatalf("the upstream never answered %s", label)
	}
}

func (w *sessionWatch) most() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.maxInFlight)
}

// pooledClient starts a client of an mcp-go server that keeps sessions,
// behind a sessionWatch, with the pool settings given.
func pooledClient(t *testing.T, sessions configs.UpstreamSessions) (*upstream.Client, *sessionWatch, *fixture) {
	t.Helper()
	f := newFixture()
	w := newSessionWatch()
	ts := serve(t, w.wrap(mcpgoModern(mcpgoServer(f))))
	cfg := httpConfig("up", ts.url("/mcp"))
	cfg.HTTP.Sessions = sessions
	c, _ := startClient(t, cfg)
	cat, _ := c.Catalog()
	require.False(t, cat.Stateless, "auto chose the 2025 era: the upstream keeps sessions")
	return c, w, f
}

func as(sub string) *upstream.Identity {
	return &upstream.Identity{Issuer: "https://idp.example", Subject: sub}
}

// callAs makes a call of tool for sub, labelled label.
func callAs(ctx context.Context, c *upstream.Client, sub, tool, label string) error {
	arg := "text"
	if tool == "slow" {
		arg = "tag"
	}
	req := call(tool, `{"`+arg+`":"`+label+`"}`)
	req.Identity = as(sub)
	_, err := c.Call(ctx, req)
	return err
}

// slowCall starts a slow call that runs until its cancel is called, and
// waits until it reached the upstream; done receives its error.
func slowCall(t *testing.T, c *upstream.Client, f *fixture, sub, tag string) (cancel func(), done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() { errs <- callAs(ctx, c, sub, "slow", tag) }()
	require.Equal(t, tag, receive(t, f.started, "the slow call "+tag+" to reach the upstream"))
	return cancel, errs
}

// TestPooledSessions: calls to an upstream that keeps sessions go on
// sessions of their caller's own, one call at a time per session, the
// most recently used first, and sessions idle past idle_timeout are ended
// with DELETE.
func TestPooledSessions(t *testing.T) {
	t.Parallel()

	t.Run("each principal its own sessions, one call at a time, warmest first", func(t *testing.T) {
		t.Parallel()
		c, w, f := pooledClient(t, configs.UpstreamSessions{})
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a1"))
		require.NoError(t, callAs(t.Context(), c, "bob", "echo", "b1"))
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a2"))
		assert.NotEmpty(t, w.session("a1"))
		assert.NotEqual(t, w.session("a1"), w.session("b1"), "two principals, two upstream sessions")
		assert.Equal(t, w.session("a1"), w.session("a2"), "a principal's idle session is reused")

		// Two of alice's calls in flight together go on two sessions.
		cancelX, doneX := slowCall(t, c, f, "alice", "x")
		cancelY, doneY := slowCall(t, c, f, "alice", "y")
		assert.NotEqual(t, w.session("x"), w.session("y"))
		assert.Contains(t, []string{w.session("x"), w.session("y")}, w.session("a1"), "the idle session carried one of them")
		// x is released first, y last: y's session is the warmest.
		cancelX()
		require.ErrorIs(t, receive(t, doneX, "call x to end"), context.Canceled)
		receive(t, f.cancelled, "the upstream to hear of a cancellation")
		cancelY()
		require.ErrorIs(t, receive(t, doneY, "call y to end"), context.Canceled)
		receive(t, f.cancelled, "the upstream to hear of a cancellation")
		// The gateway releases a cancelled call's session at once; the
		// upstream may still be ending the request (pool.go callPooled).
		// Counting calls in flight per session needs it ended first.
		w.waitAnswered(t, "x")
		w.waitAnswered(t, "y")
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a3"))
		assert.Equal(t, w.session("y"), w.session("a3"), "the most recently released session is reused first")

		for sid, n := range w.most() {
			assert.Equal(t, 1, n, "calls in flight together on session %s", sid)
		}
		l := c.Load()
		assert.Equal(t, upstream.PoolStats{Sessions: 3, Idle: 3}, l.PoolStats)
	})

	t.Run("idle sessions are ended with DELETE", func(t *testing.T) {
		t.Parallel()
		c, w, _ := pooledClient(t, configs.UpstreamSessions{IdleTimeout: 20 * time.Millisecond})
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a1"))
		sid := w.session("a1")
		require.NotEmpty(t, sid)
		assert.Equal(t, sid, receive(t, w.deleted, "the idle session to be ended"))
		// The sweep forgets the session before it sends the DELETE.
		require.Equal(t, upstream.PoolStats{}, c.Load().PoolStats)
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a2"))
		assert.NotEqual(t, sid, w.session("a2"), "a new session after the idle one ended")
	})

	t.Run("close ends every pooled session", func(t *testing.T) {
		t.Parallel()
		c, w, _ := pooledClient(t, configs.UpstreamSessions{})
		require.NoError(t, callAs(t.Context(), c, "alice", "echo", "a1"))
		require.NoError(t, callAs(t.Context(), c, "bob", "echo", "b1"))
		require.NoError(t, c.Close())
		ended := map[string]bool{}
		for len(ended) < 4 { // alice's, bob's, and the gateway's own two
			ended[receive(t, w.deleted, "the sessions to be ended")] = true
		}
		assert.True(t, ended[w.session("a1")])
		assert.True(t, ended[w.session("b1")])
	})

	t.Run("more calls than sessions: each waits its turn", func(t *testing.T) {
		t.Parallel()
		c, w, _ := pooledClient(t, configs.UpstreamSessions{MaxPerPrincipal: 2, Max: 3})
		const n = 24
		errs := make(chan error, n)
		for i := range n {
			sub := []string{"alice", "bob"}[i%2]
			go func() { errs <- callAs(t.Context(), c, sub, "echo", fmt.Sprintf("%s-%d", sub, i)) }()
		}
		for range n {
			require.NoError(t, receive(t, errs, "the calls"))
		}
		for sid, m := range w.most() {
			assert.Equal(t, 1, m, "calls in flight together on session %s", sid)
		}
		assert.LessOrEqual(t, c.Load().Sessions, 3)
	})

	t.Run("bounds: a call waits until its deadline, then is busy", func(t *testing.T) {
		t.Parallel()
		c, w, f := pooledClient(t, configs.UpstreamSessions{MaxPerPrincipal: 1, Max: 2})
		cancelA, doneA := slowCall(t, c, f, "alice", "held")

		// alice's one session is busy: her next call waits, and is busy
		// at its deadline.
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		err := callAs(ctx, c, "alice", "echo", "a-busy")
		require.ErrorIs(t, err, upstream.ErrBusy)
		assert.Empty(t, w.session("a-busy"), "the refused call never reached the upstream")

		// bob has room of his own; then the upstream's bound is reached.
		cancelB, doneB := slowCall(t, c, f, "bob", "b-held")
		ctx, cancel = context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		require.ErrorIs(t, callAs(ctx, c, "carol", "echo", "c-busy"), upstream.ErrBusy)

		// A waiting call gets the session released before its deadline.
		waiting := make(chan error, 1)
		go func() { waiting <- callAs(t.Context(), c, "alice", "echo", "a-waited") }()
		cancelA()
		require.ErrorIs(t, receive(t, doneA, "the held call to end"), context.Canceled)
		require.NoError(t, receive(t, waiting, "the waiting call"))
		assert.Equal(t, w.session("held"), w.session("a-waited"))

		// At the upstream's bound, an idle session of another principal
		// makes room: carol's call ends alice's idle one.
		require.NoError(t, callAs(t.Context(), c, "carol", "echo", "c1"))
		assert.Equal(t, w.session("held"), receive(t, w.deleted, "alice's idle session to make room"))
		cancelB()
		require.ErrorIs(t, receive(t, doneB, "bob's call to end"), context.Canceled)
	})
}

// TestPooledSessionExpiry: a pooled session the upstream forgot (HTTP 404)
// is dropped; an idempotent call is sent again on a new session of its
// caller, and a call that is not idempotent fails without running.
func TestPooledSessionExpiry(t *testing.T) {
	f := newFixture()
	ts := serve(t, mcpgoLegacy(mcpgoServer(f)))
	c, _ := startClient(t, httpConfig("up", ts.url("/mcp")))
	require.NoError(t, callAs(t.Context(), c, "alice", "echo", "warm"))
	require.Equal(t, upstream.PoolStats{Sessions: 1, Idle: 1}, c.Load().PoolStats)

	// A new server behind the same address forgets every session.
	ts.setHandler(mcpgoLegacy(mcpgoServer(f)))
	read := &upstream.Request{Method: "resources/read", Params: json.RawMessage(`{"uri":"res://one"}`), Idempotent: true, Identity: as("alice")}
	res, err := c.Call(t.Context(), read)
	require.NoError(t, err, "an idempotent request is sent again on a new session")
	assert.Contains(t, string(res), `"one"`)
	assert.Equal(t, upstream.PoolStats{Sessions: 1, Idle: 1}, c.Load().PoolStats, "the forgotten session was dropped")

	ts.setHandler(mcpgoLegacy(mcpgoServer(f)))
	before := f.calls.Load()
	err = callAs(t.Context(), c, "alice", "echo", "lost")
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.Contains(t, err.Error(), "session expired")
	assert.Equal(t, before, f.calls.Load(), "the tool did not run")
	require.NoError(t, callAs(t.Context(), c, "alice", "echo", "again"), "a new session for the next call")
}
