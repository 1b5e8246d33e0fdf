package catalog

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// namePattern is the configs default: what the Claude and OpenAI APIs accept.
var namePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

var defaultOpts = Options{Separator: "__", NamePattern: namePattern, PageSize: 500}

func tool(name string) json.RawMessage {
	return json.RawMessage(`{"name":` + strconv.Quote(name) + `,"inputSchema":{"type":"object"}}`)
}

func prompt(name string) json.RawMessage {
	return json.RawMessage(`{"name":` + strconv.Quote(name) + `,"arguments":[{"name":"id","required":true}]}`)
}

func resource(uri string) json.RawMessage {
	return json.RawMessage(`{"uri":` + strconv.Quote(uri) + `,"name":"r","mimeType":"text/plain"}`)
}

func resourceTemplate(tmpl string) json.RawMessage {
	return json.RawMessage(`{"uriTemplate":` + strconv.Quote(tmpl) + `,"name":"t"}`)
}

func tools(names ...string) []json.RawMessage {
	out := make([]json.RawMessage, len(names))
	for i, n := range names {
		out[i] = tool(n)
	}
	return out
}

// build builds a snapshot and checks that it is consistent.
func build(tb testing.TB, opts Options, sources ...Source) (*Snapshot, []Problem) {
	tb.Helper()
	s, problems := Build(1, opts, sources)
	require.NotNil(tb, s)
	require.NoError(tb, s.Consistent())
	return s, problems
}

// problemStrings formats problems for comparison.
func problemStrings(problems []Problem) []string {
	out := make([]string, len(problems))
	for i, p := range problems {
		out[i] = p.Error()
	}
	return out
}

// listAll follows the cursors of list k and returns the raw entries.
func listAll(tb testing.TB, s *Snapshot, k Kind) (entries []json.RawMessage, pages int) {
	tb.Helper()
	cursor := ""
	for {
		b, err := s.Page(k, cursor)
		require.NoError(tb, err)
		var result map[string]json.RawMessage
		require.NoError(tb, json.Unmarshal(b, &result))
		var items []json.RawMessage
		require.NoError(tb, json.Unmarshal(result[k.String()], &items))
		entries = append(entries, items...)
		pages++
		next, ok := result["nextCursor"]
		if !ok {
			return entries, pages
		}
		require.NoError(tb, json.Unmarshal(next, &cursor))
		require.NotEmpty(tb, cursor)
	}
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	file := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(file, got, 0o644))
	}
	want, err := os.ReadFile(file)
	require.NoError(t, err, "run go test -update to create it")
	require.Equal(t, string(want), string(got))
}
