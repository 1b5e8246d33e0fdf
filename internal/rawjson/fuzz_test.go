package rawjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// seedCorpus gathers the inputs of the scanners this package replaced
// (the gateway's envelope, the catalog's splicer, upstream's and the
// benchmark's scanners, the audit canonicalizer), and the edges of the
// rules: depth, duplicates, escapes, numbers, literals, white space.
func seedCorpus() []string {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	return []string{
		`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"upstream7__echo","arguments":{"text":"abc def"}}}`,
		`{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x","arguments":{"n":-1.5e+3,"b":[true,false,null],"s":"\u00e9\n\"q\""}}}`,
		` {"jsonrpc":"2.0","method":"notifications/initialized"} ` + "\n",
		`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no"}}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping","extra":{}}`,
		`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":1,"method":"pi\u006eg"}`,
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		`{"jsonrpc":"2.0","id":1,"method":"ping"} {}`,
		`{"jsonrpc":"2.0","id":1,"method":"ping",}`,
		`{"jsonrpc":"2.0","id":01,"method":"ping"}`,
		`{"name":"a","x":{},"name":"b"}`,
		`{"name":"a","n\u0061me":"b"}`,
		`{"name":"a","Name":"b"}`,
		`{"\ufffd":1,"` + "\xff" + `":2}`,
		`{"\ud800":1,"\udbff":2}`,
		`{"a":{"b":1,"b":2}}`,
		`[{"a":1},{"a":1}]`,
		`{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6,"g":7,"h":8,"i":9,"j":10,"k":11,"a":12}`,
		`{"x":{"name":"n"},"name":"a\u0062","y":[{"name":1}]}`,
		`{"d":"\"name\":\"x\\\"","name":"ok"}`,
		`{"a":[1,{"b":"}"}],"name":"c"}`,
		`{"_meta":{"progressToken":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28"},"name":"a"}`,
		`{"a":[1,2.5e-3,"x\u0041",true,null,{}]}`,
		`{"":{"":[]}}`,
		` [ 1 , -0.5e+3 , "x\u00e9\n" , true , false , null ] `,
		`0`, `-0`, `1E9`, `-0.0E+1`, `"\/"`, "\"\xff\"", `"\ud83d\ude00"`, `"\ud800\u0041"`, `"\ude00"`,
		``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a" 1}`, `{1:2}`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `+1`,
		`tru`, `nul`, `fals`, `trux`, `"\x"`, `"\u12g4"`, "\"a\nb\"", `"abc`, `[1 2]`, `{"a":1}}`, `[[[]]`, `]`,
		`{"a":1 "b":2}`, `{"a":1} x`, `"a"b"`, "\ufeff{}", "{\"a\":\"\x01\"}",
		deep(20), deep(1001), deep(DefaultMaxDepth), deep(DefaultMaxDepth + 1),
		strings.Repeat(`{"a":`, 30) + "1" + strings.Repeat("}", 30),
		"q\"<&>\n\u2028\u2029\x01\b\f\x7f",
	}
}

// FuzzCompareStdlib checks Validate, ValidateObject and the trusting
// functions against encoding/json. They may differ only where this
// package is stricter on purpose, and then in one way: Validate reports
// the first duplicate member or the first bracket beyond MaxDepth, as
// json.Decoder's token stream finds it, before any syntax error. Every
// syntax error has encoding/json's offset. The input also serves as a Go
// string for AppendString and as a string token for DecodeString, and the
// trusting functions must survive it whatever it is.
func FuzzCompareStdlib(f *testing.F) {
	for _, s := range seedCorpus() {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, depth uint8) {
		lim := Limits{}
		if depth < 16 && depth > 0 {
			lim.MaxDepth = int(depth)
		}
		want := expect(t, b, lim)
		err := Validate(b, lim)
		checkError(t, b, err, want)
		fields, oerr := ValidateObject(b, lim, nil)
		if want.err == nil && firstByte(b) != '{' {
			if !errors.Is(oerr, ErrNotObject) {
				t.Fatalf("ValidateObject(%q) = %v, want ErrNotObject", b, oerr)
			}
		} else {
			checkError(t, b, oerr, want)
		}
		if want.err == nil {
			checkTrusting(t, b, fields)
		}
		checkStrings(t, b)

		// The trusting functions on anything: no panic, no endless loop,
		// and an edit of valid JSON stays valid.
		_ = SkipValue(b, SkipSpace(b, 0))
		_ = EachMember(b, func(_, _ []byte) bool { return true })
		_ = EachElement(b, func([]byte) bool { return true })
		_ = IsNull(b) || IsTrue(b)
		if out, ok := ReplaceMember(b, "name", []byte(`"z"`)); ok && json.Valid(b) && !json.Valid(out) {
			t.Fatalf("replacing name in %q gave invalid JSON %q", b, out)
		}
	})
}

// event is what Validate must report.
type event struct {
	err    error // nil, ErrSyntax, ErrTooDeep or ErrDuplicateMember
	offset int
	key    string
}

// expect computes what Validate must report for b: the first duplicate or
// too deep bracket in json.Decoder's token stream, else encoding/json's
// syntax error, else nothing.
func expect(t *testing.T, b []byte, lim Limits) event {
	t.Helper()
	maxDepth := lim.MaxDepth
	if maxDepth == 0 {
		maxDepth = DefaultMaxDepth
	}
	// A syntax error's position: with a byte appended that nothing valid
	// can continue with (a control character), input that ends too early
	// fails at that byte, len(b), and every error is at Offset-1.
	synAt := -1
	if !json.Valid(b) {
		var syn *json.SyntaxError
		var v any
		if !errors.As(json.Unmarshal(append(bytes.Clone(b), 1), &v), &syn) {
			t.Fatalf("no syntax error for %q", b)
		}
		synAt = int(syn.Offset) - 1
	}
	type frame struct {
		obj, wantKey bool
		keys         map[string]bool
	}
	var stack []frame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	for {
		before := int(dec.InputOffset())
		tok, err := dec.Token()
		if err != nil {
			break
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if len(stack) >= maxDepth {
					return event{err: ErrTooDeep, offset: int(dec.InputOffset()) - 1}
				}
				stack = append(stack, frame{obj: tok == '{', wantKey: true})
			default:
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].wantKey = true
				}
			}
		case string:
			if top != nil && top.obj && top.wantKey {
				start := before + bytes.IndexByte(b[before:], '"')
				if top.keys[tok] {
					return event{err: ErrDuplicateMember, offset: start, key: tok}
				}
				if top.keys == nil {
					top.keys = map[string]bool{}
				}
				top.keys[tok] = true
				top.wantKey = false
				break
			}
			if top != nil {
				top.wantKey = true
			}
		default:
			if top != nil {
				top.wantKey = true
			}
		}
		if len(stack) == 0 {
			break // The first top-level value is complete.
		}
	}
	if synAt >= 0 {
		return event{err: ErrSyntax, offset: synAt}
	}
	return event{}
}

func checkError(t *testing.T, b []byte, err error, want event) {
	t.Helper()
	if want.err == nil {
		if err != nil {
			t.Fatalf("Validate(%q) = %v; encoding/json accepts it, without duplicates or excess depth", b, err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Validate(%q) = %v, want %v at %d", b, err, want.err, want.offset)
	}
	if !errors.Is(err, want.err) || e.Offset != want.offset || e.Key != want.key {
		t.Fatalf("Validate(%q) = %v (key %q), want %v at %d (key %q)", b, err, e.Key, want.err, want.offset, want.key)
	}
}

func firstByte(b []byte) byte {
	if i := SkipSpace(b, 0); i < len(b) {
		return b[i]
	}
	return 0
}

// checkTrusting checks the trusting functions on valid input b, whose
// top-level members (when an object) ValidateObject found as fields.
func checkTrusting(t *testing.T, b []byte, fields []Field) {
	t.Helper()
	start := SkipSpace(b, 0)
	if end := SkipValue(b, start); end < 0 || SkipSpace(b, end) != len(b) {
		t.Fatalf("SkipValue(%q, %d) = %d", b, start, end)
	}
	switch b[start] {
	case '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", b, err)
		}
		if len(fields) != len(m) {
			t.Fatalf("ValidateObject(%q): %d fields, encoding/json decodes %d", b, len(fields), len(m))
		}
		names := make([]string, len(fields))
		for i, f := range fields {
			raw := b[f.Key.Start:f.Key.End]
			name, ok := DecodeString(raw)
			if !ok || !StringIs(raw, name) {
				t.Fatalf("member name %q of %q: DecodeString %q, %v", raw, b, name, ok)
			}
			names[i] = name
			if got, want := b[f.Value.Start:f.Value.End], m[name]; !bytes.Equal(got, want) {
				t.Fatalf("member %q of %q: value %q, encoding/json says %q", name, b, got, want)
			}
		}
		i := 0
		err := EachMember(b, func(k, v []byte) bool {
			f := fields[i]
			if !bytes.Equal(k, b[f.Key.Start:f.Key.End]) || !bytes.Equal(v, b[f.Value.Start:f.Value.End]) {
				t.Fatalf("EachMember(%q) member %d: %q: %q, want field %v", b, i, k, v, f)
			}
			i++
			return true
		})
		if err != nil || i != len(fields) {
			t.Fatalf("EachMember(%q): %v after %d members of %d", b, err, i, len(fields))
		}
		for i, name := range names {
			if i == 64 {
				break // Member is linear: keep the check so.
			}
			if !plain([]byte(name)) {
				continue // Member takes plain names only.
			}
			folded := false
			for j, other := range names {
				folded = folded || j != i && strings.EqualFold(other, name)
			}
			got := Member(b, name)
			want := b[fields[i].Value.Start:fields[i].Value.End]
			if folded {
				want = nil
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Member(%q, %q) = %q, want %q", b, name, got, want)
			}
		}
	case '[':
		var elems []json.RawMessage
		if err := json.Unmarshal(b, &elems); err != nil {
			t.Fatalf("json.Unmarshal(%q): %v", b, err)
		}
		i := 0
		err := EachElement(b, func(v []byte) bool {
			if !bytes.Equal(v, elems[i]) {
				t.Fatalf("EachElement(%q) element %d: %q, encoding/json says %q", b, i, v, elems[i])
			}
			i++
			return true
		})
		if err != nil || i != len(elems) {
			t.Fatalf("EachElement(%q): %v after %d elements of %d", b, err, i, len(elems))
		}
	}
}

// checkStrings checks the string codec on b, as a Go string and as a JSON
// string token.
func checkStrings(t *testing.T, b []byte) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(string(b)); err != nil {
		t.Fatal(err)
	}
	want := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if got := AppendString(nil, string(b)); !bytes.Equal(got, want) {
		t.Fatalf("AppendString(%q) = %s, encoding/json says %s", b, got, want)
	}
	if got := AppendString(nil, b); !bytes.Equal(got, want) {
		t.Fatalf("AppendString([]byte %q) = %s, encoding/json says %s", b, got, want)
	}
	jcs := bytes.ReplaceAll(bytes.ReplaceAll(want, []byte(`\u2028`), []byte("\u2028")), []byte(`\u2029`), []byte("\u2029"))
	if got := AppendStringJCS(nil, b); !bytes.Equal(got, jcs) {
		t.Fatalf("AppendStringJCS(%q) = %s, want %s", b, got, jcs)
	}
	var round string
	if err := json.Unmarshal(want, &round); err != nil {
		t.Fatal(err)
	}
	if got, ok := DecodeString(want); !ok || got != round || !StringIs(want, round) {
		t.Fatalf("DecodeString(%s) = %q, %v; want %q", want, got, ok, round)
	}

	// b as a string token: the same value as encoding/json, or none.
	var s string
	jerr := json.Unmarshal(b, &s)
	got, ok := DecodeString(b)
	token := len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"'
	switch {
	case !token || jerr != nil:
		if ok {
			t.Fatalf("DecodeString(%q) = %q; encoding/json: %v", b, got, jerr)
		}
	case !ok || got != s:
		t.Fatalf("DecodeString(%q) = %q, %v; encoding/json says %q", b, got, ok, s)
	case !StringIs(b, s):
		t.Fatalf("StringIs(%q, %q) = false", b, s)
	case utf8.ValidString(s) && StringIs(b, s+"x"):
		t.Fatalf("StringIs(%q, %q) = true", b, s+"x")
	}
}
