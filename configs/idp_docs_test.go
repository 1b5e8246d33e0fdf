package configs

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIdentityProviderDocsValidate: every mcpgw configuration in
// docs/identity-providers.md validates offline.
func TestIdentityProviderDocsValidate(t *testing.T) {
	data, err := os.ReadFile("../docs/identity-providers.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllSubmatch(data, -1)
	require.Len(t, blocks, 3, "Dex, Keycloak, the development issuer")
	for _, b := range blocks {
		_, problems := CheckBytes(b[1], CheckOptions{})
		assert.Empty(t, problems, "%s", b[1])
	}
}
