package configs

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateEndpoints(t *testing.T) {
	t.Parallel()
	cfg, err := Parse([]byte(`
server:
  listen: 127.0.0.1:0
upstreams:
  - name: a
    http: {url: "http://a.invalid/mcp"}
endpoints:
  - path: /mcp/support
    tools: ["a__*"]
    when: 'tool.annotations.?readOnlyHint.orValue(false)'
    instructions: fine
  - path: /mcp
    tools: ["*"]
  - path: /mcp/support
    tools: ["["]
  - path: /admin/v1/x
    when: 'principal.subject == "x"'
  - path: mcp/x/
    when: '"x"'
  - path: /metrics
    tools: ["*"]
  - path: /.well-known/oauth-protected-resource/x
    tools: ["*"]
  - path: /mcp/ops
    required_scopes: [ops]
`))
	require.Error(t, err)
	assert.Nil(t, cfg)
	got := Problems(err)
	want := []string{
		`endpoints[1].path: "/mcp" is server.mcp_path`,
		`endpoints[2].path: "/mcp/support" is already the path of endpoints[0]`,
		`endpoints[2].tools[0]: "[" is not a glob: syntax error in pattern`,
		`endpoints[3].path: "/admin/v1/x" clashes with /admin/`,
		`endpoints[3].when: 1:1: undeclared reference to 'principal'`,
		`endpoints[4].path: "mcp/x/" must be '/' and segments`,
		`endpoints[4].when: must be of type bool, not string`,
		`endpoints[5].path: "/metrics" clashes with /metrics`,
		`endpoints[6].path: "/.well-known/oauth-protected-resource/x" clashes with /.well-known/`,
		`endpoints[7]: tools or when is required`,
		`endpoints[7].required_scopes: needs auth`,
	}
	require.Len(t, got, len(want), "%q", got)
	for i := range want {
		assert.Contains(t, got[i], want[i])
	}
}
