package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/upstream"
)

// fakeUpstream is an in-memory Upstream: a fixed catalog, and calls
// answered by handle (an ok text result when nil). It records every
// request it gets.
type fakeUpstream struct {
	name   string
	cat    upstream.Catalog
	down   atomic.Bool // Catalog reports the upstream unreachable
	handle func(ctx context.Context, req *upstream.Request) (json.RawMessage, error)

	mu   sync.Mutex
	reqs []*upstream.Request
}

var _ Upstream = (*fakeUpstream)(nil)

// newFake is a fake with the given tools, each a JSON object.
func newFake(name string, tools ...string) *fakeUpstream {
	f := &fakeUpstream{name: name}
	for _, tl := range tools {
		f.cat.Tools = append(f.cat.Tools, json.RawMessage(tl))
	}
	f.cat.Stateless = true
	return f
}

func (f *fakeUpstream) Name() string { return f.name }
func (f *fakeUpstream) Start()       {}
func (f *fakeUpstream) Close() error { return nil }

func (f *fakeUpstream) Catalog() (*upstream.Catalog, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cat
	return &c, !f.down.Load()
}

// setTools replaces the fake's tools, as an upstream that changed its
// catalog; the test then rebuilds the gateway's catalog.
func (f *fakeUpstream) setTools(tools ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cat.Tools = nil
	for _, tl := range tools {
		f.cat.Tools = append(f.cat.Tools, json.RawMessage(tl))
	}
}

func (f *fakeUpstream) Call(ctx context.Context, req *upstream.Request) (json.RawMessage, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if f.handle != nil {
		return f.handle(ctx, req)
	}
	return json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`), nil
}

// requests returns what the fake was sent.
func (f *fakeUpstream) requests() []*upstream.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*upstream.Request(nil), f.reqs...)
}

// auditBuffer collects the audit stream's JSON lines.
type auditBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (a *auditBuffer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.buf.Write(p)
}

// records decodes every record written so far.
func (a *auditBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(a.buf.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &rec), "audit line %s", sc.Text())
		out = append(out, rec)
	}
	return out
}

// testGateway is a Gateway over in-memory fakes, served without sockets.
type testGateway struct {
	*Gateway
	audit *auditBuffer
	ups   map[string]*fakeUpstream
	seq   atomic.Int64
}

// newTestGateway builds a gateway from a YAML configuration whose
// upstreams are the fakes, by name. The upstreams' URLs in the YAML are
// never dialled.
func newTestGateway(tb testing.TB, yaml string, fakes ...*fakeUpstream) *testGateway {
	tb.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(tb, err, "config:\n%s", yaml)
	tg := &testGateway{audit: &auditBuffer{}, ups: make(map[string]*fakeUpstream, len(fakes))}
	for _, f := range fakes {
		tg.ups[f.name] = f
	}
	g, err := New(cfg, &Options{
		auditTo: tg.audit,
		dial: func(u *configs.Upstream, _ *upstream.Options) (Upstream, error) {
			f, ok := tg.ups[u.Name]
			require.True(tb, ok, "no fake for upstream %q", u.Name)
			return f, nil
		},
	})
	require.NoError(tb, err)
	tg.Gateway = g
	g.Start()
	tb.Cleanup(g.Close)
	require.True(tb, g.Ready(), "fakes list their catalogs at once")
	return tg
}

// fakesYAML is a configuration of upstreams by name, each on a URL that
// is never dialled.
func fakesYAML(names ...string) string {
	var b strings.Builder
	b.WriteString("server:\n  listen: 127.0.0.1:0\nupstreams:\n")
	for _, n := range names {
		b.WriteString("  - name: " + n + "\n    http:\n      url: http://" + n + ".invalid/mcp\n")
	}
	return b.String()
}

// request is one POST to /mcp.
type request struct {
	header    map[string]string
	body      string
	principal *authn.Principal
}

// post serves one request and returns the response and the request id
// the gateway logged it under.
func (tg *testGateway) post(t *testing.T, rq request) (*httptest.ResponseRecorder, string) {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mcp", strings.NewReader(rq.body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Accept", "application/json, text/event-stream")
	id := "req-" + strconv.FormatInt(tg.seq.Add(1), 10)
	r.Header.Set("X-Request-Id", id)
	for k, v := range rq.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	tg.serve(w, r, rq.principal)
	return w, id
}

// serve serves r through the HTTP chain, or, for a request the test
// authenticated itself (p), straight to /mcp as the chain would after
// authentication.
func (tg *testGateway) serve(w http.ResponseWriter, r *http.Request, p *authn.Principal) {
	if p == nil {
		tg.Handler().ServeHTTP(w, r)
		return
	}
	ctx := withRequestID(authn.WithPrincipal(r.Context(), p), r.Header.Get("X-Request-Id"))
	tg.serveMCP(w, r.WithContext(ctx))
}

// modernHeaders are the headers of a 2026-07-28 request.
func modernHeaders(method, name string) map[string]string {
	h := map[string]string{mcpwire.HeaderProtocolVersion: "2026-07-28", mcpwire.HeaderMethod: method}
	if name != "" {
		h[mcpwire.HeaderName] = name
	}
	return h
}

// modernBody is a 2026-07-28 request body; params is a JSON object's
// members without braces.
func modernBody(id int, method, params string) string {
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	if params != "" {
		meta += "," + params
	}
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"` + method + `","params":{` + meta + `}}`
}

// modernCall is a 2026-07-28 tools/call of name with arguments args.
func modernCall(id int, name, args string) request {
	return request{
		header: modernHeaders("tools/call", name),
		body:   modernBody(id, "tools/call", `"name":`+strconv.Quote(name)+`,"arguments":`+args),
	}
}

// session opens a 2025-era session and returns its id.
func (tg *testGateway) session(t *testing.T, p *authn.Principal) string {
	t.Helper()
	w, _ := tg.post(t, request{principal: p, body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	sid := w.Header().Get(mcpwire.HeaderSessionID)
	require.NotEmpty(t, sid)
	return sid
}

// legacyCall is a 2025-era tools/call on session sid.
func legacyCall(sid string, id int, name, args string) request {
	return request{
		header: map[string]string{mcpwire.HeaderSessionID: sid, mcpwire.HeaderProtocolVersion: "2025-11-25"},
		body:   `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"tools/call","params":{"name":` + strconv.Quote(name) + `,"arguments":` + args + `}}`,
	}
}

// rpcAnswer decodes a JSON-RPC answer, from a JSON body or the last event
// of an event stream.
func rpcAnswer(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	body := w.Body.Bytes()
	if strings.HasPrefix(w.Header().Get("Content-Type"), "text/event-stream") {
		var last []byte
		for line := range bytes.SplitSeq(body, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
				last = d
			}
		}
		body = last
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m), "answer %s", w.Body.String())
	return m
}

// errorCode is the JSON-RPC error code of an answer, 0 for a result.
func errorCode(t *testing.T, w *httptest.ResponseRecorder) int {
	t.Helper()
	e, ok := rpcAnswer(t, w)["error"].(map[string]any)
	if !ok {
		return 0
	}
	return int(e["code"].(float64)) //nolint:forcetypeassert // a JSON-RPC error code is a number.
}
