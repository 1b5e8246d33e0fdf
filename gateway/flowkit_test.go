package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// The flow tests' own helpers, beside harness_test.go: a fake whose
// catalog changes while the gateway runs, a gateway built with any
// Options, and a ResponseWriter a test reads while the handler still
// writes (event streams). Header names are spelled out, as a client
// sends them.

// liveFake is a fakeUpstream whose catalog can be replaced while the
// gateway runs; replacing it tells the gateway, as a real client's
// list_changed would. It counts Close, and panics in Catalog on demand.
type liveFake struct {
	*fakeUpstream
	cur      atomic.Pointer[upstream.Catalog]
	onChange atomic.Pointer[func(string)]
	closed   atomic.Int32
	panics   atomic.Bool
	failed   atomic.Bool // its first attempt failed
}

var _ attempter = (*liveFake)(nil)

// Attempted: the fake has listed, or its first attempt failed.
func (f *liveFake) Attempted() bool { return f.cur.Load() != nil || f.failed.Load() }

// failFirst makes the fake's first attempt fail, as an upstream that is
// down does: no catalog, unavailable, and the change signalled.
func (f *liveFake) failFirst() {
	f.down.Store(true)
	f.failed.Store(true)
	if fn := f.onChange.Load(); fn != nil {
		(*fn)(f.name)
	}
}

// newLiveFake is a live fake with the given catalog; nil means not listed
// yet.
func newLiveFake(name string, cat *upstream.Catalog) *liveFake {
	f := &liveFake{fakeUpstream: newFake(name)}
	if cat != nil {
		f.cur.Store(cat)
	}
	return f
}

func (f *liveFake) Catalog() (*upstream.Catalog, bool) {
	if f.panics.Load() {
		panic("catalog exploded")
	}
	return f.cur.Load(), !f.down.Load()
}

func (f *liveFake) Close() error {
	f.closed.Add(1)
	return nil
}

// setCatalog replaces the catalog and signals the change.
func (f *liveFake) setCatalog(cat *upstream.Catalog) {
	f.cur.Store(cat)
	if fn := f.onChange.Load(); fn != nil {
		(*fn)(f.name)
	}
}

// toolsCatalog is a stateless catalog of the given tools.
func toolsCatalog(tools ...string) *upstream.Catalog {
	cat := &upstream.Catalog{Stateless: true}
	for _, tl := range tools {
		cat.Tools = append(cat.Tools, json.RawMessage(tl))
	}
	return cat
}

// buildGateway is newTestGateway with any Options (nil: none) and any
// Upstream: the configuration's upstreams are dialled from ups by name (an
// upstream a reload adds must be among them). It does not wait for
// readiness.
func buildGateway(t *testing.T, yaml string, options *Options, ups ...Upstream) *testGateway {
	t.Helper()
	var opts Options
	if options != nil {
		opts = *options
	}
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err, "config:\n%s", yaml)
	tg := &testGateway{audit: &auditBuffer{}, ups: map[string]*fakeUpstream{}}
	byName := make(map[string]Upstream, len(ups))
	for _, u := range ups {
		byName[u.Name()] = u
		if f, ok := u.(*fakeUpstream); ok {
			tg.ups[f.name] = f
		}
	}
	opts.auditTo = tg.audit
	opts.dial = func(u *configs.Upstream, o *upstream.Options) (Upstream, error) {
		up, ok := byName[u.Name]
		if !ok {
			return nil, fmt.Errorf("no fake for upstream %q", u.Name)
		}
		if lf, ok := up.(*liveFake); ok && o.OnChange != nil {
			lf.onChange.Store(&o.OnChange)
		}
		return up, nil
	}
	g, err := New(cfg, &opts)
	require.NoError(t, err)
	tg.Gateway = g
	g.Start()
	t.Cleanup(g.Close)
	return tg
}

// do serves one request of any method and path through the whole HTTP
// chain.
func (tg *testGateway) do(t *testing.T, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	tg.Handler().ServeHTTP(w, r)
	return w
}

// mcpRequest is a request to /mcp with the usual Content-Type and Accept
// of a client, then header.
func mcpRequest(ctx context.Context, method, body string, header map[string]string) *http.Request {
	r := httptest.NewRequestWithContext(ctx, method, "/mcp", strings.NewReader(body))
	if method == http.MethodPost {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		r.Header.Set(k, v)
	}
	return r
}

// streamWriter is an http.ResponseWriter a test reads while the handler
// writes: the status and each write are handed over on channels.
type streamWriter struct {
	header http.Header
	status chan int
	writes chan []byte
	wrote  atomic.Bool
}

func newStreamWriter() *streamWriter {
	return &streamWriter{header: http.Header{}, status: make(chan int, 1), writes: make(chan []byte, 256)}
}

func (w *streamWriter) Header() http.Header { return w.header }

func (w *streamWriter) WriteHeader(code int) {
	if w.wrote.CompareAndSwap(false, true) {
		w.status <- code
	}
}

func (w *streamWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.writes <- bytes.Clone(p)
	return len(p), nil
}

func (w *streamWriter) Flush() {}

// guard bounds how long a flow test waits for the gateway before failing,
// so that a broken flow fails instead of hanging.
const guard = 10 * time.Second

// serveAsync serves r (as p, when set) on a goroutine; done closes when
// the handler returned.
func (tg *testGateway) serveAsync(r *http.Request, p *authn.Principal) (w *streamWriter, done <-chan struct{}) {
	w = newStreamWriter()
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		tg.serve(w, r, p)
	}()
	return w, ch
}

// statusOf waits for the response's status.
func (w *streamWriter) statusOf(t *testing.T) int {
	t.Helper()
	select {
	case code := <-w.status:
		w.status <- code // for the next caller
		return code
	case <-time.After(guard):
		require.FailNow(t, "no response status")
		return 0
	}
}

// event waits for the next SSE event with data and decodes it.
func (w *streamWriter) event(t *testing.T) map[string]any {
	t.Helper()
	for {
		select {
		case b := <-w.writes:
			for line := range bytes.SplitSeq(b, []byte("\n")) {
				// A priming event (an id, no data) is not dispatched,
				// as an SSE client would not dispatch it.
				if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok && len(d) > 0 {
					var m map[string]any
					require.NoError(t, json.Unmarshal(d, &m), "event %s", b)
					return m
				}
			}
		case <-time.After(guard):
			require.FailNow(t, "no event")
			return nil
		}
	}
}

// wait waits for a served request's handler to return.
func wait(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(guard):
		require.FailNow(t, "the handler did not return")
	}
}

// openSession initializes a 2025-era session declaring caps (a JSON
// object) and returns its id.
func (tg *testGateway) openSession(t *testing.T, caps string, p *authn.Principal) string {
	t.Helper()
	w, _ := tg.post(t, request{principal: p, body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":` + caps + `,"clientInfo":{"name":"t","version":"1"}}}`})
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	sid := w.Header().Get("Mcp-Session-Id")
	require.NotEmpty(t, sid)
	return sid
}

// legacyRequest is a 2025-era request on session sid; params is a JSON
// object or "".
func legacyRequest(sid string, id int, method, params string) request {
	body := `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"` + method + `"`
	if params != "" {
		body += `,"params":` + params
	}
	return request{
		header: map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"},
		body:   body + "}",
	}
}

// modernRequest is a 2026-07-28 request with the given client
// capabilities; params are members without braces, name the Mcp-Name
// header ("" for none).
func modernRequest(id int, method, name, params, caps string) request {
	h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": method}
	if name != "" {
		h["Mcp-Name"] = name
	}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + caps + `}`
	if params != "" {
		meta += "," + params
	}
	return request{header: h, body: `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"` + method + `","params":{` + meta + `}}`}
}

// resultOf is the result of a JSON-RPC answer, which must not be an error.
func resultOf(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	ans := rpcAnswer(t, w)
	require.Nil(t, ans["error"], "answer %s", w.Body.String())
	res, ok := ans["result"].(map[string]any)
	require.True(t, ok, "answer %s", w.Body.String())
	return res
}

// errorData is the data of a JSON-RPC error answer.
func errorData(t *testing.T, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	e, ok := rpcAnswer(t, w)["error"].(map[string]any)
	require.True(t, ok, "answer %s", w.Body.String())
	data, _ := e["data"].(map[string]any)
	return data
}

// auditEvents closes the gateway, which flushes the audit stream, and
// returns its records of one event.
func (tg *testGateway) auditEvents(t *testing.T, event string) []map[string]any {
	t.Helper()
	tg.Close()
	var out []map[string]any
	for _, rec := range tg.audit.records(t) {
		if rec["event"] == event {
			out = append(out, rec)
		}
	}
	return out
}

// listed is the member key ("name", "uri", "uriTemplate") of each item
// of a list result's array list.
func listed(t *testing.T, res map[string]any, list, key string) []string {
	t.Helper()
	items, ok := res[list].([]any)
	require.True(t, ok, "result has %s: %v", list, res)
	out := make([]string, 0, len(items))
	for _, it := range items {
		m, _ := it.(map[string]any)
		s, _ := m[key].(string)
		out = append(out, s)
	}
	return out
}
