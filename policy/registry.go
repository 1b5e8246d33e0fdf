package policy

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store keeps switch records (kill switches or drains) where replicas and
// restarts can find them. Implementations are safe for concurrent use.
type Store interface {
	// Load returns every record, expired ones included. ErrStateLost means
	// the store lost its data and the caller should put back what it
	// knows.
	Load(ctx context.Context) ([]Switch, error)
	// Put adds or replaces the record with s.ID.
	Put(ctx context.Context, s Switch) error
	// Delete removes the record with the given ID, or returns ErrNotFound.
	Delete(ctx context.Context, id string) error
}

// Watcher is implemented by stores shared between replicas. Watch calls
// changed whenever another replica (or this one) may have changed the
// records, until ctx is done. A registry over a Watcher also reloads every
// resync interval, since notifications can be lost.
type Watcher interface {
	Watch(ctx context.Context, changed func())
}

// registryOptions are the settings shared by Switches and Drains.
type registryOptions struct {
	name           string
	now            func() time.Time
	logger         *slog.Logger
	onChange       func()
	resyncInterval time.Duration
	pruneInterval  time.Duration
	loadTimeout    time.Duration
	// onExpire is called, outside the lock, for each record this registry
	// pruned because it expired.
	onExpire func(Switch)
	// publish builds and stores the lookup snapshot from the records; it is
	// called with the registry's lock held. loaded is false while the
	// records could not be loaded.
	publish func(records []Switch, loaded bool, now time.Time)
}

// registry holds the records of one Store, keeps them in sync (initial
// load, reload on notification, periodic resync, retry while unloaded),
// prunes expired ones and publishes a lookup snapshot after every change.
// Switches and Drains are registries with their own snapshots.
type registry struct {
	opts    registryOptions
	store   Store
	watcher Watcher

	// mu serialises loads and changes; the hot path never takes it. A
	// method named …Locked expects the caller to hold it.
	mu      sync.Mutex
	records []Switch // sorted by Created, then ID
	loaded  bool
	failing bool // the last load failed; logged once per transition

	reload chan struct{}
	// rearm tells the loop that the records changed, so that it sets its
	// expiry timer to the earliest expiry.
	rearm    chan struct{}
	tick     chan chan struct{}
	cancel   context.CancelFunc
	routines routines
	closed   sync.Once
}

func newRegistry(ctx context.Context, store Store, opts *registryOptions) (*registry, error) {
	if store == nil {
		return nil, errors.Join(ErrInvalidConfig, errors.New("store is nil"))
	}
	r := &registry{
		opts:   *opts,
		store:  store,
		reload: make(chan struct{}, 1),
		rearm:  make(chan struct{}, 1),
		tick:   make(chan chan struct{}),
	}
	o := &r.opts
	if o.now == nil {
		o.now = time.Now
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.resyncInterval <= 0 {
		o.resyncInterval = 500 * time.Millisecond
	}
	if o.pruneInterval <= 0 {
		o.pruneInterval = time.Second
	}
	if o.loadTimeout <= 0 {
		o.loadTimeout = 2 * time.Second
	}
	r.routines.logger = o.logger
	r.watcher, _ = store.(Watcher)

	r.mu.Lock()
	r.publishLocked()
	r.mu.Unlock()
	// A failure leaves the registry unloaded (failing closed); the loop
	// retries. OnChange is not called for this first load: the caller's
	// value does not exist yet.
	r.loadRecords(ctx)

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r.cancel = cancel
	r.routines.start(bg, o.name+" sync", r.run)
	if r.watcher != nil {
		r.routines.start(bg, o.name+" watch", func(ctx context.Context) {
			r.watcher.Watch(ctx, r.requestReload)
		})
	}
	return r, nil
}

// run is the background loop: prune each record at its expiry, resync
// shared stores, retry an unloaded store, and reload on notifications.
//
// The expiry timer is set to the earliest expiry after every change, so a
// switch lifts itself (and its expire record is written) at its deadline.
// The prune ticker is a backstop for a wall clock that jumps: timers run
// on the monotonic clock, expiries are wall-clock instants.
func (r *registry) run(ctx context.Context) {
	prune := time.NewTicker(r.opts.pruneInterval)
	defer prune.Stop()
	resync := time.NewTicker(r.opts.resyncInterval)
	defer resync.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	r.arm(expiry)
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.rearm:
			r.arm(expiry)
		case <-expiry.C:
			r.prune(ctx)
			r.arm(expiry)
		case <-prune.C:
			r.prune(ctx)
		case <-resync.C:
			if r.watcher != nil || !r.isLoaded() {
				r.load(ctx)
			}
		case <-r.reload:
			r.load(ctx)
		case done := <-r.tick:
			r.load(ctx)
			r.prune(ctx)
			close(done)
		}
	}
}

// arm sets t to fire at the earliest expiry of the records, or stops it
// when none expires. Since Go 1.23 a Reset or Stop timer delivers no stale
// value.
func (r *registry) arm(t *time.Timer) {
	next, ok := r.nextExpiry()
	if !ok {
		t.Stop()
		return
	}
	t.Reset(max(next.Sub(r.opts.now()), 0))
}

// nextExpiry returns the earliest expiry of the records, if any expires.
func (r *registry) nextExpiry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for i := range r.records {
		if e := r.records[i].Expires; !e.IsZero() && (next.IsZero() || e.Before(next)) {
			next = e
		}
	}
	return next, !next.IsZero()
}

// runTick runs one load and one prune in the background loop and returns
// when they are done. Tests call it (through an export) instead of
// waiting for a timer.
func (r *registry) runTick(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case r.tick <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// requestReload asks the loop for a reload without blocking; requests made
// while one is pending are coalesced.
func (r *registry) requestReload() {
	select {
	case r.reload <- struct{}{}:
	default:
	}
}

func (r *registry) isLoaded() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.loaded
}

// load reads the store and publishes what changed. When the store has
// lost its state, the records this replica knows are put back.
func (r *registry) load(ctx context.Context) {
	changed := r.loadRecords(ctx)
	if changed && r.opts.onChange != nil {
		r.opts.onChange()
	}
}

// loadRecords takes the lock, reads the store and publishes the records
// when they changed, which it reports.
func (r *registry) loadRecords(ctx context.Context) bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	lctx, cancel := context.WithTimeout(ctx, r.opts.loadTimeout)
	defer cancel()
	records, err := r.store.Load(lctx)
	if errors.Is(err, ErrStateLost) {
		err = r.reseedLocked(lctx)
		records = slices.Clone(r.records)
	}
	if err != nil {
		if !r.failing {
			r.failing = true
			if r.loaded {
				r.opts.logger.WarnContext(ctx, "state store unavailable; keeping the last known state", slog.String("state", r.opts.name), slog.Any("error", err))
			} else {
				r.opts.logger.ErrorContext(ctx, "state store unavailable; failing closed until it loads", slog.String("state", r.opts.name), slog.Any("error", err))
			}
		}
		return false
	}
	if r.failing {
		r.failing = false
		r.opts.logger.InfoContext(ctx, "state store available again", slog.String("state", r.opts.name))
	}
	sortRecords(records)
	if r.loaded && slices.EqualFunc(records, r.records, func(a, b Switch) bool { return a.equal(&b) }) {
		return false
	}
	r.records = records
	r.loaded = true
	r.publishLocked()
	return true
}

// reseedLocked puts the known records back into a store that lost them.
// A replica that knows nothing has nothing to put back and takes the
// store as empty. The caller holds the lock.
func (r *registry) reseedLocked(ctx context.Context) error {
	if len(r.records) == 0 {
		return nil
	}
	for i := range r.records {
		if err := r.store.Put(ctx, r.records[i]); err != nil {
			return err
		}
	}
	r.opts.logger.WarnContext(ctx, "state store lost its records; put back the known ones", slog.String("state", r.opts.name), slog.Int("records", len(r.records)))
	return nil
}

// prune removes expired records from the snapshot and the store.
func (r *registry) prune(ctx context.Context) {
	expired := r.pruneRecords(ctx)
	if len(expired) > 0 && r.opts.onChange != nil {
		r.opts.onChange()
	}
	if r.opts.onExpire != nil {
		for i := range expired {
			r.opts.onExpire(expired[i])
		}
	}
}

// pruneRecords takes the lock, removes the expired records and returns
// them.
func (r *registry) pruneRecords(ctx context.Context) []Switch {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.now()
	var expired []Switch
	r.records = slices.DeleteFunc(r.records, func(s Switch) bool {
		if s.expiredAt(now) {
			expired = append(expired, s)
			return true
		}
		return false
	})
	if len(expired) == 0 {
		return nil
	}
	r.publishLocked()
	dctx, cancel := context.WithTimeout(ctx, r.opts.loadTimeout)
	defer cancel()
	for i := range expired {
		s := &expired[i]
		r.opts.logger.InfoContext(ctx, "switch expired", slog.String("state", r.opts.name), slog.String("id", s.ID), slog.Any("scope", s.Scope), slog.String("target", s.Target))
		// Another replica may have pruned it first; a failure is retried
		// by whichever replica loads it next.
		if err := r.store.Delete(dctx, s.ID); err != nil && !errors.Is(err, ErrNotFound) {
			r.opts.logger.WarnContext(ctx, "removing an expired switch from the store failed", slog.String("state", r.opts.name), slog.String("id", s.ID), slog.Any("error", err))
		}
	}
	return expired
}

// put stores s and publishes it. replace says whether an existing record
// with the same ID may be replaced (drains) or is an error (switches).
func (r *registry) put(ctx context.Context, s *Switch, replace bool) error {
	changed, err := r.putRecord(ctx, s, replace)
	if changed && r.opts.onChange != nil {
		r.opts.onChange()
	}
	return err
}

// putRecord takes the lock, stores s and publishes it; it reports whether
// the published records changed.
func (r *registry) putRecord(ctx context.Context, s *Switch, replace bool) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.records, func(o Switch) bool { return o.ID == s.ID })
	if i >= 0 && !replace {
		return false, ErrExists
	}
	if err := r.store.Put(ctx, *s); err != nil {
		return false, err
	}
	if !r.loaded {
		// The rest of the state is unknown: stay closed and reload.
		r.requestReload()
		return false, nil
	}
	if i >= 0 {
		r.records = slices.Delete(r.records, i, i+1)
	}
	r.records = append(r.records, *s)
	sortRecords(r.records)
	r.publishLocked()
	return true, nil
}

// remove deletes the record with the given ID from the store and the
// snapshot and returns it (only its ID when this replica did not know it).
func (r *registry) remove(ctx context.Context, id string) (Switch, error) {
	s, changed, err := r.removeRecord(ctx, id)
	if changed && r.opts.onChange != nil {
		r.opts.onChange()
	}
	return s, err
}

// removeRecord takes the lock and deletes the record with the given ID from
// the store and the published records; it reports whether they changed.
func (r *registry) removeRecord(ctx context.Context, id string) (Switch, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	// The store is asked even when this replica does not know the record:
	// it may not have synced yet.
	if err := r.store.Delete(ctx, id); err != nil {
		return Switch{}, false, err
	}
	s := Switch{ID: id}
	i := slices.IndexFunc(r.records, func(o Switch) bool { return o.ID == id })
	if i < 0 {
		r.requestReload()
		return s, false, nil
	}
	s = r.records[i]
	r.records = slices.Delete(r.records, i, i+1)
	r.publishLocked()
	return s, true, nil
}

// list returns the unexpired records.
func (r *registry) list() []Switch {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.opts.now()
	out := make([]Switch, 0, len(r.records))
	for i := range r.records {
		if !r.records[i].expiredAt(now) {
			out = append(out, r.records[i])
		}
	}
	return out
}

// publishLocked hands the records to the snapshot builder. The caller
// holds the lock.
func (r *registry) publishLocked() {
	r.opts.publish(r.records, r.loaded, r.opts.now())
	select {
	case r.rearm <- struct{}{}:
	default:
	}
}

// close stops the background loops and waits for them.
func (r *registry) close() {
	r.closed.Do(func() {
		r.cancel()
		r.routines.wait()
	})
}

// sortRecords orders records by creation time, then ID, so lookups and
// listings are deterministic.
func sortRecords(records []Switch) {
	slices.SortFunc(records, func(a, b Switch) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}
