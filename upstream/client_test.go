package upstream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// httpUpstream is one kind of Streamable HTTP server under test.
type httpUpstream struct {
	name      string
	handler   func(f *fixture) http.Handler
	path      string
	modern    bool   // expected era
	version   string // expected negotiated version
	pin       string // protocol_version to pin, if any
	listsMore bool   // has resources and prompts
}

func httpUpstreams() []httpUpstream {
	return []httpUpstream{
		{name: "mcpgo-session", handler: func(f *fixture) http.Handler { return mcpgoLegacy(mcpgoServer(f)) }, path: "/mcp", version: "2025-11-25", listsMore: true},
		{name: "mcpgo-stateless", handler: func(f *fixture) http.Handler { return mcpgoModern(mcpgoServer(f)) }, path: "/mcp", modern: true, version: "2026-07-28", pin: "2026-07-28", listsMore: true},
		{name: "gosdk-stateful", handler: func(f *fixture) http.Handler { return gosdkHandler(gosdkServer(f), false) }, path: "/", version: "2025-11-25"},
		{name: "gosdk-stateless", handler: func(f *fixture) http.Handler { return gosdkHandler(gosdkServer(f), true) }, path: "/", modern: true, version: "2026-07-28"},
		{name: "mcpgo-pinned-2025-06-18", handler: func(f *fixture) http.Handler { return mcpgoModern(mcpgoServer(f)) }, path: "/mcp", version: "2025-06-18", pin: "2025-06-18", listsMore: true},
		{name: "gosdk-pinned-2026-07-28", handler: func(f *fixture) http.Handler { return gosdkHandler(gosdkServer(f), true) }, path: "/", modern: true, version: "2026-07-28", pin: "2026-07-28"},
		// auto: pooled 2025-era sessions where the upstream keeps
		// sessions, 2026-07-28 where it offers that era and keeps none.
		{name: "mcpgo-auto-both-eras", handler: func(f *fixture) http.Handler { return mcpgoModern(mcpgoServer(f)) }, path: "/mcp", version: "2025-11-25", pin: "auto", listsMore: true},
		{name: "mcpgo-auto-sessionless", handler: func(f *fixture) http.Handler { return mcpgoSessionless(mcpgoServer(f)) }, path: "/mcp", modern: true, version: "2026-07-28", pin: "auto", listsMore: true},
		// Pinned to the 2025 era, a server without sessions is called
		// without a session id: cheaper for it, without list changes.
		{name: "gosdk-stateless-pinned-2025-11-25", handler: func(f *fixture) http.Handler { return gosdkHandler(gosdkServer(f), true) }, path: "/", version: "2025-11-25", pin: "2025-11-25"},
	}
}

func (u *httpUpstream) start(t *testing.T, opts ...clientOpt) (*upstream.Client, *recorder, *fixture, *testServer) {
	t.Helper()
	f := newFixture()
	ts := serve(t, u.handler(f))
	cfg := httpConfig("orders", ts.url(u.path))
	cfg.ProtocolVersion = u.pin
	c, rec := startClient(t, cfg, opts...)
	return c, rec, f, ts
}

func TestEraDetection(t *testing.T) {
	for _, u := range httpUpstreams() {
		t.Run(u.name, func(t *testing.T) {
			c, _, _, _ := u.start(t)
			cat, ok := c.Catalog()
			require.True(t, ok)
			assert.Equal(t, u.modern, cat.Stateless)
			assert.Equal(t, u.version, cat.ProtocolVersion)
			assert.Contains(t, string(cat.ServerInfo), `"name"`)
			assert.Contains(t, string(cat.Capabilities), `"tools"`)
			names := toolNames(t, cat.Tools)
			assert.Subset(t, names, []string{"echo", "schema", "slow", "progress", "big"})
			if u.listsMore {
				assert.Len(t, cat.Resources, 1)
				assert.Len(t, cat.ResourceTemplates, 1)
				assert.Len(t, cat.Prompts, 1)
				assert.Equal(t, "test instructions", cat.Instructions)
			} else {
				assert.Empty(t, cat.Resources, "no resources capability: nothing listed")
				assert.Empty(t, cat.Prompts)
			}

			// A call works in the detected era: headers, _meta and session
			// are what the server expects.
			res, err := c.Call(t.Context(), call("echo", `{"text":"héllo"}`))
			require.NoError(t, err)
			assert.Contains(t, string(res), `héllo`, "arguments arrive intact")
		})
	}
}

func toolNames(tb testing.TB, tools []json.RawMessage) []string {
	tb.Helper()
	names := make([]string, 0, len(tools))
	for _, raw := range tools {
		var tool struct{ Name string }
		require.NoError(tb, json.Unmarshal(raw, &tool))
		names = append(names, tool.Name)
	}
	return names
}

func TestToolsByteExact(t *testing.T) {
	for _, u := range httpUpstreams()[:4] {
		t.Run(u.name, func(t *testing.T) {
			c, _, _, ts := u.start(t)
			cat, _ := c.Catalog()
			want := newRawSession(t, ts.url(u.path), u.modern).list("tools/list", "tools")
			require.Len(t, cat.Tools, len(want))
			for i := range want {
				assert.Equal(t, string(want[i]), string(cat.Tools[i]), "tool %d differs from the raw tools/list", i)
			}
			var schema json.RawMessage
			for _, raw := range cat.Tools {
				if strings.Contains(string(raw), `"name":"schema"`) {
					schema = raw
				}
			}
			require.NotNil(t, schema)
			for _, kw := range []string{`"oneOf"`, `"$defs"`, `"$schema"`, `"top-level description"`} {
				assert.Contains(t, string(schema), kw)
			}
			if u.listsMore {
				rs := newRawSession(t, ts.url(u.path), u.modern)
				assert.Equal(t, rs.list("resources/list", "resources"), cat.Resources)
				assert.Equal(t, rs.list("resources/templates/list", "resourceTemplates"), cat.ResourceTemplates)
				assert.Equal(t, rs.list("prompts/list", "prompts"), cat.Prompts)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	for _, modern := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", modern), func(t *testing.T) {
			s := mcpserver.NewMCPServer("many", "1", mcpserver.WithToolCapabilities(false), mcpserver.WithPaginationLimit(7))
			for i := range 300 {
				s.AddTool(mcp.NewTool(fmt.Sprintf("tool_%03d", i)), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return mcp.NewToolResultText("ok"), nil
				})
			}
			h, cfg := mcpgoLegacy(s), httpConfig("many", "")
			if modern {
				h, cfg = mcpgoModern(s), statelessConfig("many", "")
			}
			ts := serve(t, h)
			cfg.HTTP.URL = ts.url("/mcp")
			c, _ := startClient(t, cfg)
			cat, _ := c.Catalog()
			names := toolNames(t, cat.Tools)
			require.Len(t, names, 300)
			for i, n := range names {
				assert.Equal(t, fmt.Sprintf("tool_%03d", i), n)
			}
			assert.Equal(t, newRawSession(t, ts.url("/mcp"), modern).list("tools/list", "tools"), cat.Tools)
		})
	}
}

func TestCallResultPassthrough(t *testing.T) {
	// The result bytes are the upstream's, not a re-encoding: compare with
	// the result of the same call made raw.
	s := mcpgoServer(newFixture())
	s.AddTool(mcp.NewTool("odd"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{
			Content:           []mcp.Content{mcp.NewTextContent("<b>&amp;</b> \u2028")},
			StructuredContent: map[string]any{"z": 1.0000000000000002, "a": []any{nil, true, "é"}},
		}, nil
	})
	ts := serve(t, mcpgoModern(s))
	c, _ := startClient(t, statelessConfig("odd", ts.url("/mcp")))
	got, err := c.Call(t.Context(), call("odd", `{}`))
	require.NoError(t, err)
	want := newRawSession(t, ts.url("/mcp"), true).do("tools/call", "odd", `"name":"odd","arguments":{}`)
	assert.Equal(t, string(want), string(got))
}

func TestRequestHeadersAndParams(t *testing.T) {
	type seen struct {
		header http.Header
		body   string
	}
	got := make(chan seen, 16)
	f := newFixture()
	inner := mcpgoModern(mcpgoServer(f))
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Method") == "tools/call" {
			body, _ := readAll(r)
			got <- seen{r.Header.Clone(), body}
		}
		inner.ServeHTTP(w, r)
	}))
	cfg := statelessConfig("orders", ts.url("/mcp"))
	cfg.HTTP.Headers = map[string]configs.SecretRef{
		"X-Api-Key":    {Value: "s3cret"},
		"X-Request-Id": {Value: "configured"}, // the call's own replaces it
	}
	c, _ := startClient(t, cfg)

	req := call("echo", `{"text":"x"}`)
	req.Params = json.RawMessage(`{"name":"echo","_meta":{"io.modelcontextprotocol/protocolVersion":"1999-01-01","keep":1},"arguments":{"text":"x"}}`)
	req.RequestID = "req-123"
	_, err := c.Call(t.Context(), req)
	require.NoError(t, err)
	s := receive(t, got, "the tools/call request")
	assert.Equal(t, "s3cret", s.header.Get("X-Api-Key"))
	assert.Equal(t, []string{"req-123"}, s.header.Values("X-Request-Id"))
	assert.Equal(t, "2026-07-28", s.header.Get("Mcp-Protocol-Version"))
	assert.Equal(t, "tools/call", s.header.Get("Mcp-Method"))
	assert.Equal(t, "echo", s.header.Get("Mcp-Name"))
	assert.Equal(t, "application/json, text/event-stream", s.header.Get("Accept"))
	var body struct {
		Params struct {
			Name      string
			Arguments json.RawMessage
			Meta      map[string]json.RawMessage `json:"_meta"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(s.body), &body))
	assert.Equal(t, "echo", body.Params.Name)
	assert.JSONEq(t, `{"text":"x"}`, string(body.Params.Arguments))
	assert.Equal(t, `"2026-07-28"`, string(body.Params.Meta["io.modelcontextprotocol/protocolVersion"]), "the downstream's protocol keys are replaced")
	assert.Equal(t, `1`, string(body.Params.Meta["keep"]), "other _meta members are kept")
	assert.JSONEq(t, `{"name":"mcpgw-test","version":"0.0.1"}`, string(body.Params.Meta["io.modelcontextprotocol/clientInfo"]))
}

func readAll(r *http.Request) (string, error) {
	b, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	return string(b), err
}

func TestProgress(t *testing.T) {
	const calls, steps = 4, 5
	for _, u := range httpUpstreams()[:4] {
		t.Run(u.name, func(t *testing.T) {
			c, _, f, _ := u.start(t)
			type got struct {
				mu     sync.Mutex
				params []json.RawMessage
				final  chan struct{}
			}
			results := make([]*got, calls)
			var wg sync.WaitGroup
			errs := make(chan error, calls)
			for i := range calls {
				g := &got{final: make(chan struct{})}
				results[i] = g
				token := json.RawMessage(fmt.Sprintf(`{"downstream":%d}`, i))
				if i%2 == 1 {
					token = json.RawMessage(fmt.Sprintf(`"tok-%d"`, i))
				}
				req := call("progress", fmt.Sprintf(`{"n":%d}`, steps))
				req.Params = json.RawMessage(fmt.Sprintf(`{"name":"progress","arguments":{"n":%d},"_meta":{"progressToken":%s}}`, steps, token))
				req.ProgressToken = token
				req.OnProgress = func(p json.RawMessage) {
					g.mu.Lock()
					defer g.mu.Unlock()
					g.params = append(g.params, append(json.RawMessage(nil), p...))
					if strings.Contains(string(p), fmt.Sprintf(`"progress":%d`, steps)) {
						close(g.final)
					}
				}
				wg.Go(func() {
					res, err := c.Call(t.Context(), req)
					if err == nil && !strings.Contains(string(res), "done") {
						err = fmt.Errorf("unexpected result %s", res)
					}
					errs <- err
				})
			}
			// Every call's last progress arrives while all calls are in
			// flight; then the tools may return.
			for i, g := range results {
				receive(t, g.final, fmt.Sprintf("the last progress of call %d", i))
			}
			close(f.release)
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			for i, g := range results {
				wantToken := fmt.Sprintf(`{"downstream":%d}`, i)
				if i%2 == 1 {
					wantToken = fmt.Sprintf(`"tok-%d"`, i)
				}
				if u.name != "mcpgo-session" {
					// One stream per call: nothing is lost or reordered.
					// On an mcp-go session, notifications spread over
					// every open stream of the session and the client drops
					// those that arrive after a later one.
					require.Len(t, g.params, steps)
				}
				last := 0.0
				for _, p := range g.params {
					var n struct {
						ProgressToken json.RawMessage
						Progress      float64
						Total         float64
					}
					require.NoError(t, json.Unmarshal(p, &n))
					assert.JSONEq(t, wantToken, string(n.ProgressToken), "call %d gets its own token back", i)
					assert.Greater(t, n.Progress, last, "call %d: in order", i)
					last = n.Progress
					assert.InDelta(t, float64(steps), n.Total, 0) // exact: whole numbers
				}
				assert.InDelta(t, float64(steps), last, 0) // exact: whole numbers
			}
		})
	}
}

func TestCancellation(t *testing.T) {
	for _, u := range httpUpstreams()[:4] {
		t.Run(u.name, func(t *testing.T) {
			c, _, f, _ := u.start(t)
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() {
				_, err := c.Call(ctx, call("slow", `{"tag":"a"}`))
				errc <- err
			}()
			assert.Equal(t, "a", receive(t, f.started, "the tool to start"))
			cancel()
			err := receive(t, errc, "Call to return")
			require.Error(t, err)
			require.ErrorIs(t, err, context.Canceled)
			assert.Contains(t, err.Error(), `upstream "orders"`)
			// The upstream's handler sees its context end: a
			// notifications/cancelled in the session era, the closed
			// stream in the stateless era.
			assert.Equal(t, "a", receive(t, f.cancelled, "the upstream handler to be cancelled"))

			// The upstream is still usable afterwards.
			_, err = c.Call(t.Context(), call("echo", `{}`))
			require.NoError(t, err)
		})
	}
}

func TestTimeout(t *testing.T) {
	for _, u := range httpUpstreams()[:2] {
		t.Run(u.name, func(t *testing.T) {
			c, _, f, _ := u.start(t, withTimeout(300*time.Millisecond))
			_, err := c.Call(t.Context(), call("slow", `{"tag":"t"}`))
			require.Error(t, err)
			require.ErrorIs(t, err, upstream.ErrTimeout)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), `upstream "orders"`)
			assert.Contains(t, err.Error(), "300ms")
			assert.Equal(t, "t", receive(t, f.started, "the tool to start"))
			assert.Equal(t, "t", receive(t, f.cancelled, "the upstream handler to be cancelled"))
		})
	}
}

func TestCallerDeadline(t *testing.T) {
	c, _, f, _ := httpUpstreams()[0].start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := c.Call(ctx, call("slow", `{"tag":"d"}`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, err, upstream.ErrTimeout)
	receive(t, f.cancelled, "the upstream handler to be cancelled")
}

func TestRPCErrorPassthrough(t *testing.T) {
	for _, u := range httpUpstreams()[:4] {
		t.Run(u.name, func(t *testing.T) {
			c, _, _, _ := u.start(t)
			// An unknown tool is a JSON-RPC error in every era (a 400 with a
			// JSON-RPC body in the stateless one).
			_, err := c.Call(t.Context(), call("no_such_tool", `{}`))
			var rpcErr *upstream.RPCError
			require.ErrorAs(t, err, &rpcErr)
			assert.NotZero(t, rpcErr.Code)
			assert.NotEmpty(t, rpcErr.Message)

			_, err = c.Call(t.Context(), &upstream.Request{Method: "no/such/method", Params: json.RawMessage(`{}`)})
			if u.name == "gosdk-stateful" {
				// go-sdk answers an unknown method on a session with a
				// plain-text 400, not a JSON-RPC error.
				var ue *upstream.Error
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, http.StatusBadRequest, ue.Status)
				assert.ErrorIs(t, err, upstream.ErrUnavailable)
				return
			}
			require.ErrorAs(t, err, &rpcErr)
			assert.Equal(t, -32601, rpcErr.Code)
		})
	}
}

func TestHTTPFailures(t *testing.T) {
	tests := []struct {
		name    string
		reply   http.HandlerFunc
		max     int64
		tool    string
		wantErr error
		wantMsg string
	}{
		{
			name:    "500",
			tool:    "echo",
			reply:   func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
			wantErr: upstream.ErrUnavailable,
			wantMsg: "500",
		},
		{
			name: "not JSON",
			tool: "echo",
			reply: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("<html>oops</html>"))
			},
			wantErr: upstream.ErrBadResponse,
		},
		{
			name: "wrong content type",
			tool: "echo",
			reply: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>oops</html>"))
			},
			wantErr: upstream.ErrBadResponse,
		},
		{
			name: "wrong id",
			tool: "echo",
			reply: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":999999,"result":{}}`))
			},
			wantErr: upstream.ErrBadResponse,
			wantMsg: "does not match",
		},
		{
			name: "stream without response",
			tool: "echo",
			reply: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = w.Write([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\n"))
			},
			wantErr: upstream.ErrBadResponse,
		},
		{
			name:    "oversized JSON",
			tool:    "big",
			max:     4096,
			wantErr: upstream.ErrResponseTooLarge,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture()
			h := mcpgoLegacy(mcpgoServer(f))
			if tt.reply != nil {
				h = interceptTool(h, tt.tool, tt.reply)
			}
			ts := serve(t, h)
			cfg := httpConfig("orders", ts.url("/mcp"))
			cfg.MaxResponseBytes = tt.max
			c, _ := startClient(t, cfg)
			_, err := c.Call(t.Context(), call(tt.tool, `{"size":100000}`))
			require.Error(t, err)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Contains(t, err.Error(), `upstream "orders"`)
			if tt.wantMsg != "" {
				assert.Contains(t, err.Error(), tt.wantMsg)
			}
			// One bad answer does not take the upstream down.
			_, err = c.Call(t.Context(), call("schema", `{}`))
			require.NoError(t, err)
		})
	}
}

func TestOversizedStream(t *testing.T) {
	// go-sdk answers with text/event-stream.
	f := newFixture()
	ts := serve(t, gosdkHandler(gosdkServer(f), true))
	cfg := httpConfig("orders", ts.url("/"))
	cfg.MaxResponseBytes = 4096
	c, _ := startClient(t, cfg)
	_, err := c.Call(t.Context(), call("big", `{"size":100000}`))
	require.ErrorIs(t, err, upstream.ErrResponseTooLarge)
	res, err := c.Call(t.Context(), call("big", `{"size":10}`))
	require.NoError(t, err)
	assert.Contains(t, string(res), "xxxxxxxxxx")
}

func TestSessionExpiry(t *testing.T) {
	f := newFixture()
	ts := serve(t, mcpgoLegacy(mcpgoServer(f)))
	c, _ := startClient(t, httpConfig("orders", ts.url("/mcp")))

	// A new server behind the same address forgets the session: the old
	// session id gets 404.
	ts.setHandler(mcpgoLegacy(mcpgoServer(f)))
	res, err := c.Call(t.Context(), &upstream.Request{Method: "tools/list", Params: json.RawMessage(`{}`), Idempotent: true})
	require.NoError(t, err, "an idempotent request is retried on a new session")
	assert.Contains(t, string(res), `"echo"`)

	ts.setHandler(mcpgoLegacy(mcpgoServer(f)))
	before := f.calls.Load()
	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.Error(t, err, "a tools/call is not retried")
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.Contains(t, err.Error(), "session expired")
	assert.Equal(t, before, f.calls.Load(), "the tool did not run")

	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.NoError(t, err, "the session was renewed")
	_, ok := c.Catalog()
	assert.True(t, ok)
}

func TestDownAndBackUp(t *testing.T) {
	for _, u := range httpUpstreams()[:4] {
		t.Run(u.name, func(t *testing.T) {
			c, rec, _, ts := u.start(t, withHealth(50*time.Millisecond))
			ts.stop()
			waitFor(t, c, rec, "the upstream to be marked down", unavailable)
			_, err := c.Call(t.Context(), call("echo", `{}`))
			require.Error(t, err)
			assert.True(t, isUnavailable(err), "fails fast with ErrUnavailable: %v", err)
			assert.Contains(t, err.Error(), `upstream "orders"`)
			assert.Regexp(t, `upstream is down: \S`, err.Error(), "says why")

			ts.restart(t)
			waitFor(t, c, rec, "the upstream to come back", available)
			_, err = c.Call(t.Context(), call("echo", `{}`))
			require.NoError(t, err)
		})
	}
}

func TestDownDetectedByCall(t *testing.T) {
	// No health pings, no notification stream: the failing call makes the
	// client probe, and the probe marks the upstream down.
	c, rec, _, ts := httpUpstreams()[3].start(t)
	ts.stop()
	_, err := c.Call(t.Context(), call("echo", `{}`))
	assert.True(t, isUnavailable(err), "%v", err)
	waitFor(t, c, rec, "the upstream to be marked down", unavailable)
	ts.restart(t)
	waitFor(t, c, rec, "the upstream to come back", available)
}

func TestListChanged(t *testing.T) {
	newTool := func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("new"), nil
	}
	tests := []struct {
		name  string
		setup func() (h http.Handler, path string, add func())
	}{
		{"mcpgo-session GET stream", func() (http.Handler, string, func()) {
			s := mcpgoServer(newFixture())
			return mcpgoLegacy(s), "/mcp", func() { s.AddTool(mcp.NewTool("added"), newTool) }
		}},
		{"mcpgo-stateless subscriptions/listen", func() (http.Handler, string, func()) {
			s := mcpgoServer(newFixture())
			return mcpgoModern(s), "/mcp", func() { s.AddTool(mcp.NewTool("added"), newTool) }
		}},
		{"gosdk-stateful GET stream", func() (http.Handler, string, func()) {
			s := gosdkServer(newFixture())
			return gosdkHandler(s, false), "/", func() { addGosdkTool(s, "added") }
		}},
		{"gosdk-stateless subscriptions/listen", func() (http.Handler, string, func()) {
			s := gosdkServer(newFixture())
			return gosdkHandler(s, true), "/", func() { addGosdkTool(s, "added") }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, path, add := tt.setup()
			streamOpen := make(chan struct{})
			ts := serve(t, onStreamOpen(h, streamOpen))
			cfg := httpConfig("orders", ts.url(path))
			if strings.Contains(tt.name, "mcpgo-stateless") {
				cfg.ProtocolVersion = "2026-07-28" // auto would keep a session
			}
			c, rec := startClient(t, cfg)
			receive(t, streamOpen, "the notification stream to open")
			add()
			waitFor(t, c, rec, "the new tool", func(cat *upstream.Catalog, _ bool) bool {
				return cat != nil && slices.Contains(toolNames(t, cat.Tools), "added")
			})
			res, err := c.Call(t.Context(), call("added", `{}`))
			require.NoError(t, err)
			assert.Contains(t, string(res), "new")
		})
	}
}

// onStreamOpen closes open when the server first flushes a notification
// stream (the GET stream, or a subscriptions/listen response): mcp-go has
// then registered the stream for broadcasts.
func onStreamOpen(h http.Handler, open chan struct{}) http.Handler {
	var once sync.Once
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Header.Get("Mcp-Method") == "subscriptions/listen" {
			w = &flushSignal{ResponseWriter: w, signal: func() { once.Do(func() { close(open) }) }}
		}
		h.ServeHTTP(w, r)
	})
}

type flushSignal struct {
	http.ResponseWriter
	signal func()
}

func (f *flushSignal) Flush() {
	if fl, ok := f.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
	f.signal()
}

func (f *flushSignal) Unwrap() http.ResponseWriter { return f.ResponseWriter }

func TestXMCPHeader(t *testing.T) {
	s := mcpgoServer(newFixture())
	seen := make(chan string, 4)
	s.AddTool(mcp.NewToolWithRawSchema("region_query", "", json.RawMessage(
		`{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"q":{"type":"string"}}}`)),
		func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			seen <- argString(r.GetArguments(), "region")
			return mcp.NewToolResultText("ok"), nil
		})
	inner := mcpgoModern(s)
	headers := make(chan string, 4)
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Name") == "region_query" {
			headers <- r.Header.Get("Mcp-Param-Region")
		}
		inner.ServeHTTP(w, r)
	}))
	c, _ := startClient(t, statelessConfig("orders", ts.url("/mcp")))
	_, err := c.Call(t.Context(), call("region_query", `{"region":"eu-wést","q":"x"}`))
	require.NoError(t, err, "mcp-go rejects a call without the Mcp-Param header")
	assert.Equal(t, "=?base64?ZXUtd8Opc3Q=?=", receive(t, headers, "the header"))
	assert.Equal(t, "eu-wést", receive(t, seen, "the call"))
}

func TestCloseEndsSession(t *testing.T) {
	deletes := make(chan string, 1)
	inner := mcpgoLegacy(mcpgoServer(newFixture()))
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			deletes <- r.Header.Get("Mcp-Session-Id")
		}
		inner.ServeHTTP(w, r)
	}))
	c, _ := startClient(t, httpConfig("orders", ts.url("/mcp")))
	require.NoError(t, c.Close())
	assert.NotEmpty(t, receive(t, deletes, "DELETE"))
	_, err := c.Call(t.Context(), call("echo", `{}`))
	assert.ErrorIs(t, err, upstream.ErrClosed)
}

// TestNewWithoutTransport: the configuration's rules are configs.Validate's
// (TestValidateRefusesWhatUpstreamRefused there); New only refuses what it
// cannot build a client from.
func TestNewWithoutTransport(t *testing.T) {
	_, err := upstream.New(&configs.Upstream{Name: "a"}, nil)
	require.Error(t, err)
}

func TestCallBeforeStart(t *testing.T) {
	c, err := upstream.New(new(httpConfig("orders", "http://127.0.0.1:1/mcp")), nil)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	cat, ok := c.Catalog()
	assert.Nil(t, cat)
	assert.False(t, ok)
	var ue *upstream.Error
	require.ErrorAs(t, err, &ue)
	assert.Equal(t, "orders", ue.Upstream)
}

// TestEventStreamAnswersKeepTheConnection: go-sdk answers every call with
// an event stream that it ends just after the response event. The call
// returns at the response, and the rest of the stream is read after the
// call's context has ended; the connection must still go back to the pool,
// so that calls one after another use one connection, not one each.
func TestEventStreamAnswersKeepTheConnection(t *testing.T) {
	for _, u := range []httpUpstream{httpUpstreams()[2], httpUpstreams()[3]} { // go-sdk, both eras
		t.Run(u.name, func(t *testing.T) {
			c, _, _, ts := u.start(t)
			before := ts.conns.Load()
			for range 20 {
				ctx, cancel := context.WithCancel(t.Context())
				_, err := c.Call(ctx, call("echo", `{"text":"x"}`))
				cancel()
				require.NoError(t, err)
			}
			// One connection serves them all, or two when a call starts
			// before the previous stream's end was read; without the
			// connection going back to the pool it is one per call.
			assert.Less(t, ts.conns.Load()-before, int64(10), "calls one after another reuse their connections")
		})
	}
}
