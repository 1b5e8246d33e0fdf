// Package configs is the mcpgw YAML schema: typed structs whose doc comments
// are the configuration reference, their defaults, a pure Validate that
// reports every problem with its path, and loading (YAML decoded with
// mapstructure, MCPGW_* overrides read through a private viper instance).
// It imports nothing else from mcpgw.
//
// # Loading
//
// Load and Parse turn YAML into a validated Config. Unknown keys are
// errors, and keys are case-sensitive: listen, not Listen. Map keys, such
// as header and environment variable names, keep their case. Durations are
// strings with a unit ("30s", "250ms"); a bare number is an error rather
// than nanoseconds. Every problem is reported with its path, such as
// upstreams[2].http.url, and Problems splits the joined error into lines.
//
// # Environment
//
// Two mechanisms read the environment, and neither ever echoes a value:
//
//   - ${NAME} in any string value of the file is replaced by the
//     environment variable NAME before decoding; an unset NAME is an error
//     (set but empty expands to ""). Only the braced form is expanded, so a
//     bare $ (in a regular expression or a password) needs no escaping;
//     $${ stands for a literal ${. Expansion happens after YAML parsing, in
//     values only: keys and comments are never expanded, and a value cannot
//     inject YAML structure.
//   - MCPGW_<SECTION>_<KEY> overrides a scalar key under server, catalog or
//     log, whether or not the file sets it: MCPGW_SERVER_LISTEN,
//     MCPGW_SERVER_PUBLIC_URL, MCPGW_SERVER_CORS_MAX_AGE, MCPGW_LOG_LEVEL.
//     EnvKeys lists exactly them. An empty variable is ignored. Upstreams,
//     lists and maps come from the file only.
//
// # Secrets
//
// Header values, child environment values and the session key are
// SecretRefs: {env: NAME}, {file: PATH} or {value: TEXT}, exactly one. Load
// resolves each into Resolved (env: the variable, which must be set and
// non-empty; file: the contents with trailing newlines trimmed, which must be
// non-empty; value: as is). The Secret type redacts itself in fmt, JSON,
// YAML and slog output, and no error message contains a secret value.
package configs

import (
	"time"
)

// Config is the whole mcpgw configuration file.
type Config struct {
	// Server is the downstream listener: where hosts connect.
	Server Server `mapstructure:"server" yaml:"server"`
	// Catalog controls how upstream catalogs are merged and exposed.
	Catalog Catalog `mapstructure:"catalog" yaml:"catalog"`
	// Upstreams are the MCP servers behind the gateway, in priority order:
	// when two upstreams expose the same resource URI, the earlier one keeps
	// the bare URI.
	Upstreams []Upstream `mapstructure:"upstreams" yaml:"upstreams"`
	// Log controls the process log (not the audit stream).
	Log Log `mapstructure:"log" yaml:"log"`
	// Auth makes the gateway an OAuth 2.1 resource server. Without it the
	// gateway is unauthenticated and binds only loopback addresses.
	Auth *Auth `mapstructure:"auth" yaml:"auth,omitempty"`
	// Policy holds the per-call controls: rate limits and kill-switch state.
	Policy Policy `mapstructure:"policy" yaml:"policy"`
	// Redis is shared state for replicas (rate limits, kill switches). Unset
	// means each replica keeps its own.
	Redis *Redis `mapstructure:"redis" yaml:"redis,omitempty"`
	// Audit is the audit stream: one record per tools/call decision.
	Audit Audit `mapstructure:"audit" yaml:"audit"`
	// Telemetry configures traces (OTLP) and metrics (Prometheus).
	Telemetry Telemetry `mapstructure:"telemetry" yaml:"telemetry"`
	// Pinning pins tool contracts to a lock file; each upstream's pinning
	// overrides the mode. See Pinning.
	Pinning Pinning `mapstructure:"pinning" yaml:"pinning"`
	// Endpoints are virtual endpoints: MCP servers on their own paths
	// beside server.mcp_path, each with a subset of the tools, its own
	// required scopes and instructions. See Endpoint.
	Endpoints []Endpoint `mapstructure:"endpoints" yaml:"endpoints,omitempty"`
}

// Server is the downstream HTTP listener.
type Server struct {
	// Listen is the host:port the gateway binds; the port is a number (0
	// picks a free one). Without authentication the gateway refuses any
	// address that is not loopback. Default 127.0.0.1:9190.
	Listen string `mapstructure:"listen" yaml:"listen"`
	// MCPPath is the path of the MCP endpoint. Default /mcp.
	MCPPath string `mapstructure:"mcp_path" yaml:"mcp_path"`
	// PublicURL is the externally visible base URL of the gateway, such as
	// https://mcp.example.com. Optional until authentication is configured.
	PublicURL string `mapstructure:"public_url" yaml:"public_url"`
	// MaxBodyBytes bounds a request body; a larger one gets HTTP 413.
	// Default 4 MiB.
	MaxBodyBytes int64 `mapstructure:"max_body_bytes" yaml:"max_body_bytes"`
	// SessionIdleTTL ends a 2025-era session that has seen no request for
	// this long; its id then gets 404. Default 30m.
	SessionIdleTTL time.Duration `mapstructure:"session_idle_ttl" yaml:"session_idle_ttl"`
	// SessionMaxAge bounds how long after its creation a 2025-era session
	// id can be resumed by another replica (one sharing session_key) after
	// the replica holding it stopped. Default 24h.
	SessionMaxAge time.Duration `mapstructure:"session_max_age" yaml:"session_max_age"`
	// SessionKey is the 32-byte key (hex or base64) that seals session ids.
	// Replicas that share sessions must share it. When unset, a random key is
	// generated at start, so sessions do not survive a restart.
	SessionKey SecretRef `mapstructure:"session_key" yaml:"session_key"`
	// AllowedOrigins lists the Origin values accepted on /mcp (DNS-rebinding
	// protection, required by the MCP transport spec). Requests without an
	// Origin header (non-browser hosts) are accepted. Entries are exact
	// origins ("https://app.example.com") or "*" for any. Default: the
	// loopback origins http://localhost, http://127.0.0.1 and http://[::1]
	// on any port.
	AllowedOrigins []string `mapstructure:"allowed_origins" yaml:"allowed_origins"`
	// CORS controls the CORS headers sent to browser-based hosts.
	CORS CORS `mapstructure:"cors" yaml:"cors"`
	// ShutdownDelay is how long the gateway keeps serving normally after
	// SIGTERM, with /readyz answering 503, so that load balancers stop
	// sending it new connections before it refuses any. Set it to the time
	// your load balancer takes to deregister an endpoint (the Helm chart
	// sets 5s). After it, new calls get -32053 and calls in flight have
	// shutdown_timeout to finish. Default 0: no delay.
	ShutdownDelay time.Duration `mapstructure:"shutdown_delay" yaml:"shutdown_delay"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight calls,
	// after shutdown_delay. Default 30s.
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout" yaml:"shutdown_timeout"`
	// ReadHeaderTimeout bounds reading request headers. Default 10s.
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout" yaml:"read_header_timeout"`
	// ReadBodyTimeout bounds reading a request body, from the end of its
	// headers: a client that stalls or trickles its body past it has its
	// connection closed. Default 30s.
	ReadBodyTimeout time.Duration `mapstructure:"read_body_timeout" yaml:"read_body_timeout"`
	// IdleTimeout closes a keep-alive connection that has carried no
	// request for this long. Keep it above the idle timeout of a load
	// balancer in front (60s on most), so the balancer closes first.
	// Default 2m.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	// MaxHeaderBytes bounds the request header fields, names and values
	// counted as sent ("Name: value" and its line end); a larger header
	// section gets HTTP 431. Between 1 KiB and 1 MiB. Default 32 KiB.
	MaxHeaderBytes int `mapstructure:"max_header_bytes" yaml:"max_header_bytes"`
	// MaxHeaderCount bounds the number of request header fields, Host
	// included; more get HTTP 431. Default 100, Envoy's default.
	MaxHeaderCount int `mapstructure:"max_header_count" yaml:"max_header_count"`
	// MaxUnauthenticated bounds the requests being authenticated at once
	// on connections that have not yet carried an authenticated request.
	// A request beyond it gets HTTP 503 with Retry-After and its
	// connection closed, before its token is looked at; requests on a
	// connection that has authenticated are never counted or refused, so
	// a flood of unauthenticated traffic (slow issuers, forged tokens)
	// cannot starve established clients. Applies only with auth.
	// Default 256.
	MaxUnauthenticated int `mapstructure:"max_unauthenticated" yaml:"max_unauthenticated"`
	// MRTRStateTTL is how long a requestState the gateway hands a
	// 2026-07-28 client in an input_required result stays valid; a retry
	// after it is refused as invalid params (mcpwire.CodeInvalidParams).
	// The state is sealed with a key derived from session_key, so replicas
	// sharing that key accept each other's. Default 10m.
	MRTRStateTTL time.Duration `mapstructure:"mrtr_state_ttl" yaml:"mrtr_state_ttl"`
	// MRTRHoldTimeout bounds how long the gateway holds a session-era
	// upstream's call open while it waits for the answers to that
	// upstream's elicitation, sampling or roots requests: a 2026-07-28
	// client's retry, or a 2025-era client's responses. After it the held
	// call is cancelled upstream and released. Default 60s.
	MRTRHoldTimeout time.Duration `mapstructure:"mrtr_hold_timeout" yaml:"mrtr_hold_timeout"`
	// SSE bounds the event streams of 2025-era sessions and what each
	// replica keeps of them for resumption.
	SSE SSE `mapstructure:"sse" yaml:"sse"`
}

// SSE configures the server-sent event streams of 2025-era sessions: the
// POST streams that carry a call's notifications and result, and the GET
// stream. Every event on them has an id, and the events a client missed
// after a broken connection are replayed when it reconnects with
// Last-Event-ID (MCP 2025-11-25 basic/transports, "Resumability and
// Redelivery"). The events are kept in the memory of the replica that sent
// them, within the bounds below: a client resumes on another replica only
// if the load balancer routes its session back (by Mcp-Session-Id).
// 2026-07-28 streams have no ids: that revision removed resumption.
type SSE struct {
	// Retry is the reconnection delay the gateway asks for in the retry
	// field of each stream's first event: how long a client waits before
	// it reconnects after the connection closes (during a drain, or when a
	// proxy cuts it). Default 1s.
	Retry time.Duration `mapstructure:"retry" yaml:"retry"`
	// ReplayTTL is how long a sent event stays replayable. Default 1m.
	ReplayTTL time.Duration `mapstructure:"replay_ttl" yaml:"replay_ttl"`
	// ReplaySessionBytes bounds the events one session keeps for replay;
	// the oldest are forgotten first. Default 1 MiB.
	ReplaySessionBytes int64 `mapstructure:"replay_session_bytes" yaml:"replay_session_bytes"`
	// ReplayTotalBytes bounds the events all sessions of a replica keep
	// for replay. An event that does not fit is still sent, but cannot be
	// replayed: a resumption that needs it is refused. Default 64 MiB.
	ReplayTotalBytes int64 `mapstructure:"replay_total_bytes" yaml:"replay_total_bytes"`
}

// CORS configures cross-origin responses on /mcp.
type CORS struct {
	// Enabled turns CORS headers on. Default false.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// AllowedOrigins lists origins that get CORS headers; "*" allows any.
	// Default: the server's allowed_origins.
	AllowedOrigins []string `mapstructure:"allowed_origins" yaml:"allowed_origins"`
	// MaxAge is how long a browser may cache a preflight answer. Default 10m.
	MaxAge time.Duration `mapstructure:"max_age" yaml:"max_age"`
}

// Catalog controls the merged catalog.
type Catalog struct {
	// Separator joins prefix and tool name. Default "__".
	Separator string `mapstructure:"separator" yaml:"separator"`
	// NamePattern is the regular expression every exposed tool and prompt
	// name must match. Default ^[a-zA-Z0-9_-]{1,64}$, what the Claude and
	// OpenAI APIs accept.
	NamePattern string `mapstructure:"name_pattern" yaml:"name_pattern"`
	// PageSize is the number of entries per tools/list (and resources,
	// prompts) page. A catalog larger than this is paged with opaque cursors.
	// Default 500.
	PageSize int `mapstructure:"page_size" yaml:"page_size"`
	// ListChangedDebounce coalesces bursts of upstream list_changed
	// notifications and availability flaps into one refresh. Default 250ms.
	ListChangedDebounce time.Duration `mapstructure:"list_changed_debounce" yaml:"list_changed_debounce"`
	// ListTTL is the ttlMs hint on 2026-07-28 list results: how long a host
	// may cache the merged catalog. While an upstream is unavailable the hint
	// is 0, so hosts re-fetch once it is back. Hosts that hold a
	// subscriptions/listen stream hear of changes at once either way.
	// Default 30s.
	ListTTL time.Duration `mapstructure:"list_ttl" yaml:"list_ttl"`
}

// Upstream registers one MCP server behind the gateway. Exactly one of HTTP,
// Stdio and SSE is set.
type Upstream struct {
	// Name identifies the upstream in errors, logs, metrics and the audit
	// stream. Lowercase letters, digits, '-' and '_'. Required, unique.
	Name string `mapstructure:"name" yaml:"name"`
	// HTTP is a Streamable HTTP upstream (2025-era sessions or 2026-07-28
	// stateless; the era is detected once per connection).
	HTTP *HTTPTransport `mapstructure:"http" yaml:"http,omitempty"`
	// Stdio is a local process speaking MCP over stdin/stdout.
	Stdio *StdioTransport `mapstructure:"stdio" yaml:"stdio,omitempty"`
	// SSE is a legacy (2024-11-05) HTTP+SSE upstream.
	SSE *SSETransport `mapstructure:"sse" yaml:"sse,omitempty"`
	// Prefix namespaces the upstream's tools and prompts as
	// <prefix><separator><name>. Unset means the upstream's name; "" exposes
	// bare names.
	Prefix *string `mapstructure:"prefix" yaml:"prefix,omitempty"`
	// Tools filters which upstream tools are exposed.
	Tools ToolFilter `mapstructure:"tools" yaml:"tools"`
	// Timeout bounds one call to this upstream. Default 30s.
	Timeout time.Duration `mapstructure:"timeout" yaml:"timeout"`
	// Timeouts override Timeout for tools by original name; the first rule
	// whose glob matches wins. Resolved once per catalog, not per call.
	Timeouts []ToolTimeout `mapstructure:"timeouts" yaml:"timeouts,omitempty"`
	// Breaker is the upstream's circuit breaker, on by default.
	Breaker Breaker `mapstructure:"breaker" yaml:"breaker"`
	// Bulkhead bounds the calls in flight to the upstream.
	Bulkhead Bulkhead `mapstructure:"bulkhead" yaml:"bulkhead"`
	// Retry says which calls are sent again after a transient failure.
	Retry Retry `mapstructure:"retry" yaml:"retry"`
	// Optional marks an upstream whose first listing /readyz does not wait
	// for. Default false: /readyz waits until every upstream has either
	// listed its catalog or failed its first attempt (an upstream that is
	// down fails within its timeout and does not hold readiness).
	Optional bool `mapstructure:"optional" yaml:"optional"`
	// MaxResponseBytes bounds one upstream response; a larger one is a
	// gateway error naming the upstream. Default 16 MiB.
	MaxResponseBytes int64 `mapstructure:"max_response_bytes" yaml:"max_response_bytes"`
	// Scopes are the OAuth scopes this upstream's tools require (by
	// original name): a default, with overrides per tool glob.
	Scopes ToolScopes `mapstructure:"scopes" yaml:"scopes"`
	// Auth is the credential the gateway sends this upstream; never the
	// caller's token.
	Auth UpstreamAuth `mapstructure:"auth" yaml:"auth"`
	// IdentityAssertion sends the upstream a short-lived JWT, signed by the
	// gateway, naming the caller.
	IdentityAssertion IdentityAssertion `mapstructure:"identity_assertion" yaml:"identity_assertion"`
	// AuditArguments says what the audit stream records of a call's
	// arguments besides their SHA-256: none, redacted or full. Default none.
	AuditArguments ArgumentLogging `mapstructure:"audit_arguments" yaml:"audit_arguments,omitempty"`
	// ProtocolVersion is the MCP version spoken to this upstream. auto
	// (the default) picks the era that serves calls cheapest: the newest
	// 2025-era version it offers, in pooled per-principal sessions
	// (http.sessions), when it keeps sessions (its initialize answer
	// carries an Mcp-Session-Id); 2026-07-28, each request standing alone,
	// when it offers that era and keeps no sessions. A version
	// ("2025-06-18", "2025-11-25", "2026-07-28") pins it; a pinned
	// 2025-era version is pooled the same way (docs/architecture.md).
	// Empty means auto.
	ProtocolVersion string `mapstructure:"protocol_version" yaml:"protocol_version"`
	// CheckArguments lists globs of original tool names whose arguments
	// the gateway checks against the tool's inputSchema before the call
	// reaches the upstream ("*" for every tool); a call that does not
	// conform is refused as invalid params with the schema error's path.
	// Schemas are compiled when the catalog loads. Default: none.
	CheckArguments []string `mapstructure:"check_arguments" yaml:"check_arguments,omitempty"`
	// Pinning is this upstream's pinning mode (off, warn or enforce);
	// empty means the top-level pinning.mode.
	Pinning string `mapstructure:"pinning" yaml:"pinning,omitempty"`
}

// HTTPTransport is a Streamable HTTP upstream.
type HTTPTransport struct {
	// URL is the upstream's MCP endpoint, http or https.
	URL string `mapstructure:"url" yaml:"url"`
	// Headers are extra headers sent on every request, such as an API key.
	// Values are secrets.
	Headers map[string]SecretRef `mapstructure:"headers" yaml:"headers,omitempty"`
	// MaxIdleConns is the number of idle keep-alive connections kept to the
	// upstream. Size it to the expected concurrency. Default 256.
	MaxIdleConns int `mapstructure:"max_idle_conns" yaml:"max_idle_conns"`
	// Sessions bounds the pool of 2025-era upstream sessions that carry
	// forwarded calls.
	Sessions UpstreamSessions `mapstructure:"sessions" yaml:"sessions"`
}

// UpstreamSessions is the pool of 2025-era sessions with an HTTP upstream
// that keeps sessions. Each principal's calls go on sessions opened with
// that principal's credential, one request at a time per session, so that
// neither a notification nor a session-bound token crosses principals.
// The gateway's own traffic (discovery, probes, list changes,
// subscriptions) keeps a session of its own.
type UpstreamSessions struct {
	// IdleTimeout is how long a pooled session may go unused before the
	// gateway ends it with HTTP DELETE. Default 5m.
	IdleTimeout time.Duration `mapstructure:"idle_timeout" yaml:"idle_timeout"`
	// MaxPerPrincipal bounds the sessions open for one principal (one
	// issuer and subject; every anonymous caller is one principal), and so
	// its calls in flight to this upstream. A call that finds them all busy
	// waits for one until its deadline, then fails as busy. Default 64,
	// the default bulkhead's max_concurrent: one principal (a service
	// account, an agent fleet behind one client) may use the upstream's
	// whole concurrency, and its idle sessions end after idle_timeout.
	MaxPerPrincipal int `mapstructure:"max_per_principal" yaml:"max_per_principal"`
	// Max bounds the pooled sessions open to this upstream, over every
	// principal; at the bound an idle session of another principal is
	// closed to make room, and a call finding none waits as above.
	// Default 256.
	Max int `mapstructure:"max" yaml:"max"`
}

// StdioTransport is an upstream started as a child process.
type StdioTransport struct {
	// Command is the executable to run.
	Command string `mapstructure:"command" yaml:"command"`
	// Args are its arguments.
	Args []string `mapstructure:"args" yaml:"args,omitempty"`
	// Env adds environment variables to the child. Values are secrets.
	Env map[string]SecretRef `mapstructure:"env" yaml:"env,omitempty"`
}

// SSETransport is a legacy HTTP+SSE upstream.
type SSETransport struct {
	// URL is the upstream's SSE endpoint, http or https.
	URL string `mapstructure:"url" yaml:"url"`
	// Headers are extra headers sent on every request. Values are secrets.
	Headers map[string]SecretRef `mapstructure:"headers" yaml:"headers,omitempty"`
}

// ToolFilter selects an upstream's tools by their original names with
// path.Match globs. A tool is exposed when it matches some include (or
// include is empty) and no exclude.
type ToolFilter struct {
	// Include lists globs of tools to expose. Empty means all.
	Include []string `mapstructure:"include" yaml:"include,omitempty"`
	// Exclude lists globs of tools to hide.
	Exclude []string `mapstructure:"exclude" yaml:"exclude,omitempty"`
}

// Log configures the process log.
type Log struct {
	// Level is debug, info, warn or error. Default info.
	Level string `mapstructure:"level" yaml:"level"`
	// Format is json or text. Default json.
	Format string `mapstructure:"format" yaml:"format"`
}

// Transport names the kind of transport an upstream uses.
func (u *Upstream) Transport() string {
	switch {
	case u.HTTP != nil:
		return "http"
	case u.Stdio != nil:
		return "stdio"
	case u.SSE != nil:
		return "sse"
	default:
		return ""
	}
}

// ExposedPrefix is the namespace prefix of the upstream's names: its Prefix
// when set (possibly ""), otherwise its Name.
func (u *Upstream) ExposedPrefix() string {
	if u.Prefix != nil {
		return *u.Prefix
	}
	return u.Name
}

// ProtocolAuto is the protocol_version that lets the gateway pick each
// upstream's era (Upstream.ProtocolVersion).
const ProtocolAuto = "auto"

// PinnedVersion returns the MCP version protocol_version pins, or "" when
// the era is left to the gateway (auto or empty).
func (u *Upstream) PinnedVersion() string {
	if u.ProtocolVersion == ProtocolAuto {
		return ""
	}
	return u.ProtocolVersion
}
