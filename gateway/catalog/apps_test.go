package catalog

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// uiResource is a listed MCP Apps view.
func uiResource(uri string) json.RawMessage {
	return json.RawMessage(`{"uri":"` + uri + `","name":"view","mimeType":"text/html;profile=mcp-app"}`)
}

// appsSources are two upstreams that serve the same view URI and an app
// tool of the same name, and a third without views that has a tool of
// that name too.
func appsSources() []Source {
	return []Source{
		{
			Upstream: "east", Prefix: "east", Available: true,
			Tools: []json.RawMessage{
				json.RawMessage(`{"name":"show","_meta":{"ui":{"resourceUri":"ui://dash/main"}},"inputSchema":{"type":"object"}}`),
				json.RawMessage(`{"name":"refresh","_meta":{"ui":{"visibility":["app"],"resourceUri":"ui://dash/main"}},"inputSchema":{"type":"object"}}`),
				json.RawMessage(`{"name":"east_only","inputSchema":{"type":"object"}}`),
				json.RawMessage(`{"name":"model_only","_meta":{"ui":{"visibility":["model"]}},"inputSchema":{"type":"object"}}`),
			},
			Resources: []json.RawMessage{uiResource("ui://dash/main"), resource("file://east")},
		},
		{
			Upstream: "west", Prefix: "west", Available: true,
			Tools: []json.RawMessage{
				// The deprecated flat key before the nested one, and a view
				// west does not list.
				json.RawMessage(`{"_meta":{"ui/resourceUri":"ui://dash/main","ui":{"resourceUri":"ui://dash/main"},"other":"ui://dash/main"},"name":"show","inputSchema":{"type":"object"}}`),
				json.RawMessage(`{"name":"refresh","_meta":{"ui":{"resourceUri":"ui://west/hidden"}},"inputSchema":{"type":"object"}}`),
				json.RawMessage(`{"name":"west_only","inputSchema":{"type":"object"}}`),
			},
			Resources: []json.RawMessage{uiResource("ui://dash/main")},
		},
		{Upstream: "plain", Prefix: "plain", Available: true, Tools: tools("east_only", "west_only")},
	}
}

func TestAppsViewsStayUIURIs(t *testing.T) {
	t.Parallel()
	s, problems := build(t, defaultOpts, appsSources()...)
	require.Empty(t, problems)

	assert.Equal(t, []string{"ui://mcpgw.east/dash/main", "file://east", "ui://mcpgw.west/dash/main"}, s.Names(Resources),
		"a shared ui:// URI stays a ui:// URI; an unlisted view is routed, not listed")

	entries, _ := listAll(t, s, Tools)
	byName := map[string]string{}
	for _, e := range entries {
		name, err := findMember(e, "name")
		require.NoError(t, err)
		byName[name.value] = string(e)
	}
	assert.JSONEq(t, `{"name":"east__show","_meta":{"ui":{"resourceUri":"ui://mcpgw.east/dash/main"}},"inputSchema":{"type":"object"}}`, byName["east__show"])
	assert.Equal(t, //nolint:testifylint // every other byte, and the member order, must stay as the upstream sent them
		`{"_meta":{"ui/resourceUri":"ui://mcpgw.west/dash/main","ui":{"resourceUri":"ui://mcpgw.west/dash/main"},"other":"ui://dash/main"},"name":"west__show","inputSchema":{"type":"object"}}`,
		byName["west__show"], "both keys rewritten, in place; other members untouched")
	assert.Equal(t, `{"name":"west__refresh","_meta":{"ui":{"resourceUri":"ui://west/hidden"}},"inputSchema":{"type":"object"}}`, byName["west__refresh"], //nolint:testifylint // bytes as sent
		"a view only one upstream names keeps its URI")

	raw, ok := s.ToolObject("west__show")
	require.True(t, ok)
	assert.Contains(t, string(raw), `"ui/resourceUri":"ui://dash/main"`, "the tool's contract stays the upstream's own")

	tests := []struct {
		uri  string
		want Route
		ok   bool
	}{
		{"ui://mcpgw.east/dash/main", Route{Upstream: "east", Name: "ui://dash/main", Available: true}, true},
		{"ui://mcpgw.west/dash/main", Route{Upstream: "west", Name: "ui://dash/main", Available: true}, true},
		{"ui://west/hidden", Route{Upstream: "west", Name: "ui://west/hidden", Available: true}, true},
		{"ui://dash/main", Route{}, false},
		{"ui://mcpgw.nobody/dash/main", Route{}, false},
		{"ui://mcpgw./dash/main", Route{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			got, ok := s.Resource(tt.uri)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.Equal(t, "ui://mcpgw.east/dash/main", s.ExposedURI("east", "ui://dash/main"))
	assert.Equal(t, "ui://west/hidden", s.ExposedURI("west", "ui://west/hidden"))
}

func TestAppsGatewayFormCannotCollide(t *testing.T) {
	t.Parallel()
	// An upstream's own URI that looks like the UI gateway form is nested,
	// so it cannot take another upstream's exposed URI.
	s, problems := build(t, defaultOpts,
		Source{
			Upstream: "east", Prefix: "east", Available: true, Resources: []json.RawMessage{uiResource("ui://dash/main")},
			Tools: []json.RawMessage{json.RawMessage(`{"name":"a","_meta":{"ui":{"resourceUri":"ui://dash/main"}}}`)},
		},
		Source{Upstream: "west", Prefix: "west", Available: true, Resources: []json.RawMessage{uiResource("ui://dash/main")}},
		Source{
			Upstream: "evil", Prefix: "evil", Available: true, Resources: []json.RawMessage{uiResource("ui://mcpgw.east/dash/main")},
			Tools: []json.RawMessage{json.RawMessage(`{"name":"b","_meta":{"ui":{"resourceUri":"ui://mcpgw.east/dash/main"}}}`)},
		},
	)
	require.Empty(t, problems)
	assert.Equal(t, []string{"ui://mcpgw.east/dash/main", "ui://mcpgw.west/dash/main", "ui://mcpgw.evil/mcpgw.east/dash/main"}, s.Names(Resources))
	r, ok := s.Resource("ui://mcpgw.east/dash/main")
	require.True(t, ok)
	assert.Equal(t, "east", r.Upstream)
	r, ok = s.Resource("ui://mcpgw.evil/mcpgw.east/dash/main")
	require.True(t, ok)
	assert.Equal(t, Route{Upstream: "evil", Name: "ui://mcpgw.east/dash/main", Available: true}, r)
	entries, _ := listAll(t, s, Tools)
	require.Len(t, entries, 2)
	assert.Contains(t, string(entries[1]), `"resourceUri":"ui://mcpgw.evil/mcpgw.east/dash/main"`)
}

func TestAppsUIGatewayURIRoundTrips(t *testing.T) {
	t.Parallel()
	for _, uri := range []string{"ui://dash", "ui://dash/main", "ui://mcpgw.x/y", "ui://", "ui://a/b?c=d#e"} {
		exposed, ok := UIGatewayURI("east", uri)
		require.True(t, ok)
		up, original, ok := ParseUIGatewayURI(exposed)
		require.True(t, ok, exposed)
		assert.Equal(t, "east", up)
		assert.Equal(t, uri, original)
	}
	_, ok := UIGatewayURI("east", "file://x")
	assert.False(t, ok)
	for _, uri := range []string{"ui://dash", "ui://mcpgw.", "ui://mcpgw.east", "mcpgw://east/ui://x"} {
		_, _, ok := ParseUIGatewayURI(uri)
		assert.False(t, ok, uri)
	}
}

func TestAppsViewTool(t *testing.T) {
	t.Parallel()
	s, _ := build(t, defaultOpts, appsSources()...)
	tests := []struct {
		name string
		want []string
	}{
		{"refresh", []string{"east__refresh", "west__refresh"}}, // ambiguous
		{"east_only", []string{"east__east_only"}},              // plain's has no views
		{"west_only", []string{"west__west_only"}},
		{"model_only", nil}, // not app-visible
		{"nope", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, s.ViewTool(tt.name))
		})
	}

	// No prefix: the bare name is the exposed name, Tool answers it.
	srcs := appsSources()
	srcs[0].Prefix = ""
	bare, _ := build(t, defaultOpts, srcs...)
	assert.Nil(t, bare.ViewTool("east_only"))
	assert.Nil(t, bare.ViewTool("refresh"), "east's refresh is exposed as refresh; the exposed name wins")
}

func TestRewriteReadURIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, res, want string
	}{
		{
			"one content",
			`{"contents":[{"uri":"ui://dash/main","mimeType":"text/html;profile=mcp-app","text":"<p>","_meta":{"ui":{"prefersBorder":true}}}]}`,
			`{"contents":[{"uri":"ui://mcpgw.east/dash/main","mimeType":"text/html;profile=mcp-app","text":"<p>","_meta":{"ui":{"prefersBorder":true}}}]}`,
		},
		{
			"only the read uri, spaces kept",
			`{ "contents" : [ {"text":"a", "uri" : "ui://dash/main"} , {"uri":"ui://other"} ], "x":1}`,
			`{ "contents" : [ {"text":"a", "uri" : "ui://mcpgw.east/dash/main"} , {"uri":"ui://other"} ], "x":1}`,
		},
		{"nothing to rewrite", `{"contents":[{"uri":"ui://other"}]}`, `{"contents":[{"uri":"ui://other"}]}`},
		{"no contents", `{"resultType":"complete"}`, `{"resultType":"complete"}`},
		{"contents not an array", `{"contents":{}}`, `{"contents":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, string(RewriteReadURIs([]byte(tt.res), "ui://dash/main", "ui://mcpgw.east/dash/main")))
		})
	}
}

func TestAppsWithoutViews(t *testing.T) {
	t.Parallel()
	s, _ := build(t, defaultOpts, appsSources()...)
	assert.Equal(t, 1, s.AppOnly(), "east's refresh")
	opts := defaultOpts
	opts.WithoutViews = true
	plain, problems := build(t, opts, appsSources()...)
	require.Empty(t, problems)
	assert.Equal(t, []string{
		"east__show", "east__east_only", "east__model_only",
		"west__show", "west__refresh", "west__west_only",
		"plain__east_only", "plain__west_only",
	}, plain.Names(Tools), "east's app-only refresh is withheld")
	r, ok := plain.Tool("east__refresh")
	require.True(t, ok, "and still routed")
	assert.Equal(t, "east", r.Upstream)
	assert.Equal(t, s.Names(Resources), plain.Names(Resources))

	none, _ := build(t, defaultOpts, Source{Upstream: "x", Available: true, Tools: tools("a")})
	assert.Zero(t, none.AppOnly())
}

// TestAppsTemplatesStayUIURIs: resource templates follow the resources'
// rule. A ui:// template several upstreams serve is exposed in the UI
// gateway form, and a URI a host expands from it routes to its upstream
// with the original URI; one only one upstream serves keeps its form; an
// upstream's own template in the UI gateway form is nested; any other
// shared template takes the mcpgw:// form.
func TestAppsTemplatesStayUIURIs(t *testing.T) {
	t.Parallel()
	s, problems := build(t, defaultOpts,
		Source{Upstream: "east", Prefix: "east", Available: true, Tools: tools("a"), ResourceTemplates: []json.RawMessage{
			resourceTemplate("ui://dash/{panel}"), resourceTemplate("ui://east/{id}"), resourceTemplate("file:///{+path}"),
		}},
		Source{Upstream: "west", Prefix: "west", Available: true, Tools: tools("b"), ResourceTemplates: []json.RawMessage{
			resourceTemplate("ui://dash/{panel}"), resourceTemplate("ui://mcpgw.x/{id}"), resourceTemplate("file:///{+path}"),
		}},
	)
	require.Empty(t, problems)
	assert.Equal(t, []string{
		"ui://mcpgw.east/dash/{panel}", "ui://east/{id}", "mcpgw://east/file:///{+path}",
		"ui://mcpgw.west/dash/{panel}", "ui://mcpgw.west/mcpgw.x/{id}", "mcpgw://west/file:///{+path}",
	}, s.Names(ResourceTemplates))

	tests := []struct {
		uri  string
		want Route
		ok   bool
	}{
		{"ui://mcpgw.east/dash/sales", Route{Upstream: "east", Name: "ui://dash/sales", Available: true}, true},
		{"ui://mcpgw.west/dash/sales", Route{Upstream: "west", Name: "ui://dash/sales", Available: true}, true},
		{"ui://east/7", Route{Upstream: "east", Name: "ui://east/7", Available: true}, true},
		{"ui://mcpgw.west/mcpgw.x/7", Route{Upstream: "west", Name: "ui://mcpgw.x/7", Available: true}, true},
		{"ui://dash/sales", Route{}, false},
	}
	for _, tt := range tests {
		got, ok := s.Resource(tt.uri)
		assert.Equal(t, tt.ok, ok, tt.uri)
		assert.Equal(t, tt.want, got, tt.uri)
		if ok {
			assert.Equal(t, tt.uri, s.ExposedURI(got.Upstream, got.Name), "a read's content names the URI read: %s", tt.uri)
		}
	}
}
