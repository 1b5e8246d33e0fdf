package configs

import (
	"fmt"
	"io"
	"log/slog"
)

// Secret is a sensitive string. It redacts itself wherever it could be
// printed or logged; call Reveal to use the value.
type Secret string

const redacted = "[REDACTED]"

// String returns a redacted marker, never the value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// Format redacts the value for every fmt verb. Without it, a verb that does
// not fit a string (%d) would make fmt print the raw value in its
// %!d(configs.Secret=...) complaint, bypassing String.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, s.GoString())
		return
	}
	_, _ = fmt.Fprintf(f, fmt.FormatString(f, verb), s.String())
}

// MarshalText keeps encoders (JSON, YAML) from writing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps slog from writing the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// SecretRef says where a secret comes from. Exactly one of Env, File and
// Value is set; Load resolves it into Resolved.
//
//	headers:
//	  X-Api-Key: {env: ORDERS_API_KEY}
//	  X-Other:   {file: /run/secrets/other}
//	  X-Plain:   {value: not-really-secret}
type SecretRef struct {
	// Env names an environment variable holding the value.
	Env string `mapstructure:"env" yaml:"env,omitempty"`
	// File is a path whose contents (trailing newline trimmed) are the value.
	File string `mapstructure:"file" yaml:"file,omitempty"`
	// Value is the value inline. Prefer env or file for real secrets.
	Value Secret `mapstructure:"value" yaml:"value,omitempty"`
	// Resolved is the value after Load; it is not read from YAML.
	Resolved Secret `mapstructure:"-" yaml:"-"`
}

// IsZero reports whether no source is set.
func (r SecretRef) IsZero() bool { return r.Env == "" && r.File == "" && r.Value == "" }

// The types below hold secrets behind pointers. fmt prints a nested pointer
// given a verb it does not fit (%s, %q) as a complaint, %!s(*T=&{...}), and
// while complaining it ignores every String and Format method, so the raw
// secret would be printed. Formatting the pointer types ourselves keeps fmt
// from ever complaining about them.

// Format prints c like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (c *Config) Format(f fmt.State, verb rune) { formatPointer(f, verb, c) }

// Format prints u like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (u *Upstream) Format(f fmt.State, verb rune) { formatPointer(f, verb, u) }

// Format prints t like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (t *HTTPTransport) Format(f fmt.State, verb rune) { formatPointer(f, verb, t) }

// Format prints t like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (t *StdioTransport) Format(f fmt.State, verb rune) { formatPointer(f, verb, t) }

// Format prints t like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (t *SSETransport) Format(f fmt.State, verb rune) { formatPointer(f, verb, t) }

// Format prints r like %v prints a pointer to a struct, with secrets
// redacted, whatever the verb.
func (r *SecretRef) Format(f fmt.State, verb rune) { formatPointer(f, verb, r) }

// formatPointer prints &{...} (or &pkg.T{...} for %#v) with the fields
// formatted by %v, %+v or %#v; other verbs are treated as %v. The struct
// value has no Format method, so this does not recurse.
func formatPointer[T any](f fmt.State, verb rune, p *T) {
	if p == nil {
		_, _ = io.WriteString(f, "<nil>")
		return
	}
	format := "%v"
	if verb == 'v' {
		format = fmt.FormatString(f, verb)
	}
	_, _ = fmt.Fprintf(f, "&"+format, *p)
}
