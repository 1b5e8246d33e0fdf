package h1

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// defaultUserAgent is sent when a Head sets no User-Agent.
const defaultUserAgent = "mcpgw"

// Head is the request line and the header fields that a family of requests
// share, rendered and checked once: for mcpgw, every POST of one upstream
// session. Its fields are those of NewHead's header plus a default
// User-Agent; Host, Content-Length, Transfer-Encoding and Connection are
// the transport's own and are never taken from a caller. A Head is
// immutable and may be used by concurrent requests.
type Head struct {
	method   string
	withBody bool   // the method defines content: Content-Length is always sent
	b        []byte // request line and fields, each line ending in CRLF
	fields   []span // the field lines of b, which a request may replace
}

// span is one field line of a Head: its name and where it is in Head.b.
type span struct {
	name       string
	start, end int
}

// NewHead renders the request line "method target HTTP/1.1", the Host field
// and the fields of header (in sorted order, so that equal heads are equal
// bytes). It fails with ErrInvalidHead when any of them cannot be sent.
func NewHead(method, target, host string, header http.Header) (*Head, error) {
	switch {
	case !validName(method):
		return nil, fmt.Errorf("%w: method %q", ErrInvalidHead, method)
	case target == "" || !validTarget(target):
		return nil, fmt.Errorf("%w: request target %q", ErrInvalidHead, target)
	case host == "" || !validTarget(host):
		return nil, fmt.Errorf("%w: host %q", ErrInvalidHead, host)
	}
	h := &Head{
		method: method,
		// RFC 9110 section 8.6: a user agent sends Content-Length (0 when
		// there is no content) with a method that defines content.
		withBody: method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch,
	}
	b := make([]byte, 0, 128)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, target...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, host...)
	b = append(b, "\r\n"...)
	if _, ok := header["User-Agent"]; !ok {
		h.fields = append(h.fields, span{name: "User-Agent", start: len(b)})
		b = appendField(b, "User-Agent", defaultUserAgent)
		h.fields[0].end = len(b)
	}
	for _, k := range slices.Sorted(maps.Keys(header)) {
		if reserved(k) {
			continue
		}
		for _, v := range header[k] {
			if err := checkField(k, v); err != nil {
				return nil, err
			}
			start := len(b)
			b = appendField(b, k, v)
			h.fields = append(h.fields, span{name: k, start: start, end: len(b)})
		}
	}
	h.b = b
	return h, nil
}

// Request is one request: a Head, the fields of this request alone, and
// the content. It is read only while Do writes it.
type Request struct {
	// Head is the request line and the shared fields; required.
	Head *Head
	// Fields are this request's own header fields, name and value, written
	// after the Head's. A name here replaces every field of the Head with
	// that name (compared case-insensitively); names the transport owns
	// (Host, Content-Length, Transfer-Encoding, Connection) are ignored.
	Fields [][2]string
	// Body is the content, sent with Content-Length.
	Body []byte
	// WantHeader asks for every field of the response in Response.Header;
	// without it no header map is built.
	WantHeader bool
}

// check refuses a request whose fields cannot be sent.
func (r *Request) check() error {
	for _, f := range r.Fields {
		if err := checkField(f[0], f[1]); err != nil {
			return err
		}
	}
	return nil
}

// appendTo renders the request: the Head without the fields that the
// request replaces, the request's fields, Content-Length and the body.
func (r *Request) appendTo(b []byte) []byte {
	h := r.Head
	from := 0
	for _, s := range h.fields {
		if r.replaces(s.name) {
			b = append(b, h.b[from:s.start]...)
			from = s.end
		}
	}
	b = append(b, h.b[from:]...)
	for _, f := range r.Fields {
		if !reserved(f[0]) {
			b = appendField(b, f[0], f[1])
		}
	}
	if len(r.Body) > 0 || h.withBody {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(r.Body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, "\r\n"...)
	return append(b, r.Body...)
}

// replaces reports whether the request has a field named name.
func (r *Request) replaces(name string) bool {
	for _, f := range r.Fields {
		if len(f[0]) == len(name) && strings.EqualFold(f[0], name) {
			return true
		}
	}
	return false
}

func appendField(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

// reserved reports whether a field name is one the transport writes itself.
func reserved(name string) bool {
	switch len(name) {
	case len("Host"):
		return strings.EqualFold(name, "Host")
	case len("Connection"):
		return strings.EqualFold(name, "Connection")
	case len("Content-Length"):
		return strings.EqualFold(name, "Content-Length")
	case len("Transfer-Encoding"):
		return strings.EqualFold(name, "Transfer-Encoding")
	}
	return false
}

func checkField(name, value string) error {
	if !validName(name) || !validValue(value) {
		return fmt.Errorf("%w: field %q", ErrInvalidHead, name)
	}
	return nil
}

// validName reports whether s is a token (RFC 9110 section 5.6.2), which
// field names and methods are.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if !isTokenByte(s[i]) {
			return false
		}
	}
	return true
}

func isTokenByte(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	default:
		return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
	}
}

// validValue reports whether s can be sent as a field value: no control
// character but HTAB (RFC 9110 section 5.5).
func validValue(s string) bool {
	for i := range len(s) {
		if !isValueByte(s[i]) {
			return false
		}
	}
	return true
}

// isValueByte reports whether c may appear in a field value: VCHAR, SP,
// HTAB and obs-text (RFC 9110 section 5.5).
func isValueByte(c byte) bool {
	return c >= 0x20 && c != 0x7f || c == '\t'
}

// validTarget reports whether s can stand in the request line or the Host
// field: visible ASCII only.
func validTarget(s string) bool {
	for i := range len(s) {
		if c := s[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}
