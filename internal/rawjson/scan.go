package rawjson

import (
	"bytes"
	"unicode/utf8"
)

// The trusting functions below read JSON that has been validated already
// (by Validate, or by the peer's encoder and json.Valid). They follow
// quotes and brackets but do not check the spelling of numbers, literals
// and escapes, nor nesting depth, so they are cheap enough for every call.
// On input that is not valid JSON they return garbage or report failure,
// but never panic or loop.

// isSpace reports JSON white space.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first byte at or after i that is not
// JSON white space (len(b) when there is none).
func SkipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string whose opening quote
// is b[i], or -1 when it does not end.
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

// SkipValue returns the index just past the JSON value that starts at
// b[i], or -1 when no value starts there or it does not end.
func SkipValue(b []byte, i int) int {
	if i < 0 || i >= len(b) {
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
	case ',', ':', '}', ']', ' ', '\t', '\r', '\n':
		return -1
	default:
		j := i + 1
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

// keyMatch is how a member name compares with the name looked up.
type keyMatch uint8

const (
	keyOther keyMatch = iota
	// keyExact: the same name.
	keyExact
	// keyFolded: the same name up to case folding. encoding/json matches
	// such a name to the same struct field, so a Go peer may read this
	// member where we read the exact one.
	keyFolded
)

// matchKey compares the contents of a quoted member name with key;
// keyASCII says whether key is all ASCII.
func matchKey(inner []byte, key string, keyASCII bool) keyMatch {
	if string(inner) == key {
		return keyExact
	}
	special := false
	for _, c := range inner {
		if c == '\\' || c >= utf8.RuneSelf {
			special = true
			break
		}
	}
	name := inner
	if special {
		var buf [64]byte
		decoded, ok := appendUnquoted(buf[:0], inner)
		if !ok {
			return keyOther
		}
		if string(decoded) == key {
			return keyExact
		}
		name = decoded
	} else if len(inner) != len(key) && keyASCII {
		return keyOther // ASCII names fold only to names of their length.
	}
	if bytes.EqualFold(name, []byte(key)) {
		return keyFolded
	}
	return keyOther
}

func isASCII(s string) bool {
	for i := range len(s) {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// MemberSpan returns the span obj[start:end] of the value of the member
// key of the JSON object obj (top level only). It reports false when obj
// is not an object, has no such member, or has it twice; and "twice"
// includes a name that equals key only up to case ("Name" for "name"),
// because encoding/json, and so a Go upstream, matches either spelling to
// the same struct field, keeping the last: the gateway would check one
// value and the upstream act on the other.
func MemberSpan(obj []byte, key string) (start, end int, ok bool) {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return 0, 0, false
	}
	keyASCII := isASCII(key)
	for i = SkipSpace(obj, i+1); ; i = SkipSpace(obj, i) {
		if i >= len(obj) {
			return 0, 0, false
		}
		switch obj[i] {
		case '}':
			return start, end, ok
		case ',':
			i++
			continue
		case '"':
		default:
			return 0, 0, false
		}
		kEnd := skipString(obj, i)
		if kEnd < 0 {
			return 0, 0, false
		}
		match := matchKey(obj[i+1:kEnd-1], key, keyASCII)
		i = SkipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return 0, 0, false
		}
		i = SkipSpace(obj, i+1)
		vEnd := SkipValue(obj, i)
		if vEnd < 0 {
			return 0, 0, false
		}
		switch {
		case match == keyFolded || match == keyExact && ok:
			return 0, 0, false
		case match == keyExact:
			start, end, ok = i, vEnd, true
		}
		i = vEnd
	}
}

// Member returns the raw value of the member key of the JSON object obj
// (top level only), or nil when MemberSpan reports false.
func Member(obj []byte, key string) []byte {
	s, e, ok := MemberSpan(obj, key)
	if !ok {
		return nil
	}
	return obj[s:e:e]
}

// ReplaceMember returns a copy of the JSON object obj with the value of its
// member key replaced by value, every other byte unchanged. It reports
// false when MemberSpan does.
func ReplaceMember(obj []byte, key string, value []byte) ([]byte, bool) {
	s, e, ok := MemberSpan(obj, key)
	if !ok {
		return nil, false
	}
	out := make([]byte, 0, len(obj)-(e-s)+len(value))
	out = append(out, obj[:s]...)
	out = append(out, value...)
	return append(out, obj[e:]...), true
}

// EachMember calls fn with the raw key (quotes and escapes as they are)
// and the raw value of each member of the JSON object obj, in order, until
// fn returns false. Compare keys with StringIs. It returns ErrSyntax when
// obj is not one object; members before the fault have been passed to fn.
func EachMember(obj []byte, fn func(key, value []byte) bool) error {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrSyntax
	}
	i = SkipSpace(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return end(obj, i+1)
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrSyntax
		}
		kEnd := skipString(obj, i)
		if kEnd < 0 {
			return ErrSyntax
		}
		key := obj[i:kEnd:kEnd]
		i = SkipSpace(obj, kEnd)
		if i >= len(obj) || obj[i] != ':' {
			return ErrSyntax
		}
		i = SkipSpace(obj, i+1)
		vEnd := SkipValue(obj, i)
		if vEnd < 0 {
			return ErrSyntax
		}
		if !fn(key, obj[i:vEnd:vEnd]) {
			return nil
		}
		i = SkipSpace(obj, vEnd)
		switch {
		case i >= len(obj):
			return ErrSyntax
		case obj[i] == '}':
			return end(obj, i+1)
		case obj[i] == ',':
			i = SkipSpace(obj, i+1)
		default:
			return ErrSyntax
		}
	}
}

// EachElement calls fn with each raw element of the JSON array arr, in
// order, until fn returns false. It returns ErrSyntax when arr is not one
// array; elements before the fault have been passed to fn.
func EachElement(arr []byte, fn func(value []byte) bool) error {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrSyntax
	}
	i = SkipSpace(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return end(arr, i+1)
	}
	for {
		vEnd := SkipValue(arr, i)
		if vEnd < 0 {
			return ErrSyntax
		}
		if !fn(arr[i:vEnd:vEnd]) {
			return nil
		}
		i = SkipSpace(arr, vEnd)
		switch {
		case i >= len(arr):
			return ErrSyntax
		case arr[i] == ']':
			return end(arr, i+1)
		case arr[i] == ',':
			i = SkipSpace(arr, i+1)
		default:
			return ErrSyntax
		}
	}
}

// end checks that only white space follows b[i].
func end(b []byte, i int) error {
	if SkipSpace(b, i) != len(b) {
		return ErrSyntax
	}
	return nil
}

// trim returns raw without surrounding JSON white space.
func trim(raw []byte) []byte {
	i := SkipSpace(raw, 0)
	j := len(raw)
	for j > i && isSpace(raw[j-1]) {
		j--
	}
	return raw[i:j]
}

// IsNull reports whether raw is absent (empty or white space) or the
// literal null.
func IsNull(raw []byte) bool {
	raw = trim(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// IsTrue reports whether raw is the literal true.
func IsTrue(raw []byte) bool { return string(trim(raw)) == "true" }
