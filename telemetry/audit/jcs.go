package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// maxDepth bounds the nesting of arrays and objects the parser follows,
// so hostile input cannot exhaust the stack.
const maxDepth = 1000

// CanonicalSHA256 returns the lowercase hex SHA-256 of the RFC 8785 (JSON
// Canonicalization Scheme) form of args, so the same arguments hash the
// same whatever their key order, whitespace or number spelling. Empty args
// (no arguments) give "". Input that is not I-JSON (invalid JSON,
// duplicate keys, numbers beyond float64, lone surrogates, invalid UTF-8)
// has no canonical form; its raw bytes are hashed instead, which cannot
// collide with a canonical form since those are valid JSON.
func CanonicalSHA256(args json.RawMessage) string {
	if len(args) == 0 {
		return ""
	}
	p := getParser(args, modeCanonical)
	defer putParser(p)
	canon, err := p.document(p.out[:0])
	if err != nil {
		canon = args
	} else if cap(canon) <= maxPooledBuffer {
		p.out = canon
	}
	sum := sha256.Sum256(canon)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:])
}

// parsers recycles parsers and their scratch space.
var parsers = sync.Pool{New: func() any { return new(parser) }} //nolint:gochecknoglobals // a pool is process-wide by nature.

// putParser returns p to the pool unless its scratch space grew large.
func putParser(p *parser) {
	p.src = nil
	if max(cap(p.key), cap(p.names), cap(p.body), cap(p.out), 16*cap(p.members)) > maxPooledBuffer {
		return
	}
	parsers.Put(p)
}

// getParser returns a pooled parser reset to read src.
func getParser(src []byte, mode parseMode) *parser {
	p := parsers.Get().(*parser) //nolint:errcheck // parsers holds only *parser.
	p.src, p.pos, p.depth, p.mode = src, 0, 0, mode
	p.members, p.names = p.members[:0], p.names[:0]
	return p
}

// Canonicalize appends the RFC 8785 canonical form of the JSON text src to
// dst: no whitespace, object members sorted by the UTF-16 code units of
// their names, numbers in ECMAScript's shortest round-trip form, strings
// with only '"', '\' and control characters escaped. It fails on input
// that is not I-JSON (RFC 7493).
func Canonicalize(dst, src []byte) ([]byte, error) {
	p := getParser(src, modeCanonical)
	defer putParser(p)
	return p.document(dst)
}

// Markers that Redact puts in place of values.
const (
	// RedactedString replaces every string value.
	RedactedString = "<string>"
	// RedactedNumber replaces every number value.
	RedactedNumber = "<number>"
)

// Redact returns args with every string value replaced by the string
// "<string>" and every number by the string "<number>"; object keys,
// arrays, true, false and null are kept, in their order, so the record
// shows the call's shape without its data. The result is compact JSON.
// Note that keys are kept: arguments that use data as keys (a map keyed
// by e-mail address) reveal it. Empty args give nil.
func Redact(args json.RawMessage) (json.RawMessage, error) {
	if len(args) == 0 {
		return nil, nil
	}
	p := getParser(args, modeRedact)
	defer putParser(p)
	out, err := p.document(make([]byte, 0, len(args)))
	if err != nil {
		return nil, err
	}
	return out, nil
}

type parseMode uint8

const (
	modeCanonical parseMode = iota
	modeRedact
)

// parser reads JSON and writes its canonical or redacted form.
type parser struct {
	src   []byte
	pos   int
	depth int
	mode  parseMode
	// key is scratch space for decoding a string.
	key []byte
	// members, names and body are stacks shared by nested objects, so
	// canonicalizing allocates little: an object pushes its members (and
	// their decoded names) and pops them when it is written.
	members []member
	names   []byte
	body    []byte
	// out is CanonicalSHA256's output buffer.
	out []byte
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrInvalidJSON, p.pos, fmt.Sprintf(format, args...))
}

func (p *parser) document(dst []byte) ([]byte, error) {
	p.skipSpace()
	dst, err := p.value(dst)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, p.errorf("data after the value")
	}
	return dst, nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(dst []byte) ([]byte, error) {
	if p.pos >= len(p.src) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.object(dst)
	case c == '[':
		return p.array(dst)
	case c == '"':
		start := len(dst)
		dst, err := p.string(dst)
		if err != nil {
			return nil, err
		}
		if p.mode == modeRedact {
			dst = append(dst[:start], `"`+RedactedString+`"`...)
		}
		return dst, nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(dst)
	default:
		for _, lit := range [...]string{"true", "false", "null"} {
			if len(p.src)-p.pos >= len(lit) && string(p.src[p.pos:p.pos+len(lit)]) == lit {
				p.pos += len(lit)
				return append(dst, lit...), nil
			}
		}
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorf("nested deeper than %d", maxDepth)
	}
	return nil
}

func (p *parser) array(dst []byte) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ']' {
		p.pos++
		p.depth--
		return append(dst, ']'), nil
	}
	for {
		p.skipSpace()
		var err error
		if dst, err = p.value(dst); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unterminated array")
		}
		switch p.src[p.pos] {
		case ',':
			p.pos++
			dst = append(dst, ',')
		case ']':
			p.pos++
			p.depth--
			return append(dst, ']'), nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

// member locates one "name":value of an object being written.
type member struct {
	nameStart, nameEnd int // of the decoded name in parser.names
	start, end         int // of the encoded member in dst
}

func (p *parser) object(dst []byte) ([]byte, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	objStart := len(dst)
	dst = append(dst, '{')
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '}' {
		p.pos++
		p.depth--
		return append(dst, '}'), nil
	}
	base, namesBase := len(p.members), len(p.names)
	for {
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != '"' {
			return nil, p.errorf("expected a member name")
		}
		m := member{start: len(dst)}
		var err error
		if dst, err = p.string(dst); err != nil {
			return nil, err
		}
		if p.mode == modeCanonical {
			m.nameStart = len(p.names)
			p.names = append(p.names, p.key...)
			m.nameEnd = len(p.names)
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.pos++
		dst = append(dst, ':')
		p.skipSpace()
		if dst, err = p.value(dst); err != nil {
			return nil, err
		}
		m.end = len(dst)
		p.members = append(p.members, m)
		p.skipSpace()
		if p.pos >= len(p.src) {
			return nil, p.errorf("unterminated object")
		}
		if c := p.src[p.pos]; c == ',' {
			p.pos++
			dst = append(dst, ',')
			continue
		} else if c != '}' {
			return nil, p.errorf("expected ',' or '}'")
		}
		p.pos++
		p.depth--
		break
	}
	if p.mode == modeCanonical {
		var err error
		if dst, err = p.sortMembers(dst, objStart, p.members[base:]); err != nil {
			return nil, err
		}
	}
	p.members = p.members[:base]
	p.names = p.names[:namesBase]
	return append(dst, '}'), nil
}

// sortMembers rewrites the members written after dst[objStart] ('{') in
// the order of their names' UTF-16 code units, rejecting duplicates.
func (p *parser) sortMembers(dst []byte, objStart int, members []member) ([]byte, error) {
	name := func(m member) []byte { return p.names[m.nameStart:m.nameEnd] }
	byName := func(a, b member) int { return compareUTF16(name(a), name(b)) }
	sorted := slices.IsSortedFunc(members, byName)
	if !sorted {
		slices.SortStableFunc(members, byName)
	}
	for i := 1; i < len(members); i++ {
		if byName(members[i], members[i-1]) == 0 {
			return nil, p.errorf("duplicate member name %q", name(members[i]))
		}
	}
	if sorted {
		return dst, nil
	}
	p.body = append(p.body[:0], dst[objStart+1:]...)
	body := p.body
	base := objStart + 1
	dst = dst[:base]
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, body[m.start-base:m.end-base]...)
	}
	return dst, nil
}

// compareUTF16 compares strings by their UTF-16 code units, as RFC 8785
// sorts member names.
func compareUTF16(a, b []byte) int {
	for len(a) > 0 && len(b) > 0 {
		ra, sa := utf8.DecodeRune(a)
		rb, sb := utf8.DecodeRune(b)
		a, b = a[sa:], b[sb:]
		if ra == rb {
			continue
		}
		a1, a2 := utf16Units(ra)
		b1, b2 := utf16Units(rb)
		if a1 != b1 {
			return int(a1) - int(b1)
		}
		return int(a2) - int(b2)
	}
	return len(a) - len(b)
}

func utf16Units(r rune) (uint16, uint16) {
	if r >= 0x10000 {
		hi, lo := utf16.EncodeRune(r)
		return uint16(hi), uint16(lo)
	}
	return uint16(r), 0
}

// string reads a JSON string at p.pos, writes its canonical encoding to
// dst and leaves its decoded bytes in p.key.
func (p *parser) string(dst []byte) ([]byte, error) {
	p.pos++ // '"'
	p.key = p.key[:0]
	for {
		if p.pos >= len(p.src) {
			return nil, p.errorf("unterminated string")
		}
		c := p.src[p.pos]
		switch {
		case c == '"':
			p.pos++
			return rawjson.AppendStringJCS(dst, p.key), nil
		case c == '\\':
			if err := p.escape(); err != nil {
				return nil, err
			}
		case c < 0x20:
			return nil, p.errorf("control character in string")
		case c < utf8.RuneSelf:
			p.key = append(p.key, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.src[p.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, p.errorf("invalid UTF-8")
			}
			p.key = append(p.key, p.src[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
}

// escape decodes the escape sequence at p.pos into p.key.
func (p *parser) escape() error {
	if p.pos+1 >= len(p.src) {
		return p.errorf("unterminated escape")
	}
	c := p.src[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		p.key = append(p.key, c)
	case 'b':
		p.key = append(p.key, '\b')
	case 'f':
		p.key = append(p.key, '\f')
	case 'n':
		p.key = append(p.key, '\n')
	case 'r':
		p.key = append(p.key, '\r')
	case 't':
		p.key = append(p.key, '\t')
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(r) {
			if r >= 0xdc00 || p.pos+1 >= len(p.src) || p.src[p.pos] != '\\' || p.src[p.pos+1] != 'u' {
				return p.errorf("lone surrogate")
			}
			p.pos += 2
			lo, err := p.hex4()
			if err != nil {
				return err
			}
			r = utf16.DecodeRune(r, lo)
			if r == utf8.RuneError {
				return p.errorf("lone surrogate")
			}
		}
		p.key = utf8.AppendRune(p.key, r)
	default:
		return p.errorf("invalid escape")
	}
	return nil
}

func (p *parser) hex4() (rune, error) {
	if p.pos+4 > len(p.src) {
		return 0, p.errorf("short \\u escape")
	}
	var r rune
	for _, c := range p.src[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.errorf("invalid \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}

// number reads a JSON number and writes it in ECMAScript form (or, when
// redacting, the number marker).
func (p *parser) number(dst []byte) ([]byte, error) {
	start := p.pos
	if p.src[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == '0':
		p.pos++
	case p.pos < len(p.src) && p.src[p.pos] >= '1' && p.src[p.pos] <= '9':
		p.digits()
	default:
		return nil, p.errorf("invalid number")
	}
	if p.pos < len(p.src) && p.src[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if p.pos < len(p.src) && (p.src[p.pos] == 'e' || p.src[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.src) && (p.src[p.pos] == '+' || p.src[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if p.mode == modeRedact {
		return append(dst, `"`+RedactedNumber+`"`...), nil
	}
	f, err := strconv.ParseFloat(string(p.src[start:p.pos]), 64)
	if err != nil {
		return nil, p.errorf("number out of range")
	}
	return AppendES6Number(dst, f), nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// AppendES6Number appends f as ECMAScript's Number.prototype.toString
// writes it (ECMA-262 section 7.1.12.1), the number form of RFC 8785: the
// shortest digits that round-trip, in plain notation for exponents from
// -7 to 20 and in exponent notation otherwise; -0 is "0". f must be
// finite.
func AppendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...) // Not reachable from JSON input.
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±xx
	mant, exp := e, 0
	for i, c := range e {
		if c == 'e' {
			mant = e[:i]
			exp, _ = strconv.Atoi(string(e[i+1:]))
			break
		}
	}
	var digitsBuf [24]byte
	digits := digitsBuf[:0]
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	k := len(digits)
	n := exp + 1 // The decimal point sits after n digits.
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
