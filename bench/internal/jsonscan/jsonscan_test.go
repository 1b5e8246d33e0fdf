package jsonscan

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMember(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		obj     string
		key     string
		want    string
		wantErr bool
	}{
		{name: "number id", obj: `{"jsonrpc":"2.0","id":7,"result":{}}`, key: "id", want: "7"},
		{name: "nested object", obj: `{"id":1,"result":{"content":[{"type":"text","text":"a}\"]"}]}}`, key: "result", want: `{"content":[{"type":"text","text":"a}\"]"}]}`},
		{name: "spaces", obj: " { \"a\" : [ 1 , 2 ] , \"b\" : null } ", key: "a", want: "[ 1 , 2 ]"},
		{name: "absent", obj: `{"a":1}`, key: "b"},
		{name: "last wins", obj: `{"a":1,"a":2}`, key: "a", want: "2"},
		{name: "empty object", obj: `{}`, key: "a"},
		{name: "not an object", obj: `[1]`, key: "a", wantErr: true},
		{name: "unterminated", obj: `{"a":"x`, key: "a", wantErr: true},
		{name: "missing colon", obj: `{"a" 1}`, key: "a", wantErr: true},
		{name: "trailing bytes", obj: `{"a":1} x`, key: "a", wantErr: true},
		{name: "missing comma", obj: `{"a":1 "b":2}`, key: "a", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Member([]byte(tt.obj), tt.key)
			if tt.wantErr {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}
}

func TestElements(t *testing.T) {
	t.Parallel()

	var got []string
	err := Elements([]byte(`[ {"a":[1,2]}, "x,y", 3 ]`), func(v []byte) bool {
		got = append(got, string(v))
		return true
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`{"a":[1,2]}`, `"x,y"`, "3"}, got)

	assert.Error(t, Elements([]byte(`[1,`), func([]byte) bool { return true }))
}

func TestString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		raw    string
		want   string
		wantOK bool
	}{
		{raw: `"tools/call"`, want: "tools/call", wantOK: true},
		{raw: `"a\"b\u00e9"`, want: "a\"bé", wantOK: true},
		{raw: `7`},
		{raw: `"`},
		{raw: `"a"b"`},
	}
	for _, tt := range tests {
		got, ok := String([]byte(tt.raw))
		assert.Equal(t, tt.wantOK, ok, tt.raw)
		assert.Equal(t, tt.want, got, tt.raw)
	}
}

// FuzzSkipValue checks that the scanner never panics and accepts every
// valid JSON document whole.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`,
		`[1,2,{"a":null}]`, `"x\"y"`, `true`, ` {} `, `{"a":`, `[[[[`, `{"a" "b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := SkipValue(b, 0)
		if json.Valid(b) {
			if err != nil {
				t.Fatalf("valid JSON %q rejected: %v", b, err)
			}
			if SkipSpace(b, end) != len(b) {
				t.Fatalf("valid JSON %q: stopped at %d of %d", b, end, len(b))
			}
		}
		_ = Fields(b, func(_, _ []byte) bool { return true })
		_ = Elements(b, func([]byte) bool { return true })
	})
}
