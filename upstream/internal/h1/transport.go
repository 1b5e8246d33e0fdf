// Package h1 is the HTTP/1.1 client of mcpgw's plain-http upstreams: a pool
// of keep-alive connections to one host on which the calling goroutine
// writes a request and reads its response itself.
//
// net/http's Transport hands every request to a writer and a reader
// goroutine per connection and back over channels; on a 2-core machine
// those hand-offs are most of a proxied call's client-side CPU
// (docs/BENCHMARKS.md). Here a request costs one write and the reads of its
// answer, and the request line and the fields a session repeats are
// rendered once (a Head), not per request.
//
// Its scope is what MCP over plain HTTP/1.1 needs: http only, to one
// host:port dialled directly. https upstreams and upstreams reached through
// an HTTP proxy keep net/http's Transport (TLS, HTTP/2, CONNECT). Left out:
// compression, Expect: 100-continue, redirects, cookies, streamed request
// bodies, protocol upgrades.
//
// There is one request path: Transport.Do writes a Request (a Head, the
// request's own fields, a body) in one system call and reads the response
// head; Transport.RoundTrip, the http.RoundTripper for the requests off the
// hot path (notifications, DELETE, event streams), renders a Head for its
// request and takes the same path.
//
// Responses are framed as RFC 9112 section 6 says: chunked (trailers read
// and dropped), Content-Length, or read until close; interim 1xx responses
// are skipped. A connection goes back to the pool only after its response
// body was read to the end and the server did not ask to close it. Where
// the parser is stricter than net/http's http.ReadResponse (obs-fold, heads
// over 1 MiB, Transfer-Encoding in HTTP/1.0, ...) is listed, as the rules
// FuzzResponse checks against net/http, in fuzz_test.go.
package h1

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Transport is the client of one host. Its zero value is not usable; make
// one with NewTransport. It is safe for concurrent use.
type Transport struct {
	addr        string // host:port dialled
	host        string // Host field of RoundTrip's requests without one
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	now         func() time.Time
	bufs        sync.Pool // *[]byte: requests while they are written

	mu     sync.Mutex
	idle   []*conn // most recently used last
	closed bool
	sweep  *time.Timer // closes connections idle past idleTimeout
}

var _ http.RoundTripper = (*Transport)(nil)

// Limits of what the transport accepts from a server, and of what it keeps.
const (
	maxHeadBytes = 1 << 20 // status lines and fields of one response, 1xx included
	maxLine      = 64 << 10
	readBuffer   = 8 << 10
	writeKeep    = 64 << 10 // request buffers larger than this are not pooled
	idleTimeout  = 90 * time.Second
)

// NewTransport returns a transport for host ("name" or "name:port"; port
// 80 when absent) that keeps up to maxIdle idle connections, each for up to
// 90 seconds. Zero maxIdle keeps none: every request dials.
func NewTransport(host string, maxIdle int) *Transport {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "80")
	}
	return &Transport{
		addr:        addr,
		host:        host,
		dialer:      net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     maxIdle,
		idleTimeout: idleTimeout,
		now:         time.Now,
	}
}

// Do writes req on an idle connection or a new one and returns the head of
// the final response; the body streams from the connection. The caller
// reads Body to its end (which returns the connection to the pool) or
// closes it (which closes the connection). Ending ctx aborts the request
// and the reading of its body.
//
// A write that fails on a reused connection is sent again, once, on a new
// one: the request provably never reached the server.
func (t *Transport) Do(ctx context.Context, req *Request) (*Response, error) {
	r, err := t.do(ctx, req)
	if err != nil {
		return nil, err
	}
	return &r.resp, nil
}

// do is Do, returning the whole reply.
func (t *Transport) do(ctx context.Context, req *Request) (*reply, error) {
	if err := req.check(); err != nil {
		return nil, err
	}
	buf := t.getBuf()
	*buf = req.appendTo((*buf)[:0])
	r, err := t.exchange(ctx, *buf, req.Head.method, req.WantHeader)
	t.putBuf(buf)
	return r, err
}

// RoundTrip sends req on the path of Do and returns its response. The body
// of req, when set, is read whole before anything is sent. req.URL names
// the target only: the request goes to the transport's host, with req.Host
// (or that host) as its Host field.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
	}
	head, err := NewHead(cmp.Or(req.Method, http.MethodGet), req.URL.RequestURI(), cmp.Or(req.Host, t.host), req.Header)
	if err != nil {
		return nil, err
	}
	r, err := t.do(req.Context(), &Request{Head: head, Body: body, WantHeader: true})
	if err != nil {
		return nil, err
	}
	resp := &r.resp
	hr := &http.Response{
		Status:        strconv.Itoa(resp.StatusCode) + " " + http.StatusText(resp.StatusCode),
		StatusCode:    resp.StatusCode,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    int(r.minor),
		Header:        resp.Header,
		ContentLength: resp.ContentLength,
		Close:         resp.Close,
		Request:       req,
		Body:          resp.Body,
	}
	if r.minor == 0 {
		hr.Proto = "HTTP/1.0"
	}
	if resp.Chunked {
		hr.TransferEncoding = []string{"chunked"}
	}
	return hr, nil
}

// Close closes the idle connections, and every connection returned to the
// pool from now on; requests fail with ErrClosed.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// CloseIdleConnections closes the idle connections; the transport stays
// usable.
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.nc.Close()
	}
}

func (t *Transport) getBuf() *[]byte {
	if b, ok := t.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 4<<10)
	return &b
}

func (t *Transport) putBuf(b *[]byte) {
	if cap(*b) <= writeKeep {
		t.bufs.Put(b)
	}
}

// exchange writes the rendered request msg and reads the head of the final
// response, on an idle connection or a new one.
func (t *Transport) exchange(ctx context.Context, msg []byte, method string, wantHeader bool) (*reply, error) {
	r := &reply{wantHeader: wantHeader}
	for attempt := 0; ; attempt++ {
		pc, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		err = pc.roundTrip(ctx, msg, method, r)
		if err == nil {
			return r, nil
		}
		var we writeError
		if attempt == 0 && pc.reused && errors.As(err, &we) && ctx.Err() == nil {
			r.reset()
			continue
		}
		return nil, err
	}
}

// writeError is a failed write of the request.
type writeError struct{ err error }

func (e writeError) Error() string { return "writing request: " + e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

// conn is one connection to the host.
type conn struct {
	t      *Transport
	nc     net.Conn
	raw    syscall.RawConn // nil when the connection offers none
	br     *bufio.Reader
	idleAt time.Time
	reused bool
	abort  func() // ends blocked reads and writes; one func value per connection
	// peek is the liveness check run by alive, made once per connection
	// (a closure per check would be an allocation per request); it sets
	// open.
	peek func(fd uintptr) bool
	open bool
}

func (t *Transport) dial(ctx context.Context) (*conn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	pc := &conn{t: t, nc: nc, br: bufio.NewReaderSize(nc, readBuffer)}
	if sc, ok := nc.(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
	}
	pc.abort = func() { _ = nc.SetDeadline(time.Unix(1, 0)) }
	pc.peek = func(fd uintptr) bool {
		var buf [1]byte
		for {
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			switch err {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				pc.open = true
			default:
				pc.open = false // EOF, unsolicited data, or an error
			}
			// Always done: returning false would wait for readability,
			// which a healthy idle connection never reaches.
			return true
		}
	}
	return pc, nil
}

// get returns an idle connection that is still open, or dials one.
func (t *Transport) get(ctx context.Context) (*conn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			return t.dial(ctx)
		}
		pc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		// A server may close a keep-alive connection whenever it is idle
		// (RFC 9112 section 9.6); one it closed is found here, before the
		// request is written, rather than after.
		if t.now().Sub(pc.idleAt) < t.idleTimeout && pc.alive() {
			pc.reused = true
			return pc, nil
		}
		_ = pc.nc.Close()
	}
}

// put returns a connection whose exchange is complete to the pool.
func (t *Transport) put(pc *conn) {
	pc.idleAt = t.now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		_ = pc.nc.Close()
		return
	}
	t.idle = append(t.idle, pc)
	if t.sweep == nil {
		t.sweep = time.AfterFunc(t.idleTimeout, t.sweepIdle)
	}
	t.mu.Unlock()
}

// sweepIdle closes connections idle for longer than idleTimeout, so that
// a quiet host does not hold sockets open forever.
func (t *Transport) sweepIdle() {
	now := t.now()
	var stale []*conn
	t.mu.Lock()
	keep := t.idle[:0]
	for _, pc := range t.idle {
		if now.Sub(pc.idleAt) >= t.idleTimeout {
			stale = append(stale, pc)
		} else {
			keep = append(keep, pc)
		}
	}
	clear(t.idle[len(keep):])
	t.idle = keep
	if len(t.idle) > 0 && !t.closed {
		t.sweep.Reset(t.idleTimeout)
	} else {
		t.sweep = nil
	}
	t.mu.Unlock()
	for _, pc := range stale {
		_ = pc.nc.Close()
	}
}

// alive reports whether an idle connection is still open and holds no
// unsolicited bytes, without blocking: a MSG_PEEK read of one byte.
func (pc *conn) alive() bool {
	if pc.br.Buffered() > 0 {
		return false // the server sent something while nothing was asked
	}
	if pc.raw == nil {
		return true
	}
	pc.open = false
	err := pc.raw.Read(pc.peek)
	return err == nil && pc.open
}

// noStop stands for context.AfterFunc's stop when the context never ends.
func noStop() bool { return true }

// roundTrip writes msg and reads the head of the final response into r.
func (pc *conn) roundTrip(ctx context.Context, msg []byte, method string, r *reply) error {
	stop := noStop
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.abort)
	}
	if _, err := pc.nc.Write(msg); err != nil {
		return pc.fail(ctx, stop, writeError{err})
	}
	if err := pc.readHead(method, r); err != nil {
		return pc.fail(ctx, stop, err)
	}
	b := &r.body
	b.pc, b.stop, b.remain, b.keep = pc, stop, r.resp.ContentLength, !r.resp.Close
	if b.framing == frameNone {
		b.finish()
		r.resp.Body = http.NoBody
		return nil
	}
	if b.framing == frameChunked {
		b.r = newChunkedReader(pc.br)
	}
	r.resp.Body = b
	return nil
}

// fail ends an exchange that failed before its body: the connection is
// closed; an ended context is reported as itself.
func (pc *conn) fail(ctx context.Context, stop func() bool, err error) error {
	stop()
	_ = pc.nc.Close()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
