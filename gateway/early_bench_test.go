package gateway

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// The work a refusal skips when it is decided on the headers: reading,
// parsing and checking the body. Compare BenchmarkRefuseBodyFirst with
// BenchmarkRefuseHeaderFirst (the route lookup and the policy decisions
// are common to both and left out).

func earlyBenchRequest(b *testing.B) (*http.Request, []byte) {
	b.Helper()
	args := `{"id":"o-1001","note":"` + strings.Repeat("x", 2000) + `"}`
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"orders__get_order","arguments":` + args +
		`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set(mcpwire.HeaderProtocolVersion, "2026-07-28")
	r.Header.Set(mcpwire.HeaderMethod, "tools/call")
	r.Header.Set(mcpwire.HeaderName, "orders__get_order")
	return r, body
}

func BenchmarkRefuseBodyFirst(b *testing.B) {
	r, body := earlyBenchRequest(b)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		buf, ok := readBody(w, r)
		if !ok {
			b.Fatal("read")
		}
		m, perr := parseMessage(buf)
		if perr != nil {
			b.Fatal(perr)
		}
		if rerr := checkModernEnvelope(r, m, "2026-07-28"); rerr != nil {
			b.Fatal(rerr)
		}
		if name := rawjson.Member(m.Params, "name"); len(name) == 0 {
			b.Fatal("name")
		}
	}
}

func BenchmarkRefuseHeaderFirst(b *testing.B) {
	r, _ := earlyBenchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		h := r.Header
		if h.Get(mcpwire.HeaderMethod) != "tools/call" || !slices.Contains(mcpwire.ModernVersions(), h.Get(mcpwire.HeaderProtocolVersion)) {
			b.Fatal("method")
		}
		if name, ok := decodeHeaderValue(h.Get(mcpwire.HeaderName)); !ok || name == "" {
			b.Fatal("name")
		}
	}
}
