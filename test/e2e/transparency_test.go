package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The transparency test (issue 14, item 5): the same raw JSON-RPC requests
// are sent over HTTP to an upstream directly and through a real mcpgw with
// that upstream behind it, and the answers are compared member by member.
// It runs for each upstream library (go-sdk, mcp-go) in each era it speaks
// (2025-11-25 sessions, 2026-07-28 stateless), with an empty and a
// non-empty prefix. Every difference fails the test with its JSON path,
// except the rewrites docs/compatibility.md documents ("The documented
// rewrites"), which are applied to the direct answer first. They are, and
// nothing else is:
//
//  1. Names (rewrite 1): a tool's or prompt's name in tools/list and
//     prompts/list is the exposed name, <prefix><separator><name>; the
//     requests sent through mcpgw name the exposed name too.
//  2. Cursors (rewrite 2): a list is compared as all its pages joined; the
//     page boundaries and nextCursor are the gateway's.
//  3. The gateway's own results (rewrite 3): initialize and
//     server/discover are answered by mcpgw (serverInfo, instructions,
//     supportedVersions, ttlMs, cacheScope, _meta serverInfo are its own;
//     capabilities are compared); a 2026-07-28 list result's
//     _meta serverInfo, ttlMs and cacheScope are the gateway's.
//  4. Refusals (rewrite 4): the gateway answers a call or get of a name
//     not in its catalog itself; the error code is compared, the message
//     and data are the gateway's. A method it refuses itself (unknown,
//     removed, an invalid log level) must get the documented code and the
//     era's HTTP status, whatever the upstream says.
//  5. Framing (rewrite 5): an answer is one JSON body unless a
//     notification precedes the result; an upstream that streams every
//     answer as SSE is compared by the JSON-RPC messages it streams.
//
// HTTP status, Content-Type (up to rewrite 5), the presence of
// Mcp-Session-Id and the MCP-Protocol-Version response header are compared
// on every exchange.
func TestTransparency(t *testing.T) {
	type upstreamCase struct {
		name    string
		era     string
		handler func() http.Handler
	}
	cases := []upstreamCase{
		{"go-sdk/" + era2025, era2025, func() http.Handler { return evSDKServer(false) }},
		{"go-sdk/" + era2026, era2026, func() http.Handler { return evSDKServer(true) }},
		{"mcp-go/" + era2025, era2025, evMCPGoServer},
		{"mcp-go/" + era2026, era2026, evMCPGoServer},
	}
	for _, uc := range cases {
		for _, prefix := range []string{"", "ev"} {
			t.Run(fmt.Sprintf("%s/prefix=%q", uc.name, prefix), func(t *testing.T) {
				direct := startServer(t, uc.handler)
				behind := startServer(t, uc.handler)
				g := startGatewayWith(t, fmt.Sprintf(`
upstreams:
  - name: ev
    prefix: %q
    protocol_version: %q
    http: {url: %q}
`, prefix, uc.era, behind.url()), true, 1<<40)
				exposed := func(name string) string {
					if prefix == "" {
						return name
					}
					return prefix + "__" + name
				}
				d := &evClient{t: t, url: direct.url(), era: uc.era, hc: &http.Client{Transport: &http.Transport{}}}
				m := &evClient{t: t, url: g.url, era: uc.era, hc: &http.Client{Transport: &http.Transport{}}, rename: exposed}
				var diffs []string
				for _, step := range evSteps(uc.era) {
					step := &step
					diffs = append(diffs, compareStep(t, step, d, m, exposed)...)
				}
				for _, diff := range diffs {
					t.Error(diff)
				}
			})
		}
	}
}

// evStep is one request of the transcript.
type evStep struct {
	label  string
	method string
	id     any            // nil: a notification
	params map[string]any // with the upstream's own names
	// list names the member holding the items of a list method; the
	// step follows cursors to the end.
	list string
	// rule: "own" for the gateway's own answers (rewrite 3, initialize and
	// discover), "unrouted" for a target no upstream serves (rewrite 4).
	rule string
	// refusal is the error code of a request mcpgw refuses itself, as the
	// method table of docs/compatibility.md says (rewrite 4); the direct
	// answer is not consulted.
	refusal int
}

// evSteps is the transcript for an era.
func evSteps(era string) []evStep {
	call := func(label string, id any, name string, args map[string]any, meta map[string]any) evStep {
		p := map[string]any{"name": name, "arguments": args}
		if meta != nil {
			p["_meta"] = meta
		}
		return evStep{label: label, method: "tools/call", id: id, params: p}
	}
	steps := []evStep{}
	if era == era2025 {
		steps = append(steps,
			evStep{label: "initialize", method: "initialize", id: 0, rule: "own", params: map[string]any{
				"protocolVersion": era2025, "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "transparency", "version": "1"},
			}},
			evStep{label: "initialized", method: "notifications/initialized"},
			evStep{label: "ping", method: "ping", id: 1},
			evStep{label: "setLevel", method: "logging/setLevel", id: 2, params: map[string]any{"level": "debug"}},
		)
	} else {
		steps = append(steps, evStep{label: "discover", method: "server/discover", id: 0, rule: "own", params: map[string]any{}})
	}
	steps = append(steps,
		evStep{label: "tools/list", method: "tools/list", id: 10, list: "tools"},
		call("call structured", 11, "structured", map[string]any{"n": 21}, nil),
		call("call structured, string id", "s-12", "structured", map[string]any{"n": -4}, nil),
		call("call structured, invalid arguments", 19, "structured", map[string]any{"n": "twenty"}, nil),
		call("call contents", 13, "contents", map[string]any{}, nil),
		call("call tool_error", 14, "tool_error", map[string]any{}, nil),
		call("call protocol_error", 15, "protocol_error", map[string]any{}, nil),
		call("call notify with a progress token", 16, "notify", map[string]any{}, map[string]any{"progressToken": "tok-16"}),
		call("call notify without a progress token", 17, "notify", map[string]any{}, nil),
		evStep{label: "call unknown tool", method: "tools/call", id: 18, rule: "unrouted", params: map[string]any{"name": "no_such_tool", "arguments": map[string]any{}}},
		evStep{label: "resources/list", method: "resources/list", id: 20, list: "resources"},
		evStep{label: "resources/templates/list", method: "resources/templates/list", id: 21, list: "resourceTemplates"},
		evStep{label: "read text", method: "resources/read", id: 22, params: map[string]any{"uri": evTextURI}},
		evStep{label: "read blob", method: "resources/read", id: 23, params: map[string]any{"uri": evBlobURI}},
		evStep{label: "read template", method: "resources/read", id: 24, params: map[string]any{"uri": "ev://items/beta"}},
		evStep{label: "read missing item", method: "resources/read", id: 25, params: map[string]any{"uri": "ev://items/zeta"}},
		evStep{label: "prompts/list", method: "prompts/list", id: 30, list: "prompts"},
		evStep{label: "get greet", method: "prompts/get", id: 31, params: map[string]any{"name": "greet", "arguments": map[string]any{"name": "Ada", "style": "formal"}}},
		evStep{label: "get plain", method: "prompts/get", id: 32, params: map[string]any{"name": "plain"}},
		evStep{label: "get broken", method: "prompts/get", id: 33, params: map[string]any{"name": "broken"}},
		evStep{label: "get unknown prompt", method: "prompts/get", id: 34, rule: "unrouted", params: map[string]any{"name": "no_such_prompt"}},
		evStep{label: "complete prompt argument", method: "completion/complete", id: 40, params: map[string]any{
			"ref": map[string]any{"type": "ref/prompt", "name": "greet"}, "argument": map[string]any{"name": "style", "value": "f"},
		}},
		evStep{label: "complete template variable", method: "completion/complete", id: 41, params: map[string]any{
			"ref": map[string]any{"type": "ref/resource", "uri": evItemURIs}, "argument": map[string]any{"name": "id", "value": "b"},
		}},
		evStep{label: "unknown method", method: "no/such_method", id: 60, params: map[string]any{}, refusal: -32601},
	)
	if era == era2026 {
		steps = append(steps, evStep{label: "ping (removed in 2026-07-28)", method: "ping", id: 61, params: map[string]any{}, refusal: -32601})
	}
	if era == era2025 {
		steps = append(steps,
			// server/utilities/logging, "Error Handling": an invalid
			// log level is -32602 (go-sdk v1.8.0 accepts any).
			evStep{label: "setLevel, invalid level", method: "logging/setLevel", id: 52, params: map[string]any{"level": "loud"}, refusal: -32602},
			evStep{label: "subscribe", method: "resources/subscribe", id: 50, params: map[string]any{"uri": evTextURI}},
			evStep{label: "unsubscribe", method: "resources/unsubscribe", id: 51, params: map[string]any{"uri": evTextURI}},
		)
	}
	return steps
}

// evClient sends a transcript's requests to one side: the upstream
// directly, or mcpgw (rename maps the upstream's names to exposed ones).
type evClient struct {
	t       *testing.T
	url     string
	era     string
	hc      *http.Client
	session string
	rename  func(string) string
}

// exchange is what the test keeps of one HTTP exchange.
type exchange struct {
	status      int
	contentType string // the media type
	sessionID   bool   // Mcp-Session-Id present
	version     string // the MCP-Protocol-Version response header
	messages    []any  // the JSON-RPC messages: the body, or each SSE event's data
}

// params returns the step's params for this side: the exposed names through
// mcpgw, and the era's _meta.
func (c *evClient) params(s *evStep) map[string]any {
	p := map[string]any{}
	maps.Copy(p, s.params)
	if c.rename != nil && s.rule != "unrouted" {
		switch s.method {
		case "tools/call", "prompts/get":
			p["name"] = c.rename(p["name"].(string))
		case "completion/complete":
			if ref := p["ref"].(map[string]any); ref["type"] == "ref/prompt" {
				p["ref"] = map[string]any{"type": "ref/prompt", "name": c.rename(ref["name"].(string))}
			}
		}
	}
	if c.era == era2026 {
		meta := map[string]any{
			"io.modelcontextprotocol/protocolVersion":    era2026,
			"io.modelcontextprotocol/clientCapabilities": map[string]any{},
			"io.modelcontextprotocol/logLevel":           "debug",
		}
		if m, ok := p["_meta"].(map[string]any); ok {
			maps.Copy(meta, m)
		}
		p["_meta"] = meta
	}
	return p
}

// send sends one request of a step (with cursor, for a list's next page).
func (c *evClient) send(s *evStep, cursor string) exchange {
	c.t.Helper()
	p := c.params(s)
	if cursor != "" {
		p["cursor"] = cursor
	}
	msg := map[string]any{"jsonrpc": "2.0", "method": s.method}
	if s.id != nil {
		msg["id"] = s.id
	}
	if len(p) > 0 || s.id != nil {
		msg["params"] = p
	}
	body, err := json.Marshal(msg)
	require.NoError(c.t, err)
	req, err := http.NewRequestWithContext(c.t.Context(), http.MethodPost, c.url, bytes.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.era == era2026 {
		req.Header.Set("MCP-Protocol-Version", era2026)
		req.Header.Set("Mcp-Method", s.method)
		switch s.method {
		case "tools/call", "prompts/get":
			req.Header.Set("Mcp-Name", p["name"].(string))
		case "resources/read":
			req.Header.Set("Mcp-Name", p["uri"].(string))
		}
	} else if s.method != "initialize" {
		req.Header.Set("MCP-Protocol-Version", era2025)
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	resp, err := c.hc.Do(req)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	ex := exchange{status: resp.StatusCode, sessionID: resp.Header.Get("Mcp-Session-Id") != "", version: resp.Header.Get("MCP-Protocol-Version")}
	if s.method == "initialize" {
		c.session = resp.Header.Get("Mcp-Session-Id")
	}
	ex.contentType, _, _ = mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ex.contentType {
	case "text/event-stream":
		for _, event := range sseData(data) {
			ex.messages = append(ex.messages, decodeJSON(c.t, event))
		}
	case "application/json":
		ex.messages = append(ex.messages, decodeJSON(c.t, data))
	default:
		if len(bytes.TrimSpace(data)) > 0 {
			ex.messages = append(ex.messages, string(data))
		}
	}
	return ex
}

func decodeJSON(t *testing.T, data []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", data)
	return v
}

// run sends a step and returns its exchange; a list step follows cursors
// and returns the first page's exchange with every page's items joined
// (rewrite 2).
func (c *evClient) run(s *evStep) exchange {
	c.t.Helper()
	ex := c.send(s, "")
	if s.list == "" {
		return ex
	}
	for page := 0; ; page++ {
		require.Less(c.t, page, 100, "%s: too many pages", s.label)
		last := ex.messages[len(ex.messages)-1]
		res, ok := member(last, "result").(map[string]any)
		if !ok {
			return ex
		}
		cursor, _ := res["nextCursor"].(string)
		delete(res, "nextCursor")
		if cursor == "" {
			return ex
		}
		next := c.send(s, cursor)
		nres, ok := member(next.messages[len(next.messages)-1], "result").(map[string]any)
		require.True(c.t, ok, "%s: page after cursor %q: %v", s.label, cursor, next.messages)
		items, _ := nres[s.list].([]any)
		res[s.list] = append(res[s.list].([]any), items...)
		res["nextCursor"] = nres["nextCursor"]
	}
}

func member(v any, key string) any {
	if m, ok := v.(map[string]any); ok {
		return m[key]
	}
	return nil
}

// compareStep runs a step on both sides and returns the differences.
func compareStep(t *testing.T, s *evStep, direct, through *evClient, exposed func(string) string) []string {
	t.Helper()
	d, m := direct.run(s), through.run(s)
	where := s.label + ": "
	if s.refusal != 0 {
		return refused(s, through.era, m)
	}
	var diffs []string
	if d.status != m.status {
		diffs = append(diffs, fmt.Sprintf("%sHTTP status: direct %d, through mcpgw %d", where, d.status, m.status))
	}
	if d.sessionID != m.sessionID {
		diffs = append(diffs, fmt.Sprintf("%sMcp-Session-Id present: direct %v, through mcpgw %v", where, d.sessionID, m.sessionID))
	}
	if d.version != m.version {
		diffs = append(diffs, fmt.Sprintf("%sMCP-Protocol-Version response header: direct %q, through mcpgw %q", where, d.version, m.version))
	}
	// Rewrite 5: an SSE answer that carries only the response is the
	// same answer as a JSON body.
	framed := func(e exchange) string {
		if e.contentType == "text/event-stream" && len(e.messages) == 1 {
			return "application/json"
		}
		return e.contentType
	}
	if framed(d) != framed(m) {
		diffs = append(diffs, fmt.Sprintf("%sContent-Type: direct %q (%d messages), through mcpgw %q (%d messages)", where, d.contentType, len(d.messages), m.contentType, len(m.messages)))
	}
	want := make([]any, len(d.messages))
	for i, msg := range d.messages {
		want[i] = expect(s, msg, exposed)
	}
	got := make([]any, len(m.messages))
	for i, msg := range m.messages {
		got[i] = gatewayOwn(s, msg)
	}
	diffs = append(diffs, diffJSON(where+"$", want, got)...)
	if len(diffs) > 0 {
		t.Logf("%s: direct %d %s %s; through mcpgw %d %s %s", s.label, d.status, d.contentType, show(d.messages), m.status, m.contentType, show(m.messages))
	}
	return diffs
}

// refused checks the answer of a request mcpgw refuses itself: a JSON-RPC
// error with the documented code, with the status of the era (2026-07-28
// basic/transports: protocol errors are 4xx).
func refused(s *evStep, era string, m exchange) []string {
	status := http.StatusOK
	if era == era2026 {
		status = map[int]int{-32601: http.StatusNotFound, -32602: http.StatusBadRequest}[s.refusal]
	}
	want := map[string]any{"jsonrpc": "2.0", "id": s.id, "error": map[string]any{"code": json.Number(strconv.Itoa(s.refusal))}}
	if id, ok := s.id.(int); ok {
		want["id"] = json.Number(strconv.Itoa(id))
	}
	var diffs []string
	if m.status != status || m.contentType != "application/json" || len(m.messages) != 1 {
		diffs = append(diffs, fmt.Sprintf("%s: through mcpgw HTTP %d %s with %d messages, want %d application/json with one", s.label, m.status, m.contentType, len(m.messages), status))
		return diffs
	}
	got := deepCopy(m.messages[0])
	if e, ok := member(got, "error").(map[string]any); ok {
		delete(e, "message")
		delete(e, "data")
	}
	return append(diffs, diffJSON(s.label+": $", want, got)...)
}

// expect applies the documented rewrites to a direct message: what mcpgw
// must send for it.
func expect(s *evStep, msg any, exposed func(string) string) any {
	msg = gatewayOwn(s, msg)
	res, _ := member(msg, "result").(map[string]any)
	if res != nil && (s.method == "tools/list" || s.method == "prompts/list") {
		// Rewrite 1.
		for _, it := range res[s.list].([]any) {
			if o, ok := it.(map[string]any); ok {
				if n, ok := o["name"].(string); ok {
					o["name"] = exposed(n)
				}
			}
		}
	}
	return msg
}

// gatewayOwn removes, on both sides, the members rewrite 3 (and 4) makes
// the gateway's own.
func gatewayOwn(s *evStep, msg any) any {
	msg = deepCopy(msg)
	res, _ := member(msg, "result").(map[string]any)
	if res != nil {
		if s.rule == "own" {
			for _, k := range []string{"serverInfo", "instructions", "supportedVersions", "ttlMs", "cacheScope"} {
				delete(res, k)
			}
		}
		if s.rule == "own" || s.list != "" {
			if meta, ok := res["_meta"].(map[string]any); ok {
				delete(meta, "io.modelcontextprotocol/serverInfo")
				if len(meta) == 0 {
					delete(res, "_meta")
				}
			}
			if s.list != "" {
				delete(res, "ttlMs")
				delete(res, "cacheScope")
			}
		}
	}
	if s.rule == "unrouted" {
		if e, ok := member(msg, "error").(map[string]any); ok {
			for k := range e {
				if k != "code" {
					delete(e, k)
				}
			}
		}
	}
	return msg
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	default:
		return v
	}
}

// diffJSON compares two decoded JSON values member by member and returns
// one line per difference, with its JSON path.
func diffJSON(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: direct %s, through mcpgw %s", path, show(want), show(got))}
		}
		var out []string
		keys := slices.Sorted(maps.Keys(w))
		for _, k := range keys {
			p := path + "." + k
			if strings.ContainsAny(k, "./[]") {
				p = path + "[" + strconv.Quote(k) + "]"
			}
			gv, ok := g[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s: missing through mcpgw (direct %s)", p, show(w[k])))
				continue
			}
			out = append(out, diffJSON(p, w[k], gv)...)
		}
		for _, k := range slices.Sorted(maps.Keys(g)) {
			if _, ok := w[k]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: only through mcpgw (%s)", path, k, show(g[k])))
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: direct %s, through mcpgw %s", path, show(want), show(got))}
		}
		var out []string
		for i := range max(len(w), len(g)) {
			p := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case i >= len(g):
				out = append(out, fmt.Sprintf("%s: missing through mcpgw (direct %s)", p, show(w[i])))
			case i >= len(w):
				out = append(out, fmt.Sprintf("%s: only through mcpgw (%s)", p, show(g[i])))
			default:
				out = append(out, diffJSON(p, w[i], g[i])...)
			}
		}
		return out
	default:
		if want != got {
			return []string{fmt.Sprintf("%s: direct %s, through mcpgw %s", path, show(want), show(got))}
		}
		return nil
	}
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	const limit = 300
	if len(b) > limit {
		return string(b[:limit]) + "…"
	}
	return string(b)
}

// TestTransparencyComparison checks the comparison itself: the documented
// rewrites are the only differences it forgives, and every other one is
// reported with its JSON path.
func TestTransparencyComparison(t *testing.T) {
	exposed := func(n string) string { return "ev__" + n }
	list := evStep{label: "tools/list", method: "tools/list", list: "tools"}
	call := evStep{label: "call", method: "tools/call"}
	tests := []struct {
		name            string
		step            evStep
		direct, through string
		want            []string
	}{
		{"renamed tool", list, `{"result":{"tools":[{"name":"a","title":"A"}]}}`, `{"result":{"tools":[{"name":"ev__a","title":"A"}]}}`, nil},
		{
			"name not rewritten", list, `{"result":{"tools":[{"name":"a"}]}}`, `{"result":{"tools":[{"name":"a"}]}}`,
			[]string{`tools/list: $.result.tools[0].name: direct "ev__a", through mcpgw "a"`},
		},
		{"cache hints of a list are the gateway's", list, `{"result":{"tools":[],"cacheScope":"public"}}`, `{"result":{"tools":[],"ttlMs":30000,"cacheScope":"private"}}`, nil},
		{
			"error data", call, `{"error":{"code":1,"message":"m","data":{"a":[1,2]}}}`, `{"error":{"code":1,"message":"m","data":{"a":[1,3]}}}`,
			[]string{`call: $.error.data.a[1]: direct 2, through mcpgw 3`},
		},
		{"number literal", call, `{"result":{"n":1.0}}`, `{"result":{"n":1}}`, []string{`call: $.result.n: direct 1.0, through mcpgw 1`}},
		{"added member", call, `{"result":{}}`, `{"result":{"resultType":"complete"}}`, []string{`call: $.result.resultType: only through mcpgw ("complete")`}},
		{"lost member", call, `{"result":{"_meta":{"k.example/x":1}}}`, `{"result":{}}`, []string{`call: $.result._meta: missing through mcpgw (direct {"k.example/x":1})`}},
		{
			"lost content", call, `{"result":{"content":[{"type":"text"},{"type":"image"}]}}`, `{"result":{"content":[{"type":"text"}]}}`,
			[]string{`call: $.result.content[1]: missing through mcpgw (direct {"type":"image"})`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := expect(&tt.step, decodeJSON(t, []byte(tt.direct)), exposed)
			m := gatewayOwn(&tt.step, decodeJSON(t, []byte(tt.through)))
			require.Equal(t, tt.want, diffJSON(tt.step.label+": $", d, m))
		})
	}
}
