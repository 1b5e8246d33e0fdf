package h1

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// --- requests, against net/http ---

func TestDoNetHTTP(t *testing.T) {
	r, conns := newEchoRig(t, 4)
	addr := r.tr.host

	const n = 20
	for i := range n {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i)
		fields := [][2]string{{"Mcp-Method", "ping"}, {"Authorization", fmt.Sprintf("Bearer t%d", i)}}
		resp, err := r.tr.Do(t.Context(), &Request{Head: r.head, Fields: fields, Body: []byte(body), WantHeader: i%2 == 0})
		require.NoError(t, err)
		raw, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())

		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "application/json", resp.ContentType)
		assert.Equal(t, int64(len(raw)), resp.ContentLength)
		if i%2 == 0 {
			assert.Equal(t, "s-1", resp.Header.Get("Mcp-Session-Id"))
		} else {
			assert.Nil(t, resp.Header, "no header map without WantHeader")
		}
		var got echoed
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
	assert.Len(t, r.idle(), 1)
}

func TestDoFieldsReplaceHead(t *testing.T) {
	r, _ := newEchoRig(t, 1)
	head, err := NewHead(http.MethodPost, "/mcp", r.tr.host, http.Header{
		"Accept":    {"a", "b"},
		"X-Session": {"s"},
		"X-Static":  {"kept"},
		"Host":      {"ignored.example"},
	})
	require.NoError(t, err)
	resp, err := r.tr.Do(t.Context(), &Request{Head: head, Body: []byte(`{}`), Fields: [][2]string{
		{"accept", "text/plain"}, // every Accept of the head, whatever the case
		{"X-Session", "s2"},
		{"User-Agent", "custom"},      // the default one
		{"Content-Length", "999"},     // the transport's own: ignored
		{"Host", "evil.example"},      // likewise
		{"Transfer-Encoding", "gzip"}, // likewise
		{"Connection", "close"},       // likewise
		{"X-Extra", "1"},
		{"X-Extra", "2"},
	}})
	require.NoError(t, err)
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var got echoed
	require.NoError(t, json.Unmarshal(raw, &got))
	assert.Equal(t, []string{"text/plain"}, got.Header.Values("Accept"))
	assert.Equal(t, []string{"s2"}, got.Header.Values("X-Session"))
	assert.Equal(t, []string{"kept"}, got.Header.Values("X-Static"))
	assert.Equal(t, []string{"custom"}, got.Header.Values("User-Agent"))
	assert.Equal(t, []string{"1", "2"}, got.Header.Values("X-Extra"))
	assert.Equal(t, r.tr.host, got.Host)
	assert.Equal(t, int64(2), got.ContentLength)
	assert.Equal(t, `{}`, got.Body)
	assert.Empty(t, got.Header.Values("Connection"))
	assert.Len(t, r.idle(), 1, "the connection is kept")
}

func TestDoConcurrent(t *testing.T) {
	const workers, calls = 8, 50
	r, conns := newEchoRig(t, workers)

	var wg sync.WaitGroup
	errs := make(chan error, workers*calls)
	for w := range workers {
		wg.Go(func() {
			for i := range calls {
				body := fmt.Sprintf(`{"worker":%d,"call":%d,"pad":%q}`, w, i, strings.Repeat("x", i*97))
				resp, raw, err := r.post(t.Context(), t, body)
				if err != nil {
					errs <- err
					continue
				}
				var got echoed
				if err := json.Unmarshal([]byte(raw), &got); err != nil {
					errs <- err
					continue
				}
				if resp.StatusCode != http.StatusOK || got.Body != body {
					errs <- fmt.Errorf("worker %d call %d: status %d, body %q", w, i, resp.StatusCode, got.Body)
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
	assert.LessOrEqual(t, len(r.idle()), workers)
}

func TestDoRejectsBadField(t *testing.T) {
	tests := []struct {
		name  string
		field [2]string
	}{
		{"CRLF in value", [2]string{"X-Evil", "a\r\nX-Injected: 1"}},
		{"LF in value", [2]string{"X-Evil", "a\nb"}},
		{"CR in value", [2]string{"X-Evil", "a\rb"}},
		{"NUL in value", [2]string{"X-Evil", "a\x00b"}},
		{"space in name", [2]string{"X Evil", "a"}},
		{"colon in name", [2]string{"X-Evil:", "a"}},
		{"empty name", [2]string{"", "a"}},
		{"bad reserved name", [2]string{"Host", "a\r\nX-Injected: 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, conns := newEchoRig(t, 1)

			_, err := r.do(t.Context(), `{}`, tt.field)
			require.ErrorIs(t, err, ErrInvalidHead)

			// A good call after it is the server's first connection and
			// first request: connections are accepted in order, so the
			// refused call neither dialled nor sent anything.
			_, raw, err := r.post(t.Context(), t, `{"ok":true}`)
			require.NoError(t, err)
			var got echoed
			require.NoError(t, json.Unmarshal([]byte(raw), &got))
			assert.Equal(t, `{"ok":true}`, got.Body)
			assert.Empty(t, got.Header.Get("X-Injected"))
			assert.Equal(t, int32(1), conns.Load())
		})
	}
}

func TestNewHeadRejects(t *testing.T) {
	tests := []struct {
		name, method, target, host string
		header                     http.Header
	}{
		{name: "empty method", target: "/", host: "h"},
		{name: "space in method", method: "GE T", target: "/", host: "h"},
		{name: "empty target", method: "GET", host: "h"},
		{name: "space in target", method: "GET", target: "/a b", host: "h"},
		{name: "CRLF in target", method: "GET", target: "/\r\nX: 1", host: "h"},
		{name: "empty host", method: "GET", target: "/"},
		{name: "CRLF in host", method: "GET", target: "/", host: "h\r\nX: 1"},
		{name: "CRLF in a value", method: "GET", target: "/", host: "h", header: http.Header{"X-A": {"ok", "a\r\nb"}}},
		{name: "bad name", method: "GET", target: "/", host: "h", header: http.Header{"X A": {"v"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHead(tt.method, tt.target, tt.host, tt.header)
			assert.ErrorIs(t, err, ErrInvalidHead)
		})
	}
}

func TestRoundTripNetHTTP(t *testing.T) {
	r, conns := newEchoRig(t, 2)
	addr := r.tr.host

	tests := []struct {
		name, method, body string
		wantMethod         string
		wantLength         int64 // Content-Length the server saw
	}{
		{"POST", http.MethodPost, `{"a":1}`, http.MethodPost, 7},
		{"POST empty", http.MethodPost, "", http.MethodPost, 0},
		{"GET", http.MethodGet, "", http.MethodGet, 0},
		{"DELETE", http.MethodDelete, "", http.MethodDelete, 0},
		{"no method is GET", "", "", http.MethodGet, 0},
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
			resp, err := r.tr.RoundTrip(req)
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
			var got echoed
			require.NoError(t, json.Unmarshal(raw, &got))
			assert.Equal(t, tt.wantMethod, got.Method)
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
		_, err = r.tr.RoundTrip(req) //nolint:bodyclose // the request is refused: there is no response to close
		assert.ErrorIs(t, err, ErrInvalidHead)
	})
}

// --- response framing, against a raw server ---

func TestFraming(t *testing.T) {
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
			name:       "trailer fields are not interpreted",
			response:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nContent-Length: x\r\nConnection: close\r\n\r\n",
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
			name:       "101 has no body and ends the connection",
			response:   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nnot HTTP",
			wantStatus: 101, wantLength: 0,
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
			name:       "Content-Length with leading zeros",
			response:   "HTTP/1.1 200 OK\r\nContent-Length: 00000000000000000000002\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantReused: true,
		},
		{
			name:       "status without reason",
			response:   "HTTP/1.1 500\r\nContent-Length: 3\r\n\r\nbad",
			wantStatus: 500, wantBody: "bad", wantLength: 3, wantReused: true,
		},
		{
			name:       "obs-text in a value",
			response:   "HTTP/1.1 200 OK\r\nX-Name: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantReused: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRawRig(t, 2, canned(map[int]bool{0: tt.serverClose}, tt.response, respOK))

			resp, body, err := r.post(t.Context(), t, `{"first":1}`)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, tt.wantBody, body)
			assert.Equal(t, tt.wantLength, resp.ContentLength)
			assert.Equal(t, tt.wantType, resp.ContentType)
			assert.Equal(t, tt.wantSession, resp.Header.Get("Mcp-Session-Id"))
			if tt.wantReused {
				assert.Len(t, r.idle(), 1, "connection back in the pool")
			} else {
				assert.Empty(t, r.idle(), "connection not kept")
			}

			// A second request proves the first response was consumed to
			// its last byte: on the same connection it would otherwise
			// read leftovers as its status line.
			resp, body, err = r.post(t.Context(), t, `{"second":2}`)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "ok", body)
			want := int32(2)
			if tt.wantReused {
				want = 1
			}
			assert.Equal(t, want, r.srv.accepted.Load(), "connections accepted")
		})
	}
}

func TestRoundTripFraming(t *testing.T) {
	tests := []struct {
		name, method, response string
		wantStatus             int
		wantBody               string
		wantLength             int64
		wantTE                 []string
		wantHeader             http.Header
		wantClose              bool
		wantProto              string
	}{
		{
			name: "chunked", method: http.MethodGet,
			response:   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n2\r\nhi\r\n0\r\nX-T: t\r\n\r\n",
			wantStatus: 200, wantBody: "hi", wantLength: -1, wantTE: []string{"chunked"},
			wantHeader: http.Header{"X-A": {"1", "2"}}, wantProto: "HTTP/1.1",
		},
		{
			name: "HEAD has no body", method: http.MethodHead,
			response:   "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
			wantStatus: 200, wantLength: -2, wantHeader: http.Header{"Content-Length": {"1234"}}, wantProto: "HTTP/1.1",
		},
		{
			name: "HTTP/1.0", method: http.MethodDelete,
			response:   "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantHeader: http.Header{"Content-Length": {"2"}},
			wantClose: true, wantProto: "HTTP/1.0",
		},
		{
			name: "interim fields dropped", method: http.MethodGet,
			response:   "HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
			wantStatus: 200, wantBody: "hi", wantLength: 2, wantHeader: http.Header{"Content-Length": {"2"}}, wantProto: "HTTP/1.1",
		},
		{
			name: "101", method: http.MethodGet,
			response:   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nnot HTTP",
			wantStatus: 101, wantLength: 0, wantHeader: http.Header{"Upgrade": {"x"}}, wantClose: true, wantProto: "HTTP/1.1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRawRig(t, 2, canned(nil, tt.response))
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+r.srv.addr()+"/sse", nil)
			require.NoError(t, err)
			resp, err := r.tr.RoundTrip(req)
			require.NoError(t, err)
			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, tt.wantBody, string(b))
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			if tt.wantLength != -2 { // HEAD: ContentLength is 0, not the field's value
				assert.Equal(t, tt.wantLength, resp.ContentLength)
			}
			assert.Equal(t, tt.wantTE, resp.TransferEncoding)
			assert.Equal(t, tt.wantHeader, resp.Header)
			assert.Equal(t, tt.wantClose, resp.Close)
			assert.Equal(t, tt.wantProto, resp.Proto)
		})
	}
}

func TestMalformed(t *testing.T) {
	var big strings.Builder
	big.WriteString("HTTP/1.1 200 OK\r\n")
	for i := 0; big.Len() <= maxHeadBytes; i++ {
		fmt.Fprintf(&big, "X-Pad-%d: %s\r\n", i, strings.Repeat("a", 60000))
	}
	big.WriteString("Content-Length: 0\r\n\r\n")

	tests := []struct {
		name     string
		response string
		reused   bool  // sent on a reused connection
		kind     error // the kind of ErrMalformed, when it has one
	}{
		{"status code not digits", "HTTP/1.1 2OO OK\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"status code below 100", "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"status code with a sign", "HTTP/1.1 +99 Low\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"HTTP/2 status line", "HTTP/2 200 OK\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"HTTP/1.2", "HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"not HTTP", "ICY 200 OK\r\n\r\n", false, errStatusLine},
		{"two spaces before the code", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"no space after code", "HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n", false, errStatusLine},
		{"short status line", "HTTP/1.1 20\r\n\r\n", false, errStatusLine},
		{"obs-fold", "HTTP/1.1 200 OK\r\nX-A: a\r\n  folded\r\nContent-Length: 0\r\n\r\n", false, errFolded},
		{"obs-fold with tab", "HTTP/1.1 200 OK\r\nX-A: a\r\n\tfolded\r\nContent-Length: 0\r\n\r\n", false, errFolded},
		{"obs-fold in a trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n", false, errFolded},
		{"two Content-Length values", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi", false, nil},
		{"Content-Length written two ways", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 02\r\n\r\nhi", false, nil},
		{"Content-Length list", "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi", false, nil},
		{"negative Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, nil},
		{"Content-Length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775808\r\n\r\n", false, nil},
		{"invalid Content-Length on 204", "HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", false, nil},
		{"Transfer-Encoding gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", false, nil},
		{"Transfer-Encoding gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", false, nil},
		{"Transfer-Encoding twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, nil},
		{"Transfer-Encoding in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, errTE10},
		{"header without colon", "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n", false, nil},
		{"header with empty name", "HTTP/1.1 200 OK\r\n: v\r\nContent-Length: 0\r\n\r\n", false, nil},
		{"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n", false, errNameSpace},
		{"space in a name", "HTTP/1.1 200 OK\r\nX Y: 1\r\nContent-Length: 0\r\n\r\n", false, errNameSpace},
		{"control character in a value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n", false, nil},
		{"CR in a value", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", false, nil},
		{"line longer than the limit", "HTTP/1.1 200 OK\r\nX-Long: " + strings.Repeat("b", maxLine) + "\r\n\r\n", false, errTooLong},
		{"head larger than the limit", big.String(), false, errTooLong},
		{"malformed on a reused connection", "HTTP/1.1 2OO OK\r\n\r\n", true, errStatusLine},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			responses := []string{tt.response}
			if tt.reused {
				responses = []string{respOK, tt.response}
			}
			closed := make(chan error, 2)
			r := newRawRig(t, 2, cannedThenClosed(closed, responses...))
			if tt.reused {
				_, _, err := r.post(t.Context(), t, `{}`)
				require.NoError(t, err)
			}

			_, body, err := r.post(t.Context(), t, `{}`)
			require.ErrorIs(t, err, ErrMalformed, "body %q", body)
			if tt.kind != nil {
				require.ErrorIs(t, err, tt.kind)
			}
			assert.Empty(t, r.idle())
			// The connection is dropped: the server's next read ends.
			// (When the server was still writing the oversized head, the
			// end is a reset rather than a clean EOF.)
			require.Error(t, <-closed)
			assert.Equal(t, int32(1), r.srv.accepted.Load())
		})
	}
}

func TestTruncatedResponse(t *testing.T) {
	tests := []struct {
		name, response string
		headErr        bool // Do fails; otherwise reading the body fails
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
			r := newRawRig(t, 2, canned(map[int]bool{0: true}, tt.response))
			resp, err := r.do(t.Context(), `{}`)
			if tt.headErr {
				require.Error(t, err)
				assert.NotErrorIs(t, err, ErrReusedEOF, "a new connection is not a reused one")
				return
			}
			require.NoError(t, err)
			_, err = io.ReadAll(resp.Body)
			require.Error(t, err)
			require.NotErrorIs(t, err, io.EOF)
			require.NoError(t, resp.Body.Close())
			assert.Empty(t, r.idle(), "a failed body does not return its connection")
		})
	}
}

// --- connection reuse and staleness ---

// numbered answers every request with the number of its connection.
func numbered(c *srvConn) {
	for {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n%d", c.n); err != nil {
			return
		}
	}
}

func TestStaleIdleConnection(t *testing.T) {
	tests := []struct {
		name  string
		serve func(c *srvConn) // after answering the first request
	}{
		{"server closes", func(c *srvConn) { c.Close() }},
		{"server resets", func(c *srvConn) {
			_ = c.Conn.(*net.TCPConn).SetLinger(0)
			c.Close()
		}},
		{"server sends unasked bytes", func(c *srvConn) {
			_, _ = io.WriteString(c, "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n\r\n")
			_ = c.waitClosed()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRawRig(t, 2, func(c *srvConn) {
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
				canned(nil, respOK)(c)
			})

			_, body, err := r.post(t.Context(), t, `{}`)
			require.NoError(t, err)
			require.Equal(t, "1", body)
			idle := r.idle()
			require.Len(t, idle, 1)
			waitPeer(t, idle[0])

			_, body, err = r.post(t.Context(), t, `{}`)
			require.NoError(t, err, "a connection the server ended is not used")
			assert.Equal(t, "2", body)
			assert.Equal(t, int32(2), r.srv.accepted.Load())
		})
	}
}

func TestRetryWriteOnReusedConnection(t *testing.T) {
	// The server resets the connection after its first answer. alive()
	// would see it; it is made blind (raw = nil, as for a connection that
	// offers no syscall access) so that the write is what fails, which
	// exchange resends once on a new connection.
	var requests atomic.Int32
	r := newRawRig(t, 2, func(c *srvConn) {
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

	_, body, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	require.Equal(t, "1", body)
	idle := r.idle()
	require.Len(t, idle, 1)
	waitPeer(t, idle[0])
	// Consume the reset so that only the write can report it.
	var b [1]byte
	_, _ = idle[0].nc.Read(b[:])
	idle[0].raw = nil

	_, body, err = r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "2", body)
	assert.Equal(t, int32(2), r.srv.accepted.Load())
	assert.Equal(t, int32(2), requests.Load(), "the failed write reached no server")
}

func TestReusedEOF(t *testing.T) {
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
			r := newRawRig(t, 2, func(c *srvConn) {
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				requests.Add(1)
				if _, err := io.WriteString(c, respOK); err != nil {
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

			_, _, err := r.post(t.Context(), t, `{}`)
			require.NoError(t, err)
			_, err = r.do(t.Context(), `{}`)
			require.ErrorIs(t, err, ErrReusedEOF)
			assert.Equal(t, int32(2), requests.Load())
			assert.Equal(t, int32(1), r.srv.accepted.Load(), "not resent")
			assert.Empty(t, r.idle())
		})
	}
}

func TestNewConnectionEOF(t *testing.T) {
	// On a connection just dialled, a server that closes without
	// answering is not mistaken for a stale keep-alive connection.
	r := newRawRig(t, 2, func(c *srvConn) { _, _, _ = c.readRequest() })
	_, err := r.do(t.Context(), `{}`)
	require.Error(t, err)
	require.NotErrorIs(t, err, ErrReusedEOF)
	assert.ErrorIs(t, err, io.EOF)
}

func TestIdleLIFO(t *testing.T) {
	r := newRawRig(t, 4, numbered)

	// Two responses held open at once take two connections.
	a, err := r.do(t.Context(), `{}`)
	require.NoError(t, err)
	b, err := r.do(t.Context(), `{}`)
	require.NoError(t, err)
	ba, err := io.ReadAll(a.Body)
	require.NoError(t, err)
	bb, err := io.ReadAll(b.Body)
	require.NoError(t, err)
	assert.Equal(t, []string{"1", "2"}, []string{string(ba), string(bb)})
	require.Len(t, r.idle(), 2)

	// The connection used last is used first.
	_, body, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "2", body)
	assert.Equal(t, int32(2), r.srv.accepted.Load())
}

func TestIdleCap(t *testing.T) {
	closed := make(chan int, 3)
	r := newRawRig(t, 1, func(c *srvConn) {
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

	var resps []*Response
	for range 3 {
		resp, err := r.do(t.Context(), `{}`)
		require.NoError(t, err)
		resps = append(resps, resp)
	}
	require.Equal(t, int32(3), r.srv.accepted.Load(), "a busy connection is not shared")
	for _, resp := range resps {
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, "x", string(b))
	}
	assert.Len(t, r.idle(), 1, "maxIdle connections are kept")
	// The two finished last were closed: the pool was full.
	got := []int{<-closed, <-closed}
	assert.ElementsMatch(t, []int{2, 3}, got)

	r.tr.CloseIdleConnections()
	assert.Equal(t, 1, <-closed, "CloseIdleConnections closes the idle one")
	assert.Empty(t, r.idle())

	// The transport stays usable.
	_, _, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	assert.Equal(t, int32(4), r.srv.accepted.Load())
	r.tr.CloseIdleConnections()
	assert.Equal(t, 4, <-closed)
}

func TestMaxIdleZero(t *testing.T) {
	closed := make(chan error, 1)
	r := newRawRig(t, 0, cannedThenClosed(closed, respOK))
	_, _, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	require.ErrorIs(t, <-closed, io.EOF)
	assert.Empty(t, r.idle())
}

func TestIdleTimeout(t *testing.T) {
	t.Run("expired connection not reused", func(t *testing.T) {
		closed := make(chan int, 2)
		r := newRawRig(t, 2, func(c *srvConn) {
			canned(nil, respOK)(c)
			closed <- c.n
		})
		var clock atomic.Int64
		clock.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
		r.tr.now = func() time.Time { return time.Unix(0, clock.Load()) }

		_, _, err := r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		clock.Add(int64(r.tr.idleTimeout - 1))
		_, _, err = r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		assert.Equal(t, int32(1), r.srv.accepted.Load(), "within idleTimeout")

		clock.Add(int64(r.tr.idleTimeout))
		_, _, err = r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		assert.Equal(t, int32(2), r.srv.accepted.Load(), "past idleTimeout")
		assert.Equal(t, 1, <-closed, "the expired connection is closed")
	})

	t.Run("sweep closes idle connections", func(t *testing.T) {
		closed := make(chan int, 2)
		r := newRawRig(t, 2, func(c *srvConn) {
			canned(nil, respOK)(c)
			closed <- c.n
		})
		// The sweep timer fires idleTimeout after the connection went
		// idle, by then the connection is idle for idleTimeout.
		r.tr.idleTimeout = time.Millisecond
		_, _, err := r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		assert.Equal(t, 1, <-closed)
		// The server saw the close after the sweep emptied the list.
		assert.Empty(t, r.idle())
		r.tr.mu.Lock()
		assert.Nil(t, r.tr.sweep, "the sweep stops with no idle connection")
		r.tr.mu.Unlock()
	})
}

// --- cancellation ---

func TestCancelWaitingForHead(t *testing.T) {
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
			r := newRawRig(t, 2, func(c *srvConn) {
				if tt.reused {
					if _, _, err := c.readRequest(); err != nil {
						return
					}
					if _, err := io.WriteString(c, respOK); err != nil {
						return
					}
				}
				if _, _, err := c.readRequest(); err != nil {
					return
				}
				got <- struct{}{}
				closed <- c.waitClosed() // never answers
			})
			if tt.reused {
				_, _, err := r.post(t.Context(), t, `{}`)
				require.NoError(t, err)
			}

			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := r.do(ctx, `{}`)
				done <- err
			}()
			<-got
			cancel()
			err := <-done
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, ctx.Err(), err)
			require.ErrorIs(t, <-closed, io.EOF, "the connection is closed")
			assert.Empty(t, r.idle())
			assert.Equal(t, int32(1), r.srv.accepted.Load())
		})
	}
}

func TestCancelReadingBody(t *testing.T) {
	closed := make(chan error, 1)
	r := newRawRig(t, 2, func(c *srvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab"); err != nil {
			return
		}
		closed <- c.waitClosed()
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp, err := r.do(ctx, `{}`)
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	cancel()
	require.Error(t, <-done, "the read blocked on the rest of the body ends")
	require.ErrorIs(t, <-closed, io.EOF)
	assert.Empty(t, r.idle())
	require.NoError(t, resp.Body.Close())
}

func TestCancelAfterBodyKeepsConnection(t *testing.T) {
	r := newRawRig(t, 2, canned(nil, respOK))

	ctx, cancel := context.WithCancel(t.Context())
	_, body, err := r.post(ctx, t, `{}`)
	require.NoError(t, err)
	require.Equal(t, "ok", body)
	// The abort of the finished call was unregistered: cancelling its
	// context now does not set a deadline on the pooled connection.
	cancel()

	for range 3 {
		_, body, err = r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		assert.Equal(t, "ok", body)
	}
	assert.Equal(t, int32(1), r.srv.accepted.Load())
}

func TestCancelledContextLeavesPoolClean(t *testing.T) {
	// With a context cancelled before the call, the abort races the
	// exchange; whichever wins, the pool must not keep a connection whose
	// deadline is in the past.
	r := newRawRig(t, 2, canned(nil, respOK))
	_, _, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)

	for range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, err := r.post(ctx, t, `{}`)
		if err != nil {
			// context.Canceled before the head, a deadline error reading
			// the body (the caller then checks ctx.Err()).
			assert.True(t, errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
		}
		_, body, err := r.post(t.Context(), t, `{}`)
		require.NoError(t, err)
		assert.Equal(t, "ok", body)
	}
}

func TestBodyCloseBeforeEOF(t *testing.T) {
	closed := make(chan error, 2)
	r := newRawRig(t, 2, cannedThenClosed(closed, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"))

	resp, err := r.do(t.Context(), `{}`)
	require.NoError(t, err)
	buf := make([]byte, 2)
	_, err = io.ReadFull(resp.Body, buf)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.NoError(t, resp.Body.Close(), "Close twice")
	_, err = resp.Body.Read(buf)
	require.ErrorIs(t, err, ErrAborted, "read after Close")
	require.ErrorIs(t, <-closed, io.EOF, "Close before EOF closes the connection")
	assert.Empty(t, r.idle())

	_, body, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	assert.Equal(t, "hello", body)
	assert.Equal(t, int32(2), r.srv.accepted.Load())

	// Close after EOF leaves the connection in the pool.
	assert.Len(t, r.idle(), 1)
}

func TestBodyCloseUnblocksRead(t *testing.T) {
	closed := make(chan error, 1)
	r := newRawRig(t, 2, func(c *srvConn) {
		if _, _, err := c.readRequest(); err != nil {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {}\n\n"); err != nil {
			return
		}
		closed <- c.waitClosed() // keeps the stream open
	})
	// A context that is never cancelled, as for a drain that outlives its
	// call: only Close can end the Read.
	resp, err := r.do(context.WithoutCancel(t.Context()), `{}`)
	require.NoError(t, err)
	lb, ok := resp.Body.(*body)
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
	// connection, as an event stream's reader is when a drain timer fires.
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

func TestCloseRefusesAndClosesReturns(t *testing.T) {
	closed := make(chan struct{}, 1)
	r := newRawRig(t, 4, func(c *srvConn) {
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
	resp, err := r.do(t.Context(), `{}`)
	require.NoError(t, err)

	// Closed while a response is still being read: the connection is
	// closed when the body ends instead of going back to the pool.
	r.tr.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "x", string(b))
	<-closed
	assert.Empty(t, r.idle())

	_, err = r.do(t.Context(), `{}`)
	require.ErrorIs(t, err, ErrClosed)
	assert.Equal(t, int32(1), r.srv.accepted.Load())
}

// TestDetachKeepsConnection: a chunked body whose last chunk arrives after
// the caller stopped waiting (a server-sent event stream closed just after
// its response event). Cancelling the request's context then closes the
// connection, unless the body was detached first: read to its end after
// the cancel, it goes back to the pool and the next request reuses it.
func TestDetachKeepsConnection(t *testing.T) {
	for _, detach := range []bool{false, true} {
		t.Run(fmt.Sprintf("detach=%t", detach), func(t *testing.T) {
			release := make(chan struct{})
			r := newRawRig(t, 2, func(c *srvConn) {
				for {
					if _, _, err := c.readRequest(); err != nil {
						return
					}
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nevent\r\n"); err != nil {
						return
					}
					<-release
					if _, err := io.WriteString(c, "0\r\n\r\n"); err != nil {
						return
					}
				}
			})
			ctx, cancel := context.WithCancel(t.Context())
			resp, err := r.do(ctx, `{}`)
			require.NoError(t, err)
			buf := make([]byte, 5)
			_, err = io.ReadFull(resp.Body, buf)
			require.NoError(t, err)
			if detach {
				require.True(t, Detach(resp.Body))
			}
			cancel() // the call returned
			close(release)
			_, err = io.ReadAll(resp.Body)
			if !detach {
				// The abort may or may not end the read first; either way
				// the connection is not kept.
				assert.Empty(t, r.idle(), "the ended context closed the connection")
				return
			}
			require.NoError(t, err)
			require.Len(t, r.idle(), 1, "the detached body, read to its end, returned its connection")
			assert.False(t, Detach(resp.Body), "an ended body")
		})
	}
}
