package configs

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

const leak = "s3cr3t-do-not-leak"

// secretConfig holds the secret in every kind of SecretRef, both as the
// source and as the resolved value.
func secretConfig() *Config {
	ref := SecretRef{Value: leak, Resolved: leak}
	c := &Config{
		Server: Server{SessionKey: ref},
		Upstreams: []Upstream{
			{Name: "a", HTTP: &HTTPTransport{URL: "http://a", Headers: map[string]SecretRef{"Authorization": ref}}},
			{Name: "b", Stdio: &StdioTransport{Command: "b", Env: map[string]SecretRef{"KEY": {Env: "KEY", Resolved: leak}}}},
			{Name: "c", SSE: &SSETransport{URL: "http://c", Headers: map[string]SecretRef{"X": ref}}},
		},
	}
	c.SetDefaults()
	return c
}

func TestSecretRedaction(t *testing.T) {
	t.Parallel()

	c := secretConfig()
	ref := c.Server.SessionKey
	values := map[string]any{
		"secret":     ref.Resolved,
		"secret ptr": &ref.Resolved,
		"ref":        ref,
		"config":     c,
		"upstream":   c.Upstreams[0],
		"http":       *c.Upstreams[0].HTTP,
		"stdio":      c.Upstreams[1].Stdio,
		"sse":        c.Upstreams[2].SSE,
		"headers":    c.Upstreams[0].HTTP.Headers,
		"config val": *c,
		"ptr map":    map[string]*Upstream{"a": &c.Upstreams[0], "b": &c.Upstreams[1], "c": &c.Upstreams[2]},
		"ref ptr":    struct{ R *SecretRef }{&ref},
	}
	encoders := map[string]func(v any) (string, error){
		"%v":     sprintf("%v"),
		"%+v":    sprintf("%+v"),
		"%#v":    sprintf("%#v"),
		"%s":     sprintf("%s"),
		"%q":     sprintf("%q"),
		"%x":     sprintf("%x"),
		"%d":     sprintf("%d"),
		"%10.3s": sprintf("%10.3s"),
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"yaml": func(v any) (string, error) {
			b, err := yaml.Marshal(v)
			return string(b), err
		},
		"slog json": func(v any) (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("loaded", slog.Any("value", v))
			return buf.String(), nil
		},
		"slog text": func(v any) (string, error) {
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("loaded", slog.Any("value", v))
			return buf.String(), nil
		},
	}
	for vname, v := range values {
		for ename, enc := range encoders {
			t.Run(vname+" "+ename, func(t *testing.T) {
				t.Parallel()
				out, err := enc(v)
				require.NoError(t, err)
				assert.NotContains(t, out, leak)
				assert.NotContains(t, strings.ToLower(out), hex.EncodeToString([]byte(leak)))
				assert.NotEmpty(t, out)
			})
		}
	}
}

func sprintf(format string) func(v any) (string, error) {
	return func(v any) (string, error) { return fmt.Sprintf(format, v), nil }
}

func TestSecretMarkers(t *testing.T) {
	t.Parallel()

	s := Secret(leak)
	assert.Equal(t, leak, s.Reveal())
	assert.Equal(t, "[REDACTED]", s.String())
	assert.Equal(t, "[REDACTED]", fmt.Sprintf("%v", s))
	assert.Equal(t, "[REDACTED]", fmt.Sprintf("%#v", s))
	assert.Equal(t, `"[REDACTED]"`, fmt.Sprintf("%q", s))
	b, err := json.Marshal(struct{ S Secret }{s})
	require.NoError(t, err)
	assert.JSONEq(t, `{"S":"[REDACTED]"}`, string(b))

	var empty Secret
	assert.Empty(t, empty.String(), "an unset secret prints as empty, so it is visibly unset")
}

func TestFormatPointers(t *testing.T) {
	t.Parallel()

	u := &Upstream{Name: "a", SSE: &SSETransport{URL: "http://a"}}
	assert.Equal(t, "&{a <nil> <nil> &{http://a map[]} <nil> {[] []} 0s [] {false 0 0s 0s 0  false} {0 0 0s} {0 0s []} false 0 {[] []} {  {   }   {   } []  } {false  0s }   [] }", fmt.Sprintf("%v", u))
	assert.Equal(t, fmt.Sprintf("%v", u), fmt.Sprintf("%s", u), "other verbs print as %v")
	assert.Contains(t, fmt.Sprintf("%+v", u), "SSE:&{URL:http://a Headers:map[]}")
	assert.Contains(t, fmt.Sprintf("%#v", u), `&configs.Upstream{Name:"a"`)
	var nilUp *Upstream
	assert.Equal(t, "<nil>", fmt.Sprintf("%v", nilUp))
}
