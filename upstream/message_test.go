package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testMeta  = `"io.modelcontextprotocol/protocolVersion":"2026-07-28"`
	testTrace = `"traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"`
)

func TestRewriteParams(t *testing.T) {
	tests := []struct {
		name     string
		params   string
		meta     string
		token    string
		trace    string
		nameKey  string
		want     string
		wantName string
		wantErr  bool
	}{
		{name: "untouched", params: `{"name":"a", "arguments":{"x":1}}`, want: `{"name":"a", "arguments":{"x":1}}`},
		{name: "no params", params: ``, want: ``},
		{name: "null params", params: `null`, want: ``},
		{name: "no params, meta", params: ``, meta: testMeta, want: `{"_meta":{` + testMeta + `}}`},
		{name: "empty object, meta", params: `{ }`, meta: testMeta, want: `{ "_meta":{` + testMeta + `}}`},
		{name: "append meta", params: `{"name":"a"}`, meta: testMeta, want: `{"name":"a","_meta":{` + testMeta + `}}`},
		{name: "append token", params: `{"name":"a"}`, token: `"mcpgw-1"`, want: `{"name":"a","_meta":{"progressToken":"mcpgw-1"}}`},
		{
			name:   "merge into existing meta, replace token",
			params: `{"_meta":{"progressToken":42,"trace":"t"},"name":"a"}`, meta: testMeta, token: `"mcpgw-1"`,
			want: `{"_meta":{"trace":"t","progressToken":"mcpgw-1",` + testMeta + `},"name":"a"}`,
		},
		{
			name:   "downstream protocol keys dropped in session era",
			params: `{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"x"},"io.modelcontextprotocol/clientCapabilities":{},"k":1}}`,
			want:   `{"name":"a","_meta":{"k":1}}`,
		},
		{
			name:   "downstream log level dropped: Request.LogLevel carries it once",
			params: `{"name":"a","_meta":{"io.modelcontextprotocol/logLevel":"debug","k":1}}`, meta: testMeta,
			want: `{"name":"a","_meta":{"k":1,` + testMeta + `}}`,
		},
		{
			name:   "meta emptied is removed",
			params: `{"name":"a","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}`,
			want:   `{"name":"a"}`,
		},
		{
			name:   "token kept without rewrite",
			params: `{"_meta":{"progressToken":42}}`,
			want:   `{"_meta":{"progressToken":42}}`,
		},
		{name: "null meta", params: `{"_meta":null,"a":1}`, meta: testMeta, want: `{"_meta":{` + testMeta + `},"a":1}`},
		{name: "name lookup", params: `{"arguments":{"name":"inner"},"name":"outer"}`, nameKey: "name", want: `{"arguments":{"name":"inner"},"name":"outer"}`, wantName: "outer"},
		{name: "escaped name", params: `{"name":"a\"b\u00e9"}`, nameKey: "name", want: `{"name":"a\"b\u00e9"}`, wantName: "a\"bé"},
		{name: "uri lookup", params: `{"uri":"file:///x"}`, nameKey: "uri", meta: testMeta, want: `{"uri":"file:///x","_meta":{` + testMeta + `}}`, wantName: "file:///x"},
		{name: "_meta inside a string", params: `{"q":"\"_meta\""}`, meta: testMeta, want: `{"q":"\"_meta\"","_meta":{` + testMeta + `}}`},
		{name: "trace into no params", params: ``, trace: testTrace, want: `{"_meta":{` + testTrace + `}}`},
		{name: "trace appended", params: `{"name":"a","arguments":{"traceparent":"x"}}`, trace: testTrace, want: `{"name":"a","arguments":{"traceparent":"x"},"_meta":{` + testTrace + `}}`},
		{
			name:   "downstream trace context replaced, baggage kept",
			params: `{"_meta":{"traceparent":"00-old","tracestate":"a=b","baggage":"k=v","progressToken":1},"name":"a"}`, meta: testMeta, trace: testTrace,
			want: `{"_meta":{"baggage":"k=v","progressToken":1,` + testMeta + `,` + testTrace + `},"name":"a"}`,
		},
		{name: "downstream trace context kept without a trace", params: `{"_meta":{"traceparent":"00-old"}}`, want: `{"_meta":{"traceparent":"00-old"}}`},
		{name: "not an object", params: `[1,2]`, wantErr: true},
		{name: "meta not an object", params: `{"_meta":[1]}`, wantErr: true},
		{name: "truncated", params: `{"_meta":{"a":`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &paramsRewrite{meta: []byte(tt.meta), progressToken: []byte(tt.token), nameKey: tt.nameKey, trace: []byte(tt.trace)}
			got, name, err := rewriteParams([]byte("prefix:"), []byte(tt.params), r)
			if tt.wantErr {
				require.Error(t, err)
				assert.Equal(t, "prefix:", string(got), "nothing appended on error")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "prefix:"+tt.want, string(got))
			assert.Equal(t, tt.wantName, name)
			if tt.want != "" {
				assert.True(t, json.Valid(got[len("prefix:"):]), "valid JSON: %s", got)
			}
		})
	}
}

func TestParseEnvelope(t *testing.T) {
	env, err := parseEnvelope([]byte(` {"jsonrpc":"2.0", "result" : {"content":[{"type":"text","text":"}\"{"}]} , "id" : 17 } `))
	require.NoError(t, err)
	assert.True(t, env.idIs(17))
	assert.False(t, env.idIs(1))
	assert.Equal(t, `{"content":[{"type":"text","text":"}\"{"}]}`, string(env.result)) //nolint:testifylint // the scanner must return the raw bytes untouched
	assert.Nil(t, env.method)

	env, err = parseEnvelope([]byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":"a"}}`))
	require.NoError(t, err)
	assert.True(t, env.isNotification())
	assert.False(t, env.isRequest())

	env, err = parseEnvelope([]byte(`{"jsonrpc":"2.0","id":"17","error":{"code":-32601,"message":"nope","data":{"x":[1]}}}`))
	require.NoError(t, err)
	assert.True(t, env.idIs(17))
	e := rpcErrorFrom(env.error)
	assert.Equal(t, -32601, e.Code)
	assert.Equal(t, `{"x":[1]}`, string(e.Data)) //nolint:testifylint // the scanner must return the raw bytes untouched
}

func TestProgressDispatch(t *testing.T) {
	var r progressRegistry
	var got []string
	tok, key := r.register(json.RawMessage(`{"d":1}`), func(p json.RawMessage) { got = append(got, string(p)) })
	assert.Equal(t, `"mcpgw-1"`, string(tok))
	assert.True(t, r.dispatch([]byte(`{"progressToken":"mcpgw-1","progress":1,"total":3}`)))
	assert.True(t, r.dispatch([]byte(`{"progress":3,"progressToken":"mcpgw-1"}`)))
	assert.True(t, r.dispatch([]byte(`{"progressToken":"mcpgw-1","progress":2}`)), "late, dropped")
	assert.False(t, r.dispatch([]byte(`{"progressToken":"other","progress":9}`)))
	r.unregister(key)
	assert.False(t, r.dispatch([]byte(`{"progressToken":"mcpgw-1","progress":9}`)))
	assert.Equal(t, []string{`{"progressToken":{"d":1},"progress":1,"total":3}`, `{"progress":3,"progressToken":{"d":1}}`}, got)
}

func TestSSEReader(t *testing.T) {
	stream := ": keep-alive\r\n" +
		"event: message\r\nid: 1\r\ndata: {\"a\":1}\r\n\r\n" +
		"event: ping\ndata: ignored\n\n" +
		"data: {\"b\":\ndata: 2}\n\n" +
		"retry: 10\n\n" +
		"data:{\"c\":3}\n" // last event without its blank line
	sr := newSSEReader(nil, strings.NewReader(stream), 1<<20)
	defer sr.release()
	var got []string
	for {
		d, err := sr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, string(d))
	}
	assert.Equal(t, []string{`{"a":1}`, "{\"b\":\n2}", `{"c":3}`}, got)

	sr = newSSEReader(nil, strings.NewReader("data: "+strings.Repeat("x", 100)+"\n\n"), 50)
	_, err := sr.next()
	require.ErrorIs(t, err, errEventTooLarge)
	sr.release()

	// A line longer than the bufio buffer.
	long := strings.Repeat("y", 20000)
	sr = newSSEReader(nil, strings.NewReader("data: "+long+"\n\n"), 1<<20)
	d, err := sr.next()
	require.NoError(t, err)
	assert.Equal(t, long, string(d))
	sr.release()
}

func TestEncodeHeaderValue(t *testing.T) {
	tests := map[string]string{
		"us-west1":           "us-west1",
		"Hello, 世界":          "=?base64?SGVsbG8sIOS4lueVjA==?=",
		" padded ":           "=?base64?IHBhZGRlZCA=?=",
		"line1\nline2":       "=?base64?bGluZTEKbGluZTI=?=",
		"=?base64?literal?=": "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=",
		"":                   "",
	}
	for in, want := range tests {
		assert.Equal(t, want, encodeHeaderValue(in), in)
	}
}

func TestToolBindings(t *testing.T) {
	tests := []struct {
		name    string
		tool    string
		want    []headerBinding
		wantErr string
	}{
		{name: "none", tool: `{"name":"a","inputSchema":{"type":"object"}}`},
		{
			name: "top level and nested",
			tool: `{"name":"a","inputSchema":{"type":"object","properties":{"region":{"type":"string","x-mcp-header":"Region"},"opts":{"type":"object","properties":{"n":{"type":"integer","x-mcp-header":"n"}}}}}}`,
			want: []headerBinding{{path: []string{"opts", "n"}, header: "Mcp-Param-N"}, {path: []string{"region"}, header: "Mcp-Param-Region"}},
		},
		{name: "under oneOf", tool: `{"name":"a","inputSchema":{"type":"object","oneOf":[{"properties":{"r":{"type":"string","x-mcp-header":"R"}}}]}}`, wantErr: "statically reachable"},
		{name: "under items", tool: `{"name":"a","inputSchema":{"type":"object","properties":{"l":{"type":"array","items":{"type":"string","x-mcp-header":"R"}}}}}`, wantErr: "statically reachable"},
		{name: "number", tool: `{"name":"a","inputSchema":{"type":"object","properties":{"r":{"type":"number","x-mcp-header":"R"}}}}`, wantErr: "not a string"},
		{name: "duplicate", tool: `{"name":"a","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"R"},"b":{"type":"string","x-mcp-header":"r"}}}}`, wantErr: "not unique"},
		{name: "bad token", tool: `{"name":"a","inputSchema":{"type":"object","properties":{"a":{"type":"string","x-mcp-header":"R R"}}}}`, wantErr: "field name"},
		{name: "in a default value", tool: `{"name":"a","inputSchema":{"type":"object","default":{"x-mcp-header":"R"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, b, err := toolBindings([]byte(tt.tool))
			assert.Equal(t, "a", name)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, b)
		})
	}

	hs, err := paramHeaders([]byte(`{"name":"a","arguments":{"region":"eu","opts":{"n":42}}}`),
		[]headerBinding{{path: []string{"opts", "n"}, header: "Mcp-Param-N"}, {path: []string{"region"}, header: "Mcp-Param-Region"}, {path: []string{"missing"}, header: "Mcp-Param-M"}})
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"Mcp-Param-N", "42"}, {"Mcp-Param-Region", "eu"}}, hs)
}

func TestReadBody(t *testing.T) {
	b, err := readBody(strings.NewReader("hello"), 5, 10)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
	b, err = readBody(strings.NewReader(strings.Repeat("a", 3000)), -1, 5000)
	require.NoError(t, err)
	assert.Len(t, b, 3000)
	_, err = readBody(strings.NewReader("hello"), -1, 4)
	require.ErrorIs(t, err, errBodyTooLarge)
	_, err = readBody(strings.NewReader("hello"), 5, 4)
	assert.ErrorIs(t, err, errBodyTooLarge)
}

func FuzzRewriteParams(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a","_meta":{"progressToken":1}}`, `{"_meta":null}`, `{"a":"\"_meta\""}`, `[]`, `{"_meta":{"a":[{"b":"}"}]}}`, ``} {
		f.Add([]byte(s), true, true)
	}
	f.Fuzz(func(t *testing.T, params []byte, meta, token bool) {
		r := &paramsRewrite{nameKey: "name"}
		if meta {
			r.meta = []byte(testMeta)
		}
		if token {
			r.progressToken = []byte(`"mcpgw-1"`)
		}
		out, _, err := rewriteParams(nil, params, r)
		if err != nil || !json.Valid(params) {
			return
		}
		if len(out) == 0 {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("valid params %q rewritten to invalid %q", params, out)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(out, &m) != nil {
			t.Fatalf("rewrite of %q is not an object: %q", params, out)
		}
		if token {
			var meta map[string]json.RawMessage
			_ = json.Unmarshal(m["_meta"], &meta)
			if !bytes.Equal(meta["progressToken"], []byte(`"mcpgw-1"`)) {
				t.Fatalf("token not set in %q", out)
			}
		}
	})
}

func FuzzSSEReader(f *testing.F) {
	f.Add([]byte("data: {}\n\n"), int64(100))
	f.Add([]byte("event: x\r\ndata: a\r\ndata: b\r\n\r\n:c\n"), int64(3))
	f.Fuzz(func(t *testing.T, stream []byte, limit int64) {
		if limit <= 0 {
			limit = 1
		}
		sr := newSSEReader(nil, bytes.NewReader(stream), limit)
		defer sr.release()
		for range 1000 {
			d, err := sr.next()
			if err != nil {
				return
			}
			if int64(len(d)) > limit {
				t.Fatalf("event of %d bytes over the %d limit", len(d), limit)
			}
		}
	})
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	f.Add([]byte(`{"id":"1","error":{"code":1}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if !json.Valid(msg) {
			return
		}
		env, err := parseEnvelope(msg)
		if err != nil {
			return
		}
		for _, part := range [][]byte{env.id, env.method, env.result, env.error, env.params} {
			if part != nil && !json.Valid(part) {
				t.Fatalf("member %q of %q is not valid JSON", part, msg)
			}
		}
	})
}

// TestSSEReaderKeepsTheCursor: the reader keeps the last event id and the
// retry time, whatever the event's type, and a priming event (an id and
// empty data) dispatches nothing.
func TestSSEReaderKeepsTheCursor(t *testing.T) {
	tests := []struct {
		name, stream string
		want         []string
		lastID       string
		retry        time.Duration // 0: none
	}{
		{
			name: "go-sdk priming and close", stream: "event: prime\nid: s_0\ndata: \n\n" +
				"event: message\nid: s_1\ndata: {\"a\":1}\n\n" + "event: close\nretry: 10\ndata: \n\n",
			want: []string{`{"a":1}`}, lastID: "s_1", retry: 10 * time.Millisecond,
		},
		{name: "priming without data line", stream: "id: 7\nretry: 2500\n\n", lastID: "7", retry: 2500 * time.Millisecond},
		{name: "id of an event that is not a message", stream: "event: ping\nid: 3\ndata: x\n\n", lastID: "3"},
		{name: "an empty id resets it", stream: "id: 3\ndata: {}\n\nid\ndata: {}\n\n", want: []string{"{}", "{}"}},
		{name: "an id with NUL is ignored", stream: "id: 3\n\nid: a\x00b\n\n", lastID: "3"},
		{name: "a retry that is not digits is ignored", stream: "retry: 1s\nretry: -5\nretry:\n\n"},
		{name: "the last event without its blank line", stream: "id: 9\ndata: {}", want: []string{"{}"}, lastID: "9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr := newSSEReader(nil, strings.NewReader(tt.stream), 1<<20)
			defer sr.release()
			var got []string
			for {
				d, err := sr.next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				got = append(got, string(d))
			}
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.lastID, sr.lastID)
			assert.Equal(t, tt.retry != 0, sr.hasRetry)
			assert.Equal(t, tt.retry, sr.retry)
		})
	}
}
