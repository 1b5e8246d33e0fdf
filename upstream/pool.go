package upstream

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// The call pool: the 2025-era sessions that carry forwarded calls to an
// HTTP upstream that keeps sessions.
//
// A 2025-era session is the cheapest way to call such an upstream (mcp-go
// v1.2.1 spends 2.4× the CPU on a stateless 2026-07-28 request, bridging
// it to its session machinery; PITFALLS.md), but one session shared by
// every caller leaks: the server may send a session's notifications on any
// of its open streams (2025-11-25 basic/transports: they "SHOULD relate to
// the originating client request", and mcp-go hands them to whichever
// in-flight request reads first), so one principal's log messages reached
// another's (test/e2e TestLogsStayWithTheirPrincipal); and a server that
// binds a session to the user of the token that opened it (go-sdk) refuses
// the other principals' requests on it. So each principal (issuer and
// subject; anonymous callers are one principal) gets sessions of its own,
// opened with its own credential, and each session carries one request at
// a time: whatever the server sends on the session, only that request's
// stream is open to receive it.
//
// Sessions are reused warmest first (LIFO), so a principal's burst reuses
// the same few sessions and the rest go idle and are ended with DELETE by
// a periodic sweep (no timer per call). Getting an idle session is a mutex
// and a slice pop on the caller's goroutine; only a call that must wait
// (every session of its principal, or of the upstream, busy) allocates.
//
// The Client's own session stays for the gateway's own traffic: discovery,
// probes, the notification stream, subscriptions.

// principalKey names the principal a pooled session belongs to. A struct
// of the identity's strings, not their concatenation: looking it up
// allocates nothing.
type principalKey struct{ issuer, subject string }

func keyOf(id *Identity) principalKey {
	if id == nil {
		return principalKey{}
	}
	return principalKey{issuer: id.Issuer, subject: id.Subject}
}

// pooledSession is one session of the pool. Only the call holding it
// touches logLevel; lastUsed is written under the pool's lock.
type pooledSession struct {
	conn *httpConn
	key  principalKey
	// lastUsed is when it was last released (unix nanoseconds).
	lastUsed int64
	// logLevel is the level last sent with logging/setLevel, "" before.
	logLevel string
}

// sessionPool holds one upstream's call sessions.
type sessionPool struct {
	c           *Client
	d           *httpDialer
	idleTimeout time.Duration
	maxPer, max int

	mu sync.Mutex
	// idle holds each principal's idle sessions, the least recently used
	// first: pop from the end, sweep from the front.
	idle map[principalKey][]*pooledSession
	// open counts each principal's sessions, idle or busy; total all.
	open  map[principalKey]int
	total int
	// waiters are the calls waiting for a session, per principal, in
	// arrival order; each is woken alone (a buffered send), so a release
	// wakes one call, not every waiting one.
	waiters map[principalKey][]chan struct{}
	closed  bool

	// Counters for Load, read without the lock.
	openN, idleN atomic.Int64
}

func newSessionPool(c *Client, d *httpDialer, cfg configs.UpstreamSessions) *sessionPool {
	return &sessionPool{
		c: c, d: d,
		idleTimeout: cmp.Or(cfg.IdleTimeout, configs.DefaultSessionIdleTimeout),
		maxPer:      cmp.Or(cfg.MaxPerPrincipal, configs.DefaultSessionsPerPrincipal),
		max:         cmp.Or(cfg.Max, configs.DefaultSessionsMax),
		idle:        map[principalKey][]*pooledSession{},
		open:        map[principalKey]int{},
		waiters:     map[principalKey][]chan struct{}{},
	}
}

// errNoSession is why a call that waited for a pooled session until its
// deadline is refused.
var errNoSession = busyReasonError("no upstream session freed up before the call's deadline")

// get returns a session for the caller id, speaking version: an idle one of
// the caller's, else a new one while the bounds allow, else the first one
// released before ctx ends. At the upstream's bound an idle session of
// another principal makes room.
func (p *sessionPool) get(ctx context.Context, version string, id *Identity) (*pooledSession, error) {
	key := keyOf(id)
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, p.c.fail(ErrClosed, "", nil)
		}
		if st := p.idle[key]; len(st) > 0 {
			ps := st[len(st)-1]
			st[len(st)-1] = nil
			p.idle[key] = st[:len(st)-1]
			p.idleN.Add(-1)
			p.mu.Unlock()
			if id != nil {
				// The newest credential of the principal ends the session
				// later (DELETE), when an older token may have expired.
				ps.conn.owner.Store(id)
			}
			return ps, nil
		}
		var evicted *pooledSession
		if p.open[key] < p.maxPer && p.total >= p.max {
			evicted = p.evictLocked()
		}
		if p.open[key] < p.maxPer && p.total < p.max {
			p.open[key]++
			p.total++
			p.openN.Add(1)
			p.mu.Unlock()
			if evicted != nil {
				p.end(evicted.conn)
			}
			return p.dial(ctx, key, version, id)
		}
		wake := make(chan struct{}, 1)
		p.waiters[key] = append(p.waiters[key], wake)
		p.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			p.leave(key, wake)
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				e := p.c.fail(ErrBusy, "", errNoSession)
				e.RetryAfter = time.Second
				return nil, e
			}
			return nil, &Error{Upstream: p.c.name, Detail: "call cancelled while waiting for an upstream session", Err: ctx.Err()}
		}
	}
}

// dial opens a session for key, whose place get has counted.
func (p *sessionPool) dial(ctx context.Context, key principalKey, version string, id *Identity) (*pooledSession, error) {
	conn, err := p.d.openPooled(ctx, version, id)
	if err != nil {
		p.forget(key)
		return nil, err
	}
	return &pooledSession{conn: conn, key: key}, nil
}

// evictLocked removes the least recently used idle session of any
// principal and returns it, nil when none is idle. The caller holds mu and
// ends the session after releasing it.
func (p *sessionPool) evictLocked() *pooledSession {
	var oldest principalKey
	var at int64
	found := false
	for k, st := range p.idle {
		if len(st) > 0 && (!found || st[0].lastUsed < at) {
			oldest, at, found = k, st[0].lastUsed, true
		}
	}
	if !found {
		return nil
	}
	return p.takeIdleLocked(nil, oldest, 1)[0]
}

// takeIdleLocked removes the n least recently used idle sessions of key
// from the pool and its counts, appends them to dst and returns it; mu is
// held. The caller ends them after releasing mu.
func (p *sessionPool) takeIdleLocked(dst []*pooledSession, key principalKey, n int) []*pooledSession {
	st := p.idle[key]
	dst = append(dst, st[:n]...)
	clear(st[:n])
	p.idle[key] = st[n:]
	p.idleN.Add(-int64(n))
	for range n {
		p.forgetLocked(key)
	}
	if len(p.idle[key]) == 0 {
		delete(p.idle, key)
	}
	return dst
}

// release returns a session after a call.
func (p *sessionPool) release(ps *pooledSession) {
	p.mu.Lock()
	if p.closed {
		p.forgetLocked(ps.key)
		p.mu.Unlock()
		ps.conn.close(true)
		return
	}
	ps.lastUsed = time.Now().UnixNano()
	p.idle[ps.key] = append(p.idle[ps.key], ps)
	p.idleN.Add(1)
	p.wakeLocked(ps.key)
	p.mu.Unlock()
}

// discard drops a session the upstream no longer knows (HTTP 404), with
// the principal's idle ones: they are older, and an upstream that forgot
// one (a restart, its idle timeout) has most likely forgotten them too.
// They are ended with DELETE all the same, in case it has not.
func (p *sessionPool) discard(ps *pooledSession) {
	p.mu.Lock()
	p.forgetLocked(ps.key)
	stale := p.takeIdleLocked(nil, ps.key, len(p.idle[ps.key]))
	p.mu.Unlock()
	ps.conn.close(false)
	for _, s := range stale {
		p.end(s.conn)
	}
}

// forgetIdle drops every idle session without DELETE: the client's own
// session was found expired or the upstream unreachable, so the upstream
// has most likely restarted and forgotten them all, and the calls that
// would each have found theirs expired (failing when not idempotent) open
// new ones instead. Sessions busy with a call are dropped when their 404
// comes.
func (p *sessionPool) forgetIdle() {
	var stale []*pooledSession
	p.mu.Lock()
	for k, st := range p.idle {
		stale = p.takeIdleLocked(stale, k, len(st))
	}
	p.mu.Unlock()
	for _, ps := range stale {
		ps.conn.close(false)
	}
}

// forget removes a session of key from the counts.
func (p *sessionPool) forget(key principalKey) {
	p.mu.Lock()
	p.forgetLocked(key)
	p.mu.Unlock()
}

func (p *sessionPool) forgetLocked(key principalKey) {
	if n := p.open[key] - 1; n > 0 {
		p.open[key] = n
	} else {
		delete(p.open, key)
		if len(p.idle[key]) == 0 {
			delete(p.idle, key)
		}
	}
	p.total--
	p.openN.Add(-1)
	p.wakeLocked(key)
}

// wakeLocked wakes one waiting call to look again: the first of key's,
// whose principal a session was released or closed for, or else the first
// of another principal, for whom the upstream's bound may now leave room
// (a closed session) or an idle session to end (a released one). A woken
// call that still finds nothing waits again.
func (p *sessionPool) wakeLocked(key principalKey) {
	ws, k := p.waiters[key], key
	if len(ws) == 0 {
		for k, ws = range p.waiters {
			break
		}
	}
	if len(ws) == 0 {
		return
	}
	ws[0] <- struct{}{}
	ws[0] = nil
	if len(ws) == 1 {
		delete(p.waiters, k)
	} else {
		p.waiters[k] = ws[1:]
	}
}

// leave removes a call that gave up waiting. A wake it was sent as it
// gave up goes to the next waiting call instead.
func (p *sessionPool) leave(key principalKey, wake chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiters[key]
	if i := slices.Index(ws, wake); i >= 0 {
		ws = slices.Delete(ws, i, i+1)
		if len(ws) == 0 {
			delete(p.waiters, key)
		} else {
			p.waiters[key] = ws
		}
		return
	}
	select {
	case <-wake:
		p.wakeLocked(key)
	default:
	}
}

// end closes a session with DELETE off the caller's goroutine.
func (p *sessionPool) end(conn *httpConn) {
	if !p.c.goSafe("end-session", func() { conn.close(true) }) {
		conn.close(true)
	}
}

// sweepEvery is how often idle sessions are looked for: a fraction of the
// idle timeout, so a session outlives it by at most that fraction.
func (p *sessionPool) sweepEvery() time.Duration {
	return min(max(p.idleTimeout/4, 10*time.Millisecond), 30*time.Second)
}

// sweepLoop ends idle sessions until the client closes.
func (p *sessionPool) sweepLoop() {
	t := time.NewTicker(p.sweepEvery())
	defer t.Stop()
	for {
		select {
		case <-p.c.life.Done():
			return
		case now := <-t.C:
			p.sweep(now)
		}
	}
}

// sweep ends the sessions idle since before now minus the idle timeout.
func (p *sessionPool) sweep(now time.Time) {
	cutoff := now.Add(-p.idleTimeout).UnixNano()
	var ended []*pooledSession
	p.mu.Lock()
	for k, st := range p.idle {
		n := 0
		for n < len(st) && st[n].lastUsed <= cutoff {
			n++
		}
		if n > 0 {
			ended = p.takeIdleLocked(ended, k, n)
		}
	}
	p.mu.Unlock()
	for _, ps := range ended {
		ps.conn.close(true)
	}
}

// close ends every idle session with DELETE, in parallel; sessions busy
// with a call are ended when it releases them.
func (p *sessionPool) close() {
	p.mu.Lock()
	p.closed = true
	for k, ws := range p.waiters {
		for _, w := range ws {
			w <- struct{}{} // to find the pool closed
		}
		delete(p.waiters, k)
	}
	var ended []*pooledSession
	for k, st := range p.idle {
		ended = p.takeIdleLocked(ended, k, len(st))
	}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, ps := range ended {
		wg.Go(func() { ps.conn.close(true) })
	}
	wg.Wait()
}

// PoolStats counts an upstream's pooled call sessions.
type PoolStats struct {
	// Sessions is the number open, Idle those not carrying a call.
	Sessions int `json:"pooled_sessions,omitempty"`
	Idle     int `json:"pooled_idle,omitempty"`
}

// stats reads the counters without the lock.
func (p *sessionPool) stats() PoolStats {
	if p == nil {
		return PoolStats{}
	}
	return PoolStats{Sessions: int(max(p.openN.Load(), 0)), Idle: int(max(p.idleN.Load(), 0))}
}

// openPooled opens a session of the call pool for the caller owner:
// initialize and notifications/initialized, both with the caller's
// credential (a server that binds the session to the token's user then
// accepts the caller's later requests on it).
func (d *httpDialer) openPooled(ctx context.Context, version string, owner *Identity) (*httpConn, error) {
	c := d.c
	hc := d.newConn(false, "", "")
	var sid string
	res, err := hc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodInitialize, c.initializeParams(version), nil,
		callOpts{sessionID: &sid, call: true, identity: owner})
	if err != nil {
		return nil, c.wrap("opening an upstream session for the caller: "+mcpwire.MethodInitialize, err)
	}
	negotiated, _, err := parseInitializeResult(res)
	if err != nil {
		return nil, c.fail(ErrBadResponse, mcpwire.MethodInitialize+" result", err)
	}
	conn := d.newConn(false, negotiated, sid)
	conn.pooled = true
	conn.owner.Store(owner)
	if err := conn.notify(ctx, mcpwire.NotifyInitialized); err != nil {
		conn.close(true)
		return nil, c.wrap("opening an upstream session for the caller: "+mcpwire.NotifyInitialized, err)
	}
	return conn, nil
}

// callPooled sends req on a pooled session of its caller, and once more
// on a new one when that session expired and req is idempotent.
func (c *Client) callPooled(ctx context.Context, s *session, req *Request) (json.RawMessage, error) {
	ps, err := c.pool.get(ctx, s.version, req.Identity)
	if err != nil {
		return nil, c.getFailed(ctx, err)
	}
	res, err := c.callOnPooled(ctx, s, ps, req)
	if err == nil || !errors.Is(err, errSessionExpired) {
		// A call its caller abandoned is released too: the upstream was
		// sent notifications/cancelled on this session, and what it may
		// still send for that request can only reach a later call of the
		// same principal, which the request id then tells apart.
		c.pool.release(ps)
		return res, err
	}
	c.pool.discard(ps)
	if !req.Idempotent {
		return nil, c.fail(ErrUnavailable, "session expired; the request was not retried", errSessionExpired)
	}
	if ps, err = c.pool.get(ctx, s.version, req.Identity); err != nil {
		return nil, c.getFailed(ctx, err)
	}
	res, err = c.callOnPooled(ctx, s, ps, req)
	if err != nil && errors.Is(err, errSessionExpired) {
		c.pool.discard(ps)
		return nil, err
	}
	c.pool.release(ps)
	return res, err
}

// getFailed is the error of a call that got no pooled session: the pool's
// refusal as it is, a failed handshake as the call's context says.
func (c *Client) getFailed(ctx context.Context, err error) error {
	if errors.Is(err, ErrBusy) || errors.Is(err, ErrClosed) {
		return err
	}
	if isTransportError(err) {
		c.kick(evProbe)
	}
	return c.ctxError(ctx, err)
}

// callOnPooled sends req on ps, first setting the session's log level to
// the caller's when it differs (2025-11-25 server/utilities/logging: the
// level is the session's, and the session is the caller's).
func (c *Client) callOnPooled(ctx context.Context, s *session, ps *pooledSession, req *Request) (json.RawMessage, error) {
	if req.LogLevel != "" && req.LogLevel != ps.logLevel && s.caps.logging {
		params := rawjson.AppendString([]byte(`{"level":`), req.LogLevel)
		_, err := ps.conn.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodSetLevel, append(params, '}'), nil,
			callOpts{call: true, identity: req.Identity})
		var rpcErr *RPCError
		switch {
		case err == nil:
			ps.logLevel = req.LogLevel
		case errors.As(err, &rpcErr):
			// The upstream refused the level; the call goes on, and the
			// gateway still filters what the client gets.
			c.log.DebugContext(ctx, "setting a pooled session's log level failed", slog.Any("error", err))
		default:
			return nil, err
		}
	}
	return c.callOnce(ctx, s, ps.conn, req)
}
