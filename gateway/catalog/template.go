package catalog

import (
	"fmt"
	"strings"
)

// A uriMatcher decides whether a concrete URI is an expansion of one RFC 6570
// URI template. Matching is lenient, since the point is routing, not
// validation:
//
//   - {var} and {a,b} match one or more bytes other than '/', '?' and '#'
//     (simple expansion percent-encodes those);
//   - {+var} matches one or more bytes of anything;
//   - {#var} matches nothing, or '#' and anything after it;
//   - {.var}, {/var}, {;var} match nothing, or the operator and a run of
//     bytes other than '?' and '#' ('/' is also excluded for '.' and ';');
//   - {?a,b} and {&a} match nothing, or the operator and anything but '#'.
//
// Modifiers (:3, *) are accepted and ignored; literal text matches itself
// byte for byte.
//
// Matching runs the segments as a set of reachable positions, so it is
// linear in the URI per segment and never backtracks, whatever the template.
type uriMatcher struct {
	segs   []segment
	prefix string // the leading literal, for a fast reject
	suffix string // the trailing literal, for a fast reject
}

// segment is a literal or one expression.
type segment struct {
	lit      string   // literal text; "" for an expression
	op       byte     // the expression's leading byte in the URI, or 0
	stop     asciiSet // bytes the expansion may not contain
	min1     bool     // the expansion is never empty
	optional bool     // the expression may expand to nothing at all
}

// asciiSet is a set of ASCII bytes.
type asciiSet [4]uint32

func makeASCIISet(chars string) asciiSet {
	var s asciiSet
	for i := 0; i < len(chars); i++ {
		c := chars[i]
		s[c>>5] |= 1 << (c & 31)
	}
	return s
}

func (s *asciiSet) has(c byte) bool {
	return c < 128 && s[c>>5]&(1<<(c&31)) != 0
}

// The stop sets of the expression operators: the characters a variable's
// value cannot contain. Templates are compiled once per catalog build, so
// the sets are built on demand.
func stopNone() asciiSet   { return asciiSet{} }
func stopSimple() asciiSet { return makeASCIISet("/?#") }
func stopPath() asciiSet   { return makeASCIISet("?#") }
func stopQuery() asciiSet  { return makeASCIISet("#") }

// varNameChars are the characters of a variable name (RFC 6570 section
// 2.3: ALPHA, DIGIT, "_", "." and pct-encoded).
func varNameChars() asciiSet {
	return makeASCIISet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.%")
}

// compileTemplate compiles an RFC 6570 URI template into a matcher.
func compileTemplate(tmpl string) (*uriMatcher, error) {
	m := &uriMatcher{}
	for rest := tmpl; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			m.segs = append(m.segs, segment{lit: rest})
			break
		}
		if open > 0 {
			m.segs = append(m.segs, segment{lit: rest[:open]})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, fmt.Errorf("at %q: %w", rest[open:], errUnclosedExpression)
		}
		expr := rest[open+1 : open+end]
		seg, err := compileExpression(expr)
		if err != nil {
			return nil, fmt.Errorf("at {%s}: %w", expr, err)
		}
		m.segs = append(m.segs, seg)
		rest = rest[open+end+1:]
	}
	if len(m.segs) > 0 {
		m.prefix = m.segs[0].lit
		m.suffix = m.segs[len(m.segs)-1].lit
		if len(m.segs) == 1 {
			m.suffix = "" // one literal: prefix and suffix are the same text
		}
	}
	return m, nil
}

// compileExpression compiles the text between '{' and '}'.
func compileExpression(expr string) (segment, error) {
	if expr == "" {
		return segment{}, errEmptyExpression
	}
	var seg segment
	switch op := expr[0]; op {
	case '+':
		seg = segment{stop: stopNone(), min1: true}
	case '#':
		seg = segment{op: op, stop: stopNone(), optional: true}
	case '.', ';':
		seg = segment{op: op, stop: stopSimple(), optional: true}
	case '/':
		seg = segment{op: op, stop: stopPath(), optional: true}
	case '?', '&':
		seg = segment{op: op, stop: stopQuery(), optional: true}
	case '=', ',', '!', '@', '|':
		return segment{}, fmt.Errorf("%q: %w", op, errReservedOperator)
	default:
		seg = segment{stop: stopSimple(), min1: true}
	}
	if seg.op != 0 || expr[0] == '+' {
		expr = expr[1:]
	}
	varChars := varNameChars()
	for v := range strings.SplitSeq(expr, ",") {
		name, _, _ := strings.Cut(v, ":")
		name = strings.TrimSuffix(name, "*")
		if name == "" {
			return segment{}, fmt.Errorf("%q: %w", v, errBadVariable)
		}
		for i := 0; i < len(name); i++ {
			if !varChars.has(name[i]) {
				return segment{}, fmt.Errorf("%q: %w", v, errBadVariable)
			}
		}
	}
	return seg, nil
}

// stackWords is how many 64-bit words of position sets live on the stack;
// longer URIs allocate.
const stackWords = 32

// match reports whether uri is an expansion of the template. It does not
// allocate for URIs shorter than 2 KiB.
func (m *uriMatcher) match(uri string) bool {
	if !strings.HasPrefix(uri, m.prefix) || !strings.HasSuffix(uri, m.suffix) ||
		len(uri) < len(m.prefix)+len(m.suffix) {
		return false
	}
	n := len(uri)
	words := n/64 + 1
	var curBuf, nextBuf [stackWords]uint64
	var cur, next posSet
	if words <= stackWords {
		cur, next = curBuf[:words], nextBuf[:words]
	} else {
		cur, next = make(posSet, words), make(posSet, words)
	}
	cur.add(0)
	for i := range m.segs {
		clear(next)
		if !m.segs[i].step(uri, cur, next) {
			return false
		}
		cur, next = next, cur
	}
	return cur.has(n)
}

// step computes in next the positions reachable from those in cur by
// matching the segment; it reports whether any is.
func (sg *segment) step(uri string, cur, next posSet) bool {
	n := len(uri)
	reached := false
	if sg.lit != "" {
		l := len(sg.lit)
		for p := 0; p+l <= n; p++ {
			if cur.has(p) && uri[p:p+l] == sg.lit {
				next.add(p + l)
				reached = true
			}
		}
		return reached
	}
	if sg.optional {
		copy(next, cur)
		reached = !cur.empty()
	}
	// run is true at i when an expansion that started before i can end at
	// i: only allowed bytes lie between its start and i.
	run, prev := false, false
	for i := 0; i <= n; i++ {
		if i > 0 {
			run = (run || prev) && !sg.stop.has(uri[i-1])
		}
		start := sg.startsAt(uri, cur, i)
		if run || (start && !sg.min1) {
			next.add(i)
			reached = true
		}
		prev = start
	}
	return reached
}

// startsAt reports whether an expansion of sg may start at i: for an
// operator, just after the operator byte.
func (sg *segment) startsAt(uri string, cur posSet, i int) bool {
	if sg.op == 0 {
		return cur.has(i)
	}
	return i > 0 && cur.has(i-1) && uri[i-1] == sg.op
}

// posSet is a bit set of positions in a URI.
type posSet []uint64

func (s posSet) add(i int)      { s[i>>6] |= 1 << (i & 63) }
func (s posSet) has(i int) bool { return s[i>>6]&(1<<(i&63)) != 0 }

func (s posSet) empty() bool {
	for _, w := range s {
		if w != 0 {
			return false
		}
	}
	return true
}
