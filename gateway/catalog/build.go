package catalog

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Source is one upstream's raw catalog.
type Source struct {
	// Upstream is the upstream's name, unique among sources. It may not
	// contain '/', which would make the gateway URI form ambiguous.
	Upstream string
	// Prefix is the namespace prefix of its tools and prompts; "" exposes
	// bare names.
	Prefix string
	// Include and Exclude are path.Match globs on original tool names. A
	// tool is exposed when it matches some Include (or Include is empty) and
	// no Exclude. They do not apply to prompts or resources.
	Include, Exclude []string
	// Available is false while the upstream is down: its items are
	// withdrawn from the lists, but their routes remain (Route.Available is
	// false), so calls get "upstream unavailable" rather than "unknown
	// tool". An unavailable source with no items still claims its prefix
	// for Owner.
	Available bool
	// Tools, Resources, ResourceTemplates and Prompts hold one JSON object
	// per item, exactly as the upstream sent it.
	Tools, Resources, ResourceTemplates, Prompts []json.RawMessage
}

// items returns the source's raw items of kind k.
func (s *Source) items(k Kind) []json.RawMessage {
	switch k {
	case Tools:
		return s.Tools
	case Resources:
		return s.Resources
	case ResourceTemplates:
		return s.ResourceTemplates
	case Prompts:
		return s.Prompts
	default:
		return nil
	}
}

// Options shape the merged catalog.
type Options struct {
	// Separator joins prefix and original name, e.g. "__".
	Separator string
	// NamePattern must match every exposed tool and prompt name; an item
	// whose name does not is skipped. Nil means no check.
	NamePattern *regexp.Regexp
	// PageSize is the number of entries per list page; zero or less means
	// one page holds everything.
	PageSize int
	// Hidden, when set, withholds a tool from the lists while keeping its
	// route, so that a call to it can be refused with the reason (a kill
	// switch) rather than as an unknown tool.
	Hidden func(exposed, upstream string) bool
	// Select, when set, keeps only the tools it returns true for: a tool
	// it refuses is neither listed nor routed, so a call to it is an
	// unknown tool (a virtual endpoint's selector). It sees a tool once
	// its exposed name is settled, so names and clashes are those of the
	// same sources built without it: a refused tool still holds its name
	// against later ones. raw is the tool object as the upstream sent it.
	Select func(exposed, upstream, original string, raw json.RawMessage) bool
	// WithoutViews builds the lists for hosts that do not render MCP Apps
	// views (they did not declare the io.modelcontextprotocol/ui
	// extension): app-only tools (_meta.ui.visibility without "model") of
	// upstreams serving views are withheld from the tools list, and keep
	// their routes. Such a host's model must not see them ("Host MUST NOT
	// include tools in the agent's tool list when their visibility does
	// not include "model""), and it has no view to call them.
	WithoutViews bool
}

// Build merges the sources into a snapshot with the given version. It owns
// the naming scheme:
//
//   - A tool or prompt is exposed as ExposedName(prefix, sep, name); its
//     listed object is the upstream's bytes with only the value of the
//     top-level "name" replaced.
//   - An exposed name taken twice goes to the earlier source (or the
//     earlier item of one source), whether or not its upstream is
//     available, so names do not move when upstreams come and go.
//   - A resource URI, or a URI template, that one upstream exposes is kept;
//     one that several upstreams expose (available or not) is rewritten for
//     each of them to GatewayURI(upstream, uri) in the listed object, or,
//     for a ui:// resource, to UIGatewayURI(upstream, uri) (apps.go).
//   - A ui:// URI a tool names in its _meta (MCP Apps) is routed to the
//     tool's upstream even when that upstream does not list it, and the
//     tool's listed object names the URI as exposed.
//   - Items of unavailable sources are routed but not listed.
//
// Items that cannot be used are skipped and reported as Problems, in source
// order, then kind order (tools, resources, resource templates, prompts),
// then item order. Build never fails: a snapshot with fewer items is better
// than none.
func Build(version uint64, opts Options, sources []Source) (*Snapshot, []Problem) {
	b := &builder{
		opts: opts,
		snap: &Snapshot{
			version:   version,
			upstreams: make(map[string]int, len(sources)),
			infos:     make([]UpstreamInfo, 0, len(sources)),
		},
	}
	b.acceptSources(sources)
	b.reserve()
	b.readToolUI()
	// Resources first: a tool's listed object names its view's URI as
	// exposed.
	b.buildURIs(Resources)
	b.buildURIs(ResourceTemplates)
	b.buildNames(Tools, b.snap.tools)
	b.buildNames(Prompts, b.snap.prompts)
	b.buildViewTools()
	for k := range Kind(numKinds) {
		b.snap.lists[k].encode(k, version, opts.PageSize)
	}
	b.buildOwners()
	return b.snap, b.sortedProblems()
}

// builder holds the state of one Build.
type builder struct {
	opts     Options
	snap     *Snapshot
	sources  []source
	problems []problemAt
	// unselected holds the routes of the tools Options.Select refused:
	// they keep their names without being routed.
	unselected map[string]Route
	// uiExposed maps an upstream's ui:// URI to the URI hosts see, for
	// the URIs exposed under another one.
	uiExposed map[uriKey]string
	// appTools are the routed app-visible tools of upstreams serving MCP
	// Apps, for ViewTool.
	appTools []appTool
}

// uriKey is one upstream's URI.
type uriKey struct{ upstream, uri string }

// source is an accepted Source.
type source struct {
	*Source
	index   int  // in the Sources given to Build
	info    int  // in snap.infos
	noTools bool // a filter glob is malformed: expose no tools
	// ui is the MCP Apps metadata of each tool, by item index; nil when
	// no tool of the source names a ui:// view.
	ui []toolUI
}

// readToolUI reads the MCP Apps metadata of every tool the filters let
// through. A tool that cannot be read is left alone here: buildNames
// reports it.
func (b *builder) readToolUI() {
	for si := range b.sources {
		s := &b.sources[si]
		ui := make([]toolUI, len(s.Tools))
		views := false
		for idx, raw := range s.Tools {
			m, err := findMember(raw, "name")
			if err != nil || !s.allows(m.value) {
				continue
			}
			ui[idx] = parseToolUI(m.obj)
			views = views || len(ui[idx].refs) > 0
		}
		if views {
			s.ui = ui
		}
	}
}

// problemAt is a Problem with the position that orders it.
type problemAt struct { //nolint:errname // a sortable Problem, never returned as an error.
	source, kind, item int
	Problem
}

func (b *builder) problem(s *source, k Kind, item int, name, reason string, cause Cause) {
	p := problemAt{source: s.index, kind: int(k), item: item, Problem: Problem{Upstream: s.Upstream, Item: name, Reason: reason, Cause: cause}}
	if k.Valid() {
		p.Kind = k.noun()
	}
	b.problems = append(b.problems, p)
	info := &b.snap.infos[s.info]
	info.Problems++
	if k == Tools {
		switch cause {
		case CauseNamePattern:
			info.ToolsDroppedName++
		case CauseNameClash:
			info.ToolsClashed++
		case CauseDuplicate, CauseMalformed:
		}
	}
}

// sortedProblems orders problems by source, kind and item, which is the
// order in which the sources and their items were given.
func (b *builder) sortedProblems() []Problem {
	slices.SortStableFunc(b.problems, func(x, y problemAt) int {
		return cmp.Or(cmp.Compare(x.source, y.source), cmp.Compare(x.kind, y.kind), cmp.Compare(x.item, y.item))
	})
	out := make([]Problem, len(b.problems))
	for i := range b.problems {
		out[i] = b.problems[i].Problem
	}
	return out
}

// acceptSources registers every usable source and reports the others.
func (b *builder) acceptSources(sources []Source) {
	for i := range sources {
		src := &sources[i]
		var reason string
		switch _, dup := b.snap.upstreams[src.Upstream]; {
		case src.Upstream == "":
			reason = fmt.Sprintf("source %d has no upstream name; skipped", i)
		case strings.Contains(src.Upstream, "/"):
			reason = "upstream name contains '/', which the gateway URI form cannot carry; skipped"
		case dup:
			reason = fmt.Sprintf("source %d repeats the upstream name; the earlier source wins and this one is skipped", i)
		}
		if reason != "" {
			// Reported without touching infos: the source has none.
			b.problems = append(b.problems, problemAt{source: i, kind: -1, Problem: Problem{Upstream: src.Upstream, Reason: reason, Cause: CauseMalformed}})
			continue
		}
		b.snap.upstreams[src.Upstream] = len(b.snap.infos)
		b.snap.infos = append(b.snap.infos, UpstreamInfo{Name: src.Upstream, Prefix: src.Prefix, Available: src.Available})
		s := source{Source: src, index: i, info: len(b.snap.infos) - 1}
		b.sources = append(b.sources, s)
		b.checkGlobs(&b.sources[len(b.sources)-1])
	}
}

// reserve sizes the route maps and list buffers for the accepted items,
// so Build does not grow them item by item.
func (b *builder) reserve() {
	var count, size [numKinds]int
	for i := range b.sources {
		s := &b.sources[i]
		for k := range Kind(numKinds) {
			items := s.items(k)
			count[k] += len(items) //nolint:gosec // k < numKinds, the array's length.
			if !s.Available {
				continue
			}
			extra := len(s.Prefix) + len(b.opts.Separator) + 1 // the name grows; a comma
			if k == Resources || k == ResourceTemplates {
				extra = len(GatewayScheme) + len(s.Upstream) + 2
			}
			for _, raw := range items {
				size[k] += len(raw) + extra
			}
		}
	}
	b.snap.tools = make(map[string]Route, count[Tools])
	b.snap.toolRaw = make(map[string]json.RawMessage, count[Tools])
	b.snap.prompts = make(map[string]Route, count[Prompts])
	b.snap.resources = make(map[string]resourceRoute, count[Resources])
	b.snap.templates = make([]templateRoute, 0, count[ResourceTemplates])
	for k := range Kind(numKinds) {
		l := &b.snap.lists[k]
		l.items = make([]byte, 0, size[k])    //nolint:gosec // k < numKinds, the array's length.
		l.ends = make([]int, 0, count[k])     //nolint:gosec // as above.
		l.names = make([]string, 0, count[k]) //nolint:gosec // as above.
	}
}

// checkGlobs reports malformed include and exclude globs. Such a source
// exposes no tools: guessing what the operator meant to hide could leak.
func (b *builder) checkGlobs(s *source) {
	for _, set := range []struct {
		name  string
		globs []string
	}{{"include", s.Include}, {"exclude", s.Exclude}} {
		for _, g := range set.globs {
			if _, err := path.Match(g, ""); err != nil {
				b.problem(s, -1, -1, "", fmt.Sprintf("%s glob %q: %v; no tools are exposed from this upstream", set.name, g, err), CauseMalformed)
				s.noTools = true
			}
		}
	}
}

// allows reports whether the tool filter lets the original name through.
func (s *source) allows(name string) bool {
	if s.noTools {
		return false
	}
	if len(s.Include) > 0 && !matchAny(s.Include, name) {
		return false
	}
	return !matchAny(s.Exclude, name)
}

func matchAny(globs []string, name string) bool {
	for _, g := range globs {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// buildNames routes and lists the tools or prompts of every source.
func (b *builder) buildNames(k Kind, routes map[string]Route) {
	l := &b.snap.lists[k]
	for si := range b.sources {
		s := &b.sources[si]
		for idx, raw := range s.items(k) {
			m, ok := b.identify(s, k, idx, raw, "name")
			if !ok || (k == Tools && !s.allows(m.value)) {
				continue
			}
			original := m.value
			exposed := ExposedName(s.Prefix, b.opts.Separator, original)
			if !b.nameFree(s, k, idx, original, exposed, routes) {
				continue
			}
			route := Route{Upstream: s.Upstream, Name: original, Available: s.Available}
			if k == Tools && b.opts.Select != nil && !b.opts.Select(exposed, s.Upstream, original, raw) {
				if b.unselected == nil {
					b.unselected = make(map[string]Route)
				}
				b.unselected[exposed] = route
				continue
			}
			var edits []span
			if k == Tools {
				route.Hints = parseHints(raw)
				b.snap.toolRaw[exposed] = raw
				edits = b.toolEdits(s, idx, original, exposed)
			}
			routes[exposed] = route
			b.snap.infos[s.info].inc(k)
			if s.Available && (k != Tools || !b.withheld(s, idx, exposed)) {
				l.add(exposed, m, exposed != original, edits)
			}
		}
	}
}

// withheld reports whether tool idx of s, exposed as exposed, is left out
// of the tools list: hidden, or app-only for hosts without views.
func (b *builder) withheld(s *source, idx int, exposed string) bool {
	if b.opts.Hidden != nil && b.opts.Hidden(exposed, s.Upstream) {
		return true
	}
	return b.opts.WithoutViews && s.ui != nil && !s.ui[idx].model
}

// toolEdits returns the view URIs of tool idx of s to rewrite in its
// listed object, in object order, and notes an app-visible tool of an
// upstream serving MCP Apps for ViewTool.
func (b *builder) toolEdits(s *source, idx int, original, exposed string) []span {
	if s.ui == nil {
		return nil
	}
	tu := &s.ui[idx]
	if !tu.model {
		b.snap.appOnly++
	}
	if tu.app {
		b.appTools = append(b.appTools, appTool{original: original, exposed: exposed})
	}
	var edits []span
	for _, r := range tu.refs {
		if uri, ok := b.uiExposed[uriKey{s.Upstream, r.value}]; ok {
			edits = append(edits, span{start: r.start, end: r.end, value: uri})
		}
	}
	slices.SortFunc(edits, func(x, y span) int { return cmp.Compare(x.start, y.start) })
	return edits
}

// identify finds the identifying member key of item idx of s. A missing,
// malformed or empty one is a problem, and the item is skipped.
func (b *builder) identify(s *source, k Kind, idx int, raw []byte, key string) (member, bool) {
	m, err := findMember(raw, key)
	if err != nil {
		b.problem(s, k, idx, "", fmt.Sprintf("item %d: %v", idx, memberError(key, err)), CauseMalformed)
		return member{}, false
	}
	if m.value == "" {
		b.problem(s, k, idx, "", fmt.Sprintf("item %d: %q is empty", idx, key), CauseMalformed)
		return member{}, false
	}
	return m, true
}

// nameFree reports whether the tool or prompt original of s may be exposed
// as exposed: the name matches the configured pattern and no earlier item
// took it. Otherwise it records why as a problem.
func (b *builder) nameFree(s *source, k Kind, idx int, original, exposed string, routes map[string]Route) bool {
	if p := b.opts.NamePattern; p != nil && !p.MatchString(exposed) {
		b.problem(s, k, idx, original, fmt.Sprintf("exposed name %q does not match %s", exposed, p), CauseNamePattern)
		return false
	}
	prev, taken := routes[exposed]
	if !taken && k == Tools {
		prev, taken = b.unselected[exposed]
	}
	switch {
	case !taken:
		return true
	case prev.Upstream == s.Upstream:
		b.problem(s, k, idx, original, fmt.Sprintf("duplicate %s name; the first one wins", k.noun()), CauseDuplicate)
	default:
		b.problem(s, k, idx, original, fmt.Sprintf(
			"exposed name %q collides with %s %q from upstream %q; upstream %q comes first and wins, upstream %q's is skipped",
			exposed, k.noun(), prev.Name, prev.Upstream, prev.Upstream, s.Upstream), CauseNameClash)
	}
	return false
}

// uriEntry is one accepted resource or template before naming.
type uriEntry struct {
	s   *source
	idx int
	m   member
	tm  *uriMatcher // templates only
	// uri is the original URI of a view a tool names and its upstream
	// does not list (m is then zero): routed, not listed.
	uri string
}

// original is the entry's URI as its upstream knows it.
func (e *uriEntry) original() string {
	if e.uri != "" {
		return e.uri
	}
	return e.m.value
}

// buildURIs routes and lists the resources or resource templates of every
// source, rewriting URIs that several upstreams expose.
func (b *builder) buildURIs(k Kind) {
	entries, owners := b.collectURIs(k)
	b.routeURIs(k, entries, owners)
	if k == Resources {
		b.markAmbiguous(entries, owners)
	}
}

// collectURIs gathers the acceptable resources or templates of every
// source, in source order, and counts the upstreams exposing each original
// URI.
func (b *builder) collectURIs(k Kind) (entries []uriEntry, owners map[string]int) {
	key := k.member()
	owners = make(map[string]int) // original URI → number of upstreams
	for si := range b.sources {
		s := &b.sources[si]
		raws := s.items(k)
		if len(raws) == 0 {
			continue
		}
		seen := make(map[string]bool, len(raws))
		for idx, raw := range raws {
			m, ok := b.identify(s, k, idx, raw, key)
			if !ok {
				continue
			}
			if seen[m.value] {
				b.problem(s, k, idx, m.value, fmt.Sprintf("duplicate %s; the first one wins", key), CauseDuplicate)
				continue
			}
			e := uriEntry{s: s, idx: idx, m: m}
			if k == ResourceTemplates {
				var err error
				if e.tm, err = compileTemplate(m.value); err != nil {
					b.problem(s, k, idx, m.value, fmt.Sprintf("not an RFC 6570 URI template: %v", err), CauseMalformed)
					continue
				}
			}
			seen[m.value] = true
			owners[m.value]++
			entries = append(entries, e)
		}
		if k == Resources {
			entries = b.unlistedViews(s, seen, owners, entries)
		}
	}
	return entries, owners
}

// unlistedViews adds the ui:// URIs the tools of s name that s does not
// list: "Resource MUST exist on the server", and "Servers MAY omit UI-only
// resources from resources/list" (MCP Apps, "Resource Discovery").
func (b *builder) unlistedViews(s *source, seen map[string]bool, owners map[string]int, entries []uriEntry) []uriEntry {
	for idx := range s.ui {
		for _, r := range s.ui[idx].refs {
			if seen[r.value] {
				continue
			}
			seen[r.value] = true
			owners[r.value]++
			entries = append(entries, uriEntry{s: s, idx: -1, uri: r.value})
		}
	}
	return entries
}

// routeURIs routes and lists entries, exposing a URI that several upstreams
// share in the gateway form.
func (b *builder) routeURIs(k Kind, entries []uriEntry, owners map[string]int) {
	key := k.member()
	l := &b.snap.lists[k]
	exposedSeen := make(map[string]string, len(entries)) // exposed → upstream
	for i := range entries {
		e := &entries[i]
		original := e.original()
		shared := owners[original] > 1
		// Templates follow the resources' rule: a ui:// template stays one,
		// and a URI a host expands from its UI gateway form is routed as
		// that form (Snapshot.Resource).
		exposed := exposeURI(e.s.Upstream, original, shared)
		if prev, taken := exposedSeen[exposed]; taken {
			// Only possible when an upstream's own URI is in the gateway form.
			b.problem(e.s, k, e.idx, original, fmt.Sprintf(
				"exposed %s %q collides with one from upstream %q; upstream %q comes first and wins, upstream %q's is skipped",
				key, exposed, prev, prev, e.s.Upstream), CauseNameClash)
			continue
		}
		exposedSeen[exposed] = e.s.Upstream
		if k == Resources && exposed != original && isUIURI(original) {
			if b.uiExposed == nil {
				b.uiExposed = make(map[uriKey]string)
			}
			b.uiExposed[uriKey{e.s.Upstream, original}] = exposed
		}
		route := Route{Upstream: e.s.Upstream, Name: original, Available: e.s.Available}
		if k == Resources {
			b.snap.resources[exposed] = resourceRoute{Route: route}
		} else {
			b.snap.templates = append(b.snap.templates, templateRoute{
				m: e.tm, upstream: route.Upstream, available: route.Available, ambiguous: exposed != original,
			})
		}
		if e.uri != "" {
			continue // routed, not listed, not counted
		}
		b.snap.infos[e.s.info].inc(k)
		if e.s.Available {
			l.add(exposed, e.m, exposed != original, nil)
		}
	}
}

// markAmbiguous marks the original URI of each resource that several
// upstreams share as ambiguous, unless an entry is exposed as it: Resource
// does not route it, so hosts must use the gateway form.
func (b *builder) markAmbiguous(entries []uriEntry, owners map[string]int) {
	for i := range entries {
		original := entries[i].original()
		if owners[original] <= 1 {
			continue
		}
		if _, taken := b.snap.resources[original]; !taken {
			b.snap.resources[original] = resourceRoute{ambiguous: true}
		}
	}
}

// memberError words a findMember error for a problem.
func memberError(key string, err error) error {
	switch {
	case errors.Is(err, errMissingMember), errors.Is(err, errNotString):
		return fmt.Errorf("%q %w", key, err)
	default:
		return err
	}
}

// buildOwners orders the prefixes of all sources, longest first, so Owner
// finds the most specific namespace.
func (b *builder) buildOwners() {
	for _, s := range b.sources {
		if s.Prefix == "" {
			continue
		}
		b.snap.owners = append(b.snap.owners, owner{
			prefix:    s.Prefix + b.opts.Separator,
			upstream:  s.Upstream,
			available: s.Available,
		})
	}
	slices.SortStableFunc(b.snap.owners, func(x, y owner) int {
		return cmp.Compare(len(y.prefix), len(x.prefix))
	})
}

// add lists one entry: the item's bytes, with its identifying member
// replaced by exposed when rename is set, and the values edits name (in
// object order, apart from the identifying member) replaced by theirs.
func (l *list) add(exposed string, m member, rename bool, edits []span) {
	if len(l.ends) > 0 {
		l.items = append(l.items, ',')
	}
	switch {
	case len(edits) > 0:
		if rename {
			edits = insertSpan(edits, span{start: m.start, end: m.end, value: exposed})
		}
		last := 0
		for _, e := range edits {
			l.items = append(l.items, m.obj[last:e.start]...)
			l.items = rawjson.AppendString(l.items, e.value)
			last = e.end
		}
		l.items = append(l.items, m.obj[last:]...)
	case rename:
		l.items = m.appendReplaced(l.items, exposed)
	default:
		l.items = append(l.items, m.obj...)
	}
	l.ends = append(l.ends, len(l.items))
	l.names = append(l.names, exposed)
}

// insertSpan returns edits, ordered by start, with e in its place.
func insertSpan(edits []span, e span) []span {
	i, _ := slices.BinarySearchFunc(edits, e.start, func(x span, start int) int { return cmp.Compare(x.start, start) })
	return slices.Insert(slices.Clip(edits), i, e)
}

// encode precomputes the encoded result of every page.
func (l *list) encode(k Kind, version uint64, pageSize int) {
	n := len(l.ends)
	if n == 0 {
		l.pageSize = 1
		l.pages = [][]byte{k.emptyResult()}
		return
	}
	l.pageSize = pageSize
	if pageSize <= 0 || pageSize > n {
		l.pageSize = n
	}
	numPages := (n + l.pageSize - 1) / l.pageSize
	overhead := len(`{"":[]}`) + len(k.String()) + len(`,"nextCursor":""`) + cursorChars
	buf := make([]byte, 0, len(l.items)+numPages*overhead)
	l.pages = make([][]byte, numPages)
	for p := range numPages {
		start := len(buf)
		buf = l.appendPage(buf, k, version, p*l.pageSize)
		l.pages[p] = buf[start:len(buf):len(buf)]
	}
}
