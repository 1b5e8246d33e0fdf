package rawjson

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidate(t *testing.T) {
	t.Parallel()

	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	tests := []struct {
		name    string
		in      string
		lim     Limits
		wantErr error
		offset  int
		key     string
		message string
	}{
		{name: "envelope", in: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"x":[1,-2.5e+3,true,false,null,"\u00e9"]}}}`},
		{name: "scalar", in: ` 0 `},
		{name: "deepest", in: deep(DefaultMaxDepth)},
		{name: "deepest under a limit", in: `{"a":[[]]}`, lim: Limits{MaxDepth: 3}},
		{name: "same name in sibling objects", in: `[{"a":1},{"a":2}]`},
		{name: "same name nested", in: `{"a":{"a":{"a":1}}}`},
		{name: "names that differ in case", in: `{"name":1,"Name":2}`},
		{name: "many members", in: `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"l":12}`},
		{name: "invalid UTF-8 is accepted", in: "\"\xff\""},
		{name: "lone surrogate is accepted", in: `"\ud800"`},

		{name: "empty", in: ``, wantErr: ErrSyntax, offset: 0, message: "not valid JSON: unexpected end of input at offset 0"},
		{name: "truncated", in: `{"name":`, wantErr: ErrSyntax, offset: 8},
		{name: "bad character", in: `[1,2 x]`, wantErr: ErrSyntax, offset: 5, message: "not valid JSON: invalid character 'x' after array element at offset 5"},
		{name: "trailing data", in: `{} {}`, wantErr: ErrSyntax, offset: 3},
		{name: "trailing comma", in: `{"a":1,}`, wantErr: ErrSyntax, offset: 7},
		{name: "leading zero", in: `01`, wantErr: ErrSyntax, offset: 1},
		{name: "bad literal", in: `[trux]`, wantErr: ErrSyntax, offset: 4, message: "not valid JSON: invalid character 'x' in literal true (expecting 'e') at offset 4"},
		{name: "bad escape", in: `"\x"`, wantErr: ErrSyntax, offset: 2},
		{name: "bad hex", in: `"\u12g4"`, wantErr: ErrSyntax, offset: 5},
		{name: "control character", in: "\"a\nb\"", wantErr: ErrSyntax, offset: 2},
		{name: "missing colon", in: `{"a" 1}`, wantErr: ErrSyntax, offset: 5},
		{name: "number key", in: `{1:2}`, wantErr: ErrSyntax, offset: 1},

		{name: "too deep", in: deep(DefaultMaxDepth + 1), wantErr: ErrTooDeep, offset: DefaultMaxDepth, message: "nested too deep: more than 10000 levels at offset 10000"},
		{name: "too deep under a limit", in: `{"a":[[[]]]}`, lim: Limits{MaxDepth: 3}, wantErr: ErrTooDeep, offset: 7},
		{name: "too deep before a syntax error", in: `[[[[x`, lim: Limits{MaxDepth: 2}, wantErr: ErrTooDeep, offset: 2},
		{name: "syntax error before too deep", in: `[x[[[`, lim: Limits{MaxDepth: 2}, wantErr: ErrSyntax, offset: 1},

		{name: "duplicate", in: `{"method":"a","method":"b"}`, wantErr: ErrDuplicateMember, offset: 14, key: "method", message: `duplicate member "method" at offset 14`},
		{name: "duplicate by escape", in: `{"name":"a","n\u0061me":"b"}`, wantErr: ErrDuplicateMember, offset: 12, key: "name"},
		{name: "duplicate by replacement", in: "{\"\\ufffd\":1,\"\xff\":2}", wantErr: ErrDuplicateMember, offset: 12, key: "\ufffd"},
		{name: "duplicate nested", in: `{"a":[{"b":1,"c":2,"b":3}]}`, wantErr: ErrDuplicateMember, offset: 19, key: "b"},
		{name: "duplicate in a large object", in: `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"h":11}`, wantErr: ErrDuplicateMember, offset: 62, key: "h"},
		{name: "duplicate in a large object around a large one", in: `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"x":{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":0},"j":0,"x":1}`, wantErr: ErrDuplicateMember, offset: 127, key: "x"},
		{name: "large objects side by side", in: `[{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9},{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9}]`},
		{name: "duplicate before a syntax error", in: `{"a":1,"a"x`, wantErr: ErrDuplicateMember, offset: 7, key: "a"},
		{name: "syntax error before a duplicate", in: `{"a":1x,"a":2}`, wantErr: ErrSyntax, offset: 6},

		{name: "too large", in: `{"a":"bcd"}`, lim: Limits{MaxSize: 10}, wantErr: ErrTooLarge, offset: 10, message: "too large: 11 bytes, more than 10"},
		{name: "at the size limit", in: `{"a":"bc"}`, lim: Limits{MaxSize: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			err := Validate([]byte(tt.in), tt.lim)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.offset, e.Offset)
			assert.Equal(t, tt.key, e.Key)
			if tt.message != "" {
				assert.EqualError(t, err, tt.message)
			}
		})
	}
}

// TestValidateAgreesWithJSONValid runs the cases of the catalog's former
// validating scanner: without duplicates, Validate is json.Valid.
func TestValidateAgreesWithJSONValid(t *testing.T) {
	t.Parallel()

	tests := []string{
		`{}`, `[]`, `{"a":[1,2,{"b":null}]}`, ` [ 1 , -0.5e+3 , "x\u00e9\n" , true , false , null ] `,
		`0`, `-0`, `1E9`, `"\/"`, "\"\xff\"",
		``, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `01`, `1.`, `.5`, `-`, `1e`, `+1`,
		`tru`, `nul`, `"\x"`, `"\u12g4"`, "\"a\nb\"", `"abc`, `[1 2]`, `{"a":1}}`, `[[[]]`, `]`,
		strings.Repeat("[", 100000) + strings.Repeat("]", 100000),
		strings.Repeat("[", DefaultMaxDepth) + strings.Repeat("]", DefaultMaxDepth),
		strings.Repeat("[", DefaultMaxDepth+1) + strings.Repeat("]", DefaultMaxDepth+1),
		strings.Repeat(`{"a":`, 1000) + "1" + strings.Repeat("}", 999),
	}
	for _, in := range tests {
		name := in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, json.Valid([]byte(in)), Validate([]byte(in), Limits{}) == nil)
		})
	}
}

func TestValidateObject(t *testing.T) {
	t.Parallel()

	in := []byte(" {\"a\" : 1 , \"b\":{\"a\":[1]},\"c\\u0064\":\"x\"}\n")
	var buf [2]Field
	fields, err := ValidateObject(in, Limits{}, buf[:0])
	require.NoError(t, err)
	var got []string
	for _, f := range fields {
		got = append(got, string(in[f.Key.Start:f.Key.End])+"="+string(in[f.Value.Start:f.Value.End]))
	}
	assert.Equal(t, []string{`"a"=1`, `"b"={"a":[1]}`, `"c\u0064"="x"`}, got)

	fields, err = ValidateObject([]byte(`{}`), Limits{}, nil)
	require.NoError(t, err)
	assert.Empty(t, fields)

	_, err = ValidateObject([]byte(` [{"a":1}]`), Limits{}, nil)
	require.ErrorIs(t, err, ErrNotObject)
	require.EqualError(t, err, "not a JSON object")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 1, e.Offset)

	_, err = ValidateObject([]byte(`[{"a":1}`), Limits{}, nil)
	require.ErrorIs(t, err, ErrSyntax, "invalid JSON is a syntax error first")

	_, err = ValidateObject([]byte(`{"a":1,"a":2}`), Limits{}, nil)
	require.ErrorIs(t, err, ErrDuplicateMember)
}

// TestValidateAllocs keeps the validation of a request free of
// allocations once the pool is warm.
func TestValidateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop validators")
	}
	body := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"upstream7__echo","arguments":{"text":"abc","n":1,"a":[{"b":2}]}}}`)
	var buf [8]Field
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := ValidateObject(body, Limits{}, buf[:0]); err != nil {
			t.Fatal(err)
		}
	})
	assert.Zero(t, allocs)
}

func TestErrorMessageBoundsTheKey(t *testing.T) {
	t.Parallel()

	long := strings.Repeat("k", 1000)
	err := Validate([]byte(`{"`+long+`":1,"`+long+`":2}`), Limits{})
	require.ErrorIs(t, err, ErrDuplicateMember)
	assert.Less(t, len(err.Error()), 120)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, long, e.Key)
	assert.ErrorIs(t, e, ErrDuplicateMember)
}
