package policy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Scope is what a kill switch stops.
type Scope string

// Kill-switch scopes.
const (
	// ScopeGlobal stops every tool call.
	ScopeGlobal Scope = "global"
	// ScopeUpstream stops every call to the upstream named by Target.
	ScopeUpstream Scope = "upstream"
	// ScopeTool stops calls to the exposed tools matching the path.Match
	// glob in Target, such as "payments__refund_*".
	ScopeTool Scope = "tool"
)

// UnavailableID is the ID of the synthetic global switch Check returns
// while the kill-switch state cannot be loaded.
const UnavailableID = "state-unavailable"

// unavailable returns the synthetic switch of a registry that failed to
// load.
func unavailable() Switch {
	return Switch{
		ID:     UnavailableID,
		Scope:  ScopeGlobal,
		Reason: "kill-switch state unavailable",
		Actor:  "mcpgw",
	}
}

// Switch is one kill switch: an emergency stop for all calls, the calls to
// one upstream, or the calls to some tools, with who set it, why and until
// when. Its JSON form is what stores keep.
type Switch struct {
	// ID identifies the switch. Add generates one when it is empty.
	ID string `json:"id"`
	// Scope is global, upstream or tool.
	Scope Scope `json:"scope"`
	// Target is the upstream name (upstream scope) or a path.Match glob on
	// exposed tool names (tool scope); empty for global.
	Target string `json:"target,omitempty"`
	// Reason says why, for the caller's error and the audit stream.
	// Required.
	Reason string `json:"reason"`
	// Ticket optionally links an incident or change ticket.
	Ticket string `json:"ticket,omitempty"`
	// Actor is who set the switch.
	Actor string `json:"actor,omitempty"`
	// Created is when the switch was added; Add sets it.
	Created time.Time `json:"created"`
	// Expires is when the switch lifts by itself; zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// TTL, when positive, is an input to Add that sets Expires to Created
	// plus TTL. It is not stored.
	TTL time.Duration `json:"-"`
	// Digest is the contract digest an approval accepts (Approvals); empty
	// for kill switches and drains.
	Digest string `json:"digest,omitempty"`
}

// expiredAt reports whether s has expired at now.
func (s *Switch) expiredAt(now time.Time) bool {
	return !s.Expires.IsZero() && !now.Before(s.Expires)
}

// equal compares switches field by field, times by instant.
func (s *Switch) equal(o *Switch) bool {
	return s.ID == o.ID && s.Scope == o.Scope && s.Target == o.Target && s.Reason == o.Reason &&
		s.Ticket == o.Ticket && s.Actor == o.Actor && s.Created.Equal(o.Created) && s.Expires.Equal(o.Expires) &&
		s.Digest == o.Digest
}

// SwitchOptions configure Switches. Every field is optional.
type SwitchOptions struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives changes and store failures. Default: discard.
	Logger *slog.Logger
	// KnownTools returns the exposed tool names; a tool switch whose glob
	// matches none of them is rejected with ErrUnknownTool. Nil skips the
	// check.
	KnownTools func() []string
	// KnownUpstreams returns the upstream names; an upstream switch naming
	// another is rejected with ErrUnknownUpstream. Nil skips the check.
	KnownUpstreams func() []string
	// OnChange is called after the set of active switches changed (an add,
	// a remove, an expiry, or a change seen in a shared store), from the
	// goroutine that changed it. It must not block for long.
	OnChange func()
	// OnExpire is called from the background loop for each switch this
	// replica removes because it expired (for the audit stream). With a
	// shared store, a switch another replica removed first is not
	// reported here. Nil means no call.
	OnExpire func(Switch)
	// ResyncInterval is how often a shared store is reloaded and how often
	// an unavailable store is retried. Default 500ms.
	ResyncInterval time.Duration
	// PruneInterval is how often expired switches are removed from the
	// store (Check ignores them as soon as they expire). Default 1s.
	PruneInterval time.Duration
}

// Switches are the kill switches. Check, on the hot path, reads an
// immutable compiled snapshot through an atomic pointer, without locks;
// changes build a new snapshot. A background loop prunes expired switches
// and keeps a shared store in sync.
//
// Switches fail closed: until the store has been loaded once, Degraded
// reports true and Check stops every call with a synthetic global switch
// (ID UnavailableID). When a shared store fails later, the last known
// switches stay in force.
type Switches struct {
	reg  *registry
	snap atomic.Pointer[switchSnapshot]
	opts SwitchOptions
}

// switchSnapshot is the compiled, immutable set of switches.
type switchSnapshot struct {
	degraded  bool
	global    []compiledSwitch
	upstreams map[string][]compiledSwitch
	// tools holds tool switches whose target has no glob metacharacter.
	tools map[string][]compiledSwitch
	globs []compiledSwitch
}

type compiledSwitch struct {
	sw      Switch
	expires int64 // Unix nanoseconds; 0 means never.
}

// NewSwitches loads the switches from store and starts the background
// loop. A store that cannot be loaded is not an error: the Switches start
// degraded (failing closed) and retry every ResyncInterval. Close stops
// the loop.
func NewSwitches(ctx context.Context, store Store, opts SwitchOptions) (*Switches, error) {
	s := &Switches{opts: opts}
	if s.opts.Now == nil {
		s.opts.Now = time.Now
	}
	reg, err := newRegistry(ctx, store, &registryOptions{
		name:           "kill switches",
		now:            s.opts.Now,
		logger:         opts.Logger,
		onChange:       opts.OnChange,
		resyncInterval: opts.ResyncInterval,
		pruneInterval:  opts.PruneInterval,
		onExpire:       opts.OnExpire,
		publish:        s.publish,
	})
	if err != nil {
		return nil, fmt.Errorf("kill switches: %w", err)
	}
	s.reg = reg
	return s, nil
}

// Check returns the switch that stops a call to the exposed tool of the
// given upstream, if any: a global switch first, then one on the upstream,
// then one on the tool; among several, the oldest. Expiry is honoured at
// call time. It does not allocate.
func (s *Switches) Check(tool, upstream string) (Switch, bool) {
	snap := s.snap.Load()
	if snap.degraded {
		return unavailable(), true
	}
	var now int64
	if c := s.first(snap.global, &now); c != nil {
		return c.sw, true
	}
	if c := s.first(snap.upstreams[upstream], &now); c != nil {
		return c.sw, true
	}
	if c := s.first(snap.tools[tool], &now); c != nil {
		return c.sw, true
	}
	for i := range snap.globs {
		c := &snap.globs[i]
		if ok, _ := path.Match(c.sw.Target, tool); ok && s.active(c, &now) {
			return c.sw, true
		}
	}
	return Switch{}, false
}

// first returns the first active switch of cs.
func (s *Switches) first(cs []compiledSwitch, now *int64) *compiledSwitch {
	for i := range cs {
		if s.active(&cs[i], now) {
			return &cs[i]
		}
	}
	return nil
}

// active reports whether c has not expired, reading the clock at most once
// per Check.
func (s *Switches) active(c *compiledSwitch, now *int64) bool {
	if c.expires == 0 {
		return true
	}
	if *now == 0 {
		*now = s.opts.Now().UnixNano()
	}
	return *now < c.expires
}

// Degraded reports whether the switches could not be loaded yet, so Check
// stops every call.
func (s *Switches) Degraded() bool { return s.snap.Load().degraded }

// List returns the active switches, oldest first. While degraded it
// returns what this replica knows, which is nothing until the first load.
func (s *Switches) List() []Switch { return s.reg.list() }

// Add validates sw, fills in ID (when empty), Created and Expires (from
// TTL), stores it and returns it. It fails with ErrReasonRequired,
// ErrNegativeTTL, ErrInvalidScope, ErrInvalidTarget, ErrInvalidGlob,
// ErrUnknownTool, ErrUnknownUpstream, ErrInvalidID or ErrExists, or with
// the store's error.
func (s *Switches) Add(ctx context.Context, in *Switch) (Switch, error) {
	sw, err := s.normalize(in)
	if err != nil {
		return Switch{}, err
	}
	if err := s.reg.put(ctx, &sw, false); err != nil {
		return Switch{}, fmt.Errorf("adding kill switch %s: %w", sw.ID, err)
	}
	s.log().InfoContext(ctx, "kill switch added", slog.String("id", sw.ID), slog.Any("scope", sw.Scope), slog.String("target", sw.Target),
		slog.String("actor", sw.Actor), slog.String("ticket", sw.Ticket), slog.Any("expires", sw.Expires))
	return sw, nil
}

// Remove lifts the switch with the given ID and returns it (only its ID
// when this replica had not seen it yet). actor is who lifted it, for the
// log. It fails with ErrNotFound when no such switch exists.
func (s *Switches) Remove(ctx context.Context, id, actor string) (Switch, error) {
	sw, err := s.reg.remove(ctx, id)
	if err != nil {
		return Switch{}, fmt.Errorf("removing kill switch %s: %w", id, err)
	}
	s.log().InfoContext(ctx, "kill switch removed", slog.String("id", id), slog.Any("scope", sw.Scope), slog.String("target", sw.Target), slog.String("actor", actor))
	return sw, nil
}

// Close stops the background loops and waits for them. The store is not
// closed.
func (s *Switches) Close() error {
	s.reg.close()
	return nil
}

func (s *Switches) log() *slog.Logger { return s.reg.opts.logger }

// normalize validates sw and fills in its defaults.
func (s *Switches) normalize(in *Switch) (Switch, error) {
	sw := *in
	now := s.opts.Now()
	sw.Reason = strings.TrimSpace(sw.Reason)
	if sw.Reason == "" {
		return Switch{}, ErrReasonRequired
	}
	if sw.TTL < 0 {
		return Switch{}, ErrNegativeTTL
	}
	sw.Created = now.UTC().Round(0)
	if sw.TTL > 0 {
		sw.Expires = sw.Created.Add(sw.TTL)
		sw.TTL = 0
	}
	if !sw.Expires.IsZero() {
		if !sw.Expires.After(now) {
			return Switch{}, ErrNegativeTTL
		}
		sw.Expires = sw.Expires.UTC().Round(0)
	}
	if err := s.checkTarget(&sw); err != nil {
		return Switch{}, err
	}
	if sw.ID == "" {
		sw.ID = newID("ks-")
	} else if !validID(sw.ID) {
		return Switch{}, ErrInvalidID
	}
	return sw, nil
}

func (s *Switches) checkTarget(sw *Switch) error {
	switch sw.Scope {
	case ScopeGlobal:
		if sw.Target != "" {
			return fmt.Errorf("%w: a global switch has no target", ErrInvalidTarget)
		}
	case ScopeUpstream:
		if sw.Target == "" {
			return fmt.Errorf("%w: an upstream switch names its upstream", ErrInvalidTarget)
		}
		if s.opts.KnownUpstreams != nil && !slices.Contains(s.opts.KnownUpstreams(), sw.Target) {
			return fmt.Errorf("%w: %q", ErrUnknownUpstream, sw.Target)
		}
	case ScopeTool:
		if sw.Target == "" {
			return fmt.Errorf("%w: a tool switch names a tool glob", ErrInvalidTarget)
		}
		if _, err := path.Match(sw.Target, ""); err != nil {
			return fmt.Errorf("%w: %q", ErrInvalidGlob, sw.Target)
		}
		if s.opts.KnownTools != nil && !slices.ContainsFunc(s.opts.KnownTools(), func(tool string) bool {
			ok, _ := path.Match(sw.Target, tool)
			return ok
		}) {
			return fmt.Errorf("%w: %q", ErrUnknownTool, sw.Target)
		}
	default:
		return fmt.Errorf("%w: %q", ErrInvalidScope, sw.Scope)
	}
	return nil
}

// publish compiles the records into a snapshot and swaps it in.
func (s *Switches) publish(records []Switch, loaded bool, now time.Time) {
	snap := &switchSnapshot{
		degraded:  !loaded,
		upstreams: make(map[string][]compiledSwitch),
		tools:     make(map[string][]compiledSwitch),
	}
	for i := range records {
		sw := &records[i]
		if sw.expiredAt(now) {
			continue
		}
		c := compiledSwitch{sw: *sw}
		if !sw.Expires.IsZero() {
			c.expires = sw.Expires.UnixNano()
		}
		switch sw.Scope {
		case ScopeGlobal:
			snap.global = append(snap.global, c)
		case ScopeUpstream:
			snap.upstreams[sw.Target] = append(snap.upstreams[sw.Target], c)
		case ScopeTool:
			if strings.ContainsAny(sw.Target, `*?[\`) {
				snap.globs = append(snap.globs, c)
			} else {
				snap.tools[sw.Target] = append(snap.tools[sw.Target], c)
			}
		default:
			// A record of an unknown scope, written by a newer version or by
			// hand, stops everything rather than nothing.
			c.sw.Reason = fmt.Sprintf("kill switch %s has unknown scope %q: %s", sw.ID, sw.Scope, sw.Reason)
			snap.global = append(snap.global, c)
		}
	}
	s.snap.Store(snap)
}

// newID returns prefix followed by 16 random hex digits.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // Never fails.
	return prefix + hex.EncodeToString(b[:])
}

// validID reports whether id is 1 to 64 letters, digits, '.', '_' or '-'.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}
