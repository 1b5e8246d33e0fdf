package gateway

import (
	"bytes"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// scanEnvelope is the fast path of parseMessage for the messages hosts
// actually send: one JSON object whose members are among jsonrpc, id,
// method, params, result and error, each at most once, with jsonrpc and
// method plain strings (no escapes, valid UTF-8). It validates the whole
// body as JSON (RFC 8259) by hand, without reflection, and returns the
// message with its raw members aliasing one copy of the body.
//
// For anything else — another member, a duplicate, an escape, invalid
// JSON, nesting deeper than encoding/json allows — it returns false, and
// parseMessage decodes with encoding/json as before. So both paths agree on
// every input: FuzzScanEnvelope checks that what it accepts, encoding/json
// decodes to the same message. The profile of the call path showed
// json.Unmarshal of the envelope as the gateway's largest item of its own.
func scanEnvelope(body []byte) (*message, bool) {
	s := envScanner{b: body}
	spans, ok := s.members()
	if !ok {
		return nil, false
	}
	// One copy of the body backs every raw member, as encoding/json copies
	// each RawMessage: the caller may reuse body.
	buf := append([]byte(nil), body...)
	m := &message{}
	for k, sp := range spans {
		if sp[1] == 0 {
			continue // Absent.
		}
		raw := buf[sp[0]:sp[1]:sp[1]]
		switch k {
		case envJSONRPC, envMethod:
			str, ok := plainStringValue(raw)
			if !ok {
				return nil, false
			}
			if k == envJSONRPC {
				m.JSONRPC = str
			} else {
				m.Method = str
			}
		case envID:
			m.ID = raw
		case envParams:
			m.Params = raw
		case envResult:
			m.Result = raw
		case envError:
			m.Error = raw
		}
	}
	return m, true
}

// members validates the body as one object of known, distinct members and
// returns each member's value span (end 0: absent).
func (s *envScanner) members() (spans [envMembers][2]int, ok bool) {
	b := s.b
	i := s.space(0)
	if i >= len(b) || b[i] != '{' {
		return spans, false
	}
	i = s.space(i + 1)
	if i < len(b) && b[i] == '}' {
		return spans, s.space(i+1) == len(b)
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return spans, false
		}
		kEnd := s.plainString(i)
		if kEnd < 0 {
			return spans, false
		}
		k := envMember(b[i+1 : kEnd-1])
		if k < 0 || spans[k][1] != 0 {
			return spans, false // Unknown (or case-folded) or duplicate.
		}
		i = s.space(kEnd)
		if i >= len(b) || b[i] != ':' {
			return spans, false
		}
		i = s.space(i + 1)
		vEnd := s.value(i, 1)
		if vEnd < 0 {
			return spans, false
		}
		spans[k] = [2]int{i, vEnd}
		i = s.space(vEnd)
		switch {
		case i < len(b) && b[i] == '}':
			return spans, s.space(i+1) == len(b) // Nothing after the object.
		case i < len(b) && b[i] == ',':
			i = s.space(i + 1)
		default:
			return spans, false
		}
	}
}

// The members scanEnvelope knows, in message's order.
const (
	envJSONRPC = iota
	envID
	envMethod
	envParams
	envResult
	envError
	envMembers
)

// envMember returns the member a key (without quotes) names, or -1. Only
// exact matches count: encoding/json also matches keys case-insensitively,
// so any other key sends the message to the slow path.
func envMember(key []byte) int {
	switch string(key) {
	case "jsonrpc":
		return envJSONRPC
	case "id":
		return envID
	case "method":
		return envMethod
	case "params":
		return envParams
	case "result":
		return envResult
	case "error":
		return envError
	default:
		return -1
	}
}

// intern returns the jsonrpc version and the method names of the call
// path as constants, so the common messages allocate no string for them.
func intern(b []byte) (string, bool) {
	switch string(b) {
	case "2.0":
		return "2.0", true
	case mcpwire.MethodToolsCall:
		return mcpwire.MethodToolsCall, true
	case mcpwire.MethodToolsList:
		return mcpwire.MethodToolsList, true
	case mcpwire.MethodResourcesRead:
		return mcpwire.MethodResourcesRead, true
	case mcpwire.MethodPromptsGet:
		return mcpwire.MethodPromptsGet, true
	case mcpwire.MethodPing:
		return mcpwire.MethodPing, true
	case mcpwire.NotifyInitialized:
		return mcpwire.NotifyInitialized, true
	case mcpwire.NotifyCancelled:
		return mcpwire.NotifyCancelled, true
	default:
		return "", false
	}
}

// plainStringValue returns the content of a JSON string without escapes
// whose bytes are valid UTF-8 (encoding/json would replace invalid bytes).
func plainStringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	if s, ok := intern(inner); ok {
		return s, true
	}
	return string(inner), true
}

// maxEnvelopeDepth is encoding/json's nesting limit; deeper bodies take
// the slow path, which reports them as encoding/json does.
const maxEnvelopeDepth = 10000

// envScanner validates JSON values. Every method returns the index just
// past what it scanned, or -1 when the input is not valid JSON (or is
// beyond what the fast path handles).
type envScanner struct{ b []byte }

func (s *envScanner) space(i int) int {
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\t', '\r', '\n':
			i++
		default:
			return i
		}
	}
	return i
}

// plainString scans a string at b[i] with no escapes (keys).
func (s *envScanner) plainString(i int) int {
	for j := i + 1; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			return j + 1
		case c == '\\' || c < 0x20:
			return -1
		}
	}
	return -1
}

// str scans a string at b[i], escapes included.
func (s *envScanner) str(i int) int {
	b := s.b
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '"':
			return j + 1
		case c < 0x20:
			return -1
		case c == '\\':
			j++
			if j >= len(b) {
				return -1
			}
			switch b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(b) {
					return -1
				}
				for _, h := range b[j+1 : j+5] {
					if !isHex(h) {
						return -1
					}
				}
				j += 4
			default:
				return -1
			}
		}
	}
	return -1
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// value scans any value at b[i], at nesting depth.
func (s *envScanner) value(i, depth int) int {
	b := s.b
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		return s.str(i)
	case c == '{' || c == '[':
		if depth >= maxEnvelopeDepth {
			return -1
		}
		return s.container(i, depth+1)
	case c == 't':
		return s.literal(i, "true")
	case c == 'f':
		return s.literal(i, "false")
	case c == 'n':
		return s.literal(i, "null")
	case c == '-' || isDigit(c):
		return s.number(i)
	default:
		return -1
	}
}

func (s *envScanner) literal(i int, lit string) int {
	if len(s.b)-i < len(lit) || string(s.b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// number scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *envScanner) number(i int) int {
	b := s.b
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && isDigit(b[i]):
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

// container scans an object or array at b[i].
func (s *envScanner) container(i, depth int) int {
	b := s.b
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = s.space(i + 1)
	if i < len(b) && b[i] == closer {
		return i + 1
	}
	for {
		if obj {
			if i >= len(b) || b[i] != '"' {
				return -1
			}
			if i = s.str(i); i < 0 {
				return -1
			}
			i = s.space(i)
			if i >= len(b) || b[i] != ':' {
				return -1
			}
			i = s.space(i + 1)
		}
		if i = s.value(i, depth); i < 0 {
			return -1
		}
		i = s.space(i)
		if i >= len(b) {
			return -1
		}
		if b[i] == closer {
			return i + 1
		}
		if b[i] != ',' {
			return -1
		}
		i = s.space(i + 1)
	}
}
