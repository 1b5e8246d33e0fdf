package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
)

func TestRequiredScopes(t *testing.T) {
	t.Parallel()

	tables := map[string]configs.ToolScopes{
		"orders": {
			Default: []string{"orders:read"},
			Tools: []configs.ToolScopeRule{
				{Match: "create_*", Scopes: []string{"orders:write"}},
				{Match: "cancel_*", Scopes: []string{"orders:write", "orders:admin"}},
				{Match: "ping", Scopes: nil},
			},
		},
		"payments": {Default: []string{"payments"}},
	}
	catalog := map[string][]string{"orders": {"get_order", "create_order"}}
	r, err := policy.NewRequiredScopes(tables, catalog)
	require.NoError(t, err)

	tests := []struct {
		upstream, tool string
		want           []string
	}{
		{"orders", "get_order", []string{"orders:read"}},
		{"orders", "create_order", []string{"orders:write"}},
		{"orders", "cancel_order", []string{"orders:write", "orders:admin"}},
		{"orders", "list_orders", []string{"orders:read"}},
		{"orders", "ping", nil},
		{"payments", "refund", []string{"payments"}},
		{"customers", "get_customer", nil},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, r.Scopes(tt.upstream, tt.tool), "%s/%s", tt.upstream, tt.tool)
	}

	// The tables are copied.
	tables["orders"].Default[0] = "changed"
	assert.Equal(t, []string{"orders:read"}, r.Scopes("orders", "list_orders"))

	_, err = policy.NewRequiredScopes(map[string]configs.ToolScopes{"x": {Tools: []configs.ToolScopeRule{{Match: "[", Scopes: []string{"s"}}}}}, nil)
	require.ErrorIs(t, err, policy.ErrInvalidConfig)
}

func TestMissing(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name       string
		have, need []string
		want       []string
	}{
		{name: "nothing needed", have: []string{"a"}, need: nil, want: nil},
		{name: "all there", have: []string{"b", "a"}, need: []string{"a", "b"}, want: nil},
		{name: "some missing", have: []string{"a"}, need: []string{"c", "a", "b"}, want: []string{"c", "b"}},
		{name: "none held", have: nil, need: []string{"a", "a"}, want: []string{"a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, policy.Missing(tt.have, tt.need))
		})
	}
}

func BenchmarkRequiredScopes(b *testing.B) {
	r, err := policy.NewRequiredScopes(map[string]configs.ToolScopes{
		"orders": {Default: []string{"orders:read"}, Tools: []configs.ToolScopeRule{{Match: "create_*", Scopes: []string{"orders:write"}}}},
	}, map[string][]string{"orders": {"create_order"}})
	require.NoError(b, err)
	have := []string{"orders:read", "orders:write"}
	b.ReportAllocs()
	for b.Loop() {
		if policy.Missing(have, r.Scopes("orders", "create_order")) != nil {
			b.Fatal("missing")
		}
	}
}
