package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// brokenUpstream is a raw MCP server whose tools misbehave at the transport
// level: one answers with more bytes than the gateway allows, one with
// something that is not JSON-RPC, one with the wrong id.
func brokenUpstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		body, _ := io.ReadAll(r.Body)
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Name string `json:"name"`
			} `json:"params"`
		}
		_ = json.Unmarshal(body, &m)
		reply := func(result string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, m.ID, result)
		}
		switch m.Method {
		case "initialize":
			w.Header().Set("Mcp-Session-Id", "broken-1")
			reply(`{"protocolVersion":"2025-11-25","capabilities":{"tools":{}},"serverInfo":{"name":"broken","version":"1"}}`)
		case "tools/list":
			reply(`{"tools":[{"name":"huge","inputSchema":{"type":"object"}},{"name":"garbage","inputSchema":{"type":"object"}},{"name":"wrong_id","inputSchema":{"type":"object"}}]}`)
		case "ping":
			reply(`{}`)
		case "tools/call":
			switch m.Params.Name {
			case "huge":
				reply(`{"content":[{"type":"text","text":"` + strings.Repeat("x", 200_000) + `"}]}`)
			case "garbage":
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, "<html>this is not JSON-RPC</html>")
			default:
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":"not-yours","result":{}}`)
			}
		case "":
			w.WriteHeader(http.StatusAccepted)
		default:
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"no"}}`, m.ID)
		}
	})
}

// TestBadInput sends every kind of bad input the gateway must answer with a
// specific error.
func TestBadInput(t *testing.T) {
	d := startDemo(t)
	broken := startServer(t, brokenUpstream)
	// No health pings: the request-id case reads the last headers orders saw.
	g := startGatewayWith(t, d.config(fmt.Sprintf(`
  - name: broken
    http: {url: %q}
    max_response_bytes: 65536
`, broken.url())), true, time.Hour)

	post := func(t *testing.T, c *rawClient, body string) (int, rpcResponse) {
		t.Helper()
		resp, data := c.post(body)
		var r rpcResponse
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			require.NoError(t, json.Unmarshal(data, &r), string(data))
		}
		return resp.StatusCode, r
	}

	tests := []struct {
		name       string
		body       string
		noSession  bool
		wantStatus int
		wantCode   int
		wantInMsg  string
	}{
		{name: "malformed JSON", body: `{"jsonrpc":"2.0","id":1,"method":`, wantStatus: 400, wantCode: -32700},
		{name: "wrong shape", body: `{"jsonrpc":"2.0","id":1}`, wantStatus: 400, wantCode: -32600},
		{name: "wrong version", body: `{"jsonrpc":"1.0","id":1,"method":"tools/list"}`, wantStatus: 400, wantCode: -32600},
		{name: "batch", body: `[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]`, wantStatus: 400, wantCode: -32600, wantInMsg: "batch"},
		{name: "unknown method", body: `{"jsonrpc":"2.0","id":1,"method":"tools/frobnicate"}`, wantStatus: 200, wantCode: -32601, wantInMsg: "tools/frobnicate"},
		{name: "unknown tool", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__nope","arguments":{}}}`, wantStatus: 200, wantCode: -32602, wantInMsg: "orders__nope"},
		{name: "duplicate name", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__get_order","name":"cancel_order"}}`, wantStatus: 400, wantCode: -32600, wantInMsg: `duplicate member "name"`},
		{name: "unknown resource", body: `{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"nope://x"}}`, wantStatus: 200, wantCode: -32002},
		{name: "invalid cursor", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"garbage"}}`, wantStatus: 200, wantCode: -32602},
		{name: "oversized response", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"broken__huge"}}`, wantStatus: 200, wantCode: -32051, wantInMsg: `"broken"`},
		{name: "not JSON-RPC response", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"broken__garbage"}}`, wantStatus: 200, wantCode: -32051, wantInMsg: `"broken"`},
		{name: "wrong response id", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"broken__wrong_id"}}`, wantStatus: 200, wantCode: -32051, wantInMsg: `"broken"`},
		{name: "no session", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, noSession: true, wantStatus: 400, wantCode: -32600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, g.url)
			if !tt.noSession {
				c.initialize()
			}
			status, r := post(t, c, tt.body)
			require.Equal(t, tt.wantStatus, status)
			require.NotNil(t, r.Error)
			assert.Equal(t, tt.wantCode, r.Error.Code, r.Error.Message)
			assert.Contains(t, r.Error.Message, tt.wantInMsg)
		})
	}

	t.Run("the gateway still works after all that", func(t *testing.T) {
		r := initialized(t, g.url).call("tools/call", `{"name":"broken__wrong_id"}`)
		require.NotNil(t, r.Error)
		r = initialized(t, g.url).call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, r.Error)
	})

	t.Run("forged session", func(t *testing.T) {
		genuine := initialized(t, g.url).session
		for _, id := range []string{"s1.forged", "mcp-session-00000000-0000-0000-0000-000000000000", strings.Repeat("a", 5000)} {
			require.NotEqual(t, genuine, id)
			c := newRawClient(t, g.url)
			c.session = id
			status, r := post(t, c, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			assert.Equal(t, http.StatusNotFound, status, id)
			require.NotNil(t, r.Error)
		}
	})

	t.Run("deleted session", func(t *testing.T) {
		c := initialized(t, g.url)
		req, err := http.NewRequestWithContext(t.Context(), http.MethodDelete, g.url, nil)
		require.NoError(t, err)
		req.Header.Set("Mcp-Session-Id", c.session)
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		status, _ := post(t, c, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, http.StatusNotFound, status)
	})

	t.Run("body over the limit", func(t *testing.T) {
		c := initialized(t, g.url)
		big := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__get_order","arguments":{"pad":%q}}}`, strings.Repeat("x", 70000))
		status, _ := post(t, c, big)
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
	})

	t.Run("origin", func(t *testing.T) {
		c := newRawClient(t, g.url)
		c.header.Set("Origin", "https://evil.example")
		status, _ := post(t, c, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		assert.Equal(t, http.StatusForbidden, status)
		c = newRawClient(t, g.url)
		c.header.Set("Origin", "http://localhost:5173")
		c.initialize()
	})

	t.Run("upstream down", func(t *testing.T) {
		c := initialized(t, g.url)
		d.customers.stop()
		defer d.customers.start()
		r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
		require.NotNil(t, r.Error)
		assert.Contains(t, r.Error.Message, `"customers"`)
	})

	t.Run("request id", func(t *testing.T) {
		c := newRawClient(t, g.url)
		c.header.Set("X-Request-ID", "trace-me-42")
		c.initialize()
		resp, _ := c.post(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"orders__get_order","arguments":{"id":"o-1001"}}}`)
		assert.Equal(t, "trace-me-42", resp.Header.Get("X-Request-Id"))
		assert.Equal(t, "trace-me-42", d.ordersObs.LastHeaders().Get("X-Request-Id"), "forwarded upstream")
		c.header.Del("X-Request-ID")
		resp, _ = c.post(`{"jsonrpc":"2.0","id":10,"method":"ping"}`)
		assert.Len(t, resp.Header.Get("X-Request-Id"), 32, "generated")
	})
}
