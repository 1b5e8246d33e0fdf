package upstream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// Real MCP servers for the tests: mcp-go and the official go-sdk, served on
// 127.0.0.1 over real sockets.

// schemaTool is a tool definition the typed mcp-go client would mangle
// (oneOf, $defs, $schema, a top-level description).
const schemaTool = `{"type":"object","$schema":"https://json-schema.org/draft/2020-12/schema","description":"top-level description","$defs":{"unit":{"enum":["c","f"]}},"properties":{"where":{"oneOf":[{"type":"string"},{"type":"object","properties":{"lat":{"type":"number"},"lon":{"type":"number"}}}]},"unit":{"$ref":"#/$defs/unit"}},"required":["where"]}`

// fixture is the state shared by the tools of one test's servers.
type fixture struct {
	started   chan string   // a slow tool started; carries its "tag" argument
	cancelled chan string   // a slow tool's context ended; carries its tag
	release   chan struct{} // closed to let progress tools return
	calls     atomic.Int64
}

func newFixture() *fixture {
	return &fixture{
		started:   make(chan string, 16),
		cancelled: make(chan string, 16),
		release:   make(chan struct{}),
	}
}

func argString(args map[string]any, k string) string {
	s, _ := args[k].(string)
	return s
}

func argInt(args map[string]any, k string) int {
	f, _ := args[k].(float64)
	return int(f)
}

// mcpgoServer builds an mcp-go server with the fixture's tools, a resource,
// a resource template and a prompt.
func mcpgoServer(f *fixture, opts ...mcpserver.ServerOption) *mcpserver.MCPServer {
	opts = append([]mcpserver.ServerOption{
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithResourceCapabilities(false, true),
		mcpserver.WithPromptCapabilities(true),
		mcpserver.WithInstructions("test instructions"),
	}, opts...)
	s := mcpserver.NewMCPServer("mcpgo-test", "1.2.3", opts...)
	s.AddTool(mcp.NewTool("echo", mcp.WithString("text")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.calls.Add(1)
		b, _ := json.Marshal(r.GetRawArguments())
		return mcp.NewToolResultText(string(b)), nil
	})
	s.AddTool(mcp.NewToolWithRawSchema("schema", "raw schema tool", json.RawMessage(schemaTool)), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	})
	s.AddTool(mcp.NewTool("big", mcp.WithNumber("size")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strings.Repeat("x", argInt(r.GetArguments(), "size"))), nil
	})
	s.AddTool(mcp.NewTool("slow", mcp.WithString("tag")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		tag := argString(r.GetArguments(), "tag")
		f.started <- tag
		<-ctx.Done()
		f.cancelled <- tag
		return nil, ctx.Err()
	})
	s.AddTool(mcp.NewTool("progress", mcp.WithNumber("n")), func(ctx context.Context, r mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var token any
		if r.Params.Meta != nil {
			token = r.Params.Meta.ProgressToken
		}
		n := argInt(r.GetArguments(), "n")
		srv := mcpserver.ServerFromContext(ctx)
		for i := 1; i <= n && token != nil; i++ {
			if err := srv.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
				"progressToken": token, "progress": i, "total": n, "message": "step " + strconv.Itoa(i),
			}); err != nil {
				return nil, err
			}
		}
		select {
		case <-f.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return mcp.NewToolResultText("done"), nil
	})
	s.AddResource(mcp.NewResource("res://one", "one", mcp.WithMIMEType("text/plain")), func(ctx context.Context, r mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: "res://one", MIMEType: "text/plain", Text: "one"}}, nil
	})
	s.AddResourceTemplate(mcp.NewResourceTemplate("res://item/{id}", "item"), func(ctx context.Context, r mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: r.Params.URI, Text: "item"}}, nil
	})
	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithPromptDescription("says hi")), func(ctx context.Context, r mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("hi", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hi"))}), nil
	})
	return s
}

// mcpgoLegacy serves s in the session era only: stateful sessions (unknown
// ids get 404) and only initialize-era versions in server/discover.
func mcpgoLegacy(s *mcpserver.MCPServer) http.Handler {
	return mcpserver.NewStreamableHTTPServer(s, mcpserver.WithStateful(true),
		mcpserver.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...))
}

// mcpgoModern serves s with mcp-go's defaults: both eras, 2026-07-28
// advertised by server/discover.
func mcpgoModern(s *mcpserver.MCPServer) http.Handler {
	return mcpserver.NewStreamableHTTPServer(s)
}

// mcpgoSessionless serves s in both eras without sessions: initialize
// answers without an Mcp-Session-Id.
func mcpgoSessionless(s *mcpserver.MCPServer) http.Handler {
	return mcpserver.NewStreamableHTTPServer(s, mcpserver.WithStateLess(true))
}

// gosdkServer builds a go-sdk server with the fixture's tools.
func gosdkServer(f *fixture) *gosdk.Server {
	s := gosdk.NewServer(&gosdk.Implementation{Name: "gosdk-test", Version: "4.5.6"}, nil)
	s.AddTool(&gosdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}}}`)},
		func(ctx context.Context, r *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			f.calls.Add(1)
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: string(r.Params.Arguments)}}}, nil
		})
	s.AddTool(&gosdk.Tool{Name: "schema", Description: "raw schema tool", InputSchema: json.RawMessage(schemaTool)},
		func(ctx context.Context, r *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: "ok"}}}, nil
		})
	s.AddTool(&gosdk.Tool{Name: "big", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, r *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			var a struct{ Size int }
			_ = json.Unmarshal(r.Params.Arguments, &a)
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: strings.Repeat("x", a.Size)}}}, nil
		})
	s.AddTool(&gosdk.Tool{Name: "slow", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, r *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			var a struct{ Tag string }
			_ = json.Unmarshal(r.Params.Arguments, &a)
			f.started <- a.Tag
			<-ctx.Done()
			f.cancelled <- a.Tag
			return nil, ctx.Err()
		})
	s.AddTool(&gosdk.Tool{Name: "progress", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(ctx context.Context, r *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			var a struct{ N int }
			_ = json.Unmarshal(r.Params.Arguments, &a)
			token := r.Params.GetProgressToken()
			for i := 1; i <= a.N && token != nil; i++ {
				if err := r.Session.NotifyProgress(ctx, &gosdk.ProgressNotificationParams{
					ProgressToken: token, Progress: float64(i), Total: float64(a.N),
				}); err != nil {
					return nil, err
				}
			}
			select {
			case <-f.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: "done"}}}, nil
		})
	return s
}

func addGosdkTool(s *gosdk.Server, name string) {
	s.AddTool(&gosdk.Tool{Name: name, InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *gosdk.CallToolRequest) (*gosdk.CallToolResult, error) {
			return &gosdk.CallToolResult{Content: []gosdk.Content{&gosdk.TextContent{Text: "new"}}}, nil
		})
}

func gosdkHandler(s *gosdk.Server, stateless bool) http.Handler {
	return gosdk.NewStreamableHTTPHandler(func(*http.Request) *gosdk.Server { return s },
		&gosdk.StreamableHTTPOptions{
			Stateless: stateless,
			// Without it go-sdk v1.8.0 keeps running a stateless handler
			// after its client closed the response stream, which the
			// 2026-07-28 transport says MUST be treated as cancellation.
			PropagateRequestCancellation: true,
		})
}

// testServer is an HTTP server on 127.0.0.1 that can be stopped and started
// again on the same address, and whose handler can be swapped.
type testServer struct {
	addr  string
	conns atomic.Int64 // connections accepted
	h     atomic.Pointer[http.Handler]
	mu    sync.Mutex
	srv   *http.Server
}

func serve(tb testing.TB, h http.Handler) *testServer {
	tb.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(tb.Context(), "tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	ts := &testServer{addr: ln.Addr().String()}
	ts.setHandler(h)
	ts.startOn(ln)
	tb.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) setHandler(h http.Handler) { ts.h.Store(&h) }

func (ts *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*ts.h.Load()).ServeHTTP(w, r)
}

func (ts *testServer) startOn(ln net.Listener) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.srv = &http.Server{Handler: ts, ReadHeaderTimeout: 10 * time.Second, ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			ts.conns.Add(1)
		}
	}}
	srv := ts.srv
	go func() { _ = srv.Serve(ln) }()
}

// stop closes the listener and every connection at once, like a crash.
func (ts *testServer) stop() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.srv != nil {
		_ = ts.srv.Close()
		ts.srv = nil
	}
}

// restart listens on the same address again.
func (ts *testServer) restart(tb testing.TB) {
	tb.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(tb.Context(), "tcp", ts.addr)
	require.NoError(tb, err)
	ts.startOn(ln)
}

func (ts *testServer) url(path string) string { return "http://" + ts.addr + path }

// interceptTool wraps h: a tools/call of the named tool is answered by
// reply instead of h. Everything else, the handshake included, is real.
func interceptTool(h http.Handler, tool string, reply http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			if bytes.Contains(body, []byte(`"tools/call"`)) && bytes.Contains(body, []byte(`"name":"`+tool+`"`)) {
				reply(w, r)
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// recorder collects OnChange calls.
type recorder struct{ ch chan string }

func newRecorder() *recorder { return &recorder{ch: make(chan string, 1024)} }

func (r *recorder) onChange(name string) {
	select {
	case r.ch <- name:
	default:
	}
}

// waitFor blocks until cond holds for the client's catalog, re-checking
// after every OnChange, and fails the test after a generous deadline.
func waitFor(tb testing.TB, c *upstream.Client, rec *recorder, what string, cond func(cat *upstream.Catalog, ok bool) bool) *upstream.Catalog {
	tb.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		cat, ok := c.Catalog()
		if cond(cat, ok) {
			return cat
		}
		select {
		case <-rec.ch:
		case <-deadline.C:
			cat, ok := c.Catalog()
			tb.Fatalf("timed out waiting for %s (available=%v, catalog=%v)", what, ok, cat != nil)
		}
	}
}

func available(cat *upstream.Catalog, ok bool) bool { return ok && cat != nil }
func unavailable(_ *upstream.Catalog, ok bool) bool { return !ok }

type clientOpt func(*configs.Upstream, *upstream.Options)

func withTimeout(d time.Duration) clientOpt {
	return func(c *configs.Upstream, _ *upstream.Options) { c.Timeout = d }
}

func withHealth(d time.Duration) clientOpt {
	return func(_ *configs.Upstream, o *upstream.Options) { o.HealthInterval = d }
}

func withLogger(l *slog.Logger) clientOpt {
	return func(_ *configs.Upstream, o *upstream.Options) { o.Logger = l }
}

func withConfig(f func(*configs.Upstream)) clientOpt {
	return func(c *configs.Upstream, _ *upstream.Options) { f(c) }
}

// startClient starts a client for cfg and waits until it is available.
func startClient(tb testing.TB, cfg configs.Upstream, opts ...clientOpt) (*upstream.Client, *recorder) { //nolint:gocritic // hugeParam: opts edit the helper's own copy of cfg
	tb.Helper()
	rec := newRecorder()
	o := upstream.Options{OnChange: rec.onChange, ClientName: "mcpgw-test", ClientVersion: "0.0.1", HealthInterval: time.Hour}
	if testing.Verbose() {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, f := range opts {
		f(&cfg, &o)
	}
	c, err := upstream.New(&cfg, &o)
	require.NoError(tb, err)
	c.Start()
	tb.Cleanup(func() { _ = c.Close() })
	waitFor(tb, c, rec, "the upstream to become available", available)
	return c, rec
}

func httpConfig(name, url string) configs.Upstream {
	return configs.Upstream{Name: name, HTTP: &configs.HTTPTransport{URL: url}}
}

// statelessConfig is httpConfig pinned to 2026-07-28: auto would keep a
// session with an mcp-go server, which offers one.
func statelessConfig(name, url string) configs.Upstream {
	cfg := httpConfig(name, url)
	cfg.ProtocolVersion = "2026-07-28"
	return cfg
}

// call is a tools/call with JSON arguments.
func call(tool string, args string) *upstream.Request {
	return &upstream.Request{
		Method: "tools/call",
		Params: json.RawMessage(`{"name":"` + tool + `","arguments":` + args + `}`),
	}
}

// rawExchange POSTs body and returns the JSON-RPC message with the given id
// from the answer (JSON or event stream) and the Mcp-Session-Id header.
func rawExchange(tb testing.TB, url string, hdr map[string]string, body string, id string) (json.RawMessage, string) {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	require.Equal(tb, 2, resp.StatusCode/100, "raw %s: HTTP %d", body, resp.StatusCode)
	sid := resp.Header.Get("Mcp-Session-Id")
	if id == "" {
		return nil, sid
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var env struct{ ID json.RawMessage }
			if json.Unmarshal([]byte(data), &env) == nil && string(env.ID) == id {
				return json.RawMessage(data), sid
			}
		}
		tb.Fatalf("raw %s: no response with id %s", body, id)
	}
	b, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return b, sid
}

const rawMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// rawSession performs a raw exchange in either era; for the session era it
// initializes first.
type rawSession struct {
	t      testing.TB
	url    string
	modern bool
	sid    string
	next   int
}

func newRawSession(tb testing.TB, url string, modern bool) *rawSession {
	tb.Helper()
	rs := &rawSession{t: tb, url: url, modern: modern, next: 100}
	if !modern {
		_, rs.sid = rawExchange(tb, url, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "1")
		rawExchange(tb, url, rs.headers("notifications/initialized", ""), `{"jsonrpc":"2.0","method":"notifications/initialized"}`, "")
	}
	return rs
}

func (rs *rawSession) headers(method, name string) map[string]string {
	if rs.modern {
		h := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
		if name != "" {
			h["Mcp-Name"] = name
		}
		return h
	}
	h := map[string]string{"MCP-Protocol-Version": "2025-11-25"}
	if rs.sid != "" {
		h["Mcp-Session-Id"] = rs.sid
	}
	return h
}

// do sends method with params (a JSON object body without braces, may be
// empty) and returns the raw result.
func (rs *rawSession) do(method, name, params string) json.RawMessage {
	rs.next++
	id := strconv.Itoa(rs.next)
	if rs.modern {
		if params != "" {
			params += ","
		}
		params += rawMeta
	}
	msg, _ := rawExchange(rs.t, rs.url, rs.headers(method, name),
		fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":%q,"params":{%s}}`, id, method, params), id)
	var env struct {
		Result json.RawMessage
		Error  json.RawMessage
	}
	require.NoError(rs.t, json.Unmarshal(msg, &env))
	require.Nil(rs.t, env.Error, "raw %s: %s", method, env.Error)
	return env.Result
}

// list returns the raw elements of one list method, all pages.
func (rs *rawSession) list(method, field string) []json.RawMessage {
	var all []json.RawMessage
	cursor := ""
	for {
		params := ""
		if cursor != "" {
			params = `"cursor":` + strconv.Quote(cursor)
		}
		res := rs.do(method, "", params)
		var page map[string]json.RawMessage
		require.NoError(rs.t, json.Unmarshal(res, &page))
		var items []json.RawMessage
		require.NoError(rs.t, json.Unmarshal(page[field], &items))
		all = append(all, items...)
		var next string
		_ = json.Unmarshal(page["nextCursor"], &next)
		if next == "" {
			return all
		}
		cursor = next
	}
}

// logCapture is a slog handler that forwards records to a channel.
type logCapture struct {
	ch chan slog.Record
}

func newLogCapture() *logCapture { return &logCapture{ch: make(chan slog.Record, 4096)} }

func (l *logCapture) Enabled(context.Context, slog.Level) bool { return true }

func (l *logCapture) Handle(_ context.Context, r slog.Record) error { //nolint:gocritic // hugeParam: the signature is slog.Handler's
	select {
	case l.ch <- r.Clone():
	default:
	}
	return nil
}

func (l *logCapture) WithAttrs(as []slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler         { return l }

// waitStderr waits for a stderr line of the child containing want.
func (l *logCapture) waitStderr(tb testing.TB, want string) {
	tb.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		select {
		case r := <-l.ch:
			found := false
			r.Attrs(func(a slog.Attr) bool {
				if a.Key == "line" && strings.Contains(a.Value.String(), want) {
					found = true
				}
				return !found
			})
			if found {
				return
			}
		case <-deadline.C:
			tb.Fatalf("timed out waiting for stderr line %q", want)
		}
	}
}

// receive waits for a value on ch.
func receive[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(20 * time.Second):
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func isUnavailable(err error) bool { return errors.Is(err, upstream.ErrUnavailable) }
