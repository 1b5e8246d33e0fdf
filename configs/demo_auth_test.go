package configs

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDemoAuthFile(t *testing.T) {
	data, err := os.ReadFile("demo-auth.yaml")
	require.NoError(t, err)

	t.Setenv("MCPGW_RESOURCE", "http://127.0.0.1:9190/mcp")
	t.Setenv("ISSUER_URL", "http://127.0.0.1:40003")
	t.Setenv("CUSTOMERS_URL", "http://127.0.0.1:40001/mcp")
	t.Setenv("ORDERS_URL", "http://127.0.0.1:40002/mcp")
	t.Setenv("DEMO_UPSTREAM_BIN", "/tmp/demo-upstream")

	cfg, err := Parse(data)
	require.NoError(t, err, "%v", Problems(err))
	require.NotNil(t, cfg.Auth)
	assert.Equal(t, "http://127.0.0.1:9190/mcp", cfg.Auth.Resource)
	require.Len(t, cfg.Auth.Issuers, 1)
	assert.Equal(t, "http://127.0.0.1:40003", cfg.Auth.Issuers[0].Issuer)
	require.Len(t, cfg.Upstreams, 3)
	assert.Equal(t, []string{"orders:write"}, cfg.Upstreams[1].Scopes.For("cancel_order"))
	assert.True(t, cfg.Upstreams[1].IdentityAssertion.Enabled)
}
