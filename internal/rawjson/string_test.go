package rawjson

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestAppendString(t *testing.T) {
	t.Parallel()

	tests := []struct{ name, in, want, jcs string }{
		{name: "plain", in: "tools/call", want: `"tools/call"`},
		{name: "quote and backslash", in: `a"b\c`, want: `"a\"b\\c"`},
		{name: "controls", in: "\b\f\n\r\t\x00\x1f\x7f", want: `"\b\f\n\r\t\u0000\u001f` + "\x7f\""},
		{name: "HTML kept", in: "<&>", want: `"<&>"`},
		{name: "line separators", in: "a\u2028b\u2029c", want: `"a\u2028b\u2029c"`, jcs: "\"a\u2028b\u2029c\""},
		{name: "invalid UTF-8", in: "x\xffy\xc3", want: `"x\ufffdy\ufffd"`},
		{name: "unicode kept", in: "café ☃ \U0001F600", want: "\"café ☃ \U0001F600\""},
		{name: "catalog rename", in: "q\"<&>\n\u2028\x01", want: `"q\"<&>\n\u2028\u0001"`, jcs: "\"q\\\"<&>\\n\u2028\\u0001\""},
		{name: "empty", in: "", want: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			assert.Equal(t, tt.want, string(AppendString([]byte("x:"), tt.in))[2:])
			assert.Equal(t, tt.want, string(AppendString(nil, []byte(tt.in))))
			jcs := tt.jcs
			if jcs == "" {
				jcs = tt.want
			}
			assert.Equal(t, jcs, string(AppendStringJCS(nil, []byte(tt.in))))
		})
	}
}

func TestDecodeString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		raw, want string
		ok        bool
	}{
		{raw: `"tools/call"`, want: "tools/call", ok: true},
		{raw: `""`, want: "", ok: true},
		{raw: `"a\"b\u00e9"`, want: "a\"bé", ok: true},
		{raw: `"\ud83d\ude00"`, want: "\U0001F600", ok: true},
		{raw: `"\ud800\u0041"`, want: "\ufffdA", ok: true},
		{raw: `"\ude00"`, want: "\ufffd", ok: true},
		{raw: "\"\xff\"", want: "\ufffd", ok: true},
		{raw: `"\/\b\f\n\r\t"`, want: "/\b\f\n\r\t", ok: true},
		{raw: `7`},
		{raw: `"`},
		{raw: `"a"b"`},
		{raw: `"\x"`},
		{raw: `"\'"`},
		{raw: `"\u12"`},
		{raw: "\"\x01\""},
		{raw: ` "a"`},
	}
	for _, tt := range tests {
		got, ok := DecodeString([]byte(tt.raw))
		assert.Equal(t, tt.ok, ok, tt.raw)
		assert.Equal(t, tt.want, got, tt.raw)
		if tt.ok {
			assert.True(t, StringIs([]byte(tt.raw), tt.want), tt.raw)
			assert.False(t, StringIs([]byte(tt.raw), tt.want+"x"), tt.raw)
		}
	}
}

func TestStringIs(t *testing.T) {
	t.Parallel()

	assert.True(t, StringIs([]byte(`"2026-07-28"`), "2026-07-28"))
	assert.True(t, StringIs([]byte(`"2026\u002d07-28"`), "2026-07-28"))
	assert.False(t, StringIs([]byte(`"2026-07-28"`), "2025-11-25"))
	assert.False(t, StringIs([]byte(`2026`), "2026"))
	assert.False(t, StringIs(nil, ""))
	assert.False(t, StringIs([]byte("\"\xff\""), "\xff"), "invalid UTF-8 decodes to U+FFFD")
	assert.True(t, StringIs([]byte("\"\xff\""), "\ufffd"))
	assert.False(t, StringIs([]byte(`"a\nb"`), `a\nb`))
}
