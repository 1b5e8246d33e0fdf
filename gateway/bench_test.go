package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Micro-benchmarks of the gateway's own steps on the tools/call path; make
// bench (bench/run) runs them and reports each beside the others. The
// whole path, over real sockets, is BenchmarkCallPath in bench/upstream.

// benchCall is a 2025-era tools/call with a 200-byte text, as the load
// generator sends it.
var benchCall = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"upstream7__echo","arguments":{"text":"` +
	"abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 " +
	"abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmn" + `"}}}`)

// benchSnapshot is a merged catalog of 10 upstreams with 100 tools each.
func benchSnapshot(b *testing.B) *catalog.Snapshot {
	b.Helper()
	sources := make([]catalog.Source, 10)
	for u := range sources {
		name := fmt.Sprintf("upstream%d", u)
		src := catalog.Source{Upstream: name, Prefix: name, Available: true}
		src.Tools = append(src.Tools, json.RawMessage(`{"name":"echo","inputSchema":{"type":"object"}}`))
		for i := range 99 {
			src.Tools = append(src.Tools, json.RawMessage(fmt.Sprintf(`{"name":"tool_%d","inputSchema":{"type":"object"}}`, i)))
		}
		sources[u] = src
	}
	snap, problems := catalog.Build(1, catalog.Options{Separator: "__", PageSize: 500}, sources)
	if len(problems) > 0 {
		b.Fatal(problems)
	}
	return snap
}

// BenchmarkParseMessage measures decoding the JSON-RPC envelope of a
// tools/call (the params stay raw).
func BenchmarkParseMessage(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCall)))
	for b.Loop() {
		if _, rerr := parseMessage(benchCall); rerr != nil {
			b.Fatal(rerr)
		}
	}
}

// BenchmarkResolve measures the request rewrite: the route lookup of the
// exposed name and the params rewritten with the upstream's own name (the
// arguments are copied, never decoded).
func BenchmarkResolve(b *testing.B) {
	snap := benchSnapshot(b)
	m, rerr := parseMessage(benchCall)
	if rerr != nil {
		b.Fatal(rerr)
	}
	b.ReportAllocs()
	for b.Loop() {
		t, rerr := resolve(snap, m)
		if rerr != nil || t.original != "echo" {
			b.Fatal(rerr, t.original)
		}
	}
}

// BenchmarkReplaceMember measures the rewrite alone.
func BenchmarkReplaceMember(b *testing.B) {
	m, rerr := parseMessage(benchCall)
	if rerr != nil {
		b.Fatal(rerr)
	}
	name := quoteJSON("echo")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := rawjson.ReplaceMember(m.Params, "name", name); !ok {
			b.Fatal("no name")
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing, so the relay's own
// cost is measured rather than a recorder's.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(int)             {}
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkRelay measures the response relay: the upstream's raw result
// wrapped in the downstream id and written as one JSON response.
func BenchmarkRelay(b *testing.B) {
	result := json.RawMessage(`{"content":[{"type":"text","text":"` +
		"abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 " +
		"abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmnopqrstuvwxyz0123456789 abcdefghijklmn" + `"}],"isError":false}`)
	id := json.RawMessage(`42`)
	r, err := http.NewRequestWithContext(b.Context(), http.MethodPost, "/mcp", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Accept", "application/json, text/event-stream")
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		rp := newReplier(w, r, false)
		if isToolError(result) {
			b.Fatal("isError")
		}
		rp.send(appendResult(make([]byte, 0, len(result)+64), id, result))
	}
}
