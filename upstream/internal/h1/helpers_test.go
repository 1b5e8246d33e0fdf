package h1

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests run the transport against real sockets on 127.0.0.1: a
// net/http server for what a well-behaved server sees, and a raw TCP
// server writing canned bytes for response framing and connection reuse.
// Nothing waits on a timer: each step waits on what it depends on (a
// channel, a read returning, a socket becoming readable).

// rig is a Transport, the Head of its POSTs to /mcp, and the server they
// go to: the setup every test shares.
type rig struct {
	tr   *Transport
	head *Head
	srv  *rawServer // nil for a net/http server
}

// newRig connects a Transport keeping maxIdle connections to addr.
func newRig(t *testing.T, addr string, maxIdle int) *rig {
	t.Helper()
	tr := NewTransport(addr, maxIdle)
	t.Cleanup(tr.CloseIdleConnections)
	return &rig{tr: tr, head: testHead(t, addr)}
}

// newRawRig starts a raw server running handle on each connection.
func newRawRig(t *testing.T, maxIdle int, handle func(c *srvConn)) *rig {
	t.Helper()
	srv := newRawServer(t, handle)
	r := newRig(t, srv.addr(), maxIdle)
	r.srv = srv
	return r
}

// testHead is the Head of a POST to /mcp at addr, as upstream renders one
// per session.
func testHead(t *testing.T, addr string) *Head {
	t.Helper()
	head, err := NewHead(http.MethodPost, "/mcp", addr, http.Header{
		"Content-Type":         {"application/json"},
		"Accept":               {"application/json, text/event-stream"},
		"Mcp-Protocol-Version": {"2025-11-25"},
	})
	require.NoError(t, err)
	return head
}

// do sends a POST of body and returns the response unread.
func (r *rig) do(ctx context.Context, body string, fields ...[2]string) (*Response, error) {
	return r.tr.Do(ctx, &Request{Head: r.head, Fields: fields, Body: []byte(body), WantHeader: true})
}

// post sends a POST of body and reads the whole answer.
func (r *rig) post(ctx context.Context, t *testing.T, body string) (*Response, string, error) {
	t.Helper()
	resp, err := r.do(ctx, body)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b), err
}

// idle returns a copy of the transport's idle list.
func (r *rig) idle() []*conn {
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	return append([]*conn(nil), r.tr.idle...)
}

// waitPeer blocks until the idle connection pc has news from the server:
// its FIN or RST, or bytes it sent unasked. It is what alive() looks for,
// waited for instead of polled, so that a test does not race the packet.
func waitPeer(t *testing.T, pc *conn) {
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

// --- a net/http server ---

// echoed is what the net/http server saw of one request.
type echoed struct {
	Method        string
	RequestURI    string
	Host          string
	ContentLength int64
	Header        http.Header
	Body          string
}

// newEchoRig starts a net/http server answering every request with what it
// saw of it, as JSON with a session id; conns counts the connections it
// accepted.
func newEchoRig(t *testing.T, maxIdle int) (*rig, *atomic.Int32) {
	t.Helper()
	conns := new(atomic.Int32)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Mcp-Session-Id", "s-1")
		_ = json.NewEncoder(w).Encode(echoed{
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
	return newRig(t, srv.Listener.Addr().String(), maxIdle), conns
}

// --- a raw server ---

// rawServer is a TCP server whose handler writes bytes of its choosing.
type rawServer struct {
	ln       net.Listener
	accepted atomic.Int32
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

// srvConn is one connection accepted by a rawServer; n counts from 1.
type srvConn struct {
	net.Conn
	br *bufio.Reader
	n  int
}

func newRawServer(t *testing.T, handle func(c *srvConn)) *rawServer {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &rawServer{ln: ln}
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
				handle(&srvConn{Conn: nc, br: bufio.NewReader(nc), n: int(n)})
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

func (s *rawServer) addr() string { return s.ln.Addr().String() }

// readRequest reads one request and its body.
func (c *srvConn) readRequest() (*http.Request, string, error) {
	req, err := http.ReadRequest(c.br)
	if err != nil {
		return nil, "", err
	}
	b, err := io.ReadAll(req.Body)
	return req, string(b), err
}

// waitClosed reads until the client ends the connection and returns the
// error that ended the read (io.EOF when the client closed it).
func (c *srvConn) waitClosed() error {
	_, err := io.Copy(io.Discard, c.br)
	if err == nil {
		err = io.EOF
	}
	return err
}

const respOK = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// canned answers the i-th request of the server (counted from 0 over every
// connection) with responses[i], the last one past the end. After a
// response listed in closeAfter, it closes the connection.
func canned(closeAfter map[int]bool, responses ...string) func(*srvConn) {
	var seq atomic.Int32
	return func(c *srvConn) {
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

// cannedThenClosed runs canned and then reports how the client ended the
// connection on closed.
func cannedThenClosed(closed chan<- error, responses ...string) func(*srvConn) {
	serve := canned(nil, responses...)
	return func(c *srvConn) {
		serve(c)
		closed <- c.waitClosed()
	}
}
