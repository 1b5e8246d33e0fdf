package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/upstream"
)

// runtime is everything built from one configuration: the upstream pool,
// the catalog options and the current catalog snapshot. A reload builds a new
// runtime beside the old one and swaps it.
type runtime struct {
	cfg     *configs.Config
	log     *slog.Logger
	clients []Upstream
	byName  map[string]Upstream
	upCfg   map[string]*configs.Upstream
	// fresh are the clients this runtime created (and starts); the others
	// were taken over from the runtime it replaced.
	fresh   []Upstream
	scopes  *policy.RequiredScopes
	limiter *policy.Limiter
	// rules are the compiled policy.rules; nil when none (trust.go).
	rules *ruleSet
	// schemas are the compiled input schemas of the checked tools of the
	// published snapshot (trust.go).
	schemas atomic.Pointer[argSchemas]
	// headers are the x-mcp-header bindings of the published snapshot's
	// tools, by exposed name (paramheaders.go); nil when none binds one.
	headers atomic.Pointer[map[string]upstream.ParamBindings]
	// pins are the lock file's contracts and the upstreams' pinning modes;
	// nil when nothing pins (quarantine.go).
	pins *pinSet
	// contracts are the tools that differ from their pins in the last
	// built snapshot; nil when nothing pins.
	contracts atomic.Pointer[contractState]
	watch     *contractWatch
	// views filters the lists per principal; nil when nothing needs it.
	views *views
	// endpoints are the virtual endpoints by path, and routes the
	// handlers of their paths and metadata; nil without endpoints
	// (endpoints.go).
	endpoints map[string]*mcpEndpoint
	routes    map[string]http.Handler
	opts      catalog.Options
	snap      atomic.Pointer[catalog.Snapshot]
	pub       atomic.Pointer[published]         // snap with its sources, for filtered views
	problems  atomic.Pointer[[]catalog.Problem] // of the last build, for operators
	loaded    atomic.Bool                       // every required upstream is in the published snapshot or failed its first attempt
	version   atomic.Uint64
	changed   chan struct{}
	onChange  func(old, cur *catalog.Snapshot)
	// onAnnounce is told, after a rebuild, of the list_changed methods
	// upstreams sent since the last one (relayed whether or not the
	// merged lists changed).
	onAnnounce func(old, cur *catalog.Snapshot, methods []string)
	annMu      sync.Mutex
	announced  map[string]bool
	// buildMu serialises rebuilds: the loop's, and the immediate ones of
	// kill-switch changes.
	buildMu sync.Mutex

	// inflight counts calls holding this runtime (see acquire); retiring
	// is set once a reload replaced it, before it waits for them.
	inflight atomic.Int64
	retiring atomic.Bool

	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
}

// runtimeDeps are what a runtime needs from the gateway.
type runtimeDeps struct {
	log            *slog.Logger
	now            func() time.Time
	version        string
	healthInterval time.Duration
	// onChange is told of each published snapshot after the first.
	onChange func(old, cur *catalog.Snapshot)
	// hidden withholds items from the lists (kill switches).
	hidden func(exposed, upstream string) bool
	// resourceUpdated is told of each resource update an upstream sends.
	resourceUpdated func(upstream, uri string)
	// onAnnounce is told of the list_changed the upstreams sent, after
	// the rebuild they caused.
	onAnnounce func(old, cur *catalog.Snapshot, methods []string)
	// signal asks the current runtime to rebuild its catalog. Upstream
	// clients call it, so that a client taken over by a later runtime
	// signals that one.
	signal func()
	// redis is the shared Redis (nil without one); rate limits use it
	// when the configuration's backend is redis. The rate limiter is
	// configuration and is rebuilt on reload; the connection is not.
	redis *redis.Client
	// prev is the runtime being replaced: its clients whose configuration
	// is unchanged are taken over, with their sessions and catalogs.
	prev *runtime
	// asserter signs identity assertions (one per process).
	asserter *upstream.Asserter
	// tel receives spans and metrics; nil without telemetry.
	tel *telemetry.Telemetry
	// dial builds an upstream; nil means dialClient.
	dial dialer
	// onBreaker hears the state changes of the upstreams' breakers.
	onBreaker func(upstream, tool, from, to string)
	// lockFile is the lock file's path; contracts checks and reports the
	// tools against it (quarantine.go).
	lockFile  string
	contracts *contractWatch
	// serveEndpoint builds the handlers of a virtual endpoint into routes;
	// nil leaves endpoints without handlers (tests of the catalog alone).
	serveEndpoint func(ep *mcpEndpoint, routes map[string]http.Handler) error
}

func newRuntime(cfg *configs.Config, d *runtimeDeps) (_ *runtime, err error) {
	pattern, err := regexp.Compile(cfg.Catalog.NamePattern)
	if err != nil {
		return nil, fmt.Errorf("catalog.name_pattern: %w", err)
	}
	rt := &runtime{
		cfg:    cfg,
		log:    d.log,
		byName: make(map[string]Upstream, len(cfg.Upstreams)),
		upCfg:  make(map[string]*configs.Upstream, len(cfg.Upstreams)),
		opts: catalog.Options{
			Separator: cfg.Catalog.Separator, NamePattern: pattern, PageSize: cfg.Catalog.PageSize,
			Hidden: d.hidden,
		},
		changed:  make(chan struct{}, 1),
		onChange: d.onChange, onAnnounce: d.onAnnounce,
		stop: make(chan struct{}),
	}
	defer func() {
		if err != nil {
			rt.closeFresh()
		}
	}()
	if err := rt.buildPolicies(cfg, d); err != nil {
		return nil, err
	}
	if rt.endpoints, err = newEndpoints(cfg); err != nil {
		return nil, err
	}
	if len(rt.endpoints) > 0 {
		rt.routes = make(map[string]http.Handler, 2*len(rt.endpoints))
		for _, ep := range rt.endpoints {
			if d.serveEndpoint == nil {
				break
			}
			if err := d.serveEndpoint(ep, rt.routes); err != nil {
				return nil, fmt.Errorf("endpoint %s: %w", ep.path, err)
			}
		}
	}
	if d.prev != nil {
		rt.version.Store(d.prev.version.Load())
	}
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		if d.prev != nil {
			if pc, ok := d.prev.byName[u.Name]; ok && reflect.DeepEqual(d.prev.upCfg[u.Name], u) {
				rt.add(u, pc)
				continue
			}
		}
		dial := d.dial
		if dial == nil {
			dial = dialClient
		}
		c, err := dial(u, &upstream.Options{
			Logger:            d.log, // upstream.New adds the upstream and transport attributes
			OnChange:          func(string) { d.signal() },
			OnResourceUpdated: d.resourceUpdated,
			OnListChanged:     rt.announce,
			ClientName:        "mcpgw",
			ClientVersion:     d.version,
			HealthInterval:    d.healthInterval,
			Asserter:          d.asserter,
			AssertionIssuer:   assertionIssuer(cfg),
			Telemetry:         d.tel,
			OnBreakerChange:   d.onBreaker,
		})
		if err != nil {
			return nil, fmt.Errorf("upstreams[%d] %q: %w", i, u.Name, err)
		}
		rt.fresh = append(rt.fresh, c)
		rt.add(u, c)
	}
	rt.rebuild()
	return rt, nil
}

// buildPolicies builds what the call path and the lists decide with: the
// required scopes, the rate limiter, the rules, the pins and the
// per-principal views.
func (rt *runtime) buildPolicies(cfg *configs.Config, d *runtimeDeps) (err error) {
	tables := make(map[string]configs.ToolScopes, len(cfg.Upstreams))
	for i := range cfg.Upstreams {
		tables[cfg.Upstreams[i].Name] = cfg.Upstreams[i].Scopes
	}
	if rt.scopes, err = policy.NewRequiredScopes(tables, nil); err != nil {
		return err
	}
	var limiterRedis *redis.Client
	if cfg.RateLimitBackend() == "redis" {
		limiterRedis = d.redis
	}
	rt.limiter, err = policy.NewLimiter(cfg.Policy.RateLimits, limiterRedis, policy.LimiterOptions{
		Now: d.now, Logger: d.log.With(slog.String("component", "ratelimit")), KeyPrefix: redisPrefix(cfg),
	})
	if err != nil {
		return fmt.Errorf("rate limits: %w", err)
	}
	if rt.rules, err = newRuleSet(cfg); err != nil {
		return err
	}
	if rt.pins, err = loadPins(cfg, d.lockFile, d.log); err != nil {
		return err
	}
	rt.watch = d.contracts
	rt.views = newViews(cfg, rt.scopes, rt.rules)
	return nil
}

func (rt *runtime) add(u *configs.Upstream, c Upstream) {
	rt.clients = append(rt.clients, c)
	rt.byName[u.Name] = c
	rt.upCfg[u.Name] = u
}

// start connects the upstreams this runtime created and runs the catalog
// loop.
func (rt *runtime) start() {
	rt.startClients()
	rt.startLoop()
}

func (rt *runtime) startClients() {
	for _, c := range rt.fresh {
		c.Start()
	}
}

func (rt *runtime) startLoop() {
	rt.wg.Go(rt.loop)
}

// release ends a call that acquire admitted.
func (rt *runtime) release() { rt.inflight.Add(-1) }

// signal asks the loop to rebuild the catalog; bursts coalesce.
func (rt *runtime) signal() {
	select {
	case rt.changed <- struct{}{}:
	default:
	}
}

// loop rebuilds the snapshot after upstream changes, debounced so that a
// burst of list_changed notifications or a flapping upstream produces one
// rebuild (and at most one list_changed downstream).
func (rt *runtime) loop() {
	defer func() {
		if r := recover(); r != nil {
			rt.log.Error("catalog loop panicked", slog.Any("panic", r))
		}
	}()
	debounce := rt.cfg.Catalog.ListChangedDebounce
	for {
		select {
		case <-rt.stop:
			return
		case <-rt.changed:
		}
		t := time.NewTimer(debounce)
		select {
		case <-rt.stop:
			t.Stop()
			return
		case <-t.C:
		}
		// Signals that arrived during the wait are covered by this rebuild.
		select {
		case <-rt.changed:
		default:
		}
		rt.rebuild()
	}
}

// rebuild builds a new snapshot from the upstreams' current catalogs and
// publishes it when it differs from the current one.
func (rt *runtime) rebuild() {
	rt.buildMu.Lock()
	defer rt.buildMu.Unlock()
	sources := make([]catalog.Source, 0, len(rt.clients))
	loaded := true
	for _, c := range rt.clients {
		u := rt.upCfg[c.Name()]
		src := catalog.Source{
			Upstream: u.Name,
			Prefix:   u.ExposedPrefix(),
			Include:  u.Tools.Include,
			Exclude:  u.Tools.Exclude,
		}
		cat, ok := c.Catalog()
		if !u.Optional && !settled(c, cat) {
			loaded = false
		}
		if cat != nil {
			src.Available = ok
			src.Tools = cat.Tools
			src.Resources = cat.Resources
			src.ResourceTemplates = cat.ResourceTemplates
			src.Prompts = cat.Prompts
		}
		sources = append(sources, src)
	}
	snap, problems := catalog.Build(rt.version.Add(1), rt.opts, sources)
	opts := rt.opts
	if rt.pins != nil {
		// The quarantined tools are hidden as killed ones are: the catalog
		// is built again with them left out of its lists, so that every
		// view derived from it (per principal, per endpoint) leaves them
		// out too.
		st := rt.watch.check(rt.pins, snap)
		if len(st.quarantined) > 0 {
			opts.Hidden = st.hide(opts.Hidden)
			snap, _ = catalog.Build(snap.Version(), opts, sources)
		}
		rt.contracts.Store(st)
		rt.watch.report(st)
	}
	for _, p := range problems {
		rt.log.Warn("catalog problem", slog.String("upstream", p.Upstream), slog.String("kind", p.Kind),
			slog.String("item", p.Item), slog.String("cause", string(p.Cause)), slog.String("reason", p.Reason))
	}
	rt.problems.Store(&problems)
	// Readiness follows the published snapshot, so that a ready gateway
	// lists what it loaded.
	defer rt.loaded.Store(loaded)
	old := rt.snap.Load()
	if methods := rt.takeAnnounced(); len(methods) > 0 && rt.onAnnounce != nil {
		defer func() { rt.onAnnounce(old, rt.snap.Load(), methods) }()
	}
	if old != nil && sameLists(old, snap) && sameRoutes(old, snap) {
		return
	}
	rt.compileSchemas(snap)
	rt.bindHeaders(snap)
	for _, ep := range rt.endpoints {
		ep.publish(snap.Version(), opts, sources)
	}
	rt.pub.Store(newPublished(snap, sources, opts))
	rt.snap.Store(snap)
	if rt.onChange != nil {
		rt.onChange(old, snap)
	}
}

// catalogList ties a catalog list to its list method and its
// list_changed notification.
type catalogList struct {
	kind    catalog.Kind
	method  string
	changed string
}

// numLists is the number of catalog lists.
const numLists = 4

// lists are the catalog's lists, in a fixed order.
func lists() [numLists]catalogList {
	return [...]catalogList{
		{catalog.Tools, mcpwire.MethodToolsList, mcpwire.NotifyToolsChanged},
		{catalog.Resources, mcpwire.MethodResourcesList, mcpwire.NotifyResourcesChanged},
		{catalog.ResourceTemplates, mcpwire.MethodTemplatesList, mcpwire.NotifyResourcesChanged},
		{catalog.Prompts, mcpwire.MethodPromptsList, mcpwire.NotifyPromptsChanged},
	}
}

// listKind is the catalog list a list method serves.
func listKind(method string) catalog.Kind {
	for _, l := range lists() {
		if l.method == method {
			return l.kind
		}
	}
	return catalog.Tools
}

// sameLists reports whether two snapshots list the same items.
func sameLists(a, b *catalog.Snapshot) bool {
	for _, l := range lists() {
		if !sameList(a, b, l.kind) {
			return false
		}
	}
	return true
}

// sameList reports whether two snapshots list the same items of one kind.
func sameList(a, b *catalog.Snapshot, k catalog.Kind) bool {
	if a.Len(k) != b.Len(k) {
		return false
	}
	cursor := ""
	for {
		pa, errA := a.Page(k, cursor)
		pb, errB := b.Page(k, cursor)
		if errA != nil || errB != nil {
			return errA == nil && errB == nil
		}
		// The cursors embed the version, so compare the items only.
		ia, na := listItems(pa, k)
		ib, nb := listItems(pb, k)
		if !bytes.Equal(ia, ib) {
			return false
		}
		if na == "" || nb == "" {
			return na == "" && nb == ""
		}
		cursor = nb
	}
}

// sameRoutes reports whether availability is unchanged, so that a call to a
// withdrawn tool sees the new state.
func sameRoutes(a, b *catalog.Snapshot) bool {
	ua, ub := a.Upstreams(), b.Upstreams()
	if len(ua) != len(ub) {
		return false
	}
	for i := range ua {
		if ua[i].Name != ub[i].Name || ua[i].Available != ub[i].Available {
			return false
		}
	}
	return true
}

// listItems splits a list page into its item array and next cursor.
func listItems(page []byte, k catalog.Kind) ([]byte, string) {
	items := rawjson.Member(page, k.String())
	next := rawjson.Member(page, "nextCursor")
	if len(next) < 2 {
		return items, ""
	}
	return items, string(next[1 : len(next)-1])
}

func (rt *runtime) snapshot() *catalog.Snapshot { return rt.snap.Load() }

// ready reports whether every required upstream has settled: its catalog
// is in the published snapshot, or its first attempt to list failed.
func (rt *runtime) ready() bool { return rt.loaded.Load() }

// stopLoop stops the catalog loop; it is idempotent.
func (rt *runtime) stopLoop() {
	rt.stopOnce.Do(func() { close(rt.stop) })
	rt.wg.Wait()
}

// close stops the loop and closes every upstream.
func (rt *runtime) close() {
	rt.stopLoop()
	rt.closeClients(nil)
}

// closeFresh closes the clients this runtime created, for a runtime that
// was never swapped in.
func (rt *runtime) closeFresh() {
	rt.stopLoop()
	for _, c := range rt.fresh {
		rt.closeClient(c)
	}
}

// closeClients closes every upstream client except those kept (taken over
// by the runtime that replaced this one).
func (rt *runtime) closeClients(keep map[Upstream]bool) {
	for _, c := range rt.clients {
		if !keep[c] {
			rt.closeClient(c)
		}
	}
}

func (rt *runtime) closeClient(c Upstream) {
	if err := c.Close(); err != nil {
		rt.log.Warn("closing upstream", slog.String("upstream", c.Name()), slog.Any("error", err))
	}
}

// announce records a list_changed an upstream sent and asks for a
// rebuild (upstream.Options.OnListChanged).
func (rt *runtime) announce(_, method string) {
	rt.annMu.Lock()
	if rt.announced == nil {
		rt.announced = map[string]bool{}
	}
	rt.announced[method] = true
	rt.annMu.Unlock()
	rt.signal()
}

// takeAnnounced returns and forgets the announced methods.
func (rt *runtime) takeAnnounced() []string {
	rt.annMu.Lock()
	defer rt.annMu.Unlock()
	methods := make([]string, 0, len(rt.announced))
	for m := range rt.announced {
		methods = append(methods, m)
	}
	rt.announced = nil
	return methods
}
