package upstream_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestForwardedHeadersTraceAndCapabilities: extra headers (forwarded
// Mcp-Param-* headers) reach the upstream without overriding the client's
// own; trace context in _meta (traceparent, tracestate) is forwarded as
// is; the downstream client's capabilities replace the gateway's empty ones.
func TestForwardedHeadersTraceAndCapabilities(t *testing.T) {
	type seen struct {
		header http.Header
		body   string
	}
	got := make(chan seen, 16)
	inner := mcpgoModern(mcpgoServer(newFixture()))
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Header.Get("Mcp-Method") == "tools/call" {
			body, _ := readAll(r)
			got <- seen{r.Header.Clone(), body}
		}
		inner.ServeHTTP(w, r)
	}))
	c, _ := startClient(t, statelessConfig("orders", ts.url("/mcp")))

	req := call("echo", `{"text":"x"}`)
	req.Params = json.RawMessage(`{"name":"echo","arguments":{"text":"x"},"_meta":{` +
		`"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01","tracestate":"vendor=abc",` +
		`"io.modelcontextprotocol/clientCapabilities":{"roots":{}}}}`)
	req.Header = http.Header{
		"Mcp-Param-Tenant": {"acme"},
		"Mcp-Method":       {"tools/list"}, // the client's own wins
	}
	req.ClientCapabilities = json.RawMessage(`{"elicitation":{}}`)
	_, err := c.Call(t.Context(), req)
	require.NoError(t, err)
	s := receive(t, got, "the tools/call request")
	assert.Equal(t, "acme", s.header.Get("Mcp-Param-Tenant"))
	assert.Equal(t, "tools/call", s.header.Get("Mcp-Method"))

	var body struct {
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
	}
	require.NoError(t, json.Unmarshal([]byte(s.body), &body))
	assert.Equal(t, `"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`, string(body.Params.Meta["traceparent"]))
	assert.Equal(t, `"vendor=abc"`, string(body.Params.Meta["tracestate"]))
	assert.JSONEq(t, `{"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}},"elicitation":{}}`,
		string(body.Params.Meta["io.modelcontextprotocol/clientCapabilities"]),
		"the downstream's capabilities are declared, not the reserved key it sent in _meta, with MCP Apps added")
}
