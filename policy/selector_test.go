package policy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/policy"
)

func TestSelector(t *testing.T) {
	t.Parallel()
	readOnly := map[string]any{"readOnlyHint": true}
	tests := []struct {
		name     string
		ep       configs.Endpoint
		exposed  string
		upstream string
		ann      map[string]any
		want     bool
	}{
		{"glob matches", configs.Endpoint{Tools: []string{"orders__*"}}, "orders__get", "orders", nil, true},
		{"glob misses", configs.Endpoint{Tools: []string{"orders__*"}}, "payments__refund", "payments", nil, false},
		{"cel on annotations", configs.Endpoint{When: `tool.annotations.?readOnlyHint.orValue(false)`}, "x", "u", readOnly, true},
		{"cel false", configs.Endpoint{When: `tool.annotations.?readOnlyHint.orValue(false)`}, "x", "u", nil, false},
		{"cel on upstream", configs.Endpoint{When: `tool.upstream == "orders"`}, "get", "orders", nil, true},
		{"both must hold", configs.Endpoint{Tools: []string{"a*"}, When: `tool.upstream == "u"`}, "b", "u", nil, false},
		{"evaluation error leaves out", configs.Endpoint{When: `tool.annotations.readOnlyHint`}, "x", "u", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := policy.NewSelector(&tt.ep, "endpoints[0]")
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.Selects(tt.exposed, policy.ToolVars(tt.exposed, tt.exposed, tt.upstream, tt.ann)))
		})
	}
	_, err := policy.NewSelector(&configs.Endpoint{When: `tool.name ==`}, "endpoints[3]")
	require.ErrorContains(t, err, "endpoints[3].when")
}
