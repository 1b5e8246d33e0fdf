package gateway

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/upstream"
)

// bindHeaders reads the x-mcp-header bindings of every tool of snap, when
// a snapshot is published, never per call. A tool whose annotation breaks
// the spec's constraints binds nothing here (the upstream client leaves
// such a tool out of its catalog).
func (rt *runtime) bindHeaders(snap *catalog.Snapshot) {
	var out map[string]upstream.ParamBindings
	for _, exposed := range snap.Names(catalog.Tools) {
		raw, _ := snap.ToolObject(exposed)
		if !bytes.Contains(raw, []byte("x-mcp-header")) {
			continue
		}
		b, err := upstream.ToolParamBindings(raw)
		if err != nil || b.Empty() {
			continue
		}
		if out == nil {
			out = make(map[string]upstream.ParamBindings)
		}
		out[exposed] = b
	}
	if out == nil {
		rt.headers.Store(nil)
		return
	}
	rt.headers.Store(&out)
}

// checkParamHeaders holds a 2026-07-28 tools/call's Mcp-Param-* headers
// against the arguments they mirror, as the server the client talks to
// must (SEP-2243): a missing, malformed or disagreeing header is HTTP 400
// with CodeHeaderMismatch. Tools that bind no header cost a map lookup.
func (c *call) checkParamHeaders() *rpcError {
	if c.s != nil || c.method != mcpwire.MethodToolsCall {
		return nil
	}
	m := c.rt.headers.Load()
	if m == nil {
		return nil
	}
	b, ok := (*m)[c.t.name]
	if !ok {
		return nil
	}
	if err := b.Check(c.m.Params, c.r.Header); err != nil {
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Param header: "+err.Error(), map[string]any{"tool": c.t.name})
	}
	return nil
}

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
