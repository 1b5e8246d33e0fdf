package upstream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of leanTransport run it against real sockets on 127.0.0.1: a
// net/http server for what a well-behaved upstream sees, and a raw TCP
// server writing canned bytes for response framing and connection reuse.
// Nothing waits on a timer: each step waits on what it depends on (a
// channel, a read returning, a socket becoming readable).

// leanURL is the URL of the MCP endpoint of a server at addr.
func leanURL(addr string) *url.URL {
	return &url.URL{Scheme: "http", Host: addr, Path: "/mcp"}
}

// leanHead renders the fixed part of a fast-path POST as httpConn does.
func leanHead(t *testing.T, addr string) []byte {
	t.Helper()
	head := renderHead(leanURL(addr), http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {"2025-11-25"},
	})
	require.NotNil(t, head)
	return head
}

// leanPost sends body on the fast path and reads the whole answer.
func leanPost(ctx context.Context, t *testing.T, lt *leanTransport, head []byte, body string) (*upResponse, string, error) {
	t.Helper()
	resp, err := lt.post(ctx, head, nil, []byte(body), true)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.body)
	resp.body.Close()
	return resp, string(b), err
}

// leanIdle returns a copy of the transport's idle list.
func leanIdle(lt *leanTransport) []*leanConn {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return append([]*leanConn(nil), lt.idle...)
}

// leanWaitPeer blocks until the idle connection pc has news from the server:
// its FIN or RST, or bytes it sent unasked. It is what alive() looks for,
// waited for instead of polled, so that a test does not race the packet.
func leanWaitPeer(t *testing.T, pc *leanConn) {
	t.Helper()
	if pc.br.Buffered() > 0 {
		return
	}
	require.NotNil(t, pc.raw)
	err := pc.raw.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EWOULDBLOCK && err != syscall.EINTR
	})
	require.NoError(t, err)
}

// --- against net/http ---

// leanEchoed is what the net/http server saw of one request.
type leanEchoed struct {
	Method        string
	RequestURI    string
	Host          string
	ContentLength int64
	Header        http.Header
	Body          string
}

// newLeanEchoServer starts a net/http server answering every request with
// what it saw of it, as JSON with a session id; conns counts the
// connections it accepted.
func newLeanEchoServer(t *testing.T) (srv *httptest.Server, conns *atomic.Int32) {
	t.Helper()
	conns = new(atomic.Int32)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "s-1")
		_ = json.NewEncoder(w).Encode(leanEchoed{
			Method: r.Method, RequestURI: r.RequestURI, Host: r.Host,
			ContentLength: r.ContentLength, Header: r.Header, Body: string(b),
		})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, conns
}

func TestLeanPostNetHTTP(t *testing.T) {
	srv, conns := newLeanEchoServer(t)
	addr := srv.Listener.Addr().String()
	lt := newLeanTransport(addr, 4)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, addr)

	const n = 20
	for i := range n {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i)
		hdrs := [][2]string{{"Mcp-Method", "ping"}, {"Authorization", fmt.Sprintf("Bearer t%d", i)}}
		resp, err := lt.post(t.Context(), head, hdrs, []byte(body), i%2 == 0)
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.body)
		require.NoError(t, err)
		require.NoError(t, resp.body.Close())

		assert.Equal(t, http.StatusOK, resp.status)
		assert.Equal(t, "application/json", resp.contentType)
		assert.Equal(t, int64(len(raw)), resp.length)
		if i%2 == 0 {
			assert.Equal(t, "s-1", resp.sessionID)
		} else {
			assert.Empty(t, resp.sessionID, "session id read without wantSession")
		}
		var got leanEchoed
		require.NoError(t, json.Unmarshal(raw, &got))
		assert.Equal(t, http.MethodPost, got.Method)
		assert.Equal(t, "/mcp", got.RequestURI)
		assert.Equal(t, addr, got.Host)
		assert.Equal(t, int64(len(body)), got.ContentLength)
		assert.Equal(t, body, got.Body)
		assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
		assert.Equal(t, "application/json, text/event-stream", got.Header.Get("Accept"))
		assert.Equal(t, "2025-11-25", got.Header.Get("Mcp-Protocol-Version"))
		assert.Equal(t, "mcpgw", got.Header.Get("User-Agent"))
		assert.Equal(t, "ping", got.Header.Get("Mcp-Method"))
		assert.Equal(t, fmt.Sprintf("Bearer t%d", i), got.Header.Get("Authorization"))
	}
	assert.Equal(t, int32(1), conns.Load(), "sequential calls share one connection")
	assert.Len(t, leanIdle(lt), 1)
}

func TestLeanPostConcurrent(t *testing.T) {
	srv, conns := newLeanEchoServer(t)
	addr := srv.Listener.Addr().String()
	const workers, calls = 8, 50
	lt := newLeanTransport(addr, workers)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, addr)

	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				body := fmt.Sprintf(`{"worker":%d,"call":%d,"pad":%q}`, w, i, strings.Repeat("x", i*97))
				resp, raw, err := leanPost(t.Context(), t, lt, head, body)
				if err != nil {
					errs <- err
					continue
				}
				var got leanEchoed
				if err := json.Unmarshal([]byte(raw), &got); err != nil {
					errs <- err
					continue
				}
				if resp.status != http.StatusOK || got.Body != body {
					errs <- fmt.Errorf("worker %d call %d: status %d, body %q", w, i, resp.status, got.Body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.LessOrEqual(t, conns.Load(), int32(workers), "a connection is dialled only when every open one is busy")
	assert.LessOrEqual(t, len(leanIdle(lt)), workers)
}

func TestLeanPostRejectsBadHeader(t *testing.T) {
	tests := []struct {
		name string
		hdr  [2]string
	}{
		{"CRLF in value", [2]string{"X-Evil", "a\r\nX-Injected: 1"}},
		{"LF in value", [2]string{"X-Evil", "a\nb"}},
		{"CR in value", [2]string{"X-Evil", "a\rb"}},
		{"NUL in value", [2]string{"X-Evil", "a\x00b"}},
		{"space in name", [2]string{"X Evil", "a"}},
		{"colon in name", [2]string{"X-Evil:", "a"}},
		{"empty name", [2]string{"", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, conns := newLeanEchoServer(t)
			addr := srv.Listener.Addr().String()
			lt := newLeanTransport(addr, 1)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, addr)

			_, err := lt.post(t.Context(), head, [][2]string{tt.hdr}, []byte(`{}`), false)
			require.ErrorIs(t, err, errLeanHeaderVal)

			// A good call after it is the server's first connection and
			// first request: connections are accepted in order, so the
			// refused call neither dialled nor sent anything.
			_, raw, err := leanPost(t.Context(), t, lt, head, `{"ok":true}`)
			require.NoError(t, err)
			var got leanEchoed
			require.NoError(t, json.Unmarshal([]byte(raw), &got))
			assert.Equal(t, `{"ok":true}`, got.Body)
			assert.Empty(t, got.Header.Get("X-Injected"))
			assert.Equal(t, int32(1), conns.Load())
		})
	}
}

func TestLeanRoundTripNetHTTP(t *testing.T) {
	srv, conns := newLeanEchoServer(t)
	addr := srv.Listener.Addr().String()
	lt := newLeanTransport(addr, 2)
	t.Cleanup(lt.CloseIdleConnections)

	tests := []struct {
		name, method, body string
		wantLength         int64 // Content-Length the server saw
	}{
		{"POST", http.MethodPost, `{"a":1}`, 7},
		{"POST empty", http.MethodPost, "", 0},
		{"GET", http.MethodGet, "", 0},
		{"DELETE", http.MethodDelete, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rb io.Reader
			if tt.body != "" {
				rb = strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+addr+"/mcp?x=1", rb)
			require.NoError(t, err)
			req.Header.Set("Mcp-Session-Id", "abc")
			req.Header.Set("User-Agent", "custom")
			req.Header.Set("Connection", "close") // the transport's business, not the caller's
			resp, err := lt.RoundTrip(req)
			require.NoError(t, err)
			raw, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "200 OK", resp.Status)
			assert.Equal(t, 1, resp.ProtoMinor)
			assert.Equal(t, "s-1", resp.Header.Get("Mcp-Session-Id"))
			assert.Equal(t, int64(len(raw)), resp.ContentLength)
			assert.Same(t, req, resp.Request)
			var got leanEchoed
			require.NoError(t, json.Unmarshal(raw, &got))
			assert.Equal(t, tt.method, got.Method)
			assert.Equal(t, "/mcp?x=1", got.RequestURI)
			assert.Equal(t, addr, got.Host)
			assert.Equal(t, tt.wantLength, got.ContentLength)
			assert.Equal(t, tt.body, got.Body)
			assert.Equal(t, "abc", got.Header.Get("Mcp-Session-Id"))
			assert.Equal(t, "custom", got.Header.Get("User-Agent"))
		})
	}
	assert.Equal(t, int32(1), conns.Load(), "Connection: close of the caller is not sent")

	t.Run("bad header", func(t *testing.T) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/mcp", nil)
		require.NoError(t, err)
		req.Header["X-Evil"] = []string{"a\r\nb"}
		_, err = lt.RoundTrip(req) //nolint:bodyclose // the request is refused: there is no response to close
		assert.ErrorIs(t, err, errLeanHeaderVal)
	})
}

// --- against a raw server ---

// leanSrv is a TCP server whose handler writes bytes of its choosing.
type leanSrv struct {
	ln       net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// leanSrvConn is one connection accepted by a leanSrv; n counts from 1.
type leanSrvConn struct {
	net.Conn
	br *bufio.Reader
	n  int
}

func newLeanSrv(t *testing.T, handle func(c *leanSrvConn)) *leanSrv {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &leanSrv{ln: ln}
	s.wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n := s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Go(func() {
				defer nc.Close()
				handle(&leanSrvConn{Conn: nc, br: bufio.NewReader(nc), n: int(n)})
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *leanSrv) addr() string { return s.ln.Addr().String() }

// readRequest reads one request and its body.
func (c *leanSrvConn) readRequest() (*http.Request, string, error) {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(req.Body)
	return req, string(b), err
}

// waitClosed reads until the client ends the connection and returns the
// error that ended the read (io.EOF when the client closed it).
func (c *leanSrvConn) waitClosed() error {
	_, err := io.Copy(io.Discard, c.br)
	if err == nil {
		err = io.EOF
	}
	return err
}

const leanOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// leanServeCanned answers the i-th request of the server (counted from 0 over
// every connection) with responses[i], the last one past the end. After a
// response listed in closeAfter, it closes the connection.
func leanServeCanned(closeAfter map[int]bool, responses ...string) func(*leanSrvConn) {
	var seq atomic.Int32
	return func(c *leanSrvConn) {
		for {
			if _, _, err := c.readRequest(); err != nil {
				return
			}
			i := int(seq.Add(1)) - 1
			r := responses[min(i, len(responses)-1)]
			if _, err := io.WriteString(c, r); err != nil {
				return
			}
			if closeAfter[i] {
				return
			}
		}
	}
}

func TestLeanFraming(t *testing.T) {
	tests := []struct {
		name        string
		response    string
		serverClose bool // the server closes the connection after it
		wantStatus  int
		wantBody    string
		wantLength  int64
		wantType    string
		wantSession string
		wantReused  bool // the next request goes on the same connection
	}{
		{
			name:       "Content-Length",
			response:   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":true}",
			wantStatus: 200, wantBody: `{"id":true}`, wantLength: 11, wantType: "application/json", wantReused: true,
		},
		{
			name:       "case-insensitive names and session id",
			response:   "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nMCP-SESSION-ID:   sess-9  \r\ncontent-length: 4\r\n\r\ndata",
			wantStatus: 200, wantBody: "data", wantLength: 4, wantType: "text/event-stream", wantSession: "sess-9", wantReused: true,
		},
		{
			name:       "bare LF line endings",
			response:   "HTTP/1.1 200 OK\nContent-Length: 2\n\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantReused: true,
		},
		{
			name:       "chunked with trailers",
			response:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n",
			wantStatus: 200, wantBody: "hello world", wantLength: -1, wantReused: true,
		},
		{
			name:       "chunked without trailers",
			response:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "hi", wantLength: -1, wantReused: true,
		},
		{
			name:       "interim responses skipped",
			response:   "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\nMcp-Session-Id: s\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantSession: "s", wantReused: true,
		},
		{
			name:       "interim response fields do not leak",
			response:   "HTTP/1.1 103 Early Hints\r\nContent-Type: text/plain\r\nMcp-Session-Id: early\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantReused: true,
		},
		{
			name:       "204 has no body",
			response:   "HTTP/1.1 204 No Content\r\n\r\n",
			wantStatus: 204, wantLength: 0, wantReused: true,
		},
		{
			name:       "304 has no body",
			response:   "HTTP/1.1 304 Not Modified\r\n\r\n",
			wantStatus: 304, wantLength: 0, wantReused: true,
		},
		{
			name:       "202 with Content-Length 0",
			response:   "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
			wantStatus: 202, wantLength: 0, wantReused: true,
		},
		{
			name:        "read until close",
			response:    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\":\"close\"}",
			serverClose: true,
			wantStatus:  200, wantBody: `{"until":"close"}`, wantLength: -1, wantType: "application/json",
		},
		{
			name:       "Connection: close",
			response:   "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2,
		},
		{
			name:       "Connection: close on 204",
			response:   "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
			wantStatus: 204, wantLength: 0,
		},
		{
			name:       "HTTP/1.0 with Content-Length",
			response:   "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2,
		},
		{
			name:        "HTTP/1.0 until close",
			response:    "HTTP/1.0 200 OK\r\n\r\nhello",
			serverClose: true,
			wantStatus:  200, wantBody: "hello", wantLength: -1,
		},
		{
			name:       "Content-Length and chunked: chunked wins, connection dropped",
			response:   "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
			wantStatus: 200, wantBody: "hi", wantLength: -1,
		},
		{
			name:       "repeated equal Content-Length",
			response:   "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantReused: true,
		},
		{
			name:       "status without reason",
			response:   "HTTP/1.1 500\r\nContent-Length: 3\r\n\r\nbad",
			wantStatus: 500, wantBody: "bad", wantLength: 3, wantReused: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLeanSrv(t, leanServeCanned(map[int]bool{0: tt.serverClose}, tt.response, leanOK))
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, srv.addr())

			resp, body, err := leanPost(t.Context(), t, lt, head, `{"first":1}`)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.status)
			assert.Equal(t, tt.wantBody, body)
			assert.Equal(t, tt.wantLength, resp.length)
			assert.Equal(t, tt.wantType, resp.contentType)
			assert.Equal(t, tt.wantSession, resp.sessionID)
			if tt.wantReused {
				assert.Len(t, leanIdle(lt), 1, "connection back in the pool")
			} else {
				assert.Empty(t, leanIdle(lt), "connection not kept")
			}

			// A second request proves the first response was consumed to
			// its last byte: on the same connection it would otherwise
			// read leftovers as its status line.
			resp, body, err = leanPost(t.Context(), t, lt, head, `{"second":2}`)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.status)
			assert.Equal(t, "ok", body)
			want := int32(2)
			if tt.wantReused {
				want = 1
			}
			assert.Equal(t, want, srv.accepted.Load(), "connections accepted")
		})
	}
}

func TestLeanRoundTripFraming(t *testing.T) {
	tests := []struct {
		name, method, response string
		wantBody               string
		wantLength             int64
		wantTE                 []string
		wantHeader             http.Header
		wantClose              bool
		wantProto              string
	}{
		{
			name: "chunked", method: http.MethodGet,
			response: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n2\r\nhi\r\n0\r\nX-T: t\r\n\r\n",
			wantBody: "hi", wantLength: -1, wantTE: []string{"chunked"},
			wantHeader: http.Header{"X-A": {"1", "2"}}, wantProto: "HTTP/1.1",
		},
		{
			name: "HEAD has no body", method: http.MethodHead,
			response:   "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			wantLength: -2, wantHeader: http.Header{"Content-Length": {"1234"}}, wantProto: "HTTP/1.1",
		},
		{
			name: "HTTP/1.0", method: http.MethodDelete,
			response: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantBody: "hi", wantLength: 2, wantHeader: http.Header{"Content-Length": {"2"}},
			wantClose: true, wantProto: "HTTP/1.0",
		},
		{
			name: "interim fields dropped", method: http.MethodGet,
			response: "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantBody: "hi", wantLength: 2, wantHeader: http.Header{"Content-Length": {"2"}}, wantProto: "HTTP/1.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLeanSrv(t, leanServeCanned(nil, tt.response))
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+srv.addr()+"/sse", nil)
			require.NoError(t, err)
			resp, err := lt.RoundTrip(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tt.wantBody, string(b))
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			if tt.wantLength != -2 { // HEAD: see the report on ContentLength
				assert.Equal(t, tt.wantLength, resp.ContentLength)
			}
			assert.Equal(t, tt.wantTE, resp.TransferEncoding)
			assert.Equal(t, tt.wantHeader, resp.Header)
			assert.Equal(t, tt.wantClose, resp.Close)
			assert.Equal(t, tt.wantProto, resp.Proto)
		})
	}
}

func TestLeanMalformed(t *testing.T) {
	var big strings.Builder
	big.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; big.Len() <= leanMaxHeaderBytes; i++ {
		fmt.Fprintf(&big, "X-Pad-%d: %s\r\n", i, strings.Repeat("a", 60000))
	}
	big.WriteString("Content-Length: 0\r\n\r\n")

	tests := []struct {
		name     string
		response string
		reused   bool // sent on a reused connection
	}{
		{"status code not digits", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", false},
		{"status code below 100", "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false},
		{"not HTTP", "ICY 200 OK\r\n\r\n", false},
		{"no space after code", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", false},
		{"short status line", "HTTP/1.1 20\r\n\r\n", false},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n", false},
		{"obs-fold with tab", "HTTP/1.1 200 OK\r\nX-A: a\r\n\tfolded\r\nContent-Length: 0\r\n\r\n", false},
		{"two Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", false},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi", false},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false},
		{"Content-Length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 9999999999999999999\r\n\r\n", false},
		{"Transfer-Encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", false},
		{"Transfer-Encoding gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false},
		{"Transfer-Encoding twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false},
		{"header without colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", false},
		{"header with empty name", "HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n", false},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false},
		{"line longer than the limit", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("b", leanMaxLine) + "\r\n\r\n", false},
		{"head larger than the limit", big.String(), false},
		{"malformed on a reused connection", "HTTP/1.1 2OO OK\r\n\r\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			responses := []string{tt.response}
			if tt.reused {
				responses = []string{leanOK, tt.response}
			}
			closed := make(chan error, 2)
			srv := newLeanSrv(t, func(c *leanSrvConn) {
				leanServeCanned(nil, responses...)(c)
				closed <- c.waitClosed()
			})
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, srv.addr())
			if tt.reused {
				_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
				require.NoError(t, err)
			}

			_, err := lt.post(t.Context(), head, nil, []byte(`{}`), true)
			require.ErrorIs(t, err, errLeanMalformed)
			assert.Empty(t, leanIdle(lt))
			// The connection is dropped: the server's next read ends.
			// (When the server was still writing the oversized head, the
			// end is a reset rather than a clean EOF.)
			require.Error(t, <-closed)
			assert.Equal(t, int32(1), srv.accepted.Load())
		})
	}
}

func TestLeanTruncatedResponse(t *testing.T) {
	tests := []struct {
		name, response string
		headErr        bool // post fails; otherwise reading the body fails
	}{
		{"EOF in status line", "HTTP/1.1 20", true},
		{"EOF in headers", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n", true},
		{"EOF before any byte", "", true},
		{"short Content-Length body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhi", false},
		{"EOF inside a chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhi", false},
		{"EOF before the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n", false},
		{"EOF in trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-T: 1\r\n", false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhi\r\n0\r\n\r\n", false},
		{"malformed trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n no-colon\r\n\r\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLeanSrv(t, leanServeCanned(map[int]bool{0: true}, tt.response))
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			resp, err := lt.post(t.Context(), leanHead(t, srv.addr()), nil, []byte(`{}`), false)
			if tt.headErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, errLeanReusedEOF, "a new connection is not a reused one")
				return
			}
			require.NoError(t, err)
			_, err = io.ReadAll(resp.body)
			require.Error(t, err)
			require.NotErrorIs(t, err, io.EOF)
			require.NoError(t, resp.body.Close())
			assert.Empty(t, leanIdle(lt), "a failed body does not return its connection")
		})
	}
}

// --- connection reuse and staleness ---

func TestLeanStaleIdleConnection(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c *leanSrvConn) // after answering the first request
	}{
		{"server closes", func(c *leanSrvConn) { c.Close() }},
		{"server resets", func(c *leanSrvConn) {
			_ = c.Conn.(*net.TCPConn).SetLinger(0)
			c.Close()
		}},
		{"server sends unasked bytes", func(c *leanSrvConn) {
			_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
			_ = c.waitClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newLeanSrv(t, func(c *leanSrvConn) {
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", c.n); err != nil {
					return
				}
				if c.n == 1 {
					tt.serve(c)
					return
				}
				leanServeCanned(nil, leanOK)(c)
			})
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, srv.addr())

			_, body, err := leanPost(t.Context(), t, lt, head, `{}`)
			require.NoError(t, err)
			require.Equal(t, "1", body)
			idle := leanIdle(lt)
			require.Len(t, idle, 1)
			leanWaitPeer(t, idle[0])

			_, body, err = leanPost(t.Context(), t, lt, head, `{}`)
			require.NoError(t, err, "a connection the server ended is not used")
			assert.Equal(t, "2", body)
			assert.Equal(t, int32(2), srv.accepted.Load())
		})
	}
}

func TestLeanRetryWriteOnReusedConnection(t *testing.T) {
	// The server resets the connection after its first answer. alive()
	// would see it; it is made blind (raw = nil, as for a connection that
	// offers no syscall access) so that the write is what fails, which
	// exchange resends once on a new connection.
	var requests atomic.Int32
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		for {
			if _, _, err := c.readRequest(); err != nil {
				return
			}
			requests.Add(1)
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", c.n); err != nil {
				return
			}
			if c.n == 1 {
				_ = c.Conn.(*net.TCPConn).SetLinger(0)
				return
			}
		}
	})
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, srv.addr())

	_, body, err := leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)
	require.Equal(t, "1", body)
	idle := leanIdle(lt)
	require.Len(t, idle, 1)
	leanWaitPeer(t, idle[0])
	// Consume the reset so that only the write can report it.
	var b [1]byte
	_, _ = idle[0].nc.Read(b[:])
	idle[0].raw = nil

	_, body, err = leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "2", body)
	assert.Equal(t, int32(2), srv.accepted.Load())
	assert.Equal(t, int32(2), requests.Load(), "the failed write reached no server")
}

func TestLeanReusedEOF(t *testing.T) {
	tests := []struct {
		name  string
		reset bool
	}{
		{"close", false},
		{"reset", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server answers the first request, reads the second and
			// closes without answering: alive() passed (the server was
			// waiting for the request), the request was sent, and nothing
			// tells whether the server acted on it.
			var requests atomic.Int32
			srv := newLeanSrv(t, func(c *leanSrvConn) {
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				requests.Add(1)
				if _, err := io.WriteString(c, leanOK); err != nil {
					return
				}
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				requests.Add(1)
				if tt.reset {
					_ = c.Conn.(*net.TCPConn).SetLinger(0)
				}
			})
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, srv.addr())

			_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
			require.NoError(t, err)
			_, err = lt.post(t.Context(), head, nil, []byte(`{}`), false)
			require.ErrorIs(t, err, errLeanReusedEOF)
			assert.Equal(t, int32(2), requests.Load())
			assert.Equal(t, int32(1), srv.accepted.Load(), "not resent")
			assert.Empty(t, leanIdle(lt))
		})
	}
}

func TestLeanNewConnectionEOF(t *testing.T) {
	// On a connection just dialled, a server that closes without
	// answering is not mistaken for a stale keep-alive connection.
	srv := newLeanSrv(t, func(c *leanSrvConn) { _, _, _ = c.readRequest() })
	lt := newLeanTransport(srv.addr(), 2)
	_, err := lt.post(t.Context(), leanHead(t, srv.addr()), nil, []byte(`{}`), false)
	require.Error(t, err)
	require.NotErrorIs(t, err, errLeanReusedEOF)
	assert.ErrorIs(t, err, io.EOF)
}

func TestLeanIdleLIFO(t *testing.T) {
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		for {
			if _, _, err := c.readRequest(); err != nil {
				return
			}
			if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", c.n); err != nil {
				return
			}
		}
	})
	lt := newLeanTransport(srv.addr(), 4)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, srv.addr())

	// Two responses held open at once take two connections.
	a, err := lt.post(t.Context(), head, nil, []byte(`{}`), false)
	require.NoError(t, err)
	b, err := lt.post(t.Context(), head, nil, []byte(`{}`), false)
	require.NoError(t, err)
	ba, err := io.ReadAll(a.body)
	require.NoError(t, err)
	bb, err := io.ReadAll(b.body)
	require.NoError(t, err)
	assert.Equal(t, []string{"1", "2"}, []string{string(ba), string(bb)})
	require.Len(t, leanIdle(lt), 2)

	// The connection used last is used first.
	_, body, err := leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "2", body)
	assert.Equal(t, int32(2), srv.accepted.Load())
}

func TestLeanIdleCap(t *testing.T) {
	closed := make(chan int, 3)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"); err != nil {
			return
		}
		if errors.Is(c.waitClosed(), io.EOF) {
			closed <- c.n
		}
	})
	lt := newLeanTransport(srv.addr(), 1)
	head := leanHead(t, srv.addr())

	var resps []*upResponse
	for range 3 {
		r, err := lt.post(t.Context(), head, nil, []byte(`{}`), false)
		require.NoError(t, err)
		resps = append(resps, r)
	}
	require.Equal(t, int32(3), srv.accepted.Load(), "a busy connection is not shared")
	for _, r := range resps {
		b, err := io.ReadAll(r.body)
		require.NoError(t, err)
		require.Equal(t, "x", string(b))
	}
	assert.Len(t, leanIdle(lt), 1, "maxIdle connections are kept")
	// The two finished last were closed: the pool was full.
	got := []int{<-closed, <-closed}
	assert.ElementsMatch(t, []int{2, 3}, got)

	lt.CloseIdleConnections()
	assert.Equal(t, 1, <-closed, "CloseIdleConnections closes the idle one")
	assert.Empty(t, leanIdle(lt))

	// The transport stays usable.
	_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)
	assert.Equal(t, int32(4), srv.accepted.Load())
	lt.CloseIdleConnections()
	assert.Equal(t, 4, <-closed)
}

func TestLeanMaxIdleZero(t *testing.T) {
	closed := make(chan error, 1)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		leanServeCanned(nil, leanOK)(c)
		closed <- nil
	})
	lt := newLeanTransport(srv.addr(), 0)
	_, _, err := leanPost(t.Context(), t, lt, leanHead(t, srv.addr()), `{}`)
	require.NoError(t, err)
	<-closed
	assert.Empty(t, leanIdle(lt))
}

func TestLeanIdleTimeout(t *testing.T) {
	t.Run("expired connection not reused", func(t *testing.T) {
		closed := make(chan int, 2)
		srv := newLeanSrv(t, func(c *leanSrvConn) {
			leanServeCanned(nil, leanOK)(c)
			closed <- c.n
		})
		lt := newLeanTransport(srv.addr(), 2)
		t.Cleanup(lt.CloseIdleConnections)
		var clock atomic.Int64
		clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		lt.now = func() time.Time { return time.Unix(0, clock.Load()) }
		head := leanHead(t, srv.addr())

		_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
		require.NoError(t, err)
		clock.Add(int64(lt.idleTimeout - 1))
		_, _, err = leanPost(t.Context(), t, lt, head, `{}`)
		require.NoError(t, err)
		assert.Equal(t, int32(1), srv.accepted.Load(), "within idleTimeout")

		clock.Add(int64(lt.idleTimeout))
		_, _, err = leanPost(t.Context(), t, lt, head, `{}`)
		require.NoError(t, err)
		assert.Equal(t, int32(2), srv.accepted.Load(), "past idleTimeout")
		assert.Equal(t, 1, <-closed, "the expired connection is closed")
	})

	t.Run("sweep closes idle connections", func(t *testing.T) {
		closed := make(chan int, 2)
		srv := newLeanSrv(t, func(c *leanSrvConn) {
			leanServeCanned(nil, leanOK)(c)
			closed <- c.n
		})
		lt := newLeanTransport(srv.addr(), 2)
		t.Cleanup(lt.CloseIdleConnections)
		// The sweep timer fires idleTimeout after the connection went
		// idle, by then the connection is idle for idleTimeout.
		lt.idleTimeout = time.Millisecond
		_, _, err := leanPost(t.Context(), t, lt, leanHead(t, srv.addr()), `{}`)
		require.NoError(t, err)
		assert.Equal(t, 1, <-closed)
		// The server saw the close after the sweep emptied the list.
		assert.Empty(t, leanIdle(lt))
		lt.mu.Lock()
		assert.Nil(t, lt.sweep, "the sweep stops with no idle connection")
		lt.mu.Unlock()
	})
}

// --- cancellation ---

func TestLeanCancelWaitingForHead(t *testing.T) {
	tests := []struct {
		name   string
		reused bool
	}{
		{"new connection", false},
		{"reused connection", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make(chan struct{}, 1)
			closed := make(chan error, 1)
			srv := newLeanSrv(t, func(c *leanSrvConn) {
				if tt.reused {
					if _, _, err := c.readRequest(); err != nil {
						return
					}
					if _, err := io.WriteString(c, leanOK); err != nil {
						return
					}
				}
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				got <- struct{}{}
				closed <- c.waitClosed() // never answers
			})
			lt := newLeanTransport(srv.addr(), 2)
			t.Cleanup(lt.CloseIdleConnections)
			head := leanHead(t, srv.addr())
			if tt.reused {
				_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
				require.NoError(t, err)
			}

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := lt.post(ctx, head, nil, []byte(`{}`), false)
				done <- err
			}()
			<-got
			cancel()
			err := <-done
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, ctx.Err(), err)
			require.ErrorIs(t, <-closed, io.EOF, "the connection is closed")
			assert.Empty(t, leanIdle(lt))
			assert.Equal(t, int32(1), srv.accepted.Load())
		})
	}
}

func TestLeanCancelReadingBody(t *testing.T) {
	closed := make(chan error, 1)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"); err != nil {
			return
		}
		closed <- c.waitClosed()
	})
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := lt.post(ctx, leanHead(t, srv.addr()), nil, []byte(`{}`), false)
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(resp.body, buf)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.body)
		done <- err
	}()
	cancel()
	require.Error(t, <-done, "the read blocked on the rest of the body ends")
	require.ErrorIs(t, <-closed, io.EOF)
	assert.Empty(t, leanIdle(lt))
	require.NoError(t, resp.body.Close())
}

func TestLeanCancelAfterBodyKeepsConnection(t *testing.T) {
	srv := newLeanSrv(t, leanServeCanned(nil, leanOK))
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, srv.addr())

	ctx, cancel := context.WithCancel(t.Context())
	_, body, err := leanPost(ctx, t, lt, head, `{}`)
	require.NoError(t, err)
	require.Equal(t, "ok", body)
	// The abort of the finished call was unregistered: cancelling its
	// context now does not set a deadline on the pooled connection.
	cancel()

	for range 3 {
		_, body, err = leanPost(t.Context(), t, lt, head, `{}`)
		require.NoError(t, err)
		assert.Equal(t, "ok", body)
	}
	assert.Equal(t, int32(1), srv.accepted.Load())
}

func TestLeanCancelledContextLeavesPoolClean(t *testing.T) {
	// With a context cancelled before the call, the abort races the
	// exchange; whichever wins, the pool must not keep a connection whose
	// deadline is in the past.
	srv := newLeanSrv(t, leanServeCanned(nil, leanOK))
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, srv.addr())
	_, _, err := leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)

	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err := leanPost(ctx, t, lt, head, `{}`)
		if err != nil {
			// context.Canceled before the head, a deadline error reading
			// the body (the caller then checks ctx.Err()).
			assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
		}
		_, body, err := leanPost(t.Context(), t, lt, head, `{}`)
		require.NoError(t, err)
		assert.Equal(t, "ok", body)
	}
}

func TestLeanBodyCloseBeforeEOF(t *testing.T) {
	closed := make(chan error, 2)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		leanServeCanned(nil, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")(c)
		closed <- c.waitClosed()
	})
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	head := leanHead(t, srv.addr())

	resp, err := lt.post(t.Context(), head, nil, []byte(`{}`), false)
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(resp.body, buf)
	require.NoError(t, err)
	require.NoError(t, resp.body.Close())
	require.NoError(t, resp.body.Close(), "Close twice")
	_, err = resp.body.Read(buf)
	require.ErrorIs(t, err, errLeanAborted, "read after Close")
	require.ErrorIs(t, <-closed, io.EOF, "Close before EOF closes the connection")
	assert.Empty(t, leanIdle(lt))

	_, body, err := leanPost(t.Context(), t, lt, head, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "hello", body)
	assert.Equal(t, int32(2), srv.accepted.Load())

	// Close after EOF leaves the connection in the pool.
	assert.Len(t, leanIdle(lt), 1)
}

func TestLeanBodyCloseUnblocksRead(t *testing.T) {
	closed := make(chan error, 1)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {}\n\n"); err != nil {
			return
		}
		closed <- c.waitClosed() // keeps the stream open
	})
	lt := newLeanTransport(srv.addr(), 2)
	t.Cleanup(lt.CloseIdleConnections)
	// A context that is never cancelled, as for a drain that outlives its
	// call: only Close can end the Read.
	resp, err := lt.post(context.WithoutCancel(t.Context()), leanHead(t, srv.addr()), nil, []byte(`{}`), false)
	require.NoError(t, err)
	lb, ok := resp.body.(*leanBody)
	require.True(t, ok)
	buf := make([]byte, len("data: {}\n\n"))
	_, err = io.ReadFull(lb, buf)
	require.NoError(t, err)

	readDone := make(chan error, 1)
	go func() {
		_, err := lb.Read(buf)
		readDone <- err
	}()
	// Wait until the Read holds the body's lock: it is blocked on the
	// connection, as sseReader.next is when the drain timer fires.
	for lb.mu.TryLock() {
		lb.mu.Unlock()
		runtime.Gosched()
	}
	go lb.Close()
	select {
	case err := <-readDone:
		require.Error(t, err)
	case <-time.After(10 * time.Second): // a hang guard, not a threshold
		t.Fatal("Close did not end a Read blocked on the connection")
	}
	assert.ErrorIs(t, <-closed, io.EOF)
}

// --- fuzzing ---

// leanNopConn is a net.Conn that accepts writes and reads nothing.
type leanNopConn struct{}

func (leanNopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (leanNopConn) Write(b []byte) (int, error)      { return len(b), nil }
func (leanNopConn) Close() error                     { return nil }
func (leanNopConn) LocalAddr() net.Addr              { return nil }
func (leanNopConn) RemoteAddr() net.Addr             { return nil }
func (leanNopConn) SetDeadline(time.Time) error      { return nil }
func (leanNopConn) SetReadDeadline(time.Time) error  { return nil }
func (leanNopConn) SetWriteDeadline(time.Time) error { return nil }

func FuzzLeanResponse(f *testing.F) {
	for _, s := range []string{
		leanOK,
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
	} {
		f.Add([]byte(s), false, false)
	}
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), true, true)

	f.Fuzz(func(t *testing.T, data []byte, head, reused bool) {
		lt := newLeanTransport("fuzz.invalid:80", 0) // nothing is pooled
		pc := &leanConn{t: lt, nc: leanNopConn{}, br: bufio.NewReaderSize(bytes.NewReader(data), leanReadBuffer), reused: reused, abort: func() {}}
		method := http.MethodPost
		if head {
			method = http.MethodHead
		}
		rh := respHead{wantSession: true, header: http.Header{}}
		body, err := pc.roundTrip(t.Context(), []byte("POST / HTTP/1.1\r\n\r\n"), method, &rh)
		if err != nil {
			if errors.Is(err, errLeanReusedEOF) {
				assert.True(t, reused, "errLeanReusedEOF on a new connection")
			}
			return
		}
		defer body.Close()

		assert.GreaterOrEqual(t, rh.status, 100)
		assert.LessOrEqual(t, rh.status, 999)
		assert.False(t, rh.status < 200 && rh.status != http.StatusSwitchingProtocols, "interim response %d returned", rh.status)
		if rh.minor == 0 {
			assert.True(t, rh.close, "HTTP/1.0 keeps the connection")
		}
		switch rh.framing {
		case frameNone:
			assert.Equal(t, int64(0), rh.length)
			assert.Equal(t, http.NoBody, body)
		case frameLength:
			assert.Positive(t, rh.length)
			assert.False(t, rh.chunked)
		case frameChunked:
			assert.True(t, rh.chunked)
			assert.NotContains(t, rh.header, "Transfer-Encoding")
			if rh.lengths > 0 {
				assert.True(t, rh.close, "Content-Length with chunked keeps the connection")
				assert.Equal(t, int64(-1), rh.length)
			}
		case frameClose:
			assert.True(t, rh.close)
			assert.Equal(t, int64(-1), rh.length)
			assert.False(t, rh.chunked)
		default:
			t.Fatalf("framing %d", rh.framing)
		}
		if rh.framing != frameNone {
			assert.False(t, head || rh.status == http.StatusNoContent || rh.status == http.StatusNotModified, "body framing %d for %s %d", rh.framing, method, rh.status)
		}

		n, err := io.Copy(io.Discard, io.LimitReader(body, 1<<20))
		if err == nil && n < 1<<20 && rh.framing == frameLength {
			assert.Equal(t, rh.length, n, "Content-Length body read to EOF")
		}
	})
}

func TestLeanCloseRefusesAndClosesReturns(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := newLeanSrv(t, func(c *leanSrvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"); err != nil {
			return
		}
		if errors.Is(c.waitClosed(), io.EOF) {
			closed <- struct{}{}
		}
	})
	lt := newLeanTransport(srv.addr(), 4)
	head := leanHead(t, srv.addr())
	r, err := lt.post(t.Context(), head, nil, []byte(`{}`), false)
	require.NoError(t, err)

	// Closed while a response is still being read: the connection is
	// closed when the body ends instead of going back to the pool.
	lt.Close()
	b, err := io.ReadAll(r.body)
	require.NoError(t, err)
	assert.Equal(t, "x", string(b))
	<-closed
	assert.Empty(t, leanIdle(lt))

	_, err = lt.post(t.Context(), head, nil, []byte(`{}`), false)
	require.ErrorIs(t, err, errLeanClosed)
	assert.Equal(t, int32(1), srv.accepted.Load())
}
