package main

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCurrent fails when docs/configuration.md is not what the generator
// writes from the configs package as it is now.
func TestCurrent(t *testing.T) {
	t.Parallel()

	root := moduleRoot(t)
	want, err := Generate(filepath.Join(root, "configs"), filepath.Join(root, "configs", "example.yaml"))
	require.NoError(t, err)
	got, err := os.ReadFile(filepath.Join(root, "docs", "configuration.md"))
	require.NoError(t, err, "docs/configuration.md is missing: run make docs")
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/configuration.md is stale (the configs structs, their docs, defaults or example.yaml changed): run make docs\n%s",
			firstDifference(string(got), string(want)))
	}
}

// firstDifference shows the first line where the file and the generated
// text differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  file:      " + gl + "\n  generated: " + wl
		}
	}
	return ""
}

// moduleRoot is the directory holding go.mod, above the working directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the working directory")
		dir = parent
	}
}

// The sample types stand in for a configs package that grows: nested and
// recursive structs, pointers, lists, maps, durations, a named scalar type
// and a squashed embedded struct.
type (
	sampleRoot struct {
		Server         sampleServer          `mapstructure:"server"`
		Items          []sampleItem          `mapstructure:"items"`
		Named          map[string]sampleItem `mapstructure:"named"`
		Opt            *sampleOpt            `mapstructure:"opt"`
		Mode           sampleMode            `mapstructure:"mode"`
		Tags           []string              `mapstructure:"tags"`
		Hidden         string                `mapstructure:"-"`
		Self           *sampleRoot           `mapstructure:"self"`
		SampleEmbedded `mapstructure:",squash"`
	}
	sampleServer struct {
		Port    int           `mapstructure:"port"`
		Timeout time.Duration `mapstructure:"timeout"`
		Enabled bool          `mapstructure:"enabled"`
		Limit   int64         `mapstructure:"limit_bytes"`
	}
	sampleItem struct {
		Size int `mapstructure:"size"`
	}
	sampleOpt struct {
		Level string `mapstructure:"level"`
	}
	sampleMode string
	// SampleEmbedded is squashed into sampleRoot.
	SampleEmbedded struct {
		Extra float64 `mapstructure:"extra"`
	}
)

func (r *sampleRoot) setDefaults() {
	if r.Server.Port == 0 {
		r.Server.Port = 8080
	}
	if r.Server.Timeout == 0 {
		r.Server.Timeout = 30 * time.Second
	}
	if r.Server.Limit == 0 {
		r.Server.Limit = 4 << 20
	}
	for i := range r.Items {
		if r.Items[i].Size == 0 {
			r.Items[i].Size = 3
		}
	}
	for k, it := range r.Named {
		if it.Size == 0 {
			it.Size = 3
			r.Named[k] = it
		}
	}
	if r.Opt != nil && r.Opt.Level == "" {
		r.Opt.Level = "x"
	}
	if r.Mode == "" {
		r.Mode = "fast"
	}
	if len(r.Tags) == 0 {
		r.Tags = []string{"a", "b"}
	}
}

func TestSchema(t *testing.T) {
	t.Parallel()

	s := newSchema(reflect.TypeFor[sampleRoot](), func(v any) {
		if r, ok := v.(*sampleRoot); ok {
			r.setDefaults()
		}
	})
	require.NoError(t, s.fillDefaults())

	var names []string
	paths := map[string][]string{}
	for _, sec := range s.order {
		names = append(names, sec.typ.Name())
		paths[sec.typ.Name()] = sec.paths
	}
	assert.Equal(t, []string{"sampleRoot", "sampleServer", "sampleItem", "sampleOpt", "sampleMode"}, names, "sections in depth-first order, each once")
	assert.Equal(t, []string{"self"}, paths["sampleRoot"], "a recursive type is walked once")
	assert.Equal(t, []string{"items[]", "named.<name>"}, paths["sampleItem"])
	assert.Equal(t, []string{"mode"}, paths["sampleMode"])

	rows := map[string][2]string{} // section.key → type, default
	for _, sec := range s.order {
		for _, f := range sec.fields {
			rows[sec.typ.Name()+"."+f.key] = [2]string{s.typeName(f.typ), f.def}
		}
	}
	tests := []struct {
		key, typ, def string
	}{
		{"sampleRoot.server", "[sampleServer](#sampleserver)", ""},
		{"sampleRoot.items", "list of [sampleItem](#sampleitem)", ""},
		{"sampleRoot.named", "map of string to [sampleItem](#sampleitem)", ""},
		{"sampleRoot.opt", "[sampleOpt](#sampleopt)", ""},
		{"sampleRoot.mode", "string ([sampleMode](#samplemode))", "`fast`"},
		{"sampleRoot.tags", "list of string", "`[a, b]`"},
		{"sampleRoot.self", "[sampleRoot](#sampleroot)", ""},
		{"sampleRoot.extra", "number", ""},
		{"sampleServer.port", "int", "`8080`"},
		{"sampleServer.timeout", "duration", "`30s`"},
		{"sampleServer.enabled", "bool", "`false`"},
		{"sampleServer.limit_bytes", "int", "`4194304` (4 MiB)"},
		{"sampleItem.size", "int", "`3`"},
		{"sampleOpt.level", "string", "`x`"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			row, ok := rows[tt.key]
			require.True(t, ok, "no row %s", tt.key)
			assert.Equal(t, tt.typ, row[0], "type")
			assert.Equal(t, tt.def, row[1], "default")
		})
	}
	assert.Len(t, rows, len(tests), "every key and nothing else (hidden is tagged -)")
}

func TestFormatDuration(t *testing.T) {
	t.Parallel()

	tests := []struct {
		d    time.Duration
		want string
	}{
		{time.Hour, "1h"},
		{30 * time.Minute, "30m"},
		{90 * time.Second, "90s"},
		{250 * time.Millisecond, "250ms"},
		{1500 * time.Microsecond, "1500us"},
		{7, "7ns"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, formatDuration(tt.d), "%d", tt.d)
	}
}

// TestUndocumented shows the generator refuses a field without a doc
// comment, so the reference never has an empty row.
func TestUndocumented(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	src := "package configs\n\n// Config is documented.\ntype Config struct {\n\tServer string `mapstructure:\"server\"`\n}\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.go"), []byte(src), 0o600))
	_, err := Generate(dir, filepath.Join(moduleRoot(t), "configs", "example.yaml"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no doc comment on")
	assert.Contains(t, err.Error(), "Config.Server")
}

// TestWriteIfChanged shows a second run with the same output leaves the
// file alone, so make docs twice is a no-op.
func TestWriteIfChanged(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "out.md")
	require.NoError(t, writeIfChanged(path, []byte("one\n")))
	before, err := os.Stat(path)
	require.NoError(t, err)
	require.NoError(t, writeIfChanged(path, []byte("one\n")))
	after, err := os.Stat(path)
	require.NoError(t, err)
	assert.True(t, os.SameFile(before, after), "an unchanged file is not replaced")

	require.NoError(t, writeIfChanged(path, []byte("two\n")))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "two\n", string(got))
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file is left behind")
}
