package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The functions here find one top-level string member of a raw JSON object
// (a tool's "name", a resource's "uri") and splice a new value in its place,
// so every other byte of the upstream's object reaches the host unchanged:
// key order, whitespace, schemas, annotations and members this gateway does
// not know about.

// member is the located top-level string member of one item.
type member struct {
	obj        []byte // the object, without surrounding whitespace
	start, end int    // span of the member's value in obj, quotes included
	value      string // the decoded value
}

// findMember validates raw as a JSON object and locates its top-level
// member key, which must be a string and appear once. Keys are compared
// after decoding escapes, as a JSON parser on the host would, and nested
// objects with a member of the same name are skipped. Validation and search
// are one pass over the bytes.
func findMember(raw []byte, key string) (member, error) {
	obj := trimSpace(raw)
	if len(obj) == 0 || obj[0] != '{' {
		if json.Valid(raw) {
			return member{}, errNotObject
		}
		return member{}, errInvalidJSON
	}
	start, end, err := memberSpan(obj, key)
	if err != nil {
		return member{}, err
	}
	if obj[start] != '"' {
		return member{}, errNotString
	}
	value, err := decodeString(obj[start:end])
	if err != nil {
		return member{}, err
	}
	return member{obj: obj, start: start, end: end, value: value}, nil
}

// appendReplaced appends m's object to dst with the member's value replaced
// by the JSON encoding of value.
func (m member) appendReplaced(dst []byte, value string) []byte {
	dst = append(dst, m.obj[:m.start]...)
	dst = appendString(dst, value)
	return append(dst, m.obj[m.end:]...)
}

// rename returns the JSON object raw with its top-level "name" replaced by
// name, and the original name.
func rename(raw []byte, name string) ([]byte, string, error) {
	m, err := findMember(raw, "name")
	if err != nil {
		return nil, "", err
	}
	return m.appendReplaced(make([]byte, 0, len(m.obj)+len(name)+8), name), m.value, nil
}

// memberSpan validates obj, which starts with '{' and has no trailing
// whitespace, as one JSON object and returns the span of the value of its
// top-level member key. A missing or repeated member is an error: with two
// "name" members, hosts disagree about which one counts, so such an item
// cannot be renamed safely.
func memberSpan(obj []byte, key string) (start, end int, err error) {
	start, end = -1, -1
	i := skipSpace(obj, 1)
	if i < len(obj) && obj[i] == '}' {
		i++
	} else {
		for {
			kStart := i
			kEnd := scanString(obj, i)
			if kEnd < 0 {
				return 0, 0, errInvalidJSON
			}
			i = skipSpace(obj, kEnd)
			if i >= len(obj) || obj[i] != ':' {
				return 0, 0, errInvalidJSON
			}
			i = skipSpace(obj, i+1)
			vEnd := scanValue(obj, i, maxDepth-1)
			if vEnd < 0 {
				return 0, 0, errInvalidJSON
			}
			if keyEquals(obj[kStart:kEnd], key) {
				if start >= 0 {
					err = errDuplicateKey // reported once the whole object is valid
				}
				start, end = i, vEnd
			}
			i = skipSpace(obj, vEnd)
			if i >= len(obj) {
				return 0, 0, errInvalidJSON
			}
			if obj[i] == '}' {
				i++
				break
			}
			if obj[i] != ',' {
				return 0, 0, errInvalidJSON
			}
			i = skipSpace(obj, i+1)
		}
	}
	switch {
	case i != len(obj):
		return 0, 0, errInvalidJSON
	case err != nil:
		return 0, 0, err
	case start < 0:
		return 0, 0, errMissingMember
	}
	return start, end, nil
}

// isSpace reports JSON whitespace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// scanString validates the JSON string starting at b[i] and returns the
// index after it, or -1. Like encoding/json it accepts invalid UTF-8.
func scanString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		default:
			i++
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber validates the JSON number starting at b[i] and returns the
// index after it, or -1.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case isDigit(b[i]):
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return -1
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	return i
}

// scanLiteral checks that b[i:] starts with lit and returns the index after
// it, or -1.
func scanLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// maxDepth is the deepest nesting of objects and arrays accepted, that of
// encoding/json: a deeper item would make a Go host reject the whole page.
const maxDepth = 10000

// scanValue validates the JSON value starting at b[i], nested at most depth
// levels, and returns the index after it, or -1. Nesting is tracked on an
// explicit stack, not by recursion, so deep input cannot exhaust the
// goroutine stack.
func scanValue(b []byte, i, depth int) int {
	var stackBuf [64]byte
	stack := stackBuf[:0] // '{' or '[' per open container
	for {
		// A value starts at i.
		if i >= len(b) {
			return -1
		}
		opened := false
		switch c := b[i]; c {
		case '{', '[':
			if len(stack) == depth {
				return -1
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == closer {
				i++
				break
			}
			stack = append(stack, c)
			opened = true
		case '"':
			i = scanString(b, i)
		case 't':
			i = scanLiteral(b, i, "true")
		case 'f':
			i = scanLiteral(b, i, "false")
		case 'n':
			i = scanLiteral(b, i, "null")
		default:
			i = scanNumber(b, i)
		}
		if i < 0 {
			return -1
		}
		if !opened {
			// The value ended: close containers until one continues.
			for {
				if len(stack) == 0 {
					return i
				}
				i = skipSpace(b, i)
				if i >= len(b) {
					return -1
				}
				top := stack[len(stack)-1]
				if b[i] == ',' {
					i = skipSpace(b, i+1)
					break
				}
				if top == '{' && b[i] == '}' || top == '[' && b[i] == ']' {
					stack = stack[:len(stack)-1]
					i++
					continue
				}
				return -1
			}
		}
		if stack[len(stack)-1] == '{' {
			// A member: key, colon, then its value.
			i = scanString(b, i)
			if i < 0 {
				return -1
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i++
		}
		i = skipSpace(b, i)
	}
}

// keyEquals reports whether the raw JSON string rawKey decodes to key.
func keyEquals(rawKey []byte, key string) bool {
	if len(rawKey) < 2 {
		return false
	}
	inner := rawKey[1 : len(rawKey)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	s, err := decodeString(rawKey)
	return err == nil && s == key
}

// decodeString decodes the raw JSON string raw, quotes included.
func decodeString(raw []byte) (string, error) {
	inner := raw[1 : len(raw)-1]
	plain := true
	for _, c := range inner {
		if c < 0x20 || c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		return string(inner), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("decoding string: %w", err)
	}
	return s, nil
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Unlike encoding/json it leaves
// <, > and & alone; like it, it escapes U+2028 and U+2029 and replaces
// each byte of invalid UTF-8 with U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
