package gateway

import (
	"net/http"
	"strings"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// withParamHeaders adds the request's Mcp-Param-* headers
// (mcpwire.HeaderParamPrefix), which a 2026-07-28 client mirrors from tool
// arguments annotated with x-mcp-header (basic/transports/streamable-http,
// "Custom Headers from Tool Parameters"), to dst and returns it: "Intermediate servers that do not recognize an
// Mcp-Param-{Name} header MUST forward it and otherwise ignore it". The
// upstream client recomputes the ones it knows from the tool's schema and
// the arguments; those win over the forwarded copies. The keys are
// canonical in in (net/http canonicalizes incoming header names).
func withParamHeaders(dst, in http.Header) http.Header {
	for k, v := range in {
		if strings.HasPrefix(k, mcpwire.HeaderParamPrefix) {
			if dst == nil {
				dst = make(http.Header, 2)
			}
			dst[k] = v
		}
	}
	return dst
}
