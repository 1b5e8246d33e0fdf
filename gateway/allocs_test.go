package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/upstream"
)

// replayBody is a request body that can be read again without allocating.
type replayBody struct{ bytes.Reader }

func (*replayBody) Close() error { return nil }

// countingWriter is a ResponseWriter that keeps the status and counts the
// bytes and Write calls, allocating nothing per response.
type countingWriter struct {
	h      http.Header
	status int
	writes int
	n      int
}

func (w *countingWriter) Header() http.Header { return w.h }
func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.writes++
	w.n += len(p)
	return len(p), nil
}

// TestCallAllocs pins the allocations of one tools/call through the call
// path (from /mcp to the answer, an in-memory upstream, audit to memory),
// in each era, and that the answer is one Write with no flush. The
// numbers are the gateway's own: net/http's request read and the
// upstream's transport are outside this test (BenchmarkCallPath in
// bench/upstream measures the whole process). A change that adds an
// allocation per call fails here; raise a budget only with the reason.
func TestCallAllocs(t *testing.T) {
	const args = `{"text":"abcdefghijklmnopqrstuvwxyz0123456789"}`
	result := json.RawMessage(`{"content":[{"type":"text","text":"abcdefghijklmnopqrstuvwxyz0123456789"}],"isError":false}`)
	tests := []struct {
		name   string
		legacy bool
		budget float64
	}{
		{name: "2025 session", legacy: true, budget: 30},
		{name: "2026-07-28", budget: 30},
	}
	p := &authn.Principal{Subject: "bob", TokenHash: "t-bob"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
			f.handle = func(context.Context, *upstream.Request) (json.RawMessage, error) { return result, nil }
			tg := newTestGateway(t, fakesYAML("orders"), f)
			rq := modernCall(1, "orders__get_order", args)
			if tt.legacy {
				rq = legacyCall(tg.session(t, p), 1, "orders__get_order", args)
			}
			body := []byte(rq.body)
			rb := &replayBody{}
			r := httptest.NewRequestWithContext(withRequestID(authn.WithPrincipal(t.Context(), p), "req-1"), http.MethodPost, "/mcp", nil)
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range rq.header {
				r.Header.Set(k, v)
			}
			r.Body, r.ContentLength = rb, int64(len(body))
			w := &countingWriter{h: http.Header{}}
			serve := func() {
				rb.Reset(body)
				clear(w.h)
				w.status, w.writes, w.n = 0, 0, 0
				tg.serveMCP(w, r)
			}
			serve()
			require.Equal(t, http.StatusOK, w.status)
			assert.Equal(t, 1, w.writes, "one Write per answer")

			allocs := testing.AllocsPerRun(200, serve)
			t.Logf("%s: %.0f allocations per call", tt.name, allocs)
			assert.LessOrEqual(t, allocs, tt.budget, "allocations per tools/call")
		})
	}
}

// TestChainAllocs pins what the request-id and limit steps of the HTTP
// chain cost a request: the generated id's string, the one-element slice
// that is both the response header's value and the context's, the context
// value, and the request's copy that carries it. The context holds a
// pointer to the header's value rather than a string of its own, and a body
// of announced length gets no MaxBytesReader (net/http ends it there);
// each of those was one more, and so was looking up "X-Request-ID" (a
// spelling Header.Get must canonicalize) instead of "X-Request-Id".
func TestChainAllocs(t *testing.T) {
	tg := newTestGateway(t, fakesYAML("orders"), newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`))
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	rb := &replayBody{}
	r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/mcp", nil)
	r.Header.Set("Content-Type", "application/json")
	r.Body, r.ContentLength = rb, int64(len(body))
	var id string
	var read int
	buf := make([]byte, 64)
	h := tg.requestID(tg.limitRequest(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		id = requestIDFrom(r.Context())
		read, _ = r.Body.Read(buf)
	})))
	w := &countingWriter{h: http.Header{}}
	serve := func() {
		rb.Reset(body)
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	serve()
	require.Len(t, id, 32, "a generated id")
	assert.Equal(t, []string{id}, w.h["X-Request-Id"], "echoed")
	assert.Equal(t, len(body), read)

	budget := 4.0
	if raceEnabled {
		budget++ // measured: 5 under -race
	}
	allocs := testing.AllocsPerRun(200, serve)
	t.Logf("request id and limits: %.0f allocations per request", allocs)
	assert.LessOrEqual(t, allocs, budget, "allocations of the request-id and limit steps")
}
