package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

func TestParseMessage(t *testing.T) {
	tests := []struct {
		name string
		body string
		code int    // 0: no error
		msg  string // the error message, when set
	}{
		{name: "request", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`},
		{name: "string id", body: `{"jsonrpc":"2.0","id":"a","method":"ping","params":{}}`},
		{name: "notification", body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`},
		{name: "response", body: `{"jsonrpc":"2.0","id":3,"result":{}}`},
		{name: "empty", body: ``, code: mcpwire.CodeParseError},
		{name: "garbage", body: `{"jsonrpc":`, code: mcpwire.CodeParseError},
		{name: "not json", body: `hello`, code: mcpwire.CodeParseError},
		{name: "batch", body: `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`, code: mcpwire.CodeInvalidRequest},
		{name: "bad batch json", body: `[{"jsonrpc"`, code: mcpwire.CodeParseError},
		{name: "scalar", body: `42`, code: mcpwire.CodeInvalidRequest},
		{name: "wrong version", body: `{"jsonrpc":"1.0","id":1,"method":"ping"}`, code: mcpwire.CodeInvalidRequest},
		{name: "no method", body: `{"jsonrpc":"2.0","id":1}`, code: mcpwire.CodeInvalidRequest},
		{name: "method not string", body: `{"jsonrpc":"2.0","id":1,"method":7}`, code: mcpwire.CodeInvalidRequest},
		{name: "null id", body: `{"jsonrpc":"2.0","id":null,"method":"ping"}`, code: mcpwire.CodeInvalidRequest},
		{name: "fractional id", body: `{"jsonrpc":"2.0","id":1.5,"method":"ping"}`, code: mcpwire.CodeInvalidRequest},
		{name: "array params", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}`, code: mcpwire.CodeInvalidRequest},
		{name: "syntax error says where", body: `{"jsonrpc":"2.0","id":1 x}`, code: mcpwire.CodeParseError, msg: "parse error: not valid JSON: invalid character 'x' after object key:value pair at offset 24"},
		{name: "too deep is not a parse error", body: `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `}}`, code: mcpwire.CodeInvalidRequest, msg: "invalid request: nested too deep: more than 10000 levels at offset 10052"},
		{name: "deep batch", body: strings.Repeat("[", 10001) + strings.Repeat("]", 10001), code: mcpwire.CodeInvalidRequest, msg: "invalid request: nested too deep: more than 10000 levels at offset 10000"},
		{name: "two methods", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}`, code: mcpwire.CodeInvalidRequest, msg: `invalid request: duplicate member "method" at offset 46`},
		{name: "two methods up to case", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}`, code: mcpwire.CodeInvalidRequest, msg: `invalid request: member "Method" repeats another up to case`},
		{name: "duplicate in arguments", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"to":"x","to":"y"}}}`, code: mcpwire.CodeInvalidRequest},
		{name: "method in another case", body: `{"jsonrpc":"2.0","id":1,"Method":"ping"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseMessage([]byte(tt.body))
			if tt.code == 0 {
				assert.Nil(t, err)
				return
			}
			require.NotNil(t, err)
			assert.Equal(t, tt.code, err.Code, err.Message)
			if tt.msg != "" {
				assert.Equal(t, tt.msg, err.Message)
			}
		})
	}
}

func TestAppendResponse(t *testing.T) {
	got := appendResult(nil, json.RawMessage(`7`), json.RawMessage(`{"content":[{"type":"x-new","v":1}]}`))
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"x-new","v":1}]}}`, string(got))
	got = appendError(nil, nil, newRPCError(mcpwire.CodeInvalidParams, "unknown tool: \"x\"", map[string]any{"tool": "x"}))
	assert.JSONEq(t, `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"unknown tool: \"x\"","data":{"tool":"x"}}}`, string(got))
	got = appendNotification(nil, "notifications/progress", json.RawMessage(`{"progress":1}`))
	assert.JSONEq(t, `{"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1}}`, string(got))
}

func TestReplaceMember(t *testing.T) {
	tests := []struct {
		name, in, key, value, want string
		ok                         bool
	}{
		{name: "simple", in: `{"name":"a__b","arguments":{"name":"keep"}}`, key: "name", value: `"b"`, want: `{"name":"b","arguments":{"name":"keep"}}`, ok: true},
		{name: "nested first", in: `{"arguments":{"name":"keep","x":[1,{"name":2}]}, "name" : "a"}`, key: "name", value: `"z"`, want: `{"arguments":{"name":"keep","x":[1,{"name":2}]}, "name" : "z"}`, ok: true},
		{name: "escaped strings", in: `{"a":"q\"}{","name":"x\\"}`, key: "name", value: `"y"`, want: `{"a":"q\"}{","name":"y"}`, ok: true},
		{name: "escaped key", in: `{"na\u006de":"x"}`, key: "name", value: `"y"`, want: `{"na\u006de":"y"}`, ok: true},
		{name: "numbers and literals", in: `{"a":-1.5e3,"b":true,"c":null,"name":"x"}`, key: "name", value: `"y"`, want: `{"a":-1.5e3,"b":true,"c":null,"name":"y"}`, ok: true},
		{name: "duplicate key refused", in: `{"name":"a__get","name":"cancel"}`, key: "name", ok: false},
		{name: "key up to case refused", in: `{"name":"a__get","NAME":"cancel"}`, key: "name", ok: false},
		{name: "absent", in: `{"a":{"name":"x"}}`, key: "name", ok: false},
		{name: "not object", in: `["name"]`, key: "name", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := rawjson.ReplaceMember([]byte(tt.in), tt.key, []byte(tt.value))
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, tt.want, string(got))
			}
		})
	}
}

// FuzzReplaceMember checks that the scanner never panics and that, for a
// valid object, replacing a member keeps the document valid.
func FuzzReplaceMember(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"a":{"name":1},"name":"b"}`, `{"x":"\"name\"","name":[1,2]}`, `{`, `{"name"`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, ok := rawjson.ReplaceMember(in, "name", []byte(`"z"`))
		if !ok || !json.Valid(in) {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("replacing name in %q gave invalid JSON %q", in, out)
		}
	})
}

// FuzzParseMessage checks that the envelope parser never panics and that a
// message it accepts has a method or is a response.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`, `[]`, `{"jsonrpc":"2.0"}`, `nul`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := parseMessage(in)
		if err == nil && m.Method == "" && len(m.ID) == 0 {
			t.Fatalf("accepted %q without method or id", in)
		}
	})
}

// FuzzDecodeString checks the string fast path against encoding/json: the
// same value for every JSON string token (member values come without
// surrounding space), and no value for anything else.
func FuzzDecodeString(f *testing.F) {
	for _, s := range []string{`"a"`, `"tools/call"`, `"\u00e9\n"`, `"a\"b"`, `"\\"`, "\"\x01\"", "\"\xff\"", `"`, `1`, `null`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var want string
		wantErr := json.Unmarshal(in, &want)
		got, ok := rawjson.DecodeString(in)
		if len(in) < 2 || in[0] != '"' || in[len(in)-1] != '"' {
			if ok {
				t.Fatalf("rawjson.DecodeString(%q) = %q for something not a string", in, got)
			}
			return
		}
		if wantErr != nil {
			if ok && json.Valid(in) {
				t.Fatalf("rawjson.DecodeString(%q) = %q, but encoding/json says %v", in, got, wantErr)
			}
			return
		}
		if !ok || got != want {
			t.Fatalf("rawjson.DecodeString(%q) = %q, %v; want %q", in, got, ok, want)
		}
		if !rawjson.StringIs(in, want) {
			t.Fatalf("rawjson.StringIs(%q, %q) = false", in, want)
		}
	})
}
