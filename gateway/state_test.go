package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
)

// stateYAML is valid (validate accepts it), yet has what only the live
// catalog can show: orders' 40-character prefix leaves room for names of
// 22 characters and orders lists a longer one, and search's bare
// "lookup__resolve" takes the exposed name of lookup's "resolve".
var stateYAML = `server:
  listen: 127.0.0.1:0
upstreams:
  - name: orders
    prefix: ` + strings.Repeat("o", 40) + `
    http:
      url: http://orders.invalid/mcp
  - name: search
    prefix: ""
    http:
      url: http://search.invalid/mcp
  - name: lookup
    optional: true
    http:
      url: http://lookup.invalid/mcp
`

func stateGateway(t *testing.T) *testGateway {
	t.Helper()
	orders := newFake("orders", `{"name":"get","inputSchema":{"type":"object"}}`,
		`{"name":"cancel_order_now_and_refund_everything","inputSchema":{"type":"object"}}`)
	search := newFake("search", `{"name":"find","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}}`,
		`{"name":"lookup__resolve","inputSchema":{"type":"object"}}`)
	lookup := newFake("lookup", `{"name":"find","inputSchema":{"type":"object"}}`, `{"name":"resolve","inputSchema":{"type":"object"}}`)
	lookup.cat.ProtocolVersion, lookup.cat.Stateless = "2026-07-28", true
	search.cat.ProtocolVersion, search.cat.Stateless = "2025-11-25", false
	return newTestGateway(t, stateYAML, orders, search, lookup)
}

// getJSON GETs an admin path and decodes its JSON answer into v.
func getJSON(t *testing.T, tg *testGateway, path string, v any) {
	t.Helper()
	w := tg.do(t, http.MethodGet, path, "", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), v), w.Body.String())
}

// TestUpstreamsShowDroppedTools: a tool dropped for its name length and
// a name clash between upstreams are counted and explained in the admin
// listing and /readyz, and counted in a metric.
func TestUpstreamsShowDroppedTools(t *testing.T) {
	tg := stateGateway(t)

	var ups struct {
		Upstreams []UpstreamState `json:"upstreams"`
	}
	getJSON(t, tg, "/admin/v1/upstreams", &ups)
	require.Len(t, ups.Upstreams, 3)
	orders, search, lookup := ups.Upstreams[0], ups.Upstreams[1], ups.Upstreams[2]
	assert.Equal(t, 1, orders.Tools)
	assert.Equal(t, 1, orders.ToolsDroppedName, "cancel_order_now_and_refund_everything is past 64 characters once prefixed")
	require.Len(t, orders.Problems, 1)
	assert.Contains(t, orders.Problems[0], "cancel_order_now_and_refund_everything")
	assert.Zero(t, search.ToolsClashed, "search comes first and keeps lookup__resolve")
	assert.Equal(t, 2, search.Tools)
	assert.Equal(t, EraSession, search.Era)
	assert.Equal(t, "2025-11-25", search.ProtocolVersion)
	assert.Equal(t, 1, lookup.ToolsClashed)
	assert.Equal(t, 1, lookup.Tools)
	assert.Equal(t, EraStateless, lookup.Era)
	assert.False(t, lookup.Required)
	assert.True(t, lookup.Available)

	var ready struct {
		Upstreams []upstreamHealth `json:"upstreams"`
	}
	getJSON(t, tg, "/readyz", &ready)
	require.Len(t, ready.Upstreams, 3)
	assert.Equal(t, 1, ready.Upstreams[0].ToolsDroppedName)
	assert.Equal(t, 1, ready.Upstreams[2].ToolsClashed)

	got := map[string]int64{}
	tg.catalogDropped(func(upstream, reason string, n int64) { got[upstream+"/"+reason] = n })
	assert.Equal(t, map[string]int64{
		"orders/name_pattern": 1, "orders/name_clash": 0,
		"search/name_pattern": 0, "search/name_clash": 0,
		"lookup/name_pattern": 0, "lookup/name_clash": 1,
	}, got)
}

// TestAdminDrainsAndHistory: drains and switch changes are listed, the
// undrain reason is kept, and the history holds every change in order.
func TestAdminDrainsAndHistory(t *testing.T) {
	tg := stateGateway(t)
	w := tg.do(t, http.MethodPost, "/admin/v1/upstreams/search/drain", `{"reason":"deploy"}`, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	var drains struct {
		Drains []map[string]any `json:"drains"`
	}
	getJSON(t, tg, "/admin/v1/drains", &drains)
	require.Len(t, drains.Drains, 1)
	assert.Equal(t, "search", drains.Drains[0]["target"])
	assert.Equal(t, "deploy", drains.Drains[0]["reason"])
	var ups struct {
		Upstreams []UpstreamState `json:"upstreams"`
	}
	getJSON(t, tg, "/admin/v1/upstreams", &ups)
	assert.True(t, ups.Upstreams[1].Drained)
	require.NotNil(t, ups.Upstreams[1].Drain)
	assert.Equal(t, "deploy", ups.Upstreams[1].Drain.Reason)

	w = tg.do(t, http.MethodPost, "/admin/v1/upstreams/search/undrain", `{"reason":"deploy done"}`, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	w = tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"find","reason":"incident 4"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var added map[string]any
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &added))
	w = tg.do(t, http.MethodDelete, "/admin/v1/killswitches/"+added["id"].(string), "", nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())

	var hist struct {
		Events []SwitchEvent `json:"events"`
	}
	getJSON(t, tg, "/admin/v1/killswitches/history", &hist)
	var steps []string
	for _, e := range hist.Events {
		steps = append(steps, e.Kind+" "+e.Action+" "+e.Switch.Target+" "+e.Switch.Reason+" by "+e.Actor)
	}
	assert.Equal(t, []string{
		"drain drain search deploy by local-operator",
		"drain undrain search deploy done by local-operator",
		"killswitch add find incident 4 by local-operator",
		"killswitch remove find incident 4 by local-operator",
	}, steps)

	var reasons []any
	for _, r := range tg.auditEvents(t, "drain") {
		if r["action"] == "undrain" {
			reasons = append(reasons, r["reason"])
		}
	}
	assert.Equal(t, []any{"deploy done"}, reasons, "the undrain reason is audited")
}

// TestAdminCatalog: the catalog lists every routed tool with where it
// goes and why it is or is not listed; a kill switch shows at once.
func TestAdminCatalog(t *testing.T) {
	tg := stateGateway(t)
	w := tg.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"tool","target":"lookup__find","reason":"r"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	var view CatalogView
	getJSON(t, tg, "/admin/v1/catalog", &view)
	assert.Nil(t, view.As)
	assert.NotZero(t, view.Version)
	var names []string
	for _, tool := range view.Tools {
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"find", "lookup__find", "lookup__resolve", strings.Repeat("o", 40) + "__get"}, names)
	assert.Equal(t, CatalogTool{Name: "find", Upstream: "search", Original: "find", Listed: true, Available: true, ReadOnly: true}, view.Tools[0])
	assert.True(t, view.Tools[1].Killed)
	assert.False(t, view.Tools[1].Listed)
	assert.Equal(t, "search", view.Tools[2].Upstream, "the clash went to the first upstream")
}

// TestCatalogAsPrincipal: viewed as a principal, tools whose required
// scopes it lacks are not listed, and the view says which scopes are
// missing; it matches what tools/list gives that principal.
func TestCatalogAsPrincipal(t *testing.T) {
	tg := exitsGateway(t)
	full := tg.CatalogFor(nil)
	byName := map[string]CatalogTool{}
	for _, tool := range full.Tools {
		byName[tool.Name] = tool
	}
	require.Contains(t, byName, "orders__cancel_order")
	assert.Equal(t, []string{"orders:write"}, byName["orders__cancel_order"].RequiredScopes)
	assert.True(t, byName["orders__cancel_order"].Listed)
	assert.Empty(t, byName["orders__cancel_order"].MissingScopes)

	reader := tg.CatalogFor(&CatalogAs{Scopes: []string{"orders:read"}})
	require.NotNil(t, reader.As)
	var listed []string
	for _, tool := range reader.Tools {
		if tool.Name == "orders__cancel_order" {
			assert.False(t, tool.Listed)
			assert.Equal(t, []string{"orders:write"}, tool.MissingScopes)
		}
		if tool.Listed {
			listed = append(listed, tool.Name)
		}
	}
	// The same principal's tools/list.
	p := &authn.Principal{Subject: "alice", Scopes: []string{"orders:read"}}
	w, _ := tg.post(t, request{body: modernBody(1, "tools/list", ""), principal: p, header: modernHeaders("tools/list", "")})
	var wire []string
	for _, tool := range rpcAnswer(t, w)["result"].(map[string]any)["tools"].([]any) {
		wire = append(wire, tool.(map[string]any)["name"].(string))
	}
	assert.ElementsMatch(t, wire, listed)
}

func TestParseScopes(t *testing.T) {
	assert.Equal(t, []string{"a", "b", "c"}, parseScopes("a, b c,,"))
	assert.Empty(t, parseScopes(""))
}
