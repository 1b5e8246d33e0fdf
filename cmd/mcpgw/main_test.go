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

func TestValidateAcceptsShippedExamples(t *testing.T) {
	t.Setenv("CUSTOMERS_URL", "http://127.0.0.1:1/mcp")
	t.Setenv("ORDERS_URL", "http://127.0.0.1:2/mcp")
	t.Setenv("DEMO_UPSTREAM_BIN", "/bin/true")
	var stdout, stderr bytes.Buffer
	code := run([]string{"validate", "../../configs/demo.yaml"}, &stdout, &stderr)
	assert.Equal(t, 0, code, stderr.String())
	assert.True(t, strings.HasSuffix(strings.TrimSpace(stdout.String()), "ok"))
}

func TestRequireLoopback(t *testing.T) {
	tests := []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:9190", true},
		{"[::1]:9190", true},
		{"localhost:0", true},
		{"0.0.0.0:9190", false},
		{":9190", false},
		{"10.1.2.3:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			err := requireLoopback(tt.addr)
			assert.Equal(t, tt.ok, err == nil, "%v", err)
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	require.Equal(t, 0, run([]string{"version"}, &stdout, &stdout))
	assert.Contains(t, stdout.String(), "mcpgw dev")
}
