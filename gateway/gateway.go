// Package gateway is the composition root of mcpgw: the HTTP chain, the /mcp
// endpoint for both protocol eras, the route table and the call path shared
// by every method, health endpoints, and the runtime that reloads build and
// swap.
package gateway

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/upstream"
)

// Options are the process-level inputs of a Gateway that do not come from
// the configuration file.
type Options struct {
	// Logger receives the process log. Nil discards it.
	Logger *slog.Logger
	// Version is the mcpgw version, reported as serverInfo.version.
	Version string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// HealthInterval is how often idle upstreams are pinged; zero means the
	// upstream package's default.
	HealthInterval time.Duration
	// Telemetry receives spans and metrics; nil records nothing and costs
	// the call path one nil check.
	Telemetry *telemetry.Telemetry
	// LogLevel is the level of Logger, changed by PUT /admin/v1/loglevel;
	// nil leaves the endpoint out.
	LogLevel *slog.LevelVar
	// ConfigPath is the file the configuration was loaded from: the lock
	// file of pinned tool contracts is beside it unless pinning.lock_file
	// says otherwise. Empty means the working directory.
	ConfigPath string

	// dial builds the upstreams; nil means real clients (dialClient). The
	// package's tests set it to dial in-memory fakes.
	dial dialer
	// auditTo, when set, takes the audit stream instead of the configured
	// sinks (the package's tests).
	auditTo io.Writer
	// cancels, when set, relays cancellations between replicas instead of
	// Redis (the package's tests).
	cancels cancelBus
}

// Gateway serves MCP hosts and forwards to upstream MCP servers.
type Gateway struct {
	cfg     *configs.Config
	log     *slog.Logger
	version string
	// modernHead starts every result object the gateway itself produces
	// for a 2026-07-28 client: resultType and the server's identity in
	// _meta (SEP-2575), encoded once.
	modernHead []byte
	now        func() time.Time

	rt        atomic.Pointer[runtime]
	sessions  *sessions
	listeners listeners
	subs      subscriptions
	mrtr      *mrtr
	controls  *controls
	// auth verifies bearer tokens; nil when the gateway is unauthenticated.
	auth    *authn.Authenticator
	handler http.Handler
	// healthInterval is Options.HealthInterval, for runtimes built on
	// reload.
	healthInterval time.Duration
	// reloadMu serialises reloads; reloads counts them.
	reloadMu sync.Mutex
	reloads  reloadCounts
	// tel receives spans and metrics; nil without telemetry.
	tel *telemetry.Telemetry
	// asserter signs identity assertions for upstreams; one per process,
	// so its key set stays valid across reloads.
	asserter *upstream.Asserter
	// dial builds upstreams (Options.dial).
	dial dialer
	// cancels relays notifications/cancelled to the replica running the
	// call (cancels.go); nil without Redis.
	cancels cancelBus
	// configPath is Options.ConfigPath, then the path of the last
	// ReloadFile; contracts checks tools against their pins.
	configPath string
	contracts  *contractWatch

	// auditRefused counts destructive calls refused while the audit
	// stream was stuck or failing.
	auditRefusals atomic.Uint64
	// unauthenticatedRefused counts requests refused because
	// server.max_unauthenticated requests were being authenticated.
	unauthenticatedRefused atomic.Uint64
	// authSlots are the server.max_unauthenticated slots of requests
	// being authenticated, shared by every endpoint (limits.go).
	authSlots chan struct{}
	// obs records spans and metrics; nil without telemetry.
	obs      *observer
	logLevel *slog.LevelVar
	// consoleKey signs the console's CSRF tokens; derived from the
	// session key, so replicas sharing it agree.
	consoleKey []byte

	// stopping is set when shutdown starts: /readyz answers 503.
	stopping atomic.Bool
	// draining is set once server.shutdown_delay has passed: new calls are
	// refused, GET streams end.
	draining atomic.Bool
	drained  chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// New validates cfg and builds a Gateway; nil opts means the zero Options.
// It does not connect upstreams or listen; call Start, then serve Handler.
func New(cfg *configs.Config, opts *Options) (*Gateway, error) {
	if opts == nil {
		opts = &Options{}
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	g := &Gateway{
		cfg:     cfg,
		log:     opts.Logger,
		version: opts.Version,
		now:     opts.Now,
		drained: make(chan struct{}),
		stop:    make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.now == nil {
		g.now = time.Now
	}
	if g.version == "" {
		g.version = "dev"
	}
	info, _ := json.Marshal(g.serverInfo())
	g.modernHead = fmt.Appendf(nil, `{"%s":"%s","_meta":{"%s":%s}`, mcpwire.ResultTypeKey, mcpwire.ResultComplete, mcpwire.MetaServerInfo, info)
	key, err := decodeKey(cfg.Server.SessionKey.Resolved.Reveal())
	if err != nil {
		return nil, fmt.Errorf("server.session_key: %w", err)
	}
	if key == nil {
		// One random key per process, shared by sessions and requestStates.
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating session key: %w", err)
		}
	}
	g.consoleKey = deriveKey(key, "mcpgw console csrf v1")
	if g.mrtr, err = newMRTR(key, cfg.Server.MRTRStateTTL, cfg.Server.MRTRHoldTimeout, g.now); err != nil {
		return nil, err
	}
	if cfg.Auth != nil {
		if g.auth, err = authn.New(cfg.Auth, authn.Options{Logger: g.log, Now: g.now}); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
	}
	g.controls, err = newControls(context.Background(), cfg, controlsDeps{
		log: g.log, now: g.now,
		knownUpstreams: g.upstreamNames,
		onChange:       g.switchesChanged,
		onApproval:     g.approvalsChanged,
		auditTo:        opts.auditTo,
	})
	if err != nil {
		return nil, err
	}
	var graves tombstones
	if g.controls.redis != nil {
		graves = &redisGraves{rc: g.controls.redis, prefix: cfg.Redis.KeyPrefix, log: g.log}
		g.cancels = newRedisCancels(g.controls.redis, cfg.Redis.KeyPrefix)
	}
	if opts.cancels != nil {
		g.cancels = opts.cancels
	}
	g.sessions, err = newSessions(key, cfg.Server.SessionIdleTTL, cfg.Server.SessionMaxAge, graves, g.now)
	if err != nil {
		_ = g.controls.close(context.Background())
		return nil, err
	}
	g.sessions.replay = newReplayBudget(cfg.Server.SSE, g.now)
	g.sessions.onResume = func(s *session) {
		g.log.Info("session resumed", slog.String("session", s.digest), slog.String("protocol_version", s.protocolVersion))
	}
	g.authSlots = make(chan struct{}, cfg.Server.MaxUnauthenticated)
	g.healthInterval = opts.HealthInterval
	g.dial = opts.dial
	g.tel = opts.Telemetry
	g.configPath = opts.ConfigPath
	g.contracts = &contractWatch{
		log: g.log.With(slog.String("component", "pinning")), now: g.now,
		approvals: g.controls.approvals, audit: g.controls.audit, metrics: g.tel.Metrics(),
	}
	if g.asserter, err = upstream.NewAsserter(g.now); err != nil {
		_ = g.controls.close(context.Background())
		return nil, err
	}
	rt, err := newRuntime(cfg, g.runtimeDeps(cfg, nil))
	if err != nil {
		_ = g.controls.close(context.Background())
		return nil, err
	}
	g.rt.Store(rt)
	if err := g.initTelemetry(opts); err != nil {
		rt.close()
		_ = g.controls.close(context.Background())
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	g.handler = g.buildHandler()
	return g, nil
}

// decodeKey accepts a 32-byte key as hex or base64; empty means generate.
func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("must be 32 bytes, hex or base64 encoded")
}

// deriveKey derives a key for one purpose from the session key.
func deriveKey(key []byte, purpose string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(purpose))
	return m.Sum(nil)
}

// runtimeDeps are the dependencies of a runtime built from cfg that
// replaces prev (nil for the first).
func (g *Gateway) runtimeDeps(cfg *configs.Config, prev *runtime) *runtimeDeps {
	return &runtimeDeps{
		log: g.log, now: g.now, version: g.version, healthInterval: g.healthInterval,
		onChange: g.catalogChanged, onAnnounce: g.listsAnnounced, hidden: g.hidden, signal: g.signal, resourceUpdated: g.resourceUpdated, asserter: g.asserter, tel: g.tel,
		redis: g.controls.redis, prev: prev, dial: g.dial, onBreaker: g.breakerChanged,
		lockFile: cfg.LockFilePath(g.configPath), contracts: g.contracts,
		serveEndpoint: g.serveEndpoint,
	}
}

// signal asks the current runtime to rebuild its catalog.
func (g *Gateway) signal() {
	if rt := g.rt.Load(); rt != nil {
		rt.signal()
	}
}

// switchesChanged rebuilds the current runtime's catalog at once, without
// the debounce of upstream changes: the lists hide a killed tool as soon
// as the admin call that set the switch returns (the switches call it
// before Add and Remove return), and list_changed goes out with it.
func (g *Gateway) switchesChanged() {
	if rt := g.rt.Load(); rt != nil {
		rt.rebuild()
	}
}

// acquire returns the current runtime for one call; the caller releases
// it. A runtime a reload retired is not handed out once it has begun
// waiting for its calls, so that waiting is exact: every call either holds
// the runtime it started with, or moved to the new one.
func (g *Gateway) acquire() *runtime {
	for {
		rt := g.rt.Load()
		rt.inflight.Add(1)
		if !rt.retiring.Load() {
			return rt
		}
		rt.release()
	}
}

// upstreamNames lists the configured upstreams.
func (g *Gateway) upstreamNames() []string {
	cfg := g.cfg
	if rt := g.rt.Load(); rt != nil {
		cfg = rt.cfg
	}
	names := make([]string, len(cfg.Upstreams))
	for i := range cfg.Upstreams {
		names[i] = cfg.Upstreams[i].Name
	}
	return names
}

// hidden withholds killed tools from the lists; their routes stay, so a call
// gets the kill switch's reason.
func (g *Gateway) hidden(exposed, upstream string) bool {
	_, killed := g.controls.switches.Check(exposed, upstream)
	return killed
}

// Start connects the upstreams and starts background work. It returns at
// once (with Redis, once subscribed to relayed cancellations, or after one
// dial and command timeout); /readyz says when the catalog has loaded.
func (g *Gateway) Start() {
	g.rt.Load().start()
	if rg, ok := g.sessions.graves.(*redisGraves); ok {
		g.wg.Go(func() { rg.watch(g.stop, g.sessions) })
	}
	g.startCancels()
	g.wg.Go(g.sweepSessions)
}

func (g *Gateway) sweepSessions() {
	defer func() {
		if r := recover(); r != nil {
			g.log.Error("session sweeper panicked", slog.Any("panic", r))
		}
	}()
	every := min(g.cfg.Server.SessionIdleTTL/2, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			g.sessions.sweep()
		}
	}
}

// Handler is the gateway's whole HTTP surface.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Ready reports whether every required upstream has listed its catalog or
// failed its first attempt.
func (g *Gateway) Ready() bool { return g.rt.Load().ready() }

// Catalog returns the current catalog snapshot.
func (g *Gateway) Catalog() *catalog.Snapshot { return g.rt.Load().snapshot() }

// Serve serves HTTP on l until ctx ends, then shuts down as shutdown
// says.
func (g *Gateway) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: g.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       g.cfg.Server.IdleTimeout,
		MaxHeaderBytes:    g.cfg.Server.MaxHeaderBytes,
		ConnContext:       withConnState,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		g.Close()
		return err
	case <-ctx.Done():
	}
	return g.shutdown(context.WithoutCancel(ctx), srv, errc)
}

// shutdown is the graceful shutdown that SIGTERM starts (docs/operations.md,
// "Shutdown"), in this order:
//
//  1. /readyz answers 503 at once, while calls are still served as before
//     for server.shutdown_delay, so that load balancers stop sending new
//     connections before any is refused (http.Server.Shutdown closes the
//     listener at once);
//  2. then new calls get -32053 and GET streams end, and the listener
//     stays open while the calls in flight finish, so that a client that
//     still sends gets -32053 rather than a refused connection;
//  3. then the listener and the idle connections close; everything so
//     far is bounded by server.shutdown_timeout from the end of the
//     delay;
//  4. the upstreams are closed and the audit queue is written out (Close).
//
// Keep-alives stay on throughout: turning them off during a drain lost
// answers in a probe under load (PITFALLS.md, net/http).
func (g *Gateway) shutdown(ctx context.Context, srv *http.Server, errc <-chan error) error {
	delay, timeout := g.cfg.Server.ShutdownDelay, g.cfg.Server.ShutdownTimeout
	g.stopping.Store(true)
	g.log.InfoContext(ctx, "shutting down", slog.Duration("delay", delay), slog.Duration("timeout", timeout))
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			g.Close()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g.beginDrain()
	g.log.InfoContext(ctx, "refusing new calls; waiting for calls in flight", slog.Int64("in_flight", g.inFlight()))
	g.awaitCalls(sctx)
	err := srv.Shutdown(sctx)
	if left := g.inFlight(); left > 0 {
		g.log.WarnContext(ctx, "calls still in flight at shutdown_timeout", slog.Int64("in_flight", left))
	}
	g.Close()
	if err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	return nil
}

// inFlight counts the calls holding the current runtime. A reload during
// shutdown is refused, so no other runtime has calls.
func (g *Gateway) inFlight() int64 { return g.rt.Load().inflight.Load() }

// awaitCalls waits until no call is in flight or ctx ends, polling as a
// reload's retirement does (reload.go).
func (g *Gateway) awaitCalls(ctx context.Context) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for g.inFlight() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beginDrain refuses new calls and ends the long-lived GET streams, so that
// http.Server.Shutdown waits only for calls in flight.
func (g *Gateway) beginDrain() {
	g.stopping.Store(true)
	if g.draining.CompareAndSwap(false, true) {
		close(g.drained)
	}
}

// Close stops background work and closes every upstream.
func (g *Gateway) Close() {
	g.beginDrain()
	select {
	case <-g.stop:
		return
	default:
		close(g.stop)
	}
	g.wg.Wait()
	g.closeTelemetry()
	g.sessions.closeAll()
	g.rt.Load().close()
	if err := g.controls.close(context.Background()); err != nil {
		g.log.Warn("closing policy controls", slog.Any("error", err))
	}
}

// catalogChanged tells every session which lists changed.
// listsAnnounced relays the list_changed notifications upstreams sent,
// once the merged catalog was rebuilt from their new lists: a client
// would have heard them directly, even when the lists came back the same
// (an upstream that re-registers a tool announces a change). A list whose
// merged form changed was announced by catalogChanged already.
func (g *Gateway) listsAnnounced(old, cur *catalog.Snapshot, methods []string) {
	if cur == nil {
		return
	}
	for _, method := range methods {
		changed := false
		for _, l := range lists() {
			if l.changed == method && old != nil && old != cur && !sameList(old, cur, l.kind) {
				changed = true
			}
		}
		if changed {
			continue
		}
		note := appendNotification(nil, method, nil)
		g.sessions.broadcast(note)
		g.listeners.broadcast(method, note)
	}
}

func (g *Gateway) catalogChanged(old, cur *catalog.Snapshot) {
	if old == nil {
		return
	}
	sent := make(map[string]bool, numLists)
	for _, l := range lists() {
		if sent[l.changed] || sameList(old, cur, l.kind) {
			continue
		}
		sent[l.changed] = true
		note := appendNotification(nil, l.changed, nil)
		g.sessions.broadcast(note)
		g.listeners.broadcast(l.changed, note)
	}
	g.log.Info("catalog changed", slog.Uint64("version", cur.Version()),
		slog.Int("tools", cur.Len(catalog.Tools)), slog.Int("prompts", cur.Len(catalog.Prompts)),
		slog.Int("resources", cur.Len(catalog.Resources)))
}
