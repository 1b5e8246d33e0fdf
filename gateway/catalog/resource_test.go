package catalog

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResourceRewriting(t *testing.T) {
	s, problems := build(t, defaultOpts,
		Source{Upstream: "customers", Prefix: "customers", Available: true, Resources: []json.RawMessage{
			resource("customer://index"), resource("customer://vip"), resource("shared://readme"),
		}},
		Source{Upstream: "orders", Prefix: "orders", Available: true, Resources: []json.RawMessage{
			resource("customer://index"), resource("order://index"),
		}},
		Source{Upstream: "payments", Prefix: "payments", Available: false, Resources: []json.RawMessage{
			resource("shared://readme"), resource("payment://index"),
		}},
	)
	require.Empty(t, problems)
	assert.Equal(t, []string{
		"mcpgw://customers/customer://index",
		"customer://vip",
		"mcpgw://customers/shared://readme",
		"mcpgw://orders/customer://index",
		"order://index",
	}, s.Names(Resources))

	entries, _ := listAll(t, s, Resources)
	require.Len(t, entries, 5)
	assert.Equal(t, `{"uri":"mcpgw://customers/customer://index","name":"r","mimeType":"text/plain"}`, string(entries[0])) //nolint:testifylint // rewriting must keep every other byte as is
	assert.Equal(t, `{"uri":"customer://vip","name":"r","mimeType":"text/plain"}`, string(entries[1]))                     //nolint:testifylint // rewriting must keep every other byte as is

	tests := []struct {
		name string
		uri  string
		want Route
		ok   bool
	}{
		{"unique uri", "customer://vip", Route{Upstream: "customers", Name: "customer://vip", Available: true}, true},
		{"rewritten, first upstream", "mcpgw://customers/customer://index", Route{Upstream: "customers", Name: "customer://index", Available: true}, true},
		{"rewritten, second upstream", "mcpgw://orders/customer://index", Route{Upstream: "orders", Name: "customer://index", Available: true}, true},
		{"colliding original is ambiguous", "customer://index", Route{}, false},
		{"colliding with an unavailable upstream", "shared://readme", Route{}, false},
		{"rewritten, unavailable upstream", "mcpgw://payments/shared://readme", Route{Upstream: "payments", Name: "shared://readme", Available: false}, true},
		{"unlisted, unavailable upstream", "payment://index", Route{Upstream: "payments", Name: "payment://index", Available: false}, true},
		{"gateway form of a unique uri", "mcpgw://customers/customer://vip", Route{Upstream: "customers", Name: "customer://vip", Available: true}, true},
		{"gateway form of an unlisted uri", "mcpgw://orders/order://42", Route{Upstream: "orders", Name: "order://42", Available: true}, true},
		{"gateway form, unknown upstream", "mcpgw://nobody/x://y", Route{}, false},
		{"gateway form, no original", "mcpgw://orders/", Route{}, false},
		{"unknown", "order://42", Route{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Resource(tt.uri)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("exposed uri", func(t *testing.T) {
		assert.Equal(t, "customer://vip", s.ExposedURI("customers", "customer://vip"))
		assert.Equal(t, "mcpgw://orders/customer://index", s.ExposedURI("orders", "customer://index"))
		assert.Equal(t, "mcpgw://orders/customer://vip", s.ExposedURI("orders", "customer://vip"))
		assert.Equal(t, "mcpgw://orders/order://42", s.ExposedURI("orders", "order://42"))
	})
}

func TestResourceProblems(t *testing.T) {
	s, problems := build(t, defaultOpts,
		Source{Upstream: "a", Available: true, Resources: []json.RawMessage{
			resource("x://1"), resource("x://1"), json.RawMessage(`{"uri":""}`), json.RawMessage(`{"name":"x"}`),
			resource("mcpgw://b/y://2"),
		}},
		Source{Upstream: "b", Available: true, Resources: []json.RawMessage{resource("y://2")}},
		Source{Upstream: "c", Available: true, Resources: []json.RawMessage{resource("y://2")}},
	)
	assert.Equal(t, []string{
		`resource "x://1" from upstream "a": duplicate uri; the first one wins`,
		`resource from upstream "a": item 2: "uri" is empty`,
		`resource from upstream "a": item 3: "uri" member is missing`,
		`resource "y://2" from upstream "b": exposed uri "mcpgw://b/y://2" collides with one from upstream "a"; upstream "a" comes first and wins, upstream "b"'s is skipped`,
	}, problemStrings(problems))
	assert.Equal(t, []string{"x://1", "mcpgw://b/y://2", "mcpgw://c/y://2"}, s.Names(Resources))
	// An upstream's own URI in the gateway form is routed as it is.
	r, ok := s.Resource("mcpgw://b/y://2")
	require.True(t, ok)
	assert.Equal(t, Route{Upstream: "a", Name: "mcpgw://b/y://2", Available: true}, r, s.Names(Resources))
}

func TestTemplateRouting(t *testing.T) {
	s, problems := build(t, defaultOpts,
		Source{Upstream: "customers", Available: true, ResourceTemplates: []json.RawMessage{
			resourceTemplate("customer://{id}"),
			resourceTemplate("file:///{+path}"),
		}},
		Source{
			Upstream: "orders", Available: true,
			Resources: []json.RawMessage{resource("customer://index")},
			ResourceTemplates: []json.RawMessage{
				resourceTemplate("order://{id}/items{?page,limit}"),
				resourceTemplate("file:///{+path}"),
				resourceTemplate("customer://{id}/orders"),
			},
		},
		Source{Upstream: "payments", Available: false, ResourceTemplates: []json.RawMessage{
			resourceTemplate("payment://{id}"),
		}},
		Source{Upstream: "broken", Available: true, ResourceTemplates: []json.RawMessage{
			resourceTemplate("x://{id"), resourceTemplate("x://{}"), resourceTemplate("x://{=a}"), resourceTemplate("x://{a b}"),
		}},
	)
	assert.Equal(t, []string{
		`resource template "x://{id" from upstream "broken": not an RFC 6570 URI template: at "{id": unclosed expression`,
		`resource template "x://{}" from upstream "broken": not an RFC 6570 URI template: at {}: empty expression`,
		`resource template "x://{=a}" from upstream "broken": not an RFC 6570 URI template: at {=a}: '=': reserved operator`,
		`resource template "x://{a b}" from upstream "broken": not an RFC 6570 URI template: at {a b}: "a b": bad variable name`,
	}, problemStrings(problems))
	assert.Equal(t, []string{
		"customer://{id}",
		"mcpgw://customers/file:///{+path}",
		"order://{id}/items{?page,limit}",
		"mcpgw://orders/file:///{+path}",
		"customer://{id}/orders",
	}, s.Names(ResourceTemplates))
	entries, _ := listAll(t, s, ResourceTemplates)
	assert.Equal(t, `{"uriTemplate":"mcpgw://customers/file:///{+path}","name":"t"}`, string(entries[1])) //nolint:testifylint // rewriting must keep every other byte as is

	tests := []struct {
		name string
		uri  string
		want Route
		ok   bool
	}{
		{"simple var", "customer://42", Route{Upstream: "customers", Name: "customer://42", Available: true}, true},
		{"exact resource before templates", "customer://index", Route{Upstream: "orders", Name: "customer://index", Available: true}, true},
		{"simple var stops at slash", "customer://42/orders", Route{Upstream: "orders", Name: "customer://42/orders", Available: true}, true},
		{"query form", "order://7/items?page=2&limit=10", Route{Upstream: "orders", Name: "order://7/items?page=2&limit=10", Available: true}, true},
		{"query form omitted", "order://7/items", Route{Upstream: "orders", Name: "order://7/items", Available: true}, true},
		{"shared template is ambiguous", "file:///etc/hosts", Route{}, false},
		{"shared template, gateway form", "mcpgw://orders/file:///etc/hosts", Route{Upstream: "orders", Name: "file:///etc/hosts", Available: true}, true},
		{"unavailable upstream's template", "payment://9", Route{Upstream: "payments", Name: "payment://9", Available: false}, true},
		{"empty var", "customer://", Route{}, false},
		{"no match", "invoice://1", Route{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Resource(tt.uri)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.Equal(t, "customer://42", s.ExposedURI("customers", "customer://42"))
	assert.Equal(t, "mcpgw://customers/file:///a", s.ExposedURI("customers", "file:///a"))
}

func TestTemplateMatch(t *testing.T) {
	tests := []struct {
		tmpl string
		uri  string
		want bool
	}{
		{"customer://{id}", "customer://42", true},
		{"customer://{id}", "customer://", false},
		{"customer://{id}", "customer://4/2", false},
		{"customer://{id}", "customer://4?x", false},
		{"customer://{id}", "customers://42", false},
		{"customer://{a,b}", "customer://1,2", true},
		{"file:///{+path}", "file:///a/b/c.txt", true},
		{"file:///{+path}", "file:///", false},
		{"file:///{+path}.txt", "file:///a/b.txt", true},
		{"file:///{+path}.txt", "file:///a/b.md", false},
		{"{+base}/x", "https://h/p/x", true},
		{"x://{a}{b}", "x://ab", true},
		{"x://{a}{b}", "x://a", false},
		{"x://{a}-{b}", "x://1-2-3", true},
		{"api://items{?q,page}", "api://items", true},
		{"api://items{?q,page}", "api://items?q=1&page=2", true},
		{"api://items{?q}{&page}", "api://items?q=1&page=2", true},
		{"api://items{?q}", "api://itemsq=1", false},
		{"api://items{?q}", "api://items?q=1#frag", false},
		{"doc://{id}{#section}", "doc://1#intro", true},
		{"doc://{id}{#section}", "doc://1", true},
		{"map://{x}{.fmt}", "map://1.json", true},
		{"map://{x}{.fmt}", "map://1", true},
		{"fs://root{/path*}", "fs://root/a/b", true},
		{"fs://root{/path*}", "fs://root", true},
		{"fs://root{/path*}", "fs://rootx", false},
		{"m://{;x,y}", "m://;x=1;y=2", true},
		{"lit://only", "lit://only", true},
		{"lit://only", "lit://only/", false},
		{"weird://{v:3}/{list*}", "weird://abc/a,b", true},
		{"", "", true},
		{"", "x", false},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl+" "+tt.uri, func(t *testing.T) {
			m, err := compileTemplate(tt.tmpl)
			require.NoError(t, err)
			assert.Equal(t, tt.want, m.match(tt.uri))
		})
	}
}

func TestTemplateMatchLongURI(t *testing.T) {
	m, err := compileTemplate("file:///{+path}/{name}.txt")
	require.NoError(t, err)
	long := "file:///" + strings.Repeat("a/", 5000) + "b.txt"
	assert.True(t, m.match(long))
	assert.False(t, m.match(long+"x"))

	// Many adjacent greedy expressions stay linear.
	m, err = compileTemplate("x://" + strings.Repeat("{+a}", 50) + "!")
	require.NoError(t, err)
	assert.False(t, m.match("x://"+strings.Repeat("a", 4000)))
}

// referenceRegexp translates a compiled template into an anchored regular
// expression with the same meaning, as an independent check of match.
func referenceRegexp(m *uriMatcher) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?s)\A`)
	for _, sg := range m.segs {
		if sg.lit != "" {
			b.WriteString(regexp.QuoteMeta(sg.lit))
			continue
		}
		class := "."
		switch sg.stop {
		case stopSimple():
			class = `[^/?#]`
		case stopPath():
			class = `[^?#]`
		case stopQuery():
			class = `[^#]`
		}
		switch sg.op {
		case 0:
			b.WriteString(class + "+")
		default:
			b.WriteString(`(?:` + regexp.QuoteMeta(string(sg.op)) + class + `*)?`)
		}
	}
	b.WriteString(`\z`)
	return regexp.MustCompile(b.String())
}

func FuzzTemplateMatch(f *testing.F) {
	seeds := [][2]string{
		{"customer://{id}", "customer://42"},
		{"file:///{+path}", "file:///a/b"},
		{"api://items{?q,page}{&x}", "api://items?q=1&x=2"},
		{"doc://{id}{#s}{.f}{/p*}{;m}", "doc://1/a;m=2"},
		{"x://{a}{b}{+c}", "x://abc"},
		{"{", ""},
		{"{=x}", ""},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, uri string) {
		m, err := compileTemplate(tmpl)
		if err != nil {
			return
		}
		got := m.match(uri)
		if !utf8.ValidString(tmpl) || !utf8.ValidString(uri) {
			return
		}
		if want := referenceRegexp(m).MatchString(uri); got != want {
			t.Fatalf("template %q, uri %q: match = %v, reference says %v", tmpl, uri, got, want)
		}
	})
}
