package gateway

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/upstream"
)

// The gateway's state as operators see it. The admin API marshals these
// plain values, and the SRE console renders the same ones in-process, so
// both always list the same things.

// Eras an upstream is spoken to in, as UpstreamState.Era reports them.
const (
	// EraStateless is the 2026-07-28 era: no initialize, no session.
	EraStateless = "stateless"
	// EraSession is the 2025 era: a session opened by initialize.
	EraSession = "session"
)

// UpstreamState is one upstream of the current configuration.
type UpstreamState struct {
	Name string `json:"name"`
	// Required is false for an optional upstream, which readiness does not
	// wait for.
	Required bool `json:"required"`
	// Loaded reports whether its catalog has been listed once; Available
	// whether it is reachable now.
	Loaded    bool `json:"loaded"`
	Available bool `json:"available"`
	// ProtocolVersion is the version negotiated with it, and Era the
	// protocol era that version belongs to (EraStateless or EraSession);
	// both empty before the first listing.
	ProtocolVersion string `json:"protocol_version,omitempty"`
	Era             string `json:"era,omitempty"`
	// Breaker is the state of the upstream's own breaker ("" without
	// one); Breakers lists the per-tool ones, when configured.
	Breaker  string                  `json:"breaker"`
	Breakers []upstream.BreakerState `json:"breakers,omitempty"`
	// Drained reports an active drain; Drain is its record.
	Drained bool           `json:"drained"`
	Drain   *policy.Switch `json:"drain,omitempty"`
	// Tools counts the tools the catalog routes to it (listed or not).
	Tools int `json:"tools"`
	// ToolsDroppedName counts its tools left out of the catalog because
	// their exposed name does not match catalog.name_pattern (most often:
	// longer than 64 characters once prefixed); ToolsClashed those left
	// out because an earlier upstream exposes the same name. Only the live
	// catalog shows these; Problems says which tools.
	ToolsDroppedName int      `json:"tools_dropped_name"`
	ToolsClashed     int      `json:"tools_clashed"`
	Problems         []string `json:"problems,omitempty"`
	// ToolsQuarantined counts its tools held back because their contract
	// no longer matches the lock file (pinning enforce); they are among
	// Tools, still routed, but no list shows them.
	ToolsQuarantined int `json:"tools_quarantined,omitempty"`
	upstream.Load
}

// Upstreams reports every upstream of the current configuration, in
// configuration order.
func (g *Gateway) Upstreams() []UpstreamState {
	rt := g.rt.Load()
	infos := map[string]catalog.UpstreamInfo{}
	if snap := rt.snapshot(); snap != nil {
		for _, u := range snap.Upstreams() {
			infos[u.Name] = u
		}
	}
	var problems []catalog.Problem
	if p := rt.problems.Load(); p != nil {
		problems = *p
	}
	quarantined := rt.quarantinedPerUpstream()
	out := make([]UpstreamState, 0, len(rt.clients))
	for _, c := range rt.clients {
		name := c.Name()
		cat, avail := c.Catalog()
		st := UpstreamState{
			Name: name, Required: !rt.upCfg[name].Optional, Loaded: cat != nil, Available: avail,
			Breaker: breakerState(c),
		}
		if cat != nil {
			st.ProtocolVersion = cat.ProtocolVersion
			st.Era = EraSession
			if cat.Stateless {
				st.Era = EraStateless
			}
		}
		if r, ok := c.(reporter); ok {
			st.Load = r.Load()
			if bs := r.Breakers(); len(bs) > 1 {
				st.Breakers = bs[1:]
			}
		}
		if d, ok := g.controls.drains.Drained(name); ok {
			st.Drained, st.Drain = true, &d
		}
		info := infos[name]
		st.Tools, st.ToolsDroppedName, st.ToolsClashed = info.Tools, info.ToolsDroppedName, info.ToolsClashed
		st.ToolsQuarantined = quarantined[name]
		for _, p := range problems {
			if p.Upstream == name {
				st.Problems = append(st.Problems, p.Error())
			}
		}
		out = append(out, st)
	}
	return out
}

// CatalogTool is one routed tool of the merged catalog.
type CatalogTool struct {
	// Name is the exposed name hosts call; Original the upstream's name.
	Name     string `json:"name"`
	Upstream string `json:"upstream"`
	Original string `json:"original"`
	// Listed reports whether tools/list shows it (to the principal of the
	// view, when one is given): its upstream is available, no kill switch
	// hides it, and the principal holds its required scopes.
	Listed bool `json:"listed"`
	// Available is false while its upstream is down; Killed while a kill
	// switch stops it; Quarantined while its contract differs from its pin
	// under pinning enforce (Contract says how).
	Available   bool          `json:"available"`
	Killed      bool          `json:"killed"`
	Quarantined bool          `json:"quarantined"`
	Contract    *HeldContract `json:"contract,omitempty"`
	// RequiredScopes are the scopes a call needs; MissingScopes those the
	// view's principal lacks (only in a view as a principal).
	RequiredScopes []string `json:"required_scopes,omitempty"`
	MissingScopes  []string `json:"missing_scopes,omitempty"`
	// ReadOnly, Destructive and Idempotent are the upstream's hints.
	ReadOnly    bool `json:"read_only,omitempty"`
	Destructive bool `json:"destructive,omitempty"`
	Idempotent  bool `json:"idempotent,omitempty"`
}

// CatalogView is the merged catalog's tools, as every principal or as one
// principal sees it.
type CatalogView struct {
	Version uint64 `json:"version"`
	// As is the principal's granted scopes when the view is as one
	// principal would see it; nil for the whole catalog.
	As    *CatalogAs    `json:"as,omitempty"`
	Tools []CatalogTool `json:"tools"`
}

// CatalogAs describes the principal of a view.
type CatalogAs struct {
	Scopes []string `json:"scopes"`
}

// CatalogFor lists the merged catalog's tools, sorted by exposed name. With
// as nil it is the catalog every fully-scoped principal sees; with as, the
// one a principal granted exactly those scopes sees (tools/list filters by
// scopes only: the CEL rules decide per call, on the arguments).
func (g *Gateway) CatalogFor(as *CatalogAs) CatalogView {
	rt := g.rt.Load()
	snap := rt.snapshot()
	view := CatalogView{As: as, Tools: []CatalogTool{}}
	if snap == nil {
		return view
	}
	view.Version = snap.Version()
	held := rt.contracts.Load()
	for _, name := range snap.ToolNames() {
		route, _ := snap.Tool(name)
		_, killed := g.controls.switches.Check(name, route.Upstream)
		t := CatalogTool{
			Name: name, Upstream: route.Upstream, Original: route.Name, Available: route.Available, Killed: killed,
			RequiredScopes: slices.Clone(rt.scopes.Scopes(route.Upstream, route.Name)),
			ReadOnly:       route.Hints.ReadOnly, Destructive: route.Hints.Destructive, Idempotent: route.Hints.Idempotent,
		}
		if as != nil && rt.views != nil {
			t.MissingScopes = policy.Missing(as.Scopes, t.RequiredScopes)
		}
		if h, ok := held.lookup(name); ok {
			t.Contract, t.Quarantined = &h.HeldContract, h.Quarantined
		}
		t.Listed = route.Available && !killed && !t.Quarantined && len(t.MissingScopes) == 0
		view.Tools = append(view.Tools, t)
	}
	return view
}

// Drains lists the active drains.
func (g *Gateway) Drains() []policy.Switch { return g.controls.drains.List() }

// KillSwitches lists the active kill switches.
func (g *Gateway) KillSwitches() []policy.Switch { return g.controls.switches.List() }

// SwitchEvent is one change of a kill switch or drain in the history.
type SwitchEvent struct {
	Time time.Time `json:"time"`
	// Kind is "killswitch" or "drain".
	Kind string `json:"kind"`
	// Action is add, remove or expire for a kill switch; drain or undrain
	// for a drain.
	Action string `json:"action"`
	// Actor is who made the change; for an expiry, who set the switch.
	Actor  string        `json:"actor,omitempty"`
	Switch policy.Switch `json:"switch"`
}

// SwitchHistory returns the kill-switch and drain changes this replica made
// or saw expire, oldest first: at most historySize of them, since the
// process started. The audit stream is the durable, complete record.
func (g *Gateway) SwitchHistory() []SwitchEvent { return g.controls.history.list() }

// historySize bounds the switch history kept in memory.
const historySize = 500

// history is a bounded, in-memory log of switch changes.
type history struct {
	mu     sync.Mutex
	events []SwitchEvent
}

func (h *history) add(ev *SwitchEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.events) == historySize {
		h.events = slices.Delete(h.events, 0, 1)
	}
	h.events = append(h.events, *ev)
}

func (h *history) list() []SwitchEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}

// parseScopes splits a scope list given as one query value, separated by
// spaces or commas.
func parseScopes(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
}
