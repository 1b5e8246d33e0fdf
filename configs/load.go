package configs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts the name of every environment variable that overrides a
// configuration key: MCPGW_SERVER_LISTEN overrides server.listen.
const EnvPrefix = "MCPGW"

// Load reads the YAML file at path and returns the configuration it
// describes, as Parse does. Relative secret file paths are resolved against
// the working directory, not the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return Parse(data)
}

// Parse builds a configuration from YAML text, in this order:
//
//  1. Parse the YAML. A syntax error stops here.
//  2. Expand ${NAME} in string values from the environment. An unset
//     variable stops here, with every such reference reported.
//  3. Override keys under server, catalog and log from MCPGW_* variables.
//  4. Decode into Config; unknown keys and values of the wrong type are
//     problems.
//  5. SetDefaults.
//  6. Resolve every SecretRef into its Resolved field.
//  7. Validate.
//
// Problems from steps 4 to 7 are reported together, joined with
// errors.Join, each a *FieldError with its path, in schema order (server,
// catalog, upstreams by index, log; fields in declaration order); Problems
// splits them into lines. A validation problem at or above the path of a
// decode problem is left out as its likely consequence. No message contains
// the value of a secret. On error the returned Config is nil.
func Parse(data []byte) (*Config, error) {
	raw, err := parseYAML(data)
	if err != nil {
		return nil, err
	}
	w := &rawWalker{mapKeys: make(map[string][]string)}
	doc, _ := w.walk(raw, reflect.TypeFor[Config](), "").(map[string]any)
	if len(w.errs) > 0 {
		return nil, errors.Join(w.errs...)
	}

	cfg, decodeErrs := decode(doc, w.mapKeys)
	decodeErrs = append(decodeErrs, w.unknown...)
	decodeErrs = append(decodeErrs, restoreKeyCase(cfg, w.mapKeys)...)
	decodeErrs = sortUnique(decodeErrs)
	cfg.SetDefaults()
	errs := slices.Concat(decodeErrs, resolveSecrets(cfg))
	if err := cfg.Validate(); err != nil {
		errs = append(errs, consequences(leafErrors(err), decodeErrs)...)
	}
	if len(errs) > 0 {
		sortByPath(errs)
		return nil, redactSecrets(errors.Join(errs...), cfg)
	}
	return cfg, nil
}

// sortUnique sorts problems by their text and drops duplicates: an unknown
// key can be reported both by the walker and by the decoder.
func sortUnique(errs []error) []error {
	slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return slices.CompactFunc(errs, func(a, b error) bool { return a.Error() == b.Error() })
}

// consequences drops the validation problems located at a decode problem's
// path or above it. The decoder leaves such a part unfilled (a struct behind
// a pointer stays nil when any of its fields fails), so Validate would
// report a consequence, such as "exactly one of http, stdio, sse" for an
// upstream whose http block has a typo. They come back, if still true, once
// the decode problem is fixed.
func consequences(validation, decodeErrs []error) []error {
	var out []error
next:
	for _, v := range validation {
		var fe *FieldError
		if errors.As(v, &fe) {
			for _, d := range decodeErrs {
				var de *FieldError
				if errors.As(d, &de) && isAncestorOrSelf(fe.Path, de.Path) {
					continue next
				}
			}
		}
		out = append(out, v)
	}
	return out
}

// isAncestorOrSelf reports whether path a is b or contains it.
func isAncestorOrSelf(a, b string) bool {
	return a == b || strings.HasPrefix(b, a+".") || strings.HasPrefix(b, a+"[")
}

// parseYAML decodes the document into generic values. It uses the same
// library as viper's YAML codec, but keeps the text in our hands so ${NAME}
// expansion and key case can be handled before viper lowercases every key.
func parseYAML(data []byte) (any, error) {
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		// Decoding into an interface, the only TypeErrors are about keys,
		// such as a duplicate; they carry one message per problem.
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, &FieldError{Msg: fmt.Sprintf("parsing YAML: %v", err)}
		}
		errs := make([]error, 0, len(te.Errors))
		for _, msg := range te.Errors {
			errs = append(errs, &FieldError{Msg: "parsing YAML: " + msg})
		}
		return nil, errors.Join(errs...)
	}
	switch doc.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any, map[any]any:
		return doc, nil
	default:
		return nil, &FieldError{Msg: "parsing YAML: the document must be a mapping of keys to values"}
	}
}

// rawWalker walks the generic YAML values alongside the Go type they will be
// decoded into, so it knows each value's path as decode errors spell it.
type rawWalker struct {
	// errs are ${NAME} expansion problems.
	errs []error
	// unknown are keys that match no field. The decoder reports them too,
	// except where viper drops them: a key whose value is null or an empty
	// mapping has no leaf, so viper never hands it to the decoder.
	unknown []error
	// mapKeys holds the keys, in their original case, of every map-typed
	// field (headers, env), by path.
	mapKeys map[string][]string
}

// walk returns v with ${NAME} expanded in its strings, maps with non-string
// keys converted to map[string]any, and YAML timestamps turned back into
// text where a string is expected. t is the Go type v decodes into, or nil
// when unknown (the decoder then reports the key).
func (w *rawWalker) walk(v any, t reflect.Type, path string) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch val := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(val))
		for k, e := range val {
			m[fmt.Sprint(k)] = e
		}
		return w.walk(m, t, path)
	case map[string]any:
		w.walkMap(val, t, path)
		return val
	case []any:
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i, e := range val {
			val[i] = w.walk(e, elem, path+"["+strconv.Itoa(i)+"]")
		}
		return val
	case string:
		s, errs := expandEnv(val)
		for _, msg := range errs {
			w.errs = append(w.errs, &FieldError{Path: path, Msg: msg})
		}
		return s
	case time.Time:
		// YAML resolves an unquoted 2025-06-18 to a timestamp; a string
		// field (protocol_version) wants the text back.
		if t != nil && t.Kind() == reflect.String {
			if val.Equal(val.Truncate(24*time.Hour)) && val.Location() == time.UTC {
				return val.Format(time.DateOnly)
			}
			return val.Format(time.RFC3339Nano)
		}
	}
	return v
}

func (w *rawWalker) walkMap(m map[string]any, t reflect.Type, path string) {
	switch {
	case t != nil && t.Kind() == reflect.Map:
		keys := make([]string, 0, len(m))
		for k, e := range m {
			keys = append(keys, k)
			m[k] = w.walk(e, t.Elem(), path+"["+k+"]")
		}
		slices.Sort(keys)
		w.mapKeys[path] = keys
	case t != nil && t.Kind() == reflect.Struct:
		for k, e := range m {
			f, ok := fieldByKey(t, k)
			if !ok {
				p := joinPath(path, strings.ToLower(k))
				w.unknown = append(w.unknown, &FieldError{Path: p, Msg: "unknown key"})
				m[k] = w.walk(e, nil, p)
				continue
			}
			m[k] = w.walk(e, f.typ, joinPath(path, f.key))
		}
	default:
		for k, e := range m {
			m[k] = w.walk(e, nil, joinPath(path, k))
		}
	}
}

type field struct {
	key string
	typ reflect.Type
}

// fieldByKey finds the field of struct type t that the decoder matches to
// key: by mapstructure tag, ignoring case, as viper lowercases keys.
func fieldByKey(t reflect.Type, key string) (field, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" {
			tag = f.Name
		}
		if tag != "-" && strings.EqualFold(tag, key) {
			return field{key: tag, typ: f.Type}, true
		}
	}
	return field{}, false
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// envName is the syntax of NAME in ${NAME}.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expandEnv replaces every ${NAME} in s with the value of the environment
// variable NAME; $${ stands for a literal ${. Other uses of $ are left
// alone, so regular expressions and passwords need no escaping. It returns
// one message per problem: an unset variable, a malformed reference.
func expandEnv(s string) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var (
		b    strings.Builder
		errs []string
	)
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String(), errs
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${")
			s = s[i+2:]
			continue
		}
		b.WriteString(s[:i])
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			errs = append(errs, "unterminated ${ (write $${ for a literal ${)")
			return b.String(), errs
		}
		name := s[i+2 : i+2+end]
		s = s[i+2+end+1:]
		if !envName.MatchString(name) {
			errs = append(errs, fmt.Sprintf("${%s}: not a valid environment variable name", name))
			continue
		}
		val, ok := os.LookupEnv(name)
		if !ok {
			errs = append(errs, fmt.Sprintf("${%s}: environment variable %s is not set", name, name))
			continue
		}
		b.WriteString(val)
	}
}

// decode layers MCPGW_* environment variables over raw with a private viper
// instance and decodes the result into a Config. It returns the Config,
// possibly partly filled, and one *FieldError per decode problem. mapKeys
// (from rawWalker) restores the case of map keys in their paths.
func decode(raw map[string]any, mapKeys map[string][]string) (*Config, []error) {
	v := viper.New()
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	// Bind exactly the scalar keys. AutomaticEnv is not used: it consults
	// the environment only for keys viper already knows (Unmarshal asks for
	// AllKeys), so it misses keys the file omits, and for the keys it does
	// know it also lets MCPGW_UPSTREAMS or MCPGW_SERVER_ALLOWED_ORIGINS
	// replace a whole list with one string, but only when the file happens
	// to set that list.
	for _, key := range EnvKeys() {
		_ = v.BindEnv(key) // Fails only when called without a key.
	}
	_ = v.MergeConfigMap(raw) // Never fails; lowercases raw's keys in place.

	cfg := &Config{}
	err := v.Unmarshal(cfg, func(dc *mapstructure.DecoderConfig) {
		dc.ErrorUnused = true
		dc.WeaklyTypedInput = true // Environment values are strings.
		// Replaces viper's default hooks: its string-to-slice hook splits
		// any string on commas, so args: "-a,b" would become two arguments.
		dc.DecodeHook = mapstructure.DecodeHookFuncType(durationHook)
	})
	if err == nil {
		return cfg, nil
	}
	var errs []error
	for _, leaf := range decodeLeaves(err) {
		for _, e := range decodeProblems(leaf) {
			if fe, ok := e.(*FieldError); ok { //nolint:errorlint // decodeProblems returns bare leaves, never wrapped.
				fe.Path = originalCase(fe.Path, mapKeys)
			}
			errs = append(errs, e)
		}
	}
	return cfg, errs
}

// decodeLeaves flattens mapstructure's error tree: a "decoding failed"
// wrapper around nested joins of *DecodeError.
func decodeLeaves(err error) []error {
	switch e := err.(type) { //nolint:errorlint // it walks the tree itself, one level at a time.
	case *mapstructure.DecodeError:
		return []error{e}
	case interface{ Unwrap() []error }:
		var out []error
		for _, c := range e.Unwrap() {
			out = append(out, decodeLeaves(c)...)
		}
		return out
	case interface{ Unwrap() error }:
		if inner := e.Unwrap(); inner != nil {
			return decodeLeaves(inner)
		}
	}
	return []error{err}
}

// EnvKeys lists the configuration keys that MCPGW_* environment variables
// override, in dotted form: server.listen is MCPGW_SERVER_LISTEN. They are
// the scalar keys under server, catalog and log; lists, maps and upstreams
// come from the file only.
func EnvKeys() []string {
	var keys []string
	var collect func(t reflect.Type, prefix string)
	collect = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if tag == "" || tag == "-" {
				continue
			}
			key := joinPath(prefix, tag)
			switch f.Type.Kind() {
			case reflect.Struct:
				collect(f.Type, key)
			case reflect.String, reflect.Bool, reflect.Int, reflect.Int64:
				keys = append(keys, key)
			default:
				// Slices, maps and pointers are not scalars.
			}
		}
	}
	t := reflect.TypeFor[Config]()
	for _, section := range []string{"Server", "Catalog", "Log"} {
		f, _ := t.FieldByName(section)
		collect(f.Type, f.Tag.Get("mapstructure"))
	}
	return keys
}

// durationHook decodes durations from strings such as "30s" and refuses bare
// numbers, which would silently mean nanoseconds.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[time.Duration]() {
		return data, nil
	}
	switch from.Kind() {
	case reflect.String:
		d, err := time.ParseDuration(strings.TrimSpace(reflect.ValueOf(data).String()))
		if err != nil {
			return nil, errors.New(`must be a duration such as "30s" or "250ms"`)
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, errors.New(`must be a duration with a unit, such as "30s"`)
	default:
		return data, nil
	}
}

// leafErrors flattens a tree of joined errors.
func leafErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// rootTypeName is how mapstructure names the root of the decode.
var rootTypeName = reflect.TypeFor[Config]().String()

// decodeProblems turns one mapstructure error into FieldErrors with plain
// messages. mapstructure's messages never include the offending value.
func decodeProblems(err error) []error {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return []error{&FieldError{Msg: err.Error()}}
	}
	name, inner := de.Name(), de.Unwrap()
	if name == rootTypeName {
		// mapstructure v2.5 names the root by its type in a second report
		// of the top-level unknown keys; the path of the root is "".
		name = ""
	}
	msg := inner.Error()
	if keys, ok := strings.CutPrefix(msg, "has invalid keys: "); ok {
		var errs []error
		for k := range strings.SplitSeq(keys, ", ") {
			errs = append(errs, &FieldError{Path: joinPath(name, k), Msg: "unknown key"})
		}
		return errs
	}
	var (
		ute *mapstructure.UnconvertibleTypeError
		pe  *mapstructure.ParseError
	)
	switch {
	case errors.As(inner, &ute):
		msg = typeProblem(name, ute.Expected.Type())
	case errors.As(inner, &pe):
		msg = typeProblem(name, pe.Expected.Type())
	case strings.HasPrefix(msg, "expected a map or struct"):
		msg = typeProblem(name, reflect.TypeFor[struct{}]())
	case strings.HasPrefix(msg, "source data must be an array or slice"):
		msg = "must be a list"
	}
	return []error{&FieldError{Path: name, Msg: msg}}
}

// secretPath matches the paths of SecretRef values.
var secretPath = regexp.MustCompile(`(headers|env)\[[^\]]*\]$|session_key$|password$`)

// typeProblem says what type the value at path should have.
func typeProblem(path string, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "must be a string"
	case reflect.Bool:
		return "must be true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "must be an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "must be a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "must be a number"
	case reflect.Slice, reflect.Array:
		return "must be a list"
	case reflect.Map, reflect.Struct:
		if secretPath.MatchString(path) {
			return "must be a mapping with one of env, file, value, such as {env: API_KEY}"
		}
		return "must be a mapping"
	default:
		return "has the wrong type"
	}
}

// originalCase undoes viper's lowercasing of a map key in a decode error
// path: upstreams[0].http.headers[x-api-key].envv becomes
// upstreams[0].http.headers[X-Api-Key].envv.
func originalCase(path string, mapKeys map[string][]string) string {
	for p, keys := range mapKeys {
		rest, ok := strings.CutPrefix(path, p+"[")
		if !ok {
			continue
		}
		for _, k := range keys {
			if tail, ok := strings.CutPrefix(rest, strings.ToLower(k)+"]"); ok {
				return p + "[" + k + "]" + tail
			}
		}
	}
	return path
}

// restoreKeyCase puts back the original case of header and environment
// variable names, which viper lowercases (it treats every key as
// case-insensitive, even inside lists). Keys that differ only in case
// collapse into one in viper, so they are reported.
func restoreKeyCase(c *Config, original map[string][]string) []error {
	var errs []error
	restore := func(path string, m map[string]SecretRef) map[string]SecretRef {
		keys, ok := original[path]
		if !ok || m == nil {
			return m
		}
		out := make(map[string]SecretRef, len(m))
		seen := make(map[string]string, len(keys))
		for _, k := range keys {
			lk := strings.ToLower(k)
			if prev, dup := seen[lk]; dup {
				errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("keys %q and %q differ only in case", prev, k)})
				continue
			}
			seen[lk] = k
			if r, ok := m[lk]; ok {
				out[k] = r
			}
		}
		return out
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		p := fmt.Sprintf("upstreams[%d]", i)
		if u.HTTP != nil {
			u.HTTP.Headers = restore(p+".http.headers", u.HTTP.Headers)
		}
		if u.SSE != nil {
			u.SSE.Headers = restore(p+".sse.headers", u.SSE.Headers)
		}
		if u.Stdio != nil {
			u.Stdio.Env = restore(p+".stdio.env", u.Stdio.Env)
		}
	}
	return errs
}

// secretRefs calls fn with the path and address of every SecretRef in c, in
// a stable order.
func (c *Config) secretRefs(fn func(path string, r *SecretRef)) {
	fn("server.session_key", &c.Server.SessionKey)
	if c.Redis != nil {
		fn("redis.password", &c.Redis.Password)
	}
	each := func(path string, m map[string]SecretRef) {
		for _, k := range sortedKeys(m) {
			r := m[k]
			fn(fmt.Sprintf("%s[%s]", path, k), &r)
			m[k] = r
		}
	}
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		p := fmt.Sprintf("upstreams[%d]", i)
		if u.HTTP != nil {
			each(p+".http.headers", u.HTTP.Headers)
		}
		if u.SSE != nil {
			each(p+".sse.headers", u.SSE.Headers)
		}
		u.Auth.secretRefs(p+".auth", fn)
		if u.Stdio != nil {
			each(p+".stdio.env", u.Stdio.Env)
		}
	}
	c.Telemetry.secretRefs(each)
}

// resolveSecrets fills Resolved in every SecretRef with exactly one source
// (Validate reports the others): Env from the environment, File from the
// file with trailing newlines trimmed, Value as is. An unset or empty
// variable and an unreadable or empty file are problems. Messages name the
// variable or file, never the value.
func resolveSecrets(c *Config) []error {
	var errs []error
	c.secretRefs(func(path string, r *SecretRef) {
		r.Resolved = ""
		if r.sources() != 1 {
			return // Validate reports it, or an unset session key is fine.
		}
		switch {
		case r.Env != "":
			val, ok := os.LookupEnv(r.Env)
			switch {
			case !ok:
				errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("environment variable %s is not set", r.Env)})
			case val == "":
				errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("environment variable %s is empty", r.Env)})
			default:
				r.Resolved = Secret(val)
			}
		case r.File != "":
			data, err := readSecretFile(r.File)
			if err != nil {
				errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("reading secret file: %v", err)})
				return
			}
			val := strings.TrimRight(data, "\r\n")
			if val == "" {
				errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf("secret file %s is empty", r.File)})
				return
			}
			r.Resolved = Secret(val)
		default:
			r.Resolved = r.Value
		}
	})
	return errs
}

// maxSecretFileBytes bounds a secret file, so a path such as /dev/zero
// cannot exhaust memory.
const maxSecretFileBytes = 1 << 20

// readSecretFile reads a secret file of at most maxSecretFileBytes.
func readSecretFile(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	if err != nil {
		return "", err
	}
	if len(data) > maxSecretFileBytes {
		return "", fmt.Errorf("%s is larger than %d bytes", name, maxSecretFileBytes)
	}
	return string(data), nil
}

// minRedactLen is the shortest secret value scrubbed from messages; shorter
// ones would mangle ordinary words and are no secret anyway.
const minRedactLen = 4

// redactSecrets is a last line of defense: messages are built never to
// include secret values, but a value expanded from ${NAME} into a
// non-secret field could echo one. It replaces every known secret value in
// err's messages.
func redactSecrets(err error, c *Config) error {
	var secrets []string
	c.secretRefs(func(_ string, r *SecretRef) {
		for _, s := range []Secret{r.Value, r.Resolved} {
			if len(s) >= minRedactLen {
				secrets = append(secrets, s.Reveal())
			}
		}
	})
	if len(secrets) == 0 {
		return err
	}
	scrub := func(text string) string {
		for _, s := range secrets {
			text = strings.ReplaceAll(text, s, redacted)
		}
		return text
	}
	leaves := leafErrors(err)
	changed := false
	for i, e := range leaves {
		if scrub(e.Error()) == e.Error() {
			continue
		}
		changed = true
		if fe, ok := e.(*FieldError); ok { //nolint:errorlint // leafErrors flattened the tree; only a bare leaf is rebuilt field by field.
			leaves[i] = &FieldError{Path: scrub(fe.Path), Msg: scrub(fe.Msg)}
		} else {
			leaves[i] = &FieldError{Msg: scrub(e.Error())}
		}
	}
	if !changed {
		return err
	}
	return errors.Join(leaves...)
}
