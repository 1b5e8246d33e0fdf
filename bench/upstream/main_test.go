package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

func newTestServer(t *testing.T, filler int) (*server, string) {
	t.Helper()
	s := newServer(filler, 500)
	mux := http.NewServeMux()
	mux.Handle("/mcp", s)
	mux.HandleFunc("GET /stats", s.serveStats)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return s, srv.URL
}

// TestWithLoadGenerator drives the server with the benchmark's own client
// in both eras.
func TestWithLoadGenerator(t *testing.T) {
	t.Parallel()

	_, base := newTestServer(t, 1100)
	tests := []struct {
		name      string
		cfg       loadgen.Config
		wantTools int
		wantPages int
	}{
		{name: "2025 echo", cfg: loadgen.Config{Era: loadgen.Era2025, Concurrency: 3, Count: 60}},
		{name: "2026 echo", cfg: loadgen.Config{Era: loadgen.Era2026, Concurrency: 3, Count: 60}},
		{name: "2025 list", cfg: loadgen.Config{Era: loadgen.Era2025, Method: loadgen.MethodList, Concurrency: 1, Count: 3}, wantTools: 1102, wantPages: 3},
		{name: "2026 list", cfg: loadgen.Config{Era: loadgen.Era2026, Method: loadgen.MethodList, Concurrency: 1, Count: 3}, wantTools: 1102, wantPages: 3},
		{name: "sleep", cfg: loadgen.Config{Tool: "sleep", Arguments: []byte(`{"ms":1}`), Concurrency: 1, Count: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			cfg.URL = base + "/mcp"
			res, err := loadgen.Run(t.Context(), &cfg)
			require.NoError(t, err)
			assert.Zero(t, res.Errors, "%v", res.ErrorSample)
			assert.Equal(t, tt.wantTools, res.Tools)
			assert.Equal(t, tt.wantPages, res.Pages)
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()

	_, base := newTestServer(t, 0)
	tests := []struct {
		name       string
		headers    map[string]string
		body       string
		wantStatus int
		wantInBody string
	}{
		{name: "no session", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, wantStatus: 400, wantInBody: "missing Mcp-Session-Id"},
		{name: "unknown session", headers: map[string]string{"Mcp-Session-Id": "nope"}, body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, wantStatus: 404, wantInBody: "unknown session"},
		{
			name:       "method header mismatch",
			headers:    map[string]string{"Mcp-Protocol-Version": mcpwire.Version20260728, "Mcp-Method": "tools/list"},
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
			wantStatus: 400, wantInBody: "-32020",
		},
		{
			name:       "name header mismatch",
			headers:    map[string]string{"Mcp-Protocol-Version": mcpwire.Version20260728, "Mcp-Method": "tools/call", "Mcp-Name": "sleep"},
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo"}}`,
			wantStatus: 400, wantInBody: "-32020",
		},
		{
			name:       "unsupported version",
			headers:    map[string]string{"Mcp-Protocol-Version": "2099-01-01"},
			body:       `{"jsonrpc":"2.0","id":1,"method":"ping"}`,
			wantStatus: 400, wantInBody: `"supported":["2026-07-28","2025-11-25"]`,
		},
		{
			name:       "discover without a session",
			headers:    map[string]string{"Mcp-Protocol-Version": mcpwire.Version20260728, "Mcp-Method": "server/discover"},
			body:       `{"jsonrpc":"2.0","id":"a","method":"server/discover","params":{}}`,
			wantStatus: 200, wantInBody: `"supportedVersions":["2026-07-28","2025-11-25"]`,
		},
		{
			name:       "unknown tool",
			headers:    map[string]string{"Mcp-Protocol-Version": mcpwire.Version20260728, "Mcp-Method": "tools/call", "Mcp-Name": "nope"},
			body:       `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"nope"}}`,
			wantStatus: 200, wantInBody: "unknown tool",
		},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, headers: map[string]string{"Mcp-Protocol-Version": mcpwire.Version20260728, "Mcp-Method": "notifications/initialized"}, wantStatus: 202},
		{name: "not JSON", body: `{`, wantStatus: 400, wantInBody: "-32700"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/mcp", strings.NewReader(tt.body))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client against the loopback test server; the protocol errors are the point
			require.NoError(t, err)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, tt.wantStatus, resp.StatusCode, "%s", body)
			assert.Contains(t, string(body), tt.wantInBody)
			if len(body) > 0 {
				assert.True(t, json.Valid(body), "%s", body)
			}
		})
	}
}

func TestStats(t *testing.T) {
	t.Parallel()

	_, base := newTestServer(t, 0)
	c, err := loadgen.NewClient(base+"/mcp", loadgen.Era2025, http.DefaultTransport)
	require.NoError(t, err)
	require.NoError(t, c.Open(t.Context()))
	_, _, err = c.Call(t.Context(), "echo", []byte(`{"text":"hi"}`))
	require.NoError(t, err)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/stats", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client against the loopback test server
	require.NoError(t, err)
	defer resp.Body.Close()
	var st struct{ Requests, Calls, Initializes, Sessions int64 }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&st))
	assert.Equal(t, int64(3), st.Requests) // initialize, initialized, call
	assert.Equal(t, int64(1), st.Calls)
	assert.Equal(t, int64(1), st.Sessions)
}

func TestCountingListener(t *testing.T) {
	t.Parallel()

	s := newServer(0, 500)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(s.serveStats))
	srv.Listener = &countingListener{Listener: srv.Listener, n: &s.conns}
	srv.Start()
	t.Cleanup(srv.Close)

	keepAlive := &http.Client{Transport: &http.Transport{}}
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, c := range []*http.Client{keepAlive, keepAlive, keepAlive, noKeepAlive, noKeepAlive} {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		resp, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	assert.Equal(t, int64(3), s.conns.Load(), "one kept alive, two not")
}
