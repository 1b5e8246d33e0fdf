package catalog

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// maxDepth is the deepest nesting an item may have: encoding/json's.
const maxDepth = rawjson.DefaultMaxDepth

func TestRename(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		newName  string
		want     string
		wantOld  string
		wantErr  error
		errMatch string
	}{
		{name: "first key", in: `{"name":"a","x":1}`, newName: "p__a", want: `{"name":"p__a","x":1}`, wantOld: "a"},
		{name: "last key", in: `{"x":1,"name":"a"}`, newName: "p__a", want: `{"x":1,"name":"p__a"}`, wantOld: "a"},
		{name: "whitespace kept", in: " {\n\t\"name\" :\t\"a\" ,\r\n \"x\" : [ 1 ] }\n", newName: "b", want: "{\n\t\"name\" :\t\"b\" ,\r\n \"x\" : [ 1 ] }", wantOld: "a"},
		{name: "escaped value", in: `{"name":"a\u005fb\"c"}`, newName: "p__a_b", want: `{"name":"p__a_b"}`, wantOld: `a_b"c`},
		{name: "escaped key", in: `{"n\u0061me":"a"}`, newName: "b", want: `{"n\u0061me":"b"}`, wantOld: "a"},
		{name: "nested names skipped", in: `{"s":{"name":"n1","l":[{"name":"n2"}]},"name":"top"}`, newName: "x", want: `{"s":{"name":"n1","l":[{"name":"n2"}]},"name":"x"}`, wantOld: "top"},
		{name: "name in a string skipped", in: `{"d":"\"name\":\"fake\"","name":"real"}`, newName: "x", want: `{"d":"\"name\":\"fake\"","name":"x"}`, wantOld: "real"},
		{name: "key with backslash before quote", in: `{"a\\":"name","name":"v"}`, newName: "x", want: `{"a\\":"name","name":"x"}`, wantOld: "v"},
		{name: "new name needs escaping", in: `{"name":"a"}`, newName: "q\"<&>\n\u2028\x01", want: `{"name":"q\"<&>\n\u2028\u0001"}`, wantOld: "a"},
		{name: "new name invalid UTF-8", in: `{"name":"a"}`, newName: "x\xffy", want: `{"name":"x\ufffdy"}`, wantOld: "a"},
		{name: "unicode kept", in: `{"name":"café","d":"☃"}`, newName: "p__café", want: `{"name":"p__café","d":"☃"}`, wantOld: "café"},
		{name: "invalid JSON", in: `{"name":"a"`, wantErr: rawjson.ErrSyntax},
		{name: "trailing garbage", in: `{"name":"a"} x`, wantErr: rawjson.ErrSyntax},
		{name: "not an object", in: `[{"name":"a"}]`, wantErr: rawjson.ErrNotObject},
		{name: "missing", in: `{"Name":"a"}`, wantErr: errMissingMember},
		{name: "not a string", in: `{"name":{"name":"a"}}`, wantErr: errNotString},
		{name: "deepest item", in: `{"name":"a","x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`, newName: "b", want: `{"name":"b","x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`, wantOld: "a"},
		{name: "too deep", in: `{"name":"a","x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, wantErr: rawjson.ErrTooDeep},
		{name: "duplicate", in: `{"name":"a","x":{},"name":"b"}`, wantErr: rawjson.ErrDuplicateMember},
		{name: "nested duplicate", in: `{"name":"a","inputSchema":{"type":"object","type":"string"}}`, wantErr: rawjson.ErrDuplicateMember},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, old, err := rename([]byte(tt.in), tt.newName)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.wantOld, old)
			require.True(t, json.Valid(got))
			var m struct{ Name string }
			require.NoError(t, json.Unmarshal(got, &m))
			assert.Equal(t, jsonRoundTrip(t, tt.newName), m.Name)
		})
	}
}

// TestRenameGolden lists tools with every feature an upstream may use and
// compares the page bytes with a golden file: only names may change.
func TestRenameGolden(t *testing.T) {
	in, err := os.ReadFile(filepath.Join("testdata", "rename_tools.json"))
	require.NoError(t, err)
	var raws []json.RawMessage
	require.NoError(t, json.Unmarshal(in, &raws))

	s, problems := build(t, defaultOpts, Source{Upstream: "orders", Prefix: "orders", Available: true, Tools: raws})
	require.Empty(t, problems)
	assert.Equal(t, []string{"orders__create_order", "orders__cancel_order", "orders__get_order", "orders__list_orders", "orders__refund"}, s.Names(Tools))
	page, err := s.Page(Tools, "")
	require.NoError(t, err)
	golden(t, "rename_tools.golden", append(page, '\n'))

	entries, _ := listAll(t, s, Tools)
	require.Len(t, entries, len(raws))
	for i, entry := range entries {
		var before, after map[string]any
		require.NoError(t, json.Unmarshal(raws[i], &before))
		require.NoError(t, json.Unmarshal(entry, &after))
		assert.Equal(t, "orders__"+before["name"].(string), after["name"])
		delete(before, "name")
		delete(after, "name")
		assert.Equal(t, before, after, "entry %d differs in more than its name", i)

		// Byte-exact: the same bytes around the name's value.
		m, err := findMember(raws[i], "name")
		require.NoError(t, err)
		assert.Equal(t, string(m.obj[:m.start]), string(entry[:m.start]))
		assert.Equal(t, string(m.obj[m.end:]), string(entry[len(entry)-(len(m.obj)-m.end):]))
	}
}

func FuzzRename(f *testing.F) {
	seeds := []string{
		`{"name":"a"}`,
		`{"x":{"name":"n"},"name":"a\u0062","y":[{"name":1}]}`,
		` { "n\u0061me" : "x" } `,
		`{"name":"a","name":"b"}`,
		`{"name":1}`,
		`{"d":"\"name\":\"x\\\"","name":"ok"}`,
		`[]`,
		`{"name":"`,
		`{"a":[1,{"b":"}"}],"name":"c"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "p__x")
	}
	f.Fuzz(func(t *testing.T, in []byte, name string) {
		out, old, err := rename(in, name)
		var orig map[string]any
		isObject := json.Unmarshal(in, &orig) == nil
		if err != nil {
			_, hasName := orig["name"].(string)
			if isObject && hasName && !errors.Is(err, rawjson.ErrDuplicateMember) {
				t.Fatalf("rename(%q): %v, but it is an object with a string name", in, err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("rename(%q, %q) = %q: not valid JSON", in, name, out)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("rename(%q) = %q: %v", in, out, err)
		}
		if orig["name"] != old {
			t.Fatalf("rename(%q): old name %q, want %q", in, old, orig["name"])
		}
		if want := jsonRoundTrip(t, name); got["name"] != want {
			t.Fatalf("rename(%q, %q): name is %q", in, name, got["name"])
		}
		delete(orig, "name")
		delete(got, "name")
		if !assert.ObjectsAreEqual(orig, got) {
			t.Fatalf("rename(%q) = %q changed more than the name", in, out)
		}
	})
}

// jsonRoundTrip is s as encoding/json sees it after encoding and decoding:
// each byte of invalid UTF-8 becomes U+FFFD.
func jsonRoundTrip(t *testing.T, s string) string {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
