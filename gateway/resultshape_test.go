package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream"
)

// TestModernResultsCarryResultType: every result the gateway produces for
// a 2026-07-28 client has resultType "complete" and the gateway's
// serverInfo in _meta (SEP-2322, SEP-2575); the session era's results have
// neither.
func TestModernResultsCarryResultType(t *testing.T) {
	tg := listsGateway(t, false)
	sid := tg.session(t, nil)
	for _, method := range []string{"server/discover", "tools/list", "prompts/list", "resources/list", "resources/templates/list"} {
		t.Run(method, func(t *testing.T) {
			w, _ := tg.post(t, modernRequest(1, method, "", "", `{}`))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			res := resultOf(t, w)
			assert.Equal(t, "complete", res["resultType"])
			assert.Equal(t, "mcpgw", at(t, res, "_meta", "io.modelcontextprotocol/serverInfo", "name"))
			assert.NotNil(t, res["ttlMs"])
			if method == "server/discover" {
				return
			}
			w, _ = tg.post(t, legacyRequest(sid, 2, method, ""))
			legacy := resultOf(t, w)
			assert.NotContains(t, legacy, "resultType")
			assert.NotContains(t, legacy, "_meta")
		})
	}
}

// TestBridgedResultsCarryResultType: a session-era upstream's result
// reaches a 2026-07-28 client with resultType "complete" added, for every
// method the gateway forwards; a 2026-07-28 upstream's result, and any
// result to a session-era client, is relayed byte for byte.
func TestBridgedResultsCarryResultType(t *testing.T) {
	const result = `{"content":[{"type":"text","text":"ok"}],"x-unknown":{"kept": [1, 2]}}`
	calls := []struct {
		method, name, params string
	}{
		{"tools/call", "orders__get_order", `"name":"orders__get_order","arguments":{}`},
		{"prompts/get", "orders__summary", `"name":"orders__summary"`},
		{"resources/read", "orders://readme", `"uri":"orders://readme"`},
		{"completion/complete", "", `"ref":{"type":"ref/prompt","name":"orders__summary"},"argument":{"name":"a","value":"b"}`},
	}
	for _, stateless := range []bool{false, true} {
		tg := ordersGateway(t, stateless, func(context.Context, *upstream.Request) (json.RawMessage, error) {
			return json.RawMessage(result), nil
		})
		sid := tg.session(t, nil)
		for i, c := range calls {
			t.Run(c.method+"/stateless="+strconv.FormatBool(stateless), func(t *testing.T) {
				w, _ := tg.post(t, modernRequest(i+1, c.method, c.name, c.params, `{}`))
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				want := result
				if !stateless {
					want = `{"resultType":"complete",` + result[1:]
				}
				assert.Equal(t, want, string(rawMember(t, w.Body.Bytes(), "result")))

				w, _ = tg.post(t, legacyRequest(sid, i+1, c.method, "{"+c.params+"}"))
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				assert.Equal(t, result, string(rawMember(t, w.Body.Bytes(), "result"))) //nolint:testifylint // byte for byte is the point.
			})
		}
	}
}

// ordersGateway serves one upstream, orders, of the given era, with a
// tool, a prompt and a resource, whose calls handle answers.
func ordersGateway(t *testing.T, stateless bool, handle func(context.Context, *upstream.Request) (json.RawMessage, error)) *testGateway {
	t.Helper()
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
	orders.cat.Resources = []json.RawMessage{json.RawMessage(`{"uri":"orders://readme","name":"readme"}`)}
	orders.cat.Prompts = []json.RawMessage{json.RawMessage(`{"name":"summary"}`)}
	orders.cat.Stateless = stateless
	orders.handle = handle
	return newTestGateway(t, fakesYAML("orders"), orders)
}

// rawMember is one member (result or error) of a JSON-RPC answer, as
// bytes, from a JSON body or the last event of a stream.
func rawMember(t *testing.T, body []byte, member string) json.RawMessage {
	t.Helper()
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok {
			body = d
		}
	}
	var ans map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(body, &ans), "answer %s", body)
	require.NotEmpty(t, ans[member], "answer %s", body)
	return ans[member]
}

// TestUpstreamErrorsRelayedByteForByte: an upstream's JSON-RPC error, its
// code, message and data, reaches the client as the upstream sent it, in
// both eras; data never turns into a base64 string.
func TestUpstreamErrorsRelayedByteForByte(t *testing.T) {
	const errObj = `{"code":-32021,"message":"needs <sampling>","data":{"requiredCapabilities": {"sampling": {}}}}`
	tests := []struct {
		name string
		err  *upstream.RPCError
		want string
	}{
		{
			name: "raw error object",
			err:  &upstream.RPCError{Code: -32021, Message: "needs <sampling>", Data: []byte(`{"requiredCapabilities": {"sampling": {}}}`), Raw: []byte(errObj)},
			want: errObj,
		},
		{
			name: "decoded by the transport",
			err:  &upstream.RPCError{Code: -32099, Message: "custom", Data: []byte(`{"detail":"x"}`)},
			want: `{"code":-32099,"message":"custom","data":{"detail":"x"}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := ordersGateway(t, true, func(context.Context, *upstream.Request) (json.RawMessage, error) {
				return nil, tt.err
			})
			sid := tg.session(t, nil)
			for _, rq := range []request{
				modernCall(1, "orders__get_order", `{}`),
				legacyCall(sid, 1, "orders__get_order", `{}`),
			} {
				w, _ := tg.post(t, rq)
				assert.Equal(t, tt.want, string(rawMember(t, w.Body.Bytes(), "error")))
			}
		})
	}
}

// TestMissingResourceCodeByEra: a resource the catalog does not have is
// -32602 for a 2026-07-28 client (SEP-2164) and -32002 for a session-era
// client, as each revision specifies.
func TestMissingResourceCodeByEra(t *testing.T) {
	tg := listsGateway(t, false)
	sid := tg.session(t, nil)
	w, _ := tg.post(t, modernRequest(1, "resources/read", "test://nope", `"uri":"test://nope"`, `{}`))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, -32602, errorCode(t, w))
	assert.Equal(t, "test://nope", errorData(t, w)["uri"])

	w, _ = tg.post(t, legacyRequest(sid, 1, "resources/read", `{"uri":"test://nope"}`))
	assert.Equal(t, -32002, errorCode(t, w))
}

// TestInstructionsDescribeTheCatalog: the instructions name the servers
// and say how each one's names are exposed, as configured.
func TestInstructionsDescribeTheCatalog(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
upstreams:
  - name: orders
    prefix: ""
    http:
      url: http://orders.invalid/mcp
  - name: payments
    prefix: pay
    http:
      url: http://payments.invalid/mcp
`
	tg := newTestGateway(t, yaml, newFake("orders", `{"name":"a","inputSchema":{"type":"object"}}`), newFake("payments", `{"name":"b","inputSchema":{"type":"object"}}`))
	w, _ := tg.post(t, modernRequest(1, "server/discover", "", "", `{}`))
	got, _ := resultOf(t, w)["instructions"].(string)
	assert.Equal(t, "mcpgw merges the MCP servers orders, payments into one catalog. Tool and prompt names are namespaced: payments as pay__<name>. orders keep their own tool and prompt names.", got)
	assert.NotContains(t, got, "<server>")
}

// TestParamHeadersChecked: a 2026-07-28 tools/call's Mcp-Param-* headers
// are held against the arguments the tool's x-mcp-header annotations bind
// (SEP-2243): a missing, malformed or disagreeing header is HTTP 400 with
// -32020 and never reaches the upstream; a matching one, plain or in the
// Base64 form, is forwarded. The session era has no such headers.
func TestParamHeadersChecked(t *testing.T) {
	const tool = `{"name":"where","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"level":{"type":"integer"}}}}`
	tests := []struct {
		name   string
		args   string
		header string // Mcp-Param-Region; "" sends none
		ok     bool
	}{
		{name: "matching", args: `{"region":"us-west1"}`, header: "us-west1", ok: true},
		{name: "matching base64", args: `{"region":"日本"}`, header: "=?base64?5pel5pys?=", ok: true},
		{name: "literal without the base64 suffix", args: `{"region":"=?base64?abc"}`, header: "=?base64?abc", ok: true},
		{name: "argument and header absent", args: `{"level":3}`, ok: true},
		{name: "disagreeing", args: `{"region":"us-west1"}`, header: "eu-west1"},
		{name: "missing", args: `{"region":"us-west1"}`},
		{name: "without its argument", args: `{"level":3}`, header: "us-west1"},
		{name: "invalid base64 padding", args: `{"region":"us"}`, header: "=?base64?dXM?="},
		{name: "invalid base64 characters", args: `{"region":"us"}`, header: "=?base64?d*M=?="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake("geo", tool)
			tg := newTestGateway(t, fakesYAML("geo"), f)
			rq := modernCall(1, "geo__where", tt.args)
			if tt.header != "" {
				rq.header["Mcp-Param-Region"] = tt.header
			}
			w, _ := tg.post(t, rq)
			if !tt.ok {
				assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
				assert.Equal(t, -32020, errorCode(t, w))
				assert.Empty(t, f.requests(), "a refused call never reaches the upstream")
				return
			}
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, 0, errorCode(t, w), w.Body.String())
			reqs := f.requests()
			require.Len(t, reqs, 1)
			if tt.header != "" {
				assert.Equal(t, tt.header, reqs[0].Header.Get("Mcp-Param-Region"), "forwarded")
			}

			sid := tg.session(t, nil)
			w, _ = tg.post(t, legacyCall(sid, 2, "geo__where", tt.args))
			assert.Equal(t, 0, errorCode(t, w), w.Body.String())
		})
	}
}
