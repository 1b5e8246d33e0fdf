// Package deps_test checks the import graph of mcpgw against the package
// layout in ARCHITECTURE.md. The tables below are that layout, as code: who
// may import whom inside the module, and which third-party code stays in
// which room. A change of design changes these tables in the same commit.
//
// Only the direct imports of non-test files are checked (the Imports field
// of go list), for the build configuration the test runs under. Tests
// (_test.go files) and the packages under test/ may import anything, except
// a main package.
package deps_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// module is the module path; rooms and rules name packages relative to it.
const module = "github.com/mcpgw/mcpgw"

// room is one row of the package table: a package and its subpackages,
// except those a longer room claims.
type room struct {
	// path is relative to the module root.
	path string
	// may lists the rooms this room's packages may import. Empty means
	// nothing inside the module.
	may []string
	// forbid lists further imports, by go list pattern ("net/http/..."
	// matches net/http and below), that this room must not use.
	forbid []string
	// stdlib marks a room that imports the standard library only (and,
	// per may, nothing internal).
	stdlib bool
	// shared marks a stdlib-only leaf under internal/ that every room may
	// import: the protocol's facts, the one raw-JSON scanner.
	shared bool
	// helper marks a test-helper package (like net/http/httptest): it may
	// import testing, and no production package may import it.
	helper bool
	// test marks test code: exempt from every rule but "nothing imports a
	// main package".
	test bool
	// why says what the room is for, for the failure message.
	why string
}

// below lists, for brevity, what sits under the gateway in the DAG
// cmd → gateway → {upstream, policy, authn, gateway/catalog} → telemetry →
// configs.
var below = []string{"gateway/catalog", "upstream", "policy", "authn", "telemetry", "telemetry/audit", "configs"}

// rooms is the package table of ARCHITECTURE.md.
var rooms = []room{
	{
		path: "cmd",
		may:  append([]string{"gateway"}, below...),
		why:  "flags and subcommands; it parses, calls and exits",
	},
	{
		path: "gateway",
		may:  append([]string{"gateway"}, below...),
		why:  "the composition root",
	},
	{
		path: "gateway/catalog",
		why:  "the catalog is pure and imports nothing internal",
	},
	{
		path: "upstream",
		may:  []string{"upstream", "upstream/internal/h1", "telemetry", "telemetry/audit", "configs"},
		why:  "upstream never sees the downstream token, so never authn; policy is applied before it",
	},
	{
		path:   "upstream/internal/h1",
		stdlib: true,
		why:    "the HTTP/1.1 client of plain-http upstreams is a leaf on the standard library",
	},
	{
		path:   "upstream/upstreamtest",
		may:    []string{"upstream", "telemetry", "telemetry/audit", "configs"},
		helper: true,
		why:    "fake MCP servers for tests of upstream",
	},
	{
		path:   "policy",
		may:    []string{"policy", "authn", "telemetry", "telemetry/audit", "configs", "internal/backoff"},
		forbid: []string{"net/http/..."},
		why:    "policy makes pure decisions on an authn.Principal; gateway maps them to HTTP",
	},
	{
		path: "authn",
		may:  []string{"authn", "telemetry", "telemetry/audit", "configs", "internal/backoff"},
		why:  "authn and upstream are siblings; policy depends on authn, not the reverse",
	},
	{
		path:   "authn/authntest",
		may:    []string{"authn", "telemetry", "telemetry/audit", "configs"},
		helper: true,
		why:    "an in-process OIDC issuer for tests",
	},
	{
		path: "telemetry",
		may:  []string{"telemetry", "telemetry/audit", "configs"},
		why:  "telemetry sits below every room that logs, traces or audits",
	},
	{
		path: "telemetry/audit",
		why:  "the audit event and its sinks import nothing internal",
	},
	{
		path: "configs",
		why:  "the schema is the bottom of the graph and imports nothing internal",
	},
	{
		path: "test",
		test: true,
		why:  "black-box tests and shared test servers",
	},
	{
		path: "bench",
		test: true,
		why:  "the benchmark: fast upstream, bare proxy, load generator, runner; black-box over HTTP",
	},
	{
		path: "internal/tools",
		may:  []string{"configs"},
		why:  "go generate tools: configdoc writes docs/configuration.md from the configs schema",
	},
	{
		path:   "internal/mcpwire",
		stdlib: true,
		shared: true,
		why:    "the protocol's facts (versions, methods, headers, error codes), defined once for every package",
	},
	{
		path:   "internal/backoff",
		stdlib: true,
		shared: true,
		why:    "the one retry backoff, for every room that retries",
	},
	{
		path:   "internal/redistest",
		helper: true,
		why:    "starts a real redis-server for tests",
	},
	{
		path:   "internal/testio",
		stdlib: true,
		helper: true,
		why:    "I/O helpers for tests (a buffer read while a gateway writes)",
	},
	{
		path:   "internal/rawjson",
		stdlib: true,
		shared: true,
		why:    "the one raw-JSON scanner and string encoder, shared by every room",
	},
}

// productionForbids applies to every room but test rooms and helpers.
var productionForbids = []string{"testing/...", "net/http/httptest", module + "/test/...", module + "/internal/redistest", module + "/internal/testio", module + "/bench/..."}

// confinement keeps an import inside some rooms.
type confinement struct {
	// imports is a go list pattern of import paths.
	imports string
	// only lists the rooms that may import it; test rooms may too unless
	// notEvenTests.
	only []string
	// notEvenTests applies the rule to test rooms as well.
	notEvenTests bool
	why          string
}

// confinements keep packages, internal and third-party, in their rooms.
var confinements = []confinement{
	{imports: module + "/gateway", only: []string{"cmd"}, why: "only cmd and tests import the composition root"},
	{imports: module + "/cmd/...", notEvenTests: true, why: "nothing imports a main package"},
	{imports: module + "/authn/authntest", why: "a test helper; production code must not import it"},
	{imports: module + "/upstream/upstreamtest", why: "a test helper; production code must not import it"},
	{imports: "github.com/spf13/viper/...", only: []string{"configs"}, why: "only configs talks to viper; others receive typed structs"},
	{imports: "github.com/coreos/go-oidc/...", only: []string{"authn"}, why: "token verification lives in authn"},
	{imports: "github.com/sony/gobreaker/...", only: []string{"upstream"}, why: "breakers are per upstream, owned by upstream"},
	{imports: "github.com/mark3labs/mcp-go/client/...", only: []string{"upstream"}, why: "only upstream dials MCP servers"},
	{imports: "github.com/mark3labs/mcp-go/server/...", only: []string{"gateway", "upstream/upstreamtest"}, why: "the MCP server side is assembled in gateway"},
	{imports: "github.com/gorilla/mux/...", only: []string{"gateway"}, why: "routing lives in gateway"},
	{imports: "go.opentelemetry.io/otel/sdk/...", only: []string{"telemetry", "telemetry/audit"}, why: "use the OTel API; providers are built in telemetry"},
	{imports: "go.opentelemetry.io/otel/exporters/...", only: []string{"telemetry", "telemetry/audit"}, why: "exporters are built in telemetry"},
}

// pkg is a package and its direct non-test imports (full import paths).
type pkg struct {
	ImportPath string
	Imports    []string
	GoFiles    []string
	CgoFiles   []string
	Error      *struct{ Err string }
}

func TestImportGraph(t *testing.T) {
	t.Parallel()

	pkgs := listPackages(t)
	require.NotEmpty(t, pkgs)
	for _, v := range check(pkgs) {
		t.Error(v)
	}
}

// listPackages runs go list on every package of the module.
func listPackages(t *testing.T) []pkg {
	t.Helper()

	gomod, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	require.NoError(t, err, "go env GOMOD")
	root := filepath.Dir(strings.TrimSpace(string(gomod)))

	// -e lists a package that does not build (another test reports that)
	// with the imports go list could read.
	cmd := exec.CommandContext(t.Context(), "go", "list", "-e", "-json=ImportPath,Imports,GoFiles,CgoFiles,Error", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())

	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p pkg
		require.NoError(t, dec.Decode(&p))
		if p.Error != nil {
			t.Logf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

// check returns one message per broken rule.
func check(pkgs []pkg) []string {
	var violations []string
	for _, p := range pkgs {
		rel, ok := relative(p.ImportPath)
		if !ok {
			violations = append(violations, fmt.Sprintf("%s is outside module %s", p.ImportPath, module))
			continue
		}
		if len(p.GoFiles)+len(p.CgoFiles) == 0 && len(p.Imports) == 0 {
			continue // Only tests: nothing to check.
		}
		r := roomOf(rel)
		if r == nil {
			violations = append(violations, fmt.Sprintf("%s is in no room of the architecture; add it to the rooms table in test/deps", rel))
			continue
		}
		for _, imp := range p.Imports {
			violations = append(violations, checkImport(rel, r, imp)...)
		}
	}
	return violations
}

// checkImport applies the rules to one import of the package rel in room
// r and returns what they report; the first kind of rule that fires wins,
// so one bad import is one message.
func checkImport(rel string, r *room, imp string) []string {
	impRel, internal := relative(imp)
	name := imp
	if internal {
		name = impRel
	}

	var out []string
	for _, c := range confinements {
		if !match(c.imports, imp) || (r.test && !c.notEvenTests) || slices.Contains(c.only, r.path) {
			continue
		}
		who := "no package may"
		if len(c.only) > 0 {
			who = "only " + strings.Join(c.only, ", ") + " may"
		}
		out = append(out, fmt.Sprintf("%s imports %s: %s (%s)", rel, name, who, c.why))
	}
	if r.test || len(out) > 0 {
		return out
	}

	if !r.helper {
		for _, f := range productionForbids {
			if match(f, imp) {
				out = append(out, fmt.Sprintf("%s imports %s: production code never imports test code", rel, name))
			}
		}
	}
	for _, f := range r.forbid {
		if match(f, imp) {
			out = append(out, fmt.Sprintf("%s imports %s: forbidden in %s (%s)", rel, name, r.path, r.why))
		}
	}
	if r.stdlib && !internal && !standard(imp) {
		out = append(out, fmt.Sprintf("%s imports %s: %s imports the standard library only (%s)", rel, name, r.path, r.why))
	}
	if !internal || len(out) > 0 {
		return out
	}

	to := roomOf(impRel)
	if to == nil || to.shared || slices.Contains(r.may, to.path) {
		return nil // A package in no room is reported on its own.
	}
	allowed := "nothing internal"
	if len(r.may) > 0 {
		allowed = "only " + strings.Join(r.may, ", ")
	}
	return []string{fmt.Sprintf("%s imports %s: %s may import %s (%s)", rel, name, r.path, allowed, r.why)}
}

// standard reports whether an import path is in the standard library: its
// first element has no dot, unlike a module path.
func standard(importPath string) bool {
	first, _, _ := strings.Cut(importPath, "/")
	return !strings.Contains(first, ".")
}

// relative returns the path of an import inside the module, "" for the root.
func relative(importPath string) (string, bool) {
	if importPath == module {
		return "", true
	}
	rel, ok := strings.CutPrefix(importPath, module+"/")
	return rel, ok
}

// roomOf returns the room with the longest path containing rel.
func roomOf(rel string) *room {
	var best *room
	for i := range rooms {
		r := &rooms[i]
		if match(r.path+"/...", rel) && (best == nil || len(r.path) > len(best.path)) {
			best = r
		}
	}
	return best
}

// match reports whether path matches a go list pattern: an exact path, or
// p/... for p and everything below it.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

// TestTables keeps the tables consistent: every room they name exists.
func TestTables(t *testing.T) {
	t.Parallel()

	names := make(map[string]bool, len(rooms))
	for _, r := range rooms {
		assert.False(t, names[r.path], "room %s is listed twice", r.path)
		names[r.path] = true
		assert.NotEmpty(t, r.why, "room %s says what it is for", r.path)
		if r.shared {
			assert.True(t, r.stdlib, "shared leaf %s imports only the standard library", r.path)
			assert.Empty(t, r.may, "shared leaf %s imports nothing internal", r.path)
			assert.False(t, r.helper || r.test, "shared leaf %s is production code", r.path)
		}
	}
	for _, r := range rooms {
		for _, m := range r.may {
			assert.True(t, names[m], "room %s may import unknown room %s", r.path, m)
		}
	}
	for _, c := range confinements {
		for _, o := range c.only {
			assert.True(t, names[o], "confinement of %s names unknown room %s", c.imports, o)
		}
		assert.NotEmpty(t, c.why, "confinement of %s says why", c.imports)
	}
}

// TestCheck proves the checker reports violations, so TestImportGraph can
// fail.
func TestCheck(t *testing.T) {
	t.Parallel()

	m := func(rel string) string { return module + "/" + rel }
	tests := []struct {
		name    string
		pkg     string
		imports []string
		want    []string
	}{
		{
			name:    "the DAG downwards",
			pkg:     "gateway",
			imports: []string{m("upstream"), m("policy"), m("authn"), m("gateway/catalog"), m("telemetry"), m("configs"), "net/http", "github.com/gorilla/mux", "github.com/mark3labs/mcp-go/server"},
		},
		{
			name:    "cmd composes",
			pkg:     "cmd/mcpgw",
			imports: []string{m("gateway"), m("configs"), m("telemetry")},
		},
		{
			name:    "upstream never imports authn",
			pkg:     "upstream",
			imports: []string{m("authn"), m("configs"), "github.com/sony/gobreaker/v2", "github.com/mark3labs/mcp-go/client/transport"},
			want: []string{
				"upstream imports authn: upstream may import only upstream, upstream/internal/h1, telemetry, telemetry/audit, configs (upstream never sees the downstream token, so never authn; policy is applied before it)",
			},
		},
		{
			name:    "authn never imports upstream",
			pkg:     "authn",
			imports: []string{m("upstream"), "github.com/coreos/go-oidc/v3/oidc"},
			want: []string{
				"authn imports upstream: authn may import only authn, telemetry, telemetry/audit, configs, internal/backoff (authn and upstream are siblings; policy depends on authn, not the reverse)",
			},
		},
		{
			name:    "policy sees authn but not HTTP",
			pkg:     "policy",
			imports: []string{m("authn"), "net/http", "net/http/httptrace"},
			want: []string{
				"policy imports net/http: forbidden in policy (policy makes pure decisions on an authn.Principal; gateway maps them to HTTP)",
				"policy imports net/http/httptrace: forbidden in policy (policy makes pure decisions on an authn.Principal; gateway maps them to HTTP)",
			},
		},
		{
			name:    "leaves import nothing internal",
			pkg:     "gateway/catalog",
			imports: []string{m("configs"), "encoding/json"},
			want: []string{
				"gateway/catalog imports configs: gateway/catalog may import nothing internal (the catalog is pure and imports nothing internal)",
			},
		},
		{
			name:    "catalog does not import its parent",
			pkg:     "gateway/catalog",
			imports: []string{m("gateway")},
			want:    []string{"gateway/catalog imports gateway: only cmd may (only cmd and tests import the composition root)"},
		},
		{
			name:    "a gateway subpackage does not import the root",
			pkg:     "gateway/admin",
			imports: []string{m("gateway"), m("gateway/catalog")},
			want:    []string{"gateway/admin imports gateway: only cmd may (only cmd and tests import the composition root)"},
		},
		{
			name:    "audit imports nothing internal",
			pkg:     "telemetry/audit",
			imports: []string{m("telemetry")},
			want: []string{
				"telemetry/audit imports telemetry: telemetry/audit may import nothing internal (the audit event and its sinks import nothing internal)",
			},
		},
		{
			name:    "telemetry sits below authn",
			pkg:     "telemetry",
			imports: []string{m("authn"), m("telemetry/audit"), "go.opentelemetry.io/otel/sdk/trace", "go.opentelemetry.io/otel/exporters/prometheus"},
			want: []string{
				"telemetry imports authn: telemetry may import only telemetry, telemetry/audit, configs (telemetry sits below every room that logs, traces or audits)",
			},
		},
		{
			name:    "configs imports viper, nothing internal",
			pkg:     "configs",
			imports: []string{"github.com/spf13/viper", m("telemetry")},
			want: []string{
				"configs imports telemetry: configs may import nothing internal (the schema is the bottom of the graph and imports nothing internal)",
			},
		},
		{
			name:    "third-party code stays in its room",
			pkg:     "policy",
			imports: []string{"github.com/spf13/viper", "github.com/gorilla/mux", "go.opentelemetry.io/otel/sdk/metric", "go.opentelemetry.io/otel"},
			want: []string{
				"policy imports github.com/spf13/viper: only configs may (only configs talks to viper; others receive typed structs)",
				"policy imports github.com/gorilla/mux: only gateway may (routing lives in gateway)",
				"policy imports go.opentelemetry.io/otel/sdk/metric: only telemetry, telemetry/audit may (use the OTel API; providers are built in telemetry)",
			},
		},
		{
			name:    "the MCP client only in upstream",
			pkg:     "gateway",
			imports: []string{"github.com/mark3labs/mcp-go/client", "github.com/mark3labs/mcp-go/mcp"},
			want:    []string{"gateway imports github.com/mark3labs/mcp-go/client: only upstream may (only upstream dials MCP servers)"},
		},
		{
			name:    "a shared internal leaf: every room imports it, it imports the standard library only",
			pkg:     "internal/mcpwire",
			imports: []string{"strconv", "golang.org/x/exp/slices", m("configs")},
			want: []string{
				"internal/mcpwire imports golang.org/x/exp/slices: internal/mcpwire imports the standard library only (the protocol's facts (versions, methods, headers, error codes), defined once for every package)",
				"internal/mcpwire imports configs: internal/mcpwire may import nothing internal (the protocol's facts (versions, methods, headers, error codes), defined once for every package)",
			},
		},
		{
			name:    "every room may import a shared leaf",
			pkg:     "configs",
			imports: []string{m("internal/mcpwire")},
		},
		{
			name:    "a standard-library leaf",
			pkg:     "upstream/internal/h1",
			imports: []string{"net/http", "net/http/httputil", "golang.org/x/net/http/httpguts", m("upstream")},
			want: []string{
				"upstream/internal/h1 imports golang.org/x/net/http/httpguts: upstream/internal/h1 imports the standard library only (the HTTP/1.1 client of plain-http upstreams is a leaf on the standard library)",
				"upstream/internal/h1 imports upstream: upstream/internal/h1 may import nothing internal (the HTTP/1.1 client of plain-http upstreams is a leaf on the standard library)",
			},
		},
		{
			name:    "production never imports test code",
			pkg:     "upstream",
			imports: []string{"testing", "net/http/httptest", m("test/upstreams"), m("upstream/upstreamtest")},
			want: []string{
				"upstream imports testing: production code never imports test code",
				"upstream imports net/http/httptest: production code never imports test code",
				"upstream imports test/upstreams: production code never imports test code",
				"upstream imports upstream/upstreamtest: no package may (a test helper; production code must not import it)",
			},
		},
		{
			name:    "a test helper may import testing and the MCP server",
			pkg:     "upstream/upstreamtest",
			imports: []string{"testing", "net/http/httptest", "github.com/mark3labs/mcp-go/server", m("upstream")},
		},
		{
			name:    "tests may import anything",
			pkg:     "test/e2e",
			imports: []string{"testing", m("gateway"), m("authn/authntest"), "github.com/mark3labs/mcp-go/server", "github.com/spf13/viper", "go.opentelemetry.io/otel/sdk/trace"},
		},
		{
			name:    "but not a main package",
			pkg:     "test/e2e",
			imports: []string{m("cmd/mcpgw")},
			want:    []string{"test/e2e imports cmd/mcpgw: no package may (nothing imports a main package)"},
		},
		{
			name:    "nor may cmd",
			pkg:     "cmd/mcpgw",
			imports: []string{m("cmd/other")},
			want:    []string{"cmd/mcpgw imports cmd/other: no package may (nothing imports a main package)"},
		},
		{
			name:    "every room may import a leaf",
			pkg:     "configs",
			imports: []string{m("internal/rawjson"), "strings"},
		},
		{
			name:    "even the leaves of the DAG",
			pkg:     "telemetry/audit",
			imports: []string{m("internal/rawjson")},
		},
		{
			name:    "a leaf imports only the standard library",
			pkg:     "internal/rawjson",
			imports: []string{"encoding/json", "hash/maphash", m("configs"), "golang.org/x/text/unicode/norm", "testing"},
			want: []string{
				"internal/rawjson imports configs: internal/rawjson may import nothing internal (the one raw-JSON scanner and string encoder, shared by every room)",
				"internal/rawjson imports golang.org/x/text/unicode/norm: internal/rawjson imports the standard library only (the one raw-JSON scanner and string encoder, shared by every room)",
				"internal/rawjson imports testing: production code never imports test code",
			},
		},
		{
			name:    "a package in no room",
			pkg:     "util",
			imports: []string{"strings"},
			want:    []string{"util is in no room of the architecture; add it to the rooms table in test/deps"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := check([]pkg{{ImportPath: m(tt.pkg), Imports: tt.imports, GoFiles: []string{"x.go"}}})
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()

	tests := []struct {
		pattern, path string
		want          bool
	}{
		{"net/http", "net/http", true},
		{"net/http", "net/http/httptest", false},
		{"net/http/...", "net/http", true},
		{"net/http/...", "net/http/httptest", true},
		{"net/http/...", "net/httpx", false},
		{"github.com/coreos/go-oidc/...", "github.com/coreos/go-oidc/v3/oidc", true},
		{"testing/...", "testing", true},
		{"testing/...", "testing/fstest", true},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.path, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, match(tt.pattern, tt.path))
		})
	}
}
