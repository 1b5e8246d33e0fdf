package upstream

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// leanTransport is the HTTP/1.1 client of a plain-http upstream: a pool of
// keep-alive connections on which the calling goroutine writes the request
// and reads the response itself.
//
// net/http's Transport hands every request to two goroutines per connection
// (a writer and a reader) and back over channels; on a 2-core machine those
// hand-offs are most of a proxied call's client-side CPU (docs/BENCHMARKS.md).
// Here a call costs one write and the reads of its answer. What is not
// needed for MCP over HTTP/1.1 is left out: no TLS (https upstreams, and
// upstreams reached through an HTTP proxy, keep http.Transport), no HTTP/2,
// no compression, no Expect: 100-continue, no redirects.
//
// Response framing follows RFC 9112 section 6: chunked (with trailers
// discarded), Content-Length, or read until close; 1xx interim responses
// are skipped. A connection goes back to the pool only after its response
// body was read to the end and the server did not ask to close it.
type leanTransport struct {
	addr        string // host:port dialled
	host        string // Host header
	dialer      net.Dialer
	maxIdle     int
	idleTimeout time.Duration
	now         func() time.Time

	mu     sync.Mutex
	idle   []*leanConn // most recently used last
	closed bool
	sweep  *time.Timer // closes connections idle past idleTimeout
}

// Limits of what the transport accepts from a server.
const (
	leanMaxHeaderBytes = 1 << 20 // status line and headers of one response
	leanMaxLine        = 64 << 10
	leanReadBuffer     = 8 << 10
	leanWriteKeep      = 64 << 10 // request buffers larger than this are not pooled
)

var (
	errLeanMalformed = errors.New("malformed HTTP response")
	errLeanClosed    = errors.New("transport closed")
	errLeanHeaderVal = errors.New("invalid header field value")
	errLeanAborted   = errors.New("request cancelled")
	// errLeanReusedEOF reports a reused keep-alive connection that the
	// server closed without answering. Whether the request was applied is
	// unknown, so it is not resent here (RFC 9110 section 9.2.2); calls
	// that are safe to repeat are retried by the retry policy.
	errLeanReusedEOF = errors.New("server closed a reused connection without answering")
)

func newLeanTransport(host string, maxIdle int) *leanTransport {
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		addr = net.JoinHostPort(host, "80")
	}
	return &leanTransport{
		addr:        addr,
		host:        host,
		dialer:      net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second},
		maxIdle:     maxIdle,
		idleTimeout: 90 * time.Second,
		now:         time.Now,
	}
}

// leanConn is one connection to the upstream.
type leanConn struct {
	t      *leanTransport
	nc     net.Conn
	raw    syscall.RawConn // nil when the connection offers none
	br     *bufio.Reader
	idleAt time.Time
	reused bool
	abort  func() // ends blocked reads and writes; one func value per connection
	// peek is the liveness check run by alive, made once per connection
	// (a closure per check would be an allocation per call); it sets open.
	peek func(fd uintptr) bool
	open bool
}

func (t *leanTransport) dial(ctx context.Context) (*leanConn, error) {
	nc, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	pc := &leanConn{t: t, nc: nc, br: bufio.NewReaderSize(nc, leanReadBuffer)}
	if sc, ok := nc.(syscall.Conn); ok {
		pc.raw, _ = sc.SyscallConn()
	}
	pc.abort = func() { _ = nc.SetDeadline(aLongTimeAgo) }
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

var aLongTimeAgo = time.Unix(1, 0)

// get returns an idle connection that is still open, or dials one.
func (t *leanTransport) get(ctx context.Context) (*leanConn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, errLeanClosed
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
		if pc.t.now().Sub(pc.idleAt) < t.idleTimeout && pc.alive() {
			pc.reused = true
			return pc, nil
		}
		_ = pc.nc.Close()
	}
}

// put returns a connection whose exchange is complete to the pool.
func (t *leanTransport) put(pc *leanConn) {
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
// a quiet upstream does not hold the gateway's sockets open forever.
func (t *leanTransport) sweepIdle() {
	now := t.now()
	var stale []*leanConn
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

// Close closes the idle connections, and every connection returned to the
// pool from now on; requests fail with errLeanClosed.
func (t *leanTransport) Close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.CloseIdleConnections()
}

// CloseIdleConnections closes the idle connections; the transport stays
// usable.
func (t *leanTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, pc := range idle {
		_ = pc.nc.Close()
	}
}

// alive reports whether an idle connection is still open and holds no
// unsolicited bytes, without blocking: a MSG_PEEK read of one byte.
func (pc *leanConn) alive() bool {
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

// post sends a request on the fast path of httpConn.roundTrip: head holds
// the request line and every fixed header, each line ending in CRLF, checked
// when the connection was set up; hdrs are the per-request fields, checked
// here. Only what a call reads of the answer is kept (no header map).
func (t *leanTransport) post(ctx context.Context, head []byte, hdrs [][2]string, body []byte, wantSession bool) (*upResponse, error) {
	for _, h := range hdrs {
		if !validHeaderName(h[0]) || !validHeaderValue(h[1]) {
			return nil, fmt.Errorf("%w for %q", errLeanHeaderVal, h[0])
		}
	}
	buf := getWriteBuf()
	b := append((*buf)[:0], head...) //nolint:gocritic // b is stored back into *buf below.
	for _, h := range hdrs {
		b = appendField(b, h[0], h[1])
	}
	*buf = appendBody(b, body, true)
	rh := respHead{wantSession: wantSession}
	lb, err := t.exchange(ctx, *buf, http.MethodPost, &rh)
	putWriteBuf(buf)
	if err != nil {
		return nil, err
	}
	return &upResponse{status: rh.status, contentType: rh.contentType, sessionID: rh.sessionID, length: rh.length, body: lb}, nil
}

// RoundTrip sends req and returns its response; the body streams from the
// connection. req.Body, when set, is read whole before anything is sent
// (every request of this package is a byte slice). It serves the requests
// off the call path: notifications, DELETE, and the event streams.
func (t *leanTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil && req.Body != http.NoBody {
		if br, ok := req.Body.(*bodyReader); ok {
			body = br.b[br.off:]
		} else {
			b, err := io.ReadAll(req.Body)
			_ = req.Body.Close()
			if err != nil {
				return nil, err
			}
			body = b
		}
	}
	for k, vs := range req.Header {
		for _, v := range vs {
			if !validHeaderName(k) || !validHeaderValue(v) {
				return nil, fmt.Errorf("%w for %q", errLeanHeaderVal, k)
			}
		}
	}
	buf := getWriteBuf()
	b := appendRequestLine((*buf)[:0], req.Method, req.URL.RequestURI(), cmp.Or(req.Host, t.host))
	if _, ok := req.Header["User-Agent"]; !ok {
		b = append(b, "User-Agent: mcpgw\r\n"...)
	}
	for k, vs := range req.Header {
		if k == "Host" || k == "Content-Length" || k == "Connection" || k == "Transfer-Encoding" {
			continue
		}
		for _, v := range vs {
			b = appendField(b, k, v)
		}
	}
	*buf = appendBody(b, body, req.Method == http.MethodPost || req.Method == http.MethodPut)
	rh := respHead{header: make(http.Header, 4)}
	lb, err := t.exchange(req.Context(), *buf, req.Method, &rh)
	putWriteBuf(buf)
	if err != nil {
		return nil, err
	}
	resp := &http.Response{
		Status:        strconv.Itoa(rh.status) + " " + http.StatusText(rh.status),
		StatusCode:    rh.status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    rh.minor,
		Header:        rh.header,
		ContentLength: rh.length,
		Close:         rh.close,
		Request:       req,
		Body:          lb,
	}
	if rh.minor == 0 {
		resp.Proto = "HTTP/1.0"
	}
	if rh.chunked {
		resp.TransferEncoding = []string{"chunked"}
	}
	return resp, nil
}

func appendRequestLine(b []byte, method, uri, host string) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	return append(b, "\r\n"...)
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// appendBody ends the head with Content-Length (when there is a body, or
// when the method has one by definition) and appends the body.
func appendBody(b, body []byte, withLength bool) []byte {
	if len(body) > 0 || withLength {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, body...)
}

// writeBufs hold requests while they are written.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

func getWriteBuf() *[]byte { return writeBufs.Get().(*[]byte) } //nolint:errcheck // writeBufs holds only *[]byte.

func putWriteBuf(b *[]byte) {
	if cap(*b) <= leanWriteKeep {
		writeBufs.Put(b)
	}
}

// exchange writes the request req and reads the head of the final
// response into rh, on an idle connection or a new one. A write that fails
// on a reused connection is sent again once on a new one: the request
// provably never reached the server.
func (t *leanTransport) exchange(ctx context.Context, req []byte, method string, rh *respHead) (io.ReadCloser, error) {
	for attempt := 0; ; attempt++ {
		pc, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		body, err := pc.roundTrip(ctx, req, method, rh)
		if err == nil {
			return body, nil
		}
		var we writeError
		if attempt == 0 && pc.reused && errors.As(err, &we) && ctx.Err() == nil {
			rh.reset()
			continue
		}
		return nil, err
	}
}

// writeError is a failed write of the request.
type writeError struct{ err error }

func (e writeError) Error() string { return "writing request: " + e.err.Error() }
func (e writeError) Unwrap() error { return e.err }

func (pc *leanConn) roundTrip(ctx context.Context, req []byte, method string, rh *respHead) (io.ReadCloser, error) {
	stop := func() bool { return true }
	if ctx.Done() != nil {
		stop = context.AfterFunc(ctx, pc.abort)
	}
	fail := func(err error) (io.ReadCloser, error) {
		stop()
		_ = pc.nc.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if _, err := pc.nc.Write(req); err != nil {
		return fail(writeError{err})
	}
	if err := pc.readHead(method, rh); err != nil {
		return fail(err)
	}
	lb := &leanBody{pc: pc, stop: stop, framing: rh.framing, remain: rh.length, keep: !rh.close}
	if rh.framing == frameChunked {
		lb.r = httputil.NewChunkedReader(pc.br)
	}
	if rh.framing == frameNone {
		lb.finish()
		return http.NoBody, nil
	}
	return lb, nil
}

// respHead is what the transport reads of a response before its body.
type respHead struct {
	status      int
	minor       int // HTTP/1.minor
	contentType string
	sessionID   string // Mcp-Session-Id, when wantSession
	wantSession bool
	length      int64 // Content-Length; -1 when not given
	lengths     int   // Content-Length fields seen
	chunked     bool
	close       bool // the connection ends after this response
	framing     int
	header      http.Header // every field, when not nil
}

func (rh *respHead) reset() {
	*rh = respHead{wantSession: rh.wantSession, header: rh.header}
	if rh.header != nil {
		clear(rh.header)
	}
}

// readHead reads a final response's status line and header fields
// (RFC 9112 sections 4 and 5), skipping interim 1xx responses (RFC 9110
// section 15.2), and decides the body's framing (RFC 9112 section 6.3).
func (pc *leanConn) readHead(method string, rh *respHead) error {
	budget := leanMaxHeaderBytes
	for first := true; ; first = false {
		line, err := pc.line(&budget)
		if err != nil {
			if first && pc.reused && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) { //nolint:errorlint // bufio returns io.EOF unwrapped.
				return errLeanReusedEOF
			}
			return err
		}
		if rh.status, rh.minor, err = parseStatusLine(line); err != nil {
			return err
		}
		if err := pc.readFields(rh, &budget); err != nil {
			return err
		}
		if rh.status >= 100 && rh.status < 200 && rh.status != http.StatusSwitchingProtocols {
			rh.reset()
			continue
		}
		return rh.decideFraming(method)
	}
}

// line reads one line without its CRLF (or LF), charging it to budget.
// The slice is valid until the next read.
func (pc *leanConn) line(budget *int) ([]byte, error) {
	line, err := pc.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull { //nolint:errorlint // bufio returns its sentinels unwrapped; == keeps the read path cheap.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(long) <= leanMaxLine { //nolint:errorlint // as above.
			line, err = pc.br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
		if len(line) > leanMaxLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errLeanMalformed, leanMaxLine)
		}
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if *budget -= len(line); *budget < 0 {
		return nil, fmt.Errorf("%w: head longer than %d bytes", errLeanMalformed, leanMaxHeaderBytes)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.1 200 OK" (RFC 9112 section 4).
func parseStatusLine(line []byte) (status, minor int, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, fmt.Errorf("%w: status line %q", errLeanMalformed, truncate(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%w: status line %q", errLeanMalformed, truncate(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, 0, fmt.Errorf("%w: status code %d", errLeanMalformed, status)
	}
	return status, int(line[7] - '0'), nil
}

// Header fields the transport itself reads.
var (
	fieldContentType      = []byte("Content-Type")
	fieldContentLength    = []byte("Content-Length")
	fieldTransferEncoding = []byte("Transfer-Encoding")
	fieldConnection       = []byte("Connection")
	fieldSessionID        = []byte("Mcp-Session-Id")
)

// readFields reads header fields up to the empty line.
func (pc *leanConn) readFields(rh *respHead, budget *int) error {
	for {
		line, err := pc.line(budget)
		if err != nil {
			if err == io.EOF { //nolint:errorlint // line returns bufio's io.EOF unwrapped.
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			// obs-fold: a server MUST NOT send it (RFC 9112 section 5.2).
			return fmt.Errorf("%w: folded header line", errLeanMalformed)
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			return fmt.Errorf("%w: header line %q", errLeanMalformed, truncate(line))
		}
		name, value := line[:i], bytes.TrimSpace(line[i+1:])
		if !validHeaderName(string(name)) {
			return fmt.Errorf("%w: header name %q", errLeanMalformed, truncate(name))
		}
		if err := rh.field(name, value); err != nil {
			return err
		}
	}
}

// field records one header field.
func (rh *respHead) field(name, value []byte) error {
	switch {
	case bytes.EqualFold(name, fieldContentType):
		if string(value) == "application/json" {
			rh.contentType = "application/json"
		} else {
			rh.contentType = string(value)
		}
	case bytes.EqualFold(name, fieldContentLength):
		n, ok := parseLength(value)
		if !ok || (rh.lengths > 0 && n != rh.length) {
			return fmt.Errorf("%w: Content-Length %q", errLeanMalformed, truncate(value))
		}
		rh.length, rh.lengths = n, rh.lengths+1
	case bytes.EqualFold(name, fieldTransferEncoding):
		if rh.chunked || !bytes.EqualFold(value, []byte("chunked")) {
			return fmt.Errorf("%w: transfer coding %q", errLeanMalformed, truncate(value))
		}
		rh.chunked = true
	case bytes.EqualFold(name, fieldConnection):
		for tok := range bytes.SplitSeq(value, []byte(",")) {
			if bytes.EqualFold(bytes.TrimSpace(tok), []byte("close")) {
				rh.close = true
			}
		}
	case rh.wantSession && bytes.EqualFold(name, fieldSessionID):
		rh.sessionID = string(value)
	}
	if rh.header != nil {
		key := http.CanonicalHeaderKey(string(name))
		rh.header[key] = append(rh.header[key], string(value))
	}
	return nil
}

// parseLength parses a Content-Length value: digits only.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decideFraming decides how the body is delimited (RFC 9112 section 6.3)
// and whether the connection stays open after it.
func (rh *respHead) decideFraming(method string) error {
	if rh.lengths == 0 {
		rh.length = -1
	}
	if rh.minor == 0 {
		// HTTP/1.0 closes unless keep-alive was offered; the transport
		// does not ask for it.
		rh.close = true
	}
	switch {
	case method == http.MethodHead || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified:
		rh.length, rh.framing = 0, frameNone
	case rh.chunked:
		if rh.lengths > 0 {
			// Both framings: the connection is not trusted after this
			// response (RFC 9112 section 6.3).
			rh.length, rh.close = -1, true
		}
		rh.framing = frameChunked
		if rh.header != nil {
			delete(rh.header, "Transfer-Encoding")
		}
	case rh.length == 0:
		rh.framing = frameNone
	case rh.length > 0:
		rh.framing = frameLength
	default:
		rh.close, rh.framing = true, frameClose
	}
	return nil
}

// Response body framings.
const (
	frameNone    = iota // no body
	frameLength         // Content-Length bytes
	frameChunked        // chunked transfer coding
	frameClose          // until the server closes (the connection is not reused)
)

// leanBody is a response body read from the connection. Reading it to the
// end returns the connection to the pool; closing it earlier closes the
// connection.
type leanBody struct {
	pc      *leanConn
	stop    func() bool // unregisters the context's abort
	framing int
	remain  int64     // frameLength: bytes left
	r       io.Reader // frameChunked: the chunked reader
	keep    bool      // the connection may serve another request after this body
	// ended is set by whoever returns the connection to the pool or
	// closes it; outside mu, so that Close can end a Read blocked on the
	// connection.
	ended atomic.Bool
	err   error
	mu    sync.Mutex // Close may race Read (a drain timer closes the body)
}

func (b *leanBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	var n int
	var err error
	switch b.framing {
	case frameLength:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err = b.pc.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			err = io.EOF
		} else if err == io.EOF { //nolint:errorlint // bufio returns io.EOF unwrapped; == keeps Read cheap.
			err = io.ErrUnexpectedEOF
		}
	case frameChunked:
		n, err = b.r.Read(p)
		if err == io.EOF { //nolint:errorlint // the chunked reader returns io.EOF unwrapped.
			// The last chunk is followed by trailer fields and an empty
			// line (RFC 9112 section 7.1.2); they are read and dropped.
			budget := leanMaxHeaderBytes
			var trailer respHead
			if terr := b.pc.readFields(&trailer, &budget); terr != nil {
				err = terr
			}
		}
	case frameClose:
		n, err = b.pc.br.Read(p)
	}
	switch {
	case err == io.EOF: //nolint:errorlint // io.EOF is set above or returned unwrapped by the readers.
		b.err = io.EOF
		b.finishLocked()
	case err != nil:
		b.err = err
		b.closeLocked()
	}
	return n, err
}

func (b *leanBody) Close() error {
	// A Read blocked on the connection holds mu: the connection is closed
	// first, which ends that Read, and only then is mu taken.
	if b.ended.CompareAndSwap(false, true) {
		b.stop()
		_ = b.pc.nc.Close()
	}
	b.mu.Lock()
	if b.err == nil {
		b.err = errLeanAborted
	}
	b.mu.Unlock()
	return nil
}

func (b *leanBody) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = io.EOF
	b.finishLocked()
}

// finishLocked ends a body read to its end: the connection goes back to
// the pool unless the server asked to close it or the context's abort
// already fired (its deadline would break the next request).
func (b *leanBody) finishLocked() {
	if !b.ended.CompareAndSwap(false, true) {
		return // Close ended the connection first
	}
	if !b.stop() || !b.keep {
		_ = b.pc.nc.Close()
		return
	}
	b.pc.t.put(b.pc)
}

func (b *leanBody) closeLocked() {
	if !b.ended.CompareAndSwap(false, true) {
		return
	}
	b.stop()
	_ = b.pc.nc.Close()
}
