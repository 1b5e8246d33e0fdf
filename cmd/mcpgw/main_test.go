package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidateReportsEveryProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`
server:
  listen: "not an address"
upstreams:
  - name: orders
    http: {url: "ftp://orders.internal/mcp"}
  - name: orders
    stdio: {command: ./payments}
`), 0o600))
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", path}, &stdout, &stderr)
	assert.Equal(t, 1, code)
	out := stderr.String()
	for _, want := range []string{
		"server.listen",
		"upstreams[0].http.url",
		"upstreams[1].name",
	} {
		assert.Contains(t, out, want)
	}
	assert.Contains(t, out, "3 problem(s)", out)
}

// TestValidateAcceptsShippedExamples: every shipped example validates in
// a fresh shell, with none of the variables it references set.
func TestValidateAcceptsShippedExamples(t *testing.T) {
	for _, k := range []string{"CUSTOMERS_URL", "ORDERS_URL", "DEMO_UPSTREAM_BIN", "PAYMENTS_TOKEN", "MCPGW_SERVER_LISTEN"} {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
	files, err := filepath.Glob("../../configs/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		code, out, errOut := cli(t, "validate", f)
		assert.Equal(t, 0, code, "%s: %s", f, errOut)
		assert.True(t, strings.HasPrefix(strings.TrimSpace(out), f+": ok"), out)
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &stdout, &stdout))
	assert.Contains(t, stdout.String(), "mcpgw dev")
}
