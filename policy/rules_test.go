package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
)

// The docs' three examples (docs/policy.md), one per kind of input.
var docRules = []configs.Rule{
	{Name: "support-read-only", When: `"support" in principal.claims.?groups.orValue([]) && !tool.annotations.?readOnlyHint.orValue(false)`},
	{Name: "destructive-step-up", When: `tool.annotations.?destructiveHint.orValue(false) && !("payments:admin" in principal.scopes)`},
	{Name: "refunds-need-a-human", When: `tool.original == "refund" && args.amount > 100 && !has(principal.claims.act)`},
}

func TestRulesDecide(t *testing.T) {
	rs, err := policy.NewRules(docRules)
	require.NoError(t, err)
	require.True(t, rs.NamesArgs())

	support := &authn.Principal{Subject: "ann", Claims: map[string]any{"groups": []any{"support"}}}
	ops := &authn.Principal{Subject: "bob", Claims: map[string]any{"groups": []any{"ops"}}}
	admin := &authn.Principal{Subject: "cy", Scopes: []string{"payments:admin"}, Claims: map[string]any{}}
	human := &authn.Principal{Subject: "agent-7", Claims: map[string]any{"act": map[string]any{"sub": "dora"}}}
	agent := &authn.Principal{Subject: "agent-7", Claims: map[string]any{}}

	readOnly := map[string]any{"readOnlyHint": true}
	destructive := map[string]any{"destructiveHint": true}
	tests := []struct {
		name      string
		p         *authn.Principal
		tool      string
		ann       map[string]any
		args      map[string]any
		deny      bool
		rule      string
		needsArgs bool // without args, the answer depends on them
	}{
		{name: "claims: support group reads", p: support, tool: "lookup", ann: readOnly},
		{name: "claims: support group may not write", p: support, tool: "update", deny: true, rule: "support-read-only"},
		{name: "claims: another group writes", p: ops, tool: "update"},
		{name: "annotations: destructive without step-up", p: ops, tool: "wipe", ann: destructive, deny: true, rule: "destructive-step-up"},
		{name: "annotations: destructive with step-up", p: admin, tool: "wipe", ann: destructive},
		{name: "annotations: read-only is not destructive", p: ops, tool: "lookup", ann: readOnly},
		{name: "args: small refund by an agent", p: agent, tool: "refund", args: map[string]any{"amount": 20.0}, needsArgs: true},
		{name: "args: large refund by an agent alone", p: agent, tool: "refund", args: map[string]any{"amount": 250.0}, deny: true, rule: "refunds-need-a-human", needsArgs: true},
		{name: "args: large refund with a human, decided without them", p: human, tool: "refund", args: map[string]any{"amount": 250.0}},
		{name: "args: another tool is decided without them", p: agent, tool: "charge", args: map[string]any{"amount": 250.0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := &policy.Input{
				Principal: policy.PrincipalVars(tt.p, "anonymous"),
				Tool:      policy.ToolVars("pay__"+tt.tool, tt.tool, "pay", tt.ann),
				Endpoint:  "/mcp",
			}
			v := rs.Decide(in)
			require.Equal(t, tt.needsArgs, v.NeedsArgs, "needs args without them")
			if !v.NeedsArgs {
				assert.Equal(t, tt.deny, v.Deny)
				assert.Equal(t, tt.rule, v.Rule)
			}
			assert.Equal(t, !tt.deny || tt.needsArgs, rs.Visible(in), "listed")
			in.Args = tt.args
			if in.Args == nil {
				in.Args = map[string]any{}
			}
			v = rs.Decide(in)
			require.False(t, v.NeedsArgs)
			assert.Equal(t, tt.deny, v.Deny)
			assert.Equal(t, tt.rule, v.Rule)
			assert.NoError(t, v.Err)
		})
	}
}

func TestRulesAllowEffectAndErrors(t *testing.T) {
	rs, err := policy.NewRules([]configs.Rule{
		{Name: "admins", Effect: configs.RuleAllow, When: `"admin" in principal.roles`},
		{Name: "missing-claim", When: `principal.claims.tier == "free"`},
	})
	require.NoError(t, err)
	tool := policy.ToolVars("a__t", "t", "a", nil)

	admin := &authn.Principal{Subject: "x", Roles: []string{"admin"}}
	v := rs.Decide(&policy.Input{Principal: policy.PrincipalVars(admin, "anonymous"), Tool: tool})
	assert.Equal(t, policy.Verdict{Rule: "admins"}, v, "an allow rule decides before later rules")

	// No tier claim: reading it fails, and a failing deny rule refuses.
	v = rs.Decide(&policy.Input{Principal: policy.PrincipalVars(&authn.Principal{Subject: "y"}, "anonymous"), Tool: tool})
	assert.True(t, v.Deny)
	assert.Equal(t, "missing-claim", v.Rule)
	require.Error(t, v.Err)

	paid := &authn.Principal{Subject: "z", Claims: map[string]any{"tier": "paid"}}
	assert.Equal(t, policy.Verdict{}, rs.Decide(&policy.Input{Principal: policy.PrincipalVars(paid, "anonymous"), Tool: tool}))
}

func TestNewRulesNone(t *testing.T) {
	rs, err := policy.NewRules(nil)
	require.NoError(t, err)
	assert.Nil(t, rs)
	assert.Equal(t, policy.Verdict{}, rs.Decide(&policy.Input{}))
	assert.True(t, rs.Visible(&policy.Input{}))
	assert.False(t, rs.NamesArgs())
}
