package gateway

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/upstream"
)

// listsYAML serves three fakes with two entries per list page.
const listsYAML = `server:
  listen: 127.0.0.1:0
catalog:
  page_size: 2
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
  - name: payments
    http:
      url: http://payments.invalid/mcp
  - name: gone
    http:
      url: http://gone.invalid/mcp
`

// listsGateway serves every kind of list: orders has three tools, two
// resources (one of them also payments'), a resource template and a
// prompt; payments a tool and the shared resource; gone is down.
func listsGateway(t *testing.T, goneDown bool) *testGateway {
	t.Helper()
	orders := newFake("orders",
		`{"name":"get_order","inputSchema":{"type":"object"}}`,
		`{"name":"cancel_order","inputSchema":{"type":"object"}}`,
		`{"name":"list_orders","inputSchema":{"type":"object"}}`)
	orders.cat.Resources = []json.RawMessage{
		json.RawMessage(`{"uri":"file:///shared.txt","name":"shared"}`),
		json.RawMessage(`{"uri":"orders://readme","name":"readme"}`),
	}
	orders.cat.ResourceTemplates = []json.RawMessage{json.RawMessage(`{"uriTemplate":"orders://items/{id}","name":"item"}`)}
	orders.cat.Prompts = []json.RawMessage{json.RawMessage(`{"name":"summary"}`)}
	payments := newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`)
	payments.cat.Resources = []json.RawMessage{json.RawMessage(`{"uri":"file:///shared.txt","name":"shared"}`)}
	gone := newFake("gone", `{"name":"ping","inputSchema":{"type":"object"}}`)
	gone.cat.Prompts = []json.RawMessage{json.RawMessage(`{"name":"hello"}`)}
	gone.down.Store(goneDown)
	return newTestGateway(t, listsYAML, orders, payments, gone)
}

// TestListsPaginateInBothEras: every list method serves the merged
// catalog page by page, in both eras, with the 2026-07-28 cache hints;
// a cursor that is not one of the gateway's is refused.
func TestListsPaginateInBothEras(t *testing.T) {
	tg := listsGateway(t, true)
	sid := tg.session(t, nil)
	tests := []struct {
		method, list, key string
		pages             [][]string
	}{
		{"tools/list", "tools", "name", [][]string{{"orders__get_order", "orders__cancel_order"}, {"orders__list_orders", "payments__refund"}}},
		{"resources/list", "resources", "uri", [][]string{{"mcpgw://orders/file:///shared.txt", "orders://readme"}, {"mcpgw://payments/file:///shared.txt"}}},
		{"resources/templates/list", "resourceTemplates", "uriTemplate", [][]string{{"orders://items/{id}"}}},
		{"prompts/list", "prompts", "name", [][]string{{"orders__summary"}}},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			for _, modern := range []bool{false, true} {
				cursor := ""
				for i, want := range tt.pages {
					params := ""
					if cursor != "" {
						params = `"cursor":` + quote(cursor)
					}
					var rq request
					if modern {
						rq = modernRequest(1, tt.method, "", params, `{}`)
					} else {
						rq = legacyRequest(sid, 1, tt.method, "{"+params+"}")
					}
					w, _ := tg.post(t, rq)
					require.Equal(t, http.StatusOK, w.Code, w.Body.String())
					res := resultOf(t, w)
					assert.Equal(t, want, listed(t, res, tt.list, tt.key), "modern %v, page %d", modern, i+1)
					next, _ := res["nextCursor"].(string)
					assert.Equal(t, i < len(tt.pages)-1, next != "", "modern %v, page %d: nextCursor %q", modern, i+1, next)
					if modern {
						assert.InDelta(t, 0, res["ttlMs"], 0, "an upstream is down: hosts must not cache")
						assert.Equal(t, "private", res["cacheScope"])
					} else {
						assert.NotContains(t, res, "ttlMs")
					}
					cursor = next
				}
			}
		})
	}

	bad := []struct {
		name, params string
	}{
		{"not the gateway's", `"cursor":"bm9wZQ"`},
		{"not a string", `"cursor":42`},
		{"another list's", `"cursor":` + quote(firstCursor(t, tg, sid, "resources/list"))},
	}
	for _, b := range bad {
		t.Run("bad cursor "+b.name, func(t *testing.T) {
			w, _ := tg.post(t, legacyRequest(sid, 3, "tools/list", "{"+b.params+"}"))
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, -32602, errorCode(t, w), w.Body.String())
			w, _ = tg.post(t, modernRequest(3, "tools/list", "", b.params, `{}`))
			assert.Equal(t, http.StatusBadRequest, w.Code)
			assert.Equal(t, -32602, errorCode(t, w), w.Body.String())
		})
	}
}

// firstCursor is the nextCursor of a list's first page.
func firstCursor(t *testing.T, tg *testGateway, sid, method string) string {
	t.Helper()
	w, _ := tg.post(t, legacyRequest(sid, 2, method, `{}`))
	next, ok := resultOf(t, w)["nextCursor"].(string)
	require.True(t, ok, w.Body.String())
	return next
}

// at is the value at path in a decoded JSON object, nil when absent.
func at(t *testing.T, obj map[string]any, path ...string) any {
	t.Helper()
	var v any = obj
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestServerDiscoverAndListTTL: server/discover advertises every version
// and the gateway's capabilities; list results carry the configured TTL
// while every upstream is up, and 0 while one is down.
func TestServerDiscoverAndListTTL(t *testing.T) {
	for _, down := range []bool{false, true} {
		tg := listsGateway(t, down)
		w, _ := tg.post(t, modernRequest(1, "server/discover", "", "", `{}`))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		res := resultOf(t, w)
		assert.Equal(t, []any{"2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}, res["supportedVersions"])
		assert.Equal(t, "mcpgw", at(t, res, "serverInfo", "name"))
		assert.Contains(t, res["instructions"], "orders as orders__<name>")
		assert.Contains(t, res["capabilities"], "tools")
		want := 30000.0
		if down {
			want = 0
		}
		assert.InDelta(t, want, res["ttlMs"], 0, "down %v", down)
		w, _ = tg.post(t, modernRequest(2, "prompts/list", "", "", `{}`))
		lres := resultOf(t, w)
		assert.InDelta(t, want, lres["ttlMs"], 0, "down %v", down)
		wantPrompts := []string{"orders__summary", "gone__hello"}
		if down {
			wantPrompts = wantPrompts[:1]
		}
		assert.Equal(t, wantPrompts, listed(t, lres, "prompts", "name"), "an unavailable upstream's items are withdrawn")
	}
}

// TestForwardedMethodsRoute: resources/read, prompts/get and
// completion/complete reach the upstream that owns their target, with the
// target rewritten to the upstream's own name, in both eras; targets the
// catalog does not route are refused.
func TestForwardedMethodsRoute(t *testing.T) {
	tg := listsGateway(t, true)
	sid := tg.session(t, nil)
	tests := []struct {
		name   string
		method string
		header string // Mcp-Name
		params string
		code   int    // 0: routed
		up     string // the upstream that gets it
		path   []string
		sent   string // params at path, as the upstream gets them
		modern int    // HTTP status of a modern refusal
		// modernCode is a modern refusal's code when it differs from code.
		modernCode int
	}{
		{name: "resource by URI", method: "resources/read", header: "orders://readme", params: `"uri":"orders://readme"`, up: "orders", path: []string{"uri"}, sent: "orders://readme"},
		{name: "shared resource in the gateway form", method: "resources/read", header: "mcpgw://payments/file:///shared.txt", params: `"uri":"mcpgw://payments/file:///shared.txt"`, up: "payments", path: []string{"uri"}, sent: "file:///shared.txt"},
		{name: "resource by template", method: "resources/read", header: "orders://items/42", params: `"uri":"orders://items/42"`, up: "orders", path: []string{"uri"}, sent: "orders://items/42"},
		{name: "ambiguous resource", method: "resources/read", header: "file:///shared.txt", params: `"uri":"file:///shared.txt"`, code: -32002, modern: 400, modernCode: -32602},
		{name: "unknown resource", method: "resources/read", header: "nope://x", params: `"uri":"nope://x"`, code: -32002, modern: 400, modernCode: -32602},
		{name: "resource of a down upstream", method: "resources/read", header: "mcpgw://gone/x", params: `"uri":"mcpgw://gone/x"`, code: -32050, modern: 200},
		{name: "resource without uri", method: "resources/read", params: `"uri":""`, code: -32602, modern: 400},
		{name: "prompt", method: "prompts/get", header: "orders__summary", params: `"name":"orders__summary","arguments":{}`, up: "orders", path: []string{"name"}, sent: "summary"},
		{name: "unknown prompt", method: "prompts/get", header: "orders__nope", params: `"name":"orders__nope"`, code: -32602, modern: 400},
		{name: "prompt of a down upstream", method: "prompts/get", header: "gone__hello", params: `"name":"gone__hello"`, code: -32050, modern: 200},
		{name: "completion of a prompt", method: "completion/complete", params: `"ref":{"type":"ref/prompt","name":"orders__summary"},"argument":{"name":"a","value":"b"}`, up: "orders", path: []string{"ref", "name"}, sent: "summary"},
		{name: "completion of a template", method: "completion/complete", params: `"ref":{"type":"ref/resource","uri":"mcpgw://orders/orders://items/{id}"},"argument":{"name":"id","value":"4"}`, up: "orders", path: []string{"ref", "uri"}, sent: "orders://items/{id}"},
		{name: "completion of an unknown prompt", method: "completion/complete", params: `"ref":{"type":"ref/prompt","name":"nope"}`, code: -32602, modern: 400},
		{name: "completion of another ref type", method: "completion/complete", params: `"ref":{"type":"ref/tool","name":"x"}`, code: -32602, modern: 400},
		{name: "completion without ref", method: "completion/complete", params: `"argument":{}`, code: -32602, modern: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, modern := range []bool{false, true} {
				var rq request
				if modern {
					rq = modernRequest(5, tt.method, tt.header, tt.params, `{}`)
				} else {
					rq = legacyRequest(sid, 5, tt.method, `{`+tt.params+`}`)
				}
				w, _ := tg.post(t, rq)
				if tt.code != 0 {
					want, code := http.StatusOK, tt.code
					if modern {
						want = tt.modern
						if tt.modernCode != 0 {
							code = tt.modernCode // SEP-2164: an unknown resource is invalid params
						}
						if tt.header == "" && tt.method != "completion/complete" {
							code = -32020 // Mcp-Name is required before the body is looked at
						}
					}
					assert.Equal(t, want, w.Code, "modern %v: %s", modern, w.Body.String())
					assert.Equal(t, code, errorCode(t, w), "modern %v: %s", modern, w.Body.String())
					continue
				}
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				assert.Equal(t, 0, errorCode(t, w), w.Body.String())
				req := lastRequest(t, tg.ups[tt.up])
				assert.Equal(t, tt.method, req.Method)
				var sent map[string]any
				require.NoError(t, json.Unmarshal(req.Params, &sent))
				assert.Equal(t, tt.sent, at(t, sent, tt.path...), "modern %v", modern)
				assert.True(t, req.Idempotent, "reads are idempotent")
			}
		})
	}
}

// lastRequest is the last request f got.
func lastRequest(t *testing.T, f *fakeUpstream) *upstream.Request {
	t.Helper()
	reqs := f.requests()
	require.NotEmpty(t, reqs, "%s got no request", f.name)
	return reqs[len(reqs)-1]
}

// TestMethodsNotServed: an unknown method is -32601 in both eras (404 in
// 2026-07-28); the methods 2026-07-28 removed are refused there and still
// served on a session.
func TestMethodsNotServed(t *testing.T) {
	tg := listsGateway(t, false)
	sid := tg.session(t, nil)
	tests := []struct {
		method       string
		params       string
		legacyCode   int // 0: served
		modernStatus int
	}{
		{"tools/frobnicate", `{}`, -32601, http.StatusNotFound},
		{"ping", `{}`, 0, http.StatusNotFound},
		{"logging/setLevel", `{"level":"info"}`, 0, http.StatusNotFound},
		{"logging/setLevel", `{"level":"loud"}`, -32602, http.StatusNotFound},
		{"resources/subscribe", `{}`, -32602, http.StatusNotFound},
		{"resources/subscribe", `{"uri":"nowhere://x"}`, -32002, http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			w, _ := tg.post(t, legacyRequest(sid, 1, tt.method, tt.params))
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, tt.legacyCode, errorCode(t, w), w.Body.String())
			if tt.legacyCode == 0 {
				assert.Empty(t, resultOf(t, w))
			}
			w, _ = tg.post(t, modernRequest(1, tt.method, "", "", `{}`))
			assert.Equal(t, tt.modernStatus, w.Code)
			assert.Equal(t, -32601, errorCode(t, w), w.Body.String())
		})
	}
	// A 2026-07-28 initialize is a removed method, not a session.
	w, _ := tg.post(t, modernRequest(1, "initialize", "", `"protocolVersion":"2026-07-28"`, `{}`))
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Empty(t, w.Header().Get("Mcp-Session-Id"))
}

// TestModernEnvelopeRules: a 2026-07-28 request's headers must mirror
// its body; each rule refuses with its code and status before anything is
// forwarded.
func TestModernEnvelopeRules(t *testing.T) {
	tg := listsGateway(t, false)
	const (
		metaOK  = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
		readURI = `"uri":"orders://readme"`
	)
	body := func(id, method, params string) string {
		b := `{"jsonrpc":"2.0"`
		if id != "" {
			b += `,"id":` + id
		}
		return b + `,"method":"` + method + `","params":{` + params + `}}`
	}
	read := body("1", "resources/read", metaOK+","+readURI)
	headers := func(kv ...string) map[string]string {
		h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/read", "Mcp-Name": "orders://readme"}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				h[kv[i]] = "" // post sets it empty: absent for Get
				continue
			}
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	b64 := func(s string) string { return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?=" }
	tests := []struct {
		name   string
		header map[string]string
		body   string
		status int
		code   int // 0: served
	}{
		{"served", headers(), read, 200, 0},
		{"Mcp-Name in base64", headers("Mcp-Name", b64("orders://readme")), read, 200, 0},
		{"escaped name in the body", headers(), body("1", "resources/read", metaOK+`,"uri":"orders:\/\/readme"`), 200, 0},
		{"no version header, modern body", headers("Mcp-Protocol-Version", ""), read, 400, -32020},
		{"unsupported version", headers("Mcp-Protocol-Version", "2099-01-01"), read, 400, -32022},
		{"session id", headers("Mcp-Session-Id", "s2.abc"), read, 400, -32600},
		{"Last-Event-ID", headers("Last-Event-Id", "7"), read, 400, -32020},
		{"a response", headers(), `{"jsonrpc":"2.0","id":1,"result":{}}`, 400, -32600},
		{"no _meta version", headers(), body("1", "resources/read", `"_meta":{"io.modelcontextprotocol/clientCapabilities":{}},`+readURI), 400, -32602},
		{"_meta version differs", headers(), body("1", "resources/read", `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-29","io.modelcontextprotocol/clientCapabilities":{}},`+readURI), 400, -32020},
		{"no capabilities", headers(), body("1", "resources/read", `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"},`+readURI), 400, -32602},
		{"capabilities not an object", headers(), body("1", "resources/read", `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":[]},`+readURI), 400, -32602},
		{"no Mcp-Method", headers("Mcp-Method", ""), read, 400, -32020},
		{"malformed Mcp-Method", headers("Mcp-Method", "=?base64?***?="), read, 400, -32020},
		{"unterminated Mcp-Method", headers("Mcp-Method", "=?base64?cmVzb3VyY2VzL3JlYWQ="), read, 400, -32020},
		{"Mcp-Method differs", headers("Mcp-Method", "prompts/get"), read, 400, -32020},
		{"no Mcp-Name", headers("Mcp-Name", ""), read, 400, -32020},
		{"malformed Mcp-Name", headers("Mcp-Name", "=?base64?***?="), read, 400, -32020},
		{"Mcp-Name differs", headers("Mcp-Name", "orders://other"), read, 400, -32020},
		{"name in the body not a string", headers(), body("1", "resources/read", metaOK+`,"uri":42`), 400, -32602},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tg.ups["orders"].requests())
			w, _ := tg.post(t, request{header: tt.header, body: tt.body})
			assert.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Equal(t, tt.code, errorCode(t, w), w.Body.String())
			forwarded := len(tg.ups["orders"].requests()) - before
			if tt.code == 0 {
				assert.Equal(t, 1, forwarded)
			} else {
				assert.Zero(t, forwarded, "a refused request is not forwarded")
			}
		})
	}

	t.Run("notification", func(t *testing.T) {
		w, _ := tg.post(t, request{header: headers("Mcp-Method", "notifications/cancelled"), body: body("", "notifications/cancelled", metaOK)})
		assert.Equal(t, http.StatusAccepted, w.Code)
		assert.Empty(t, w.Body.String())
	})
}

// TestMalformedMessages: a body that is not one JSON-RPC request is
// refused with the code JSON-RPC names, echoing the id when it has a
// usable one.
func TestMalformedMessages(t *testing.T) {
	tg := listsGateway(t, false)
	tests := []struct {
		name, body string
		code       int
		id         any
	}{
		{"empty", ``, -32700, nil},
		{"blank", " \n\t", -32700, nil},
		{"batch", `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, -32600, nil},
		{"broken batch", `[{"jsonrpc":"2.0",`, -32700, nil},
		{"a string", `"hello"`, -32600, nil},
		{"not JSON", `nul`, -32700, nil},
		{"truncated object", `{"jsonrpc":"2.0","id":1,"method":"ping"`, -32700, nil},
		{"wrong jsonrpc", `{"jsonrpc":"1.0","id":7,"method":"ping"}`, -32600, 7.0},
		{"jsonrpc not a string", `{"jsonrpc":2,"id":1,"method":"ping"}`, -32600, nil},
		{"null id", `{"jsonrpc":"2.0","id":null,"method":"ping"}`, -32600, nil},
		{"fractional id", `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, -32600, nil},
		{"params not an object", `{"jsonrpc":"2.0","id":"a","method":"ping","params":[1]}`, -32600, "a"},
		{"no method", `{"jsonrpc":"2.0","id":2}`, -32600, 2.0},
		{"no session", `{"jsonrpc":"2.0","id":3,"method":"tools/list","extra":true}`, -32600, 3.0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := tg.post(t, request{body: tt.body})
			assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			assert.Equal(t, tt.code, errorCode(t, w), w.Body.String())
			assert.Equal(t, tt.id, rpcAnswer(t, w)["id"])
		})
	}
}

// TestHTTPRefusals: what /mcp refuses before JSON-RPC: another HTTP
// method, another Content-Type, an oversized body (announced or not),
// an unknown session, and a legacy version it does not serve.
func TestHTTPRefusals(t *testing.T) {
	tg := newTestGateway(t, "server:\n  listen: 127.0.0.1:0\n  max_body_bytes: 64\nupstreams:\n  - name: orders\n    http:\n      url: http://orders.invalid/mcp\n",
		newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`))
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"` + string(make([]byte, 80)) + `"}}`

	w := tg.do(t, http.MethodPut, "/mcp", "", nil)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
	assert.Equal(t, "GET, POST, DELETE", w.Header().Get("Allow"))

	w = tg.do(t, http.MethodPost, "/mcp", `{}`, map[string]string{"Content-Type": "text/plain"})
	assert.Equal(t, http.StatusUnsupportedMediaType, w.Code)

	w = tg.do(t, http.MethodPost, "/mcp", big, map[string]string{"Content-Type": "application/json"})
	assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code, "announced length over the limit")
	assert.Equal(t, -32600, errorCode(t, w), "a JSON-RPC error, like the one found while reading")

	r := mcpRequest(t.Context(), http.MethodPost, big, nil)
	r.ContentLength = -1 // chunked: the limit is found while reading
	rec := httptest.NewRecorder()
	tg.Handler().ServeHTTP(rec, r)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code)
	assert.Equal(t, -32600, errorCode(t, rec))

	w, _ = tg.post(t, legacyRequest("s2.nope", 1, "tools/list", `{}`))
	assert.Equal(t, http.StatusNotFound, w.Code)
	assert.Equal(t, -32001, errorCode(t, w))

	w, _ = tg.post(t, request{header: map[string]string{"Mcp-Protocol-Version": "2023-01-01"}, body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`})
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, -32022, errorCode(t, w))
	assert.Equal(t, "2023-01-01", errorData(t, w)["requested"])
}

// TestListsPerPrincipal: with authentication, a principal lacking a scope
// a tool requires does not see the tool listed, in either era; a
// principal holding every scope sees the whole catalog.
func TestListsPerPrincipal(t *testing.T) {
	tg := exitsGateway(t)
	alice := &authn.Principal{Issuer: "https://idp.invalid", Subject: "alice", Scopes: []string{"orders:write"}}
	bob := &authn.Principal{Issuer: "https://idp.invalid", Subject: "bob", Scopes: []string{"orders:read"}}
	for _, p := range []*authn.Principal{alice, bob, bob} { // bob twice: the second view is cached
		sid := tg.session(t, p)
		rq := legacyRequest(sid, 1, "tools/list", `{}`)
		rq.principal = p
		w, _ := tg.post(t, rq)
		legacy := listed(t, resultOf(t, w), "tools", "name")
		rq = modernRequest(1, "tools/list", "", "", `{}`)
		rq.principal = p
		w, _ = tg.post(t, rq)
		modern := listed(t, resultOf(t, w), "tools", "name")
		assert.Equal(t, legacy, modern, p.Subject)
		assert.Contains(t, legacy, "orders__get_order", p.Subject)
		assert.Contains(t, legacy, "payments__refund", p.Subject)
		if p == alice {
			assert.Contains(t, legacy, "orders__cancel_order")
		} else {
			assert.NotContains(t, legacy, "orders__cancel_order", "bob lacks orders:write")
		}
	}
}
