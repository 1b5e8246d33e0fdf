package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// TestEveryVerbAnswersHelp: --help, -h and -help print the verb's help
// and exit 0, and never run it (validate --help used to open a file
// named --help).
func TestEveryVerbAnswersHelp(t *testing.T) {
	root := newRoot(nil, nil)
	var verbs [][]string
	for _, c := range root.Commands() {
		verbs = append(verbs, []string{c.Name()})
		for _, sub := range c.Commands() {
			verbs = append(verbs, []string{c.Name(), sub.Name()})
		}
	}
	// Cobra adds completion at Execute.
	verbs = append(verbs, []string{"completion"}, []string{"completion", "bash"}, []string{"completion", "zsh"}, []string{"completion", "fish"})
	require.GreaterOrEqual(t, len(verbs), 18)
	for _, v := range verbs {
		for _, flag := range []string{"--help", "-h", "-help"} {
			code, out, errOut := cli(t, append(v, flag)...)
			assert.Equal(t, 0, code, "%v %s: %s", v, flag, errOut)
			assert.Contains(t, out, "Usage:", "%v %s", v, flag)
		}
	}
}

// TestCompletionLoadsInBash: the bash completion script loads.
func TestCompletionLoadsInBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := cli(t, "completion", shell)
		require.Equal(t, 0, code, errOut)
		require.NotEmpty(t, out)
		if shell == "bash" {
			cmd := exec.CommandContext(t.Context(), bash, "-c", `source /dev/stdin && complete -p mcpgw`)
			cmd.Stdin = strings.NewReader(out)
			got, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", got)
			assert.Contains(t, string(got), "mcpgw")
		}
	}
}

// TestSingleDashLongFlags: the spellings of the docs, the chart and the
// scripts keep working.
func TestSingleDashLongFlags(t *testing.T) {
	root := newRoot(nil, nil)
	assert.Equal(t, []string{"serve", "--config", "/etc/mcpgw/mcpgw.yaml", "--watch=false"},
		normalizeArgs(root, []string{"serve", "-config", "/etc/mcpgw/mcpgw.yaml", "-watch=false"}))
	assert.Equal(t, []string{"kill", "x", "--reason", "r", "--addr", "http://h", "-o", "json"},
		normalizeArgs(root, []string{"kill", "x", "--reason", "r", "-addr", "http://h", "-o", "json"}))
	assert.Equal(t, []string{"kill", "--", "-addr"}, normalizeArgs(root, []string{"kill", "--", "-addr"}))
	assert.Equal(t, []string{"--version"}, normalizeArgs(root, []string{"-version"}))
}

// TestListingVerbsOutput: -o json and -o yaml parse for every listing verb
// against a running gateway, and text and wide print tables.
func TestListingVerbsOutput(t *testing.T) {
	p := startPolicyGateway(t)
	t.Setenv("MCPGW_ADDR", p.base)
	code, _, errOut := cli(t, "drain", "orders", "--reason", "deploy")
	require.Equal(t, 0, code, errOut)
	for _, verb := range [][]string{{"upstreams"}, {"catalog"}, {"catalog", "--as-scopes", "a,b"}, {"drains"}, {"history"}, {"switches"}, {"version"}} {
		code, js, errOut := cli(t, append(verb, "-o", "json")...)
		require.Equal(t, 0, code, "%v: %s", verb, errOut)
		var fromJSON, fromYAML any
		require.NoError(t, json.Unmarshal([]byte(js), &fromJSON), "%v: %s", verb, js)
		code, ym, errOut := cli(t, append(verb, "-o", "yaml")...)
		require.Equal(t, 0, code, "%v: %s", verb, errOut)
		require.NoError(t, yaml.Unmarshal([]byte(ym), &fromYAML), "%v: %s", verb, ym)
		assert.NotEmpty(t, fromYAML)
		for _, o := range []string{"text", "wide"} {
			code, out, errOut := cli(t, append(verb, "-o", o)...)
			require.Equal(t, 0, code, "%v -o %s: %s", verb, o, errOut)
			assert.NotEmpty(t, out)
		}
		code, _, errOut = cli(t, append(verb, "-o", "xml")...)
		assert.Equal(t, 2, code, "%v -o xml: %s", verb, errOut)
	}
	_, out, _ := cli(t, "upstreams", "-o", "wide")
	assert.Contains(t, out, "DROPPED")
	assert.Contains(t, out, "deploy", "the drain reason")
	_, out, _ = cli(t, "catalog", "--as-scopes", "", "-o", "json")
	assert.Contains(t, out, `"as": {`)

	// kill -o json without a TTL has no zero expires; undrain keeps its
	// reason.
	code, out, errOut = cli(t, "kill", "orders__get_order", "--reason", "r", "-o", "json")
	require.Equal(t, 0, code, errOut)
	assert.NotContains(t, out, "expires")
	code, _, errOut = cli(t, "undrain", "orders", "--reason", "deploy done")
	require.Equal(t, 0, code, errOut)
	_, out, _ = cli(t, "history", "-o", "json")
	assert.Contains(t, out, "deploy done")
}

// TestAdminAuthErrors: 401 and 403 say why and which scope is missing.
func TestAdminAuthErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") == "" {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="http://x/.well-known/oauth-protected-resource"`)
			http.Error(w, `{"error":"missing bearer token"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_scope", error_description="missing scope mcpgw:admin", scope="mcpgw:admin"`)
		w.WriteHeader(http.StatusForbidden)
	}))
	t.Cleanup(srv.Close)
	t.Setenv("MCPGW_TOKEN", "")
	code, _, errOut := cli(t, "switches", "-addr", srv.URL)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "HTTP 401")
	assert.Contains(t, errOut, "MCPGW_TOKEN")
	code, _, errOut = cli(t, "upstreams", "--addr", srv.URL, "--token", "t")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "HTTP 403 insufficient_scope: missing scope mcpgw:admin")
	assert.Contains(t, errOut, `the token needs scope "mcpgw:admin"`)
	t.Setenv("MCPGW_TOKEN", "from-env")
	code, _, errOut = cli(t, "drains", "--addr", srv.URL)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "HTTP 403", "the token came from MCPGW_TOKEN")
}

// TestConfigSchema: config schema prints the schema the examples name.
func TestConfigSchema(t *testing.T) {
	code, out, errOut := cli(t, "config", "schema")
	require.Equal(t, 0, code, errOut)
	want, err := os.ReadFile("../../docs/mcpgw.schema.json")
	require.NoError(t, err)
	assert.Equal(t, string(want), out)
}
