package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLargeResponsesArriveWhole guards the full-duplex setting: without
// it, net/http closes the request body when the proxy writes the response
// headers, the transport's last read of that body fails, and it cuts the
// upstream connection, truncating a few percent of large responses that
// the upstream answers fast.
func TestLargeResponsesArriveWhole(t *testing.T) {
	t.Parallel()

	page := bytes.Repeat([]byte(`{"name":"filler_0001","inputSchema":{"type":"object"}},`), 1600) // ≈ 85 KB, like a tools/list page.
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(page)
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	target, err := url.Parse(up.URL + "/mcp")
	require.NoError(t, err)
	px := httptest.NewServer(newHandler(target, 16))
	t.Cleanup(px.Close)

	client := px.Client()
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
	for i := range 200 {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, px.URL+"/mcp", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err, "request %d", i)
		require.Len(t, got, len(page), "request %d was truncated", i)
	}
	assert.Equal(t, int64(1), conns.Load(), "one upstream connection, reused")
}
