package catalog

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func manyTools(n int) []json.RawMessage {
	out := make([]json.RawMessage, n)
	for i := range out {
		out[i] = tool(fmt.Sprintf("tool_%04d", i))
	}
	return out
}

func TestPagination(t *testing.T) {
	const n = 1234
	s, problems := build(t, defaultOpts, Source{Upstream: "big", Prefix: "big", Available: true, Tools: manyTools(n)})
	require.Empty(t, problems)
	require.Equal(t, n, s.Len(Tools))

	entries, pages := listAll(t, s, Tools)
	assert.Equal(t, 3, pages)
	require.Len(t, entries, n)
	seen := make(map[string]bool, n)
	for i, e := range entries {
		var item struct{ Name string }
		require.NoError(t, json.Unmarshal(e, &item))
		assert.Equal(t, fmt.Sprintf("big__tool_%04d", i), item.Name)
		assert.False(t, seen[item.Name], "%s listed twice", item.Name)
		seen[item.Name] = true
	}
	assert.Len(t, seen, n)

	// Page sizes 500, 500, 234; only the last page has no nextCursor.
	var sizes []int
	cursor := ""
	for {
		b, err := s.Page(Tools, cursor)
		require.NoError(t, err)
		var result struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor *string           `json:"nextCursor"`
		}
		require.NoError(t, json.Unmarshal(b, &result))
		sizes = append(sizes, len(result.Tools))
		if result.NextCursor == nil {
			break
		}
		cursor = *result.NextCursor
	}
	assert.Equal(t, []int{500, 500, 234}, sizes)
}

func TestPageShapes(t *testing.T) {
	tests := []struct {
		name    string
		opts    Options
		sources []Source
		k       Kind
		want    string
	}{
		{name: "empty tools", opts: defaultOpts, k: Tools, want: `{"tools":[]}`},
		{name: "empty resources", opts: defaultOpts, k: Resources, want: `{"resources":[]}`},
		{name: "empty templates", opts: defaultOpts, k: ResourceTemplates, want: `{"resourceTemplates":[]}`},
		{name: "empty prompts", opts: defaultOpts, k: Prompts, want: `{"prompts":[]}`},
		{
			name: "unavailable only", opts: defaultOpts, k: Tools, want: `{"tools":[]}`,
			sources: []Source{{Upstream: "o", Prefix: "o", Tools: tools("a")}},
		},
		{
			name: "one page", opts: defaultOpts, k: Tools,
			sources: []Source{{Upstream: "o", Prefix: "o", Available: true, Tools: []json.RawMessage{
				json.RawMessage(`{"name":"a"}`), json.RawMessage(` {"name":"b"} `),
			}}},
			want: `{"tools":[{"name":"o__a"},{"name":"o__b"}]}`,
		},
		{
			name: "unlimited page size", opts: Options{Separator: "__"}, k: Tools,
			sources: []Source{{Upstream: "o", Prefix: "o", Available: true, Tools: []json.RawMessage{
				json.RawMessage(`{"name":"a"}`), json.RawMessage(`{"name":"b"}`), json.RawMessage(`{"name":"c"}`),
			}}},
			want: `{"tools":[{"name":"o__a"},{"name":"o__b"},{"name":"o__c"}]}`,
		},
		{
			name: "resources", opts: defaultOpts, k: Resources,
			sources: []Source{{Upstream: "o", Available: true, Resources: []json.RawMessage{json.RawMessage(`{"uri":"a://b","name":"x"}`)}}},
			want:    `{"resources":[{"uri":"a://b","name":"x"}]}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := build(t, tt.opts, tt.sources...)
			b, err := s.Page(tt.k, "")
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(b))
		})
	}
}

func TestPageCursor(t *testing.T) {
	opts := Options{Separator: "__", PageSize: 2}
	s, _ := Build(7, opts, []Source{{Upstream: "o", Prefix: "o", Available: true, Tools: tools("a", "b", "c", "d", "e")}})
	first, err := s.Page(Tools, "")
	require.NoError(t, err)
	next := encodeCursor(Tools, 7, 2)
	assert.Equal(t, `{"tools":[{"name":"o__a","inputSchema":{"type":"object"}},{"name":"o__b","inputSchema":{"type":"object"}}],"nextCursor":"`+next+`"}`, string(first))

	valid := []struct {
		name   string
		cursor string
		want   []string
	}{
		{"second page", encodeCursor(Tools, 7, 2), []string{"o__c", "o__d"}},
		{"last page", encodeCursor(Tools, 7, 4), []string{"o__e"}},
		{"older version, aligned", encodeCursor(Tools, 6, 2), []string{"o__c", "o__d"}},
		{"older version, unaligned offset", encodeCursor(Tools, 6, 3), []string{"o__d", "o__e"}},
		{"older version, offset zero", encodeCursor(Tools, 6, 0), []string{"o__a", "o__b"}},
		{"older version, past the end", encodeCursor(Tools, 6, 9), nil},
		{"newer version", encodeCursor(Tools, 8, 1), []string{"o__b", "o__c"}},
	}
	for _, tt := range valid {
		t.Run(tt.name, func(t *testing.T) {
			b, err := s.Page(Tools, tt.cursor)
			require.NoError(t, err)
			var result struct {
				Tools []struct{ Name string } `json:"tools"`
			}
			require.NoError(t, json.Unmarshal(b, &result))
			var got []string
			for _, tl := range result.Tools {
				got = append(got, tl.Name)
			}
			assert.Equal(t, tt.want, got)
		})
	}

	good := encodeCursor(Tools, 7, 2)
	flipped := []byte(good)
	flipped[5] ^= 1
	invalid := []struct {
		name   string
		k      Kind
		cursor string
	}{
		{"garbage", Tools, "garbage"},
		{"bad base64", Tools, strings.Repeat("!", cursorChars)},
		{"padded", Tools, good + "=="},
		{"truncated", Tools, good[:cursorChars-1]},
		{"one character changed", Tools, string(flipped)},
		{"other list", Prompts, good},
		{"current version, offset zero", Tools, encodeCursor(Tools, 7, 0)},
		{"current version, unaligned", Tools, encodeCursor(Tools, 7, 3)},
		{"current version, past the end", Tools, encodeCursor(Tools, 7, 6)},
		{"current version, at the end", Tools, encodeCursor(Tools, 7, 5)},
		{"unknown format", Tools, func() string {
			c := []byte(mustDecode(t, good))
			c[0] = 2
			c[14] = checkByte(c[:14])
			return encodeRaw(c)
		}()},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			require.False(t, tt.k == Tools && tt.cursor == good, "the case differs from the genuine cursor")
			b, err := s.Page(tt.k, tt.cursor)
			require.ErrorIs(t, err, ErrInvalidCursor)
			assert.Nil(t, b)
		})
	}
}

func TestPageCursorUnlimited(t *testing.T) {
	s, _ := Build(3, Options{}, []Source{{Upstream: "o", Available: true, Tools: tools("a", "b")}})
	_, err := s.Page(Tools, encodeCursor(Tools, 3, 1))
	require.ErrorIs(t, err, ErrInvalidCursor)
	b, err := s.Page(Tools, encodeCursor(Tools, 2, 1))
	require.NoError(t, err)
	assert.Equal(t, `{"tools":[{"name":"b","inputSchema":{"type":"object"}}]}`, string(b)) //nolint:testifylint // the page is spliced from raw bytes; the exact bytes are the contract
}

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		k       Kind
		version uint64
		offset  int
	}{
		{Tools, 0, 0}, {Resources, 1, 500}, {ResourceTemplates, 1<<64 - 1, 1<<32 - 1}, {Prompts, 42, 1},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt), func(t *testing.T) {
			c := encodeCursor(tt.k, tt.version, tt.offset)
			assert.Len(t, c, cursorChars)
			k, v, o, ok := decodeCursor(c)
			require.True(t, ok)
			assert.Equal(t, tt.k, k)
			assert.Equal(t, tt.version, v)
			assert.Equal(t, tt.offset, o)
		})
	}
}

func mustDecode(t *testing.T, c string) string {
	t.Helper()
	var b [cursorBytes]byte
	for i, j := 0, 0; i < cursorChars; i, j = i+4, j+3 {
		var v uint32
		for _, ch := range []byte(c[i : i+4]) {
			v = v<<6 | uint32(base64URLValue(ch))
		}
		b[j], b[j+1], b[j+2] = byte(v>>16), byte(v>>8), byte(v)
	}
	return string(b[:])
}

func encodeRaw(b []byte) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	var sb strings.Builder
	for i := 0; i+3 <= len(b); i += 3 {
		v := uint32(b[i])<<16 | uint32(b[i+1])<<8 | uint32(b[i+2])
		sb.WriteByte(alphabet[v>>18&63])
		sb.WriteByte(alphabet[v>>12&63])
		sb.WriteByte(alphabet[v>>6&63])
		sb.WriteByte(alphabet[v&63])
	}
	return sb.String()
}

func FuzzCursor(f *testing.F) {
	s, _ := Build(5, Options{Separator: "__", PageSize: 3}, []Source{{
		Upstream: "o", Prefix: "o", Available: true, Tools: manyTools(10),
		Prompts: []json.RawMessage{prompt("p")},
	}})
	for _, c := range []string{"", "garbage", encodeCursor(Tools, 5, 3), encodeCursor(Tools, 4, 7), encodeCursor(Prompts, 5, 1), encodeCursor(Tools, 5, 1<<31)} {
		f.Add(c, 0)
	}
	f.Fuzz(func(t *testing.T, cursor string, k int) {
		kind := Kind(k % (numKinds + 1))
		b, err := s.Page(kind, cursor)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Page(%v, %q) = %q: not valid JSON", kind, cursor, b)
		}
	})
}
