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
//     variable stops here, with every such reference reported. Keys are
//     matched to fields exactly, as written (they are case-sensitive); an
//     unknown key is a problem.
//  3. Override scalar keys under server, catalog and log from MCPGW_*
//     variables.
//  4. Decode into Config; values of the wrong type are problems.
//  5. SetDefaults.
//  6. Resolve every SecretRef into its Resolved field.
//  7. Validate.
//
// Problems from steps 2 to 7 are reported together, joined with
// errors.Join, each a *FieldError with its path, in schema order (server,
// catalog, upstreams by index, log; fields in declaration order); Problems
// splits them into lines. A validation problem at, above or below the path
// of a decode problem is left out as its likely consequence. No message
// contains the value of a secret. On error the returned Config is nil.
func Parse(data []byte) (*Config, error) {
	cfg, errs := parse(data, true)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

// parse is Parse. With resolve false it needs neither the environment nor
// secret files: ${NAME} references stay as written and the checks of the
// values holding them are skipped, MCPGW_* overrides are not applied, and
// SecretRefs are checked for their shape only. It returns the problems
// sorted and redacted, and the configuration (partly filled when there
// are problems; nil after a YAML syntax error).
func parse(data []byte, resolve bool) (*Config, []error) {
	raw, err := parseYAML(data)
	if err != nil {
		return nil, leafErrors(err)
	}
	p := &preparer{keepRefs: !resolve}
	doc, _ := p.prepare(raw, reflect.TypeFor[Config](), "").(map[string]any)
	if resolve {
		overrideFromEnv(doc)
	}

	cfg, decodeErrs := decode(doc)
	decodeErrs = append(decodeErrs, p.unknown...)
	cfg.SetDefaults()
	errs := slices.Concat(p.expandErrs, decodeErrs)
	if resolve {
		errs = slices.Concat(errs, resolveSecrets(cfg))
	} else {
		// A value written in the file is no secret to fetch: its checks
		// (the session key's length) run offline too.
		cfg.secretRefs(func(_ string, r *SecretRef) {
			if r.sources() == 1 && r.Value != "" {
				r.Resolved = r.Value
			}
		})
	}
	if err := cfg.Validate(); err != nil {
		errs = append(errs, consequences(leafErrors(err), decodeErrs)...)
	}
	n := len(p.expandErrs)
	errs = slices.DeleteFunc(errs, func(e error) bool {
		var fe *FieldError
		if n > 0 {
			n-- // An expansion problem itself is kept.
			return false
		}
		if !errors.As(e, &fe) {
			return false
		}
		for _, ref := range p.refs {
			if isAncestorOrSelf(ref, fe.Path) || isAncestorOrSelf(fe.Path, ref) {
				return true
			}
		}
		return false
	})
	if len(errs) > 0 {
		// By text first, so that problems at one path come in a stable
		// order whatever order the decoder visited map entries in.
		slices.SortStableFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
		sortByPath(errs)
		return cfg, leafErrors(redactSecrets(errors.Join(errs...), cfg))
	}
	return cfg, nil
}

// consequences drops the validation problems located at a decode problem's
// path, above it or below it. The decoder leaves such a part unfilled (a
// struct behind a pointer stays nil when any of its fields fails; a value
// that is not a mapping fills none of its fields), so Validate would report
// a consequence, such as "exactly one of http, stdio, sse" for an upstream
// whose http block has a typo, or "name: required" for an upstream written
// as a string. They come back, if still true, once the decode problem is
// fixed.
func consequences(validation, decodeErrs []error) []error {
	var out []error
next:
	for _, v := range validation {
		var fe *FieldError
		if errors.As(v, &fe) {
			for _, d := range decodeErrs {
				var de *FieldError
				if errors.As(d, &de) && (isAncestorOrSelf(fe.Path, de.Path) || isAncestorOrSelf(de.Path, fe.Path)) {
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

// parseYAML decodes the document into generic values, with the library
// viper's YAML codec uses. The document never goes through viper, which
// would lowercase every key, header and environment variable names
// included.
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

// preparer walks the generic YAML values alongside the Go type they will
// be decoded into, so that it knows each value's path as the decoder
// spells it.
type preparer struct {
	// expandErrs are ${NAME} expansion problems.
	expandErrs []error
	// unknown are keys that match no field; prepare removes them from the
	// document.
	unknown []error
	// keepRefs leaves ${NAME} references unexpanded; refs are then the
	// paths of the values holding them, whose checks need the environment.
	keepRefs bool
	refs     []string
}

// prepare returns v with ${NAME} expanded in its strings, maps with
// non-string keys converted to map[string]any, and the keys that match no
// field of a struct type reported and removed. t is the Go type v decodes
// into, or nil under an unknown key.
//
// The decoder would refuse unknown keys too (ErrorUnused), but mapstructure
// reports them as one message per struct and keeps Metadata.Unused only
// for structs that decoded without error; finding them here gives each its
// own path, next to the type errors of the same struct.
func (p *preparer) prepare(v any, t reflect.Type, path string) any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch val := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(val))
		for k, e := range val {
			m[fmt.Sprint(k)] = e
		}
		return p.prepare(m, t, path)
	case map[string]any:
		p.prepareMap(val, t, path)
		return val
	case []any:
		var elem reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			elem = t.Elem()
		}
		for i, e := range val {
			val[i] = p.prepare(e, elem, path+"["+strconv.Itoa(i)+"]")
		}
		return val
	case string:
		if p.keepRefs {
			if strings.Contains(strings.ReplaceAll(val, "$${", ""), "${") {
				p.refs = append(p.refs, path)
			}
			return val
		}
		s, errs := expandEnv(val)
		for _, msg := range errs {
			p.expandErrs = append(p.expandErrs, &FieldError{Path: path, Msg: msg})
		}
		if len(errs) > 0 {
			// The value's own checks would only repeat the problem.
			p.refs = append(p.refs, path)
		}
		return s
	}
	return v
}

func (p *preparer) prepareMap(m map[string]any, t reflect.Type, path string) {
	switch {
	case t != nil && t.Kind() == reflect.Map:
		for k, e := range m {
			m[k] = p.prepare(e, t.Elem(), path+"["+k+"]")
		}
	case t != nil && t.Kind() == reflect.Struct:
		for k, e := range m {
			kp := joinPath(path, k)
			f, ok := fieldByKey(t, k)
			if !ok {
				p.unknown = append(p.unknown, &FieldError{Path: kp, Msg: "unknown key" + didYouMean(k, fieldKeys(t)...)})
				p.prepare(e, nil, kp) // Still expanded: an unset ${NAME} is reported.
				delete(m, k)
				continue
			}
			m[k] = p.prepare(e, f.Type, kp)
		}
	default:
		for k, e := range m {
			m[k] = p.prepare(e, nil, joinPath(path, k))
		}
	}
}

// fieldByKey finds the field of struct type t whose mapstructure tag is
// key, as the decoder does with matchExactly.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ","); tag != "" && tag != "-" && tag == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// matchExactly makes keys case-sensitive: mapstructure's default matches a
// key to a field ignoring case.
func matchExactly(key, field string) bool { return key == field }

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

// overrideFromEnv sets in doc every key of EnvKeys whose MCPGW_* variable
// is set and not empty, creating the sections the file omits. A private
// viper instance maps keys to variable names (server.cors.max_age is
// MCPGW_SERVER_CORS_MAX_AGE) and reads them; it never sees the file.
// Values stay strings, for the decoder to convert like any other.
//
// Exactly the scalar keys are bound. AutomaticEnv is not used: it consults
// the environment only for keys viper already knows, and would let
// MCPGW_UPSTREAMS replace a whole list with one string.
func overrideFromEnv(doc map[string]any) {
	v := viper.NewWithOptions(viper.EnvKeyReplacer(strings.NewReplacer(".", "_")))
	v.SetEnvPrefix(EnvPrefix)
	for _, key := range EnvKeys() {
		_ = v.BindEnv(key) // Fails only when called without a key.
		if v.IsSet(key) {
			setPath(doc, strings.Split(key, "."), v.GetString(key))
		}
	}
}

// setPath sets doc's value at the dotted path, creating mappings along the
// way. Where the file put something other than a mapping, it does nothing:
// the decoder reports that value.
func setPath(doc map[string]any, path []string, val string) {
	m := doc
	for _, k := range path[:len(path)-1] {
		switch next := m[k].(type) {
		case map[string]any:
			m = next
		case nil:
			n := map[string]any{}
			m[k] = n
			m = n
		default:
			return
		}
	}
	m[path[len(path)-1]] = val
}

// decode decodes doc into a Config with mapstructure. It returns the
// Config, possibly partly filled, and one *FieldError per problem.
func decode(doc map[string]any) (*Config, []error) {
	cfg := &Config{}
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result:      cfg,
		ErrorUnused: true, // prepare removed the unknown keys it reported; this is the backstop.
		MatchName:   matchExactly,
		// Environment overrides are strings.
		WeaklyTypedInput: true,
		// Not mapstructure's string-to-slice hook (viper's default): it
		// splits any string on commas, so args: "-a,b" would become two
		// arguments.
		DecodeHook: mapstructure.ComposeDecodeHookFunc(durationHook, dateHook, shapeHook),
	})
	if err != nil {
		return cfg, []error{&FieldError{Msg: err.Error()}}
	}
	err = d.Decode(doc)
	if err == nil {
		return cfg, nil
	}
	var errs []error
	for _, leaf := range decodeLeaves(err) {
		errs = append(errs, decodeProblem(leaf))
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

// typeError is a problem a decode hook found with a value; its message is
// the whole report.
type typeError struct{ msg string }

func (e *typeError) Error() string { return e.msg }

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
			return nil, &typeError{`must be a duration such as "30s" or "250ms"`}
		}
		return d, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return nil, &typeError{`must be a duration with a unit, such as "30s"`}
	default:
		return data, nil
	}
}

// dateHook turns a YAML timestamp back into its text where a string is
// expected: YAML resolves an unquoted 2025-06-18 (protocol_version) to a
// timestamp.
func dateHook(from, to reflect.Type, data any) (any, error) {
	t, ok := data.(time.Time)
	if !ok || from != reflect.TypeFor[time.Time]() || to.Kind() != reflect.String {
		return data, nil
	}
	if t.Equal(t.Truncate(24*time.Hour)) && t.Location() == time.UTC {
		return t.Format(time.DateOnly), nil
	}
	return t.Format(time.RFC3339Nano), nil
}

// shapeHook refuses a value that is not a mapping where a struct or a map
// is expected, before mapstructure would try: weakly typed, it would merge
// a list of mappings into one.
func shapeHook(from, to reflect.Type, data any) (any, error) {
	for to.Kind() == reflect.Pointer {
		to = to.Elem()
	}
	if to.Kind() == reflect.Slice && from.Kind() == reflect.Map && data != nil {
		// Weakly typed, mapstructure would make a list of the mapping.
		return nil, &typeError{"must be a list, not a mapping"}
	}
	if (to.Kind() != reflect.Struct && to.Kind() != reflect.Map) || from.Kind() == reflect.Map || data == nil {
		return data, nil
	}
	if to == reflect.TypeFor[SecretRef]() {
		return nil, &typeError{"must be a mapping with one of env, file, value, such as {env: API_KEY}"}
	}
	return nil, &typeError{"must be a mapping"}
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

// decodeProblem turns one mapstructure error into a FieldError with a plain
// message: a hook's own, or what type the value should have. mapstructure's
// messages never include the offending value.
func decodeProblem(err error) error {
	var de *mapstructure.DecodeError
	if !errors.As(err, &de) {
		return &FieldError{Msg: err.Error()}
	}
	path, inner := de.Name(), de.Unwrap()
	var (
		te  *typeError
		ute *mapstructure.UnconvertibleTypeError
		pe  *mapstructure.ParseError
	)
	switch {
	case errors.As(inner, &te):
		return &FieldError{Path: path, Msg: te.msg}
	case errors.As(inner, &ute):
		return &FieldError{Path: path, Msg: typeProblem(ute.Expected.Type())}
	case errors.As(inner, &pe):
		return &FieldError{Path: path, Msg: typeProblem(pe.Expected.Type())}
	default:
		return &FieldError{Path: path, Msg: inner.Error()}
	}
}

// typeProblem says what type a value should have to decode into t.
func typeProblem(t reflect.Type) string {
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
		return "must be a mapping"
	default:
		return "has the wrong type"
	}
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
