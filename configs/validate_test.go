package configs

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// validConfig is a valid configuration with all three transports, after
// SetDefaults.
func validConfig() *Config {
	c := &Config{Upstreams: []Upstream{
		{Name: "customers", HTTP: &HTTPTransport{
			URL:     "http://127.0.0.1:8081/mcp",
			Headers: map[string]SecretRef{"X-Api-Key": {Value: "k"}},
		}},
		{Name: "orders", SSE: &SSETransport{URL: "https://orders.example.com/sse"}},
		{Name: "payments", Stdio: &StdioTransport{
			Command: "payments",
			Env:     map[string]SecretRef{"API_KEY": {Env: "PAYMENTS_KEY"}},
		}},
	}}
	c.SetDefaults()
	return c
}

func TestValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{name: "valid", mutate: func(*Config) {}},

		// server
		{
			name:   "listen without port",
			mutate: func(c *Config) { c.Server.Listen = "localhost" },
			want:   []string{`server.listen: "localhost" is not host:port`},
		},
		{
			name:   "listen port out of range",
			mutate: func(c *Config) { c.Server.Listen = "127.0.0.1:70000" },
			want:   []string{`server.listen: "127.0.0.1:70000": the port must be a number from 0 to 65535`},
		},
		{
			// net.Listen would look a name up in /etc/services.
			name:   "listen port by name",
			mutate: func(c *Config) { c.Server.Listen = "127.0.0.1:http" },
			want:   []string{`server.listen: "127.0.0.1:http": the port must be a number from 0 to 65535`},
		},
		{
			name:   "listen host with a space",
			mutate: func(c *Config) { c.Server.Listen = " 127.0.0.1:9190" },
			want: []string{
				`server.listen: " 127.0.0.1:9190": the host must be an IP address or a host name`,
				`server.listen: " 127.0.0.1:9190": without auth, mcpgw binds only loopback addresses (127.0.0.1, ::1, localhost); configure auth to listen on other interfaces`,
			},
		},
		{
			name: "metrics on the main listener's port",
			mutate: func(c *Config) {
				c.Server.Listen = "127.0.0.1:9190"
				c.Telemetry.Metrics.Listen = "localhost:9190"
			},
			want: []string{`telemetry.metrics.listen: "localhost:9190" binds the port of server.listen ("127.0.0.1:9190"); leave it empty to serve /metrics there`},
		},
		{
			name: "metrics on another port, and both on port 0",
			mutate: func(c *Config) {
				c.Server.Listen = "127.0.0.1:0"
				c.Telemetry.Metrics.Listen = "127.0.0.1:0"
			},
		},
		{
			name:   "listen on all interfaces without auth",
			mutate: func(c *Config) { c.Server.Listen = ":9190" },
			want:   []string{`server.listen: ":9190": without auth, mcpgw binds only loopback addresses (127.0.0.1, ::1, localhost); configure auth to listen on other interfaces`},
		},
		{
			name:   "loopback listen without auth",
			mutate: func(c *Config) { c.Server.Listen = "[::1]:9190" },
		},
		{
			name:   "mcp_path without slash",
			mutate: func(c *Config) { c.Server.MCPPath = "mcp" },
			want:   []string{`server.mcp_path: "mcp" must start with '/'`},
		},
		{
			name:   "max_body_bytes zero",
			mutate: func(c *Config) { c.Server.MaxBodyBytes = 0 },
			want:   []string{`server.max_body_bytes: must be positive`},
		},
		{
			name: "durations not positive",
			mutate: func(c *Config) {
				c.Server.SessionIdleTTL = 0
				c.Server.CORS.MaxAge = -time.Second
				c.Server.ShutdownTimeout = 0
				c.Server.ReadHeaderTimeout = 0
				c.Server.ReadBodyTimeout = 0
				c.Server.IdleTimeout = -time.Second
				c.Server.ShutdownDelay = -time.Second
				c.Server.MRTRStateTTL = 0
				c.Server.MRTRHoldTimeout = -time.Second
				c.Catalog.ListChangedDebounce = 0
				c.Upstreams[1].Timeout = 0
			},
			want: []string{
				`server.session_idle_ttl: must be a positive duration`,
				`server.cors.max_age: must be a positive duration`,
				`server.shutdown_delay: must not be negative`,
				`server.shutdown_timeout: must be a positive duration`,
				`server.read_header_timeout: must be a positive duration`,
				`server.read_body_timeout: must be a positive duration`,
				`server.idle_timeout: must be a positive duration`,
				`server.mrtr_state_ttl: must be a positive duration`,
				`server.mrtr_hold_timeout: must be a positive duration`,
				`catalog.list_changed_debounce: must be a positive duration`,
				`upstreams[1].timeout: must be a positive duration`,
			},
		},
		{
			name: "header limits out of range",
			mutate: func(c *Config) {
				c.Server.MaxHeaderBytes = 512
				c.Server.MaxHeaderCount = 20000
				c.Server.MaxUnauthenticated = -1
			},
			want: []string{
				`server.max_header_bytes: must be between 1024 and 1048576`,
				`server.max_header_count: must be between 16 and 10000`,
				`server.max_unauthenticated: must be positive`,
			},
		},
		{
			name:   "public_url relative",
			mutate: func(c *Config) { c.Server.PublicURL = "/mcp" },
			want:   []string{`server.public_url: must be an absolute http or https URL`},
		},
		{
			name:   "public_url scheme",
			mutate: func(c *Config) { c.Server.PublicURL = "ftp://mcp.example.com" },
			want:   []string{`server.public_url: scheme must be http or https`},
		},
		{
			name:   "public_url without host",
			mutate: func(c *Config) { c.Server.PublicURL = "https:///mcp" },
			want:   []string{`server.public_url: must have a host`},
		},
		{
			name:   "public_url with credentials is refused and not echoed",
			mutate: func(c *Config) { c.Server.PublicURL = "https://user:hunter2@mcp.example.com" },
			want:   []string{`server.public_url: must not embed credentials; send them as secret headers`},
		},
		{
			name:   "public_url valid",
			mutate: func(c *Config) { c.Server.PublicURL = "https://mcp.example.com" },
		},
		{
			name:   "session_key with two sources",
			mutate: func(c *Config) { c.Server.SessionKey = SecretRef{Env: "A", File: "/b"} },
			want:   []string{`server.session_key: exactly one of env, file, value must be set`},
		},
		{
			name:   "session_key resolved to the wrong length",
			mutate: func(c *Config) { c.Server.SessionKey = SecretRef{Env: "A", Resolved: "abcdef"} },
			want:   []string{`server.session_key: must be 32 bytes, hex or base64 encoded`},
		},
		{
			name: "session_key hex",
			mutate: func(c *Config) {
				c.Server.SessionKey = SecretRef{Env: "A", Resolved: Secret(strings.Repeat("ab", 32))}
			},
		},
		{
			name: "session_key base64",
			mutate: func(c *Config) {
				c.Server.SessionKey = SecretRef{Env: "A", Resolved: "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
			},
		},
		{
			name: "origins",
			mutate: func(c *Config) {
				c.Server.AllowedOrigins = []string{"*", "https://app.example.com", "http://localhost:3000", "https://app.example.com/", "app.example.com"}
				c.Server.CORS.AllowedOrigins = []string{"https://a.example.com?x=1"}
			},
			want: []string{
				`server.allowed_origins[3]: must be "*" or an origin such as https://app.example.com (scheme://host[:port], no path)`,
				`server.allowed_origins[4]: must be "*" or an origin such as https://app.example.com (scheme://host[:port], no path)`,
				`server.cors.allowed_origins[0]: must be "*" or an origin such as https://app.example.com (scheme://host[:port], no path)`,
			},
		},

		// catalog
		{
			name:   "separator empty",
			mutate: func(c *Config) { c.Catalog.Separator = "" },
			want:   []string{`catalog.separator: must not be empty`},
		},
		{
			name:   "name_pattern does not compile",
			mutate: func(c *Config) { c.Catalog.NamePattern = "(" },
			want:   []string{"catalog.name_pattern: does not compile: error parsing regexp: missing closing ): `(`"},
		},
		{
			name:   "page_size zero",
			mutate: func(c *Config) { c.Catalog.PageSize = 0 },
			want:   []string{`catalog.page_size: must be at least 1`},
		},

		// upstreams
		{
			name:   "no upstreams",
			mutate: func(c *Config) { c.Upstreams = nil },
			want:   []string{`upstreams: at least one upstream is required`},
		},
		{
			name:   "name missing",
			mutate: func(c *Config) { c.Upstreams[0].Name = "" },
			want:   []string{`upstreams[0].name: required`},
		},
		{
			name:   "name syntax",
			mutate: func(c *Config) { c.Upstreams[0].Name = "Customers" },
			want:   []string{`upstreams[0].name: "Customers" must be lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		},
		{
			name:   "name starting with a dash",
			mutate: func(c *Config) { c.Upstreams[0].Name = "-x" },
			want:   []string{`upstreams[0].name: "-x" must be lowercase letters, digits, '-' and '_', starting with a letter or digit`},
		},
		{
			name: "name duplicate names both",
			mutate: func(c *Config) {
				c.Upstreams = append(c.Upstreams, Upstream{Name: "orders", Stdio: &StdioTransport{Command: "x"}, Timeout: time.Second, MaxResponseBytes: 1})
			},
			want: []string{`upstreams[3].name: "orders" is already used by upstreams[1]`},
		},
		{
			name:   "no transport",
			mutate: func(c *Config) { c.Upstreams[2].Stdio = nil },
			want:   []string{`upstreams[2]: exactly one of http, stdio, sse must be set`},
		},
		{
			name:   "two transports",
			mutate: func(c *Config) { c.Upstreams[2].SSE = &SSETransport{URL: "http://x"} },
			want:   []string{`upstreams[2]: exactly one of http, stdio, sse must be set`},
		},
		{
			name:   "http url scheme",
			mutate: func(c *Config) { c.Upstreams[0].HTTP.URL = "ws://127.0.0.1/mcp" },
			want:   []string{`upstreams[0].http.url: scheme must be http or https`},
		},
		{
			name:   "http url missing",
			mutate: func(c *Config) { c.Upstreams[0].HTTP.URL = "" },
			want:   []string{`upstreams[0].http.url: required`},
		},
		{
			name:   "http url relative",
			mutate: func(c *Config) { c.Upstreams[0].HTTP.URL = "127.0.0.1:8080/mcp" },
			want:   []string{`upstreams[0].http.url: must be an absolute http or https URL`},
		},
		{
			name:   "sse url without host",
			mutate: func(c *Config) { c.Upstreams[1].SSE.URL = "http://:8080/sse" },
			want:   []string{`upstreams[1].sse.url: must have a host`},
		},
		{
			name:   "stdio command missing",
			mutate: func(c *Config) { c.Upstreams[2].Stdio.Command = " " },
			want:   []string{`upstreams[2].stdio.command: required`},
		},
		{
			name:   "http max_idle_conns",
			mutate: func(c *Config) { c.Upstreams[0].HTTP.MaxIdleConns = -1 },
			want:   []string{`upstreams[0].http.max_idle_conns: must be positive`},
		},
		{
			name: "http sessions",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Sessions = UpstreamSessions{IdleTimeout: -time.Second, MaxPerPrincipal: -1, Max: -2}
			},
			want: []string{
				`upstreams[0].http.sessions.idle_timeout: must be positive`,
				`upstreams[0].http.sessions.max_per_principal: must be positive`,
				`upstreams[0].http.sessions.max: must be positive`,
			},
		},
		{
			name: "http sessions per principal above the pool",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Sessions = UpstreamSessions{IdleTimeout: time.Minute, MaxPerPrincipal: 9, Max: 8}
			},
			want: []string{`upstreams[0].http.sessions.max_per_principal: must not exceed http.sessions.max (8)`},
		},
		{
			name: "secret sources",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Headers["X-None"] = SecretRef{}
				c.Upstreams[0].HTTP.Headers["X-Two"] = SecretRef{Env: "A", Value: "b"}
				c.Upstreams[1].SSE.Headers = map[string]SecretRef{"X-Three": {Env: "A", File: "/b", Value: "c"}}
				c.Upstreams[2].Stdio.Env["B"] = SecretRef{File: "/b", Value: "c"}
			},
			want: []string{
				`upstreams[0].http.headers[X-None]: exactly one of env, file, value must be set`,
				`upstreams[0].http.headers[X-Two]: exactly one of env, file, value must be set`,
				`upstreams[1].sse.headers[X-Three]: exactly one of env, file, value must be set`,
				`upstreams[2].stdio.env[B]: exactly one of env, file, value must be set`,
			},
		},
		{
			name: "header and env names",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Headers["Bad Header"] = SecretRef{Value: "v"}
				c.Upstreams[2].Stdio.Env["A=B"] = SecretRef{Value: "v"}
			},
			want: []string{
				`upstreams[0].http.headers[Bad Header]: "Bad Header" is not a valid header name`,
				`upstreams[2].stdio.env[A=B]: "A=B" is not a valid environment variable name`,
			},
		},
		{
			name: "header values with control characters, never quoted",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Headers["X-Inline"] = SecretRef{Value: "a\r\nX-Injected: 1"}
				c.Upstreams[1].SSE.Headers = map[string]SecretRef{"X-Resolved": {Env: "K", Resolved: "b\x00c"}}
				c.Upstreams[0].HTTP.Headers["X-Tab"] = SecretRef{Value: "a\tb"}
			},
			want: []string{
				`upstreams[0].http.headers[X-Inline]: value contains control characters`,
				`upstreams[1].sse.headers[X-Resolved]: value contains control characters`,
			},
		},
		{
			name: "keys that differ only in case",
			mutate: func(c *Config) {
				c.Upstreams[0].HTTP.Headers["x-api-key"] = SecretRef{Value: "k2"}
				c.Upstreams[2].Stdio.Env["Api_Key"] = SecretRef{Value: "v"}
			},
			want: []string{
				`upstreams[0].http.headers: keys "X-Api-Key" and "x-api-key" differ only in case`,
				`upstreams[2].stdio.env: keys "API_KEY" and "Api_Key" differ only in case`,
			},
		},
		{
			name:   "sse pinned to the stateless era",
			mutate: func(c *Config) { c.Upstreams[1].ProtocolVersion = "2026-07-28" },
			want:   []string{`upstreams[1].protocol_version: the legacy SSE transport cannot speak 2026-07-28`},
		},
		{
			name:   "sse pinned to a session era",
			mutate: func(c *Config) { c.Upstreams[1].ProtocolVersion = "2025-11-25" },
		},
		{
			name:   "max_response_bytes zero",
			mutate: func(c *Config) { c.Upstreams[0].MaxResponseBytes = 0 },
			want:   []string{`upstreams[0].max_response_bytes: must be positive`},
		},
		{
			name:   "protocol_version unknown",
			mutate: func(c *Config) { c.Upstreams[0].ProtocolVersion = "2025-01-01" },
			want:   []string{`upstreams[0].protocol_version: "2025-01-01" is neither auto nor a known MCP version (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28)`},
		},
		{
			name: "protocol_version known",
			mutate: func(c *Config) {
				for i, v := range ProtocolVersions()[:3] {
					c.Upstreams[i].ProtocolVersion = v
				}
			},
		},
		{
			name: "globs",
			mutate: func(c *Config) {
				c.Upstreams[0].Tools = ToolFilter{Include: []string{"get_*", "[a-"}, Exclude: []string{"", "x\\"}}
			},
			want: []string{
				`upstreams[0].tools.include[1]: "[a-" is not a valid glob: syntax error in pattern`,
				`upstreams[0].tools.exclude[0]: must not be empty`,
				`upstreams[0].tools.exclude[1]: "x\\" is not a valid glob: syntax error in pattern`,
			},
		},
		{
			name:   "prefix with a dot",
			mutate: func(c *Config) { c.Upstreams[0].Prefix = new("cu.st") },
			want:   []string{`upstreams[0].prefix: "cu.st" joined with separator "__" and a one-character tool name does not match catalog.name_pattern`},
		},
		{
			name:   "prefix of 61 characters leaves room for one",
			mutate: func(c *Config) { c.Upstreams[0].Prefix = new(strings.Repeat("p", 61)) },
			want:   []string{`upstreams[0].prefix: "` + strings.Repeat("p", 61) + `" (61 characters) joined with separator "__" leaves room for tool names of only 1 characters under catalog.name_pattern (at least 16 needed): tools with longer names would be dropped`},
		},
		{
			name:   "prefix of 46 characters leaves room for 16",
			mutate: func(c *Config) { c.Upstreams[0].Prefix = new(strings.Repeat("p", 46)) },
		},
		{
			name:   "prefix of 62 characters leaves no room",
			mutate: func(c *Config) { c.Upstreams[0].Prefix = new(strings.Repeat("p", 62)) },
			want:   []string{`upstreams[0].prefix: "` + strings.Repeat("p", 62) + `" joined with separator "__" and a one-character tool name does not match catalog.name_pattern`},
		},
		{
			name:   "default prefix from a long name",
			mutate: func(c *Config) { c.Upstreams[0].Name = strings.Repeat("n", 70) },
			want:   []string{`upstreams[0].prefix: "` + strings.Repeat("n", 70) + `" (the upstream name, since prefix is unset) joined with separator "__" and a one-character tool name does not match catalog.name_pattern`},
		},
		{
			name: "prefix checked against a custom pattern and separator",
			mutate: func(c *Config) {
				c.Catalog.NamePattern = `^[a-z]+\.[a-z]+$`
				c.Catalog.Separator = "."
			},
		},
		{
			name:   "prefix not checked when the pattern does not compile",
			mutate: func(c *Config) { c.Catalog.NamePattern = "("; c.Upstreams[0].Prefix = new("a.b") },
			want:   []string{"catalog.name_pattern: does not compile: error parsing regexp: missing closing ): `(`"},
		},
		{
			name:   "prefix collides with a name, both named",
			mutate: func(c *Config) { c.Upstreams[2].Prefix = new("customers") },
			want:   []string{`upstreams[2].prefix: "customers" collides with upstream "customers" (upstreams[0])`},
		},
		{
			name: "explicit prefixes collide",
			mutate: func(c *Config) {
				c.Upstreams[0].Prefix = new("shop")
				c.Upstreams[1].Prefix = new("shop")
			},
			want: []string{`upstreams[1].prefix: "shop" collides with upstream "customers" (upstreams[0])`},
		},
		{
			name: "two bare prefixes",
			mutate: func(c *Config) {
				c.Upstreams[0].Prefix = new("")
				c.Upstreams[1].Prefix = new("")
			},
			want: []string{`upstreams[1].prefix: "" is also the prefix of upstream "customers" (upstreams[0]): both expose bare names, and the first would silently win every name clash; give one of them a prefix`},
		},

		// log
		{
			name:   "log level",
			mutate: func(c *Config) { c.Log.Level = "verbose" },
			want:   []string{`log.level: "verbose" must be one of debug, info, warn, error`},
		},
		{
			name:   "log format",
			mutate: func(c *Config) { c.Log.Format = "xml" },
			want:   []string{`log.format: "xml" must be json or text`},
		},

		// telemetry
		{
			name: "otlp over http with a collector",
			mutate: func(c *Config) {
				c.Telemetry.Tracing = Tracing{
					Exporter: TracingOTLPHTTP, Endpoint: "http://collector:4318", SampleRatio: new(0.25),
					Headers: map[string]SecretRef{"X-Api-Key": {Env: "KEY"}},
				}
				c.Telemetry.Metrics.Listen = "127.0.0.1:9464"
			},
		},
		{
			name:   "unknown exporter",
			mutate: func(c *Config) { c.Telemetry.Tracing.Exporter = "zipkin" },
			want:   []string{`telemetry.tracing.exporter: "zipkin" must be one of none, otlp_grpc, otlp_http`},
		},
		{
			name: "otlp without an endpoint, ratio out of range, bad header, bad metrics listener",
			mutate: func(c *Config) {
				c.Telemetry.Tracing = Tracing{
					Exporter: TracingOTLPGRPC, SampleRatio: new(1.5),
					Headers: map[string]SecretRef{"Bad Header": {Value: "x"}},
				}
				c.Telemetry.Metrics.Listen = "9464"
			},
			want: []string{
				`telemetry.tracing.endpoint: required with exporter otlp_grpc`,
				`telemetry.tracing.sample_ratio: 1.5 must be between 0 and 1`,
				`telemetry.tracing.headers[Bad Header]: "Bad Header" is not a valid header name`,
				`telemetry.metrics.listen: "9464" is not host:port`,
			},
		},
		{
			name: "endpoint scheme",
			mutate: func(c *Config) {
				c.Telemetry.Tracing = Tracing{Exporter: TracingOTLPHTTP, Endpoint: "grpc://collector:4317"}
			},
			want: []string{`telemetry.tracing.endpoint: scheme must be http or https`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if len(tt.want) == 0 {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, Problems(err))
			var fe *FieldError
			assert.ErrorAs(t, err, &fe, "problems are FieldErrors")
		})
	}
}

func TestValidateZeroConfigReportsEverything(t *testing.T) {
	t.Parallel()

	// Without SetDefaults nearly everything is missing; Validate reports it
	// all at once rather than stopping at the first problem.
	err := (&Config{}).Validate()
	require.Error(t, err)
	assert.Equal(t, []string{
		`server.listen: "" is not host:port`,
		`server.mcp_path: "" must start with '/'`,
		`server.max_body_bytes: must be positive`,
		`server.session_idle_ttl: must be a positive duration`,
		`server.session_max_age: must be a positive duration`,
		`server.cors.max_age: must be a positive duration`,
		`server.shutdown_timeout: must be a positive duration`,
		`server.read_header_timeout: must be a positive duration`,
		`server.read_body_timeout: must be a positive duration`,
		`server.idle_timeout: must be a positive duration`,
		`server.max_header_bytes: must be between 1024 and 1048576`,
		`server.max_header_count: must be between 16 and 10000`,
		`server.max_unauthenticated: must be positive`,
		`server.mrtr_state_ttl: must be a positive duration`,
		`server.mrtr_hold_timeout: must be a positive duration`,
		`server.sse.retry: must be a positive duration`,
		`server.sse.replay_ttl: must be a positive duration`,
		`server.sse.replay_session_bytes: must be positive`,
		`catalog.separator: must not be empty`,
		`catalog.page_size: must be at least 1`,
		`catalog.list_changed_debounce: must be a positive duration`,
		`catalog.list_ttl: must be a positive duration`,
		`upstreams: at least one upstream is required`,
		`log.level: "" must be one of debug, info, warn, error`,
		`log.format: "" must be json or text`,
		`telemetry.tracing.exporter: "" must be one of none, otlp_grpc, otlp_http`,
	}, Problems(err))
}

// TestValidateRefusesWhatUpstreamRefused keeps the rules upstream.New
// enforced before configs became their one place: each such upstream is
// refused here, with its path.
func TestValidateRefusesWhatUpstreamRefused(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		u    Upstream
		want string
	}{
		{"no transport", Upstream{Name: "a"}, `upstreams[0]: exactly one of http, stdio, sse must be set`},
		{"two transports", Upstream{Name: "a", HTTP: &HTTPTransport{URL: "http://x"}, SSE: &SSETransport{URL: "http://x"}}, `upstreams[0]: exactly one of http, stdio, sse must be set`},
		{"bad scheme", Upstream{Name: "a", HTTP: &HTTPTransport{URL: "ftp://x"}}, `upstreams[0].http.url: scheme must be http or https`},
		{"no host", Upstream{Name: "a", SSE: &SSETransport{URL: "http:///sse"}}, `upstreams[0].sse.url: must have a host`},
		{"no command", Upstream{Name: "a", Stdio: &StdioTransport{}}, `upstreams[0].stdio.command: required`},
		{"no name", Upstream{Stdio: &StdioTransport{Command: "x"}}, `upstreams[0].name: required`},
		{"bad version", Upstream{Name: "a", HTTP: &HTTPTransport{URL: "http://x"}, ProtocolVersion: "2020-01-01"}, `upstreams[0].protocol_version: "2020-01-01" is neither auto nor a known MCP version (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28)`},
		{"sse in the stateless era", Upstream{Name: "a", SSE: &SSETransport{URL: "http://x"}, ProtocolVersion: "2026-07-28"}, `upstreams[0].protocol_version: the legacy SSE transport cannot speak 2026-07-28`},
		{"header injection", Upstream{Name: "a", HTTP: &HTTPTransport{URL: "http://x", Headers: map[string]SecretRef{"X-K": {Value: "a\r\nb"}}}}, `upstreams[0].http.headers[X-K]: value contains control characters`},
		{"negative timeout", Upstream{Name: "a", Stdio: &StdioTransport{Command: "x"}, Timeout: -time.Second}, `upstreams[0].timeout: must be a positive duration`},
		{"negative max_response_bytes", Upstream{Name: "a", Stdio: &StdioTransport{Command: "x"}, MaxResponseBytes: -1}, `upstreams[0].max_response_bytes: must be positive`},
		{"negative max_idle_conns", Upstream{Name: "a", HTTP: &HTTPTransport{URL: "http://x", MaxIdleConns: -1}}, `upstreams[0].http.max_idle_conns: must be positive`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Config{Upstreams: []Upstream{tt.u}}
			c.SetDefaults()
			err := c.Validate()
			assert.Equal(t, []string{tt.want}, Problems(err))
			assert.NotContains(t, err.Error(), "a\r\nb", "secret values never appear")
		})
	}
}

func TestValidateIsPure(t *testing.T) {
	t.Parallel()

	c := validConfig()
	c.Upstreams[0].HTTP.URL = "ftp://x"
	before := *c
	require.Error(t, c.Validate())
	assert.Equal(t, before, *c)
}

func TestProblems(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		err  error
		want []string
	}{
		{name: "nil", err: nil, want: nil},
		{name: "one", err: &FieldError{Path: "a", Msg: "b"}, want: []string{"a: b"}},
		{name: "no path", err: &FieldError{Msg: "b"}, want: []string{"b"}},
		{
			name: "nested joins",
			err: errors.Join(
				&FieldError{Path: "a", Msg: "1"},
				errors.Join(&FieldError{Path: "b", Msg: "2"}, &FieldError{Path: "c", Msg: "3"}),
			),
			want: []string{"a: 1", "b: 2", "c: 3"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, Problems(tt.err))
		})
	}
}

func TestProblemsFollowTheSchemaOrder(t *testing.T) {
	t.Parallel()

	c := validConfig()
	for i := range 9 {
		c.Upstreams = append(c.Upstreams, Upstream{Name: fmt.Sprintf("u%d", i), Stdio: &StdioTransport{Command: "x"}, Timeout: time.Second, MaxResponseBytes: 1})
	}
	c.Upstreams[10].Timeout = 0
	c.Upstreams[2].Timeout = 0
	c.Log.Level = "loud"
	c.Server.Listen = "x"
	c.Upstreams[2].Name = "Payments"

	err := c.Validate()
	require.Error(t, err)
	assert.Equal(t, []string{
		`server.listen: "x" is not host:port`,
		`upstreams[2].name: "Payments" must be lowercase letters, digits, '-' and '_', starting with a letter or digit`,
		`upstreams[2].timeout: must be a positive duration`,
		`upstreams[10].timeout: must be a positive duration`,
		`log.level: "loud" must be one of debug, info, warn, error`,
	}, Problems(err), "list indices sort as numbers; fields in schema order")
}

func TestPathOrder(t *testing.T) {
	t.Parallel()

	tests := []struct {
		a, b string // a sorts before b
	}{
		{"server", "catalog"},
		{"server.listen", "server.mcp_path"},
		{"server.cors.max_age", "server.shutdown_timeout"},
		{"upstreams", "upstreams[0]"},
		{"upstreams[0]", "upstreams[0].name"},
		{"upstreams[2].timeout", "upstreams[10].name"},
		{"upstreams[0].http.headers[A]", "upstreams[0].http.headers[B].env"},
		{"upstreams[0].http.headers[A.B]", "upstreams[0].http.max_idle_conns"},
		{"server.listen", "server.zzz"},
		{"log.format", "aaa"},
	}
	for _, tt := range tests {
		t.Run(tt.a+" < "+tt.b, func(t *testing.T) {
			t.Parallel()
			errs := []error{&FieldError{Path: tt.b, Msg: "b"}, &FieldError{Path: tt.a, Msg: "a"}}
			sortByPath(errs)
			var fe *FieldError
			require.ErrorAs(t, errs[0], &fe)
			assert.Equal(t, tt.a, fe.Path)
		})
	}
}

// TestValidateSSEBounds: a replica's replay budget must hold at least one
// session's.
func TestValidateSSEBounds(t *testing.T) {
	t.Parallel()
	c := validConfig()
	c.Server.SSE.ReplaySessionBytes = 2 << 20
	c.Server.SSE.ReplayTotalBytes = 1 << 20
	c.Server.SSE.Retry = -time.Second
	err := c.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "server.sse.replay_total_bytes: must be at least replay_session_bytes (2097152)")
	assert.Contains(t, err.Error(), "server.sse.retry: must be a positive duration")
}
