package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/backoff"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/telemetry"
)

// Request is one request forwarded to an upstream.
type Request struct {
	// Method is the JSON-RPC method, one of the mcpwire.Method* names:
	// tools/call, resources/read, prompts/get, completion/complete, ping, ...
	Method string
	// Params were already rewritten by the gateway (original tool name and
	// so on). They are sent byte for byte, except in _meta: progressToken is
	// replaced (see OnProgress), the reserved protocol keys
	// io.modelcontextprotocol/{protocolVersion,clientInfo,clientCapabilities,logLevel}
	// a downstream client put there are dropped, and in the 2026-07-28 era
	// the gateway's own are added. Only the top level of Params and of
	// _meta is parsed. Nil means no params.
	Params json.RawMessage
	// ProgressToken is the downstream's params._meta.progressToken, nil when
	// absent.
	ProgressToken json.RawMessage
	// OnProgress is called, in order, with the params of each
	// notifications/progress for this request, the token restored to
	// ProgressToken. It runs on a reader goroutine and must not block. It is
	// never called after Call returns. May be nil.
	OnProgress func(params json.RawMessage)
	// Notify, when set, receives every other notification the upstream
	// sends on this request's response stream before the response (log
	// messages, and any notification the gateway does not handle itself:
	// list changes and resource updates stay the client's), in the order
	// they arrive, on the goroutine that reads the stream, before Call
	// returns. Notifications a session-era upstream sends on its standalone
	// stream or over stdio cannot be told apart by request and are not
	// delivered here.
	Notify Notifier
	// LogLevel, when set, is the minimum level of the log messages the
	// caller wants (2025-11-25 server/utilities/logging): a 2026-07-28
	// upstream gets it in _meta as mcpwire.MetaLogLevel, the way that
	// revision carries it per request (a copy in Params' _meta is
	// dropped); the caller's pooled session of a session-era HTTP upstream
	// gets logging/setLevel when its level differs (pool.go). An upstream
	// with one session for every call (stdio, legacy SSE) gets it through
	// SetLogLevel instead.
	LogLevel string
	// RequestID is the gateway's X-Request-ID, sent upstream as the
	// X-Request-ID HTTP header (HTTP and SSE transports).
	RequestID string
	// Idempotent marks a request that is safe to send again: once after
	// the upstream's session expired and was re-initialized (list and read
	// methods), and, for resources/read and tools/call, after a transient
	// failure (tools the upstream annotates readOnlyHint or idempotentHint).
	Idempotent bool
	// Header holds extra HTTP headers for the HTTP transports (forwarded
	// Mcp-Param-* headers, trace context). Headers the client sets itself
	// (the session's, Mcp-Method, Mcp-Name, X-Request-Id and the
	// x-mcp-header bindings it computes) win over these. Ignored by stdio.
	Header http.Header
	// ClientCapabilities, when set, is the downstream client's
	// ClientCapabilities object, declared in _meta to a 2026-07-28 upstream
	// instead of the gateway's own empty one, so that the upstream may
	// answer with input requests the client can fulfil (basic/patterns/mrtr:
	// servers MUST NOT send input requests the client has not declared).
	ClientCapabilities json.RawMessage
	// OnServerRequest, when set, answers the server-to-client requests a
	// session-era upstream sends on this request's response stream
	// (elicitation/create, sampling/createMessage, roots/list). It runs on
	// its own goroutine, may block until ctx ends, and returns the result
	// object or an error (an *RPCError is sent as that JSON-RPC error).
	// Unset, such requests get mcpwire.CodeMethodNotFound as before.
	OnServerRequest func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// Identity is who the call is made for, as the gateway authenticated
	// the caller; it selects the upstream credential (token exchange) and
	// fills the identity assertion. Nil on an unauthenticated gateway: the
	// call then carries no assertion, and a token_exchange upstream
	// refuses it with ErrNoIdentity. The client's own traffic (handshake,
	// discovery, health) never has one.
	Identity *Identity
	// Tool is the original tool name of a tools/call: it selects the
	// tool's timeout, retry rule and, with breaker.per_tool, its breaker.
	Tool string

	// traceMeta is the _meta fragment carrying the client span's trace
	// context, set by Call when tracing is on.
	traceMeta []byte
}

// Notifier receives the notifications related to one request (see
// Request.Notify). params is valid only during the call.
type Notifier interface {
	Notify(method string, params json.RawMessage)
}

// Options are the dependencies of a Client. The zero value works.
type Options struct {
	// Logger receives the client's logs; nil discards them.
	Logger *slog.Logger
	// OnChange is called, from any goroutine, whenever Catalog(), the
	// availability or Attempted() changed. It must not block long; the
	// gateway debounces.
	OnChange func(upstream string)
	// OnResourceUpdated is called, from any goroutine, with the URI of each
	// notifications/resources/updated the upstream sends (for a resource
	// subscribed with Subscribe). It must not block.
	OnResourceUpdated func(upstream, uri string)
	// OnListChanged is called, from any goroutine, with the method of each
	// list_changed notification the upstream sent, once the re-discovery
	// it triggered has finished, whether or not the lists differ: the
	// upstream said they changed, and its clients would have heard so
	// directly. It must not block.
	OnListChanged func(upstream, method string)
	// ClientName and ClientVersion are the clientInfo sent upstream.
	// Defaults "mcpgw" and "dev".
	ClientName, ClientVersion string
	// HealthInterval is how long the upstream may go without a successful
	// exchange before it is pinged. Default 5s.
	HealthInterval time.Duration
	// Asserter signs identity assertions for an upstream with
	// identity_assertion enabled; New fails without one then. Share one per
	// process, so the key set upstreams cache stays valid across reloads.
	Asserter *Asserter
	// AssertionIssuer is the iss of identity assertions when the upstream
	// configures none: the gateway's auth.resource.
	AssertionIssuer string
	// TokenClient reaches token endpoints (client credentials, token
	// exchange); nil means a client with a 10s timeout.
	TokenClient *http.Client
	// Now is the clock of token expiry; nil means time.Now.
	Now func() time.Time
	// Telemetry receives a client span per call and
	// mcp.client.operation.duration; nil records nothing.
	Telemetry *telemetry.Telemetry
	// OnBreakerChange is called, from the goroutine of the call that
	// caused it, whenever one of the upstream's circuit breakers changes
	// state: tool names a per-tool breaker ("" for the upstream's own),
	// from and to are BreakerClosed, BreakerOpen or BreakerHalfOpen. It
	// must not block long. Nil: nobody hears them.
	OnBreakerChange func(upstream, tool, from, to string)
}

// Catalog is what an upstream offers, as discovered. It is immutable once
// published.
type Catalog struct {
	// Tools, Resources, ResourceTemplates and Prompts hold each element
	// byte for byte as the upstream sent it.
	Tools, Resources, ResourceTemplates, Prompts []json.RawMessage
	// ServerInfo is the upstream's Implementation object, from initialize or
	// server/discover; nil when it sent none.
	ServerInfo json.RawMessage
	// Capabilities is the upstream's ServerCapabilities object.
	Capabilities json.RawMessage
	// Instructions is the upstream's natural-language guidance, if any.
	Instructions string
	// ProtocolVersion is the negotiated protocol version.
	ProtocolVersion string
	// Stateless is true in the 2026-07-28 era (no initialize, no session).
	Stateless bool
	// Streams is true when the upstream answered its list requests as
	// event streams (text/event-stream; the go-sdk does by default),
	// false when it answered with JSON (mcp-go does, unless it has
	// notifications to send first).
	Streams bool
}

// Defaults applied by New when the configuration leaves a field zero.
const (
	defaultTimeout          = 30 * time.Second
	defaultMaxResponseBytes = 16 << 20
	defaultMaxIdleConns     = 256
	defaultHealthInterval   = 5 * time.Second
	refreshDebounce         = 100 * time.Millisecond
	backoffFloor            = 100 * time.Millisecond
	backoffMax              = 5 * time.Second
	notifyTimeout           = 2 * time.Second // cancellation notices, DELETE
	maxListPages            = 1000
)

// errOwnTimeout matches (errors.Is) the *timeoutCauseError of a call context
// that hit the upstream's timeout rather than the caller's deadline.
var errOwnTimeout = errors.New("upstream timeout")

// Client is the gateway's connection to one upstream MCP server. It is safe
// for concurrent use.
type Client struct {
	name          string
	cfg           configs.Upstream
	log           *slog.Logger
	onChange      func(string)
	onListChanged func(upstream, method string)
	// announced are the list_changed methods the upstream sent since the
	// last re-discovery finished.
	announceMu     sync.Mutex
	announced      map[string]bool
	onUpdated      func(upstream, uri string)
	timeout        time.Duration
	maxResponse    int64
	healthInterval time.Duration
	clientInfo     []byte // {"name":…,"version":…}
	modernMeta     []byte // _meta members of every 2026-07-28 request
	dialer         dialer
	auth           *outbound // credential and identity assertion; nil: none
	obs            *observer // nil without telemetry

	nextID   atomic.Int64
	progress progressRegistry
	readers  sync.Pool // *bufio.Reader for event streams

	sess     atomic.Pointer[session]
	pool     *sessionPool // HTTP upstreams' call sessions; nil for stdio and SSE
	catalog  atomic.Pointer[Catalog]
	logLevel atomic.Pointer[string] // SetLogLevel's; nil: never asked
	subsMu   sync.Mutex
	subs     map[string]bool        // URIs subscribed with Subscribe
	downErr  atomic.Pointer[string] // why the upstream is down, for fast failures
	// attempted is set once the first connect-and-list attempt has
	// finished, answered or failed; see Attempted.
	attempted atomic.Bool

	breakers     *breakers
	onBreaker    func(upstream, tool, from, to string)
	bulk         *bulkhead
	rules        *toolRules
	toolTable    atomic.Pointer[map[string]toolPolicy] // per catalog
	defaultCause *timeoutCauseError
	attempts     int           // tries of a retryable call
	backoff      time.Duration // base of the retry backoff
	lastOK       atomic.Int64  // unix nanoseconds of the last answered exchange

	connectSem chan struct{} // one handshake at a time
	wake       chan struct{}
	pending    atomic.Uint32 // loop events

	life      context.Context
	stop      context.CancelFunc
	goMu      sync.Mutex
	stopping  bool
	wg        sync.WaitGroup
	startOnce sync.Once
	closeOnce sync.Once
}

// Loop events, set in Client.pending.
const (
	evRefresh  uint32 = 1 << iota // a list changed: re-discover (debounced)
	evProbe                       // a call failed in transport: probe now
	evRedetect                    // the session is stale: handshake again
)

// dialer opens sessions with one kind of transport.
type dialer interface {
	// connect opens a connection and performs the handshake. ctx bounds the
	// handshake; the session lives until it is closed.
	connect(ctx context.Context) (*session, error)
	// close releases what the dialer shares between sessions.
	close()
}

// conn is an open connection with a negotiated protocol era.
type conn interface {
	// roundTrip sends one request and waits for its response. progressToken,
	// when set, replaces params._meta.progressToken (encoded JSON).
	roundTrip(ctx context.Context, id int64, method string, params, progressToken []byte, o callOpts) (json.RawMessage, error)
	// cancelled tells the upstream that request id, made for the caller
	// who, is abandoned. It must not block.
	cancelled(id int64, reason string, who *Identity)
	// listen delivers server notifications outside calls until s ends.
	listen(s *session)
	// close ends the connection; graceful also ends the upstream session
	// (HTTP DELETE).
	close(graceful bool)
}

// callOpts are per-call transport details. They travel by value: a
// pointer passed through the conn interface escapes, which would cost the
// hot path one allocation per call.
type callOpts struct {
	requestID string
	// header holds extra HTTP headers (Request.Header).
	header http.Header
	// meta is a _meta fragment to add (the trace context).
	meta []byte
	// sessionID, when not nil, receives the Mcp-Session-Id response header.
	sessionID *string
	// caps and onRequest are Request.ClientCapabilities and
	// Request.OnServerRequest.
	caps      []byte
	onRequest func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// notify is Request.Notify.
	notify Notifier
	// call marks a request forwarded for a caller (Client.Call), as
	// opposed to the gateway's own traffic; identity is who the caller is,
	// nil on an unauthenticated gateway.
	call     bool
	identity *Identity
}

// session is one connection in a known protocol era.
type session struct {
	conn    conn
	modern  bool
	version string
	info    handshake
	caps    capabilities
	ctx     context.Context // ends when the session is closed
	cancel  context.CancelFunc
	once    sync.Once
	// relistened asks a stateless session's listen loop to open its
	// stream again, with the client's current resource subscriptions.
	relistened chan struct{}
	// pooled marks a session-era session of an upstream that keeps
	// sessions: forwarded calls go on the client's pool (pool.go), and
	// this session carries only the gateway's own traffic.
	pooled bool
}

// relisten asks for the listen stream to be opened again.
func (s *session) relisten() {
	select {
	case s.relistened <- struct{}{}:
	default:
	}
}

func (s *session) close(graceful bool) {
	s.once.Do(func() {
		s.cancel()
		s.conn.close(graceful)
	})
}

// handshake is what the upstream said about itself.
type handshake struct {
	serverInfo   json.RawMessage
	capabilities json.RawMessage
	instructions string
}

// capabilities are the parts of ServerCapabilities the client acts on.
type capabilities struct {
	tools, resources, prompts                                  bool
	toolsListChanged, resourcesListChanged, promptsListChanged bool
	resourcesSubscribe, logging                                bool
}

func parseCapabilities(raw []byte) capabilities {
	type feature struct {
		ListChanged bool `json:"listChanged"`
		Subscribe   bool `json:"subscribe"`
	}
	var w struct {
		Tools     *feature        `json:"tools"`
		Resources *feature        `json:"resources"`
		Prompts   *feature        `json:"prompts"`
		Logging   json.RawMessage `json:"logging"`
	}
	_ = json.Unmarshal(raw, &w)
	c := capabilities{logging: len(w.Logging) > 0 && string(w.Logging) != "null"}
	if w.Tools != nil {
		c.tools, c.toolsListChanged = true, w.Tools.ListChanged
	}
	if w.Resources != nil {
		c.resources, c.resourcesListChanged, c.resourcesSubscribe = true, w.Resources.ListChanged, w.Resources.Subscribe
	}
	if w.Prompts != nil {
		c.prompts, c.promptsListChanged = true, w.Prompts.ListChanged
	}
	return c
}

// New prepares a client for cfg, which configs.Validate has accepted: the
// configuration's rules live there, not here. Zero values get the configs
// defaults, so a configuration built in code needs no SetDefaults. New
// copies cfg; opts may be nil. It does not connect; Start does.
func New(cfg *configs.Upstream, opts *Options) (*Client, error) {
	if opts == nil {
		opts = &Options{}
	}
	c := &Client{
		name:           cfg.Name,
		cfg:            *cfg,
		log:            opts.Logger,
		onChange:       opts.OnChange,
		onListChanged:  opts.OnListChanged,
		onBreaker:      opts.OnBreakerChange,
		onUpdated:      opts.OnResourceUpdated,
		timeout:        cfg.Timeout,
		maxResponse:    cfg.MaxResponseBytes,
		healthInterval: opts.HealthInterval,
		connectSem:     make(chan struct{}, 1),
		wake:           make(chan struct{}, 1),
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.log = c.log.With(slog.String("upstream", cfg.Name), slog.String("transport", cfg.Transport()))
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	if c.maxResponse <= 0 {
		c.maxResponse = defaultMaxResponseBytes
	}
	if c.healthInterval <= 0 {
		c.healthInterval = defaultHealthInterval
	}
	c.newResilience(&c.cfg)
	name, version := opts.ClientName, opts.ClientVersion
	if name == "" {
		name = "mcpgw"
	}
	if version == "" {
		version = "dev"
	}
	info := rawjson.AppendString([]byte(`{"name":`), name)
	info = append(info, `,"version":`...)
	info = rawjson.AppendString(info, version)
	c.clientInfo = append(info, '}') //nolint:gocritic // info is a fresh buffer built for clientInfo.
	c.modernMeta = c.metaFor(mcpwire.Version20260728)
	c.life, c.stop = context.WithCancel(context.Background())

	var err error
	if c.auth, err = newOutbound(&c.cfg, opts); err != nil {
		return nil, fmt.Errorf("upstream %q: %w", cfg.Name, err)
	}
	switch {
	case cfg.HTTP != nil:
		c.dialer, err = newHTTPDialer(c)
	case cfg.Stdio != nil:
		c.dialer = newStdioDialer(c)
	case cfg.SSE != nil:
		c.dialer = newSSEDialer(c)
	default:
		// Not a configuration rule (Validate has it): there is no client
		// without a dialer.
		return nil, fmt.Errorf("upstream %q: no transport set", cfg.Name)
	}
	if err != nil {
		return nil, err
	}
	c.obs = newObserver(c, opts.Telemetry)
	return c, nil
}

// metaFor returns the _meta members every stateless-era request carries
// (2026-07-28 changelog §2, basic/transports/streamable-http "Request
// Metadata"). Without a downstream client behind the request the gateway
// declares only MCP Apps (apps.go); a forwarded call declares the
// downstream client's (Request.ClientCapabilities), MCP Apps added.
func (c *Client) metaFor(version string) []byte {
	return append(c.metaPrefix(version), gatewayCapabilities...)
}

// metaPrefix is the stateless-era _meta members up to the value of
// clientCapabilities.
func (c *Client) metaPrefix(version string) []byte {
	m := rawjson.AppendString(nil, mcpwire.MetaProtocolVersion)
	m = append(m, ':')
	m = rawjson.AppendString(m, version)
	m = append(m, ',')
	m = rawjson.AppendString(m, mcpwire.MetaClientInfo)
	m = append(m, ':')
	m = append(m, c.clientInfo...)
	m = append(m, ',')
	m = rawjson.AppendString(m, mcpwire.MetaClientCapabilities)
	return append(m, ':')
}

// secretValue is the value of a secret: the resolved one after config
// loading, the inline value otherwise (configurations built in code).
func secretValue(r configs.SecretRef) string {
	if r.Resolved != "" {
		return r.Resolved.Reveal()
	}
	return r.Value.Reveal()
}

// Name returns the upstream's name.
func (c *Client) Name() string { return c.name }

// Start starts the background loop that connects, discovers, refreshes and
// health-checks the upstream. It returns at once; calling it again does
// nothing.
func (c *Client) Start() {
	c.startOnce.Do(func() {
		c.goSafe("loop", c.runLoop)
		if c.pool != nil {
			c.goSafe("sweep", c.pool.sweepLoop)
		}
	})
}

// Close stops the loop, ends the upstream session (DELETE for an HTTP
// session), stops a child process, and waits for the client's goroutines.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.goMu.Lock()
		c.stopping = true
		c.goMu.Unlock()
		c.stop()
		c.wg.Wait()
		if s := c.sess.Swap(nil); s != nil {
			s.close(true)
		}
		if c.pool != nil {
			c.pool.close()
		}
		c.dialer.close()
	})
	return nil
}

// Attempted reports whether the first attempt to connect and list the
// upstream's catalog has finished, whether it answered (Catalog is then
// non-nil) or failed: refused, timed out after the handshake timeout, or
// answered with an error. The change is signalled through
// Options.OnChange, so a readiness check that waits for it never waits
// forever on an upstream that is down.
func (c *Client) Attempted() bool { return c.attempted.Load() }

// Catalog returns the last discovered catalog (nil before the first
// discovery) and whether the upstream is currently available.
func (c *Client) Catalog() (*Catalog, bool) {
	return c.catalog.Load(), c.sess.Load() != nil
}

// Call forwards one request and returns the upstream's raw result. A
// JSON-RPC error of the upstream is returned as *RPCError; every other
// failure is an *Error naming the upstream and wrapping a sentinel.
//
// On its way the call passes the circuit breaker (ErrCircuitOpen when it
// refuses), takes a bulkhead slot (ErrBusy), gets its tool's timeout
// (ErrTimeout, with notifications/cancelled sent upstream) and, when it is
// safe, is retried after transient failures within that one deadline.
func (c *Client) Call(ctx context.Context, req *Request) (json.RawMessage, error) {
	if c.obs != nil {
		return c.obs.call(ctx, req)
	}
	return c.call(ctx, req)
}

// call is Call without telemetry.
func (c *Client) call(ctx context.Context, req *Request) (json.RawMessage, error) {
	b := c.breakers.pick(c.name, req)
	if b == nil {
		return c.guarded(ctx, req)
	}
	done, err := b.cb.Allow()
	if err != nil {
		return nil, c.circuitOpen(b, req.Tool, err)
	}
	res, err := c.guarded(ctx, req)
	done(err)
	return res, err
}

// guarded runs req inside a bulkhead slot, under its timeout, with retries
// where they are safe.
func (c *Client) guarded(ctx context.Context, req *Request) (json.RawMessage, error) {
	if err := c.bulk.acquire(ctx); err != nil {
		return nil, c.busy(err)
	}
	defer c.bulk.release()
	p := c.policyFor(req)
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > p.cause.d {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, p.cause.d, p.cause)
		defer cancel()
	}
	return c.withRetries(ctx, req, c.retryable(req, p))
}

// callSession sends req once over the current session, and once more over
// a new one when the session expired and req is idempotent.
func (c *Client) callSession(ctx context.Context, req *Request) (json.RawMessage, error) {
	s := c.sess.Load()
	if s == nil {
		return nil, c.downError()
	}
	if s.pooled {
		return c.callPooled(ctx, s, req)
	}
	res, err := c.callOnce(ctx, s, s.conn, req)
	if err != nil && errors.Is(err, errSessionExpired) {
		ns, rerr := c.renew(ctx, s)
		if rerr != nil {
			return nil, c.ctxError(ctx, rerr)
		}
		if !req.Idempotent {
			return nil, c.fail(ErrUnavailable, "session expired and was re-initialized; the request was not retried", errSessionExpired)
		}
		if ns.pooled {
			return c.callPooled(ctx, ns, req)
		}
		res, err = c.callOnce(ctx, ns, ns.conn, req)
	}
	return res, err
}

// callOnce sends req once over cn, which is s's connection or, for an
// upstream that keeps sessions, a pooled session of the caller's.
func (c *Client) callOnce(ctx context.Context, s *session, cn conn, req *Request) (json.RawMessage, error) {
	id := c.nextID.Add(1)
	var token []byte
	if req.ProgressToken != nil {
		var key string
		token, key = c.progress.register(req.ProgressToken, req.OnProgress)
		defer c.progress.unregister(key)
	}
	meta := req.traceMeta
	if req.LogLevel != "" && s.modern {
		meta = appendLogLevel(meta, req.LogLevel)
	}
	res, err := cn.roundTrip(ctx, id, req.Method, req.Params, token, callOpts{
		requestID: req.RequestID, header: req.Header, meta: meta, caps: declareUI(req.ClientCapabilities),
		onRequest: req.OnServerRequest, notify: req.Notify, call: true, identity: req.Identity,
	})
	if err == nil {
		c.lastOK.Store(time.Now().UnixNano())
		return res, nil
	}
	if ctx.Err() != nil {
		reason := "request cancelled"
		var tc *timeoutCauseError
		if errors.As(context.Cause(ctx), &tc) {
			reason = "timed out after " + tc.d.String()
		}
		cn.cancelled(id, reason, req.Identity)
		return nil, c.ctxError(ctx, err)
	}
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		c.lastOK.Store(time.Now().UnixNano())
		if s.modern {
			switch rpcErr.Code {
			case mcpwire.CodeUnsupportedVersion:
				// The upstream no longer speaks the version detected:
				// detect again (2026-07-28 basic/versioning: re-probe when
				// the cached era assumption fails).
				c.kick(evRedetect)
			case mcpwire.CodeHeaderMismatch:
				// Possibly a changed x-mcp-header annotation: the spec says
				// to check tools/list for changes (Client Behavior).
				c.kick(evRefresh)
			}
		}
		return nil, err
	}
	if isTransportError(err) {
		c.kick(evProbe)
	}
	return nil, err
}

// downError is the error of a call while no session is up.
func (c *Client) downError() error {
	if c.life.Err() != nil {
		return c.fail(ErrClosed, "", nil)
	}
	var cause error
	if why := c.downErr.Load(); why != nil {
		cause = errors.New(*why)
	}
	return c.fail(ErrUnavailable, "upstream is down", cause)
}

// setDownErr records why the upstream is down, without the upstream name
// and sentinel that the fast failures carry themselves.
func (c *Client) setDownErr(err error) {
	msg := err.Error()
	var e *Error
	if errors.As(err, &e) {
		parts := make([]string, 0, 2)
		if e.Detail != "" {
			parts = append(parts, e.Detail)
		}
		if e.Err != nil {
			parts = append(parts, e.Err.Error())
		}
		msg = strings.Join(parts, ": ")
	}
	c.downErr.Store(&msg)
}

// wrap makes err, a failure to open or use a session, an *Error of this
// upstream that keeps the sentinel of err when it has one.
func (c *Client) wrap(detail string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		d := detail
		if e.Detail != "" {
			d += ": " + e.Detail
		}
		return &Error{Upstream: c.name, Kind: e.Kind, Detail: d, Err: e.Err, Status: e.Status}
	}
	var rpcErr *RPCError
	if errors.As(err, &rpcErr) {
		// A JSON-RPC error of the handshake is not an answer to the
		// caller's request; keep it out of errors.As reach.
		err = errors.New(rpcErr.Error())
	}
	return c.fail(ErrUnavailable, detail, err)
}

// ctxError maps err to the context's error when ctx ended.
func (c *Client) ctxError(ctx context.Context, err error) error {
	if ctx.Err() == nil {
		return err
	}
	var tc *timeoutCauseError
	if errors.As(context.Cause(ctx), &tc) {
		e := c.fail(ErrTimeout, "no response within "+tc.d.String(), context.DeadlineExceeded)
		e.Timeout = tc.d
		return e
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return c.fail(ErrTimeout, "caller deadline exceeded", context.DeadlineExceeded)
	}
	return &Error{Upstream: c.name, Detail: "call cancelled", Err: ctx.Err()}
}

// fail builds an *Error of this upstream.
func (c *Client) fail(kind error, detail string, cause error) *Error {
	return &Error{Upstream: c.name, Kind: kind, Detail: detail, Err: cause}
}

// transportError marks a failure to exchange bytes with the upstream at all
// (as opposed to an answer the client did not like).
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func (c *Client) transportFail(detail string, err error) *Error {
	return c.fail(ErrUnavailable, detail, &transportError{err})
}

func isTransportError(err error) bool {
	var te *transportError
	return errors.As(err, &te)
}

// rpc sends an internal request (discovery, probes) over s.
func (c *Client) rpc(ctx context.Context, s *session, method string, params []byte) (json.RawMessage, error) {
	res, err := s.conn.roundTrip(ctx, c.nextID.Add(1), method, params, nil, callOpts{})
	var rpcErr *RPCError
	if err == nil || errors.As(err, &rpcErr) {
		c.lastOK.Store(time.Now().UnixNano())
	}
	return res, err
}

// goSafe runs fn on a goroutine that Close waits for, recovering panics. It
// reports false when the client is closing and fn was not started.
func (c *Client) goSafe(what string, fn func()) bool {
	c.goMu.Lock()
	if c.stopping {
		c.goMu.Unlock()
		return false
	}
	c.wg.Add(1)
	c.goMu.Unlock()
	go func() {
		defer c.wg.Done()
		c.recovered(what, fn)
	}()
	return true
}

// recovered runs fn and reports whether it returned without panicking.
func (c *Client) recovered(what string, fn func()) (ok bool) {
	defer func() {
		if r := recover(); r != nil {
			c.log.ErrorContext(c.life, "panic in upstream goroutine", slog.String("goroutine", what), slog.String("panic", fmt.Sprint(r)))
			ok = false
		}
	}()
	fn()
	return true
}

// kick asks the loop to handle events.
func (c *Client) kick(ev uint32) {
	c.pending.Or(ev)
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *Client) changed() {
	if c.onChange != nil {
		c.onChange(c.name)
	}
}

// sleep waits d or until the client closes.
func (c *Client) sleep(d time.Duration) { backoff.Wait(c.life, d) }

// reconnectBackoff is the wait between tries to reach a down upstream, or
// to re-open its notification stream.
func reconnectBackoff() backoff.Exponential {
	return backoff.Exponential{Initial: backoffFloor, Max: backoffMax, Jitter: true}
}

// runLoop runs the loop, restarting it after a panic.
func (c *Client) runLoop() {
	for c.life.Err() == nil {
		if !c.recovered("loop", c.run) {
			c.sleep(time.Second)
		}
	}
}

// run is the background loop: connect with backoff while down; while up,
// re-discover on list changes, probe when idle or after a failed call.
func (c *Client) run() {
	bo := reconnectBackoff()
	var refreshAt time.Time
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	failures := 0
	for c.life.Err() == nil {
		s := c.sess.Load()
		if s == nil {
			if c.reconnect(&bo, &failures) {
				refreshAt = time.Time{}
			}
			continue
		}

		next := time.Unix(0, c.lastOK.Load()).Add(c.healthInterval)
		if !refreshAt.IsZero() && refreshAt.Before(next) {
			next = refreshAt
		}
		timer.Reset(max(time.Until(next), 0))
		select {
		case <-c.life.Done():
			return
		case <-c.wake:
			c.handleEvents(s, &refreshAt)
		case <-timer.C:
			now := time.Now()
			if !refreshAt.IsZero() && !now.Before(refreshAt) {
				refreshAt = time.Time{}
				c.refresh(s)
				continue
			}
			if now.Sub(time.Unix(0, c.lastOK.Load())) >= c.healthInterval {
				c.probe(s)
			}
		}
	}
}

// reconnect tries once to connect a down upstream and reports whether it
// did. After a failure it waits the next backoff delay; failures counts
// them, so only the first of a run is logged as a warning.
func (c *Client) reconnect(bo *backoff.Exponential, failures *int) bool {
	err := c.connect()
	if err == nil {
		*failures = 0
		bo.Reset()
		return true
	}
	if c.life.Err() != nil {
		return false
	}
	c.setDownErr(err)
	if !c.attempted.Swap(true) {
		// The first attempt failed: whoever waits for it stops waiting.
		c.changed()
	}
	if isTransportError(err) {
		// Unreachable: every tool fails alike (a killed process, a
		// refused or reset connection), so every breaker hears it.
		c.breakers.failAll(err)
	}
	*failures++
	if *failures == 1 {
		c.log.WarnContext(c.life, "upstream connect failed", slog.Any("error", err))
	} else {
		c.log.DebugContext(c.life, "upstream connect failed", slog.Any("error", err), slog.Int("attempt", *failures))
	}
	c.sleep(bo.Next())
	return false
}

// handleEvents acts on the events kicked to the loop while s is up: a
// stale session is renewed, a failed call triggers a probe, a changed list
// schedules a debounced refresh at *refreshAt.
func (c *Client) handleEvents(s *session, refreshAt *time.Time) {
	ev := c.pending.Swap(0)
	if ev&evRedetect != 0 {
		_, _ = c.renew(c.life, s)
		return
	}
	if ev&evProbe != 0 && !c.probe(s) {
		return
	}
	if ev&evRefresh != 0 && refreshAt.IsZero() {
		*refreshAt = time.Now().Add(refreshDebounce)
	}
}

// handshakeTimeout bounds one connect or probe.
func (c *Client) handshakeTimeout() time.Duration { return c.timeout }

// connect opens a session, discovers the catalog and publishes both.
func (c *Client) connect() error {
	select {
	case c.connectSem <- struct{}{}:
	case <-c.life.Done():
		return c.life.Err()
	}
	defer func() { <-c.connectSem }()
	ctx, cancel := context.WithTimeout(c.life, c.handshakeTimeout())
	defer cancel()
	s, err := c.dialer.connect(ctx)
	if err != nil {
		return c.wrap("connecting", err)
	}
	if !c.goSafe("listen", func() { s.conn.listen(s) }) {
		s.close(true)
		return c.fail(ErrClosed, "", nil)
	}
	cat, err := c.discover(ctx, s)
	if err != nil {
		s.close(true)
		return c.wrap("discovering", err)
	}
	if err := c.sendLogLevel(ctx, s); err != nil {
		c.log.WarnContext(ctx, "setting the upstream log level failed", slog.Any("error", err))
	}
	c.resubscribe(ctx, s)
	c.lastOK.Store(time.Now().UnixNano())
	c.setCatalog(cat)
	c.sess.Store(s)
	c.attempted.Store(true)
	c.log.InfoContext(ctx, "upstream available", slog.String("protocol_version", s.version), slog.Bool("stateless", s.modern),
		slog.Int("tools", len(cat.Tools)), slog.Int("resources", len(cat.Resources)), slog.Int("prompts", len(cat.Prompts)))
	c.changed()
	return nil
}

// renew replaces the session old after it went stale (HTTP 404 on its
// session id, or a stateless upstream that stopped accepting our version).
// It returns the current session; concurrent callers share one handshake.
func (c *Client) renew(ctx context.Context, old *session) (*session, error) {
	select {
	case c.connectSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-c.connectSem }()
	if cur := c.sess.Load(); cur != old {
		if cur == nil {
			return nil, c.downError()
		}
		return cur, nil
	}
	hctx, cancel := context.WithTimeout(ctx, c.handshakeTimeout())
	defer cancel()
	s, err := c.dialer.connect(hctx)
	if err != nil {
		err = c.wrap("re-initializing the session", err)
		if ctx.Err() == nil {
			c.drop(old, err)
		}
		return nil, err
	}
	// x-mcp-header bindings stay valid until the refresh below replaces
	// them; without them, calls in between would be rejected.
	if oc, ok := old.conn.(*httpConn); ok {
		if nc, ok := s.conn.(*httpConn); ok && nc.modern {
			nc.toolHeaders.Store(oc.toolHeaders.Load())
		}
	}
	if !c.goSafe("listen", func() { s.conn.listen(s) }) {
		s.close(true)
		return nil, c.fail(ErrClosed, "", nil)
	}
	if err := c.sendLogLevel(hctx, s); err != nil {
		c.log.WarnContext(ctx, "setting the upstream log level failed", slog.Any("error", err))
	}
	c.resubscribe(hctx, s)
	if !c.sess.CompareAndSwap(old, s) {
		s.close(true)
		return nil, c.downError()
	}
	c.log.InfoContext(ctx, "upstream session renewed", slog.String("protocol_version", s.version), slog.Bool("stateless", s.modern))
	old.close(false)
	if c.pool != nil {
		c.pool.forgetIdle() // the upstream forgot the old session: those too
	}
	c.kick(evRefresh) // the upstream restarted: its lists may have changed
	return s, nil
}

// drop marks the upstream down if s is still its session.
func (c *Client) drop(s *session, cause error) {
	if !c.sess.CompareAndSwap(s, nil) {
		return
	}
	if c.life.Err() != nil {
		s.close(true)
		return
	}
	c.setDownErr(cause)
	if c.pool != nil {
		c.pool.forgetIdle() // an upstream that comes back has forgotten them
	}
	c.log.WarnContext(c.life, "upstream unavailable", slog.Any("error", cause))
	c.goSafe("close-session", func() { s.close(false) })
	c.changed()
	c.kick(0)
}

// probe checks that s still answers: ping, or server/discover in the
// stateless era, which removed ping (2026-07-28 changelog §5). A JSON-RPC
// error counts as alive. It reports whether s is still the session.
func (c *Client) probe(s *session) bool {
	ctx, cancel := context.WithTimeout(c.life, min(c.handshakeTimeout(), max(c.healthInterval, time.Second)))
	defer cancel()
	method := mcpwire.MethodPing
	if s.modern {
		method = mcpwire.MethodDiscover
	}
	_, err := c.rpc(ctx, s, method, nil)
	var rpcErr *RPCError
	switch {
	case err == nil, errors.As(err, &rpcErr):
		return true
	case c.life.Err() != nil:
		return false
	case errors.Is(err, errSessionExpired):
		_, err = c.renew(c.life, s)
		return err == nil
	default:
		c.drop(s, err)
		return false
	}
}

// refresh re-discovers the catalog over s and publishes it when it changed.
func (c *Client) refresh(s *session) {
	ctx, cancel := context.WithTimeout(c.life, c.handshakeTimeout())
	defer cancel()
	cat, err := c.discoverWithRetries(ctx, s)
	if err != nil {
		if c.life.Err() != nil {
			return
		}
		c.log.WarnContext(ctx, "upstream re-discovery failed", slog.Any("error", err))
		switch {
		case errors.Is(err, errSessionExpired):
			_, _ = c.renew(c.life, s)
		case isTransportError(err):
			c.probe(s)
		}
		return
	}
	defer c.announce()
	if old := c.catalog.Load(); old != nil && old.equal(cat) {
		return
	}
	c.setCatalog(cat)
	c.log.InfoContext(ctx, "upstream catalog changed", slog.Int("tools", len(cat.Tools)), slog.Int("resources", len(cat.Resources)), slog.Int("prompts", len(cat.Prompts)))
	c.changed()
}

// announce tells Options.OnListChanged of the list_changed notifications
// a finished re-discovery covered.
func (c *Client) announce() {
	c.announceMu.Lock()
	methods := c.announced
	c.announced = nil
	c.announceMu.Unlock()
	if c.onListChanged == nil {
		return
	}
	for m := range methods {
		c.onListChanged(c.name, m)
	}
}

// onNotification handles a notification from any stream of the upstream.
func (c *Client) onNotification(method string, params []byte) {
	switch method {
	case mcpwire.NotifyProgress:
		if !c.progress.dispatch(params) {
			c.log.DebugContext(c.life, "progress for an unknown token dropped")
		}
	case mcpwire.NotifyResourceUpdated:
		uri, ok := rawjson.DecodeString(rawjson.Member(params, "uri"))
		if ok && c.onUpdated != nil {
			c.onUpdated(c.name, uri)
		}
	case mcpwire.NotifyToolsChanged, mcpwire.NotifyResourcesChanged, mcpwire.NotifyPromptsChanged:
		c.log.DebugContext(c.life, "upstream list changed", slog.String("method", method))
		c.announceMu.Lock()
		if c.announced == nil {
			c.announced = map[string]bool{}
		}
		c.announced[method] = true
		c.announceMu.Unlock()
		c.kick(evRefresh)
	default:
		c.log.DebugContext(c.life, "upstream notification ignored", slog.String("method", method))
	}
}

// relayed reports whether a notification on a call's response stream goes
// to the call's Notifier: all but those the client acts on itself.
func relayed(method string) bool {
	switch method {
	case mcpwire.NotifyProgress, mcpwire.NotifyToolsChanged, mcpwire.NotifyResourcesChanged,
		mcpwire.NotifyPromptsChanged, mcpwire.NotifyResourceUpdated:
		return false
	default:
		return true
	}
}

// appendLogLevel returns the _meta fragment meta with the log level added,
// in a new buffer (meta may be shared).
func appendLogLevel(meta []byte, level string) []byte {
	out := make([]byte, 0, len(meta)+len(mcpwire.MetaLogLevel)+len(level)+8)
	out = append(out, meta...)
	if len(out) > 0 {
		out = append(out, ',')
	}
	out = rawjson.AppendString(out, mcpwire.MetaLogLevel)
	out = append(out, ':')
	return rawjson.AppendString(out, level)
}

// SetLogLevel asks a session-era upstream to send log messages of level
// and above (logging/setLevel, 2025-11-25 server/utilities/logging). The
// upstream session is shared by every downstream client, so the most
// verbose level ever asked is kept, sent once, and sent again on each new
// session; the gateway filters what each client gets. A 2026-07-28
// upstream has no session level (Request.LogLevel carries it per request),
// nor does an upstream without the logging capability: then nothing is
// sent. It reports the upstream's error, if any.
func (c *Client) SetLogLevel(ctx context.Context, level string) error {
	rank := mcpwire.LogLevelRank(level)
	if rank < 0 {
		return c.fail(ErrBadRequest, "unknown log level "+level, nil)
	}
	for {
		cur := c.logLevel.Load()
		if cur != nil && mcpwire.LogLevelRank(*cur) <= rank {
			return nil
		}
		if c.logLevel.CompareAndSwap(cur, &level) {
			break
		}
	}
	s := c.sess.Load()
	if s == nil {
		return nil // sent by connect
	}
	return c.sendLogLevel(ctx, s)
}

// sendLogLevel sends the kept log level to a session-era upstream that
// offers logging.
func (c *Client) sendLogLevel(ctx context.Context, s *session) error {
	level := c.logLevel.Load()
	if level == nil || s.modern || !s.caps.logging {
		return nil
	}
	params := rawjson.AppendString([]byte(`{"level":`), *level)
	_, err := c.rpc(ctx, s, mcpwire.MethodSetLevel, append(params, '}'))
	return err
}

// Subscribe asks the upstream for notifications/resources/updated of uri
// (2025-11-25 server/resources, "Subscriptions"), delivered to
// Options.OnResourceUpdated. The subscription is the client's, not a
// session's: it is made again on every new session (a reconnect, a
// renewed session) until Unsubscribe. A session-era upstream gets
// resources/subscribe; a 2026-07-28 one, which has no such method, gets it
// in the resourceSubscriptions of its subscriptions/listen stream, which
// is opened again with the new set (basic/utilities/subscriptions).
func (c *Client) Subscribe(ctx context.Context, uri string) error {
	c.subsMu.Lock()
	if c.subs == nil {
		c.subs = make(map[string]bool)
	}
	had := c.subs[uri]
	c.subs[uri] = true
	c.subsMu.Unlock()
	if had {
		return nil
	}
	err := c.sendSubscription(ctx, mcpwire.MethodSubscribe, uri)
	if err != nil {
		c.subsMu.Lock()
		delete(c.subs, uri)
		c.subsMu.Unlock()
	}
	return err
}

// Unsubscribe ends a subscription made with Subscribe.
func (c *Client) Unsubscribe(ctx context.Context, uri string) error {
	c.subsMu.Lock()
	had := c.subs[uri]
	delete(c.subs, uri)
	c.subsMu.Unlock()
	if !had {
		return nil
	}
	return c.sendSubscription(ctx, mcpwire.MethodUnsubscribe, uri)
}

// subscribed lists the URIs subscribed with Subscribe.
func (c *Client) subscribed() []string {
	c.subsMu.Lock()
	defer c.subsMu.Unlock()
	out := make([]string, 0, len(c.subs))
	for uri := range c.subs {
		out = append(out, uri)
	}
	slices.Sort(out)
	return out
}

// sendSubscription sends resources/subscribe or resources/unsubscribe over
// the current session; a stateless one re-opens its listen stream instead.
// While the upstream is down there is nothing to send: connect subscribes.
func (c *Client) sendSubscription(ctx context.Context, method, uri string) error {
	s := c.sess.Load()
	if s == nil {
		return nil
	}
	if s.modern {
		s.relisten()
		return nil
	}
	params := rawjson.AppendString([]byte(`{"uri":`), uri)
	_, err := c.rpc(ctx, s, method, append(params, '}'))
	return err
}

// resubscribe makes the client's subscriptions on a new session-era
// session; a stateless session's listen stream carries them.
func (c *Client) resubscribe(ctx context.Context, s *session) {
	if s.modern {
		return
	}
	for _, uri := range c.subscribed() {
		params := rawjson.AppendString([]byte(`{"uri":`), uri)
		if _, err := c.rpc(ctx, s, mcpwire.MethodSubscribe, append(params, '}')); err != nil {
			c.log.WarnContext(ctx, "resubscribing to an upstream resource failed", slog.String("uri", uri), slog.Any("error", err))
		}
	}
}
