package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
)

// Response is what Do reads of a final response before its body.
type Response struct {
	StatusCode int
	// ContentType is the Content-Type field, "" when absent.
	ContentType string
	// ContentLength is the Content-Length field, -1 when the length is
	// not known in advance (chunked, or read until close).
	ContentLength int64
	// Chunked reports the chunked transfer coding.
	Chunked bool
	// Close reports that the connection ends after this response.
	Close bool
	// Header holds every field, when Request.WantHeader; nil otherwise.
	Header http.Header
	// Body streams the content from the connection; http.NoBody when there
	// is none. Reading it to its end returns the connection to the pool;
	// closing it earlier closes the connection.
	Body io.ReadCloser
}

// reply is one response being read: what Do returns, its body, and the
// parser's state, in one allocation per request.
type reply struct {
	resp       Response
	body       body // its framing is decided with the head
	lenDigits  int32
	sawLength  bool  // a Content-Length field, of lenDigits digits
	minor      uint8 // HTTP/1.minor
	wantHeader bool
}

// reset forgets an interim response, or the head of a failed attempt.
func (r *reply) reset() {
	h := r.resp.Header
	clear(h)
	*r = reply{wantHeader: r.wantHeader}
	r.resp.Header = h
}

// Response body framings.
const (
	frameNone    uint8 = iota // no body
	frameLength               // Content-Length bytes
	frameChunked              // chunked transfer coding
	frameClose                // until the server closes (the connection is not reused)
)

// readHead reads a final response's status line and header fields
// (RFC 9112 sections 4 and 5), skipping interim 1xx responses (RFC 9110
// section 15.2), and decides the body's framing (RFC 9112 section 6.3).
func (pc *conn) readHead(method string, r *reply) error {
	budget := maxHeadBytes
	if r.wantHeader && r.resp.Header == nil {
		r.resp.Header = make(http.Header, 8)
	}
	for first := true; ; first = false {
		line, err := pc.line(&budget)
		if err != nil {
			if first && pc.reused && (err == io.EOF || errors.Is(err, syscall.ECONNRESET)) { //nolint:errorlint // bufio returns io.EOF unwrapped.
				return ErrReusedEOF
			}
			return err
		}
		if r.resp.StatusCode, r.minor, err = parseStatusLine(line); err != nil {
			return err
		}
		if err := pc.readFields(r, &budget); err != nil {
			return err
		}
		if s := r.resp.StatusCode; s >= 100 && s < 200 && s != http.StatusSwitchingProtocols {
			r.reset()
			continue
		}
		r.decideFraming(method)
		return nil
	}
}

// line reads one line without its CRLF (or LF), charging it to budget.
// The slice is valid until the next read.
func (pc *conn) line(budget *int) ([]byte, error) {
	line, err := pc.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull { //nolint:errorlint // bufio returns its sentinels unwrapped; == keeps the read path cheap.
		long := append([]byte(nil), line...)
		for err == bufio.ErrBufferFull && len(long) <= maxLine { //nolint:errorlint // as above.
			line, err = pc.br.ReadSlice('\n')
			long = append(long, line...)
		}
		line = long
		if len(line) > maxLine {
			return nil, fmt.Errorf("%w: %w: line longer than %d bytes", ErrMalformed, errTooLong, maxLine)
		}
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if *budget -= len(line); *budget < 0 {
		return nil, fmt.Errorf("%w: %w: more than %d bytes", ErrMalformed, errTooLong, maxHeadBytes)
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// parseStatusLine parses "HTTP/1.1 200 OK" (RFC 9112 section 4): version
// 1.0 or 1.1, one space, a three-digit code of 100 to 999, and, when there
// is a reason phrase, one space before it.
func parseStatusLine(line []byte) (status int, minor uint8, err error) {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, 0, fmt.Errorf("%w: %w %q", ErrMalformed, errStatusLine, truncate(line))
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%w: %w %q", ErrMalformed, errStatusLine, truncate(line))
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, 0, fmt.Errorf("%w: %w: status code %d", ErrMalformed, errStatusLine, status)
	}
	return status, line[7] - '0', nil
}

// readFields reads field lines up to the empty line and records them in r;
// with r nil (a trailer section) they are only checked.
func (pc *conn) readFields(r *reply, budget *int) error {
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
		name, value, err := splitField(line)
		if err != nil {
			return err
		}
		if r != nil {
			if err := r.field(name, value); err != nil {
				return err
			}
		}
	}
}

// splitField splits a field line into its name and its value without the
// whitespace around it (RFC 9112 section 5).
func splitField(line []byte) (name, value []byte, err error) {
	if line[0] == ' ' || line[0] == '\t' {
		// obs-fold: a server MUST NOT send it (RFC 9112 section 5.2).
		return nil, nil, fmt.Errorf("%w: %w", ErrMalformed, errFolded)
	}
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return nil, nil, fmt.Errorf("%w: field line %q", ErrMalformed, truncate(line))
	}
	name, value = line[:i], line[i+1:]
	spaced := false
	for _, c := range name {
		switch {
		case isTokenByte(c):
		case c == ' ':
			spaced = true
		default:
			return nil, nil, fmt.Errorf("%w: field name %q", ErrMalformed, truncate(name))
		}
	}
	if spaced {
		// RFC 9112 section 5.1: no whitespace between name and colon.
		return nil, nil, fmt.Errorf("%w: %w %q", ErrMalformed, errNameSpace, truncate(name))
	}
	for _, c := range value {
		if !isValueByte(c) {
			return nil, nil, fmt.Errorf("%w: control character in field %q", ErrMalformed, truncate(name))
		}
	}
	return name, trimOWS(value), nil
}

// trimOWS trims spaces and tabs (RFC 9110 section 5.6.3).
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// field records one header field.
func (r *reply) field(name, value []byte) error {
	switch {
	case nameIs(name, "Content-Type"):
		if string(value) == "application/json" {
			r.resp.ContentType = "application/json" // the usual value, not allocated
		} else {
			r.resp.ContentType = string(value)
		}
	case nameIs(name, "Content-Length"):
		// Repeated, it must be the same number written the same way
		// (RFC 9110 section 8.6 allows repeats of one value).
		n, ok := parseLength(value)
		if !ok || (r.sawLength && (n != r.resp.ContentLength || len(value) != int(r.lenDigits))) {
			return fmt.Errorf("%w: Content-Length %q", ErrMalformed, truncate(value))
		}
		r.resp.ContentLength, r.lenDigits, r.sawLength = n, int32(len(value)), true //nolint:gosec // a line is at most maxLine (64 KiB) long.
	case nameIs(name, "Transfer-Encoding"):
		if r.minor == 0 {
			// RFC 9112 section 6.1: the framing of an HTTP/1.0 message
			// with Transfer-Encoding is faulty.
			return fmt.Errorf("%w: %w", ErrMalformed, errTE10)
		}
		if r.resp.Chunked || !bytes.EqualFold(value, []byte("chunked")) {
			return fmt.Errorf("%w: transfer coding %q", ErrMalformed, truncate(value))
		}
		r.resp.Chunked = true
	case nameIs(name, "Connection"):
		for tok := range bytes.SplitSeq(value, []byte(",")) {
			if bytes.EqualFold(trimOWS(tok), []byte("close")) {
				r.resp.Close = true
			}
		}
	}
	if r.resp.Header != nil {
		key := http.CanonicalHeaderKey(string(name))
		r.resp.Header[key] = append(r.resp.Header[key], string(value))
	}
	return nil
}

// nameIs reports whether the field name b is s, ignoring ASCII case.
func nameIs(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseLength parses a Content-Length value: one or more digits, at most
// math.MaxInt64.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false
		}
		n = n*10 + d
	}
	return n, true
}

// decideFraming decides how the body is delimited (RFC 9112 section 6.3)
// and whether the connection stays open after it.
func (r *reply) decideFraming(method string) {
	resp := &r.resp
	if !r.sawLength {
		resp.ContentLength = -1
	}
	if r.minor == 0 {
		// HTTP/1.0 closes unless keep-alive was offered; the transport
		// does not ask for it.
		resp.Close = true
	}
	switch {
	case resp.StatusCode == http.StatusSwitchingProtocols:
		// What follows is another protocol, which was not asked for.
		resp.ContentLength, resp.Close, r.body.framing = 0, true, frameNone
	case method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified:
		resp.ContentLength, r.body.framing = 0, frameNone
	case resp.Chunked:
		if r.sawLength {
			// Both framings: the connection is not trusted after this
			// response (RFC 9112 section 6.3).
			resp.ContentLength, resp.Close = -1, true
		}
		r.body.framing = frameChunked
		if resp.Header != nil {
			delete(resp.Header, "Transfer-Encoding")
		}
	case resp.ContentLength == 0:
		r.body.framing = frameNone
	case resp.ContentLength > 0:
		r.body.framing = frameLength
	default:
		resp.Close, r.body.framing = true, frameClose
	}
}

// truncate quotes at most the first 40 bytes of b in an error message.
func truncate(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// body is a response body read from the connection. Reading it to the end
// returns the connection to the pool; closing it earlier closes the
// connection.
type body struct {
	pc     *conn
	stop   func() bool // unregisters the context's abort
	remain int64       // frameLength: bytes left
	r      io.Reader   // frameChunked: the chunked reader
	err    error
	mu     sync.Mutex // Close may race Read (a drain timer closes the body)
	// ended is set by whoever returns the connection to the pool or
	// closes it; outside mu, so that Close can end a Read blocked on the
	// connection.
	ended   atomic.Bool
	framing uint8
	keep    bool // the connection may serve another request after this body
}

func (b *body) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.read(p)
	switch {
	case err == io.EOF: //nolint:errorlint // io.EOF is set by read or returned unwrapped by the readers.
		b.err = io.EOF
		b.finishLocked()
	case err != nil:
		b.err = err
		b.closeLocked()
	}
	return n, err
}

// read reads from the connection as the framing says.
func (b *body) read(p []byte) (int, error) {
	switch b.framing {
	case frameLength:
		if int64(len(p)) > b.remain {
			p = p[:b.remain]
		}
		n, err := b.pc.br.Read(p)
		b.remain -= int64(n)
		if b.remain == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case frameChunked:
		n, err := b.r.Read(p)
		if err == io.EOF { //nolint:errorlint // the chunked reader returns io.EOF unwrapped.
			// The last chunk is followed by trailer fields and an empty
			// line (RFC 9112 section 7.1.2); they are read and dropped.
			budget := maxHeadBytes
			if terr := b.pc.readFields(nil, &budget); terr != nil {
				err = terr
			}
		}
		return n, err
	default: // frameClose
		return b.pc.br.Read(p)
	}
}

func (b *body) Close() error {
	// A Read blocked on the connection holds mu: the connection is closed
	// first, which ends that Read, and only then is mu taken.
	if b.ended.CompareAndSwap(false, true) {
		b.stop()
		_ = b.pc.nc.Close()
	}
	b.mu.Lock()
	if b.err == nil {
		b.err = ErrAborted
	}
	b.mu.Unlock()
	return nil
}

// Detach ends the hold of the request's context on rc, a Response.Body of
// this package: ending the context no longer aborts the reading of the
// rest of the body, and a body then read to its end returns its connection
// to the pool whatever became of the context. A caller that stops waiting
// for a response before its body ends (a server-sent event stream the
// server closes just after the response event) detaches it, then reads the
// rest in the background under a bound of its own, closing the body when
// the bound passes. Without it, the request's context ending as the call
// returns would close the connection almost every time, and the next
// request would dial. It reports false when rc is not such a body, or has
// ended, or the context had already aborted it (which closes the
// connection); it must not run concurrently with a Read of rc.
func Detach(rc io.ReadCloser) bool {
	b, ok := rc.(*body)
	if !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended.Load() || b.err != nil || !b.stop() {
		return false
	}
	b.stop = noStop
	return true
}

func (b *body) finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.err = io.EOF
	b.finishLocked()
}

// finishLocked ends a body read to its end: the connection goes back to
// the pool unless the server asked to close it or the context's abort
// already fired (its deadline would break the next request).
func (b *body) finishLocked() {
	if !b.ended.CompareAndSwap(false, true) {
		return // Close ended the connection first
	}
	if !b.stop() || !b.keep {
		_ = b.pc.nc.Close()
		return
	}
	b.pc.t.put(b.pc)
}

func (b *body) closeLocked() {
	if !b.ended.CompareAndSwap(false, true) {
		return
	}
	b.stop()
	_ = b.pc.nc.Close()
}

// newChunkedReader decodes the chunked transfer coding from br.
func newChunkedReader(br *bufio.Reader) io.Reader { return httputil.NewChunkedReader(br) }
