// Package jsonscan walks JSON-RPC envelopes at their top level without
// decoding them, for the benchmark's upstream and load generator: both must
// stay cheaper than the gateway they measure. Values are returned as slices
// of the input. The scanner checks structure (brackets, colons, commas,
// string quoting) but trusts the spelling of numbers, literals and escapes;
// use json.Valid when that matters.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrSyntax reports input that is not a JSON value of the expected shape.
var ErrSyntax = errors.New("jsonscan: malformed JSON")

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 1000

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// SkipValue returns the index just past the JSON value starting at b[i]
// (after optional white space).
func SkipValue(b []byte, i int) (int, error) {
	return skipValue(b, SkipSpace(b, i), 0)
}

func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{':
		return skipObject(b, i, depth+1)
	case '[':
		return skipArray(b, i, depth+1)
	default:
		start := i
		for i < len(b) {
			c := b[i]
			if c == ',' || c == '}' || c == ']' || c == ':' || c == '"' || c == '{' || c == '[' || isSpace(c) {
				break
			}
			i++
		}
		if i == start {
			return 0, ErrSyntax
		}
		return i, nil
	}
}

// skipString returns the index just past the string starting at b[i].
func skipString(b []byte, i int) (int, error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\':
			i++
		case c == '"':
			return i + 1, nil
		case c < 0x20:
			return 0, ErrSyntax
		}
	}
	return 0, ErrSyntax
}

func skipObject(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, ErrSyntax
	}
	end := 0
	err := fields(b, i, depth, func(_, _ []byte) bool { return true }, &end)
	return end, err
}

func skipArray(b []byte, i, depth int) (int, error) {
	if depth > maxDepth {
		return 0, ErrSyntax
	}
	end := 0
	err := elements(b, i, depth, func([]byte) bool { return true }, &end)
	return end, err
}

// fields walks the object at b[i] ('{'), calling fn with each raw key (the
// bytes between the quotes, escapes untouched) and raw value; fn returning
// false stops the walk early. *end receives the index past the object when
// the walk completed.
func fields(b []byte, i, depth int, fn func(key, val []byte) bool, end *int) error {
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		*end = i + 1
		return nil
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return ErrSyntax
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kEnd-1]
		i = SkipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return ErrSyntax
		}
		vStart := SkipSpace(b, i+1)
		vEnd, err := skipValue(b, vStart, depth)
		if err != nil {
			return err
		}
		if !fn(key, b[vStart:vEnd]) {
			return nil
		}
		i = SkipSpace(b, vEnd)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case '}':
			*end = i + 1
			return nil
		default:
			return ErrSyntax
		}
	}
}

func elements(b []byte, i, depth int, fn func(val []byte) bool, end *int) error {
	i = SkipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		*end = i + 1
		return nil
	}
	for {
		vEnd, err := skipValue(b, i, depth)
		if err != nil {
			return err
		}
		if !fn(b[i:vEnd]) {
			return nil
		}
		i = SkipSpace(b, vEnd)
		if i >= len(b) {
			return ErrSyntax
		}
		switch b[i] {
		case ',':
			i = SkipSpace(b, i+1)
		case ']':
			*end = i + 1
			return nil
		default:
			return ErrSyntax
		}
	}
}

// Fields calls fn with each member of the object obj: its raw key (escapes
// untouched) and raw value. fn returning false stops early. Trailing bytes
// after the object are an error.
func Fields(obj []byte, fn func(key, val []byte) bool) error {
	i := SkipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrSyntax
	}
	end := -1
	if err := fields(obj, i, 1, fn, &end); err != nil {
		return err
	}
	if end >= 0 && SkipSpace(obj, end) != len(obj) {
		return ErrSyntax
	}
	return nil
}

// Elements calls fn with each element of the array arr; fn returning false
// stops early.
func Elements(arr []byte, fn func(val []byte) bool) error {
	i := SkipSpace(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return ErrSyntax
	}
	end := -1
	if err := elements(arr, i, 1, fn, &end); err != nil {
		return err
	}
	if end >= 0 && SkipSpace(arr, end) != len(arr) {
		return ErrSyntax
	}
	return nil
}

// Member returns the raw value of the member key of obj, or nil when obj
// has no such member. The last occurrence wins, as in encoding/json.
func Member(obj []byte, key string) ([]byte, error) {
	var found []byte
	err := Fields(obj, func(k, v []byte) bool {
		if string(k) == key {
			found = v
		}
		return true
	})
	return found, err
}

// String decodes the raw JSON string s; ok is false when s is not a string.
func String(s []byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	inner := s[1 : len(s)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if bytes.IndexByte(inner, '"') >= 0 {
			return "", false
		}
		return string(inner), true
	}
	var out string
	if err := json.Unmarshal(s, &out); err != nil {
		return "", false
	}
	return out, true
}

// IsNull reports whether raw is absent or the literal null.
func IsNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// IsTrue reports whether raw is the literal true.
func IsTrue(raw []byte) bool { return string(raw) == "true" }
