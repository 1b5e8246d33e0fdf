package gateway

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The helpers here edit one top-level member of a raw JSON object without
// decoding the rest, so arguments and results are forwarded byte for byte.
// They assume their input is valid JSON (the envelope decode has checked it).
// gateway/catalog has a validating twin for untrusted upstream catalogs; the
// call path uses this one so that arguments and results are not validated a
// second time per call.

// memberSpan finds the value of the top-level member key in the JSON object
// obj and returns its byte span. It reports false when obj is not an object,
// has no such member, or has it twice: JSON parsers disagree on which of two
// duplicates wins, so a duplicate routing key ("name", "uri") could send the
// gateway's checks and the upstream's handler different names.
func memberSpan(obj []byte, key string) (start, end int, ok bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return 0, 0, false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return start, end, ok
		}
		if obj[i] == ',' {
			i++
			continue
		}
		if obj[i] != '"' {
			return 0, 0, false
		}
		kStart := i
		kEnd := skipString(obj, i)
		if kEnd < 0 {
			return 0, 0, false
		}
		i = skipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return 0, 0, false
		}
		i = skipSpace(obj, i+1)
		vEnd := skipValue(obj, i)
		if vEnd < 0 {
			return 0, 0, false
		}
		if keyEquals(obj[kStart:kEnd], key) {
			if ok {
				return 0, 0, false
			}
			start, end, ok = i, vEnd, true
		}
		i = vEnd
	}
}

// member returns the raw value of the top-level member key, or nil.
func member(obj []byte, key string) json.RawMessage {
	s, e, ok := memberSpan(obj, key)
	if !ok {
		return nil
	}
	return obj[s:e]
}

// replaceMember returns a copy of obj with the value of the top-level member
// key replaced by value. It reports false when the member is absent.
func replaceMember(obj []byte, key string, value []byte) ([]byte, bool) {
	s, e, ok := memberSpan(obj, key)
	if !ok {
		return nil, false
	}
	out := make([]byte, 0, len(obj)-(e-s)+len(value))
	out = append(out, obj[:s]...)
	out = append(out, value...)
	out = append(out, obj[e:]...)
	return out, true
}

// keyEquals compares a quoted JSON key with key. Keys with escapes are
// decoded first; they are rare.
func keyEquals(quoted []byte, key string) bool {
	inner := quoted[1 : len(quoted)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		return false
	}
	return s == key
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i] ('"').
func skipString(b []byte, i int) int {
	// Jump from quote to quote (IndexByte is vectorised); a quote ends the
	// string unless an odd run of backslashes escapes it.
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		q := j + k
		n := 0
		for p := q - 1; p >= j && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return j
			}
			j++
		}
		return j
	}
}

// stringMember returns the string value of obj's member key; false when it
// is missing or not a string.
func stringMember(obj json.RawMessage, key string) (string, bool) {
	return decodeString(member(obj, key))
}

// decodeString decodes the JSON string raw; false when raw is not one. A
// string without escapes is taken as it is.
func decodeString(raw []byte) (string, bool) {
	if inner, ok := plainString(raw); ok {
		return string(inner), true
	}
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// stringIs reports whether raw is a JSON string whose value is want,
// without allocating when raw has no escapes.
func stringIs(raw []byte, want string) bool {
	if inner, ok := plainString(raw); ok {
		return string(inner) == want
	}
	s, ok := decodeString(raw)
	return ok && s == want
}

// plainString returns the contents of the JSON string raw when it needs no
// decoding: no escapes, no control characters, valid UTF-8.
func plainString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c < 0x20 || c == '\\' || c == '"' {
			return nil, false
		}
	}
	return inner, utf8.Valid(inner)
}
