package rawjson

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"strconv"
	"sync"
	"unicode/utf8"
)

// DefaultMaxDepth is the nesting limit when Limits.MaxDepth is 0. It is
// encoding/json's, so nothing that passes here fails a Go peer for depth.
const DefaultMaxDepth = 10000

// Limits bound what Validate and ValidateObject accept. The zero value
// means DefaultMaxDepth and no size limit.
type Limits struct {
	// MaxDepth is the deepest nesting of objects and arrays accepted; a
	// scalar has depth 0, "[]" 1. 0 or less means DefaultMaxDepth.
	MaxDepth int
	// MaxSize is the longest input accepted, in bytes. 0 or less means
	// no limit.
	MaxSize int
}

// Span is the range b[Start:End] of the validated input b.
type Span struct{ Start, End int }

// Field is one top-level member of an object that ValidateObject read:
// the spans of its name (quotes included) and of its value.
type Field struct{ Key, Value Span }

// Validate checks untrusted bytes: b must be exactly one JSON value (RFC
// 8259, white space around it allowed), within lim, with no object that
// has two members of the same name, at any depth. Names are compared after
// decoding escapes (as every parser does), not up to case.
//
// Duplicates are refused everywhere, not only at the top, because a parser
// that keeps the first and one that keeps the last (encoding/json, and most
// others) then read different documents from the same bytes, and the
// gateway reads members at several levels (params, _meta, arguments for
// policies and the audit hash) that an upstream reads again.
//
// The error is an *Error wrapping ErrSyntax, ErrTooDeep,
// ErrDuplicateMember or ErrTooLarge, with the offset of the first fault.
// Validate accepts exactly what json.Valid accepts, less what is too
// deep, too large or duplicated, and a syntax error is at the byte where
// encoding/json finds it (json.SyntaxError.Offset counts that byte, so it
// is Offset+1, except when the input ends too early).
func Validate(b []byte, lim Limits) error {
	v := getValidator(b)
	defer putValidator(v)
	return v.run(lim, false)
}

// ValidateObject is Validate for a JSON object, which it also splits: it
// appends the top-level members of b, in order, to fields and returns the
// extended slice. Valid JSON that is not an object is an ErrNotObject.
// Scanning and splitting are one pass; pass a slice with spare capacity
// (a local array) and nothing is allocated.
func ValidateObject(b []byte, lim Limits, fields []Field) ([]Field, error) {
	v := getValidator(b)
	defer putValidator(v)
	if i := SkipSpace(b, 0); i < len(b) && b[i] != '{' {
		if err := v.run(lim, false); err != nil {
			return fields, err
		}
		return fields, &Error{Err: ErrNotObject, Offset: i}
	}
	err := v.run(lim, true)
	return append(fields, v.top...), err
}

// validators recycles validators and their stacks, so that validating
// allocates nothing in the common case. The stacks could live in a
// caller's frame only if the validator were not passed by pointer.
var validators = sync.Pool{New: func() any { return new(validator) }} //nolint:gochecknoglobals // A pool is shared by design.

func getValidator(b []byte) *validator {
	v := validators.Get().(*validator) //nolint:errcheck,forcetypeassert // validators holds only *validator.
	v.b = b
	return v
}

// maxPooled bounds, in elements, the stacks of a validator returned to the
// pool, so one huge input does not pin its memory.
const maxPooled = 1 << 12

func putValidator(v *validator) {
	if max(cap(v.nest), cap(v.objs), cap(v.keys), cap(v.top), cap(v.arena)/16, v.indexed) > maxPooled {
		return
	}
	v.b, v.err, v.indexed = nil, nil, 0
	for _, t := range v.tables { // Left open by an error.
		clear(t)
		v.free = append(v.free, t)
	}
	v.tables = v.tables[:0]
	v.nest, v.objs, v.keys, v.top, v.arena = v.nest[:0], v.objs[:0], v.keys[:0], v.top[:0], v.arena[:0]
	validators.Put(v)
}

// validator is the state of one Validate call. Nesting is kept on explicit
// stacks, not by recursion, so hostile depth cannot exhaust the goroutine
// stack before the limit applies.
type validator struct {
	b []byte
	// nest holds '{' or '[' per open container.
	nest []byte
	// objs holds one frame per open object.
	objs []objFrame
	// keys holds the names of the members of every open object, each
	// object's after its parent's.
	keys []keyRef
	// arena holds the decoded names that differ from their raw bytes.
	arena []byte
	// seed hashes names in large objects.
	seed   maphash.Seed
	seeded bool
	// tables holds the name indexes of the open large objects; free the
	// cleared ones; indexed counts the names they took, so that a
	// validator whose maps grew large is dropped.
	tables  []map[uint64]int
	free    []map[uint64]int
	indexed int
	// top receives the top-level members when collecting.
	top []Field
	err *Error
}

// objFrame is an open object. It holds no pointer, so pushing one costs
// no write barrier.
type objFrame struct {
	// keys[base:] and arena[arenaBase:] belong to this object.
	base, arenaBase int
	// table, when not 0, is 1 + the index in tables of the map that
	// indexes keys[base:] by the hash of the name, made once the object
	// has more than maxLinearKeys members, so that an object with many
	// members costs linear time, not quadratic.
	table int
}

// maxLinearKeys is the number of members up to which a new name is
// compared with each earlier one.
const maxLinearKeys = 8

// keyRef locates a decoded member name: in the input (the name had no
// escape and was valid UTF-8, so its raw bytes are its value) or in the
// arena.
type keyRef struct {
	start, end int
	fp         uint32 // fingerprint(name)
	arena      bool
}

func (v *validator) name(k keyRef) []byte {
	if k.arena {
		return v.arena[k.start:k.end]
	}
	return v.b[k.start:k.end]
}

// run validates v.b; collect has it record the top-level members in v.top.
//
// The loop is one function on purpose: the envelope of a call is a few
// hundred bytes in a dozen tokens, and a function call per token costs as
// much as scanning it. Only strings, numbers, literals and names (leaves)
// and the cold paths are calls.
func (v *validator) run(lim Limits, collect bool) error { //nolint:gocognit // The hot loop, see above.
	b := v.b
	if lim.MaxSize > 0 && len(b) > lim.MaxSize {
		return &Error{Err: ErrTooLarge, Offset: lim.MaxSize, Detail: strconv.Itoa(len(b)) + " bytes, more than " + strconv.Itoa(lim.MaxSize)}
	}
	maxDepth := lim.MaxDepth
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	i := SkipSpace(b, 0)
	for {
		// A value starts at i.
		if i >= len(b) {
			v.eofAt()
			return v.err
		}
		switch c := b[i]; {
		case c == '"':
			i = v.str(i)
		case c == '{' || c == '[':
			if len(v.nest) >= maxDepth {
				return &Error{Err: ErrTooDeep, Offset: i, Detail: "more than " + strconv.Itoa(maxDepth) + " levels"}
			}
			v.nest = append(v.nest, c)
			if c == '{' {
				v.objs = append(v.objs, objFrame{base: len(v.keys), arenaBase: len(v.arena)})
			}
			i = SkipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				v.pop()
				i++
				break
			}
			if c == '{' {
				if i = v.member(i, collect); i < 0 {
					return v.err
				}
			}
			continue
		case c == '-' || isDigit(c):
			i = v.number(i)
		case c == 't':
			i = v.literal(i, "true")
		case c == 'f':
			i = v.literal(i, "false")
		case c == 'n':
			i = v.literal(i, "null")
		default:
			v.syntaxAt(i, "looking for beginning of value")
			return v.err
		}
		if i < 0 {
			return v.err
		}
		// A value ended at i: close containers until one goes on.
		for {
			if len(v.nest) == 0 {
				if i = SkipSpace(b, i); i < len(b) {
					v.syntaxAt(i, "after top-level value")
					return v.err
				}
				return nil
			}
			if collect && len(v.nest) == 1 {
				v.top[len(v.top)-1].Value.End = i
			}
			i = SkipSpace(b, i)
			if i >= len(b) {
				v.eofAt()
				return v.err
			}
			open := v.nest[len(v.nest)-1]
			if b[i] == ',' {
				i = SkipSpace(b, i+1)
				if open == '{' {
					if i = v.member(i, collect); i < 0 {
						return v.err
					}
				}
				break
			}
			if b[i] != open+2 {
				return v.afterValue(i, open)
			}
			v.pop()
			i++
		}
	}
}

// afterValue is the error of b[i] where a comma or the end of the
// container open ('{' or '[') should follow a value.
func (v *validator) afterValue(i int, open byte) error {
	if open == '{' {
		v.syntaxAt(i, "after object key:value pair")
	} else {
		v.syntaxAt(i, "after array element")
	}
	return v.err
}

// pop closes the innermost container.
func (v *validator) pop() {
	if v.nest[len(v.nest)-1] == '{' {
		f := v.objs[len(v.objs)-1]
		v.keys = v.keys[:f.base]
		v.arena = v.arena[:f.arenaBase]
		if f.table != 0 {
			t := v.tables[f.table-1]
			clear(t)
			v.free = append(v.free, t)
			v.tables = v.tables[:f.table-1]
		}
		v.objs = v.objs[:len(v.objs)-1]
	}
	v.nest = v.nest[:len(v.nest)-1]
}

// member scans a member's name at b[i] and the colon after it, and returns
// the index of its value, or -1.
func (v *validator) member(i int, collect bool) int {
	b := v.b
	if i >= len(b) {
		return v.eofAt()
	}
	if b[i] != '"' {
		return v.syntaxAt(i, "looking for beginning of object key string")
	}
	// Names are short: a byte loop, which notes escapes and bytes beyond
	// ASCII on the way, beats str's word loop.
	kEnd, special := -1, false
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c > '\\' && c < utf8.RuneSelf {
			continue // Lower case letters, '_' and a few more.
		}
		if c == '"' {
			kEnd = j + 1
			break
		}
		if c == '\\' {
			kEnd, special = v.str(i), true
			break
		}
		if c < 0x20 {
			return v.syntaxAt(j, "in string literal")
		}
		special = special || c >= utf8.RuneSelf
	}
	switch {
	case kEnd < 0:
		if v.err == nil {
			return v.eofAt()
		}
		return -1
	case special || len(v.keys) > v.objs[len(v.objs)-1].base:
		if !v.addKey(i, kEnd, special) {
			return -1
		}
	default:
		// The first name of the object, plain: nothing to compare.
		v.keys = append(v.keys, keyRef{start: i + 1, end: kEnd - 1, fp: fingerprint(b[i+1 : kEnd-1])})
	}
	j := SkipSpace(b, kEnd)
	if j >= len(b) {
		return v.eofAt()
	}
	if b[j] != ':' {
		return v.syntaxAt(j, "after object key")
	}
	j = SkipSpace(b, j+1)
	if collect && len(v.nest) == 1 {
		v.top = append(v.top, Field{Key: Span{i, kEnd}, Value: Span{j, j}})
	}
	return j
}

// addKey records the name b[start:end] (quoted) in the innermost object;
// false, with v.err set, when the object has it already. special says
// that the name has an escape or a byte beyond ASCII.
func (v *validator) addKey(start, end int, special bool) bool {
	f := &v.objs[len(v.objs)-1]
	k := keyRef{start: start + 1, end: end - 1}
	if special {
		inner := v.b[k.start:k.end]
		if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
			from := len(v.arena)
			v.arena, _ = appendUnquoted(v.arena, inner) // Valid: str checked it.
			k = keyRef{start: from, end: len(v.arena), arena: true}
		}
	}
	name := v.name(k)
	k.fp = fingerprint(name)
	switch n := len(v.keys) - f.base; {
	case n == 0:
	case f.table != 0:
		t := v.tables[f.table-1]
		h := maphash.Bytes(v.seed, name)
		if at, taken := t[h]; taken && (bytes.Equal(v.name(v.keys[at]), name) || v.linearDup(f, name, k.fp)) {
			return v.dup(start, name)
		}
		t[h] = len(v.keys)
		v.indexed++
	case v.linearDup(f, name, k.fp):
		return v.dup(start, name)
	case n == maxLinearKeys:
		v.index(f)[maphash.Bytes(v.seed, name)] = len(v.keys)
	}
	v.keys = append(v.keys, k)
	return true
}

// fingerprint packs a name's length and its first and last bytes: names
// with different fingerprints differ, which rules out most of them without
// comparing bytes.
func fingerprint(name []byte) uint32 {
	if len(name) == 0 {
		return 0
	}
	return uint32(len(name))<<16 | uint32(name[0])<<8 | uint32(name[len(name)-1]) //nolint:gosec // A filter: overflow is harmless.
}

// linearDup reports whether the object f has the member name, whose
// fingerprint is fp, comparing with each of its names. It is also the
// fallback for a hash collision.
func (v *validator) linearDup(f *objFrame, name []byte, fp uint32) bool {
	for _, k := range v.keys[f.base:] {
		if k.fp == fp && bytes.Equal(v.name(k), name) {
			return true
		}
	}
	return false
}

// index makes the table of f from its names so far and returns it.
func (v *validator) index(f *objFrame) map[uint64]int {
	if !v.seeded {
		v.seed, v.seeded = maphash.MakeSeed(), true
	}
	var t map[uint64]int
	if n := len(v.free); n > 0 {
		t = v.free[n-1]
		v.free = v.free[:n-1]
	} else {
		t = make(map[uint64]int, 4*maxLinearKeys)
	}
	for at := f.base; at < len(v.keys); at++ {
		t[maphash.Bytes(v.seed, v.name(v.keys[at]))] = at
	}
	v.indexed += len(v.keys) - f.base
	v.tables = append(v.tables, t)
	f.table = len(v.tables)
	return t
}

func (v *validator) dup(start int, name []byte) bool {
	v.err = &Error{Err: ErrDuplicateMember, Offset: start, Key: string(name)}
	return false
}

// str scans the string whose quote is b[i] and returns the index past
// it, or -1.
func (v *validator) str(i int) int {
	b := v.b
	j := i + 1
	for {
		j = stringStop(b, j)
		if j >= len(b) {
			return v.eofAt()
		}
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			if j = v.escape(j + 1); j < 0 {
				return -1
			}
		default: // A control character.
			return v.syntaxAt(j, "in string literal")
		}
	}
}

// escape checks the escape whose backslash is b[i-1] and returns the
// index past it, or -1.
func (v *validator) escape(i int) int {
	b := v.b
	if i >= len(b) {
		return v.eofAt()
	}
	switch b[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 1
	case 'u':
		for j := i + 1; j < i+5; j++ {
			if j >= len(b) {
				return v.eofAt()
			}
			if !isHex(b[j]) {
				return v.syntaxAt(j, "in \\u hexadecimal character escape")
			}
		}
		return i + 5
	default:
		return v.syntaxAt(i, "in string escape code")
	}
}

// stringStop returns the index of the first byte at or after b[i] that a
// string scan must look at ('"', '\' or a control character), or len(b).
// It reads eight bytes at a time.
func stringStop(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			// The lowest flag is exact (a borrow only runs upwards).
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			return i
		}
	}
	return i
}

// stopMask sets the high bit of each byte of w that is '"', '\' or a
// control character (and maybe of bytes above the first such one).
func stopMask(w uint64) uint64 {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q := w ^ (ones * '"')
	s := w ^ (ones * '\\')
	// (x - ones) &^ x flags a zero byte of x; w - 0x20 per byte borrows
	// where a byte of w is below 0x20.
	return ((q-ones)&^q | (s-ones)&^s | (w-ones*0x20)&^w) & highs
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// literal scans lit (true, false or null), whose first byte is b[i].
func (v *validator) literal(i int, lit string) int {
	b := v.b
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) {
			return v.eofAt()
		}
		if b[i+k] != lit[k] {
			return v.syntaxAt(i+k, "in literal "+lit+" (expecting "+quoteChar(lit[k])+")")
		}
	}
	return i + len(lit)
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at b[i].
func (v *validator) number(i int) int {
	b := v.b
	if b[i] == '-' {
		if i = v.digit(i+1, "in numeric literal"); i < 0 {
			return -1
		}
	}
	if b[i] == '0' {
		i++
	} else {
		i = digits(b, i)
	}
	if i < len(b) && b[i] == '.' {
		if i = v.digit(i+1, "after decimal point in numeric literal"); i < 0 {
			return -1
		}
		i = digits(b, i)
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i = v.digit(i, "in exponent of numeric literal"); i < 0 {
			return -1
		}
		i = digits(b, i)
	}
	return i
}

// digit checks that a digit is at b[i] and returns i, or -1 with the
// error of another byte there, described by where.
func (v *validator) digit(i int, where string) int {
	if i >= len(v.b) {
		return v.eofAt()
	}
	if !isDigit(v.b[i]) {
		return v.syntaxAt(i, where)
	}
	return i
}

// digits returns the index past the digits at b[i].
func digits(b []byte, i int) int {
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	return i
}

// syntaxAt sets v.err to a syntax error for b[i] and returns -1.
func (v *validator) syntaxAt(i int, where string) int {
	v.err = &Error{Err: ErrSyntax, Offset: i, Detail: "invalid character " + quoteChar(v.b[i]) + " " + where}
	return -1
}

// eofAt sets v.err to the error of input that ends too early and returns
// -1.
func (v *validator) eofAt() int {
	v.err = &Error{Err: ErrSyntax, Offset: len(v.b), Detail: "unexpected end of input"}
	return -1
}

// quoteChar formats c for an error message, as encoding/json does.
func quoteChar(c byte) string {
	switch c {
	case '\'':
		return `'\''`
	case '"':
		return `'"'`
	}
	s := strconv.Quote(string([]byte{c}))
	return "'" + s[1:len(s)-1] + "'"
}
