package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStrictEnvelope sends bodies that two JSON parsers could read
// differently, or that are too costly to read, on both eras' paths: the
// 2025-era session path and the 2026-07-28 path, where a tools/call is
// admitted on its headers before its body is read. Each gets -32600 with a
// message that names the member or the limit.
func TestStrictEnvelope(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)

	const deep = 10000
	deepArgs := strings.Repeat("[", deep) + strings.Repeat("]", deep)
	legacy := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + params + `}}`
	}
	modern := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + modernMeta + `,` + params + `}}`
	}
	const call = `"name":"orders__get_order","arguments":{"id":"o-1001"}`
	tests := []struct {
		name      string
		legacy    string // a 2025-era body
		modern    string // a 2026-07-28 body, sent with the headers of orders__get_order
		wantInMsg string
	}{
		{
			name:      "two methods",
			legacy:    `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{` + call + `}}`,
			modern:    `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{` + modernMeta + `,` + call + `}}`,
			wantInMsg: `duplicate member "method"`,
		},
		{
			name:      "two ids",
			legacy:    `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{` + call + `}}`,
			modern:    `{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{` + modernMeta + `,` + call + `}}`,
			wantInMsg: `duplicate member "id"`,
		},
		{
			name:      "two jsonrpc",
			legacy:    `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + call + `}}`,
			modern:    `{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"tools/call","params":{` + modernMeta + `,` + call + `}}`,
			wantInMsg: `duplicate member "jsonrpc"`,
		},
		{
			name:      "two params",
			legacy:    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__cancel_order"},"params":{` + call + `}}`,
			modern:    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"orders__cancel_order"},"params":{` + modernMeta + `,` + call + `}}`,
			wantInMsg: `duplicate member "params"`,
		},
		{
			name:      "two names",
			legacy:    legacy(call + `,"name":"orders__cancel_order"`),
			modern:    modern(call + `,"name":"orders__cancel_order"`),
			wantInMsg: `duplicate member "name"`,
		},
		{
			name:      "two _meta",
			legacy:    legacy(call + `,"_meta":{},"_meta":{"progressToken":1}`),
			modern:    modern(call + `,"_meta":{}`),
			wantInMsg: `duplicate member "_meta"`,
		},
		{
			name:      "two arguments",
			legacy:    legacy(call + `,"arguments":{"id":"o-1002"}`),
			modern:    modern(call + `,"arguments":{"id":"o-1002"}`),
			wantInMsg: `duplicate member "arguments"`,
		},
		{
			name:      "a duplicate inside the arguments",
			legacy:    legacy(`"name":"orders__get_order","arguments":{"id":"o-1001","id":"o-1002"}`),
			modern:    modern(`"name":"orders__get_order","arguments":{"id":"o-1001","id":"o-1002"}`),
			wantInMsg: `duplicate member "id"`,
		},
		{
			name:      "too deep",
			legacy:    legacy(`"name":"orders__get_order","arguments":{"id":` + deepArgs + `}`),
			modern:    modern(`"name":"orders__get_order","arguments":{"id":` + deepArgs + `}`),
			wantInMsg: "nested too deep: more than 10000 levels",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/2025", func(t *testing.T) {
			c := initialized(t, g.url)
			resp, data := c.post(tt.legacy)
			assert.Equal(t, http.StatusBadRequest, resp.StatusCode, string(data))
			r := decodeRPC(t, data)
			require.NotNil(t, r.Error, string(data))
			assert.Equal(t, -32600, r.Error.Code, r.Error.Message)
			assert.Contains(t, r.Error.Message, tt.wantInMsg)
			assert.NotContains(t, r.Error.Message, "not valid JSON")
		})
		t.Run(tt.name+"/2026-07-28", func(t *testing.T) {
			c := newRawClient(t, g.url)
			status, r := c.modern(modernRequest{method: "tools/call", name: "orders__get_order", body: tt.modern})
			assert.Equal(t, http.StatusBadRequest, status)
			require.NotNil(t, r.Error)
			assert.Equal(t, -32600, r.Error.Code, r.Error.Message)
			assert.Contains(t, r.Error.Message, tt.wantInMsg)
			assert.NotContains(t, r.Error.Message, "not valid JSON")
		})
	}

	t.Run("too large", func(t *testing.T) {
		big := fmt.Sprintf(`"name":"orders__get_order","arguments":{"id":"o-1001","pad":%q}`, strings.Repeat("x", 70000))
		c := initialized(t, g.url)
		resp, data := c.post(legacy(big))
		assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
		r := decodeRPC(t, data)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32600, r.Error.Code)
		assert.Contains(t, r.Error.Message, "too large")

		status, r := newRawClient(t, g.url).modern(modernRequest{method: "tools/call", name: "orders__get_order", body: modern(big)})
		assert.Equal(t, http.StatusRequestEntityTooLarge, status)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32600, r.Error.Code)
		assert.Contains(t, r.Error.Message, "too large")
	})
}

// decodeRPC decodes a JSON-RPC answer body.
func decodeRPC(t *testing.T, data []byte) rpcResponse {
	t.Helper()
	var r rpcResponse
	require.NoError(t, json.Unmarshal(data, &r), string(data))
	return r
}
