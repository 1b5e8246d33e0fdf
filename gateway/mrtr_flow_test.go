package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/upstream"
)

// The MRTR flows of mrtr.go, through /mcp: a modern upstream's
// input_required passed through to a modern client with its state sealed,
// bridged to a legacy client over its session, and a session-era
// upstream's server-to-client request held for a modern client's retry.

// mrtrTools are the tools of the MRTR fakes.
var mrtrTools = []string{
	`{"name":"approve","inputSchema":{"type":"object"}}`,
	`{"name":"approve_stateless","inputSchema":{"type":"object"}}`,
	`{"name":"bad_state","inputSchema":{"type":"object"}}`,
	`{"name":"bad_requests","inputSchema":{"type":"object"}}`,
	`{"name":"odd_method","inputSchema":{"type":"object"}}`,
	`{"name":"endless","inputSchema":{"type":"object"}}`,
	`{"name":"confirm","inputSchema":{"type":"object"}}`,
	`{"name":"confirm_then_wait","inputSchema":{"type":"object"}}`,
}

// inputRequired is an input_required result asking for one elicitation
// under key "confirm", with the upstream's state (raw JSON, "" for none).
func inputRequired(method, state string) json.RawMessage {
	res := `{"resultType":"input_required","inputRequests":{"confirm":{"method":"` + method + `","params":{"message":"sure?"}}}`
	if state != "" {
		res += `,"requestState":` + state
	}
	return json.RawMessage(res + "}")
}

// textResult is a tool result whose text is raw.
func textResult(raw []byte) json.RawMessage {
	return json.RawMessage(`{"content":[{"type":"text","text":` + quote(string(raw)) + `}]}`)
}

// mrtrGateway has "pay", a stateless upstream answering input_required,
// and "legacy", a session-era upstream asking on its call's stream. Its
// confirm_then_wait tool signals entered (when not nil) once answered,
// then waits for its context to end.
func mrtrGateway(t *testing.T, now func() time.Time, entered chan<- struct{}) *testGateway {
	t.Helper()
	pay := newFake("pay", mrtrTools...)
	pay.handle = func(_ context.Context, req *upstream.Request) (json.RawMessage, error) {
		var p struct {
			InputResponses json.RawMessage `json:"inputResponses"`
		}
		if json.Unmarshal(req.Params, &p) == nil && len(p.InputResponses) > 0 {
			return textResult(p.InputResponses), nil
		}
		switch req.Tool {
		case "approve":
			return inputRequired("elicitation/create", `"up-1"`), nil
		case "approve_stateless":
			return inputRequired("elicitation/create", ""), nil
		case "bad_state":
			return inputRequired("elicitation/create", `42`), nil
		case "bad_requests":
			return json.RawMessage(`{"resultType":"input_required","inputRequests":5}`), nil
		case "odd_method":
			return inputRequired("tea/brew", ""), nil
		case "endless":
			return json.RawMessage(`{"resultType":"input_required"}`), nil
		}
		return textResult([]byte("no input")), nil
	}
	legacy := newFake("legacy", mrtrTools...)
	legacy.cat.Stateless = false
	legacy.handle = func(ctx context.Context, req *upstream.Request) (json.RawMessage, error) {
		if req.OnServerRequest == nil {
			return textResult([]byte("no input")), nil
		}
		ans, err := req.OnServerRequest(ctx, "elicitation/create", json.RawMessage(`{"message":"sure?"}`))
		if err != nil {
			return nil, err
		}
		if req.Tool == "confirm_then_wait" {
			if entered != nil {
				entered <- struct{}{}
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return textResult(ans), nil
	}
	return buildGateway(t, fakesYAML("pay", "legacy"), &Options{Now: now}, pay, legacy)
}

// stateOf is the requestState of an input_required answer, as raw JSON.
func stateOf(t *testing.T, res map[string]any) string {
	t.Helper()
	require.Equal(t, "input_required", res["resultType"], "result %v", res)
	st, ok := res["requestState"].(string)
	require.True(t, ok, "result %v", res)
	return quote(st)
}

// modernTool is a modern tools/call of tool with extra params members.
func modernTool(id int, tool, extra, caps string) request {
	params := `"name":"` + tool + `","arguments":{}`
	if extra != "" {
		params += "," + extra
	}
	return modernRequest(id, "tools/call", tool, params, caps)
}

// TestMRTRStatePassesThroughSealed: a modern upstream's input_required
// reaches a modern client with the upstream's state sealed in the
// gateway's; the retry gets the upstream its own state back. A state that
// is not the gateway's, is someone else's, is for another tool or has
// expired is refused.
func TestMRTRStatePassesThroughSealed(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	tg := mrtrGateway(t, func() time.Time { return time.Unix(0, now.Load()) }, nil)
	pay := tg.ups["pay"]

	w, _ := tg.post(t, modernTool(1, "pay__approve", "", `{}`))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	res := resultOf(t, w)
	state := stateOf(t, res)
	assert.True(t, strings.HasPrefix(state, `"g1.`), state)
	assert.NotContains(t, state, "up-1", "the upstream's state is sealed")
	assert.Equal(t, "elicitation/create", at(t, res, "inputRequests", "confirm", "method"))

	answers := `"inputResponses":{"confirm":{"action":"accept"}}`
	w, _ = tg.post(t, modernTool(2, "pay__approve", `"requestState":`+state+`,`+answers, `{}`))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"confirm":{"action":"accept"}}`, firstText(t, resultOf(t, w)))
	var sent map[string]any
	require.NoError(t, json.Unmarshal(lastRequest(t, pay).Params, &sent))
	assert.Equal(t, "up-1", sent["requestState"], "the upstream gets its own state back")

	// Without an upstream state, the retry carries none upstream.
	w, _ = tg.post(t, modernTool(3, "pay__approve_stateless", "", `{}`))
	stateless := stateOf(t, resultOf(t, w))
	w, _ = tg.post(t, modernTool(4, "pay__approve_stateless", `"requestState":`+stateless+`,`+answers, `{}`))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	sent = nil
	require.NoError(t, json.Unmarshal(lastRequest(t, pay).Params, &sent))
	assert.NotContains(t, sent, "requestState")

	w, _ = tg.post(t, modernTool(5, "pay__bad_state", "", `{}`))
	assert.Equal(t, -32051, errorCode(t, w), "an upstream state that is not a string")

	refused := []struct {
		name   string
		tool   string
		state  string
		p      *authn.Principal
		reason string
		forged bool
	}{
		{"not a string", "pay__approve", `42`, nil, "not a string", true},
		{"not the gateway's", "pay__approve", `"up-1"`, nil, "not issued by this gateway", true},
		{"malformed", "pay__approve", `"g1.!!"`, nil, "malformed", true},
		{"unknown key or forged", "pay__approve", `"g1.` + strings.Repeat("A", 60) + `"`, nil, "", true},
		{"tampered", "pay__approve", state[:len(state)-3] + `A"`, nil, "", true},
		{"another tool", "pay__approve_stateless", state, nil, "issued for another request", false},
		{"another principal", "pay__approve", state, &authn.Principal{Issuer: "https://idp.invalid", Subject: "mallory"}, "issued to another principal", false},
	}
	for _, rf := range refused {
		t.Run(rf.name, func(t *testing.T) {
			if rf.forged {
				require.NotEqual(t, state, rf.state)
			}
			before := len(pay.requests())
			rq := modernTool(6, rf.tool, `"requestState":`+rf.state+`,`+answers, `{}`)
			rq.principal = rf.p
			w, _ := tg.post(t, rq)
			assert.Equal(t, http.StatusBadRequest, w.Code, w.Body.String())
			assert.Equal(t, -32602, errorCode(t, w), w.Body.String())
			if rf.reason != "" {
				assert.Equal(t, rf.reason, errorData(t, w)["reason"])
			}
			assert.Len(t, pay.requests(), before, "a refused retry is not forwarded")
		})
	}

	now.Add(int64(11 * time.Minute))
	w, _ = tg.post(t, modernTool(7, "pay__approve", `"requestState":`+state+`,`+answers, `{}`))
	assert.Equal(t, -32602, errorCode(t, w))
	assert.Equal(t, "expired", errorData(t, w)["reason"])
}

// TestMRTRBridgesALegacyClient: a legacy client's call that a modern
// upstream answers with input_required becomes a server-to-client request
// on the call's event stream; the client's response, POSTed on its
// session, goes back upstream as inputResponses with the upstream's
// state. A session-era upstream's own request is relayed the same way.
func TestMRTRBridgesALegacyClient(t *testing.T) {
	tg := mrtrGateway(t, nil, nil)
	sid := tg.openSession(t, `{"elicitation":{}}`, nil)
	tests := []struct {
		name, tool string
		answer     string // the client's response, after "id":
		code       int
		check      func(t *testing.T, res map[string]any)
	}{
		{name: "modern upstream", tool: "pay__approve", answer: `"result":{"action":"accept","content":{"ok":true}}`, check: func(t *testing.T, res map[string]any) {
			t.Helper()
			assert.JSONEq(t, `{"confirm":{"action":"accept","content":{"ok":true}}}`, firstText(t, res))
			var sent map[string]any
			require.NoError(t, json.Unmarshal(lastRequest(t, tg.ups["pay"]).Params, &sent))
			assert.Equal(t, "up-1", sent["requestState"])
		}},
		{name: "session-era upstream", tool: "legacy__confirm", answer: `"result":{"action":"decline"}`, check: func(t *testing.T, res map[string]any) {
			t.Helper()
			assert.JSONEq(t, `{"action":"decline"}`, firstText(t, res))
		}},
		{name: "client answers with an error", tool: "pay__approve", answer: `"error":{"code":-1,"message":"no"}`, code: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := legacyCall(sid, 7, tt.tool, `{}`)
			w, done := tg.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), nil)
			ask := w.event(t)
			assert.Equal(t, "text/event-stream", w.Header().Get("Content-Type"))
			assert.Equal(t, "elicitation/create", ask["method"])
			assert.Equal(t, "sure?", at(t, ask, "params", "message"))
			id, ok := ask["id"].(string)
			require.True(t, ok, "ask %v", ask)

			aw, _ := tg.post(t, request{header: rq.header, body: `{"jsonrpc":"2.0","id":` + quote(id) + `,` + tt.answer + `}`})
			assert.Equal(t, http.StatusAccepted, aw.Code)
			final := w.event(t)
			wait(t, done)
			assert.InDelta(t, 7, final["id"], 0)
			if tt.code != 0 {
				assert.InDelta(t, tt.code, at(t, final, "error", "code"), 0, "final %v", final)
				return
			}
			res, ok := final["result"].(map[string]any)
			require.True(t, ok, "final %v", final)
			tt.check(t, res)
		})
	}
}

// TestMRTRBridgeRefusals: what the bridge cannot ask a legacy client is
// refused at once, without waiting: a capability it did not declare, an
// Accept without event streams, an input method the spec does not name,
// malformed or endless input requests.
func TestMRTRBridgeRefusals(t *testing.T) {
	tg := mrtrGateway(t, nil, nil)
	capable := tg.openSession(t, `{"elicitation":{}}`, nil)
	plain := tg.openSession(t, `{}`, nil)
	tests := []struct {
		name, sid, tool, accept string
		code                    int
	}{
		{"capability not declared", plain, "pay__approve", "", -32021},
		{"session-era upstream, capability not declared", plain, "legacy__confirm", "", -32021},
		{"no event stream", capable, "pay__approve", "application/json", -32021},
		{"unknown input method", capable, "pay__odd_method", "", -32601},
		{"malformed inputRequests", capable, "pay__bad_requests", "", -32051},
		{"endless input", capable, "pay__endless", "", -32051},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rq := legacyCall(tt.sid, 8, tt.tool, `{}`)
			if tt.accept != "" {
				rq.header["Accept"] = tt.accept
			}
			w, _ := tg.post(t, rq)
			assert.Equal(t, http.StatusOK, w.Code)
			assert.Equal(t, tt.code, errorCode(t, w), w.Body.String())
		})
	}
	endless := 0
	for _, r := range tg.ups["pay"].requests() {
		if r.Tool == "endless" {
			endless++
		}
	}
	assert.Equal(t, 11, endless, "the first call and ten retries")
}

// TestMRTRHoldsASessionEraCall: a session-era upstream's request during a
// modern client's call is held on the replica and becomes input_required;
// the retry's inputResponses answer it, once. A modern client without
// input capabilities is not asked.
func TestMRTRHoldsASessionEraCall(t *testing.T) {
	entered := make(chan struct{}, 1)
	tg := mrtrGateway(t, nil, entered)
	legacy := tg.ups["legacy"]
	caps := `{"elicitation":{}}`
	hold := func(id int, tool string) string {
		t.Helper()
		w, _ := tg.post(t, modernTool(id, tool, "", caps))
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
		res := resultOf(t, w)
		assert.Equal(t, "elicitation/create", at(t, res, "inputRequests", "r1", "method"))
		assert.Equal(t, "sure?", at(t, res, "inputRequests", "r1", "params", "message"))
		return stateOf(t, res)
	}

	state := hold(1, "legacy__confirm")
	assert.Equal(t, int64(1), tg.mrtr.nHeld.Load())
	retry := modernTool(2, "legacy__confirm", `"requestState":`+state+`,"inputResponses":{"r1":{"action":"accept"}}`, caps)
	w, _ := tg.post(t, retry)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.JSONEq(t, `{"action":"accept"}`, firstText(t, resultOf(t, w)))
	assert.Len(t, legacy.requests(), 1, "the held call was answered, not sent again")

	w, _ = tg.post(t, retry)
	assert.Equal(t, -32067, errorCode(t, w), "a held call is answered once")
	assert.Equal(t, "not_held", errorData(t, w)["reason"])

	state = hold(3, "legacy__confirm")
	w, _ = tg.post(t, modernTool(4, "legacy__confirm", `"requestState":`+state+`,"inputResponses":{}`, caps))
	assert.Equal(t, -32602, errorCode(t, w), "no answer for r1: %s", w.Body.String())

	state = hold(5, "legacy__confirm")
	w, _ = tg.post(t, modernTool(6, "legacy__confirm", `"requestState":`+state+`,"inputResponses":"yes"`, caps))
	assert.Equal(t, -32602, errorCode(t, w), "malformed inputResponses: %s", w.Body.String())

	// The client goes away while the resumed call runs on.
	state = hold(7, "legacy__confirm_then_wait")
	ctx, cancel := context.WithCancel(t.Context())
	rq := modernTool(8, "legacy__confirm_then_wait", `"requestState":`+state+`,"inputResponses":{"r1":{"action":"accept"}}`, caps)
	_, done := tg.serveAsync(mcpRequest(ctx, http.MethodPost, rq.body, rq.header), nil)
	select {
	case <-entered:
	case <-time.After(guard):
		require.FailNow(t, "the held call was not answered")
	}
	cancel()
	wait(t, done)

	w, _ = tg.post(t, modernTool(9, "legacy__confirm", "", `{}`))
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	assert.Equal(t, "no input", firstText(t, resultOf(t, w)), "a client without input capabilities is not asked")
	assert.Equal(t, int64(0), tg.mrtr.nHeld.Load())
}

// TestLargeClientCapabilitiesKept: a session whose initialize declared
// more capabilities than a session id can carry still knows them on the
// replica that holds it, so the bridge may ask the client for input.
func TestLargeClientCapabilitiesKept(t *testing.T) {
	tg := mrtrGateway(t, nil, nil)
	caps := `{"elicitation":{},"experimental":{"padding":"` + strings.Repeat("x", 1100) + `"}}`
	sid := tg.openSession(t, caps, nil)
	rq := legacyCall(sid, 7, "pay__approve", `{}`)
	w, done := tg.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), nil)
	var ask map[string]any
	for ask == nil {
		var first []byte
		select {
		case first = <-w.writes:
		case <-time.After(guard):
			require.FailNow(t, "no answer")
		}
		if evs := sseEvents(t, first); len(evs) > 0 {
			ask = evs[0]
		} else if !bytes.HasPrefix(first, []byte("id: ")) {
			// Not a stream's priming event: a JSON answer.
			require.NoError(t, json.Unmarshal(first, &ask))
		}
	}
	assert.Equal(t, "elicitation/create", ask["method"], "the client is asked, not refused: %v", ask)
	if id, ok := ask["id"].(string); ok {
		aw, _ := tg.post(t, request{header: rq.header, body: `{"jsonrpc":"2.0","id":` + quote(id) + `,"result":{"action":"accept"}}`})
		assert.Equal(t, http.StatusAccepted, aw.Code)
		w.event(t)
	}
	wait(t, done)
}

// TestResumeReleasesACallWhoseHoldExpired: when a retry takes a held
// call whose hold timer has fired but not yet released it, the retry is
// told the call timed out, and the upstream call is released rather than
// left waiting for answers that will never come.
func TestResumeReleasesACallWhoseHoldExpired(t *testing.T) {
	tg := mrtrGateway(t, nil, nil)
	fired := make(chan struct{})
	var released atomic.Bool
	h := &heldCall{done: make(chan struct{}), cancel: func() { released.Store(true) }}
	h.timer = time.AfterFunc(0, func() { close(fired) })
	<-fired // the timer fired; its callback has not taken the call from the map yet
	tg.mrtr.held.Store("held-1", h)
	tg.mrtr.nHeld.Add(1)

	_, err := tg.resumeHeld(t.Context(), "held-1", json.RawMessage(`{"inputResponses":{}}`))
	var rerr *rpcError
	require.ErrorAs(t, err, &rerr)
	assert.Equal(t, -32067, rerr.Code)
	assert.True(t, released.Load(), "the held upstream call is released")
}
