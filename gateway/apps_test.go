package gateway

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/policy"
)

// TestViewBareNameIsTheExposedName: a view's call by its server's own
// tool name is routed as the exposed name, so every check of the call
// path applies to it as to the exposed name (here a kill switch on the
// exposed name, and the audit record), and a name several view servers
// use is refused, in both eras.
func TestViewBareNameIsTheExposedName(t *testing.T) {
	east := newFake("east",
		`{"name":"show","_meta":{"ui":{"resourceUri":"ui://dash"}},"inputSchema":{"type":"object"}}`,
		`{"name":"poll","_meta":{"ui":{"resourceUri":"ui://dash","visibility":["app"]}},"inputSchema":{"type":"object"}}`,
		`{"name":"stop","_meta":{"ui":{"visibility":["app"]}},"inputSchema":{"type":"object"}}`)
	west := newFake("west",
		`{"name":"show","_meta":{"ui/resourceUri":"ui://dash"},"inputSchema":{"type":"object"}}`)
	plain := newFake("plain", `{"name":"poll","inputSchema":{"type":"object"}}`)
	tg := newTestGateway(t, fakesYAML("east", "west", "plain"), east, west, plain)
	_, err := tg.controls.switches.Add(t.Context(), &policy.Switch{Scope: policy.ScopeTool, Target: "east__stop", Reason: "incident 9", Actor: "sre"})
	require.NoError(t, err)
	alice := &authn.Principal{Issuer: "https://idp.invalid", Subject: "alice"}
	sid := tg.session(t, alice)

	calls := map[string]func(name string) request{
		"2025": func(name string) request {
			rq := legacyCall(sid, 1, name, `{}`)
			rq.principal = alice
			return rq
		},
		"2026": func(name string) request {
			rq := modernCall(1, name, `{}`)
			rq.principal = alice
			return rq
		},
	}
	for era, call := range calls {
		t.Run(era, func(t *testing.T) {
			before := len(east.requests())
			w, _ := tg.post(t, call("poll"))
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			require.Equal(t, 0, errorCode(t, w), w.Body.String())
			reqs := east.requests()
			require.Len(t, reqs, before+1, "east's view reaches east, not plain's poll")
			assert.Equal(t, "poll", reqs[len(reqs)-1].Tool)
			assert.Empty(t, plain.requests())

			w, _ = tg.post(t, call("stop"))
			assert.Equal(t, mcpwire.CodeKilled, errorCode(t, w), "the exposed name's kill switch stops the bare name")

			w, _ = tg.post(t, call("show"))
			require.Equal(t, mcpwire.CodeInvalidParams, errorCode(t, w))
			e, _ := rpcAnswer(t, w)["error"].(map[string]any)
			assert.Contains(t, e["message"], "ambiguous")
			assert.Equal(t, map[string]any{"tool": "show", "candidates": []any{"east__show", "west__show"}}, e["data"])
		})
	}
	var tools []any
	for _, rec := range tg.auditEvents(t, "tools/call") {
		tools = append(tools, rec["tool"])
	}
	assert.Contains(t, tools, "east__poll", "the audit names the exposed tool")
	assert.NotContains(t, tools, "poll")
}

// TestListsPerHostViews: a host that declared MCP Apps lists the app-only
// tools of view servers, one that did not does not, in both eras, on an
// open gateway and through per-principal views; the routes stay.
func TestListsPerHostViews(t *testing.T) {
	const uiCaps = `{"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}}}`
	tools := []string{
		`{"name":"show","_meta":{"ui":{"resourceUri":"ui://dash"}},"inputSchema":{"type":"object"}}`,
		`{"name":"poll","_meta":{"ui":{"resourceUri":"ui://dash","visibility":["app"]}},"inputSchema":{"type":"object"}}`,
		`{"name":"cancel_it","inputSchema":{"type":"object"}}`,
	}
	open := fakesYAML("east")
	scoped := `server:
  listen: 127.0.0.1:0
auth:
  resource: https://gw.example/mcp
  issuers:
    - issuer: https://idp.invalid
upstreams:
  - name: east
    http:
      url: http://east.invalid/mcp
    scopes:
      tools:
        - match: "cancel_*"
          scopes: [east:write]
`
	for name, yaml := range map[string]string{"open": open, "per principal": scoped} {
		t.Run(name, func(t *testing.T) {
			tg := newTestGateway(t, yaml, newFake("east", tools...))
			p := &authn.Principal{Issuer: "https://idp.invalid", Subject: "bob"}
			want := map[bool][]string{
				true:  {"east__show", "east__poll"},
				false: {"east__show"},
			}
			if name == "open" {
				want[true] = append(want[true], "east__cancel_it")
				want[false] = append(want[false], "east__cancel_it")
			}
			for _, views := range []bool{true, false, true, false} { // twice: cached views
				caps := `{}`
				if views {
					caps = uiCaps
				}
				w, _ := tg.post(t, request{principal: p, body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + caps + `,"clientInfo":{"name":"t","version":"1"}}}`})
				require.Equal(t, http.StatusOK, w.Code, w.Body.String())
				rq := legacyRequest(w.Header().Get(mcpwire.HeaderSessionID), 1, "tools/list", `{}`)
				rq.principal = p
				w, _ = tg.post(t, rq)
				assert.Equal(t, want[views], listed(t, resultOf(t, w), "tools", "name"), "2025, views %v", views)

				rq = modernRequest(1, "tools/list", "", "", caps)
				rq.principal = p
				w, _ = tg.post(t, rq)
				assert.Equal(t, want[views], listed(t, resultOf(t, w), "tools", "name"), "2026, views %v", views)
			}
			rq := modernCall(1, "east__poll", `{}`)
			rq.principal = p
			w, _ := tg.post(t, rq)
			assert.Equal(t, 0, errorCode(t, w), "withheld from a list, still routed")
		})
	}
}

// TestGatewayDeclaresUIWhenAnUpstreamDoes: the gateway's capabilities name
// MCP Apps, with the upstream's settings, when an upstream's do, in both
// eras; not otherwise.
func TestGatewayDeclaresUIWhenAnUpstreamDoes(t *testing.T) {
	for _, declared := range []bool{true, false} {
		east := newFake("east", `{"name":"show","inputSchema":{"type":"object"}}`)
		east.cat.Capabilities = json.RawMessage(`{"tools":{}}`)
		if declared {
			east.cat.Capabilities = json.RawMessage(`{"tools":{},"extensions":{"io.modelcontextprotocol/ui":{"x":1}}}`)
		}
		tg := newTestGateway(t, fakesYAML("plain", "east"), newFake("plain"), east)
		w, _ := tg.post(t, request{body: `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`})
		legacy, _ := resultOf(t, w)["capabilities"].(map[string]any)
		w, _ = tg.post(t, modernRequest(1, "server/discover", "", "", `{}`))
		modern, _ := resultOf(t, w)["capabilities"].(map[string]any)
		for era, caps := range map[string]map[string]any{"2025": legacy, "2026": modern} {
			if declared {
				assert.Equal(t, map[string]any{"io.modelcontextprotocol/ui": map[string]any{"x": float64(1)}}, caps["extensions"], era)
			} else {
				assert.NotContains(t, caps, "extensions", era)
			}
		}
	}
}
