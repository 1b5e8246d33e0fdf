package gateway

import (
	"bytes"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/telemetry"
	"github.com/mcpgw/mcpgw/upstream"
)

// runtime is everything built from one configuration: the upstream pool,
// the catalog options and the current catalog snapshot. A reload builds a new
// runtime beside the old one and swaps it.
type runtime struct {
	cfg      *configs.Config
	log      *slog.Logger
	clients  []*upstream.Client
	byName   map[string]*upstream.Client
	upCfg    map[string]*configs.Upstream
	opts     catalog.Options
	snap     atomic.Pointer[catalog.Snapshot]
	loaded   atomic.Bool // every required upstream is in the published snapshot
	version  atomic.Uint64
	changed  chan struct{}
	onChange func(old, cur *catalog.Snapshot)

	stop chan struct{}
	wg   sync.WaitGroup
}

func newRuntime(cfg *configs.Config, log *slog.Logger, version string, healthInterval time.Duration,
	onChange func(old, cur *catalog.Snapshot), hidden func(exposed, upstream string) bool, tel *telemetry.Telemetry,
) (*runtime, error) {
	pattern, err := regexp.Compile(cfg.Catalog.NamePattern)
	if err != nil {
		return nil, fmt.Errorf("catalog.name_pattern: %w", err)
	}
	rt := &runtime{
		cfg:    cfg,
		log:    log,
		byName: make(map[string]*upstream.Client, len(cfg.Upstreams)),
		upCfg:  make(map[string]*configs.Upstream, len(cfg.Upstreams)),
		opts: catalog.Options{
			Separator: cfg.Catalog.Separator, NamePattern: pattern, PageSize: cfg.Catalog.PageSize,
			Hidden: hidden,
		},
		changed:  make(chan struct{}, 1),
		onChange: onChange,
		stop:     make(chan struct{}),
	}
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		c, err := upstream.New(*u, upstream.Options{
			Logger:         log.With(slog.String("upstream", u.Name)),
			OnChange:       func(string) { rt.signal() },
			ClientName:     "mcpgw",
			ClientVersion:  version,
			HealthInterval: healthInterval,
			Telemetry:      tel,
		})
		if err != nil {
			rt.closeClients()
			return nil, fmt.Errorf("upstreams[%d] %q: %w", i, u.Name, err)
		}
		rt.clients = append(rt.clients, c)
		rt.byName[u.Name] = c
		rt.upCfg[u.Name] = u
	}
	rt.rebuild()
	return rt, nil
}

// start connects the upstreams and runs the catalog loop.
func (rt *runtime) start() {
	for _, c := range rt.clients {
		c.Start()
	}
	rt.wg.Add(1)
	go func() {
		defer rt.wg.Done()
		rt.loop()
	}()
}

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
		if cat == nil && !u.Optional {
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
	for _, p := range problems {
		rt.log.Warn("catalog problem", slog.String("upstream", p.Upstream), slog.String("kind", p.Kind),
			slog.String("item", p.Item), slog.String("reason", p.Reason))
	}
	// Readiness follows the published snapshot, so that a ready gateway
	// lists what it loaded.
	defer rt.loaded.Store(loaded)
	old := rt.snap.Load()
	if old != nil && sameLists(old, snap) && sameRoutes(old, snap) {
		return
	}
	rt.snap.Store(snap)
	if rt.onChange != nil {
		rt.onChange(old, snap)
	}
}

// lists ties each catalog list to its list method and its list_changed
// notification, in a fixed order.
var lists = [...]struct {
	kind    catalog.Kind
	method  string
	changed string
}{
	{catalog.Tools, "tools/list", "notifications/tools/list_changed"},
	{catalog.Resources, "resources/list", "notifications/resources/list_changed"},
	{catalog.ResourceTemplates, "resources/templates/list", "notifications/resources/list_changed"},
	{catalog.Prompts, "prompts/list", "notifications/prompts/list_changed"},
}

// listKinds maps a list method to its catalog list.
var listKinds = func() map[string]catalog.Kind {
	m := make(map[string]catalog.Kind, len(lists))
	for _, l := range lists {
		m[l.method] = l.kind
	}
	return m
}()

// sameLists reports whether two snapshots list the same items.
func sameLists(a, b *catalog.Snapshot) bool {
	for _, l := range lists {
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
	items := member(page, k.String())
	next := member(page, "nextCursor")
	if len(next) < 2 {
		return items, ""
	}
	return items, string(next[1 : len(next)-1])
}

func (rt *runtime) snapshot() *catalog.Snapshot { return rt.snap.Load() }

// ready reports whether every required upstream's catalog has loaded into
// the published snapshot.
func (rt *runtime) ready() bool { return rt.loaded.Load() }

// close stops the loop and closes every upstream.
func (rt *runtime) close() {
	close(rt.stop)
	rt.wg.Wait()
	rt.closeClients()
}

func (rt *runtime) closeClients() {
	for _, c := range rt.clients {
		if err := c.Close(); err != nil {
			rt.log.Warn("closing upstream", slog.String("upstream", c.Name()), slog.Any("error", err))
		}
	}
}
