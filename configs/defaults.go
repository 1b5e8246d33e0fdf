package configs

import "time"

// Defaults documented on the fields they fill. SetDefaults applies them to
// fields left at their zero value.
const (
	// DefaultListen is the loopback address the gateway binds when
	// server.listen is unset.
	DefaultListen = "127.0.0.1:9190"
	// DefaultMCPPath is the path of the MCP endpoint.
	DefaultMCPPath = "/mcp"
	// DefaultMaxBodyBytes bounds a downstream request body (4 MiB).
	DefaultMaxBodyBytes int64 = 4 << 20
	// DefaultSessionIdleTTL ends an idle 2025-era session.
	DefaultSessionIdleTTL = 30 * time.Minute
	// DefaultSessionMaxAge bounds when another replica can resume a
	// session.
	DefaultSessionMaxAge = 24 * time.Hour
	// DefaultMRTRStateTTL bounds the life of a gateway requestState.
	DefaultMRTRStateTTL = 10 * time.Minute
	// DefaultMRTRHoldTimeout bounds a held upstream call awaiting input.
	DefaultMRTRHoldTimeout = time.Minute
	// DefaultShutdownTimeout bounds the drain on SIGTERM.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultReadHeaderTimeout bounds reading request headers.
	DefaultReadHeaderTimeout = 10 * time.Second
	// DefaultReadBodyTimeout bounds reading a request body.
	DefaultReadBodyTimeout = 30 * time.Second
	// DefaultIdleTimeout closes idle keep-alive connections.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultMaxHeaderBytes bounds the request header fields (32 KiB).
	DefaultMaxHeaderBytes = 32 << 10
	// DefaultMaxHeaderCount bounds the number of request header fields,
	// as Envoy's max_headers_count does by default.
	DefaultMaxHeaderCount = 100
	// DefaultMaxUnauthenticated bounds the requests being authenticated
	// at once on connections not yet authenticated.
	DefaultMaxUnauthenticated = 256
	// DefaultSSERetry is the reconnection delay sent on event streams.
	DefaultSSERetry = time.Second
	// DefaultSSEReplayTTL is how long a sent event stays replayable.
	DefaultSSEReplayTTL = time.Minute
	// DefaultSSEReplaySessionBytes bounds one session's replayable events
	// (1 MiB).
	DefaultSSEReplaySessionBytes int64 = 1 << 20
	// DefaultSSEReplayTotalBytes bounds a replica's replayable events
	// (64 MiB).
	DefaultSSEReplayTotalBytes int64 = 64 << 20
	// DefaultCORSMaxAge is how long a browser may cache a preflight answer.
	DefaultCORSMaxAge = 10 * time.Minute

	// DefaultSeparator joins prefix and tool name.
	DefaultSeparator = "__"
	// DefaultNamePattern is what the Claude and OpenAI APIs accept as a tool
	// name: no dots, at most 64 characters, prefix included.
	DefaultNamePattern = `^[a-zA-Z0-9_-]{1,64}$`
	// DefaultPageSize is the number of entries per list page.
	DefaultPageSize = 500
	// DefaultListChangedDebounce coalesces bursts of list_changed
	// notifications.
	DefaultListChangedDebounce = 250 * time.Millisecond
	// DefaultListTTL is the ttlMs hint on 2026-07-28 list results.
	DefaultListTTL = 30 * time.Second

	// DefaultUpstreamTimeout bounds one call to an upstream.
	DefaultUpstreamTimeout = 30 * time.Second
	// DefaultMaxResponseBytes bounds one upstream response (16 MiB).
	DefaultMaxResponseBytes int64 = 16 << 20
	// DefaultMaxIdleConns is the keep-alive pool per HTTP upstream; the
	// net/http default of 2 per host reconnects on most calls under load.
	DefaultMaxIdleConns = 256
	// DefaultSessionIdleTimeout ends a pooled upstream session unused this
	// long.
	DefaultSessionIdleTimeout = 5 * time.Minute
	// DefaultSessionsPerPrincipal bounds one principal's pooled sessions
	// with an upstream.
	DefaultSessionsPerPrincipal = 64
	// DefaultSessionsMax bounds the pooled sessions with an upstream.
	DefaultSessionsMax = 256

	// DefaultLogLevel is the process log level.
	DefaultLogLevel = "info"
	// DefaultLogFormat is the process log format.
	DefaultLogFormat = "json"
)

// SetDefaults fills every field left at its zero value with the default
// documented on it. It is idempotent and never overwrites a set value, so a
// negative or otherwise invalid value survives for Validate to report.
//
// Two defaults are represented by nil rather than filled in:
// Server.AllowedOrigins nil means the loopback origins (http://localhost,
// http://127.0.0.1 and http://[::1] on any port), which a list of exact
// origins cannot express; CORS.AllowedOrigins nil means "the same as
// Server.AllowedOrigins". An unset Upstream.Prefix (nil) means the
// upstream's name, see Upstream.ExposedPrefix.
func (c *Config) SetDefaults() {
	s := &c.Server
	setDefault(&s.Listen, DefaultListen)
	setDefault(&s.MCPPath, DefaultMCPPath)
	setDefault(&s.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&s.SessionIdleTTL, DefaultSessionIdleTTL)
	setDefault(&s.SessionMaxAge, DefaultSessionMaxAge)
	setDefault(&s.MRTRStateTTL, DefaultMRTRStateTTL)
	setDefault(&s.MRTRHoldTimeout, DefaultMRTRHoldTimeout)
	setDefault(&s.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&s.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDefault(&s.ReadBodyTimeout, DefaultReadBodyTimeout)
	setDefault(&s.IdleTimeout, DefaultIdleTimeout)
	setDefault(&s.MaxHeaderBytes, DefaultMaxHeaderBytes)
	setDefault(&s.MaxHeaderCount, DefaultMaxHeaderCount)
	setDefault(&s.MaxUnauthenticated, DefaultMaxUnauthenticated)
	setDefault(&s.CORS.MaxAge, DefaultCORSMaxAge)
	setDefault(&s.SSE.Retry, DefaultSSERetry)
	setDefault(&s.SSE.ReplayTTL, DefaultSSEReplayTTL)
	setDefault(&s.SSE.ReplaySessionBytes, DefaultSSEReplaySessionBytes)
	setDefault(&s.SSE.ReplayTotalBytes, DefaultSSEReplayTotalBytes)

	cat := &c.Catalog
	setDefault(&cat.Separator, DefaultSeparator)
	setDefault(&cat.NamePattern, DefaultNamePattern)
	setDefault(&cat.PageSize, DefaultPageSize)
	setDefault(&cat.ListChangedDebounce, DefaultListChangedDebounce)
	setDefault(&cat.ListTTL, DefaultListTTL)

	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		setDefault(&u.Timeout, DefaultUpstreamTimeout)
		u.setResilienceDefaults()
		u.Auth.setDefaults()
		u.IdentityAssertion.setDefaults()
		setDefault(&u.MaxResponseBytes, DefaultMaxResponseBytes)
		setDefault(&u.ProtocolVersion, ProtocolAuto)
		if u.HTTP != nil {
			setDefault(&u.HTTP.MaxIdleConns, DefaultMaxIdleConns)
			setDefault(&u.HTTP.Sessions.IdleTimeout, DefaultSessionIdleTimeout)
			setDefault(&u.HTTP.Sessions.MaxPerPrincipal, DefaultSessionsPerPrincipal)
			setDefault(&u.HTTP.Sessions.Max, DefaultSessionsMax)
		}
	}

	setDefault(&c.Log.Level, DefaultLogLevel)
	setDefault(&c.Log.Format, DefaultLogFormat)

	if c.Auth != nil {
		c.Auth.setDefaults()
	}
	c.Policy.setDefaults()
	if c.Redis != nil {
		c.Redis.setDefaults()
	}
	c.Audit.setDefaults()
	c.Telemetry.setDefaults()
	c.Pinning.setDefaults()
}

// setDefault sets *p to def when *p is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}
