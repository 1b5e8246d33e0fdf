package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
)

// TestValidateBrokenFile: one file with one of each mistake: every
// problem in one run, with its path and line; suggestions for the
// unknown keys and the enum value; --resolve adds the unset variable, the
// missing secret file and the unreachable upstreams.
func TestValidateBrokenFile(t *testing.T) {
	t.Setenv("SEARCH_URL", "")
	require.NoError(t, os.Unsetenv("SEARCH_URL"))
	const file = "testdata/broken.yaml"
	code, out, errOut := cli(t, "validate", file, "-o", "json")
	require.Equal(t, 1, code, errOut)
	var rep validateReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	offline := map[string]string{}
	for _, p := range rep.Problems {
		assert.Positive(t, p.Line, "%s has a line", p.Path)
		offline[p.Path] = fmt.Sprintf("line %d: %s", p.Line, p.Message)
	}
	p61 := strings.Repeat("p", 61)
	assert.Equal(t, map[string]string{
		"server.listen":          `line 3: "0.0.0.0:9190": without auth, mcpgw binds only loopback addresses (127.0.0.1, ::1, localhost); configure auth to listen on other interfaces`,
		"server.listn":           `line 4: unknown key; did you mean "listen"?`,
		"server.allowed_origins": `line 5: must be a list, not a mapping`,
		"upstreams[0].prefix":    `line 8: "` + p61 + `" (61 characters) joined with separator "__" leaves room for tool names of only 1 characters under catalog.name_pattern (at least 16 needed): tools with longer names would be dropped`,
		"upstreams[1].timout":    `line 16: unknown key; did you mean "timeout"?`,
		"upstreams[2].prefix":    `line 18: "" is also the prefix of upstream "search" (upstreams[1]): both expose bare names, and the first would silently win every name clash; give one of them a prefix`,
		"log.level":              `line 22: "wran" must be one of debug, info, warn, error; did you mean "warn"?`,
		"log.formt":              `line 23: unknown key; did you mean "format"?`,
	}, offline)

	code, out, errOut = cli(t, "validate", "--resolve", file, "-o", "json")
	require.Equal(t, 1, code, errOut)
	rep = validateReport{}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	resolved := map[string]string{}
	for _, p := range rep.Problems {
		if _, ok := offline[p.Path]; !ok {
			resolved[p.Path] = p.Message
		}
	}
	assert.Len(t, rep.Problems, len(offline)+len(resolved), "the offline problems are all still there")
	assert.Contains(t, resolved["upstreams[0].http.headers[Authorization]"], "reading secret file")
	assert.Contains(t, resolved["upstreams[1].http.url"], "environment variable SEARCH_URL is not set")
	assert.Contains(t, resolved["upstreams[0].http.url"], `upstream "orders" is not reachable`)
	assert.Contains(t, resolved["upstreams[2].stdio.command"], "/nonexistent/lookup-server")
	assert.Len(t, resolved, 4, "%v", resolved)

	// Text goes to stderr with paths and lines.
	code, _, errOut = cli(t, "validate", file)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "8 problem(s)")
	assert.Contains(t, errOut, "line 4: server.listn: unknown key")
}

// TestServeStartupChecksAreValidated enumerates what makes serve refuse
// to start and proves validate reports each. serve starts with
// configs.Load (the same parse as validate --resolve, whose rules are
// configs.Validate, which validate runs at both levels), then
// gateway.New, which calls Validate again and then builds what needs
// I/O. Each case is one of those start-up failures: the first group are
// rules of Validate (serve refused them before this issue was fixed in
// cmd or not at all), the second needs --resolve (files, network).
func TestServeStartupChecksAreValidated(t *testing.T) {
	dir := t.TempDir()
	up := "  - {name: orders, http: {url: \"http://127.0.0.1:1/mcp\"}}\n"
	tests := []struct {
		name    string
		yaml    string
		resolve bool // validate needs --resolve to see it
		path    string
	}{
		{"non-loopback listen without auth", "server: {listen: \"0.0.0.0:9190\"}\nupstreams:\n" + up, false, "server.listen"},
		{"prefix leaving room for 1 character", "upstreams:\n  - {name: orders, prefix: " + strings.Repeat("p", 61) + ", http: {url: \"http://127.0.0.1:1/mcp\"}}\n", false, "upstreams[0].prefix"},
		{"two empty prefixes", "upstreams:\n  - {name: a, prefix: \"\", http: {url: \"http://127.0.0.1:1/mcp\"}}\n  - {name: b, prefix: \"\", http: {url: \"http://127.0.0.1:2/mcp\"}}\n", false, "upstreams[1].prefix"},
		{"name pattern", "catalog: {name_pattern: \"(\"}\nupstreams:\n" + up, false, "catalog.name_pattern"},
		{"session key", "server: {session_key: {value: short}}\nupstreams:\n" + up, false, "server.session_key"},
		{"mapping for a list", "server: {allowed_origins: {a: b}}\nupstreams:\n" + up, false, "server.allowed_origins"},
		{"unknown key", "upstreams:\n" + up + "logs: {}\n", false, "logs"},
		{"audit file in a missing directory", "upstreams:\n" + up + "audit: {sinks: [{type: file, path: " + filepath.Join(dir, "missing", "audit.jsonl") + "}]}\n", true, "audit.sinks[0].path"},
		{"state file in a missing directory", "upstreams:\n" + up + "policy: {kill_switches: {state_file: " + filepath.Join(dir, "missing", "state.json") + "}}\n", true, "policy.kill_switches.state_file"},
		{"secret file missing", "upstreams:\n  - {name: orders, http: {url: \"http://127.0.0.1:1/mcp\", headers: {X-Key: {file: /nonexistent/key}}}}\n", true, "upstreams[0].http.headers[X-Key]"},
		{"unset variable", "upstreams:\n  - {name: orders, http: {url: \"${MCPGW_TEST_UNSET_URL}\"}}\n", true, "upstreams[0].http.url"},
		{"lock file missing under enforce", "upstreams:\n" + up + "pinning: {mode: enforce, lock_file: " + filepath.Join(dir, "none.lock") + "}\n", true, "pinning.lock_file"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			require.NoError(t, os.WriteFile(file, []byte(tt.yaml), 0o600))
			// serve's start-up: Load, then gateway.New.
			cfg, err := configs.Load(file)
			if err == nil {
				var g *gateway.Gateway
				g, err = gateway.New(cfg, nil)
				if err == nil {
					g.Close()
				}
			}
			require.Error(t, err, "serve refuses to start")

			args := []string{"validate", file, "-o", "json"}
			if tt.resolve {
				args = append(args, "--resolve")
			}
			code, out, errOut := cli(t, args...)
			require.Equal(t, 1, code, "validate reports it: %s %s", out, errOut)
			var rep validateReport
			require.NoError(t, json.Unmarshal([]byte(out), &rep))
			var paths []string
			for _, p := range rep.Problems {
				paths = append(paths, p.Path)
			}
			assert.Contains(t, paths, tt.path)
		})
	}
}
