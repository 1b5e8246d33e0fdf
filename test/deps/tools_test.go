package deps_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// toolModule is one of the Go modules under tools/ whose commands make
// builds with SHIPENV (CGO_ENABLED=0 -trimpath), as it builds mcpgw's
// binaries.
type toolModule struct {
	// dir is the directory go runs in; modfile, when set, is passed as
	// -modfile (tools/go.mod and tools/conformance/go.mod are module files
	// of the repository root; tools/chart is a module of its own).
	dir, modfile string
	// pinned lists the modules this tool builds at a version of its own,
	// and why.
	pinned map[string]string
}

// golangci-lint's own choice, left to it: a newer x/text requires a newer
// golang.org/x/tools, whose analyzers (govet's passes, modernize) are
// golangci-lint's checks, and the rest are its configuration loading.
const lintsOwn = "golangci-lint's own version: moving it would change golangci-lint, not only share a compile"

var toolModules = []toolModule{
	{dir: ".", modfile: "tools/go.mod", pinned: map[string]string{
		"golang.org/x/text":                        lintsOwn,
		"github.com/fsnotify/fsnotify":             lintsOwn,
		"github.com/go-viper/mapstructure/v2":      lintsOwn,
		"github.com/prometheus/client_golang":      lintsOwn,
		"github.com/prometheus/client_model":       lintsOwn,
		"github.com/prometheus/common":             lintsOwn,
		"github.com/prometheus/procfs":             lintsOwn,
		"github.com/santhosh-tekuri/jsonschema/v6": lintsOwn,
		"github.com/spf13/afero":                   lintsOwn,
		"github.com/spf13/cast":                    lintsOwn,
		"github.com/spf13/cobra":                   lintsOwn,
		"github.com/spf13/viper":                   lintsOwn,
		"github.com/subosito/gotenv":               lintsOwn,
	}},
	{dir: "tools/chart"},
	{dir: ".", modfile: "tools/conformance/go.mod"},
}

// TestToolsShareTheBinariesCompiles holds the tool modules to the versions
// of go.mod for every module both build. A package is compiled once for all
// the builds that use the same settings only when its dependencies are the
// same versions too: the tools (helmlite and kubeconform, the
// everything-server, golangci-lint) and mcpgw's binaries (make binaries)
// then share protobuf, golang.org/x/net and text, the go-sdk and the rest,
// and a cold make test compiles them once, not once per tool.
func TestToolsShareTheBinariesCompiles(t *testing.T) {
	root := repoRoot(t)
	ours := moduleVersions(t, root, "", shipBinaries(t, root)...)
	require.NotEmpty(t, ours)

	for _, tm := range toolModules {
		name := filepath.Join(tm.dir, "go.mod")
		if tm.modfile != "" {
			name = tm.modfile
		}
		t.Run(name, func(t *testing.T) {
			theirs := moduleVersions(t, filepath.Join(root, tm.dir), tm.modfile, "tool")
			require.NotEmpty(t, theirs)
			shared := 0
			for mod, v := range theirs {
				want, ok := ours[mod]
				if !ok {
					continue
				}
				shared++
				if _, ok := tm.pinned[mod]; ok {
					continue
				}
				assert.Equal(t, want, v, "%s builds %s at %s, mcpgw's binaries at %s: both compile it, "+
					"and everything that imports it; go get %s@%s in %s (or, when the tool needs its own, "+
					"say why in pinned)", name, mod, v, want, mod, want, name)
			}
			assert.Positive(t, shared, "%s shares no module with mcpgw's binaries", name)
			for mod := range tm.pinned {
				if want, ok := ours[mod]; ok && theirs[mod] == want {
					t.Errorf("%s is pinned apart in %s but builds %s, mcpgw's version: drop it from pinned", mod, name, want)
				}
			}
		})
	}
}

// moduleVersions returns the version of each module whose packages the
// patterns build with SHIPENV's settings, run in dir.
func moduleVersions(t *testing.T, dir, modfile string, patterns ...string) map[string]string {
	t.Helper()
	args := []string{"list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}"}
	if modfile != "" {
		args = append(args, "-modfile="+modfile)
	}
	cmd := exec.CommandContext(t.Context(), "go", append(args, patterns...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go %s: %s", strings.Join(cmd.Args[1:], " "), stderr.String())
	versions := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		mod, v, ok := strings.Cut(sc.Text(), " ")
		if ok && v != "" { // the main module has no version
			versions[mod] = v
		}
	}
	return versions
}

// shipBinaries returns the Makefile's SHIP_BINARIES: the binaries make
// binaries compiles with SHIPENV.
func shipBinaries(t *testing.T, root string) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^SHIP_BINARIES := (.+)$`).FindSubmatch(mk)
	require.NotNil(t, m, "the Makefile sets SHIP_BINARIES")
	return strings.Fields(string(m[1]))
}

// repoRoot returns the directory of the module's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	gomod, err := exec.CommandContext(t.Context(), "go", "env", "GOMOD").Output()
	require.NoError(t, err, "go env GOMOD")
	return filepath.Dir(strings.TrimSpace(string(gomod)))
}

// goBuildCall finds a go build that a Go source starts: exec.Command or
// CommandContext with "go" and "build" on one line.
var goBuildCall = regexp.MustCompile(`exec\.Command(Context)?\([^\n]*"go",\s*(append\()?(\[\]string\{)?"build"`)

// TestTestsBuildAsTheBinariesPhase holds every go build a test or the
// benchmark starts to SHIPENV's settings (CGO_ENABLED=0 -trimpath), which
// make test's binaries phase compiles with: a build with go's defaults
// compiles every dependency once more (test/demo's did: 113 s of a cold
// make test's 907). The flag and the variable must be in the function that
// starts the build.
func TestTestsBuildAsTheBinariesPhase(t *testing.T) {
	root := filepath.Join("..", "..")
	var found int
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "tools", "node_modules", ".git", "testdata":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, loc := range goBuildCall.FindAllIndex(src, -1) {
			found++
			fn := enclosingFunc(src, loc[0])
			assert.Contains(t, fn, `"-trimpath"`, "%s: a go build without -trimpath", path)
			assert.Contains(t, fn, `"CGO_ENABLED=0"`, "%s: a go build without CGO_ENABLED=0", path)
		}
		return nil
	})
	require.NoError(t, err)
	require.NotZero(t, found, "no go build found: the pattern no longer matches how tests start one")
}

// enclosingFunc returns the text of the top-level function around offset
// i of a gofmt'ed source: from the last "\nfunc " before it to the next
// "\n}\n".
func enclosingFunc(src []byte, i int) string {
	start := bytes.LastIndex(src[:i], []byte("\nfunc "))
	end := bytes.Index(src[i:], []byte("\n}\n"))
	if start < 0 || end < 0 {
		return string(src)
	}
	return string(src[start : i+end])
}
