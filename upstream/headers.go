package upstream

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Header mirroring of the 2026-07-28 Streamable HTTP transport
// (https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#request-metadata):
// Mcp-Method and Mcp-Name mirror the body, and tool parameters annotated
// with x-mcp-header in the tool's inputSchema travel as Mcp-Param-{Name}.

// headerBinding maps a tool argument to the header that mirrors it.
type headerBinding struct {
	path   []string // property names from the root of the arguments
	header string   // canonical "Mcp-Param-…"
}

// encodeHeaderValue applies the spec's Value Encoding: plain when the value
// is visible ASCII without leading or trailing whitespace, otherwise (and
// when it looks like the sentinel itself) "=?base64?…?=" of its UTF-8 bytes.
func encodeHeaderValue(s string) string {
	plain := s == "" || (s[0] != ' ' && s[0] != '\t' && s[len(s)-1] != ' ' && s[len(s)-1] != '\t')
	for i := 0; plain && i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			plain = false
		}
	}
	if plain && strings.HasPrefix(s, "=?base64?") && strings.HasSuffix(s, "?=") {
		plain = false
	}
	if plain {
		return s
	}
	return "=?base64?" + base64.StdEncoding.EncodeToString([]byte(s)) + "?="
}

// nameKeyFor is the params member Mcp-Name mirrors for method, or "".
func nameKeyFor(method string) string {
	switch method {
	case mcpwire.MethodToolsCall, mcpwire.MethodPromptsGet:
		return "name"
	case mcpwire.MethodResourcesRead:
		return "uri"
	}
	return ""
}

// toolBindings reads the x-mcp-header annotations of one tool definition.
// An annotation that breaks the spec's constraints makes the tool invalid:
// it must then be left out of the catalog (Schema Extension: "Clients using
// the Streamable HTTP transport MUST reject tool definitions where any
// x-mcp-header value violates these constraints").
func toolBindings(tool []byte) (name string, bindings []headerBinding, err error) {
	nameRaw := rawjson.Member(tool, "name")
	name, _ = rawjson.DecodeString(nameRaw)
	if !bytes.Contains(tool, []byte("x-mcp-header")) {
		return name, nil, nil
	}
	schema := rawjson.Member(tool, "inputSchema")
	if rawjson.IsNull(schema) {
		return name, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return name, nil, err
	}
	w := schemaWalk{seen: map[string]bool{}}
	if err := w.node(root, nil, true); err != nil {
		return name, nil, err
	}
	slices.SortFunc(w.bindings, func(a, b headerBinding) int { return strings.Compare(a.header, b.header) })
	return name, w.bindings, nil
}

// schemaWalk collects the x-mcp-header annotations of one inputSchema.
type schemaWalk struct {
	bindings []headerBinding
	seen     map[string]bool // lower-cased header names already bound
}

// node walks the subschema n. onChain is true while n is reachable from
// the root through "properties" keys only.
func (w *schemaWalk) node(n any, path []string, onChain bool) error {
	switch n := n.(type) {
	case []any:
		for _, e := range n {
			if err := w.node(e, path, false); err != nil {
				return err
			}
		}
	case map[string]any:
		return w.object(n, path, onChain)
	}
	return nil
}

// object walks a schema object: its own annotation, then its subschemas.
func (w *schemaWalk) object(n map[string]any, path []string, onChain bool) error {
	if v, ok := n["x-mcp-header"]; ok {
		if err := w.bind(n, v, path, onChain); err != nil {
			return err
		}
	}
	for k, v := range n {
		var err error
		switch k {
		case "x-mcp-header", "const", "default", "enum", "examples":
			// Annotations and instance data, not subschemas.
		case "properties":
			err = w.properties(v, path, onChain)
		default:
			err = w.node(v, path, false)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// properties walks the members of a "properties" object, each one name
// further down path.
func (w *schemaWalk) properties(v any, path []string, onChain bool) error {
	props, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for p, sub := range props {
		if err := w.node(sub, append(path[:len(path):len(path)], p), onChain); err != nil {
			return err
		}
	}
	return nil
}

// bind records the annotation v of the property schema n at path, after
// checking the spec's constraints on it.
func (w *schemaWalk) bind(n map[string]any, v any, path []string, onChain bool) error {
	if !onChain || len(path) == 0 {
		return errors.New("x-mcp-header on a property that is not statically reachable through properties")
	}
	h, ok := v.(string)
	if !ok || !validHeaderName(h) {
		return fmt.Errorf("x-mcp-header %v is not an HTTP field name", v)
	}
	key := strings.ToLower(h)
	if w.seen[key] {
		return fmt.Errorf("x-mcp-header %q is not unique", h)
	}
	w.seen[key] = true
	if !primitiveType(n["type"]) {
		return fmt.Errorf("x-mcp-header %q is on a property that is not a string, integer or boolean", h)
	}
	w.bindings = append(w.bindings, headerBinding{
		path:   slices.Clone(path),
		header: textproto.CanonicalMIMEHeaderKey(mcpwire.HeaderParamPrefix + h),
	})
	return nil
}

// primitiveType reports whether a schema's type allows only string, integer
// and boolean values (number is not permitted for x-mcp-header).
func primitiveType(t any) bool {
	ok := func(s any) bool { return s == "string" || s == "integer" || s == "boolean" }
	switch v := t.(type) {
	case string:
		return ok(v)
	case []any:
		if len(v) == 0 {
			return false
		}
		for _, e := range v {
			if !ok(e) && e != "null" {
				return false
			}
		}
		return true
	}
	return false
}

// paramHeaders returns the Mcp-Param headers for a tools/call whose params
// are params. A value that is absent or null omits its header.
func paramHeaders(params []byte, bindings []headerBinding) ([][2]string, error) {
	args := rawjson.Member(params, "arguments")
	if rawjson.IsNull(args) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, err
	}
	out := make([][2]string, 0, len(bindings))
	for _, b := range bindings {
		s, ok, err := b.value(root)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		out = append(out, [2]string{b.header, encodeHeaderValue(s)})
	}
	return out, nil
}

// value is the argument b binds in the decoded arguments root, as its
// header carries it before encoding; false when it is absent or null.
func (b headerBinding) value(root any) (string, bool, error) {
	v := root
	for _, p := range b.path {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false, nil
		}
		v = m[p]
	}
	switch x := v.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53-1 {
			return "", false, fmt.Errorf("argument for %s is not a safe integer", b.header)
		}
		return strconv.FormatInt(int64(f), 10), true, nil
	default:
		return "", false, fmt.Errorf("argument for %s is not a primitive value", b.header)
	}
}

// ParamBindings are the x-mcp-header bindings of one tool: which argument
// each Mcp-Param-{Name} header mirrors (SEP-2243).
type ParamBindings struct{ b []headerBinding }

// ToolParamBindings reads the bindings of a tool definition; none (the
// zero value) for a tool without x-mcp-header. An error means an
// annotation breaks the spec's constraints.
func ToolParamBindings(tool []byte) (ParamBindings, error) {
	_, b, err := toolBindings(tool)
	return ParamBindings{b: b}, err
}

// Empty reports whether the tool binds no header.
func (p ParamBindings) Empty() bool { return len(p.b) == 0 }

// Check holds a 2026-07-28 tools/call's Mcp-Param-* headers h against the
// arguments in params, as a server must (SEP-2243, basic/transports,
// "Custom Headers from Tool Parameters"): a bound argument that is present
// needs its header, with the same value once a "=?base64?…?=" form is
// decoded; a header whose argument is absent, or whose value is malformed
// (characters outside visible ASCII, Base64 that does not decode), is
// refused. The error says which header.
func (p ParamBindings) Check(params []byte, h http.Header) error {
	var root any
	if args := rawjson.Member(params, "arguments"); !rawjson.IsNull(args) {
		dec := json.NewDecoder(bytes.NewReader(args))
		dec.UseNumber()
		if err := dec.Decode(&root); err != nil {
			return err
		}
	}
	for _, b := range p.b {
		want, present, err := b.value(root)
		if err != nil {
			return err
		}
		vals := h.Values(b.header)
		switch {
		case !present && len(vals) == 0:
			continue
		case !present:
			return fmt.Errorf("%s is sent but its argument is absent", b.header)
		case len(vals) == 0:
			return fmt.Errorf("%s is missing: the argument it mirrors is present", b.header)
		case len(vals) > 1:
			return fmt.Errorf("%s is sent more than once", b.header)
		}
		got, err := decodeParamHeader(vals[0])
		if err != nil {
			return fmt.Errorf("%s: %w", b.header, err)
		}
		if got != want {
			return fmt.Errorf("%s does not match the argument it mirrors", b.header)
		}
	}
	return nil
}

// decodeParamHeader undoes the spec's Value Encoding: "=?base64?…?=" is
// the standard Base64 (with padding) of the value's UTF-8 bytes, anything
// else the value itself, which must then be visible ASCII.
func decodeParamHeader(v string) (string, error) {
	if inner, ok := strings.CutPrefix(v, "=?base64?"); ok {
		if inner, ok = strings.CutSuffix(inner, "?="); ok {
			b, err := base64.StdEncoding.Strict().DecodeString(inner)
			if err != nil {
				return "", errors.New("invalid Base64 value")
			}
			return string(b), nil
		}
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", errors.New("value has characters outside visible ASCII")
		}
	}
	return v, nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// setToolHeaders records the x-mcp-header bindings of tools for this
// connection and returns tools without the invalid ones.
func (h *httpConn) setToolHeaders(tools []json.RawMessage) []json.RawMessage {
	m := map[string][]headerBinding{}
	kept := tools[:0:0]
	for _, t := range tools {
		name, b, err := toolBindings(t)
		if err != nil {
			h.c.log.WarnContext(h.c.life, "upstream tool rejected: invalid x-mcp-header", slog.String("tool", name), slog.Any("error", err))
			continue
		}
		if len(b) > 0 {
			m[name] = b
		}
		kept = append(kept, t)
	}
	if len(m) == 0 {
		m = nil
	}
	h.toolHeaders.Store(&m)
	return kept
}
