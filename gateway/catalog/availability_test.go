package catalog

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUnavailableUpstream(t *testing.T) {
	s, problems := build(t, defaultOpts,
		Source{Upstream: "customers", Prefix: "customers", Available: true, Tools: tools("lookup")},
		Source{
			Upstream: "orders", Prefix: "orders", Available: false, Tools: tools("cancel_order"),
			Resources:         []json.RawMessage{resource("order://index")},
			ResourceTemplates: []json.RawMessage{resourceTemplate("order://{id}")},
			Prompts:           []json.RawMessage{prompt("refund")},
		},
	)
	require.Empty(t, problems)

	// Not listed.
	assert.Equal(t, []string{"customers__lookup"}, s.Names(Tools))
	for _, k := range []Kind{Resources, ResourceTemplates, Prompts} {
		assert.Zero(t, s.Len(k), k)
	}

	// Still routed, as unavailable.
	tests := []struct {
		name   string
		lookup func() (Route, bool)
		want   Route
	}{
		{"tool", func() (Route, bool) { return s.Tool("orders__cancel_order") }, Route{Upstream: "orders", Name: "cancel_order", Available: false}},
		{"prompt", func() (Route, bool) { return s.Prompt("orders__refund") }, Route{Upstream: "orders", Name: "refund", Available: false}},
		{"resource", func() (Route, bool) { return s.Resource("order://index") }, Route{Upstream: "orders", Name: "order://index", Available: false}},
		{"template", func() (Route, bool) { return s.Resource("order://42") }, Route{Upstream: "orders", Name: "order://42", Available: false}},
		{"available tool", func() (Route, bool) { return s.Tool("customers__lookup") }, Route{Upstream: "customers", Name: "lookup", Available: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.lookup()
			require.True(t, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	assert.Equal(t, []UpstreamInfo{
		{Name: "customers", Prefix: "customers", Available: true, Tools: 1},
		{Name: "orders", Prefix: "orders", Available: false, Tools: 1, Resources: 1, ResourceTemplates: 1, Prompts: 1},
	}, s.Upstreams())
}

func TestOwner(t *testing.T) {
	s, _ := build(t, defaultOpts,
		Source{Upstream: "customers", Prefix: "customers", Available: true, Tools: tools("lookup")},
		Source{Upstream: "orders", Prefix: "orders", Available: false}, // down at start, never listed
		Source{Upstream: "orders-eu", Prefix: "orders__eu", Available: true, Tools: tools("x")},
		Source{Upstream: "payments", Prefix: "payments", Available: false, Tools: tools("refund")},
		Source{Upstream: "bare", Prefix: "", Available: false, Tools: tools("ping")},
	)
	tests := []struct {
		name    string
		exposed string
		want    string
		ok      bool
	}{
		{"never listed, unavailable", "orders__cancel_order", "orders", true},
		{"listed before, unavailable", "payments__charge", "payments", true},
		{"available upstream", "customers__nope", "", false},
		{"longer available prefix wins", "orders__eu__nope", "", false},
		{"no prefix", "cancel_order", "", false},
		{"prefix without separator", "orderscancel", "", false},
		{"bare prefixes own nothing", "ping2", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := s.Owner(tt.exposed)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want, got)
		})
	}
	// The gateway asks Tool first; a known route of an unavailable upstream
	// says so itself.
	r, ok := s.Tool("payments__refund")
	require.True(t, ok)
	assert.False(t, r.Available)
	r, ok = s.Tool("ping")
	require.True(t, ok)
	assert.Equal(t, Route{Upstream: "bare", Name: "ping", Available: false}, r)
}

func TestLookupsDoNotAllocate(t *testing.T) {
	s, _ := Build(9, Options{Separator: "__", PageSize: 100}, []Source{
		{
			Upstream: "orders", Prefix: "orders", Available: true, Tools: manyTools(1000),
			Resources:         []json.RawMessage{resource("order://index")},
			ResourceTemplates: []json.RawMessage{resourceTemplate("order://{id}/items{?page}"), resourceTemplate("file:///{+path}")},
			Prompts:           []json.RawMessage{prompt("refund")},
		},
		{Upstream: "payments", Prefix: "payments", Available: false},
	})
	cursor := encodeCursor(Tools, 9, 300)
	oldCursor := encodeCursor(Tools, 8, 300)
	tests := []struct {
		name string
		f    func()
	}{
		{"Tool", func() { _, _ = s.Tool("orders__tool_0500") }},
		{"Tool miss", func() { _, _ = s.Tool("orders__nope") }},
		{"Prompt", func() { _, _ = s.Prompt("orders__refund") }},
		{"Resource exact", func() { _, _ = s.Resource("order://index") }},
		{"Resource gateway form", func() { _, _ = s.Resource("mcpgw://orders/order://1") }},
		{"Resource template", func() { _, _ = s.Resource("order://42/items?page=3") }},
		{"Resource reserved template", func() { _, _ = s.Resource("file:///a/b/c") }},
		{"Resource miss", func() { _, _ = s.Resource("nope://x") }},
		{"Owner", func() { _, _ = s.Owner("payments__charge") }},
		{"Page first", func() { _, _ = s.Page(Tools, "") }},
		{"Page cursor", func() { _, _ = s.Page(Tools, cursor) }},
		{"Page old cursor", func() { _, _ = s.Page(Tools, oldCursor) }},
		{"Page invalid cursor", func() { _, _ = s.Page(Tools, "garbage-garbage-garb") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Zero(t, testing.AllocsPerRun(100, tt.f))
		})
	}
}
