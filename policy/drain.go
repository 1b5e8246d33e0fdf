package policy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// DrainOptions configure Drains. Every field is optional.
type DrainOptions struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives changes and store failures. Default: discard.
	Logger *slog.Logger
	// KnownUpstreams returns the upstream names; draining another is
	// rejected with ErrUnknownUpstream. Nil skips the check.
	KnownUpstreams func() []string
	// OnChange is called after the set of drained upstreams changed. It
	// must not block for long.
	OnChange func()
	// ResyncInterval is how often a shared store is reloaded and how often
	// an unavailable store is retried. Default 500ms.
	ResyncInterval time.Duration
}

// Drains are the upstreams taken out of rotation on purpose: new calls to a
// drained upstream are refused (the audit decision "drained") while calls
// in flight finish. Unlike a kill switch, a drain is an operational step
// rather than a safety control, so it fails open: while the store cannot
// be loaded, IsDrained reports false and Degraded true.
//
// Drains are kept in their own Store (a second FileStore path or a
// RedisStore named "drains"), with the same syncing as Switches.
type Drains struct {
	reg  *registry
	snap atomic.Pointer[drainSnapshot]
	opts DrainOptions
}

type drainSnapshot struct {
	loaded  bool
	drained map[string]Switch
}

// NewDrains loads the drains from store and starts the background loop.
// Close stops it.
func NewDrains(ctx context.Context, store Store, opts DrainOptions) (*Drains, error) {
	d := &Drains{opts: opts}
	if d.opts.Now == nil {
		d.opts.Now = time.Now
	}
	reg, err := newRegistry(ctx, store, &registryOptions{
		name:           "drains",
		now:            d.opts.Now,
		logger:         opts.Logger,
		onChange:       opts.OnChange,
		resyncInterval: opts.ResyncInterval,
		publish:        d.publish,
	})
	if err != nil {
		return nil, fmt.Errorf("drains: %w", err)
	}
	d.reg = reg
	return d, nil
}

// IsDrained reports whether new calls to upstream are refused.
func (d *Drains) IsDrained(upstream string) bool {
	_, ok := d.snap.Load().drained[upstream]
	return ok
}

// Drained returns the drain record of upstream: who drained it, when and
// why.
func (d *Drains) Drained(upstream string) (Switch, bool) {
	s, ok := d.snap.Load().drained[upstream]
	return s, ok
}

// Degraded reports whether the drains could not be loaded yet.
func (d *Drains) Degraded() bool { return !d.snap.Load().loaded }

// List returns the drained upstreams' records, oldest first.
func (d *Drains) List() []Switch { return d.reg.list() }

// Drain takes upstream out of rotation. Draining a drained upstream
// replaces its record (actor, reason, time).
func (d *Drains) Drain(ctx context.Context, upstream, actor, reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return ErrReasonRequired
	}
	if upstream == "" || d.opts.KnownUpstreams != nil && !slices.Contains(d.opts.KnownUpstreams(), upstream) {
		return fmt.Errorf("%w: %q", ErrUnknownUpstream, upstream)
	}
	rec := Switch{
		ID:      upstream,
		Scope:   ScopeUpstream,
		Target:  upstream,
		Reason:  reason,
		Actor:   actor,
		Created: d.opts.Now().UTC().Round(0),
	}
	if err := d.reg.put(ctx, &rec, true); err != nil {
		return fmt.Errorf("draining %s: %w", upstream, err)
	}
	d.reg.opts.logger.InfoContext(ctx, "upstream drained", slog.String("upstream", upstream), slog.String("actor", actor))
	return nil
}

// Undrain puts upstream back into rotation. It fails with ErrNotFound when
// upstream is not drained.
func (d *Drains) Undrain(ctx context.Context, upstream, actor string) error {
	if _, err := d.reg.remove(ctx, upstream); err != nil {
		return fmt.Errorf("undraining %s: %w", upstream, err)
	}
	d.reg.opts.logger.InfoContext(ctx, "upstream undrained", slog.String("upstream", upstream), slog.String("actor", actor))
	return nil
}

// Close stops the background loops and waits for them.
func (d *Drains) Close() error {
	d.reg.close()
	return nil
}

func (d *Drains) publish(records []Switch, loaded bool, _ time.Time) {
	snap := &drainSnapshot{loaded: loaded, drained: make(map[string]Switch, len(records))}
	for i := range records {
		snap.drained[records[i].Target] = records[i]
	}
	d.snap.Store(snap)
}
