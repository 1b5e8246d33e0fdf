package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHistogramQuantiles(t *testing.T) {
	t.Parallel()

	var h, a, b Histogram
	var all []time.Duration
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 100000 {
		d := time.Duration(r.ExpFloat64() * float64(300*time.Microsecond))
		all = append(all, d)
		h.Record(d)
		if i%2 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(&b)
	slices.Sort(all)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := all[int(q*float64(len(all)))-1]
		got := h.Quantile(q)
		assert.InEpsilon(t, float64(want), float64(got), 0.01, "q=%v", q)
		assert.Equal(t, got, a.Quantile(q), "merged histogram, q=%v", q)
	}
	assert.Equal(t, all[len(all)-1], h.Max())
	assert.Equal(t, uint64(len(all)), a.Count())
	assert.Zero(t, new(Histogram).Quantile(0.5))
}

func TestBucketsAreMonotonic(t *testing.T) {
	t.Parallel()

	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 1000, 1 << 20, 1<<40 + 12345, 1<<63 - 1} {
		b := bucketOf(v)
		assert.Greater(t, b, prev, "v=%d", v)
		assert.Less(t, b, nBuckets)
		mid := bucketMid(b)
		assert.InEpsilon(t, float64(max(v, 1)), max(mid, 1), 0.01, "v=%d", v)
		prev = b
	}
}

func TestLastSSEData(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, in, want string
	}{
		{name: "one event", in: "event: message\ndata: {\"id\":1}\n\n", want: `{"id":1}`},
		{name: "last wins", in: "data: {\"a\":1}\n\nid: 2\ndata: {\"b\":2}\n\n", want: `{"b":2}`},
		{name: "crlf and multi-line", in: "data: {\"a\":\r\ndata: 1}\r\n\r\n", want: "{\"a\":\n1}"},
		{name: "unterminated last event", in: "data: x\n\ndata: y", want: "y"},
		{name: "no data", in: ": comment\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, string(lastSSEData([]byte(tt.in))))
		})
	}
}

// fakeServer is a small MCP server: initialize, tools/call echo and
// tools/list over three pages; sse answers with event streams.
type fakeServer struct {
	sse bool
	// auth, when set, is the Authorization value every request must carry.
	auth     string
	isError  atomic.Bool
	sessions atomic.Int64
	calls    atomic.Int64
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
		Params struct {
			Name      string          `json:"name"`
			Cursor    string          `json:"cursor"`
			Arguments json.RawMessage `json:"arguments"`
			Meta      map[string]any  `json:"_meta"`
		} `json:"params"`
	}
	if f.auth != "" && r.Header.Get("Authorization") != f.auth {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "want application/json", http.StatusUnsupportedMediaType)
		return
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if req.ID == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	stateless := r.Header.Get("Mcp-Protocol-Version") == VersionStateless
	if stateless && (r.Header.Get("Mcp-Method") != req.Method || req.Params.Meta["io.modelcontextprotocol/protocolVersion"] != VersionStateless) {
		http.Error(w, "bad stateless request", http.StatusBadRequest)
		return
	}
	if !stateless && req.Method != "initialize" && r.Header.Get("Mcp-Session-Id") != "s1" {
		http.Error(w, "no session", http.StatusBadRequest)
		return
	}
	var result string
	switch req.Method {
	case "initialize":
		f.sessions.Add(1)
		w.Header().Set("Mcp-Session-Id", "s1")
		result = `{"protocolVersion":"2025-11-25","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}`
	case "tools/call":
		f.calls.Add(1)
		var args struct{ Text string }
		_ = json.Unmarshal(req.Params.Arguments, &args)
		text, _ := json.Marshal(args.Text)
		result = fmt.Sprintf(`{"content":[{"type":"text","text":%s}],"isError":%v}`, text, f.isError.Load())
	case "tools/list":
		next := map[string]string{"": "p2", "p2": "p3", "p3": ""}[req.Params.Cursor]
		result = `{"tools":[{"name":"a"},{"name":"b"}]`
		if next != "" {
			result += `,"nextCursor":"` + next + `"`
		}
		result += "}"
	case "ping":
		result = "{}"
	default:
		result = ""
	}
	msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
	if result == "" {
		msg = fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, req.ID)
	}
	if f.sse {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: %s\n\n", msg)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, msg)
}

func TestRun(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name      string
		sse       bool
		cfg       Config
		wantTools int
	}{
		{name: "2025 calls", cfg: Config{Era: Era2025, Method: MethodCall, Concurrency: 4, Count: 200}},
		{name: "2026 calls", cfg: Config{Era: Era2026, Method: MethodCall, Concurrency: 2, Duration: 100 * time.Millisecond}},
		{name: "SSE calls", sse: true, cfg: Config{Era: Era2025, Method: MethodCall, Concurrency: 2, Count: 50}},
		{name: "2025 lists", cfg: Config{Era: Era2025, Method: MethodList, Concurrency: 1, Count: 20}, wantTools: 6},
		{name: "2026 lists over SSE", sse: true, cfg: Config{Era: Era2026, Method: MethodList, Concurrency: 3, Count: 20}, wantTools: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{sse: tt.sse}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)

			cfg := tt.cfg
			cfg.URL = srv.URL
			res, err := Run(t.Context(), &cfg)
			require.NoError(t, err)
			assert.Zero(t, res.Errors, "errors: %v", res.ErrorSample)
			if cfg.Count > 0 {
				assert.Equal(t, cfg.Count, res.Calls)
			} else {
				assert.Positive(t, res.Calls)
			}
			assert.Positive(t, res.P50us)
			assert.GreaterOrEqual(t, res.P99us, res.P50us)
			assert.Equal(t, tt.wantTools, res.Tools)
			if cfg.Era == Era2025 {
				assert.Equal(t, int64(cfg.Concurrency), f.sessions.Load(), "one session per worker")
			} else {
				assert.Zero(t, f.sessions.Load(), "stateless: no initialize")
			}
		})
	}
}

func TestRunSendsHeader(t *testing.T) {
	t.Parallel()

	for _, era := range []string{Era2025, Era2026} {
		t.Run(era, func(t *testing.T) {
			t.Parallel()
			f := &fakeServer{auth: "Bearer t0k3n"}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close)

			_, err := Run(t.Context(), &Config{URL: srv.URL, Era: era, Concurrency: 1, Count: 5})
			require.ErrorContains(t, err, "HTTP 401", "without the header")

			// Content-Type in Header must not override the client's own.
			h := http.Header{"Authorization": {"Bearer t0k3n"}, "Content-Type": {"text/plain"}}
			res, err := Run(t.Context(), &Config{URL: srv.URL, Era: era, Concurrency: 2, Count: 20, Header: h})
			require.NoError(t, err)
			assert.Equal(t, int64(20), res.Calls)
			assert.Zero(t, res.Errors, "errors: %v", res.ErrorSample)
		})
	}
}

func TestRunReportsFailures(t *testing.T) {
	t.Parallel()

	f := &fakeServer{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)

	// A tool that fails before the measurement is a setup error.
	f.isError.Store(true)
	_, err := Run(t.Context(), &Config{URL: srv.URL, Concurrency: 2, Count: 10})
	require.ErrorContains(t, err, "isError")

	// An unknown era is refused.
	_, err = Run(t.Context(), &Config{URL: srv.URL, Concurrency: 1, Count: 1, Era: "1999"})
	require.ErrorContains(t, err, "era")

	// Failures during the window are counted, not fatal.
	f.isError.Store(false)
	go func() {
		for f.calls.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		f.isError.Store(true)
	}()
	res, err := Run(t.Context(), &Config{URL: srv.URL, Concurrency: 1, Count: 200})
	require.NoError(t, err)
	assert.Positive(t, res.Errors)
	require.NotEmpty(t, res.ErrorSample)
	assert.Contains(t, res.ErrorSample[0], "isError", res.ErrorSample[0])
}

func TestOpenSessions(t *testing.T) {
	t.Parallel()

	f := &fakeServer{}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)

	clients, err := OpenSessions(t.Context(), srv.URL, 25, 4, NewTransport(4, nil))
	require.NoError(t, err)
	require.Len(t, clients, 25)
	assert.Equal(t, int64(25), f.sessions.Load())
	for _, c := range clients {
		assert.Equal(t, "s1", c.SessionID())
	}
	require.NoError(t, clients[0].Ping(t.Context()))
}
