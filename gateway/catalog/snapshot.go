package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Route says where an exposed name goes.
type Route struct {
	// Upstream is the upstream's name.
	Upstream string
	// Name is the original tool or prompt name, or the original resource
	// URI, as the upstream knows it.
	Name string
	// Available is false while the upstream is down: the route exists so
	// the gateway can answer "upstream unavailable", not "unknown tool".
	Available bool
	// Hints are a tool's behaviour annotations, parsed once at Build; zero
	// for prompts and resources.
	Hints Hints
}

// Hints are the tool annotations the call path acts on (MCP
// server/tools, ToolAnnotations). Each is true only when the upstream set
// it to true: the hints are the upstream's claims, and the gateway relies on
// them only to be more careful (retrying a read, refusing a destructive
// call it cannot audit).
type Hints struct {
	// ReadOnly: readOnlyHint, the tool does not modify its environment.
	ReadOnly bool
	// Destructive: destructiveHint, the tool may perform destructive
	// updates.
	Destructive bool
	// Idempotent: idempotentHint, calling it again with the same arguments
	// has no additional effect.
	Idempotent bool
}

// Retryable reports whether a call may be sent again: a read-only tool is
// idempotent by nature (the spec gives idempotentHint meaning only for
// tools that are not read-only).
func (h Hints) Retryable() bool { return h.ReadOnly || h.Idempotent }

// parseHints reads the annotations of one raw tool object.
func parseHints(raw json.RawMessage) Hints {
	var w struct {
		Annotations *struct {
			ReadOnlyHint    *bool `json:"readOnlyHint"`
			DestructiveHint *bool `json:"destructiveHint"`
			IdempotentHint  *bool `json:"idempotentHint"`
		} `json:"annotations"`
	}
	if json.Unmarshal(raw, &w) != nil || w.Annotations == nil {
		return Hints{}
	}
	a := w.Annotations
	is := func(b *bool) bool { return b != nil && *b }
	return Hints{ReadOnly: is(a.ReadOnlyHint), Destructive: is(a.DestructiveHint), Idempotent: is(a.IdempotentHint)}
}

// UpstreamInfo summarizes one upstream's part of a snapshot, for /readyz
// and the catalog CLI.
type UpstreamInfo struct {
	// Name is the upstream's name.
	Name string
	// Prefix is its namespace prefix; "" exposes bare names.
	Prefix string
	// Available reports whether its items are listed.
	Available bool
	// Tools, Resources, ResourceTemplates and Prompts count the items the
	// snapshot routes to this upstream, listed or not.
	Tools, Resources, ResourceTemplates, Prompts int
	// Problems counts the problems Build reported for this upstream.
	Problems int
	// ToolsDroppedName counts its tools left out because the exposed name
	// does not match the name pattern (most often: too long once
	// prefixed); ToolsClashed those left out because an earlier upstream
	// took the exposed name. Both are among Problems.
	ToolsDroppedName, ToolsClashed int
}

// Count returns the number of routed items of kind k.
func (u *UpstreamInfo) Count(k Kind) int {
	switch k {
	case Tools:
		return u.Tools
	case Resources:
		return u.Resources
	case ResourceTemplates:
		return u.ResourceTemplates
	case Prompts:
		return u.Prompts
	default:
		return 0
	}
}

func (u *UpstreamInfo) inc(k Kind) {
	switch k {
	case Tools:
		u.Tools++
	case Resources:
		u.Resources++
	case ResourceTemplates:
		u.ResourceTemplates++
	case Prompts:
		u.Prompts++
	}
}

// Snapshot is an immutable, versioned view of the merged catalog: routes
// for tools, prompts and resources, and the pre-encoded pages of every list.
// Build makes one; it is safe for concurrent use and every lookup is a map
// lookup or a slice index that does not allocate.
//
// The zero Snapshot is an empty catalog of version 0.
type Snapshot struct {
	version   uint64
	tools     map[string]Route
	toolRaw   map[string]json.RawMessage // exposed name → the upstream's object
	prompts   map[string]Route
	resources map[string]resourceRoute
	templates []templateRoute     // in source order
	upstreams map[string]int      // upstream name → index in infos
	owners    []owner             // longest prefix first
	viewTools map[string][]string // original name → exposed names (ViewTool)
	appOnly   int                 // routed app-only tools of upstreams serving views
	lists     [numKinds]list
	infos     []UpstreamInfo // in source order
}

// resourceRoute is a route by exact URI. An ambiguous one is an original
// URI that several upstreams expose: hosts must use the gateway form.
type resourceRoute struct {
	Route
	ambiguous bool
}

// templateRoute routes the concrete URIs that match one URI template.
type templateRoute struct {
	m         *uriMatcher
	upstream  string
	available bool
	// ambiguous: hosts know the template only in another form (several
	// upstreams have it, or it is an upstream's own template in the UI
	// gateway form, nested), which routes by that form; a URI in the
	// original form is not routed.
	ambiguous bool
}

// owner claims the exposed names under one upstream's prefix.
type owner struct {
	prefix    string // prefix + separator
	upstream  string
	available bool
}

// list is one kind's listed entries and their encoded pages.
type list struct {
	names    []string // exposed names or URIs, in list order
	items    []byte   // encoded items, separated by commas
	ends     []int    // ends[i] is the end of item i in items
	pageSize int      // entries per page, at least 1
	pages    [][]byte // encoded result of each page
}

// Version returns the version given to Build.
func (s *Snapshot) Version() uint64 { return s.version }

// Tool returns the route of an exposed tool name.
func (s *Snapshot) Tool(exposed string) (Route, bool) {
	r, ok := s.tools[exposed]
	return r, ok
}

// ToolObject returns an exposed tool's object exactly as its upstream
// sent it (original name, description, schemas, annotations): the
// tool's contract, for the policies that read it. Read-only.
func (s *Snapshot) ToolObject(exposed string) (json.RawMessage, bool) {
	raw, ok := s.toolRaw[exposed]
	return raw, ok
}

// Prompt returns the route of an exposed prompt name.
func (s *Snapshot) Prompt(exposed string) (Route, bool) {
	r, ok := s.prompts[exposed]
	return r, ok
}

// Resource returns the route of a resource URI a host asked for. It tries,
// in order:
//
//  1. an exact exposed resource URI;
//  2. the gateway form mcpgw://<upstream>/<original>, or the UI gateway
//     form ui://mcpgw.<upstream>/<rest> of a ui:// URI, for any upstream in
//     the snapshot, whether or not the original collides or is listed;
//  3. the resource templates in source order; the first that matches wins.
//
// Route.Name is the URI to send upstream. An original URI (or template) that
// several upstreams expose is ambiguous and not routed: hosts see, and must
// use, the gateway form.
func (s *Snapshot) Resource(uri string) (Route, bool) {
	if r, ok := s.resources[uri]; ok {
		return r.Route, !r.ambiguous
	}
	if up, original, ok := ParseGatewayURI(uri); ok {
		if i, ok := s.upstreams[up]; ok {
			info := &s.infos[i]
			return Route{Upstream: info.Name, Name: original, Available: info.Available}, true
		}
	}
	if up, original, ok := ParseUIGatewayURI(uri); ok {
		if i, ok := s.upstreams[up]; ok {
			info := &s.infos[i]
			return Route{Upstream: info.Name, Name: original, Available: info.Available}, true
		}
	}
	for i := range s.templates {
		t := &s.templates[i]
		if t.m.match(uri) {
			if t.ambiguous {
				return Route{}, false
			}
			return Route{Upstream: t.upstream, Name: uri, Available: t.available}, true
		}
	}
	return Route{}, false
}

// ExposedURI returns the URI hosts know for an upstream's resource URI: the
// original when Resource routes it back to that upstream, otherwise the
// gateway form (the UI gateway form for a ui:// URI). The gateway uses it to rewrite URIs in resources/read
// results and resource notifications.
func (s *Snapshot) ExposedURI(upstream, uri string) string {
	if r, ok := s.Resource(uri); ok && r.Upstream == upstream && r.Name == uri {
		return uri
	}
	if exposed, ok := UIGatewayURI(upstream, uri); ok {
		return exposed
	}
	return GatewayURI(upstream, uri)
}

// Owner returns the upstream whose namespace an exposed name is in, when
// that upstream is unavailable: the name starts with its prefix and
// separator. The gateway asks it for names Tool and Prompt do not know, to
// answer "upstream orders unavailable" instead of "unknown tool" for an
// upstream that was down when its catalog would have been listed. Names
// under an available upstream's prefix, or under no prefix, are not owned.
// The longest matching prefix decides.
func (s *Snapshot) Owner(exposed string) (upstream string, ok bool) {
	for i := range s.owners {
		o := &s.owners[i]
		if strings.HasPrefix(exposed, o.prefix) {
			if o.available {
				return "", false
			}
			return o.upstream, true
		}
	}
	return "", false
}

// Page returns the encoded JSON result of one page of a list call, such as
// {"tools":[...],"nextCursor":"..."}. The empty cursor is the first page.
// The bytes are shared: callers must not modify them.
//
// A cursor is opaque: the list, the snapshot version and the offset of the
// page's first entry, with a check byte. A cursor this snapshot issued is a
// slice lookup. A cursor from another snapshot version (the catalog changed
// between two pages, or another replica answered) is served best effort at
// its offset: entries may have moved, so a host may miss or repeat some,
// and an offset past the end yields an empty last page. A cursor that does
// not decode, names another list, or is not a page this snapshot issued is
// ErrInvalidCursor.
func (s *Snapshot) Page(k Kind, cursor string) ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("%w: %d", ErrUnknownKind, int(k))
	}
	l := &s.lists[k]
	if cursor == "" {
		if len(l.pages) == 0 {
			return k.emptyResult(), nil
		}
		return l.pages[0], nil
	}
	ck, version, offset, ok := decodeCursor(cursor)
	if !ok || ck != k || len(l.pages) == 0 {
		return nil, ErrInvalidCursor
	}
	n := len(l.names)
	aligned := offset%l.pageSize == 0
	if version == s.version {
		if offset == 0 || offset >= n || !aligned {
			return nil, ErrInvalidCursor
		}
		return l.pages[offset/l.pageSize], nil
	}
	switch {
	case offset >= n:
		return k.emptyResult(), nil
	case aligned:
		return l.pages[offset/l.pageSize], nil
	default:
		return l.appendPage(nil, k, s.version, offset), nil
	}
}

// Len returns the number of listed entries of kind k.
func (s *Snapshot) Len(k Kind) int {
	if !k.Valid() {
		return 0
	}
	return len(s.lists[k].names)
}

// Names returns the listed tool or prompt names, or resource URIs, or
// resource URI templates, as hosts see them and in list order.
func (s *Snapshot) Names(k Kind) []string {
	if !k.Valid() {
		return nil
	}
	return slices.Clone(s.lists[k].names)
}

// ToolNames returns every routed exposed tool name, listed or not
// (withdrawn, hidden), sorted. It allocates; it is for operators' tools.
func (s *Snapshot) ToolNames() []string {
	out := make([]string, 0, len(s.tools))
	for name := range s.tools {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Upstreams returns a summary per upstream, in source order.
func (s *Snapshot) Upstreams() []UpstreamInfo {
	return slices.Clone(s.infos)
}

// appendPage appends the encoded result of the page starting at entry from.
func (l *list) appendPage(dst []byte, k Kind, version uint64, from int) []byte {
	to := min(from+l.pageSize, len(l.ends))
	start := 0
	if from > 0 {
		start = l.ends[from-1] + 1 // skip the comma
	}
	dst = append(dst, `{"`...)
	dst = append(dst, k.String()...)
	dst = append(dst, `":[`...)
	dst = append(dst, l.items[start:l.ends[to-1]]...)
	dst = append(dst, ']')
	if to < len(l.ends) {
		dst = append(dst, `,"nextCursor":"`...)
		dst = append(dst, encodeCursor(k, version, to)...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// Consistent checks that the snapshot agrees with itself: following the
// cursors of every list yields each listed entry once, in order, as a JSON
// object whose identifying member is the listed name, and every listed
// entry routes to an available upstream. It is the check before a snapshot
// is published; an error wraps ErrInconsistent and means a bug here.
func (s *Snapshot) Consistent() error {
	for k := range Kind(numKinds) {
		if err := s.consistentList(k); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrInconsistent, k, err)
		}
	}
	return nil
}

func (s *Snapshot) consistentList(k Kind) error {
	names := s.lists[k].names
	seen := 0
	cursor := ""
	for page := 0; ; page++ {
		if page > len(names)+1 {
			return fmt.Errorf("cursors do not end")
		}
		b, err := s.Page(k, cursor)
		if err != nil {
			return fmt.Errorf("page %d: %w", page, err)
		}
		var result map[string]json.RawMessage
		if err := json.Unmarshal(b, &result); err != nil {
			return fmt.Errorf("page %d: %w", page, err)
		}
		var items []json.RawMessage
		if err := json.Unmarshal(result[k.String()], &items); err != nil {
			return fmt.Errorf("page %d: %w", page, err)
		}
		for _, item := range items {
			if seen >= len(names) {
				return fmt.Errorf("page %d: more entries than names", page)
			}
			m, err := findMember(item, k.member())
			if err != nil {
				return fmt.Errorf("entry %d: %w", seen, err)
			}
			if m.value != names[seen] {
				return fmt.Errorf("entry %d: listed as %q, encoded as %q", seen, names[seen], m.value)
			}
			if err := s.consistentRoute(k, m.value); err != nil {
				return fmt.Errorf("entry %d (%q): %w", seen, m.value, err)
			}
			seen++
		}
		next, ok := result["nextCursor"]
		if !ok {
			break
		}
		if err := json.Unmarshal(next, &cursor); err != nil {
			return fmt.Errorf("page %d: nextCursor: %w", page, err)
		}
	}
	if seen != len(names) {
		return fmt.Errorf("pages hold %d entries, names %d", seen, len(names))
	}
	return nil
}

func (s *Snapshot) consistentRoute(k Kind, name string) error {
	var r Route
	var ok bool
	switch k {
	case Tools:
		r, ok = s.Tool(name)
	case Prompts:
		r, ok = s.Prompt(name)
	case Resources:
		r, ok = s.Resource(name)
	case ResourceTemplates:
		return nil // a template is a pattern, not a route
	}
	switch {
	case !ok:
		return fmt.Errorf("listed but not routed")
	case !r.Available:
		return fmt.Errorf("listed but routed to unavailable upstream %q", r.Upstream)
	}
	return nil
}
