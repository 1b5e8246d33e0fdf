package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
