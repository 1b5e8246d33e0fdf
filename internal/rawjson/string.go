package rawjson

import (
	"bytes"
	"unicode/utf16"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s to dst as a JSON string, byte for byte as
// encoding/json encodes a string with HTML escaping off
// (Encoder.SetEscapeHTML(false)): '"' and '\' escaped, \b \f \n \r \t for
// those control characters and \u00xx for the others, U+2028 and U+2029
// escaped (JavaScript reads them as line ends), each byte of invalid UTF-8
// replaced by U+FFFD, everything else as it is ('<', '>' and '&' included).
func AppendString[S ~string | ~[]byte](dst []byte, s S) []byte {
	return appendString(dst, s, true)
}

// AppendStringJCS appends s as RFC 8785 (JSON Canonicalization Scheme)
// writes a string, which is ECMAScript's JSON.stringify: as AppendString,
// except that U+2028 and U+2029 are written as they are. Canonical input
// is valid UTF-8; should s not be, each invalid byte becomes U+FFFD, as in
// AppendString.
func AppendStringJCS[S ~string | ~[]byte](dst []byte, s S) []byte {
	return appendString(dst, s, false)
}

// appendString is the one escaping loop of mcpgw. escapeLineSeps selects
// encoding/json's rules (true) or JCS's (false); they differ only there.
func appendString[S ~string | ~[]byte](dst []byte, s S, escapeLineSeps bool) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// A tight loop over the run of bytes that need nothing.
		for i < len(s) && s[i] >= 0x20 && s[i] != '"' && s[i] != '\\' && s[i] < utf8.RuneSelf {
			i++
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
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
		if c >= 0xc2 && c < 0xe0 && i+1 < len(s) && s[i+1]&0xc0 == 0x80 {
			i += 2 // A valid two-byte sequence (Latin, Greek, Cyrillic…).
			continue
		}
		// At most utf8.UTFMax bytes are converted: the conversion of a
		// []byte this short needs no allocation.
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case escapeLineSeps && (r == '\u2028' || r == '\u2029'):
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// unquote returns the contents of the JSON string token raw (quotes
// included); false when raw does not start and end with a quote.
func unquote(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	return raw[1 : len(raw)-1], true
}

// plain reports whether the string contents inner decode to themselves:
// no escape, quote or control character, and valid UTF-8.
func plain(inner []byte) bool {
	ascii := true
	for _, c := range inner {
		switch {
		case c < 0x20 || c == '"' || c == '\\':
			return false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return ascii || utf8.Valid(inner)
}

// DecodeString decodes the JSON string token raw (quotes included) as
// encoding/json does: escapes resolved, invalid UTF-8 and unpaired
// surrogates replaced by U+FFFD. It reports false when raw is not exactly
// one valid JSON string. Contents that need no decoding are copied once.
func DecodeString(raw []byte) (string, bool) {
	inner, ok := unquote(raw)
	if !ok {
		return "", false
	}
	if plain(inner) {
		return string(inner), true
	}
	var buf [64]byte
	out, ok := appendUnquoted(buf[:0], inner)
	if !ok {
		return "", false
	}
	return string(out), true
}

// StringIs reports whether raw is a JSON string token that decodes to
// want. It allocates nothing unless raw holds escapes or invalid UTF-8 and
// decodes to more than 64 bytes.
func StringIs(raw []byte, want string) bool {
	inner, ok := unquote(raw)
	if !ok {
		return false
	}
	if string(inner) == want {
		// Equal bytes decode equal unless they need decoding at all.
		return plain(inner)
	}
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return false // Decodes to itself, which differs from want.
	}
	var buf [64]byte
	out, ok := appendUnquoted(buf[:0], inner)
	return ok && string(out) == want
}

// appendUnquoted appends the decoded contents inner of a JSON string to
// dst, as encoding/json decodes them. It reports false for a quote or
// control character, a bad escape, or a truncated one.
func appendUnquoted(dst, inner []byte) ([]byte, bool) {
	for i := 0; i < len(inner); {
		c := inner[i]
		switch {
		case c == '\\':
			if i+1 >= len(inner) {
				return dst, false
			}
			switch e := inner[i+1]; e {
			case '"', '\\', '/':
				dst = append(dst, e)
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(inner[i+2:])
				if r < 0 {
					return dst, false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair makes one rune; anything else is
					// U+FFFD, and what follows is read on its own.
					if i+1 < len(inner) && inner[i] == '\\' && inner[i+1] == 'u' {
						if r2 := utf16.DecodeRune(r, hex4(inner[i+2:])); r2 != utf8.RuneError {
							dst = utf8.AppendRune(dst, r2)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default:
				return dst, false
			}
			i += 2
		case c == '"' || c < 0x20:
			return dst, false
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(inner[i:])
			dst = utf8.AppendRune(dst, r) // U+FFFD for an invalid byte.
			i += size
		}
	}
	return dst, true
}

// hex4 decodes the four hex digits at the start of b; -1 when there are
// not four.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(d)
	}
	return r
}
