package gateway

import (
	"encoding/json"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// MCP Apps (the io.modelcontextprotocol/ui extension, SEP-1865) across the
// gateway: upstream declares the extension to every upstream
// (upstream/apps.go), the catalog keeps views ui:// URIs and maps the bare
// names views call their server's tools by (gateway/catalog/apps.go), and
// call.go routes those names. What is left here is the host's side: a host
// that did not declare the extension renders no views, so its tools list
// leaves out the app-only tools, which only a view may call and a model
// must not see ("Host MUST NOT include tools in the agent's tool list when
// their visibility does not include "model""). The variant is built with
// the catalog (published.plain, views.build); a list picks it.

// rendersViews reports whether ClientCapabilities caps declare MCP Apps
// with HTML views: extensions["io.modelcontextprotocol/ui"].mimeTypes
// includes text/html;profile=mcp-app ("Must include
// text/html;profile=mcp-app for MCP Apps support").
func rendersViews(caps []byte) bool {
	ui := rawjson.Member(rawjson.Member(caps, mcpwire.CapabilityExtensions), mcpwire.ExtensionUI)
	types := rawjson.Member(ui, "mimeTypes")
	found := false
	_ = rawjson.EachElement(types, func(v []byte) bool {
		found = rawjson.StringIs(v, mcpwire.MimeTypeMCPApp)
		return !found
	})
	return found
}

// plainFor returns snap, or its variant without app-only tools for a host
// without views, when snap is the snapshot published at ep (nil: the MCP
// endpoint) and has one.
func plainFor(rt *runtime, ep *mcpEndpoint, snap *catalog.Snapshot, withViews bool) *catalog.Snapshot {
	if withViews {
		return snap
	}
	pub := rt.pub.Load()
	if ep != nil {
		pub = ep.pub.Load()
	}
	if pub != nil && pub.snap == snap && pub.plain != nil {
		return pub.plain
	}
	return snap
}

// uiExtension returns the settings of MCP Apps in the ServerCapabilities
// of the first upstream that declares the extension (SEP-2133: servers
// declare the extensions they support under capabilities.extensions), nil
// when none does: the gateway then declares it too, with those settings,
// so that a host that looks for the server's declaration finds it as it
// would on the upstream.
func (rt *runtime) uiExtension() json.RawMessage {
	for _, u := range rt.clients {
		if u == nil {
			continue
		}
		cat, _ := u.Catalog()
		if cat == nil {
			continue
		}
		if ui := rawjson.Member(rawjson.Member(cat.Capabilities, mcpwire.CapabilityExtensions), mcpwire.ExtensionUI); len(ui) > 0 && ui[0] == '{' {
			return json.RawMessage(ui)
		}
	}
	return nil
}
