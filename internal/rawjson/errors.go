package rawjson

import (
	"errors"
	"strconv"
)

// The kinds of error Validate and ValidateObject report. Each comes wrapped
// in an *Error that says where; test with errors.Is.
var (
	// ErrSyntax: the input is not JSON (RFC 8259).
	ErrSyntax = errors.New("not valid JSON")
	// ErrTooDeep: objects and arrays nest deeper than Limits.MaxDepth. The
	// input may be well-formed JSON; it is refused as too costly to follow.
	ErrTooDeep = errors.New("nested too deep")
	// ErrDuplicateMember: an object has two members of the same name
	// (compared after decoding escapes). Parsers disagree on which one
	// counts; encoding/json keeps the last.
	ErrDuplicateMember = errors.New("duplicate member")
	// ErrTooLarge: the input is longer than Limits.MaxSize.
	ErrTooLarge = errors.New("too large")
	// ErrNotObject: ValidateObject got valid JSON that is not an object.
	ErrNotObject = errors.New("not a JSON object")
)

// Error is the error of Validate and ValidateObject: one of the sentinel
// errors above with the place it applies to.
type Error struct {
	// Err is ErrSyntax, ErrTooDeep, ErrDuplicateMember, ErrTooLarge or
	// ErrNotObject.
	Err error
	// Offset is the byte offset in the input of what is wrong: the first
	// byte that cannot continue valid JSON (the length of the input when
	// it ends too early), the bracket that nests too deep, the opening
	// quote of the second of two members, the first value that is not an
	// object. For ErrTooLarge it is the limit.
	Offset int
	// Key is the name of the duplicate member, decoded.
	Key string
	// Detail says more about a syntax error ("invalid character 'x' in
	// numeric literal"), or the limit that was exceeded.
	Detail string
}

// maxKeyInError bounds the duplicate key quoted in an error message, so a
// hostile key cannot flood a log line.
const maxKeyInError = 64

func (e *Error) Error() string {
	at := " at offset " + strconv.Itoa(e.Offset)
	switch {
	case errors.Is(e.Err, ErrDuplicateMember):
		k := e.Key
		if len(k) > maxKeyInError {
			k = k[:maxKeyInError] + "…"
		}
		return e.Err.Error() + " " + strconv.Quote(k) + at
	case errors.Is(e.Err, ErrTooLarge), errors.Is(e.Err, ErrNotObject):
		if e.Detail == "" {
			return e.Err.Error()
		}
		return e.Err.Error() + ": " + e.Detail
	default:
		if e.Detail == "" {
			return e.Err.Error() + at
		}
		return e.Err.Error() + ": " + e.Detail + at
	}
}

// Unwrap returns the sentinel error.
func (e *Error) Unwrap() error { return e.Err }
