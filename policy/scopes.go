package policy

import (
	"fmt"
	"path"
	"slices"

	"github.com/mcpgw/mcpgw/configs"
)

// RequiredScopes answers which OAuth scopes a tool needs, from each
// upstream's configs.ToolScopes table (first matching rule on the original
// tool name, else the table's default; see configs.ToolScopes.For). The
// answers for the tools known at construction are precomputed; any other
// tool is matched against the rules on each call, without allocating.
type RequiredScopes struct {
	tables map[string]*scopeTable
}

type scopeTable struct {
	rules configs.ToolScopes
	known map[string][]string
}

// NewRequiredScopes compiles tables (upstream name → its table) and
// precomputes the answers for catalog (upstream name → original tool
// names; nil is fine). It fails with ErrInvalidConfig on an invalid glob.
// The tables are copied.
func NewRequiredScopes(tables map[string]configs.ToolScopes, catalog map[string][]string) (*RequiredScopes, error) {
	r := &RequiredScopes{tables: make(map[string]*scopeTable, len(tables))}
	for upstream, t := range tables {
		st := &scopeTable{rules: configs.ToolScopes{Default: slices.Clone(t.Default)}}
		for i, rule := range t.Tools {
			if _, err := path.Match(rule.Match, ""); err != nil || rule.Match == "" {
				return nil, fmt.Errorf("%w: upstream %s: scope rule %d: %q is not a valid glob", ErrInvalidConfig, upstream, i, rule.Match)
			}
			st.rules.Tools = append(st.rules.Tools, configs.ToolScopeRule{Match: rule.Match, Scopes: slices.Clone(rule.Scopes)})
		}
		tools := catalog[upstream]
		st.known = make(map[string][]string, len(tools))
		for _, tool := range tools {
			st.known[tool] = st.rules.For(tool)
		}
		r.tables[upstream] = st
	}
	return r, nil
}

// Scopes returns the scopes the tool (by its original name) of upstream
// requires; nil when none. The slice is shared: do not modify it.
func (r *RequiredScopes) Scopes(upstream, tool string) []string {
	t := r.tables[upstream]
	if t == nil {
		return nil
	}
	if s, ok := t.known[tool]; ok {
		return s
	}
	return t.rules.For(tool)
}

// Missing returns the scopes of need that have lacks, in need's order; nil
// when have covers need. It allocates only when something is missing.
func Missing(have, need []string) []string {
	var out []string
	for _, s := range need {
		if !slices.Contains(have, s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
