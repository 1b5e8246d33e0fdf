package upstream

import (
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// MCP Apps (the io.modelcontextprotocol/ui extension, SEP-1865) is
// negotiated in the client's capabilities: "Servers SHOULD check client
// capabilities before registering UI-enabled tools" (ext-apps
// specification/2026-01-26/apps.mdx, "Capability Negotiation"). The gateway
// opens one session per upstream, shared by every host, so it declares the
// extension to every upstream, at initialize and in the 2026-07-28 _meta of
// its own requests and of every forwarded one: the catalog it lists and the
// calls it forwards then agree, whatever each host declared. The
// specification makes that safe for a host without the extension: "If host
// does not support MCP Apps, tool behaves as standard tool (text-only
// fallback)", and "Tools MUST return meaningful content array even when UI
// is available" (docs/compatibility.md, "MCP Apps").

// uiExtension is the extension's member of ClientCapabilities.extensions:
// the host renders HTML views (mimeTypes is REQUIRED).
const uiExtension = `"` + mcpwire.ExtensionUI + `":{"mimeTypes":["` + mcpwire.MimeTypeMCPApp + `"]}`

// uiExtensions is ClientCapabilities.extensions declaring MCP Apps.
const uiExtensions = `"` + mcpwire.CapabilityExtensions + `":{` + uiExtension + `}`

// gatewayCapabilities is the ClientCapabilities the gateway declares on
// its own requests to a 2026-07-28 upstream (discovery, lists, reads).
const gatewayCapabilities = `{` + uiExtensions + `}`

// declareUI returns a downstream client's ClientCapabilities object with
// MCP Apps declared: caps itself when it declares it already (its own
// settings win), otherwise a copy with the extension added as the first
// member of extensions (or with an extensions member added). Nil, an empty
// object, or anything that is not an object yields nil: the gateway's own
// capabilities are declared then.
func declareUI(caps []byte) []byte {
	i := rawjson.SkipSpace(caps, 0)
	if i >= len(caps) || caps[i] != '{' {
		return nil
	}
	if j := rawjson.SkipSpace(caps, i+1); j >= len(caps) || caps[j] == '}' {
		return nil
	}
	s, e, ok := rawjson.MemberSpan(caps, mcpwire.CapabilityExtensions)
	if ok && caps[s] == '{' {
		if len(rawjson.Member(caps[s:e], mcpwire.ExtensionUI)) > 0 {
			return caps
		}
		return splice(caps, s+1, uiExtension, rawjson.SkipSpace(caps, s+1) < e-1)
	}
	if ok {
		return caps // extensions is not an object: the client's own word, relayed
	}
	return splice(caps, i+1, uiExtensions, true)
}

// splice returns a copy of b with member inserted at at, followed by a
// comma when more members follow.
func splice(b []byte, at int, member string, comma bool) []byte {
	out := make([]byte, 0, len(b)+len(member)+1)
	out = append(out, b[:at]...)
	out = append(out, member...)
	if comma {
		out = append(out, ',')
	}
	return append(out, b[at:]...)
}
