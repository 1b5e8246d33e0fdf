package gateway

import (
	"context"
	"slices"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/policy"
)

// viewCacheSize bounds the filtered catalog snapshots kept: one per
// distinct set of relevant scopes per catalog version.
const viewCacheSize = 256

// views gives each principal the catalog it may call (issue: "tools/list
// shows each principal only what it may call"). A tool whose required
// scopes the principal lacks is left out of its lists; its route stays, so
// a call to it still gets the 403 insufficient_scope challenge a host
// steps up from (MCP authorization, "Runtime Insufficient Scope Errors").
//
// Lists stay pre-encoded: a filtered snapshot is built with catalog.Build
// once per catalog version and distinct set of relevant scopes (the scopes
// some tool requires, the only ones that change what is visible), and
// cached in a bounded LRU. A list request pays a handful of slice lookups
// to form the key. Cursors carry the catalog version and an offset into the
// principal's own list, so they stay valid for the same principal.
//
// Resources, resource templates and prompts are not filtered: the call
// path requires scopes of tools/call only, so every principal may read
// and get them.
//
// With policy rules (policy.rules), a tool the rules refuse the principal
// whatever its arguments is left out too. What the rules see of a
// principal is its token, so a view is then cached per token as well.
type views struct {
	// relevant are the scopes any tool requires, sorted; empty when no
	// tool requires one.
	relevant []string
	scopes   *policy.RequiredScopes
	rules    *ruleSet // nil without rules
	endpoint string   // the MCP path, what the rules see as endpoint
	cache    *lru.Cache[viewKey, *catalog.Snapshot]
}

// viewKey names one filtered snapshot.
type viewKey struct {
	version  uint64
	endpoint string // the virtual endpoint's path; "" for the MCP endpoint
	scopes   string // the principal's relevant scopes, sorted, space-separated
	token    string // the token's hash, with rules; "" otherwise
	plain    bool   // for a host without MCP Apps views (apps.go)
}

// published is a snapshot with the sources it was built from, so that a
// filtered view of the same version can be built later.
type published struct {
	snap    *catalog.Snapshot
	sources []catalog.Source
	opts    catalog.Options
	// plain is snap for hosts that render no MCP Apps views (app-only
	// tools withheld), built with it at catalog load; nil when snap has no
	// app-only tool, and snap serves every host.
	plain *catalog.Snapshot
}

// newPublished publishes snap, built from sources with opts.
func newPublished(snap *catalog.Snapshot, sources []catalog.Source, opts catalog.Options) *published {
	pub := &published{snap: snap, sources: sources, opts: opts}
	if snap.AppOnly() > 0 {
		o := opts
		o.WithoutViews = true
		pub.plain, _ = catalog.Build(snap.Version(), o, sources)
	}
	return pub
}

// newViews collects the relevant scopes of the upstreams' scope tables.
// It returns nil when lists need no filtering: no rules, and an
// unauthenticated gateway or no tool requires a scope.
func newViews(cfg *configs.Config, scopes *policy.RequiredScopes, rules *ruleSet) *views {
	if cfg.Auth == nil && rules == nil {
		return nil
	}
	var relevant []string
	for i := range cfg.Upstreams {
		if cfg.Auth == nil {
			break
		}
		s := &cfg.Upstreams[i].Scopes
		relevant = append(relevant, s.Default...)
		for _, r := range s.Tools {
			relevant = append(relevant, r.Scopes...)
		}
	}
	slices.Sort(relevant)
	relevant = slices.Compact(relevant)
	if len(relevant) == 0 && rules == nil {
		return nil
	}
	cache, err := lru.New[viewKey, *catalog.Snapshot](viewCacheSize)
	if err != nil {
		// Only a non-positive size fails.
		panic(err)
	}
	return &views{relevant: relevant, scopes: scopes, rules: rules, endpoint: cfg.Server.MCPPath, cache: cache}
}

// visible returns the snapshot whose lists the caller of ctx sees at ep
// (nil: the MCP endpoint): the endpoint's snapshot itself on an
// unauthenticated gateway or for a principal holding every relevant
// scope, a cached filtered view of it otherwise.
//
// A host that does not render MCP Apps views (withViews false) gets the
// variant without app-only tools (apps.go).
func (g *Gateway) visible(ctx context.Context, rt *runtime, ep *mcpEndpoint, withViews bool) *catalog.Snapshot {
	snap := rt.snapshotAt(ep)
	v := rt.views
	if v == nil {
		return plainFor(rt, ep, snap, withViews)
	}
	p, ok := authn.PrincipalFrom(ctx)
	if !ok && v.rules == nil {
		return plainFor(rt, ep, snap, withViews)
	}
	if p == nil {
		p = &authn.Principal{}
	}
	var b strings.Builder
	all := true
	for _, s := range v.relevant {
		if !slices.Contains(p.Scopes, s) {
			all = false
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s)
	}
	if all && v.rules == nil {
		return plainFor(rt, ep, snap, withViews)
	}
	pub, endpoint := rt.pub.Load(), v.endpoint
	if ep != nil {
		pub, endpoint = ep.pub.Load(), ep.path
	}
	if pub == nil {
		return snap
	}
	plain := !withViews && pub.plain != nil
	key := viewKey{version: pub.snap.Version(), scopes: b.String(), plain: plain}
	if ep != nil {
		key.endpoint = ep.path
	}
	var who *authn.Principal
	if v.rules != nil {
		if ok {
			who = p
		}
		key.token = p.TokenHash
		if ok && p.TokenHash == "" {
			// A principal without a token hash (only tests make one)
			// cannot share a view.
			return v.build(pub, strings.Fields(key.scopes), who, endpoint, plain)
		}
	}
	if view, ok := v.cache.Get(key); ok {
		return view
	}
	view := v.build(pub, strings.Fields(key.scopes), who, endpoint, plain)
	v.cache.Add(key, view)
	return view
}

// build filters pub for a principal holding have: its tools are hidden
// when the shared catalog hides them (killed, quarantined), when have lacks a scope they
// require, or when the rules refuse p (nil: anonymous) every call to
// them at endpoint. The view keeps pub's version; Build's problems were
// reported when pub was built.
func (v *views) build(pub *published, have []string, p *authn.Principal, endpoint string, plain bool) *catalog.Snapshot {
	opts := pub.opts
	opts.WithoutViews = plain
	shared := pub.opts.Hidden
	opts.Hidden = func(exposed, upstream string) bool {
		if shared != nil && shared(exposed, upstream) {
			return true
		}
		route, ok := pub.snap.Tool(exposed)
		if !ok {
			return false
		}
		if len(policy.Missing(have, v.scopes.Scopes(upstream, route.Name))) > 0 {
			return true
		}
		return v.rules != nil && !v.rules.rules.Visible(ruleInput(pub.snap, p, endpoint, exposed, route))
	}
	view, _ := catalog.Build(pub.snap.Version(), opts, pub.sources)
	return view
}
