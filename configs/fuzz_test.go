package configs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzParse feeds arbitrary text to Parse: it must never panic, and its two
// outcomes must be consistent: a Config that validates, or no Config and at
// least one problem.
func FuzzParse(f *testing.F) {
	f.Setenv("CUSTOMERS_URL", "http://127.0.0.1:1/mcp")
	f.Setenv("ORDERS_URL", "http://127.0.0.1:2/mcp")
	f.Setenv("DEMO_UPSTREAM_BIN", "/bin/true")

	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(f, err)
	files = append(files, "example.yaml", "demo.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		require.NoError(f, err)
		f.Add(data)
	}
	for _, seed := range []string{
		"",
		minimal,
		"[]",
		"42",
		"~",
		"server: 5",
		"server: {listen: [a]}",
		"upstreams: {}",
		"upstreams: [~, 1, [], {}]",
		"upstreams: [{name: a, http: ~, stdio: {}, sse: []}]",
		"upstreams: [{name: a, http: {url: '${X'}}]",
		"upstreams: [{name: a, http: {url: '$${X}${}'}}]",
		"upstreams: [{name: a, http: {headers: {1: {env: X}, true: {value: y}}}}]",
		"upstreams: [{name: a, stdio: {command: x, env: {A: {file: ''}, a: {}}}}]",
		"upstreams: [{name: a, prefix: ~, protocol_version: 2025-06-18T10:00:00Z}]",
		"a: &a {b: *a}",
		"a: &a [1]\nb: [*a, *a, *a]",
		"server: {listen: !!binary aGVsbG8=}",
		"server.listen: x\nserver: {cors: ~}",
		"catalog: {name_pattern: '(', separator: ''}",
		"log: {level: {a: b}}\nlog2: []",
		"? [a]\n: b",
		"---\na: 1\n---\nb: 2",
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data)
		if err != nil {
			assert.Nil(t, cfg)
			assert.NotEmpty(t, Problems(err))
			return
		}
		require.NotNil(t, cfg)
		assert.NoError(t, cfg.Validate())
	})
}
