package rawjson

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMember(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, obj, key, want string
		ok                   bool
	}{
		{name: "number id", obj: `{"jsonrpc":"2.0","id":7,"result":{}}`, key: "id", want: "7", ok: true},
		{name: "nested object", obj: `{"id":1,"result":{"content":[{"type":"text","text":"a}\"]"}]}}`, key: "result", want: `{"content":[{"type":"text","text":"a}\"]"}]}`, ok: true},
		{name: "spaces", obj: " { \"a\" : [ 1 , 2 ] , \"b\" : null } ", key: "a", want: "[ 1 , 2 ]", ok: true},
		{name: "nested names skipped", obj: `{"arguments":{"name":"keep","x":[1,{"name":2}]}, "name" : "a"}`, key: "name", want: `"a"`, ok: true},
		{name: "escaped strings", obj: `{"a":"q\"}{","name":"x\\"}`, key: "name", want: `"x\\"`, ok: true},
		{name: "escaped key", obj: `{"na\u006de":"x"}`, key: "name", want: `"x"`, ok: true},
		{name: "key with backslash before quote", obj: `{"a\\":"name","name":"v"}`, key: "name", want: `"v"`, ok: true},
		{name: "numbers and literals", obj: `{"a":-1.5e3,"b":true,"c":null,"name":"x"}`, key: "name", want: `"x"`, ok: true},
		{name: "other names of the same length", obj: `{"nome":1,"name":2}`, key: "name", want: "2", ok: true},
		{name: "absent", obj: `{"a":{"name":"x"}}`, key: "name"},
		{name: "empty object", obj: `{}`, key: "a"},
		{name: "not an object", obj: `["name"]`, key: "name"},
		{name: "unterminated", obj: `{"a":"x`, key: "a"},
		{name: "duplicate refused", obj: `{"name":"a__get","name":"cancel"}`, key: "name"},
		{name: "duplicate by escape refused", obj: `{"name":"a","n\u0061me":"b"}`, key: "name"},
		{name: "name up to case refused", obj: `{"name":"a","NAME":"b"}`, key: "name"},
		{name: "name up to case first refused", obj: `{"Name":"b","name":"a"}`, key: "name"},
		{name: "name up to case by escape refused", obj: `{"name":"a","N\u0061me":"b"}`, key: "name"},
		{name: "name up to Unicode case refused", obj: `{"key":"a","\u212aey":"b"}`, key: "key"},
		{name: "only a name up to case", obj: `{"NAME":"b"}`, key: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got := Member([]byte(tt.obj), tt.key)
			s, e, ok := MemberSpan([]byte(tt.obj), tt.key)
			assert.Equal(t, tt.ok, ok)
			if !tt.ok {
				assert.Nil(t, got)
				return
			}
			assert.Equal(t, tt.want, string(got))
			assert.Equal(t, tt.want, tt.obj[s:e])
		})
	}
}

func TestReplaceMember(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, in, key, value, want string
		ok                         bool
	}{
		{name: "simple", in: `{"name":"a__b","arguments":{"name":"keep"}}`, key: "name", value: `"b"`, want: `{"name":"b","arguments":{"name":"keep"}}`, ok: true},
		{name: "every other byte kept", in: " {\n\t\"x\" : [ 1 ] ,\"name\" :\t\"a\"  }\n", key: "name", value: `{"k":1}`, want: " {\n\t\"x\" : [ 1 ] ,\"name\" :\t{\"k\":1}  }\n", ok: true},
		{name: "escaped key", in: `{"na\u006de":"x"}`, key: "name", value: `"y"`, want: `{"na\u006de":"y"}`, ok: true},
		{name: "duplicate refused", in: `{"name":"a__get","name":"cancel"}`, key: "name"},
		{name: "absent", in: `{"a":{"name":"x"}}`, key: "name"},
		{name: "not an object", in: `["name"]`, key: "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			in := []byte(tt.in)
			got, ok := ReplaceMember(in, tt.key, []byte(tt.value))
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, tt.want, string(got))
				assert.Equal(t, tt.in, string(in), "the input is not changed")
			}
		})
	}
}

func TestEachMember(t *testing.T) {
	t.Parallel()

	var got []string
	err := EachMember([]byte(` {"a" : [1,{"b":2}], "c\u0064":"x,y" , "e":{}} `), func(k, v []byte) bool {
		got = append(got, string(k)+"="+string(v))
		return true
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`"a"=[1,{"b":2}]`, `"c\u0064"="x,y"`, `"e"={}`}, got)

	got = nil
	err = EachMember([]byte(`{"a":1,"b":2}`), func(k, _ []byte) bool {
		got = append(got, string(k))
		return !StringIs(k, "a")
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`"a"`}, got, "fn returning false stops the walk")

	for _, bad := range []string{``, `[1]`, `{"a":1`, `{"a" 1}`, `{"a":1 "b":2}`, `{"a":1} x`, `{"a":"x}`, `{a:1}`} {
		require.ErrorIs(t, EachMember([]byte(bad), func(_, _ []byte) bool { return true }), ErrSyntax, bad)
	}
	require.NoError(t, EachMember([]byte(` {} `), func(_, _ []byte) bool { return true }))
}

func TestEachElement(t *testing.T) {
	t.Parallel()

	var got []string
	err := EachElement([]byte(`[ {"a":[1,2]}, "x,y", 3 ,null]`), func(v []byte) bool {
		got = append(got, string(v))
		return true
	})
	require.NoError(t, err)
	assert.Equal(t, []string{`{"a":[1,2]}`, `"x,y"`, "3", "null"}, got)

	for _, bad := range []string{``, `{}`, `[1,`, `[1 2]`, `[1] x`, `[,]`} {
		require.ErrorIs(t, EachElement([]byte(bad), func([]byte) bool { return true }), ErrSyntax, bad)
	}
	require.NoError(t, EachElement([]byte(`[ ]`), func([]byte) bool { return true }))
}

func TestSkipValue(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   string
		at   int
		want int
	}{
		{in: `"a\"b" x`, want: 6},
		{in: `"a\\" x`, want: 5},
		{in: `{"a":"}","b":[1,{"c":"]"}]} x`, want: 27},
		{in: `-1.5e3,`, want: 6},
		{in: `true}`, want: 4},
		{in: `null`, want: 4},
		{in: ` 1`, at: 1, want: 2},
		{in: `"abc`, want: -1},
		{in: `[1,2`, want: -1},
		{in: `,`, want: -1},
		{in: ``, want: -1},
		{in: `1`, at: 5, want: -1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, SkipValue([]byte(tt.in), tt.at), tt.in)
	}
	assert.Equal(t, 3, SkipSpace([]byte(" \t\nx"), 0))
	assert.Equal(t, 2, SkipSpace([]byte("x\r"), 1))
}

func TestIsNullIsTrue(t *testing.T) {
	t.Parallel()

	assert.True(t, IsNull(nil))
	assert.True(t, IsNull([]byte(" null ")))
	assert.True(t, IsNull([]byte(" ")))
	assert.False(t, IsNull([]byte(`"null"`)))
	assert.False(t, IsNull([]byte(`0`)))
	assert.True(t, IsTrue([]byte("true")))
	assert.True(t, IsTrue([]byte(" true\n")))
	assert.False(t, IsTrue([]byte(`"true"`)))
	assert.False(t, IsTrue(nil))
}

// TestLookupAllocs keeps the hot path's lookups free of allocations.
func TestLookupAllocs(t *testing.T) {
	params := []byte(`{"name":"upstream7__echo","arguments":{"text":"abc"},"_meta":{"progressToken":"p\u0031"}}`)
	allocs := testing.AllocsPerRun(100, func() {
		meta := Member(params, "_meta")
		if !StringIs(Member(params, "name"), "upstream7__echo") || !StringIs(Member(meta, "progressToken"), "p1") {
			t.Fatal("lookup")
		}
		if _, _, ok := MemberSpan(params, "arguments"); !ok {
			t.Fatal("arguments")
		}
	})
	assert.Zero(t, allocs)
}
