package configs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateRules(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`
server:
  listen: 127.0.0.1:0
upstreams:
  - name: a
    http: {url: "http://a.invalid/mcp"}
policy:
  rules:
    - name: fine
      effect: allow
      when: 'tool.annotations.?readOnlyHint.orValue(false) && "ops" in principal.claims.?groups.orValue([])'
    - name: syntax
      when: 'tool.name == '
    - name: not-bool
      when: 'tool.name + "x"'
    - name: unknown-variable
      when: 'request.size > 10'
    - name: fine
      effect: maybe
`))
	require.Error(t, err)
	assert.Nil(t, cfg)
	got := Problems(err)
	want := []string{
		`policy.rules[1].when: 1:14: Syntax error: mismatched input '<EOF>' expecting`,
		`policy.rules[2].when: must be of type bool, not string`,
		`policy.rules[3].when: 1:1: undeclared reference to 'request'`,
		`policy.rules[4].name: "fine" is already the name of policy.rules[0]`,
		`policy.rules[4].effect: "maybe" must be deny or allow`,
		`policy.rules[4].when: required`,
	}
	require.Len(t, got, len(want), "%q", got)
	for i := range want {
		assert.Contains(t, got[i], want[i])
	}
}
