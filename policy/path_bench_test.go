package policy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
)

// BenchmarkPolicyCheck measures the policy decisions of one allowed
// tools/call in the order the gateway makes them (gateway/admit.go): the
// kill-switch check with a few switches set, the tool's required scopes
// against the token's, and the local per-principal rate limit (set too
// high to refuse). make bench reports it as the "policy check" step.
func BenchmarkPolicyCheck(b *testing.B) {
	clk := newClock()
	ctx := b.Context()
	s, err := policy.NewSwitches(ctx, &policy.MemoryStore{}, policy.SwitchOptions{Now: clk.Now})
	require.NoError(b, err)
	defer s.Close()
	switches := []policy.Switch{
		{Scope: policy.ScopeTool, Target: "payments__refund_*", Reason: "r"},
		{Scope: policy.ScopeUpstream, Target: "shipping", Reason: "r", TTL: time.Hour},
	}
	for i := range switches {
		_, err := s.Add(ctx, &switches[i])
		require.NoError(b, err)
	}
	scopes, err := policy.NewRequiredScopes(map[string]configs.ToolScopes{
		"orders": {Default: []string{"orders:read"}, Tools: []configs.ToolScopeRule{{Match: "create_*", Scopes: []string{"orders:write"}}}},
	}, map[string][]string{"orders": {"get_order", "create_order"}})
	require.NoError(b, err)
	l := newLimiter(b, configs.RateLimits{PerPrincipal: &configs.Limit{Rate: 1e9, Burst: 1e9}}, clk)
	have := []string{"mcp:tools", "orders:read"}

	b.ReportAllocs()
	for b.Loop() {
		if _, killed := s.Check("orders__get_order", "orders"); killed {
			b.Fatal("killed")
		}
		if policy.Missing(have, scopes.Scopes("orders", "get_order")) != nil {
			b.Fatal("missing scope")
		}
		if !l.Allow(ctx, "alice", "orders__get_order", "orders").Allowed {
			b.Fatal("refused")
		}
	}
}
