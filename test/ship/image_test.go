package ship_test

import (
	"bufio"
	"debug/elf"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Docker cannot run where these tests run, so the image is checked in
// parts: the Dockerfile's own go build line is run on the build context its
// .dockerignore leaves, and the binary it makes must be static (the final
// stage, distroless/static, has no libc) and must report its version.

// dockerfile is the parsed Dockerfile: its ARG defaults, stages and the
// RUN line that builds mcpgw.
type dockerfile struct {
	args   map[string]string
	froms  []string
	user   string
	goLine string
}

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	defer f.Close()
	d := dockerfile{args: map[string]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "ARG":
			name, def, _ := strings.Cut(rest, "=")
			d.args[name] = def
		case "FROM":
			d.froms = append(d.froms, rest)
		case "USER":
			d.user = rest
		case "RUN":
			if strings.Contains(rest, "go build") {
				require.Empty(t, d.goLine, "one go build line")
				d.goLine = rest
			}
		}
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, d.goLine, "the Dockerfile builds mcpgw with go build")
	return d
}

func TestDockerfile(t *testing.T) {
	d := parseDockerfile(t)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	require.NotNil(t, goVersion)
	assert.Equal(t, string(goVersion[1]), d.args["GO_VERSION"], "the build image's Go is go.mod's")

	require.Len(t, d.froms, 2, "a build stage and the final stage")
	assert.Equal(t, "gcr.io/distroless/static:nonroot", d.froms[len(d.froms)-1], "the final stage")
	// The chart's runAsUser is the same uid (TestChartPodHardening).
	assert.Equal(t, "65532:65532", d.user)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-o /out/mcpgw ./cmd/mcpgw"} {
		assert.Contains(t, d.goLine, want)
	}
}

// TestImageBinary runs the Dockerfile's go build line, as the build stage
// would, on the files .dockerignore lets into the build context, and checks
// the binary: statically linked, and stamped with version and commit.
func TestImageBinary(t *testing.T) {
	d := parseDockerfile(t)
	// The test's binary must also reflect changes to the sources it builds.
	track(t, "go.mod", "go.sum", "cmd/mcpgw", ".dockerignore")

	ctx := t.TempDir()
	copyContext(t, ctx)
	out := t.TempDir()
	line := strings.ReplaceAll(d.goLine, "/out/", out+"/")
	cmd := exec.CommandContext(t.Context(), "sh", "-c", line)
	cmd.Dir = ctx
	cmd.Env = append(os.Environ(),
		"VERSION=v9.8.7-test", "COMMIT=0123abc",
		"TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH,
		"GOFLAGS=", // the build stage has none
	)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", line, msg)

	bin := filepath.Join(out, "mcpgw")
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "no program interpreter (dynamic loader)")
		assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "no dynamic section")
	}
	assert.Nil(t, f.Section(".interp"))
	assert.Nil(t, f.Section(".dynamic"))
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs, "no shared libraries")
	assert.Nil(t, f.Section(".symtab"), "-s strips the symbol table")

	v, err := exec.CommandContext(t.Context(), bin, "version").CombinedOutput()
	require.NoError(t, err, "%s", v)
	assert.Equal(t, "mcpgw v9.8.7-test (commit 0123abc, "+runtime.Version()+")\n", string(v))
}

// copyContext copies the repository into dir, leaving out what
// .dockerignore excludes. It supports the patterns that file uses: a path
// from the root (path.Match syntax, matching the path or a parent
// directory) and **/ for any depth; exceptions (!) are refused.
func copyContext(t *testing.T, dir string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	require.NoError(t, err)
	var patterns []string
	for l := range strings.SplitSeq(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		require.False(t, strings.HasPrefix(l, "!"), "copyContext does not support exceptions: %s", l)
		patterns = append(patterns, l)
	}
	ignored := func(rel string) bool {
		for _, p := range patterns {
			anyDepth := strings.HasPrefix(p, "**/")
			p = strings.TrimPrefix(p, "**/")
			parts := strings.Split(rel, "/")
			for i := range parts {
				if !anyDepth && i > 0 {
					break
				}
				// Match the path starting at part i, and every parent
				// directory of it.
				for j := i + 1; j <= len(parts); j++ {
					if ok, err := path.Match(p, strings.Join(parts[i:j], "/")); err == nil && ok {
						return true
					}
				}
			}
		}
		return false
	}
	copied := 0
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		if !e.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		copied++
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	require.NoError(t, err)
	require.NotZero(t, copied)
	_, err = os.Stat(filepath.Join(dir, ".git"))
	require.ErrorIs(t, err, fs.ErrNotExist, ".git stays out of the build context")
}
