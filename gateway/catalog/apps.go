package catalog

import (
	"strings"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// MCP Apps (the io.modelcontextprotocol/ui extension, SEP-1865;
// ext-apps specification/2026-01-26/apps.mdx). A tool names the ui://
// resource its view is rendered from in _meta.ui.resourceUri (or the
// deprecated flat _meta["ui/resourceUri"]), and a host reads that URI with
// resources/read. Three rules of the specification shape what Build does:
//
//   - "URI MUST start with ui:// scheme": a ui:// URI that several
//     upstreams serve is exposed in the UI gateway form
//     ui://mcpgw.<upstream>/<rest>, which is still a ui:// URI (the
//     mcpgw://<upstream>/<uri> form of other shared URIs would not be);
//   - "Resource MUST exist on the server" and "Servers MAY omit UI-only
//     resources from resources/list": a ui:// URI a tool names is routed to
//     the tool's upstream whether or not that upstream lists it, and
//     counts towards sharing;
//   - "app" visibility is "callable by the app from the same server
//     connection only": a view calls its own server's tools by the names
//     its server gave them, which Build maps to the exposed names
//     (ViewTool).
//
// The tool's listed object gets the exposed URI in place of the original
// in both _meta members, so the host reads the URI the gateway routes back
// to the tool's own upstream. All of it happens at Build; the hot path only
// looks up.

// UIGatewayPrefix starts the UI gateway form of a ui:// URI:
// ui://mcpgw.<upstream>/<rest> stands for upstream's ui://<rest>. Upstream
// names contain no '.' or '/', so the form parses back unambiguously.
const UIGatewayPrefix = mcpwire.UIScheme + "mcpgw."

// UIGatewayURI is the UI gateway form of upstream's ui:// URI uri. It
// reports false when uri is not a ui:// URI.
func UIGatewayURI(upstream, uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, mcpwire.UIScheme)
	if !ok {
		return "", false
	}
	return UIGatewayPrefix + upstream + "/" + rest, true
}

// ParseUIGatewayURI reverses UIGatewayURI. It reports false when uri is not
// in the UI gateway form or the upstream name is empty. It allocates the
// original URI.
func ParseUIGatewayURI(uri string) (upstream, original string, ok bool) {
	rest, ok := strings.CutPrefix(uri, UIGatewayPrefix)
	if !ok {
		return "", "", false
	}
	upstream, rest, ok = strings.Cut(rest, "/")
	if !ok || upstream == "" {
		return "", "", false
	}
	return upstream, mcpwire.UIScheme + rest, true
}

// isUIURI reports whether uri is a UI resource URI.
func isUIURI(uri string) bool { return strings.HasPrefix(uri, mcpwire.UIScheme) }

// exposeURI is the URI hosts see for upstream's resource URI original,
// which shared says several upstreams serve. A ui:// URI keeps its scheme:
// shared, or already in the UI gateway form (an upstream's own
// ui://mcpgw.x/… is nested, so that every exposed URI in that form is a
// gateway form and none can collide with another upstream's), it is
// exposed as UIGatewayURI. Any other shared URI is exposed as GatewayURI.
func exposeURI(upstream, original string, shared bool) string {
	if isUIURI(original) {
		if shared || strings.HasPrefix(original, UIGatewayPrefix) {
			exposed, _ := UIGatewayURI(upstream, original)
			return exposed
		}
		return original
	}
	if shared {
		return GatewayURI(upstream, original)
	}
	return original
}

// span is the position of one JSON value in a tool object, with a value
// to splice in.
type span struct {
	start, end int
	value      string
}

// toolUI is what Build reads of a tool's _meta: the ui:// URIs it names
// (their spans in the tool object, to rewrite them) and its visibility.
type toolUI struct {
	refs []span // value: the URI as the upstream wrote it
	// model and app are the visibility: both when the tool does not say.
	model, app bool
}

// parseToolUI reads the MCP Apps members of one tool object (validated,
// without surrounding whitespace): _meta.ui.resourceUri,
// _meta["ui/resourceUri"] and _meta.ui.visibility. Members that are not
// what the extension defines are ignored.
func parseToolUI(obj []byte) toolUI {
	tu := toolUI{model: true, app: true}
	ms, me, ok := rawjson.MemberSpan(obj, "_meta")
	if !ok {
		return tu
	}
	meta := obj[ms:me]
	ref := func(base int, container []byte, key string) {
		s, e, ok := rawjson.MemberSpan(container, key)
		if !ok {
			return
		}
		if uri, ok := rawjson.DecodeString(container[s:e]); ok && isUIURI(uri) {
			tu.refs = append(tu.refs, span{start: base + s, end: base + e, value: uri})
		}
	}
	if us, ue, ok := rawjson.MemberSpan(meta, mcpwire.MetaUI); ok {
		ui := meta[us:ue]
		ref(ms+us, ui, mcpwire.MetaUIResourceURI)
		if vis := rawjson.Member(ui, mcpwire.MetaUIVisibility); len(vis) > 0 && vis[0] == '[' {
			tu.model, tu.app = false, false
			_ = rawjson.EachElement(vis, func(v []byte) bool {
				tu.model = tu.model || rawjson.StringIs(v, mcpwire.VisibilityModel)
				tu.app = tu.app || rawjson.StringIs(v, mcpwire.VisibilityApp)
				return true
			})
		}
	}
	ref(ms, meta, mcpwire.MetaUIResourceURIFlat)
	return tu
}

// RewriteReadURIs returns the resources/read result res with the uri of
// each content whose uri is original replaced by exposed, every other byte
// unchanged: a host that read the exposed URI gets content naming the URI
// it asked for. It returns res itself when nothing changes or res is not a
// result with a contents array.
func RewriteReadURIs(res []byte, original, exposed string) []byte {
	cs, ce, ok := rawjson.MemberSpan(res, "contents")
	if !ok || res[cs] != '[' {
		return res
	}
	var out []byte
	last := 0
	for i := cs + 1; i < ce; {
		i = rawjson.SkipSpace(res, i)
		if i >= ce || res[i] == ']' {
			break
		}
		if res[i] == ',' {
			i++
			continue
		}
		j := rawjson.SkipValue(res, i)
		if j < 0 || j > ce {
			return res
		}
		el := res[i:j]
		if us, ue, ok := rawjson.MemberSpan(el, "uri"); ok && rawjson.StringIs(el[us:ue], original) {
			if out == nil {
				out = make([]byte, 0, len(res)+len(exposed)-len(original)+8)
			}
			out = append(out, res[last:i+us]...)
			out = rawjson.AppendString(out, exposed)
			last = i + ue
		}
		i = j
	}
	if out == nil {
		return res
	}
	return append(out, res[last:]...)
}

// ViewTool returns the exposed names a view may mean when it calls a tool
// by name, the name not being an exposed tool name (Tool does not know it):
// the app-visible tools (visibility includes "app", or is absent) named so
// by an upstream that serves MCP Apps (one of its tools names a ui://
// view). One name routes to that tool; several are ambiguous and must be
// refused; none means the name is unknown. The slice is shared: callers
// must not modify it.
//
// A view can only be rendered from an upstream that serves one, and may
// only call its own server's app-visible tools (MCP Apps, "Visibility"),
// so these are the only tools a view's bare name can mean. The gateway
// calls the exposed name with every check the exposed name gets: the bare
// name reaches nothing the exposed one does not.
func (s *Snapshot) ViewTool(name string) []string {
	return s.viewTools[name]
}

// AppOnly returns the number of routed app-only tools (visibility without
// "model") of upstreams serving MCP Apps views: when it is zero, building
// with Options.WithoutViews gives the same lists.
func (s *Snapshot) AppOnly() int { return s.appOnly }

// appTool is a routed app-visible tool of an upstream that serves MCP
// Apps, by its original name.
type appTool struct {
	original, exposed string
}

// buildViewTools maps the original names of app-visible tools of upstreams
// serving MCP Apps to their exposed names. A name that is itself an exposed
// tool name is left out: Tool answers it, the exposed name wins.
func (b *builder) buildViewTools() {
	for _, at := range b.appTools {
		if at.original == at.exposed {
			continue
		}
		if _, taken := b.snap.tools[at.original]; taken {
			continue
		}
		if b.snap.viewTools == nil {
			b.snap.viewTools = make(map[string][]string)
		}
		b.snap.viewTools[at.original] = append(b.snap.viewTools[at.original], at.exposed)
	}
}
