package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCanonicalizeRFC8785 checks the examples of RFC 8785.
func TestCanonicalizeRFC8785(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, in, want string
	}{
		{
			// Section 3.2.2.
			name: "primitives",
			in: `{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`,
			want: `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`,
		},
		{
			// Section 3.2.3: sorting by UTF-16 code units puts the emoji
			// (a surrogate pair, D83D DE00) before U+FB33.
			name: "sorting",
			in: `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`,
			want: "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}",
		},
		{
			// The README example of the reference implementation.
			name: "reference implementation",
			in:   `{"numbers":[1E30,4.50,6,2e-3,0.000000000000000000000000001],"escaping":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","other":[null,true,false]}`,
			want: `{"escaping":"€$\u000f\nA'B\"\\\\\"/","numbers":[1e+30,4.5,6,0.002,1e-27],"other":[null,true,false]}`,
		},
		{
			name: "nested objects are sorted too",
			in:   ` { "b" : [ { "z":1, "a":{"y":true,"x":null} } ], "a" : {} } `,
			want: `{"a":{},"b":[{"a":{"x":null,"y":true},"z":1}]}`,
		},
		{name: "controls", in: `"\u0000\u001f\b\f\t\u007f"`, want: "\"\\u0000\\u001f\\b\\f\\t\u007f\""},
		{name: "scalar", in: ` -0.0 `, want: `0`},
		{name: "integers", in: `[0, -1, 100, 1e2, 12345678901234567890]`, want: `[0,-1,100,100,12345678901234567000]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := Canonicalize(nil, []byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			sum := sha256.Sum256([]byte(tt.want))
			assert.Equal(t, hex.EncodeToString(sum[:]), CanonicalSHA256(json.RawMessage(tt.in)))
		})
	}
}

// TestES6Numbers checks RFC 8785 Appendix B.
func TestES6Numbers(t *testing.T) {
	t.Parallel()

	tests := []struct {
		bits string
		want string
	}{
		{"0000000000000000", "0"},
		{"8000000000000000", "0"},
		{"0000000000000001", "5e-324"},
		{"8000000000000001", "-5e-324"},
		{"7fefffffffffffff", "1.7976931348623157e+308"},
		{"ffefffffffffffff", "-1.7976931348623157e+308"},
		{"4340000000000000", "9007199254740992"},
		{"c340000000000000", "-9007199254740992"},
		{"4430000000000000", "295147905179352830000"},
		{"44b52d02c7e14af5", "9.999999999999997e+22"},
		{"44b52d02c7e14af6", "1e+23"},
		{"44b52d02c7e14af7", "1.0000000000000001e+23"},
		{"444b1ae4d6e2ef4e", "999999999999999700000"},
		{"444b1ae4d6e2ef4f", "999999999999999900000"},
		{"444b1ae4d6e2ef50", "1e+21"},
		{"3eb0c6f7a0b5ed8c", "9.999999999999997e-7"},
		{"3eb0c6f7a0b5ed8d", "0.000001"},
		{"41b3de4355555553", "333333333.3333332"},
		{"41b3de4355555554", "333333333.33333325"},
		{"41b3de4355555555", "333333333.3333333"},
		{"41b3de4355555556", "333333333.3333334"},
		{"41b3de4355555557", "333333333.33333343"},
		{"becbf647612f3696", "-0.0000033333333333333333"},
		{"43143ff3c1cb0959", "1424953923781206.2"},
	}
	for _, tt := range tests {
		bits, err := strconv.ParseUint(tt.bits, 16, 64)
		require.NoError(t, err)
		f := math.Float64frombits(bits)
		assert.Equal(t, tt.want, string(AppendES6Number(nil, f)), tt.bits)

		// The same number written in JSON canonicalizes the same.
		got, err := Canonicalize(nil, strconv.AppendFloat(nil, f, 'g', -1, 64))
		require.NoError(t, err)
		assert.Equal(t, tt.want, string(got), tt.bits)
	}
}

func TestCanonicalizeRejects(t *testing.T) {
	t.Parallel()

	deep := make([]byte, 0, 2*(maxDepth+1))
	for range maxDepth + 1 {
		deep = append(deep, '[')
	}
	for range maxDepth + 1 {
		deep = append(deep, ']')
	}
	tests := []struct{ name, in string }{
		{"empty", ``},
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key by escape", `{"a":1,"\u0061":2}`},
		{"lone high surrogate", `"\ud83d"`},
		{"lone low surrogate", `"\ude00"`},
		{"invalid UTF-8", "\"\xff\""},
		{"number out of range", `1e400`},
		{"leading zero", `01`},
		{"trailing data", `{} {}`},
		{"trailing comma", `[1,]`},
		{"bare control", "\"\x01\""},
		{"bad literal", `nul`},
		{"too deep", string(deep)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := Canonicalize(nil, []byte(tt.in))
			require.ErrorIs(t, err, ErrInvalidJSON)
		})
	}

	// Without a canonical form, the raw bytes are hashed.
	raw := `{"a":1,"a":2}`
	sum := sha256.Sum256([]byte(raw))
	assert.Equal(t, hex.EncodeToString(sum[:]), CanonicalSHA256(json.RawMessage(raw)))
	assert.Empty(t, CanonicalSHA256(nil))
}

func TestCanonicalSHA256IgnoresSpelling(t *testing.T) {
	t.Parallel()

	a := CanonicalSHA256(json.RawMessage(`{"amount": 10.0, "currency": "EUR", "to": {"iban": "DE00", "name": "\u00c9mile"}}`))
	b := CanonicalSHA256(json.RawMessage(`{"to":{"name":"Émile","iban":"DE00"},"currency":"EUR","amount":1e1}`))
	assert.Equal(t, a, b)
	assert.Len(t, a, 64)
	assert.NotEqual(t, a, CanonicalSHA256(json.RawMessage(`{"amount":10.5,"currency":"EUR","to":{"iban":"DE00","name":"Émile"}}`)))
}

func TestRedact(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, in, want string
	}{
		{
			name: "object",
			in:   `{"card": "4111 1111 1111 1111", "amount": 12.5, "refund": true, "note": null, "items": [{"sku": "A-1", "qty": 2}], "empty": {}}`,
			want: `{"card":"<string>","amount":"<number>","refund":true,"note":null,"items":[{"sku":"<string>","qty":"<number>"}],"empty":{}}`,
		},
		{name: "keys keep their order and duplicates", in: `{"b":"x","a":"y","b":1}`, want: `{"b":"<string>","a":"<string>","b":"<number>"}`},
		{name: "scalar", in: `"secret"`, want: `"<string>"`},
		{name: "escaped key", in: `{"a\"b":1}`, want: `{"a\"b":"<number>"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			got, err := Redact(json.RawMessage(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
		})
	}

	got, err := Redact(nil)
	require.NoError(t, err)
	assert.Nil(t, got)
	_, err = Redact(json.RawMessage(`{"a":`))
	require.ErrorIs(t, err, ErrInvalidJSON)
}

// FuzzCanonicalize checks that the canonical form means the same as the
// input (for encoding/json) and is a fixed point.
func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null,"x"]}`,
		`{"\ud83d\ude00":1,"\ufb33":2}`,
		`[1e30, 4.50, -0, 2e-3, 1E-7, 123456789012345678901234]`,
		`"\u20ac\u000f\n\\\"/"`,
		`{"a":{"b":{"c":[{}]}}}`,
		`{"a":1,"a":2}`,
		"\"\xff\"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		canon, err := Canonicalize(nil, in)
		if err != nil {
			return
		}
		require.True(t, json.Valid(canon), "%q", canon)
		var want, got any
		require.NoError(t, json.Unmarshal(in, &want), "accepted input must be JSON: %q", in)
		require.NoError(t, json.Unmarshal(canon, &got))
		assert.Equal(t, want, got)
		again, err := Canonicalize(nil, canon)
		require.NoError(t, err)
		assert.Equal(t, string(canon), string(again), "canonical form is a fixed point")

		redacted, err := Redact(in)
		require.NoError(t, err)
		require.True(t, json.Valid(redacted))
	})
}

func BenchmarkCanonicalSHA256(b *testing.B) {
	args := json.RawMessage(`{"order_id":"ord_123","reason":"customer request","amount":{"value":1999,"currency":"EUR"},"notify":true,"tags":["a","b"]}`)
	b.ReportAllocs()
	for b.Loop() {
		_ = CanonicalSHA256(args)
	}
}
