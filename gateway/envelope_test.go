package gateway

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envelopeCorpus holds messages the fast path takes and messages it must
// leave to encoding/json.
var envelopeCorpus = []string{
	string(benchCall),
	`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`,
	`{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x","arguments":{"n":-1.5e+3,"b":[true,false,null],"s":"\u00e9\n\"q\""}}}`,
	` {"jsonrpc":"2.0","method":"notifications/initialized"} ` + "\n",
	`{"jsonrpc":"2.0","id":7,"result":{"content":[]}}`,
	`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}`,
	`{"jsonrpc":"2.0","id":null,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`,
	`{}`,
	`{ "jsonrpc" : "2.0" , "id" : 0 , "method" : "my/custom" }`,
	`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":[1],"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":[1,2]}`,
	// The slow path's business:
	`{"jsonrpc":"2.0","ID":1,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"Method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","extra":{}}`,
	`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"pi\u006eg"}`,
	`{"jsonrpc":"2.0","id":1,"method":"\xff"}`,
	`{"jsonrpc":2,"id":1,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping",}`,
	`{"jsonrpc":"2.0","id":01,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\x01"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\u12"}}`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":tru}}`,
	`{"jsonrpc":"2.0","id":-,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1.,"method":"ping"}`,
	`{"jsonrpc":"2.0","id":1e,"method":"ping"}`,
	`{"jsonrpc":"2.0"`,
	`{"jsonrpc":"2.0","id":1,"method":"ping","params":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	`[]`,
	``,
}

// checkEnvelope fails when the fast path accepts body and encoding/json
// does not decode it to the same message.
func checkEnvelope(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	got, ok := scanEnvelope(body)
	if !ok {
		return false
	}
	var want message
	require.NoError(t, json.Unmarshal(body, &want), "the fast path accepted what encoding/json refuses: %q", body)
	assert.Equal(t, want, *got, "%q", body)
	return true
}

func TestScanEnvelopeAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()

	fast := 0
	for _, body := range envelopeCorpus {
		if checkEnvelope(t, []byte(body)) {
			fast++
		}
	}
	assert.Equal(t, 13, fast, "the common messages take the fast path")

	// The fast path's raw members alias the body the caller handed over
	// (no body-sized copy per call); the method string does not.
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"}}`)
	m, ok := scanEnvelope(body)
	require.True(t, ok)
	assert.Same(t, &body[bytes.Index(body, []byte(`{"name"`))], &m.Params[0], "params alias the body")
	copy(body, make([]byte, len(body)))
	assert.Equal(t, "tools/call", m.Method)
}

func FuzzScanEnvelope(f *testing.F) {
	for _, body := range envelopeCorpus {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkEnvelope(t, body)
	})
}

// BenchmarkScanEnvelope is BenchmarkParseMessage's input through the fast
// path alone.
func BenchmarkScanEnvelope(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchCall)))
	for b.Loop() {
		if _, ok := scanEnvelope(benchCall); !ok {
			b.Fatal("slow path")
		}
	}
}
