package upstream

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream/internal/h1"
)

// TestPostHeadersBothTransports: the headers of a POST are described once
// (fields), and both transports send that description the same way: h1
// after the session's Head, http.Transport from the map header builds.
func TestPostHeadersBothTransports(t *testing.T) {
	seen := make(chan http.Header, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		seen <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().String()

	h := &httpConn{modern: true, post: http.Header{
		"Accept":       {"application/json, text/event-stream"},
		"Content-Type": {"application/json"},
		"X-Request-Id": {"configured"},
		"X-Api-Key":    {"k"},
		"User-Agent":   {"mcpgw"}, // each transport has its own default
	}}
	own := [][2]string{{"Authorization", "Bearer t"}, {"X-Api-Key", "per-call"}, {"Mcp-Param-Region", "eu"}}
	extra := http.Header{
		"Mcp-Method":      {"not this"}, // the request's own
		"Accept":          {"not this"}, // the session's
		"Traceparent":     {"00-1-2-01"},
		"Mcp-Param-Multi": {"a", "b"},
	}
	fields := h.fields(nil, "tools/call", "echo", "req-1", own, extra)
	want := http.Header{
		"Accept":           {"application/json, text/event-stream"},
		"Content-Type":     {"application/json"},
		"X-Request-Id":     {"req-1"},
		"X-Api-Key":        {"per-call"},
		"User-Agent":       {"mcpgw"},
		"Mcp-Method":       {"tools/call"},
		"Mcp-Name":         {"echo"},
		"Authorization":    {"Bearer t"},
		"Mcp-Param-Region": {"eu"},
		"Traceparent":      {"00-1-2-01"},
		"Mcp-Param-Multi":  {"a", "b"},
		"Content-Length":   {"2"},
	}
	body := []byte(`{}`)
	ignore := func(hdr http.Header) http.Header {
		delete(hdr, "Accept-Encoding") // http.Transport asks for gzip
		return hdr
	}

	t.Run("h1", func(t *testing.T) {
		tr := h1.NewTransport(addr, 1)
		t.Cleanup(tr.Close)
		head, err := h1.NewHead(http.MethodPost, "/mcp", addr, h.post)
		require.NoError(t, err)
		resp, err := tr.Do(t.Context(), &h1.Request{Head: head, Fields: fields, Body: body})
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		assert.Equal(t, want, ignore(<-seen))
	})
	t.Run("net/http", func(t *testing.T) {
		tr := newHTTPTransport(1)
		t.Cleanup(tr.CloseIdleConnections)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+"/mcp", nil)
		require.NoError(t, err)
		h.tmpl = req
		resp, err := tr.RoundTrip(h.request(t.Context(), body, h.header(fields)))
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, want, ignore(<-seen))
	})
}
