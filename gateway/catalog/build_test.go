package catalog

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExposedName(t *testing.T) {
	tests := []struct {
		name                  string
		prefix, sep, original string
		want                  string
	}{
		{"prefixed", "orders", "__", "cancel_order", "orders__cancel_order"},
		{"bare", "", "__", "cancel_order", "cancel_order"},
		{"other separator", "orders", ".", "cancel", "orders.cancel"},
		{"empty separator", "orders", "", "cancel", "orderscancel"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, ExposedName(tt.prefix, tt.sep, tt.original))
		})
	}
}

func TestBuildNaming(t *testing.T) {
	tests := []struct {
		name        string
		opts        Options
		sources     []Source
		wantTools   []string
		wantPrompts []string
		wantRoutes  map[string]Route
	}{
		{
			name: "prefixed",
			opts: defaultOpts,
			sources: []Source{{
				Upstream: "orders", Prefix: "orders", Available: true,
				Tools: tools("cancel_order", "get_order"), Prompts: []json.RawMessage{prompt("refund")},
			}},
			wantTools:   []string{"orders__cancel_order", "orders__get_order"},
			wantPrompts: []string{"orders__refund"},
			wantRoutes: map[string]Route{
				"orders__cancel_order": {Upstream: "orders", Name: "cancel_order", Available: true},
				"orders__get_order":    {Upstream: "orders", Name: "get_order", Available: true},
			},
		},
		{
			name: "bare and prefixed in source order",
			opts: defaultOpts,
			sources: []Source{
				{Upstream: "customers", Prefix: "", Available: true, Tools: tools("lookup")},
				{Upstream: "orders", Prefix: "ord", Available: true, Tools: tools("lookup")},
			},
			wantTools: []string{"lookup", "ord__lookup"},
			wantRoutes: map[string]Route{
				"lookup":      {Upstream: "customers", Name: "lookup", Available: true},
				"ord__lookup": {Upstream: "orders", Name: "lookup", Available: true},
			},
		},
		{
			name: "custom separator",
			opts: Options{Separator: "-"},
			sources: []Source{
				{Upstream: "pay", Prefix: "pay", Available: true, Tools: tools("refund")},
			},
			wantTools:  []string{"pay-refund"},
			wantRoutes: map[string]Route{"pay-refund": {Upstream: "pay", Name: "refund", Available: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, problems := build(t, tt.opts, tt.sources...)
			require.Empty(t, problems)
			assert.Equal(t, tt.wantTools, s.Names(Tools))
			assert.Equal(t, tt.wantPrompts, nilIfEmpty(s.Names(Prompts)))
			for exposed, want := range tt.wantRoutes {
				got, ok := s.Tool(exposed)
				require.True(t, ok, exposed)
				assert.Equal(t, want, got)
			}
			_, ok := s.Tool("nope")
			assert.False(t, ok)
		})
	}
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

func TestPromptRoutes(t *testing.T) {
	s, problems := build(t, defaultOpts, Source{
		Upstream: "orders", Prefix: "orders", Available: true,
		Tools: tools("refund"), Prompts: []json.RawMessage{prompt("refund")},
	})
	require.Empty(t, problems)
	r, ok := s.Prompt("orders__refund")
	require.True(t, ok)
	assert.Equal(t, Route{Upstream: "orders", Name: "refund", Available: true}, r)
	_, ok = s.Prompt("refund")
	assert.False(t, ok)
	// The prompt's nested "name" members are untouched.
	entries, _ := listAll(t, s, Prompts)
	require.Len(t, entries, 1)
	assert.JSONEq(t, `{"name":"orders__refund","arguments":[{"name":"id","required":true}]}`, string(entries[0]))
}

func TestFilters(t *testing.T) {
	all := tools("get_order", "list_orders", "cancel_order", "admin_purge", "admin_stats")
	tests := []struct {
		name             string
		include, exclude []string
		want             []string
		wantProblems     []string
	}{
		{name: "no filter", want: []string{"o__get_order", "o__list_orders", "o__cancel_order", "o__admin_purge", "o__admin_stats"}},
		{name: "include", include: []string{"get_*", "list_*"}, want: []string{"o__get_order", "o__list_orders"}},
		{name: "exclude", exclude: []string{"admin_*"}, want: []string{"o__get_order", "o__list_orders", "o__cancel_order"}},
		{name: "include and exclude", include: []string{"admin_*"}, exclude: []string{"*_purge"}, want: []string{"o__admin_stats"}},
		{name: "include nothing matches", include: []string{"zzz"}},
		{name: "exact name", include: []string{"cancel_order"}, want: []string{"o__cancel_order"}},
		{
			name: "malformed glob fails closed", exclude: []string{"admin_["},
			wantProblems: []string{`upstream "o": exclude glob "admin_[": syntax error in pattern; no tools are exposed from this upstream`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, problems := build(t, defaultOpts, Source{
				Upstream: "o", Prefix: "o", Available: true, Include: tt.include, Exclude: tt.exclude, Tools: all,
				Prompts: []json.RawMessage{prompt("admin_help")},
			})
			assert.Equal(t, tt.wantProblems, nilIfEmpty(problemStrings(problems)))
			assert.Equal(t, tt.want, nilIfEmpty(s.Names(Tools)))
			for _, name := range tt.want {
				_, ok := s.Tool(name)
				assert.True(t, ok, name)
			}
			// Filtered tools are not routed either.
			assert.Equal(t, len(tt.want), s.Upstreams()[0].Tools)
			// Filters are for tools only.
			assert.Equal(t, []string{"o__admin_help"}, s.Names(Prompts))
		})
	}
}

func TestNamePattern(t *testing.T) {
	long := strings.Repeat("x", 60)
	tests := []struct {
		name    string
		opts    Options
		tool    string
		prompt  string
		want    []string
		problem string
	}{
		{
			name: "dot rejected", opts: defaultOpts, tool: "x.y",
			problem: `tool "x.y" from upstream "orders": exposed name "orders__x.y" does not match ^[a-zA-Z0-9_-]{1,64}$`,
		},
		{
			name: "too long after prefixing", opts: defaultOpts, tool: long,
			problem: fmt.Sprintf(`tool %q from upstream "orders": exposed name "orders__%s" does not match ^[a-zA-Z0-9_-]{1,64}$`, long, long),
		},
		{
			name: "prompt rejected", opts: defaultOpts, tool: "ok", prompt: "a b", want: []string{"orders__ok"},
			problem: `prompt "a b" from upstream "orders": exposed name "orders__a b" does not match ^[a-zA-Z0-9_-]{1,64}$`,
		},
		{name: "accepted", opts: defaultOpts, tool: "get_order", want: []string{"orders__get_order"}},
		{name: "no pattern", opts: Options{Separator: "__"}, tool: "x.y", want: []string{"orders__x.y"}},
		{
			name: "custom pattern", opts: Options{Separator: "__", NamePattern: regexp.MustCompile(`^[a-z_]+$`)}, tool: "Get",
			problem: `tool "Get" from upstream "orders": exposed name "orders__Get" does not match ^[a-z_]+$`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := Source{Upstream: "orders", Prefix: "orders", Available: true, Tools: tools(tt.tool)}
			if tt.prompt != "" {
				src.Prompts = []json.RawMessage{prompt(tt.prompt)}
			}
			s, problems := build(t, tt.opts, src)
			assert.Equal(t, tt.want, nilIfEmpty(s.Names(Tools)))
			if tt.problem == "" {
				assert.Empty(t, problems)
				return
			}
			require.Len(t, problems, 1)
			assert.Equal(t, tt.problem, problems[0].Error())
			_, ok := s.Tool("orders__" + tt.tool)
			assert.Equal(t, tt.want != nil, ok, "a rejected name is not routed")
		})
	}
}

func TestCollisions(t *testing.T) {
	tests := []struct {
		name       string
		sources    []Source
		wantTools  []string
		wantRoutes map[string]string // exposed → upstream
		problems   []string
	}{
		{
			name: "bare prefixes: earlier source wins",
			sources: []Source{
				{Upstream: "customers", Available: true, Tools: tools("search", "get_customer")},
				{Upstream: "orders", Available: true, Tools: tools("search", "get_order")},
			},
			wantTools:  []string{"search", "get_customer", "get_order"},
			wantRoutes: map[string]string{"search": "customers", "get_order": "orders"},
			problems: []string{
				`tool "search" from upstream "orders": exposed name "search" collides with tool "search" from upstream "customers"; upstream "customers" comes first and wins, upstream "orders"'s is skipped`,
			},
		},
		{
			name: "prefix and bare name produce the same name",
			sources: []Source{
				{Upstream: "a", Prefix: "x", Available: true, Tools: tools("y")},
				{Upstream: "b", Available: true, Tools: tools("x__y")},
			},
			wantTools:  []string{"x__y"},
			wantRoutes: map[string]string{"x__y": "a"},
			problems: []string{
				`tool "x__y" from upstream "b": exposed name "x__y" collides with tool "y" from upstream "a"; upstream "a" comes first and wins, upstream "b"'s is skipped`,
			},
		},
		{
			name: "duplicate within one upstream: first wins",
			sources: []Source{
				{Upstream: "orders", Prefix: "orders", Available: true, Tools: []json.RawMessage{
					json.RawMessage(`{"name":"get","description":"first"}`),
					json.RawMessage(`{"name":"get","description":"second"}`),
				}},
			},
			wantTools:  []string{"orders__get"},
			wantRoutes: map[string]string{"orders__get": "orders"},
			problems:   []string{`tool "get" from upstream "orders": duplicate tool name; the first one wins`},
		},
		{
			name: "unavailable earlier source keeps its name",
			sources: []Source{
				{Upstream: "customers", Available: false, Tools: tools("search")},
				{Upstream: "orders", Available: true, Tools: tools("search")},
			},
			wantRoutes: map[string]string{"search": "customers"},
			problems: []string{
				`tool "search" from upstream "orders": exposed name "search" collides with tool "search" from upstream "customers"; upstream "customers" comes first and wins, upstream "orders"'s is skipped`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, problems := build(t, defaultOpts, tt.sources...)
			assert.Equal(t, tt.problems, problemStrings(problems))
			for _, p := range problems {
				// Reason alone names both upstreams.
				for _, src := range tt.sources {
					if p.Upstream != src.Upstream && len(tt.sources) > 1 {
						assert.Contains(t, p.Reason, fmt.Sprintf("%q", src.Upstream))
						assert.Contains(t, p.Reason, fmt.Sprintf("%q", p.Upstream))
					}
				}
			}
			assert.Equal(t, tt.wantTools, nilIfEmpty(s.Names(Tools)))
			for exposed, upstream := range tt.wantRoutes {
				r, ok := s.Tool(exposed)
				require.True(t, ok)
				assert.Equal(t, upstream, r.Upstream)
			}
		})
	}

	t.Run("duplicate keeps the first object", func(t *testing.T) {
		s, _ := build(t, defaultOpts, tests[2].sources...)
		entries, _ := listAll(t, s, Tools)
		require.Len(t, entries, 1)
		assert.JSONEq(t, `{"name":"orders__get","description":"first"}`, string(entries[0]))
	})
}

func TestInvalidItems(t *testing.T) {
	tests := []struct {
		name    string
		item    string
		problem string
	}{
		{"not JSON", `{"name":`, `tool from upstream "u": item 0: not valid JSON: unexpected end of input at offset 8`},
		{"array", `["name"]`, `tool from upstream "u": item 0: not a JSON object`},
		{"string", `"name"`, `tool from upstream "u": item 0: not a JSON object`},
		{"empty", ``, `tool from upstream "u": item 0: not valid JSON: unexpected end of input at offset 0`},
		{"no name", `{"title":"x"}`, `tool from upstream "u": item 0: "name" member is missing`},
		{"only nested name", `{"inputSchema":{"name":"x"}}`, `tool from upstream "u": item 0: "name" member is missing`},
		{"empty name", `{"name":""}`, `tool from upstream "u": item 0: "name" is empty`},
		{"number name", `{"name":42}`, `tool from upstream "u": item 0: "name" member is not a string`},
		{"null name", `{"name":null}`, `tool from upstream "u": item 0: "name" member is not a string`},
		{"two names", `{"name":"a","name":"b"}`, `tool from upstream "u": item 0: duplicate member "name" at offset 12`},
		{"two names, one escaped", `{"name":"a","n\u0061me":"b"}`, `tool from upstream "u": item 0: duplicate member "name" at offset 12`},
		{"nested duplicate", `{"name":"a","inputSchema":{"type":"object","type":"string"}}`, `tool from upstream "u": item 0: duplicate member "type" at offset 43`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, problems := build(t, defaultOpts, Source{
				Upstream: "u", Prefix: "u", Available: true,
				Tools: []json.RawMessage{json.RawMessage(tt.item), tool("ok")},
			})
			assert.Equal(t, []string{tt.problem}, problemStrings(problems))
			assert.Equal(t, []string{"u__ok"}, s.Names(Tools))
			assert.Equal(t, 1, s.Upstreams()[0].Problems)
		})
	}
}

func TestSourceProblems(t *testing.T) {
	s, problems := build(t, defaultOpts,
		Source{Upstream: "orders", Prefix: "orders", Available: true, Tools: tools("a")},
		Source{Upstream: "", Available: true, Tools: tools("b")},
		Source{Upstream: "orders", Prefix: "o2", Available: true, Tools: tools("c")},
		Source{Upstream: "a/b", Prefix: "ab", Available: true, Tools: tools("d")},
	)
	assert.Equal(t, []string{
		`upstream "": source 1 has no upstream name; skipped`,
		`upstream "orders": source 2 repeats the upstream name; the earlier source wins and this one is skipped`,
		`upstream "a/b": upstream name contains '/', which the gateway URI form cannot carry; skipped`,
	}, problemStrings(problems))
	assert.Equal(t, []string{"orders__a"}, s.Names(Tools))
	require.Len(t, s.Upstreams(), 1)
}

func TestProblemsDeterministic(t *testing.T) {
	sources := []Source{
		{Upstream: "a", Available: true, Tools: tools("x", "x.y", "dup", "dup"), Resources: []json.RawMessage{json.RawMessage(`{}`)}},
		{Upstream: "b", Available: true, Tools: tools("x", "bad name"), Prompts: []json.RawMessage{json.RawMessage(`1`)}},
		{Upstream: "c", Available: true, Tools: tools("x"), ResourceTemplates: []json.RawMessage{resourceTemplate("a{")}},
	}
	_, first := Build(1, defaultOpts, sources)
	want := []string{
		`tool "x.y" from upstream "a": exposed name "x.y" does not match ^[a-zA-Z0-9_-]{1,64}$`,
		`tool "dup" from upstream "a": duplicate tool name; the first one wins`,
		`resource from upstream "a": item 0: "uri" member is missing`,
		`tool "x" from upstream "b": exposed name "x" collides with tool "x" from upstream "a"; upstream "a" comes first and wins, upstream "b"'s is skipped`,
		`tool "bad name" from upstream "b": exposed name "bad name" does not match ^[a-zA-Z0-9_-]{1,64}$`,
		`prompt from upstream "b": item 0: not a JSON object`,
		`tool "x" from upstream "c": exposed name "x" collides with tool "x" from upstream "a"; upstream "a" comes first and wins, upstream "c"'s is skipped`,
		`resource template "a{" from upstream "c": not an RFC 6570 URI template: at "{": unclosed expression`,
	}
	assert.Equal(t, want, problemStrings(first))
	for range 20 {
		_, again := Build(1, defaultOpts, sources)
		require.Equal(t, first, again)
	}
}

func TestUpstreams(t *testing.T) {
	s, _ := build(t, defaultOpts,
		Source{
			Upstream: "orders", Prefix: "orders", Available: true, Tools: tools("a", "b"),
			Resources: []json.RawMessage{resource("order://1")}, Prompts: []json.RawMessage{prompt("p")},
		},
		Source{
			Upstream: "payments", Prefix: "payments", Available: false, Tools: tools("refund", "bad.name"),
			ResourceTemplates: []json.RawMessage{resourceTemplate("payment://{id}")},
		},
		Source{Upstream: "ledger", Prefix: "ledger", Available: false},
	)
	assert.Equal(t, []UpstreamInfo{
		{Name: "orders", Prefix: "orders", Available: true, Tools: 2, Resources: 1, Prompts: 1},
		{Name: "payments", Prefix: "payments", Available: false, Tools: 1, ResourceTemplates: 1, Problems: 1, ToolsDroppedName: 1},
		{Name: "ledger", Prefix: "ledger", Available: false},
	}, s.Upstreams())
	assert.Equal(t, 2, s.Upstreams()[0].Count(Tools))
	assert.Equal(t, 1, s.Upstreams()[1].Count(ResourceTemplates))
	assert.Equal(t, 0, s.Upstreams()[1].Count(Kind(9)))
	// Upstreams returns a copy.
	s.Upstreams()[0].Tools = 99
	assert.Equal(t, 2, s.Upstreams()[0].Tools)
}

func TestKind(t *testing.T) {
	tests := []struct {
		k    Kind
		want string
	}{
		{Tools, "tools"}, {Resources, "resources"}, {ResourceTemplates, "resourceTemplates"}, {Prompts, "prompts"}, {Kind(7), "unknown"}, {Kind(-1), "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.k.String())
		})
	}
	s, _ := build(t, defaultOpts)
	assert.Equal(t, 0, s.Len(Kind(7)))
	assert.Nil(t, s.Names(Kind(7)))
	_, err := s.Page(Kind(7), "")
	assert.ErrorIs(t, err, ErrUnknownKind)
}

func TestZeroSnapshot(t *testing.T) {
	var s Snapshot
	b, err := s.Page(Tools, "")
	require.NoError(t, err)
	assert.JSONEq(t, `{"tools":[]}`, string(b))
	_, err = s.Page(Tools, encodeCursor(Tools, 0, 1))
	require.ErrorIs(t, err, ErrInvalidCursor)
	_, ok := s.Tool("x")
	assert.False(t, ok)
	_, ok = s.Resource("mcpgw://x/y")
	assert.False(t, ok)
	_, ok = s.Owner("x__y")
	assert.False(t, ok)
	require.NoError(t, s.Consistent())
}

// TestHiddenToolsStayRouted: a hidden tool (killed) is left out of the
// list and of Names, and is still routed and among ToolNames.
func TestHiddenToolsStayRouted(t *testing.T) {
	opts := defaultOpts
	opts.Hidden = func(exposed, _ string) bool { return exposed == "orders__cancel" }
	s, problems := build(t, opts, Source{Upstream: "orders", Prefix: "orders", Available: true, Tools: tools("get", "cancel")})
	require.Empty(t, problems)
	assert.Equal(t, []string{"orders__get"}, s.Names(Tools))
	assert.Equal(t, []string{"orders__cancel", "orders__get"}, s.ToolNames())
	_, routed := s.Tool("orders__cancel")
	assert.True(t, routed)
}
