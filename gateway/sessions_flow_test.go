package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/upstream"
)

// TestInitialize: initialize opens a session with the client's version
// when the gateway serves it and the newest otherwise; a malformed
// initialize opens none.
func TestInitialize(t *testing.T) {
	tg := listsGateway(t, false)
	init := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"initialize","params":` + params + `}`
	}
	tests := []struct {
		name    string
		rq      request
		status  int
		code    int
		version string // negotiated; "" when no session opens
	}{
		{"served version", request{body: init(`{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"c","version":"1"}}`)}, 200, 0, "2024-11-05"},
		{"unknown version", request{body: init(`{"protocolVersion":"1999-01-01","capabilities":{}}`)}, 200, 0, "2025-11-25"},
		{"capabilities not an object", request{body: init(`{"protocolVersion":"2025-06-18","capabilities":"all"}`)}, 200, 0, "2025-06-18"},
		{"no params", request{body: `{"jsonrpc":"2.0","id":1,"method":"initialize"}`}, 200, 0, "2025-11-25"},
		{"a notification", request{body: `{"jsonrpc":"2.0","method":"initialize","params":{}}`}, 400, -32600, ""},
		{"with a session id", request{header: map[string]string{"Mcp-Session-Id": "s2.x"}, body: init(`{}`)}, 400, -32600, ""},
		{"invalid params", request{body: init(`{"protocolVersion":5}`)}, 200, -32602, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tg.sessions.count()
			w, _ := tg.post(t, tt.rq)
			require.Equal(t, tt.status, w.Code, w.Body.String())
			assert.Equal(t, tt.code, errorCode(t, w), w.Body.String())
			if tt.version == "" {
				assert.Empty(t, w.Header().Get("Mcp-Session-Id"))
				assert.Equal(t, before, tg.sessions.count())
				return
			}
			res := resultOf(t, w)
			assert.Equal(t, tt.version, res["protocolVersion"])
			assert.Equal(t, "mcpgw", at(t, res, "serverInfo", "name"))
			assert.NotNil(t, at(t, res, "capabilities", "tools", "listChanged"))
			assert.True(t, strings.HasPrefix(w.Header().Get("Mcp-Session-Id"), "s2."))
			assert.Equal(t, before+1, tg.sessions.count())
		})
	}
}

// TestSessionIDsAreBoundToTheirPrincipal: a session id works only for the
// principal that opened it, on every method of /mcp; another principal or
// a forged id gets the same 404 as an unknown one. DELETE ends a session
// for good.
func TestSessionIDsAreBoundToTheirPrincipal(t *testing.T) {
	tg := exitsGateway(t)
	alice := &authn.Principal{Issuer: "https://idp.invalid", Subject: "alice", Scopes: []string{"orders:write"}}
	bob := &authn.Principal{Issuer: "https://idp.invalid", Subject: "bob"}
	sid := tg.session(t, alice)

	list := func(id string, p *authn.Principal) int {
		rq := legacyRequest(id, 1, "tools/list", `{}`)
		rq.principal = p
		w, _ := tg.post(t, rq)
		if w.Code == http.StatusNotFound {
			assert.Equal(t, -32001, errorCode(t, w))
		}
		return w.Code
	}
	other := func(method, id string, p *authn.Principal) int {
		r := mcpRequest(t.Context(), method, "", map[string]string{"Mcp-Session-Id": id})
		w := httptest.NewRecorder()
		tg.serve(w, r, p)
		return w.Code
	}
	require.Equal(t, http.StatusOK, list(sid, alice))

	forged := []string{
		sid[:len(sid)-1] + flip(sid[len(sid)-1]),
		sid[:len(sid)-4],
		"s1." + sid[3:],
		"s2.",
		strings.ToUpper(sid),
	}
	for _, f := range forged {
		require.NotEqual(t, sid, f)
		assert.Equal(t, http.StatusNotFound, list(f, alice), "forged %q", f)
		assert.Equal(t, http.StatusNotFound, other(http.MethodGet, f, alice), "GET with forged %q", f)
		assert.Equal(t, http.StatusNotFound, other(http.MethodDelete, f, alice), "DELETE with forged %q", f)
	}
	assert.Equal(t, http.StatusNotFound, list(sid, bob), "another principal")
	assert.Equal(t, http.StatusNotFound, other(http.MethodGet, sid, bob))
	assert.Equal(t, http.StatusNotFound, other(http.MethodDelete, sid, bob))
	assert.Equal(t, http.StatusOK, list(sid, alice), "bob's attempts did not end alice's session")

	assert.Equal(t, http.StatusOK, other(http.MethodDelete, sid, alice))
	assert.Equal(t, http.StatusNotFound, list(sid, alice), "an ended session")
	assert.Equal(t, http.StatusNotFound, other(http.MethodDelete, sid, alice))
}

// flip is another base64url character than c.
func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// TestSessionsExpireAndResume: an idle session expires; a session opened
// on one replica is resumed by another sharing server.session_key, and a
// session that ended is not.
func TestSessionsExpireAndResume(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
  session_key: {value: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
`
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
	a := buildGateway(t, yaml, &Options{Now: clock}, orders)
	b := buildGateway(t, yaml, &Options{Now: clock}, orders)
	list := func(tg *testGateway, sid string) int {
		w, _ := tg.post(t, legacyRequest(sid, 1, "tools/list", `{}`))
		return w.Code
	}

	sid := a.session(t, nil)
	assert.Equal(t, http.StatusOK, list(b, sid), "resumed on the other replica")
	assert.Equal(t, int64(1), b.sessions.count())

	now.Add(int64(31 * time.Minute))
	assert.Equal(t, http.StatusNotFound, list(a, sid), "idle longer than session_idle_ttl")
	assert.Equal(t, http.StatusNotFound, list(a, sid), "and not resumed after")

	s2 := a.session(t, nil)
	s3 := a.session(t, nil)
	assert.Equal(t, int64(2), a.sessions.count())
	now.Add(int64(31 * time.Minute))
	a.sessions.sweep()
	assert.Equal(t, int64(0), a.sessions.count(), "the sweeper ends idle sessions")
	assert.Equal(t, http.StatusNotFound, list(a, s2))
	assert.Equal(t, http.StatusNotFound, list(a, s3))
}

// TestSessionStreamCarriesListChanged: a session's GET stream receives
// list_changed when the merged catalog changes, and ends when the session
// ends or the client leaves; GET without a usable session is refused.
func TestSessionStreamCarriesListChanged(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
catalog:
  list_changed_debounce: 1ms
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
`
	orders := newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
	tg := buildGateway(t, yaml, nil, orders)
	require.True(t, tg.Ready())

	refusals := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"no event stream accepted", map[string]string{"Accept": "application/json"}, http.StatusNotAcceptable},
		{"no session", nil, http.StatusBadRequest},
		{"unknown session", map[string]string{"Mcp-Session-Id": "s2.nope"}, http.StatusNotFound},
	}
	for _, rf := range refusals {
		w := httptest.NewRecorder()
		tg.serve(w, mcpRequest(t.Context(), http.MethodGet, "", rf.header), nil)
		assert.Equal(t, rf.status, w.Code, rf.name)
	}

	sid := tg.session(t, nil)
	gone := tg.session(t, nil)
	w, done := tg.serveAsync(mcpRequest(t.Context(), http.MethodGet, "", map[string]string{"Mcp-Session-Id": sid}), nil)
	require.Equal(t, http.StatusOK, w.statusOf(t))
	assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
	ctx, cancel := context.WithCancel(t.Context())
	w2, done2 := tg.serveAsync(mcpRequest(ctx, http.MethodGet, "", map[string]string{"Mcp-Session-Id": gone}), nil)
	require.Equal(t, http.StatusOK, w2.statusOf(t))

	orders.setCatalog(toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`, `{"name":"new_tool","inputSchema":{"type":"object"}}`))
	assert.Equal(t, "notifications/tools/list_changed", w.event(t)["method"])
	assert.Equal(t, "notifications/tools/list_changed", w2.event(t)["method"])
	lw, _ := tg.post(t, legacyRequest(sid, 2, "tools/list", `{}`))
	assert.Contains(t, listed(t, resultOf(t, lw), "tools", "name"), "orders__new_tool")

	cancel()
	wait(t, done2) // the client left
	r := mcpRequest(t.Context(), http.MethodDelete, "", map[string]string{"Mcp-Session-Id": sid})
	del := httptest.NewRecorder()
	tg.serve(del, r, nil)
	assert.Equal(t, http.StatusOK, del.Code)
	wait(t, done) // the session ended
}

// TestSubscriptionsListen: a 2026-07-28 subscriptions/listen stream is
// acknowledged with what the gateway honours, carries only the
// list_changed notifications the client opted in to, and ends with the
// listen request's result when the gateway drains.
func TestSubscriptionsListen(t *testing.T) {
	const yaml = `server:
  listen: 127.0.0.1:0
catalog:
  list_changed_debounce: 1ms
upstreams:
  - name: orders
    http:
      url: http://orders.invalid/mcp
`
	orders := newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
	tg := buildGateway(t, yaml, nil, orders)
	require.True(t, tg.Ready())
	listen := func(id int, notifications string) (*streamWriter, <-chan struct{}) {
		rq := modernRequest(id, "subscriptions/listen", "", `"notifications":`+notifications, `{}`)
		return tg.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), nil)
	}

	tools, toolsDone := listen(1, `{"toolsListChanged":true,"resourceSubscriptions":["orders://x"]}`)
	require.Equal(t, http.StatusOK, tools.statusOf(t))
	assert.Equal(t, "text/event-stream", tools.Header().Get("Content-Type"))
	ack := tools.event(t)
	assert.Equal(t, "notifications/subscriptions/acknowledged", ack["method"])
	assert.Equal(t, true, at(t, ack, "params", "notifications", "toolsListChanged"))
	assert.Equal(t, false, at(t, ack, "params", "notifications", "promptsListChanged"))
	assert.Nil(t, at(t, ack, "params", "notifications", "resourceSubscriptions"), "resource subscriptions are not relayed, so not acknowledged")
	// The subscription id is the listen request's id, on every
	// notification of the stream.
	assert.InDelta(t, 1, at(t, ack, "params", "_meta", "io.modelcontextprotocol/subscriptionId"), 0)

	prompts, promptsDone := listen(2, `{"promptsListChanged":true}`)
	require.Equal(t, http.StatusOK, prompts.statusOf(t))
	assert.Equal(t, "notifications/subscriptions/acknowledged", prompts.event(t)["method"])

	cat := toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`, `{"name":"more","inputSchema":{"type":"object"}}`)
	orders.setCatalog(cat)
	changed := tools.event(t)
	assert.Equal(t, "notifications/tools/list_changed", changed["method"])
	assert.InDelta(t, 1, at(t, changed, "params", "_meta", "io.modelcontextprotocol/subscriptionId"), 0)
	withPrompt := *cat
	withPrompt.Prompts = []json.RawMessage{json.RawMessage(`{"name":"summary"}`)}
	orders.setCatalog(&withPrompt)
	changed = prompts.event(t)
	assert.Equal(t, "notifications/prompts/list_changed", changed["method"],
		"the prompts listener did not get the tools change before")
	assert.InDelta(t, 2, at(t, changed, "params", "_meta", "io.modelcontextprotocol/subscriptionId"), 0)

	w, _ := tg.post(t, modernRequest(3, "subscriptions/listen", "", `"notifications":[]`, `{}`))
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.Equal(t, -32602, errorCode(t, w))

	tg.beginDrain()
	end := tools.event(t)
	assert.InDelta(t, 1, end["id"], 0)
	assert.InDelta(t, 1, at(t, end, "result", "_meta", "io.modelcontextprotocol/subscriptionId"), 0)
	wait(t, toolsDone)
	wait(t, promptsDone)
}

// TestCancelledNotificationCancelsTheCall: notifications/cancelled on a
// session cancels the call it names, which the upstream sees as its
// context ending; the client gets -32800.
func TestCancelledNotificationCancelsTheCall(t *testing.T) {
	orders := newFake("orders", `{"name":"waits","inputSchema":{"type":"object"}}`)
	entered := make(chan struct{})
	orders.handle = func(ctx context.Context, _ *upstream.Request) (json.RawMessage, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	tg := newTestGateway(t, fakesYAML("orders"), orders)
	sid := tg.session(t, nil)

	rq := legacyCall(sid, 9, "orders__waits", `{}`)
	w, done := tg.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), nil)
	select {
	case <-entered:
	case <-time.After(guard):
		require.FailNow(t, "the call did not reach the upstream")
	}
	for _, note := range []string{
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":10}}`, // another request
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{}}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	} {
		nw, _ := tg.post(t, request{header: rq.header, body: note})
		assert.Equal(t, http.StatusAccepted, nw.Code)
	}
	select {
	case <-done:
		require.FailNow(t, "a notification for another request ended the call")
	default:
	}
	nw, _ := tg.post(t, request{header: rq.header, body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":9,"reason":"user"}}`})
	assert.Equal(t, http.StatusAccepted, nw.Code)
	wait(t, done)
	require.Equal(t, http.StatusOK, w.statusOf(t))
	var ans map[string]any
	require.NoError(t, json.Unmarshal(<-w.writes, &ans))
	assert.InDelta(t, -32800, at(t, ans, "error", "code"), 0)

	recs := tg.auditEvents(t, "tools/call")
	require.Len(t, recs, 1)
	assert.Equal(t, "allowed", recs[0]["decision"])
	assert.Equal(t, "transport_error", recs[0]["outcome"])
}

// TestResponseToNoPendingRequest: a client's response that no
// server-to-client request waits for is accepted and dropped.
func TestResponseToNoPendingRequest(t *testing.T) {
	tg := newTestGateway(t, fakesYAML("orders"), newFake("orders"))
	sid := tg.session(t, nil)
	w, _ := tg.post(t, request{header: map[string]string{"Mcp-Session-Id": sid}, body: `{"jsonrpc":"2.0","id":"mcpgw-99","result":{}}`})
	assert.Equal(t, http.StatusAccepted, w.Code)
	assert.Empty(t, w.Body.String())
}

// TestProgressIsRelayed: the upstream's progress for a call reaches a
// client that sent a progressToken and accepts an event stream, before
// the result on the same stream, in both eras; a client that accepts only
// JSON gets the result alone.
func TestProgressIsRelayed(t *testing.T) {
	orders := newFake("orders", `{"name":"slow","inputSchema":{"type":"object"}}`)
	orders.handle = func(_ context.Context, req *upstream.Request) (json.RawMessage, error) {
		if req.OnProgress != nil {
			req.OnProgress(json.RawMessage(`{"progressToken":` + string(req.ProgressToken) + `,"progress":1,"total":2}`))
		}
		return json.RawMessage(`{"content":[{"type":"text","text":"done"}]}`), nil
	}
	tg := newTestGateway(t, fakesYAML("orders"), orders)
	sid := tg.session(t, nil)
	legacy := legacyRequest(sid, 4, "tools/call", `{"name":"orders__slow","arguments":{},"_meta":{"progressToken":"p-1"}}`)
	modern := modernRequest(4, "tools/call", "orders__slow", `"name":"orders__slow","arguments":{}`, `{}`)
	modern.body = strings.Replace(modern.body, `"_meta":{`, `"_meta":{"progressToken":"p-1",`, 1)

	for _, tt := range []struct {
		name   string
		rq     request
		accept string
		events int
	}{
		{"legacy", legacy, "application/json, text/event-stream", 2},
		{"modern", modern, "application/json, text/event-stream", 2},
		{"legacy, JSON only", legacy, "application/json", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.rq.header["Accept"] = tt.accept
			w, _ := tg.post(t, tt.rq)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			assert.Equal(t, `"p-1"`, string(lastRequest(t, orders).ProgressToken))
			evs := sseEvents(t, w.Body.Bytes())
			if tt.events == 0 {
				assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
				assert.Equal(t, "done", firstText(t, resultOf(t, w)))
				return
			}
			assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
			require.Len(t, evs, tt.events)
			assert.Equal(t, "notifications/progress", evs[0]["method"])
			assert.Equal(t, "p-1", at(t, evs[0], "params", "progressToken"))
			assert.InDelta(t, 1, at(t, evs[0], "params", "progress"), 0)
			assert.InDelta(t, 4, evs[1]["id"], 0)
			assert.NotNil(t, evs[1]["result"])
		})
	}
}

// sseEvents decodes the data of every event of an event stream; priming
// events (an id and no data) are not dispatched.
func sseEvents(t *testing.T, body []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok && len(d) > 0 {
			var m map[string]any
			require.NoError(t, json.Unmarshal(d, &m), "event %s", d)
			out = append(out, m)
		}
	}
	return out
}

// firstText is the text of a tool result's first content item.
func firstText(t *testing.T, res map[string]any) string {
	t.Helper()
	content, _ := res["content"].([]any)
	require.NotEmpty(t, content, "result %v", res)
	item, _ := content[0].(map[string]any)
	text, _ := item["text"].(string)
	return text
}
