package upstreams

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Two MCP Apps servers (the io.modelcontextprotocol/ui extension,
// SEP-1865) that serve the same view URI with different HTML: east on
// mcp-go, offering its UI tools only to clients that declare the
// extension, as the specification says servers SHOULD ("Servers SHOULD
// check client capabilities before registering UI-enabled tools"), and
// west on go-sdk, linking its view with the deprecated flat
// _meta["ui/resourceUri"] key as well as _meta.ui. Each has an app-only
// tool named for itself (poll_east, poll_west: visibility ["app"], what a
// view calls), a show_dashboard tool both have, and a status tool without
// UI metadata (visible to the model and to views, the default).

// ViewURI is the ui:// URI both view servers serve.
const ViewURI = "ui://dashboard/main"

// ViewTemplate is the ui:// URI template both view servers serve: a panel
// of the dashboard, whose content is the server's view HTML.
const ViewTemplate = "ui://dashboard/panels/{panel}"

// The HTML each view server serves at ViewURI.
const (
	EastViewHTML = `<!doctype html><html><head><title>east dashboard</title></head><body><main id="east"></main></body></html>`
	WestViewHTML = `<!doctype html><html><head><title>west dashboard</title></head><body><main id="west"></main></body></html>`
)

// The _meta of each server's view content (UIResourceMeta under "ui").
const (
	EastViewMeta = `{"ui":{"csp":{"connectDomains":["https://east.example"]},"prefersBorder":true}}`
	WestViewMeta = `{"ui":{"prefersBorder":false,"domain":"west.example"}}`
)

// declaresUI reports whether the client behind ctx declared MCP Apps with
// the HTML view type, at initialize or, in 2026-07-28, in the request's
// _meta (mcp-go copies it onto the session).
func declaresUI(ctx context.Context) bool {
	cs, ok := mcpserver.ClientSessionFromContext(ctx).(mcpserver.SessionWithClientInfo)
	if !ok {
		return false
	}
	ext, ok := cs.GetClientCapabilities().Extensions[mcpwire.ExtensionUI].(map[string]any)
	if !ok {
		return false
	}
	types, _ := ext["mimeTypes"].([]any)
	return slices.Contains(types, any(mcpwire.MimeTypeMCPApp))
}

// EastViewsHandler is the east view server (mcp-go) over Streamable HTTP.
// With legacyOnly it serves only the session era, else both eras (the
// gateway then speaks 2026-07-28 to it). Its tools with a view
// (show_dashboard, poll_east) exist only for clients that declare MCP
// Apps; status exists for all.
func EastViewsHandler(legacyOnly bool) http.Handler {
	srv := mcpserver.NewMCPServer("east-views", "1.0.0",
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithResourceCapabilities(false, false),
		mcpserver.WithRecovery(),
		mcpserver.WithToolFilter(func(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
			if declaresUI(ctx) {
				return tools
			}
			return slices.DeleteFunc(slices.Clone(tools), func(t mcp.Tool) bool {
				return t.Meta != nil && t.Meta.AdditionalFields[mcpwire.MetaUI] != nil
			})
		}),
	)
	text := func(s string) mcpserver.ToolHandlerFunc {
		return func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(s), nil
		}
	}
	show := mcp.NewTool("show_dashboard", mcp.WithDescription("Shows the east dashboard."))
	show.Meta = mcp.NewMetaFromMap(map[string]any{mcpwire.MetaUI: map[string]any{mcpwire.MetaUIResourceURI: ViewURI}})
	srv.AddTool(show, text("east: dashboard shown"))
	poll := mcp.NewTool("poll_east", mcp.WithDescription("Refreshes the east dashboard's data; for its view."))
	poll.Meta = mcp.NewMetaFromMap(map[string]any{mcpwire.MetaUI: map[string]any{
		mcpwire.MetaUIResourceURI: ViewURI, mcpwire.MetaUIVisibility: []string{mcpwire.VisibilityApp},
	}})
	srv.AddTool(poll, text("east: polled"))
	srv.AddTool(mcp.NewTool("status", mcp.WithDescription("East's status.")), text("east: ok"))

	var meta map[string]any
	if err := json.Unmarshal([]byte(EastViewMeta), &meta); err != nil {
		panic(err)
	}
	srv.AddResource(mcp.NewResource(ViewURI, "east-dashboard", mcp.WithMIMEType(mcpwire.MimeTypeMCPApp)),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI: req.Params.URI, MIMEType: mcpwire.MimeTypeMCPApp, Text: EastViewHTML, Meta: meta,
			}}, nil
		})
	srv.AddResourceTemplate(mcp.NewResourceTemplate(ViewTemplate, "east-panel", mcp.WithTemplateMIMEType(mcpwire.MimeTypeMCPApp)),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI: req.Params.URI, MIMEType: mcpwire.MimeTypeMCPApp, Text: EastViewHTML, Meta: meta,
			}}, nil
		})
	var opts []mcpserver.StreamableHTTPOption
	if legacyOnly {
		opts = append(opts, mcpserver.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...))
	}
	return mcpserver.NewStreamableHTTPServer(srv, opts...)
}

// WestViewsHandler is the west view server (go-sdk) over Streamable HTTP,
// stateful (session era) or stateless (2026-07-28). It offers its tools
// to every client.
func WestViewsHandler(stateless bool) http.Handler {
	srv := sdk.NewServer(&sdk.Implementation{Name: "west-views", Version: "1.0.0"}, nil)
	text := func(s string) sdk.ToolHandler {
		return func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: s}}}, nil
		}
	}
	object := json.RawMessage(`{"type":"object"}`)
	srv.AddTool(&sdk.Tool{
		Name: "show_dashboard", Description: "Shows the west dashboard.", InputSchema: object,
		Meta: sdk.Meta{
			mcpwire.MetaUIResourceURIFlat: ViewURI,
			mcpwire.MetaUI:                map[string]any{mcpwire.MetaUIResourceURI: ViewURI},
		},
	}, text("west: dashboard shown"))
	srv.AddTool(&sdk.Tool{
		Name: "poll_west", Description: "Refreshes the west dashboard's data; for its view.", InputSchema: object,
		Meta: sdk.Meta{mcpwire.MetaUI: map[string]any{
			mcpwire.MetaUIResourceURI: ViewURI, mcpwire.MetaUIVisibility: []string{mcpwire.VisibilityApp},
		}},
	}, text("west: polled"))
	srv.AddTool(&sdk.Tool{Name: "status", Description: "West's status.", InputSchema: object}, text("west: ok"))

	var meta sdk.Meta
	if err := json.Unmarshal([]byte(WestViewMeta), &meta); err != nil {
		panic(err)
	}
	srv.AddResource(&sdk.Resource{URI: ViewURI, Name: "west-dashboard", MIMEType: mcpwire.MimeTypeMCPApp},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
				{URI: req.Params.URI, MIMEType: mcpwire.MimeTypeMCPApp, Text: WestViewHTML, Meta: meta},
			}}, nil
		})
	srv.AddResourceTemplate(&sdk.ResourceTemplate{URITemplate: ViewTemplate, Name: "west-panel", MIMEType: mcpwire.MimeTypeMCPApp},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
				{URI: req.Params.URI, MIMEType: mcpwire.MimeTypeMCPApp, Text: WestViewHTML, Meta: meta},
			}}, nil
		})
	var opts *sdk.StreamableHTTPOptions
	if stateless {
		opts = &sdk.StreamableHTTPOptions{Stateless: true}
	}
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, opts)
}
