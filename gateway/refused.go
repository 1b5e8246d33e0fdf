package gateway

import (
	"net/http"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// refused answers a tools/call refused before it became a call of the call
// path (a body that is not a valid request, a malformed 2026-07-28
// envelope, an unknown or missing session) with status and rerr, through a
// call value: finish then audits, counts and times it like every other
// call, so mcpgw.decisions and mcp.server.operation.duration see every
// tools/call whichever way it ended. m is the request as far as it was
// parsed, nil when the body is not a JSON-RPC message; a request that is
// not a tools/call (by its body, or by its Mcp-Method header when there is
// no body to go by) is not answered, and refused reports false.
func (g *Gateway) refused(w http.ResponseWriter, r *http.Request, m *message, status int, rerr *rpcError) bool {
	if m != nil && m.Method != mcpwire.MethodToolsCall || m == nil && r.Header.Get(mcpwire.HeaderMethod) != mcpwire.MethodToolsCall {
		return false
	}
	c := g.newCall(w, r, nil, mcpwire.MethodToolsCall, nil)
	defer c.finish()
	c.m = &message{}
	if m != nil {
		*c.m = *m
		if !validID(m.ID) {
			c.m.ID = nil
		}
	}
	c.rp = &replier{w: w, status: status}
	c.rerr = rerr
	return true
}

// errorStatus is the HTTP status of an error answer: the replier's fixed
// one when it has it, else the one the era prescribes for code.
func (rp *replier) errorStatus(code int) int {
	switch {
	case rp.status != 0:
		return rp.status
	case rp.modern:
		return modernStatus(code)
	default:
		return http.StatusOK
	}
}
