package configs

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// minimal is the smallest valid configuration.
const minimal = `
upstreams:
  - name: a
    http: {url: "http://127.0.0.1:1/mcp"}
`

// problems parses src and returns its problems; nil when it is valid.
func problems(t *testing.T, src string) []string {
	t.Helper()
	cfg, err := Parse([]byte(src))
	if err != nil {
		assert.Nil(t, cfg, "a failed Parse returns no Config")
		return Problems(err)
	}
	require.NotNil(t, cfg)
	return nil
}

func TestParseMinimal(t *testing.T) {
	t.Parallel()

	cfg, err := Parse([]byte(minimal))
	require.NoError(t, err)
	want := &Config{Upstreams: []Upstream{{Name: "a", HTTP: &HTTPTransport{URL: "http://127.0.0.1:1/mcp"}}}}
	want.SetDefaults()
	assert.Equal(t, want, cfg)
}

func TestParseValues(t *testing.T) {
	t.Parallel()

	cfg, err := Parse([]byte(`
server:
  listen: "127.0.0.2:8443"
  session_idle_ttl: 1h30m
  allowed_origins: ["*"]
  cors: {enabled: true, max_age: 90s}
catalog:
  separator: "_"
  page_size: 10
  list_changed_debounce: 1s
upstreams:
  - name: a
    prefix: ""
    http: {url: "http://127.0.0.1:1/mcp", max_idle_conns: 8}
    timeout: 2s
    optional: true
    protocol_version: 2025-06-18
  - name: b
    prefix: bee
    stdio: {command: b, args: "-x,y"}
    tools: {include: ["get_*"], exclude: [get_secret]}
  - name: c
    sse: {url: "https://c.example.com/sse"}
log: {level: debug, format: text}
`))
	require.NoError(t, err)

	assert.Equal(t, "127.0.0.2:8443", cfg.Server.Listen)
	assert.Equal(t, 90*time.Minute, cfg.Server.SessionIdleTTL)
	assert.Equal(t, []string{"*"}, cfg.Server.AllowedOrigins)
	assert.True(t, cfg.Server.CORS.Enabled)
	assert.Equal(t, 90*time.Second, cfg.Server.CORS.MaxAge)
	assert.Equal(t, Catalog{Separator: "_", NamePattern: DefaultNamePattern, PageSize: 10, ListChangedDebounce: time.Second, ListTTL: DefaultListTTL}, cfg.Catalog)

	a, b, c := cfg.Upstreams[0], cfg.Upstreams[1], cfg.Upstreams[2]
	assert.Equal(t, "http", a.Transport())
	require.NotNil(t, a.Prefix, `prefix: "" is kept, not confused with unset`)
	assert.Empty(t, a.ExposedPrefix())
	assert.Equal(t, 8, a.HTTP.MaxIdleConns)
	assert.Equal(t, 2*time.Second, a.Timeout)
	assert.True(t, a.Optional)
	assert.Equal(t, "2025-06-18", a.ProtocolVersion, "an unquoted date is YAML's timestamp; it is turned back into text")

	assert.Equal(t, "stdio", b.Transport())
	assert.Equal(t, "bee", b.ExposedPrefix())
	assert.Equal(t, []string{"-x,y"}, b.Stdio.Args, "a string is one argument, never split on commas")
	assert.Equal(t, ToolFilter{Include: []string{"get_*"}, Exclude: []string{"get_secret"}}, b.Tools)

	assert.Equal(t, "sse", c.Transport())
	assert.Nil(t, c.Prefix)
	assert.Equal(t, "c", c.ExposedPrefix())

	assert.Equal(t, Log{Level: "debug", Format: "text"}, cfg.Log)
}

func TestParseUnknownKeys(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "top level",
			src:  minimal + "serve: {}\n",
			want: []string{`serve: unknown key; did you mean "server"?`},
		},
		{
			name: "nested in a section",
			src:  minimal + "server: {cors: {enable: true}, listn: x}\n",
			want: []string{`server.cors.enable: unknown key; did you mean "enabled"?`, `server.listn: unknown key; did you mean "listen"?`},
		},
		{
			name: "in an upstream",
			src: `
upstreams:
  - name: a
    htp: {url: "http://127.0.0.1:1/mcp"}
    timout: 1s
`,
			want: []string{
				// Not also "upstreams[0]: exactly one of http, stdio, sse":
				// a consequence of the typo.
				`upstreams[0].htp: unknown key; did you mean "http"?`,
				`upstreams[0].timout: unknown key; did you mean "timeout"?`,
			},
		},
		{
			name: "in a transport of a later upstream",
			src: minimal + `
  - name: b
    stdio: {command: b, arg: [x]}
`,
			want: []string{`upstreams[1].stdio.arg: unknown key; did you mean "args"?`},
		},
		{
			name: "in a secret, with the header's case",
			src: `
upstreams:
  - name: a
    http:
      url: "http://127.0.0.1:1/mcp"
      headers: {X-Api-Key: {envv: KEY}}
`,
			want: []string{`upstreams[0].http.headers[X-Api-Key].envv: unknown key; did you mean "env"?`},
		},
		{
			name: "with a null or empty value",
			src:  minimal + "serve:\nlogs: {}\nserver: {cors: {}, tls: {}}\n",
			// Unknown keys come after the known ones of their level.
			want: []string{"server.tls: unknown key", `logs: unknown key; did you mean "log"?`, `serve: unknown key; did you mean "server"?`},
		},
		{
			name: "a dotted key is not a path",
			src:  minimal + "server.listen: \"127.0.0.1:1\"\n",
			want: []string{"server.listen: unknown key"},
		},
		{
			name: "resolved is not a key",
			src:  minimal + "server: {session_key: {resolved: x}}\n",
			want: []string{"server.session_key.resolved: unknown key"},
		},
		{
			name: "keys are case-sensitive",
			src:  "Upstreams:\n  - Name: a\n    HTTP: {URL: \"http://127.0.0.1:1/mcp\"}\n",
			want: []string{"upstreams: at least one upstream is required", `Upstreams: unknown key; did you mean "upstreams"?`},
		},
		{
			name: "in a list entry, as written",
			src:  "upstreams:\n  - name: a\n    HTTP: {URL: \"http://127.0.0.1:1/mcp\"}\n",
			want: []string{`upstreams[0].HTTP: unknown key; did you mean "http"?`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, problems(t, tt.src))
		})
	}
}

func TestParseTypeErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "duration with a unit",
			src:  minimal + "server: {shutdown_timeout: 45s}\n",
		},
		{
			name: "duration as a bare number",
			src:  minimal + "server: {shutdown_timeout: 30}\n",
			want: []string{`server.shutdown_timeout: must be a duration with a unit, such as "30s"`},
		},
		{
			name: "duration unparsable",
			src:  minimal + "catalog: {list_changed_debounce: soon}\n",
			want: []string{`catalog.list_changed_debounce: must be a duration such as "30s" or "250ms"`},
		},
		{
			name: "integer",
			src:  minimal + "server: {max_body_bytes: big}\n",
			want: []string{"server.max_body_bytes: must be an integer"},
		},
		{
			name: "boolean",
			src:  minimal + "server: {cors: {enabled: maybe}}\n",
			want: []string{"server.cors.enabled: must be true or false"},
		},
		{
			name: "list",
			src:  minimal + "server: {allowed_origins: {a: b}}\n",
			want: []string{"server.allowed_origins: must be a list, not a mapping"}, // Weak decoding would wrap a mapping in a list.
		},
		{
			name: "mapping",
			src:  minimal + "server: 5\n",
			want: []string{"server: must be a mapping"},
		},
		{
			name: "secret as a plain string",
			src: `
upstreams:
  - name: a
    http: {url: "http://127.0.0.1:1/mcp", headers: {X-Key: hunter2-plain}}
`,
			want: []string{
				"upstreams[0].http.headers[X-Key]: must be a mapping with one of env, file, value, such as {env: API_KEY}",
			},
		},
		{
			name: "list entry that is not a mapping, without its consequences",
			src:  minimal + "  - 5\n",
			want: []string{"upstreams[1]: must be a mapping"},
		},
		{
			name: "a list of mappings is not a mapping",
			src:  minimal + "server: {cors: [{enabled: true}]}\n",
			want: []string{"server.cors: must be a mapping"},
		},
		{
			name: "duration in a list entry",
			src: minimal + `
  - name: b
    stdio: {command: b}
    timeout: 5
`,
			want: []string{`upstreams[1].timeout: must be a duration with a unit, such as "30s"`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := problems(t, tt.src)
			assert.Equal(t, tt.want, got)
			assert.NotContains(t, strings.Join(got, "\n"), "hunter2")
		})
	}
}

func TestParseYAMLErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "syntax",
			src:  "server:\n  listen: [\n",
			want: []string{"parsing YAML: yaml: line 2: did not find expected node content"},
		},
		{
			name: "not a mapping",
			src:  "- a\n- b\n",
			want: []string{"parsing YAML: the document must be a mapping of keys to values"},
		},
		{
			name: "duplicate key",
			src:  "log: {}\nlog: {}\nserver: {}\nserver: {}\n",
			want: []string{
				`parsing YAML: line 2: mapping key "log" already defined at line 1`,
				`parsing YAML: line 4: mapping key "server" already defined at line 3`,
			},
		},
		{
			name: "empty document",
			src:  "# nothing\n",
			want: []string{"upstreams: at least one upstream is required"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, problems(t, tt.src))
		})
	}
}

func TestEnvKeys(t *testing.T) {
	t.Parallel()

	keys := EnvKeys()
	for _, k := range []string{
		"server.listen", "server.mcp_path", "server.public_url", "server.max_body_bytes",
		"server.session_idle_ttl", "server.session_key.env", "server.session_key.file",
		"server.session_key.value", "server.cors.enabled", "server.cors.max_age",
		"server.shutdown_timeout", "server.read_header_timeout", "server.shutdown_delay", "server.read_body_timeout",
		"server.idle_timeout", "server.max_header_bytes", "server.max_header_count", "server.max_unauthenticated",
		"catalog.separator", "catalog.name_pattern", "catalog.page_size", "catalog.list_changed_debounce",
		"log.level", "log.format",
	} {
		assert.Contains(t, keys, k)
	}
	for _, k := range []string{"server.allowed_origins", "server.cors.allowed_origins", "server.session_key.resolved", "upstreams"} {
		assert.NotContains(t, keys, k)
	}
}

// TestEnvOverrideEveryKey sets MCPGW_* for every key of EnvKeys, with a file
// that mentions none of them, and checks each value lands in its field:
// AutomaticEnv alone would miss keys absent from the file.
func TestEnvOverrideEveryKey(t *testing.T) {
	for _, key := range EnvKeys() {
		t.Run(key, func(t *testing.T) {
			var val string
			switch f := fieldAt(t, reflect.ValueOf(&Config{}).Elem(), key); {
			case f.Type() == reflect.TypeFor[time.Duration]():
				val = "7s"
			case f.Kind() == reflect.String:
				val = "zz-override"
			case f.Kind() == reflect.Bool:
				val = "true"
			default:
				val = "7"
			}
			t.Setenv("MCPGW_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_")), val)

			doc := map[string]any{}
			overrideFromEnv(doc)
			cfg, errs := decode(doc)
			require.Empty(t, errs)
			assert.Equal(t, val, valueString(fieldAt(t, reflect.ValueOf(cfg).Elem(), key)))
		})
	}
}

// fieldAt returns the field of v at a dotted key.
func fieldAt(t *testing.T, v reflect.Value, key string) reflect.Value {
	t.Helper()
next:
	for part := range strings.SplitSeq(key, ".") {
		for i := range v.NumField() {
			if tag, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("mapstructure"), ","); tag == part {
				v = v.Field(i)
				continue next
			}
		}
		require.Failf(t, "no field", "%s in %s", part, key)
	}
	return v
}

func valueString(v reflect.Value) string {
	switch {
	case v.Type() == reflect.TypeFor[time.Duration]():
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.String:
		return v.String() // Not fmt: a Secret would print as [REDACTED].
	case v.Kind() == reflect.Bool:
		return strconv.FormatBool(v.Bool())
	default:
		return strconv.FormatInt(v.Int(), 10)
	}
}

func TestEnvOverride(t *testing.T) {
	tests := []struct {
		name  string
		env   map[string]string
		src   string
		check func(t *testing.T, cfg *Config)
		want  []string
	}{
		{
			name: "overrides keys the file does not mention",
			env: map[string]string{
				"MCPGW_SERVER_LISTEN":       "127.0.0.3:8080",
				"MCPGW_SERVER_PUBLIC_URL":   "https://mcp.example.com",
				"MCPGW_LOG_LEVEL":           "debug",
				"MCPGW_CATALOG_PAGE_SIZE":   "25",
				"MCPGW_SERVER_CORS_MAX_AGE": "1m",
			},
			src: minimal,
			check: func(t *testing.T, cfg *Config) {
				t.Helper()
				assert.Equal(t, "127.0.0.3:8080", cfg.Server.Listen)
				assert.Equal(t, "https://mcp.example.com", cfg.Server.PublicURL)
				assert.Equal(t, "debug", cfg.Log.Level)
				assert.Equal(t, 25, cfg.Catalog.PageSize)
				assert.Equal(t, time.Minute, cfg.Server.CORS.MaxAge)
			},
		},
		{
			name: "overrides keys the file sets",
			env:  map[string]string{"MCPGW_SERVER_LISTEN": "127.0.0.1:1234", "MCPGW_LOG_FORMAT": "text"},
			src:  minimal + "server: {listen: \"127.0.0.1:9999\", mcp_path: /x}\nlog: {format: json}\n",
			check: func(t *testing.T, cfg *Config) {
				t.Helper()
				assert.Equal(t, "127.0.0.1:1234", cfg.Server.Listen)
				assert.Equal(t, "/x", cfg.Server.MCPPath, "keys without a variable keep the file's value")
				assert.Equal(t, "text", cfg.Log.Format)
			},
		},
		{
			name: "an empty variable is ignored",
			env:  map[string]string{"MCPGW_SERVER_LISTEN": ""},
			src:  minimal + "server: {listen: \"127.0.0.1:9999\"}\n",
			check: func(t *testing.T, cfg *Config) {
				t.Helper()
				assert.Equal(t, "127.0.0.1:9999", cfg.Server.Listen)
			},
		},
		{
			name: "a section set to null in the file",
			env:  map[string]string{"MCPGW_LOG_LEVEL": "warn"},
			src:  minimal + "log:\n",
			check: func(t *testing.T, cfg *Config) {
				t.Helper()
				assert.Equal(t, "warn", cfg.Log.Level)
			},
		},
		{
			name: "a section that is not a mapping is reported, not overridden",
			env:  map[string]string{"MCPGW_LOG_LEVEL": "warn"},
			src:  minimal + "log: 5\n",
			want: []string{"log: must be a mapping"},
		},
		{
			name: "bad values are reported with the key's path",
			env:  map[string]string{"MCPGW_LOG_LEVEL": "loud", "MCPGW_CATALOG_PAGE_SIZE": "many", "MCPGW_SERVER_SESSION_IDLE_TTL": "forever"},
			src:  minimal,
			want: []string{
				`server.session_idle_ttl: must be a duration such as "30s" or "250ms"`,
				"catalog.page_size: must be an integer",
				`log.level: "loud" must be one of debug, info, warn, error`,
			},
		},
		{
			name: "upstreams and lists are not overridden",
			env: map[string]string{
				"MCPGW_UPSTREAMS":                   "zzz",
				"MCPGW_UPSTREAMS_0_NAME":            "zzz",
				"MCPGW_SERVER_ALLOWED_ORIGINS":      "https://a.example.com,https://b.example.com",
				"MCPGW_SERVER_CORS_ALLOWED_ORIGINS": "zzz",
			},
			src: minimal + "server: {allowed_origins: [\"*\"], cors: {allowed_origins: [\"*\"]}}\n",
			check: func(t *testing.T, cfg *Config) {
				t.Helper()
				assert.Equal(t, "a", cfg.Upstreams[0].Name)
				assert.Equal(t, []string{"*"}, cfg.Server.AllowedOrigins)
				assert.Equal(t, []string{"*"}, cfg.Server.CORS.AllowedOrigins)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := Parse([]byte(tt.src))
			if tt.want != nil {
				require.Error(t, err)
				assert.Equal(t, tt.want, Problems(err))
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("MCPGW_TEST_HOST", "example.com")
	t.Setenv("MCPGW_TEST_EMPTY", "")

	tests := []struct {
		name string
		in   string
		want string
		errs []string
	}{
		{name: "none", in: "plain", want: "plain"},
		{name: "whole", in: "${MCPGW_TEST_HOST}", want: "example.com"},
		{name: "inside", in: "https://${MCPGW_TEST_HOST}:8443/mcp", want: "https://example.com:8443/mcp"},
		{name: "twice", in: "${MCPGW_TEST_HOST}/${MCPGW_TEST_HOST}", want: "example.com/example.com"},
		{name: "set but empty", in: "a${MCPGW_TEST_EMPTY}b", want: "ab"},
		{name: "bare dollar untouched", in: "^[a-z]+$ and $HOME and $", want: "^[a-z]+$ and $HOME and $"},
		{name: "escaped", in: "$${MCPGW_TEST_HOST}", want: "${MCPGW_TEST_HOST}"},
		{
			name: "unset",
			in:   "x${MCPGW_TEST_UNSET_VARIABLE}y",
			want: "xy",
			errs: []string{"${MCPGW_TEST_UNSET_VARIABLE}: environment variable MCPGW_TEST_UNSET_VARIABLE is not set"},
		},
		{name: "bad name", in: "${1X}", errs: []string{"${1X}: not a valid environment variable name"}},
		{name: "empty name", in: "${}", errs: []string{"${}: not a valid environment variable name"}},
		{name: "unterminated", in: "a${B", want: "a", errs: []string{"unterminated ${ (write $${ for a literal ${)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := expandEnv(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.errs, errs)
		})
	}
}

func TestParseExpandsEnv(t *testing.T) {
	t.Setenv("MCPGW_TEST_URL", "http://127.0.0.1:4567/mcp")
	t.Setenv("MCPGW_TEST_BIN", "/bin/upstream")
	t.Setenv("MCPGW_TEST_INJECT", "x\nlog: {level: nope}")

	cfg, err := Parse([]byte(`
# ${MCPGW_TEST_UNSET_IN_COMMENT} in a comment is not expanded.
catalog:
  name_pattern: '^[a-z_]+$'
upstreams:
  - name: a
    http: {url: "${MCPGW_TEST_URL}"}
  - name: b
    stdio:
      command: ${MCPGW_TEST_BIN}
      args: ["-url", "${MCPGW_TEST_URL}", "$${LITERAL}"]
      env:
        INJECTED: {value: "${MCPGW_TEST_INJECT}"}
`))
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:4567/mcp", cfg.Upstreams[0].HTTP.URL)
	assert.Equal(t, "/bin/upstream", cfg.Upstreams[1].Stdio.Command)
	assert.Equal(t, []string{"-url", "http://127.0.0.1:4567/mcp", "${LITERAL}"}, cfg.Upstreams[1].Stdio.Args)
	assert.Equal(t, "^[a-z_]+$", cfg.Catalog.NamePattern)
	assert.Equal(t, "info", cfg.Log.Level, "an expanded value cannot inject YAML")
	assert.Equal(t, "x\nlog: {level: nope}", cfg.Upstreams[1].Stdio.Env["INJECTED"].Resolved.Reveal())
}

// TestParseExpandUnsetInOnePass: unset variables are reported with every
// other problem (timeout: 0 here), and the checks of the values that hold
// them are skipped rather than repeated.
func TestParseExpandUnsetInOnePass(t *testing.T) {
	got := problems(t, `
upstreams:
  - name: a
    http: {url: "${MCPGW_TEST_UNSET_A}", headers: {X-Key: {value: "${MCPGW_TEST_UNSET_B}"}}}
  - name: b
    timeout: 0
    stdio: {command: x, args: [ok, "${MCPGW_TEST_UNSET_A}"]}
`)
	assert.Equal(t, []string{
		"upstreams[0].http.url: ${MCPGW_TEST_UNSET_A}: environment variable MCPGW_TEST_UNSET_A is not set",
		"upstreams[0].http.headers[X-Key].value: ${MCPGW_TEST_UNSET_B}: environment variable MCPGW_TEST_UNSET_B is not set",
		"upstreams[1].stdio.args[1]: ${MCPGW_TEST_UNSET_A}: environment variable MCPGW_TEST_UNSET_A is not set",
		`upstreams[1].timeout: must be a duration with a unit, such as "30s"`,
	}, sortedLike(got, "upstreams[0].http.url", "upstreams[0].http.headers", "upstreams[1]"))
}

// sortedLike orders lines by which of the prefixes they start with; map
// iteration makes the walk order of sibling keys random.
func sortedLike(lines []string, prefixes ...string) []string {
	var out []string
	for _, p := range prefixes {
		for _, l := range lines {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	return out
}

func TestParseSecrets(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("file-secret-value\r\n\n"), 0o600))
	emptyFile := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(emptyFile, []byte("\n"), 0o600))
	t.Setenv("MCPGW_TEST_SECRET", "env-secret-value")
	t.Setenv("MCPGW_TEST_SECRET_EMPTY", "")
	key := strings.Repeat("0f", 32)
	t.Setenv("MCPGW_TEST_SESSION_KEY", key)

	cfg, err := Parse([]byte(`
server:
  session_key: {env: MCPGW_TEST_SESSION_KEY}
upstreams:
  - name: a
    http:
      url: "http://127.0.0.1:1/mcp"
      headers:
        Authorization: {env: MCPGW_TEST_SECRET}
        X-File: {file: ` + tokenFile + `}
        X-Inline: {value: inline-secret-value}
  - name: b
    stdio:
      command: b
      env: {API_KEY: {env: MCPGW_TEST_SECRET}}
  - name: c
    sse:
      url: "http://127.0.0.1:2/sse"
      headers: {X-File: {file: ` + tokenFile + `}}
`))
	require.NoError(t, err)
	assert.Equal(t, key, cfg.Server.SessionKey.Resolved.Reveal())
	h := cfg.Upstreams[0].HTTP.Headers
	assert.Equal(t, "env-secret-value", h["Authorization"].Resolved.Reveal())
	assert.Equal(t, "file-secret-value", h["X-File"].Resolved.Reveal(), "trailing newlines are trimmed")
	assert.Equal(t, "inline-secret-value", h["X-Inline"].Resolved.Reveal())
	assert.Equal(t, "env-secret-value", cfg.Upstreams[1].Stdio.Env["API_KEY"].Resolved.Reveal())
	assert.Equal(t, "file-secret-value", cfg.Upstreams[2].SSE.Headers["X-File"].Resolved.Reveal())

	got := problems(t, `
upstreams:
  - name: a
    http:
      url: "http://127.0.0.1:1/mcp"
      headers:
        A: {env: MCPGW_TEST_SECRET_UNSET}
        B: {env: MCPGW_TEST_SECRET_EMPTY}
        C: {file: `+filepath.Join(dir, "missing")+`}
        D: {file: `+emptyFile+`}
        E: {env: MCPGW_TEST_SECRET, value: also-a-secret-value}
        F: {file: /dev/zero}
`)
	assert.Equal(t, []string{
		"upstreams[0].http.headers[A]: environment variable MCPGW_TEST_SECRET_UNSET is not set",
		"upstreams[0].http.headers[B]: environment variable MCPGW_TEST_SECRET_EMPTY is empty",
		"upstreams[0].http.headers[C]: reading secret file: open " + filepath.Join(dir, "missing") + ": no such file or directory",
		"upstreams[0].http.headers[D]: secret file " + emptyFile + " is empty",
		"upstreams[0].http.headers[E]: exactly one of env, file, value must be set",
		"upstreams[0].http.headers[F]: reading secret file: /dev/zero is larger than 1048576 bytes",
	}, got)
	all := strings.Join(got, "\n")
	assert.NotContains(t, all, "env-secret-value")
	assert.NotContains(t, all, "also-a-secret-value")
}

func TestParseRedactsEchoedSecrets(t *testing.T) {
	// A secret expanded into a field that Validate quotes would be echoed;
	// the last line of defense scrubs it.
	t.Setenv("MCPGW_TEST_SECRET", "sk-live-0123456789")

	got := problems(t, `
server: {listen: "${MCPGW_TEST_SECRET}"}
upstreams:
  - name: a
    http:
      url: "http://127.0.0.1:1/mcp"
      headers: {Authorization: {env: MCPGW_TEST_SECRET}}
`)
	assert.Equal(t, []string{`server.listen: "[REDACTED]" is not host:port`}, got)
}

func TestParseKeepsKeyCase(t *testing.T) {
	t.Parallel()

	cfg, err := Parse([]byte(`
upstreams:
  - name: a
    http:
      url: "http://127.0.0.1:1/mcp"
      headers: {X-Api-Key: {value: k1}, x-lower: {value: k2}}
  - name: b
    stdio:
      command: b
      env: {API_KEY: {value: k3}, Mixed_Case: {value: k4}}
  - name: c
    sse:
      url: "http://127.0.0.1:1/sse"
      headers: {AUTHORIZATION: {value: k5}}
`))
	require.NoError(t, err)
	assert.Equal(t, []string{"X-Api-Key", "x-lower"}, sortedKeys(cfg.Upstreams[0].HTTP.Headers))
	assert.Equal(t, []string{"API_KEY", "Mixed_Case"}, sortedKeys(cfg.Upstreams[1].Stdio.Env))
	assert.Equal(t, []string{"AUTHORIZATION"}, sortedKeys(cfg.Upstreams[2].SSE.Headers))
	assert.Equal(t, "k3", cfg.Upstreams[1].Stdio.Env["API_KEY"].Resolved.Reveal())

	got := problems(t, `
upstreams:
  - name: b
    stdio:
      command: b
      env: {PATH: {value: /bin}, Path: {value: /usr/bin}}
`)
	assert.Equal(t, []string{`upstreams[0].stdio.env: keys "PATH" and "Path" differ only in case`}, got)
}

func TestLoad(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	file := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(file, []byte(minimal), 0o600))
	cfg, err := Load(file)
	require.NoError(t, err)
	assert.Equal(t, "a", cfg.Upstreams[0].Name)

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Equal(t, []string{"reading config: open " + filepath.Join(dir, "missing.yaml") + ": no such file or directory"}, Problems(err))
}

func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("example.yaml")
	require.NoError(t, err)

	// The example names a mounted secret; point it at a real file.
	const mounted = "/run/secrets/orders_api_key"
	require.Contains(t, string(data), mounted)
	secretFile := filepath.Join(t.TempDir(), "orders_api_key")
	require.NoError(t, os.WriteFile(secretFile, []byte("orders-key\n"), 0o600))
	data = []byte(strings.ReplaceAll(string(data), mounted, secretFile))

	t.Setenv("GATEWAY_SESSION_KEY", strings.Repeat("ab", 32))
	t.Setenv("CUSTOMERS_TOKEN", "Bearer customers-token")
	t.Setenv("ORDERS_URL", "https://orders.internal.example.com/mcp")
	t.Setenv("PAYMENTS_API_KEY", "payments-key")
	t.Setenv("CRM_TOKEN", "Bearer crm-token")
	t.Setenv("OTEL_API_KEY", "otel-key")

	cfg, err := Parse(data)
	require.NoError(t, err, "%v", Problems(err))

	require.Len(t, cfg.Upstreams, 4)
	transports := make([]string, 0, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		transports = append(transports, u.Transport())
	}
	assert.Equal(t, []string{"http", "http", "stdio", "sse"}, transports)
	assert.Equal(t, "shop", cfg.Upstreams[1].ExposedPrefix())
	assert.Empty(t, cfg.Upstreams[2].ExposedPrefix())
	assert.NotNil(t, cfg.Upstreams[2].Prefix)
	assert.Equal(t, "https://orders.internal.example.com/mcp", cfg.Upstreams[1].HTTP.URL)
	assert.Equal(t, TracingOTLPHTTP, cfg.Telemetry.Tracing.Exporter)
	assert.InDelta(t, 0.1, cfg.Telemetry.Tracing.Ratio(), 1e-9)
	assert.Equal(t, "otel-key", cfg.Telemetry.Tracing.Headers["X-Api-Key"].Resolved.Reveal(), "header names keep their case")
	assert.Equal(t, "orders-key", cfg.Upstreams[1].HTTP.Headers["X-Api-Key"].Resolved.Reveal())
	assert.Equal(t, "payments-key", cfg.Upstreams[2].Stdio.Env["PAYMENTS_API_KEY"].Resolved.Reveal())
	assert.NotEmpty(t, cfg.Upstreams[0].Tools.Include)
	assert.NotEmpty(t, cfg.Upstreams[0].Tools.Exclude)

	// The example shows every key, so it sets every default explicitly;
	// keep them in step with defaults.go.
	defaults := &Config{}
	defaults.SetDefaults()
	assert.Equal(t, defaults.Catalog, cfg.Catalog)
	assert.Equal(t, defaults.Log, cfg.Log)
	assert.Equal(t, defaults.Server.Listen, cfg.Server.Listen)
	assert.Equal(t, defaults.Server.MaxBodyBytes, cfg.Server.MaxBodyBytes)
	assert.Equal(t, defaults.Server.SessionIdleTTL, cfg.Server.SessionIdleTTL)
	assert.Equal(t, DefaultMaxResponseBytes, cfg.Upstreams[0].MaxResponseBytes)
}

func TestDemoFile(t *testing.T) {
	data, err := os.ReadFile("demo.yaml")
	require.NoError(t, err)

	t.Setenv("CUSTOMERS_URL", "http://127.0.0.1:40001/mcp")
	t.Setenv("ORDERS_URL", "http://127.0.0.1:40002/mcp")
	t.Setenv("DEMO_UPSTREAM_BIN", "/tmp/demo-upstream")

	cfg, err := Parse(data)
	require.NoError(t, err, "%v", Problems(err))
	require.Len(t, cfg.Upstreams, 3)
	assert.Equal(t, "customers", cfg.Upstreams[0].Name)
	assert.Equal(t, "http://127.0.0.1:40001/mcp", cfg.Upstreams[0].HTTP.URL)
	assert.Equal(t, "orders", cfg.Upstreams[1].Name)
	assert.Equal(t, "http://127.0.0.1:40002/mcp", cfg.Upstreams[1].HTTP.URL)
	assert.Equal(t, "payments", cfg.Upstreams[2].Name)
	assert.Equal(t, &StdioTransport{Command: "/tmp/demo-upstream", Args: []string{"-server", "payments", "-stdio"}}, cfg.Upstreams[2].Stdio)
}

func TestDemoFileNeedsItsVariables(t *testing.T) {
	for _, name := range []string{"CUSTOMERS_URL", "ORDERS_URL", "DEMO_UPSTREAM_BIN"} {
		t.Setenv(name, "")
		require.NoError(t, os.Unsetenv(name))
	}
	data, err := os.ReadFile("demo.yaml")
	require.NoError(t, err)

	_, err = Parse(data)
	require.Error(t, err)
	got := Problems(err)
	assert.ElementsMatch(t, []string{
		"upstreams[0].http.url: ${CUSTOMERS_URL}: environment variable CUSTOMERS_URL is not set",
		"upstreams[1].http.url: ${ORDERS_URL}: environment variable ORDERS_URL is not set",
		"upstreams[2].stdio.command: ${DEMO_UPSTREAM_BIN}: environment variable DEMO_UPSTREAM_BIN is not set",
	}, got)
}
