package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// uiCaps are the ClientCapabilities of a host that renders MCP Apps views
// (the io.modelcontextprotocol/ui extension, SEP-1865).
const uiCaps = `{"extensions":{"io.modelcontextprotocol/ui":{"mimeTypes":["text/html;profile=mcp-app"]}}}`

// appsHost is a host of one era talking raw MCP, so that the test sees the
// bytes: tools' _meta, resource contents, error data.
type appsHost struct {
	t      *testing.T
	c      *rawClient
	modern bool
	caps   string
}

// newAppsHost connects a host of era to url, declaring caps.
func newAppsHost(t *testing.T, url, era, caps string) *appsHost {
	t.Helper()
	h := &appsHost{t: t, c: newRawClient(t, url), modern: era == era2026, caps: caps}
	if h.modern {
		return h
	}
	resp, body := h.c.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":` + caps + `,"clientInfo":{"name":"apps-host","version":"1"}}}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	h.c.session = resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(t, h.c.session)
	resp, body = h.c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, string(body))
	return h
}

// request sends method with params (a JSON object's members, without
// braces) naming name (for Mcp-Name).
func (h *appsHost) request(method, name, members string) rpcResponse {
	h.t.Helper()
	if !h.modern {
		params := "{" + members + "}"
		return h.c.call(method, params)
	}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + h.caps + `}`
	if members != "" {
		meta = "," + meta
	}
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":%q,"params":{%s%s}}`, method, members, meta)
	status, r := h.c.modern(modernRequest{method: method, name: name, body: body})
	require.Contains(h.t, []int{http.StatusOK, http.StatusBadRequest}, status, "%s %s", method, name)
	return r
}

// appsTool is what the test reads of a listed tool.
type appsTool struct {
	Name string `json:"name"`
	Meta struct {
		UI struct {
			ResourceURI string   `json:"resourceUri"`
			Visibility  []string `json:"visibility"`
		} `json:"ui"`
		Flat string `json:"ui/resourceUri"`
	} `json:"_meta"`
}

func (h *appsHost) tools() map[string]appsTool {
	h.t.Helper()
	r := h.request("tools/list", "", "")
	require.Nil(h.t, r.Error)
	var res struct {
		Tools []appsTool `json:"tools"`
	}
	require.NoError(h.t, json.Unmarshal(r.Result, &res))
	out := map[string]appsTool{}
	for _, tool := range res.Tools {
		out[tool.Name] = tool
	}
	return out
}

func (h *appsHost) resourceURIs() []string {
	h.t.Helper()
	r := h.request("resources/list", "", "")
	require.Nil(h.t, r.Error)
	var res struct {
		Resources []struct {
			URI      string `json:"uri"`
			MIMEType string `json:"mimeType"`
		} `json:"resources"`
	}
	require.NoError(h.t, json.Unmarshal(r.Result, &res))
	var out []string
	for _, x := range res.Resources {
		assert.Equal(h.t, "text/html;profile=mcp-app", x.MIMEType, x.URI)
		out = append(out, x.URI)
	}
	slices.Sort(out)
	return out
}

// templateURIs lists the resource templates, sorted.
func (h *appsHost) templateURIs() []string {
	h.t.Helper()
	r := h.request("resources/templates/list", "", "")
	require.Nil(h.t, r.Error)
	var res struct {
		Templates []struct {
			URITemplate string `json:"uriTemplate"`
			MIMEType    string `json:"mimeType"`
		} `json:"resourceTemplates"`
	}
	require.NoError(h.t, json.Unmarshal(r.Result, &res))
	var out []string
	for _, x := range res.Templates {
		assert.Equal(h.t, "text/html;profile=mcp-app", x.MIMEType, x.URITemplate)
		out = append(out, x.URITemplate)
	}
	slices.Sort(out)
	return out
}

// viewContent is one content of a resources/read result.
type viewContent struct {
	URI      string          `json:"uri"`
	MIMEType string          `json:"mimeType"`
	Text     string          `json:"text"`
	Meta     json.RawMessage `json:"_meta"`
}

func (h *appsHost) read(uri string) []viewContent {
	h.t.Helper()
	r := h.request("resources/read", uri, fmt.Sprintf(`"uri":%q`, uri))
	require.Nil(h.t, r.Error, "read %s", uri)
	var res struct {
		Contents []viewContent `json:"contents"`
	}
	require.NoError(h.t, json.Unmarshal(r.Result, &res))
	return res.Contents
}

func (h *appsHost) callTool(name string) rpcResponse {
	h.t.Helper()
	return h.request("tools/call", name, fmt.Sprintf(`"name":%q,"arguments":{}`, name))
}

func appsText(t *testing.T, r rpcResponse) string {
	t.Helper()
	require.Nil(t, r.Error)
	var res struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	}
	require.NoError(t, json.Unmarshal(r.Result, &res))
	require.False(t, res.IsError, string(r.Result))
	require.Len(t, res.Content, 1)
	return res.Content[0].Text
}

// TestMCPAppsThroughTheGateway puts two MCP Apps servers that serve the
// same ui:// view URI behind one gateway, east (mcp-go) offering its UI
// tools only to hosts that declare the extension, in both upstream eras,
// and drives the gateway as a host of each era that declares the
// extension (issue 14, item 6).
func TestMCPAppsThroughTheGateway(t *testing.T) {
	views := map[string]struct{ html, meta string }{
		"east": {upstreams.EastViewHTML, upstreams.EastViewMeta},
		"west": {upstreams.WestViewHTML, upstreams.WestViewMeta},
	}
	for _, ups := range []struct {
		name       string
		east, west func() http.Handler
	}{
		{
			"2025 upstreams",
			func() http.Handler { return upstreams.EastViewsHandler(true) },
			func() http.Handler { return upstreams.WestViewsHandler(false) },
		},
		{
			"2026 upstreams",
			func() http.Handler { return upstreams.EastViewsHandler(false) },
			func() http.Handler { return upstreams.WestViewsHandler(true) },
		},
	} {
		t.Run(ups.name, func(t *testing.T) {
			east := startServer(t, ups.east)
			west := startServer(t, ups.west)

			// The gate is real: east offers its UI tools only to a host
			// that declares the extension.
			direct := newAppsHost(t, east.url(), era2025, `{}`)
			assert.NotContains(t, slices.Sorted(maps.Keys(direct.tools())), "show_dashboard", "east without the extension")
			direct = newAppsHost(t, east.url(), era2025, uiCaps)
			require.Contains(t, slices.Sorted(maps.Keys(direct.tools())), "show_dashboard", "east with the extension")

			g := startGatewayWith(t, fmt.Sprintf(`
upstreams:
  - {name: east, http: {url: %q}}
  - {name: west, http: {url: %q}}
`, east.url(), west.url()), true, 1<<40)

			for _, era := range []string{era2025, era2026} {
				t.Run(era, func(t *testing.T) {
					h := newAppsHost(t, g.url, era, uiCaps)
					tools := h.tools()
					require.Len(t, tools, 6, "every tool of both, app-only ones too")

					// The gated tools are offered, with their UI.
					for _, name := range []string{"east__show_dashboard", "east__poll_east", "west__show_dashboard", "west__poll_west"} {
						require.Contains(t, slices.Sorted(maps.Keys(tools)), name)
						assert.True(t, strings.HasPrefix(tools[name].Meta.UI.ResourceURI, "ui://"), "%s: %q", name, tools[name].Meta.UI.ResourceURI)
					}
					assert.Equal(t, []string{"app"}, tools["east__poll_east"].Meta.UI.Visibility)
					assert.Equal(t, tools["west__show_dashboard"].Meta.UI.ResourceURI, tools["west__show_dashboard"].Meta.Flat,
						"the deprecated flat key names the same view")

					// Every tool's view reads, through the gateway, as its
					// own server's HTML, mimeType and _meta, under the
					// URI the tool names.
					var linked []string
					for name, tool := range tools {
						for _, uri := range []string{tool.Meta.UI.ResourceURI, tool.Meta.Flat} {
							if uri == "" {
								continue
							}
							up, _, _ := strings.Cut(name, "__")
							contents := h.read(uri)
							require.Len(t, contents, 1, uri)
							assert.Equal(t, uri, contents[0].URI, "%s: the content names the URI read", name)
							assert.Equal(t, "text/html;profile=mcp-app", contents[0].MIMEType, name)
							assert.Equal(t, views[up].html, contents[0].Text, "%s reads %s's view", name, up)
							assert.JSONEq(t, views[up].meta, string(contents[0].Meta), name)
							linked = append(linked, uri)
						}
					}
					slices.Sort(linked)

					// resources/list shows those same ui:// URIs.
					assert.Equal(t, slices.Compact(linked), h.resourceURIs())
					assert.Equal(t, []string{"ui://mcpgw.east/dashboard/main", "ui://mcpgw.west/dashboard/main"}, h.resourceURIs())

					// A ui:// template both servers serve stays a ui://
					// template, in the same form, and a URI made from it
					// reads as its own server's view.
					assert.Equal(t, []string{"ui://mcpgw.east/dashboard/panels/{panel}", "ui://mcpgw.west/dashboard/panels/{panel}"}, h.templateURIs())
					for up, v := range views {
						uri := "ui://mcpgw." + up + "/dashboard/panels/sales"
						contents := h.read(uri)
						require.Len(t, contents, 1, uri)
						assert.Equal(t, uri, contents[0].URI, "the content names the URI read")
						assert.Equal(t, v.html, contents[0].Text, "%s reads %s's view", uri, up)
					}

					// A view calls its own server's tools by the names
					// its server gave them.
					assert.Equal(t, "east: polled", appsText(t, h.callTool("poll_east")))
					assert.Equal(t, "west: polled", appsText(t, h.callTool("poll_west")))
					assert.Equal(t, "east: dashboard shown", appsText(t, h.callTool("east__show_dashboard")))

					// A name both servers give a tool is refused, naming
					// the exposed names to use.
					for _, name := range []string{"show_dashboard", "status"} {
						r := h.callTool(name)
						require.NotNil(t, r.Error, name)
						assert.Equal(t, -32602, r.Error.Code)
						assert.Contains(t, r.Error.Message, "ambiguous")
						assert.JSONEq(t, fmt.Sprintf(`{"tool":%q,"candidates":["east__%s","west__%s"]}`, name, name, name), string(r.Error.Data))
					}
				})
			}

			t.Run("a host without the extension", func(t *testing.T) {
				// The gateway declares the extension upstream for every
				// host, so what it lists and what it forwards agree; a
				// host that renders no views is not shown the app-only
				// tools only a view may call.
				for _, era := range []string{era2025, era2026} {
					h := newAppsHost(t, g.url, era, `{}`)
					assert.Equal(t, []string{"east__show_dashboard", "east__status", "west__show_dashboard", "west__status"},
						slices.Sorted(maps.Keys(h.tools())), era)
					assert.Equal(t, "east: dashboard shown", appsText(t, h.callTool("east__show_dashboard")), era)
				}
			})
		})
	}
}

// TestMCPAppsSessionOnAnotherReplica: a host declares MCP Apps among
// capabilities too large for the session id to carry (over 1 KiB) on one
// replica, and goes on with its session on another replica, which resumes
// it from the sealed id: it is still a host that renders views, shown the
// app-only tools, and its view's call by its server's tool name still
// reaches that server.
func TestMCPAppsSessionOnAnotherReplica(t *testing.T) {
	east := startServer(t, func() http.Handler { return upstreams.EastViewsHandler(true) })
	west := startServer(t, func() http.Handler { return upstreams.WestViewsHandler(false) })
	cfg := fmt.Sprintf(`
server:
  session_key: {value: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}
upstreams:
  - {name: east, http: {url: %q}}
  - {name: west, http: {url: %q}}
`, east.url(), west.url())
	a := startGatewayWith(t, cfg, true, 1<<40)
	b := startGatewayWith(t, cfg, true, 1<<40)

	bigCaps := `{"experimental":{"padding":"` + strings.Repeat("x", 2048) + `"},` + uiCaps[1:]
	for _, caps := range []string{uiCaps, bigCaps} {
		h := newAppsHost(t, a.url, era2025, caps)
		want := slices.Sorted(maps.Keys(h.tools()))
		require.Len(t, want, 6, "on the replica that made the session: every tool, app-only ones too")

		moved := &appsHost{t: t, c: newRawClient(t, b.url), caps: caps}
		moved.c.session = h.c.session
		assert.Equal(t, want, slices.Sorted(maps.Keys(moved.tools())), "capabilities of %d bytes: the other replica lists the same", len(caps))
		assert.Equal(t, "east: polled", appsText(t, moved.callTool("poll_east")), "a view's call by its server's name")
	}
}
