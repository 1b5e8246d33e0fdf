package configs

import (
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
