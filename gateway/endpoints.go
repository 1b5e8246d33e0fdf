package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/policy"
)

// Virtual endpoints (configs.Endpoint; docs/policy.md, "Virtual
// endpoints"). Each one is the MCP endpoint again on its own path, in
// both eras, over its own catalog snapshot: the runtime's snapshot with
// only the tools its selector chooses. That snapshot is built from the
// same sources and options as the runtime's, kill switches and every
// other catalog-level filter included, each time the runtime publishes
// one, so a call or a list never selects anything.
//
// The MCP endpoint itself is not an mcpEndpoint: everywhere below, a nil
// *mcpEndpoint means server.mcp_path, which keeps its path through the
// chain exactly as it was.

// mcpEndpoint is one virtual endpoint of a runtime.
type mcpEndpoint struct {
	path         string
	instructions string
	sel          *policy.Selector
	// auth is the endpoint's protected resource; nil without auth.
	auth     *authn.Resource
	required []string
	// handler serves the endpoint's path: the Origin check, authentication
	// against auth, then the MCP endpoint at this endpoint.
	handler http.Handler
	snap    atomic.Pointer[catalog.Snapshot]
	pub     atomic.Pointer[published] // snap with its sources, for filtered views
}

// newEndpoints compiles the configured endpoints' selectors.
func newEndpoints(cfg *configs.Config) (map[string]*mcpEndpoint, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, nil //nolint:nilnil // no endpoints: nil map, looked up as empty.
	}
	eps := make(map[string]*mcpEndpoint, len(cfg.Endpoints))
	for i := range cfg.Endpoints {
		e := &cfg.Endpoints[i]
		sel, err := policy.NewSelector(e, fmt.Sprintf("endpoints[%d]", i))
		if err != nil {
			return nil, err
		}
		eps[e.Path] = &mcpEndpoint{path: e.Path, instructions: e.Instructions, sel: sel, required: e.RequiredScopes}
	}
	return eps, nil
}

// selects is the endpoint's catalog.Options.Select.
func (ep *mcpEndpoint) selects(exposed, upstream, original string, raw json.RawMessage) bool {
	var ann map[string]any
	if a := rawjson.Member(raw, "annotations"); len(a) > 0 {
		_ = json.Unmarshal(a, &ann) // a malformed annotations object reads as none
	}
	return ep.sel.Selects(exposed, policy.ToolVars(exposed, original, upstream, ann))
}

// publish builds the endpoint's snapshot from what the runtime's was
// built from, with the same version.
func (ep *mcpEndpoint) publish(version uint64, opts catalog.Options, sources []catalog.Source) {
	opts.Select = ep.selects
	snap, _ := catalog.Build(version, opts, sources) // the problems are the runtime snapshot's, reported with it
	ep.pub.Store(newPublished(snap, sources, opts))
	ep.snap.Store(snap)
}

func (ep *mcpEndpoint) snapshot() *catalog.Snapshot { return ep.snap.Load() }

// snapshotAt is the catalog snapshot a request at ep sees in rt.
func (rt *runtime) snapshotAt(ep *mcpEndpoint) *catalog.Snapshot {
	if ep == nil {
		return rt.snapshot()
	}
	return ep.snapshot()
}

// endpointIn is ep as rt has it: a call that acquired a newer runtime
// than the one that routed its request uses that runtime's endpoint of
// the same path (ep itself when a reload removed it).
func (rt *runtime) endpointIn(ep *mcpEndpoint) *mcpEndpoint {
	if ep == nil {
		return nil
	}
	if cur := rt.endpoints[ep.path]; cur != nil {
		return cur
	}
	return ep
}

// serveEndpoint builds the handlers of a runtime's endpoint: its path,
// and with auth its protected resource metadata.
func (g *Gateway) serveEndpoint(ep *mcpEndpoint, routes map[string]http.Handler) error {
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serveAt(w, r, ep) })
	if g.auth != nil {
		res, err := g.auth.Endpoint(ep.path, ep.required)
		if err != nil {
			return err
		}
		ep.auth = res
		h = g.authenticate(h, res, ep.required)
		for _, p := range res.MetadataPaths() {
			routes[p] = res.MetadataHandler()
		}
	}
	ep.handler = g.originCheck(h)
	routes[ep.path] = ep.handler
	return nil
}

// routeEndpoints sends a request for a virtual endpoint's path, or its
// metadata, to its handler, and every other to rest. It comes after the
// MCP endpoint's exact match, so /mcp pays nothing for it.
func (g *Gateway) routeEndpoints(rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h, ok := g.rt.Load().routes[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// instructionsAt are the instructions of the MCP endpoint at ep.
func (g *Gateway) instructionsAt(ep *mcpEndpoint) string {
	if ep != nil && ep.instructions != "" {
		return ep.instructions
	}
	return g.instructions()
}

// ownerAt binds a session to its principal and its endpoint: a session
// opened at one endpoint is not found at another (nor at the MCP
// endpoint), whichever replica is asked.
func ownerAt(r *http.Request, ep *mcpEndpoint) string {
	if ep == nil {
		return ownerOf(r)
	}
	return ownerOf(r) + "\x00endpoint\x00" + ep.path
}
