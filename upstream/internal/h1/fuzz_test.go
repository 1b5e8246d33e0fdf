package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nopConn is a net.Conn that accepts writes and reads nothing.
type nopConn struct{}

func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nil }
func (nopConn) RemoteAddr() net.Addr             { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

// parsed is how one parser took the bytes of a response.
type parsed struct {
	status int
	body   []byte
	err    error // of the head or of the body; nil when it was accepted
}

// parseH1 reads data as the answer to a request with method, on a new or
// a reused connection, and reads the body to its end.
func parseH1(t *testing.T, data []byte, method string, reused bool) (*reply, parsed) {
	t.Helper()
	tr := NewTransport("fuzz.invalid:80", 0) // nothing is pooled
	pc := &conn{t: tr, nc: nopConn{}, br: bufio.NewReaderSize(bytes.NewReader(data), readBuffer), reused: reused, abort: func() {}}
	r := &reply{wantHeader: true}
	if err := pc.roundTrip(t.Context(), []byte("POST / HTTP/1.1\r\n\r\n"), method, r); err != nil {
		return r, parsed{err: err}
	}
	defer r.resp.Body.Close()
	b, err := io.ReadAll(r.resp.Body)
	return r, parsed{status: r.resp.StatusCode, body: b, err: err}
}

// parseNetHTTP reads data as net/http's Transport does: http.ReadResponse
// for each head, interim 1xx responses but 101 skipped, then the body to
// its end. The read buffer has the Transport's size.
func parseNetHTTP(data []byte, method string) parsed {
	br := bufio.NewReaderSize(bytes.NewReader(data), 4<<10)
	req := &http.Request{Method: method}
	for {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return parsed{err: err}
		}
		if s := resp.StatusCode; s >= 100 && s <= 199 && s != http.StatusSwitchingProtocols {
			continue
		}
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		return parsed{status: resp.StatusCode, body: b, err: err}
	}
}

// difference is a deliberate way in which h1 and net/http disagree on
// whether to accept a response.
type difference struct {
	name string
	// explains reports whether the difference accounts for h1 and net/http
	// disagreeing on these bytes.
	explains func(data []byte, h, n parsed) bool
}

// differences are every rule under which h1 may accept what net/http
// refuses, or refuse what it accepts. Anything else must agree.
func differences() []difference {
	h1Refuses := func(kind error) func([]byte, parsed, parsed) bool {
		return func(_ []byte, h, n parsed) bool { return errors.Is(h.err, kind) && n.err == nil }
	}
	netRefuses := func(msgs ...string) func([]byte, parsed, parsed) bool {
		return func(_ []byte, h, n parsed) bool {
			return h.err == nil && n.err != nil && slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(n.err.Error(), m) })
		}
	}
	return []difference{
		{
			// RFC 9112 section 5.2: a server MUST NOT send obs-fold; a user
			// agent may reject it. net/http joins the line to the one
			// before. In heads and trailer sections alike.
			name:     "obs-fold is refused",
			explains: h1Refuses(errFolded),
		},
		{
			// RFC 9112 section 5.1: no whitespace between a field name and
			// its colon. net/http keeps such a field under a name with a
			// space, which no one reads.
			name:     "a space in a field name is refused",
			explains: h1Refuses(errNameSpace),
		},
		{
			// RFC 9112 section 4: h1 takes "HTTP/1.0" or "HTTP/1.1", one
			// space, and a three-digit code from 100 to 999. net/http also
			// takes any HTTP/d.d version, several spaces, codes from 000 to
			// 099, and "+12".
			name:     "the status line is read strictly",
			explains: h1Refuses(errStatusLine),
		},
		{
			// h1 refuses lines over 64 KiB and heads over 1 MiB (interim
			// responses and a trailer section each count against theirs);
			// net/http's ReadResponse has no limit (its Transport's is
			// 10 MiB).
			name: "heads over 1 MiB and lines over 64 KiB are refused",
			explains: func(data []byte, h, n parsed) bool {
				return errors.Is(h.err, errTooLong) && n.err == nil && len(data) > maxLine
			},
		},
		{
			// RFC 9112 section 6.1: an HTTP/1.0 message with
			// Transfer-Encoding has faulty framing. net/http ignores the
			// field in HTTP/1.0.
			name:     "Transfer-Encoding in HTTP/1.0 is refused",
			explains: h1Refuses(errTE10),
		},
		{
			// net/http wants a trailer section to end with CRLF CRLF within
			// its 4 KiB read buffer (or to be a lone CRLF); h1 reads trailer
			// lines as it reads a head, bare LF included, and drops them.
			name:     "trailer sections are read line by line",
			explains: netRefuses("suspiciously long trailer", "unexpected EOF reading trailer"),
		},
		{
			// net/http refuses a chunked response whose Trailer field
			// announces Content-Length, Transfer-Encoding or Trailer; h1
			// drops trailers and does not read the Trailer field.
			name:     "the Trailer field is not read",
			explains: netRefuses("bad trailer key"),
		},
	}
}

// FuzzResponse reads random bytes as a response, with h1 and with
// net/http's http.ReadResponse: both must agree on the status, the body
// bytes, and whether the response is accepted at all, but for the rules in
// differences. h1's own invariants (framing, interim responses, reuse of
// the connection) are checked on the way.
func FuzzResponse(f *testing.F) {
	for _, s := range []string{
		respOK,
		"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nMcp-Session-Id: s\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n",
		"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: <x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.0 200 OK\r\n\r\nuntil close",
		"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\nContent-Length: 1\n\nx",
		"HTTP/1.1 2OO OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: x\r\n\r\n",
		"",
		"HTTP/1.1 200",
		// Where the rules of differences apply.
		"HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n\r\n",
		"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 +99 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\n",
		"HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nhi",
		"HTTP/1.1 200 OK\r\nX: a\x01\r\nContent-Length: 0\r\n\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true, true)

	rules := differences()
	f.Fuzz(func(t *testing.T, data []byte, head, reused bool) {
		method := http.MethodPost
		if head {
			method = http.MethodHead
		}
		r, h := parseH1(t, data, method, reused)
		if h.err == nil || !errors.Is(h.err, ErrReusedEOF) {
			checkInvariants(t, r, h, method)
		} else {
			assert.True(t, reused, "ErrReusedEOF on a new connection")
		}

		n := parseNetHTTP(data, method)
		switch {
		case h.err == nil && n.err == nil:
			require.Equal(t, n.status, h.status, "status")
			require.Equal(t, n.body, h.body, "body")
			return
		case h.err != nil && n.err != nil:
			return
		}
		for _, d := range rules {
			if d.explains(data, h, n) {
				return
			}
		}
		t.Fatalf("h1 and net/http disagree on %q:\nh1: status %d, error %v\nnet/http: status %d, error %v", data, h.status, h.err, n.status, n.err)
	})
}

// checkInvariants checks what h1 made of a response it accepted (its
// head at least).
func checkInvariants(t *testing.T, r *reply, h parsed, method string) {
	t.Helper()
	resp := &r.resp
	if resp.Body == nil {
		return // the head was refused
	}
	assert.GreaterOrEqual(t, resp.StatusCode, 100)
	assert.LessOrEqual(t, resp.StatusCode, 999)
	assert.False(t, resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols, "interim response %d returned", resp.StatusCode)
	if r.minor == 0 {
		assert.True(t, resp.Close, "HTTP/1.0 keeps the connection")
	}
	switch r.body.framing {
	case frameNone:
		assert.Equal(t, int64(0), resp.ContentLength)
		assert.Equal(t, http.NoBody, resp.Body)
	case frameLength:
		assert.Positive(t, resp.ContentLength)
		assert.False(t, resp.Chunked)
	case frameChunked:
		assert.True(t, resp.Chunked)
		assert.NotContains(t, resp.Header, "Transfer-Encoding")
		if r.sawLength {
			assert.True(t, resp.Close, "Content-Length with chunked keeps the connection")
			assert.Equal(t, int64(-1), resp.ContentLength)
		}
	case frameClose:
		assert.True(t, resp.Close)
		assert.Equal(t, int64(-1), resp.ContentLength)
		assert.False(t, resp.Chunked)
	default:
		t.Fatalf("framing %d", r.body.framing)
	}
	if r.body.framing != frameNone {
		assert.False(t, method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified || resp.StatusCode == http.StatusSwitchingProtocols,
			"body framing %d for %s %d", r.body.framing, method, resp.StatusCode)
	}
	if h.err == nil && r.body.framing == frameLength {
		assert.Equal(t, resp.ContentLength, int64(len(h.body)), "Content-Length body read to EOF")
	}
}

// TestDifferences shows each rule of differences at work: on its example,
// h1 and net/http disagree, and that rule alone explains it.
func TestDifferences(t *testing.T) {
	examples := map[string]string{
		"obs-fold is refused":                                "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
		"a space in a field name is refused":                 "HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n\r\n",
		"the status line is read strictly":                   "HTTP/1.1 +99 OK\r\nContent-Length: 0\r\n\r\n",
		"heads over 1 MiB and lines over 64 KiB are refused": "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", maxLine) + "\r\nContent-Length: 0\r\n\r\n",
		"Transfer-Encoding in HTTP/1.0 is refused":           "HTTP/1.0 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 0\r\n\r\n",
		"trailer sections are read line by line":             "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\n\n",
		"the Trailer field is not read":                      "HTTP/1.1 200 OK\r\nTrailer: Content-Length\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
	}
	rules := differences()
	require.Len(t, examples, len(rules), "one example per rule")
	for _, d := range rules {
		t.Run(d.name, func(t *testing.T) {
			data := []byte(examples[d.name])
			require.NotEmpty(t, data, "no example")
			_, h := parseH1(t, data, http.MethodPost, false)
			n := parseNetHTTP(data, http.MethodPost)
			require.NotEqual(t, h.err == nil, n.err == nil, "they agree: h1 %v, net/http %v", h.err, n.err)
			for _, other := range rules {
				assert.Equal(t, other.name == d.name, other.explains(data, h, n), "rule %q", other.name)
			}
		})
	}
}
