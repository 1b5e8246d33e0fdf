package configs

import (
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// FieldError is one problem in a configuration, located by its path in the
// YAML document, such as upstreams[2].http.url. Validate and Parse return
// their problems as FieldErrors joined with errors.Join; an empty Path means
// the document as a whole.
//
// A FieldError never carries a secret value: messages quote names, levels,
// globs and addresses, never URLs (they may embed credentials) or the
// values of secrets.
type FieldError struct {
	// Path locates the offending key: dotted struct keys, [i] for list
	// entries and [key] for map entries.
	Path string
	// Msg says what is wrong, in lower case.
	Msg string
}

// Error returns "path: msg".
func (e *FieldError) Error() string {
	if e.Path == "" {
		return e.Msg
	}
	return e.Path + ": " + e.Msg
}

// Problems splits an error returned by Parse, Load or Validate into one line
// per problem, in order, for a CLI to print as a list. It returns nil for a
// nil error.
func Problems(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for line := range strings.SplitSeq(err.Error(), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// ProtocolVersions returns the MCP versions an upstream may be pinned to
// with protocol_version, oldest first.
func ProtocolVersions() []string {
	versions := mcpwire.SupportedVersions()
	slices.Reverse(versions)
	return versions
}

// upstreamName is the syntax of Upstream.Name.
var upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)

// Validate reports every problem in c, each as a *FieldError prefixed with
// its path, joined with errors.Join in schema order; nil means c is usable.
// It is pure: it
// does no I/O and does not modify c. Call it after SetDefaults, since an
// unset field is its zero value and most zero values are invalid. Secrets
// are checked for their shape (exactly one source) and, once resolved, the
// session key for its length; whether they resolve is Load's job.
func (c *Config) Validate() error {
	v := &validator{}
	v.server(&c.Server)
	if c.Auth == nil {
		v.loopbackOnly("server.listen", c.Server.Listen)
	}
	pattern := v.catalog(&c.Catalog)
	v.upstreams(c.Upstreams, c.Catalog.Separator, pattern)
	v.log(&c.Log)
	if c.Auth != nil {
		v.auth(c.Auth)
	}
	v.upstreamIdentity(c)
	v.policy(&c.Policy, c)
	if c.Redis != nil {
		v.redis(c.Redis)
	}
	v.audit(&c.Audit)
	v.telemetry(&c.Telemetry)
	v.metricsListener(c)
	v.pinning(&c.Pinning)
	v.endpoints(c)
	sortByPath(v.errs)
	return errors.Join(v.errs...)
}

// validator collects problems.
type validator struct {
	errs []error
}

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) positiveDuration(path string, d time.Duration) {
	if d <= 0 {
		v.add(path, "must be a positive duration")
	}
}

func (v *validator) server(s *Server) {
	v.listen("server.listen", s.Listen)
	if !strings.HasPrefix(s.MCPPath, "/") {
		v.add("server.mcp_path", "%q must start with '/'", s.MCPPath)
	}
	if s.PublicURL != "" {
		v.httpURL("server.public_url", s.PublicURL)
	}
	if s.MaxBodyBytes <= 0 {
		v.add("server.max_body_bytes", "must be positive")
	}
	v.positiveDuration("server.session_idle_ttl", s.SessionIdleTTL)
	v.positiveDuration("server.session_max_age", s.SessionMaxAge)
	v.positiveDuration("server.mrtr_state_ttl", s.MRTRStateTTL)
	v.positiveDuration("server.mrtr_hold_timeout", s.MRTRHoldTimeout)
	if !s.SessionKey.IsZero() {
		v.secretRef("server.session_key", s.SessionKey)
	}
	if s.SessionKey.Resolved != "" && !isSessionKey(s.SessionKey.Resolved.Reveal()) {
		v.add("server.session_key", "must be 32 bytes, hex or base64 encoded")
	}
	v.origins("server.allowed_origins", s.AllowedOrigins)
	v.origins("server.cors.allowed_origins", s.CORS.AllowedOrigins)
	v.positiveDuration("server.cors.max_age", s.CORS.MaxAge)
	v.positiveDuration("server.shutdown_timeout", s.ShutdownTimeout)
	v.positiveDuration("server.read_header_timeout", s.ReadHeaderTimeout)
	v.positiveDuration("server.read_body_timeout", s.ReadBodyTimeout)
	v.positiveDuration("server.idle_timeout", s.IdleTimeout)
	if s.ShutdownDelay < 0 {
		v.add("server.shutdown_delay", "must not be negative")
	}
	if s.MaxHeaderBytes < minHeaderBytes || s.MaxHeaderBytes > maxHeaderBytes {
		v.add("server.max_header_bytes", "must be between %d and %d", minHeaderBytes, maxHeaderBytes)
	}
	if s.MaxHeaderCount < minHeaderCount || s.MaxHeaderCount > maxHeaderCount {
		v.add("server.max_header_count", "must be between %d and %d", minHeaderCount, maxHeaderCount)
	}
	if s.MaxUnauthenticated <= 0 {
		v.add("server.max_unauthenticated", "must be positive")
	}
	v.positiveDuration("server.sse.retry", s.SSE.Retry)
	v.positiveDuration("server.sse.replay_ttl", s.SSE.ReplayTTL)
	if s.SSE.ReplaySessionBytes <= 0 {
		v.add("server.sse.replay_session_bytes", "must be positive")
	}
	if s.SSE.ReplayTotalBytes < s.SSE.ReplaySessionBytes {
		v.add("server.sse.replay_total_bytes", "must be at least replay_session_bytes (%d)", s.SSE.ReplaySessionBytes)
	}
}

// The bounds of the header limits: below them ordinary requests (a
// bearer token, the MCP headers, a proxy's forwarding headers) fail;
// above them the limit protects nothing.
const (
	minHeaderBytes = 1 << 10
	maxHeaderBytes = 1 << 20
	minHeaderCount = 16
	maxHeaderCount = 10000
)

// listen checks a host:port to bind. An empty host means every
// interface; the gateway decides whether that is allowed. The port is a
// number (0 picks a free one); a host name is resolved only by
// validate --resolve (ListenHost).
func (v *validator) listen(path, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" {
		v.add(path, "%q is not host:port", addr)
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || port[0] == '+' {
		v.add(path, "%q: the port must be a number from 0 to 65535", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !hostName.MatchString(host) {
		v.add(path, "%q: the host must be an IP address or a host name", addr)
	}
}

// hostName is the syntax of a DNS host name (RFC 1123).
var hostName = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// ListenHost returns the host name of a listen address that must be
// looked up to bind it, or "" when it is empty, an IP address or
// localhost: validate --resolve resolves it, as binding would.
func ListenHost(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" || host == "localhost" || net.ParseIP(host) != nil {
		return ""
	}
	return host
}

// sameListener reports whether two listen addresses would bind one
// port: the same port, not 0, on the same host or where either host
// means every interface.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	every := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "" || ip != nil && ip.IsUnspecified()
	}
	loop := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || ip != nil && ip.IsLoopback()
	}
	return ha == hb || every(ha) || every(hb) || loop(ha) && loop(hb)
}

// httpURL checks an absolute http(s) URL. It never quotes the URL, which may
// carry credentials.
func (v *validator) httpURL(path, raw string) {
	if raw == "" {
		v.add(path, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		v.add(path, "must be an absolute http or https URL")
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		v.add(path, "scheme must be http or https")
	}
	if u.Host == "" || u.Hostname() == "" {
		v.add(path, "must have a host")
	}
	if u.User != nil {
		v.add(path, "must not embed credentials; send them as secret headers")
	}
}

// origins checks Origin values: "*" or scheme://host[:port].
func (v *validator) origins(path string, origins []string) {
	for i, o := range origins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" || u.Hostname() == "" || u.User != nil ||
			u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			v.add(fmt.Sprintf("%s[%d]", path, i), `must be "*" or an origin such as https://app.example.com (scheme://host[:port], no path)`)
		}
	}
}

// catalog checks the catalog section and returns the compiled name pattern,
// or nil when it does not compile.
func (v *validator) catalog(c *Catalog) *regexp.Regexp {
	if c.Separator == "" {
		v.add("catalog.separator", "must not be empty")
	}
	pattern, err := regexp.Compile(c.NamePattern)
	if err != nil {
		v.add("catalog.name_pattern", "does not compile: %v", err)
		pattern = nil
	}
	if c.PageSize < 1 {
		v.add("catalog.page_size", "must be at least 1")
	}
	v.positiveDuration("catalog.list_changed_debounce", c.ListChangedDebounce)
	v.positiveDuration("catalog.list_ttl", c.ListTTL)
	return pattern
}

func (v *validator) upstreams(ups []Upstream, sep string, pattern *regexp.Regexp) {
	if len(ups) == 0 {
		v.add("upstreams", "at least one upstream is required")
		return
	}
	byName := make(map[string]int, len(ups))
	byPrefix := make(map[string]int, len(ups))
	for i := range ups {
		u := &ups[i]
		p := fmt.Sprintf("upstreams[%d]", i)
		v.upstreamName(p+".name", u.Name, i, byName)
		v.transport(p, u)
		v.positiveDuration(p+".timeout", u.Timeout)
		v.resilience(p, u)
		v.argumentLogging(p+".audit_arguments", u.AuditArguments)
		v.toolScopes(p+".scopes", &u.Scopes)
		v.upstreamAuth(p+".auth", &u.Auth)
		v.identityAssertion(p+".identity_assertion", &u.IdentityAssertion)
		if u.MaxResponseBytes <= 0 {
			v.add(p+".max_response_bytes", "must be positive")
		}
		v.protocolVersion(p+".protocol_version", u)
		v.globs(p+".tools.include", u.Tools.Include)
		v.globs(p+".tools.exclude", u.Tools.Exclude)
		v.prefix(p+".prefix", u, sep, pattern)
		v.upstreamTrust(p, u)

		prefix := u.ExposedPrefix()
		if prefix == "" {
			if j, ok := byPrefix[""]; ok {
				v.add(p+".prefix", `"" is also the prefix of upstream %q (upstreams[%d]): both expose bare names, and the first would silently win every name clash; give one of them a prefix`, ups[j].Name, j)
				continue
			}
			byPrefix[""] = i
			continue
		}
		if j, ok := byPrefix[prefix]; ok {
			// Two defaulted prefixes collide only when the names do, which
			// upstreamName already reported.
			if u.Prefix != nil || ups[j].Prefix != nil {
				v.add(p+".prefix", "%q collides with upstream %q (upstreams[%d])", prefix, ups[j].Name, j)
			}
			continue
		}
		byPrefix[prefix] = i
	}
}

func (v *validator) protocolVersion(path string, u *Upstream) {
	pv := u.ProtocolVersion
	switch versions := ProtocolVersions(); {
	case pv == "", pv == ProtocolAuto:
	case !slices.Contains(versions, pv):
		v.add(path, "%q is neither %s nor a known MCP version (%s)", pv, ProtocolAuto, strings.Join(versions, ", "))
	case u.SSE != nil && mcpwire.IsModern(pv):
		v.add(path, "the legacy SSE transport cannot speak %s", pv)
	}
}

func (v *validator) upstreamName(path, name string, i int, seen map[string]int) {
	switch {
	case name == "":
		v.add(path, "required")
		return
	case !upstreamName.MatchString(name):
		v.add(path, "%q must be lowercase letters, digits, '-' and '_', starting with a letter or digit", name)
	}
	if j, ok := seen[name]; ok {
		v.add(path, "%q is already used by upstreams[%d]", name, j)
		return
	}
	seen[name] = i
}

func (v *validator) transport(p string, u *Upstream) {
	n := 0
	if u.HTTP != nil {
		n++
		v.httpURL(p+".http.url", u.HTTP.URL)
		v.headers(p+".http.headers", u.HTTP.Headers)
		if u.HTTP.MaxIdleConns <= 0 {
			v.add(p+".http.max_idle_conns", "must be positive")
		}
		ss := u.HTTP.Sessions
		if ss.IdleTimeout <= 0 {
			v.add(p+".http.sessions.idle_timeout", "must be positive")
		}
		if ss.MaxPerPrincipal <= 0 {
			v.add(p+".http.sessions.max_per_principal", "must be positive")
		}
		switch {
		case ss.Max <= 0:
			v.add(p+".http.sessions.max", "must be positive")
		case ss.MaxPerPrincipal > ss.Max:
			v.add(p+".http.sessions.max_per_principal", "must not exceed http.sessions.max (%d)", ss.Max)
		}
	}
	if u.Stdio != nil {
		n++
		if strings.TrimSpace(u.Stdio.Command) == "" {
			v.add(p+".stdio.command", "required")
		}
		v.caseCollisions(p+".stdio.env", u.Stdio.Env)
		for _, k := range sortedKeys(u.Stdio.Env) {
			kp := fmt.Sprintf("%s.stdio.env[%s]", p, k)
			if k == "" || strings.ContainsAny(k, "=\x00") {
				v.add(kp, "%q is not a valid environment variable name", k)
			}
			v.secretRef(kp, u.Stdio.Env[k])
		}
	}
	if u.SSE != nil {
		n++
		v.httpURL(p+".sse.url", u.SSE.URL)
		v.headers(p+".sse.headers", u.SSE.Headers)
	}
	if n != 1 {
		v.add(p, "exactly one of http, stdio, sse must be set")
	}
}

func (v *validator) headers(path string, h map[string]SecretRef) {
	v.caseCollisions(path, h)
	for _, k := range sortedKeys(h) {
		kp := fmt.Sprintf("%s[%s]", path, k)
		if !isToken(k) {
			v.add(kp, "%q is not a valid header name", k)
		}
		r := h[k]
		v.secretRef(kp, r)
		// Both: Resolved after Load, Value in a Config built in code. The
		// message never quotes the value.
		if !isHeaderValue(r.Value.Reveal()) || !isHeaderValue(r.Resolved.Reveal()) {
			v.add(kp, "value contains control characters")
		}
	}
}

// caseCollisions reports keys of m that differ only in case: two headers
// that are one header on the wire, or environment variables that are most
// likely one variable mistyped.
func (v *validator) caseCollisions(path string, m map[string]SecretRef) {
	seen := make(map[string]string, len(m))
	for _, k := range sortedKeys(m) {
		lk := strings.ToLower(k)
		if prev, dup := seen[lk]; dup {
			v.add(path, "keys %q and %q differ only in case", prev, k)
			continue
		}
		seen[lk] = k
	}
}

// secretRef checks that exactly one source is set. It never quotes a value.
func (v *validator) secretRef(path string, r SecretRef) {
	if r.sources() != 1 {
		v.add(path, "exactly one of env, file, value must be set")
	}
}

func (v *validator) globs(p string, globs []string) {
	for i, g := range globs {
		gp := fmt.Sprintf("%s[%d]", p, i)
		if g == "" {
			v.add(gp, "must not be empty")
			continue
		}
		if _, err := path.Match(g, ""); err != nil {
			v.add(gp, "%q is not a valid glob: %v", g, err)
		}
	}
}

// MinToolNameRoom is the length of tool name a prefix must leave room for
// under catalog.name_pattern: with less, the gateway would start and
// silently drop every tool whose exposed name passes the limit (the
// Claude and OpenAI APIs accept 64 characters).
const MinToolNameRoom = 16

func (v *validator) prefix(path string, u *Upstream, sep string, pattern *regexp.Regexp) {
	prefix := u.ExposedPrefix()
	if prefix == "" || pattern == nil || sep == "" {
		return
	}
	what := fmt.Sprintf("%q", prefix)
	if u.Prefix == nil {
		what += " (the upstream name, since prefix is unset)"
	}
	// A prefix is usable when the pattern accepts it joined with tool
	// names of MinToolNameRoom characters; room is the longest name of
	// one repeated character it accepts.
	room := 0
	for n := 1; n <= MinToolNameRoom; n++ {
		ok := false
		for _, c := range []string{"a", "A", "0", "_", "-"} {
			if pattern.MatchString(prefix + sep + strings.Repeat(c, n)) {
				ok = true
				break
			}
		}
		if !ok {
			break
		}
		room = n
	}
	switch {
	case room == 0:
		v.add(path, "%s joined with separator %q and a one-character tool name does not match catalog.name_pattern", what, sep)
	case room < MinToolNameRoom:
		v.add(path, "%s (%d characters) joined with separator %q leaves room for tool names of only %d characters under catalog.name_pattern (at least %d needed): tools with longer names would be dropped",
			what, len(prefix), sep, room, MinToolNameRoom)
	}
}

// loopbackOnly refuses to expose an unauthenticated gateway beyond this
// machine: without auth, server.listen must be a loopback address.
func (v *validator) loopbackOnly(path, addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return // listen reports it.
	}
	if host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	v.add(path, "%q: without auth, mcpgw binds only loopback addresses (127.0.0.1, ::1, localhost); configure auth to listen on other interfaces", addr)
}

func (v *validator) log(l *Log) {
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q must be one of debug, info, warn, error%s", l.Level, didYouMean(l.Level, "debug", "info", "warn", "error"))
	}
	switch l.Format {
	case "json", "text":
	default:
		v.add("log.format", "%q must be json or text%s", l.Format, didYouMean(l.Format, "json", "text"))
	}
}

// isSessionKey reports whether s encodes 32 bytes in hex or base64.
func isSessionKey(s string) bool {
	if b, err := hex.DecodeString(s); err == nil {
		return len(b) == 32
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return true
		}
	}
	return false
}

// isToken reports whether s is an RFC 9110 token, the syntax of a header
// name.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
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

// isHeaderValue reports whether s can be sent as a header value: no
// control characters but horizontal tab.
func isHeaderValue(s string) bool {
	for i := range len(s) {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// sources counts the sources set in r.
func (r SecretRef) sources() int {
	n := 0
	for _, set := range []bool{r.Env != "", r.File != "", r.Value != ""} {
		if set {
			n++
		}
	}
	return n
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortByPath orders problems as their keys appear in the schema (the order
// of the Config fields, list entries by index, map keys alphabetically,
// unknown keys after known ones), so a report reads top-down like the file.
// Problems at the same path keep their order.
func sortByPath(errs []error) {
	keys := make(map[error][]pathElem, len(errs))
	for _, e := range errs {
		var fe *FieldError
		if errors.As(e, &fe) {
			keys[e] = pathOrder(fe.Path)
		}
	}
	slices.SortStableFunc(errs, func(a, b error) int {
		return slices.CompareFunc(keys[a], keys[b], func(x, y pathElem) int {
			if c := cmp.Compare(x.n, y.n); c != 0 {
				return c
			}
			return strings.Compare(x.s, y.s)
		})
	})
}

// pathElem is one step of a path in sort order: a field's index, a list
// index, or a map key.
type pathElem struct {
	n int
	s string
}

// pathOrder turns a path such as upstreams[2].http.headers[X-Key] into
// sortable elements, following the Config type to number the fields.
func pathOrder(path string) []pathElem {
	var out []pathElem
	t := reflect.TypeFor[Config]()
	for path != "" {
		for t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		var e pathElem
		if rest, ok := strings.CutPrefix(path, "["); ok {
			e, t, path = indexOrder(rest, t)
		} else {
			e, t, path = fieldOrder(path, t)
		}
		out = append(out, e)
	}
	return out
}

// indexOrder reads a list index or map key, rest being the path after its
// "[", in a value of type t (nil when unknown). It returns the element,
// the type of the entry and the path after the "]".
func indexOrder(rest string, t reflect.Type) (pathElem, reflect.Type, string) {
	end := strings.IndexByte(rest, ']')
	if end < 0 {
		end = len(rest) - 1
	}
	key := rest[:max(end, 0)]
	path := strings.TrimPrefix(rest[min(end+1, len(rest)):], ".")
	e := pathElem{s: key}
	if n, err := strconv.Atoi(key); err == nil && (t == nil || t.Kind() != reflect.Map) {
		e = pathElem{n: n}
	}
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) {
		return e, t.Elem(), path
	}
	return e, nil, path
}

// fieldOrder reads the key at the start of path in a struct of type t (nil
// when unknown): its field's index, or after every field when it has none.
// It returns the element, the field's type and the rest of the path.
func fieldOrder(path string, t reflect.Type) (pathElem, reflect.Type, string) {
	const unknownField = 1 << 20
	end := strings.IndexAny(path, ".[")
	if end < 0 {
		end = len(path)
	}
	name, rest := path[:end], strings.TrimPrefix(path[end:], ".")
	if t != nil && t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("mapstructure"), ","); tag == name {
				return pathElem{n: i}, t.Field(i).Type, rest
			}
		}
	}
	return pathElem{n: unknownField, s: name}, nil, rest
}
