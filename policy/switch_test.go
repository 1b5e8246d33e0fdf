package policy_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
)

var (
	knownTools     = []string{"orders__get_order", "orders__cancel_order", "payments__refund_payment", "payments__refund_order", "payments__get_payment"}
	knownUpstreams = []string{"orders", "payments"}
)

func newSwitches(t *testing.T, store policy.Store, clk *clock, onChange func()) *policy.Switches {
	t.Helper()
	s, err := policy.NewSwitches(t.Context(), store, policy.SwitchOptions{
		Now:            clk.Now,
		KnownTools:     func() []string { return knownTools },
		KnownUpstreams: func() []string { return knownUpstreams },
		OnChange:       onChange,
		ResyncInterval: 50 * time.Millisecond,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSwitchAddValidation(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		sw   policy.Switch
		want error
	}{
		{name: "missing reason", sw: policy.Switch{Scope: policy.ScopeGlobal, Reason: "  "}, want: policy.ErrReasonRequired},
		{name: "negative ttl", sw: policy.Switch{Scope: policy.ScopeGlobal, Reason: "r", TTL: -time.Second}, want: policy.ErrNegativeTTL},
		{name: "expiry in the past", sw: policy.Switch{Scope: policy.ScopeGlobal, Reason: "r", Expires: newClock().Now().Add(-time.Second)}, want: policy.ErrNegativeTTL},
		{name: "unknown scope", sw: policy.Switch{Scope: "planet", Reason: "r"}, want: policy.ErrInvalidScope},
		{name: "global with target", sw: policy.Switch{Scope: policy.ScopeGlobal, Target: "x", Reason: "r"}, want: policy.ErrInvalidTarget},
		{name: "upstream without target", sw: policy.Switch{Scope: policy.ScopeUpstream, Reason: "r"}, want: policy.ErrInvalidTarget},
		{name: "unknown upstream", sw: policy.Switch{Scope: policy.ScopeUpstream, Target: "shipping", Reason: "r"}, want: policy.ErrUnknownUpstream},
		{name: "tool without target", sw: policy.Switch{Scope: policy.ScopeTool, Reason: "r"}, want: policy.ErrInvalidTarget},
		{name: "invalid glob", sw: policy.Switch{Scope: policy.ScopeTool, Target: "payments__[", Reason: "r"}, want: policy.ErrInvalidGlob},
		{name: "glob matching no tool", sw: policy.Switch{Scope: policy.ScopeTool, Target: "payment__refund_*", Reason: "r"}, want: policy.ErrUnknownTool},
		{name: "original name is not an exposed name", sw: policy.Switch{Scope: policy.ScopeTool, Target: "refund_payment", Reason: "r"}, want: policy.ErrUnknownTool},
		{name: "invalid id", sw: policy.Switch{ID: "a b", Scope: policy.ScopeGlobal, Reason: "r"}, want: policy.ErrInvalidID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			s := newSwitches(t, &policy.MemoryStore{}, newClock(), nil)
			_, err := s.Add(t.Context(), &tt.sw)
			require.ErrorIs(t, err, tt.want)
			assert.Empty(t, s.List())
			_, stopped := s.Check("orders__get_order", "orders")
			assert.False(t, stopped)
		})
	}
}

func TestSwitchAddRemoveList(t *testing.T) {
	t.Parallel()

	clk := newClock()
	onChange, changed := changes()
	store := &policy.MemoryStore{}
	s := newSwitches(t, store, clk, onChange)
	ctx := t.Context()
	assert.False(t, s.Degraded())

	refunds, err := s.Add(ctx, &policy.Switch{Scope: policy.ScopeTool, Target: "payments__refund_*", Reason: "refund loop", Ticket: "INC-1", Actor: "alice"})
	require.NoError(t, err)
	assert.NotEmpty(t, refunds.ID)
	assert.Equal(t, clk.Now(), refunds.Created)
	assert.True(t, refunds.Expires.IsZero())
	require.Len(t, changed, 1, "OnChange fired")
	<-changed

	clk.Advance(time.Second)
	orders, err := s.Add(ctx, &policy.Switch{ID: "orders-down", Scope: policy.ScopeUpstream, Target: "orders", Reason: "maintenance", Actor: "bob"})
	require.NoError(t, err)
	_, err = s.Add(ctx, &policy.Switch{ID: "orders-down", Scope: policy.ScopeGlobal, Reason: "again"})
	require.ErrorIs(t, err, policy.ErrExists)

	assert.Equal(t, []policy.Switch{refunds, orders}, s.List(), "oldest first")
	stored, err := store.Load(ctx)
	require.NoError(t, err)
	assert.Len(t, stored, 2)

	tests := []struct {
		tool, upstream string
		want           string
	}{
		{"payments__refund_payment", "payments", refunds.ID},
		{"payments__refund_order", "payments", refunds.ID},
		{"payments__get_payment", "payments", ""},
		{"orders__get_order", "orders", "orders-down"},
		{"orders__cancel_order", "orders", "orders-down"},
	}
	for _, tt := range tests {
		sw, ok := s.Check(tt.tool, tt.upstream)
		assert.Equal(t, tt.want != "", ok, tt.tool)
		assert.Equal(t, tt.want, sw.ID, tt.tool)
	}

	removed, err := s.Remove(ctx, refunds.ID, "carol")
	require.NoError(t, err)
	assert.Equal(t, refunds, removed)
	_, ok := s.Check("payments__refund_payment", "payments")
	assert.False(t, ok)
	_, err = s.Remove(ctx, refunds.ID, "carol")
	require.ErrorIs(t, err, policy.ErrNotFound)

	global, err := s.Add(ctx, &policy.Switch{Scope: policy.ScopeGlobal, Reason: "stop everything"})
	require.NoError(t, err)
	sw, ok := s.Check("orders__get_order", "orders")
	assert.True(t, ok)
	assert.Equal(t, global.ID, sw.ID, "a global switch comes first")
	sw, ok = s.Check("payments__get_payment", "payments")
	assert.True(t, ok)
	assert.Equal(t, global.ID, sw.ID)
}

func TestSwitchExpiry(t *testing.T) {
	t.Parallel()

	clk := newClock()
	onChange, changed := changes()
	store := &policy.MemoryStore{}
	s := newSwitches(t, store, clk, onChange)
	ctx := t.Context()

	sw, err := s.Add(ctx, &policy.Switch{Scope: policy.ScopeUpstream, Target: "payments", Reason: "r", TTL: time.Minute})
	require.NoError(t, err)
	assert.Equal(t, clk.Now().Add(time.Minute), sw.Expires)
	<-changed

	clk.Advance(time.Minute - time.Nanosecond)
	_, ok := s.Check("payments__get_payment", "payments")
	assert.True(t, ok, "still active just before expiry")

	clk.Advance(time.Nanosecond)
	_, ok = s.Check("payments__get_payment", "payments")
	assert.False(t, ok, "lifted at expiry, before any prune")
	assert.Empty(t, s.List())

	tick(t, s)
	require.Len(t, changed, 1, "the prune fired OnChange")
	stored, err := store.Load(ctx)
	require.NoError(t, err)
	assert.Empty(t, stored, "the prune removed it from the store")
}

func TestSwitchFileStoreSurvivesRestart(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "switches.json")
	store, err := policy.NewFileStore(path)
	require.NoError(t, err)
	clk := newClock()
	first := newSwitches(t, store, clk, nil)
	added, err := first.Add(t.Context(), &policy.Switch{Scope: policy.ScopeTool, Target: "orders__cancel_*", Reason: "bad deploy", Actor: "alice", TTL: time.Hour})
	require.NoError(t, err)
	require.NoError(t, first.Close())

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	store2, err := policy.NewFileStore(path)
	require.NoError(t, err)
	second := newSwitches(t, store2, clk, nil)
	assert.False(t, second.Degraded())
	sw, ok := second.Check("orders__cancel_order", "orders")
	require.True(t, ok)
	assert.True(t, added.Created.Equal(sw.Created))
	assert.Equal(t, added.ID, sw.ID)
	assert.Equal(t, []policy.Switch{added}, second.List())
}

func TestSwitchFailsClosed(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "switches.json")
	require.NoError(t, os.WriteFile(path, []byte("{not json"), 0o600))
	store, err := policy.NewFileStore(path)
	require.NoError(t, err)
	onChange, changed := changes()
	s := newSwitches(t, store, newClock(), onChange)

	assert.True(t, s.Degraded())
	sw, ok := s.Check("orders__get_order", "orders")
	require.True(t, ok, "an unreadable state stops every call")
	assert.Equal(t, policy.UnavailableID, sw.ID)
	assert.Equal(t, policy.ScopeGlobal, sw.Scope)
	assert.Equal(t, "kill-switch state unavailable", sw.Reason)

	require.NoError(t, os.WriteFile(path, []byte(`{"switches":[]}`), 0o600))
	tick(t, s)
	assert.False(t, s.Degraded())
	_, ok = s.Check("orders__get_order", "orders")
	assert.False(t, ok)
	assert.Len(t, changed, 1)
}

func TestDrains(t *testing.T) {
	t.Parallel()

	clk := newClock()
	d, err := policy.NewDrains(t.Context(), &policy.MemoryStore{}, policy.DrainOptions{
		Now:            clk.Now,
		KnownUpstreams: func() []string { return knownUpstreams },
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	ctx := t.Context()

	require.ErrorIs(t, d.Drain(ctx, "orders", "alice", ""), policy.ErrReasonRequired)
	require.ErrorIs(t, d.Drain(ctx, "shipping", "alice", "r"), policy.ErrUnknownUpstream)
	require.ErrorIs(t, d.Undrain(ctx, "orders", "alice"), policy.ErrNotFound)

	require.NoError(t, d.Drain(ctx, "orders", "alice", "node upgrade"))
	assert.True(t, d.IsDrained("orders"))
	assert.False(t, d.IsDrained("payments"))
	rec, ok := d.Drained("orders")
	require.True(t, ok)
	assert.Equal(t, "alice", rec.Actor)
	assert.Equal(t, "node upgrade", rec.Reason)

	require.NoError(t, d.Drain(ctx, "orders", "bob", "still upgrading"), "draining again replaces the record")
	rec, _ = d.Drained("orders")
	assert.Equal(t, "bob", rec.Actor)
	assert.Len(t, d.List(), 1)

	require.NoError(t, d.Undrain(ctx, "orders", "bob"))
	assert.False(t, d.IsDrained("orders"))
	assert.False(t, d.Degraded())
}

func TestSwitchesSharedThroughRedis(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	clk := newClock()
	newReplica := func() (*policy.Switches, chan struct{}) {
		store, err := policy.NewRedisStore(redisClient(t, srv), "test:", policy.RedisStoreKillSwitches)
		require.NoError(t, err)
		onChange, changed := changes()
		return newSwitches(t, store, clk, onChange), changed
	}
	a, _ := newReplica()
	b, bChanged := newReplica()
	require.False(t, a.Degraded())
	require.False(t, b.Degraded())
	ctx := t.Context()

	sw, err := a.Add(ctx, &policy.Switch{Scope: policy.ScopeTool, Target: "payments__refund_*", Reason: "fraud", Actor: "alice"})
	require.NoError(t, err)
	waitFor(t, bChanged, func() bool {
		_, ok := b.Check("payments__refund_payment", "payments")
		return ok
	}, "replica B to enforce the switch added on A")
	got, _ := b.Check("payments__refund_payment", "payments")
	assert.Equal(t, sw.ID, got.ID)
	assert.Equal(t, "alice", got.Actor)

	_, err = a.Remove(ctx, sw.ID, "bob")
	require.NoError(t, err)
	waitFor(t, bChanged, func() bool {
		_, ok := b.Check("payments__refund_payment", "payments")
		return !ok
	}, "replica B to lift the switch removed on A")

	// A switch added on B expires everywhere, and B's prune removes it
	// from Redis.
	_, err = b.Add(ctx, &policy.Switch{Scope: policy.ScopeUpstream, Target: "orders", Reason: "r", TTL: time.Minute})
	require.NoError(t, err)
	tick(t, a) // Loads what B wrote, whether or not the notification came.
	_, ok := a.Check("orders__get_order", "orders")
	require.True(t, ok, "replica A enforces the switch added on B")
	clk.Advance(time.Minute)
	_, ok = a.Check("orders__get_order", "orders")
	assert.False(t, ok)
	tick(t, b)
	tick(t, a)
	assert.Empty(t, a.List())
}

func TestSwitchesRedisDown(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	clk := newClock()
	client := redisClient(t, srv)
	newReplica := func() (*policy.Switches, chan struct{}) {
		store, err := policy.NewRedisStore(client, "test:", policy.RedisStoreKillSwitches)
		require.NoError(t, err)
		onChange, changed := changes()
		return newSwitches(t, store, clk, onChange), changed
	}
	a, _ := newReplica()
	ctx := t.Context()
	sw, err := a.Add(ctx, &policy.Switch{Scope: policy.ScopeUpstream, Target: "payments", Reason: "incident"})
	require.NoError(t, err)

	// Redis dies: a running replica keeps what it knows.
	srv.Stop()
	tick(t, a)
	assert.False(t, a.Degraded())
	_, ok := a.Check("payments__get_payment", "payments")
	assert.True(t, ok)
	_, err = a.Add(ctx, &policy.Switch{Scope: policy.ScopeGlobal, Reason: "r"})
	require.Error(t, err, "a change needs the store")

	// A replica starting meanwhile fails closed.
	b, bChanged := newReplica()
	assert.True(t, b.Degraded())
	got, ok := b.Check("orders__get_order", "orders")
	require.True(t, ok)
	assert.Equal(t, policy.UnavailableID, got.ID)

	// Redis comes back empty (no persistence). A puts back what it knows,
	// and B, once loaded, enforces it.
	srv.Restart()
	tick(t, a)
	tick(t, b)
	waitFor(t, bChanged, func() bool { return !b.Degraded() }, "replica B to load")
	got, ok = b.Check("payments__get_payment", "payments")
	require.True(t, ok, "the switch survived the Redis restart")
	assert.Equal(t, sw.ID, got.ID)
	_, ok = b.Check("orders__get_order", "orders")
	assert.False(t, ok)

	// Changes flow again.
	_, err = b.Add(ctx, &policy.Switch{Scope: policy.ScopeUpstream, Target: "orders", Reason: "r"})
	require.NoError(t, err)
	tick(t, a)
	_, ok = a.Check("orders__get_order", "orders")
	assert.True(t, ok, "replica A sees B's switch")
}

func TestSwitchesRedisEmptyStartIsNotDegraded(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	store, err := policy.NewRedisStore(redisClient(t, srv), "test:", policy.RedisStoreKillSwitches)
	require.NoError(t, err)
	s := newSwitches(t, store, newClock(), nil)
	assert.False(t, s.Degraded(), "a fresh Redis holds no switches")
	_, ok := s.Check("orders__get_order", "orders")
	assert.False(t, ok)
}

func BenchmarkSwitchCheck(b *testing.B) {
	clk := newClock()
	s, err := policy.NewSwitches(b.Context(), &policy.MemoryStore{}, policy.SwitchOptions{Now: clk.Now})
	require.NoError(b, err)
	defer s.Close()
	ctx := b.Context()
	switches := []policy.Switch{
		{Scope: policy.ScopeTool, Target: "payments__refund_*", Reason: "r"},
		{Scope: policy.ScopeTool, Target: "orders__cancel_order", Reason: "r", TTL: time.Hour},
		{Scope: policy.ScopeUpstream, Target: "shipping", Reason: "r"},
	}
	for i := range switches {
		_, err := s.Add(ctx, &switches[i])
		require.NoError(b, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, ok := s.Check("orders__get_order", "orders"); ok {
			b.Fatal("stopped")
		}
	}
}

func TestSwitchExpiryIsReported(t *testing.T) {
	t.Parallel()

	clk := newClock()
	var mu sync.Mutex
	var expired []string
	s, err := policy.NewSwitches(t.Context(), &policy.MemoryStore{}, policy.SwitchOptions{
		Now: clk.Now,
		OnExpire: func(sw policy.Switch) {
			mu.Lock()
			defer mu.Unlock()
			expired = append(expired, sw.ID)
		},
		PruneInterval: time.Hour, ResyncInterval: time.Hour,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	short, err := s.Add(t.Context(), &policy.Switch{Scope: policy.ScopeGlobal, Reason: "r", TTL: time.Minute})
	require.NoError(t, err)
	_, err = s.Add(t.Context(), &policy.Switch{Scope: policy.ScopeGlobal, Reason: "r", TTL: time.Hour})
	require.NoError(t, err)

	tick(t, s)
	mu.Lock()
	assert.Empty(t, expired, "nothing expired yet")
	mu.Unlock()

	clk.Advance(time.Minute)
	tick(t, s)
	tick(t, s)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{short.ID}, expired, "reported once, when pruned")
}

// TestSwitchExpiresAtItsDeadline: a switch with a TTL lifts itself, and
// is reported to OnExpire, at its expiry instant, not at the next prune
// tick. The bubble's clock only moves when every goroutine waits, so the
// report's time is exact: it must be the switch's Expires.
func TestSwitchExpiresAtItsDeadline(t *testing.T) {
	t.Parallel()

	synctest.Test(t, func(t *testing.T) {
		type report struct {
			id string
			at time.Time
		}
		reports := make(chan report, 4)
		changed := make(chan struct{}, 8)
		s, err := policy.NewSwitches(t.Context(), &policy.MemoryStore{}, policy.SwitchOptions{
			OnExpire: func(sw policy.Switch) { reports <- report{sw.ID, time.Now()} },
			OnChange: func() { changed <- struct{}{} },
		})
		require.NoError(t, err)
		defer func() { _ = s.Close() }()

		// A TTL off the prune interval's grid: a prune every second would
		// report it up to a second late.
		const ttl = 10*time.Second + 300*time.Millisecond
		sw, err := s.Add(t.Context(), &policy.Switch{Scope: policy.ScopeGlobal, Reason: "r", TTL: ttl})
		require.NoError(t, err)
		<-changed

		time.Sleep(ttl - time.Nanosecond)
		synctest.Wait()
		require.Empty(t, reports, "not before its expiry")
		require.Len(t, s.List(), 1)

		time.Sleep(time.Nanosecond)
		synctest.Wait()
		require.Len(t, reports, 1, "reported at its expiry")
		r := <-reports
		assert.Equal(t, sw.ID, r.id)
		assert.True(t, r.at.Equal(sw.Expires), "reported at %v, expires %v", r.at, sw.Expires)
		assert.Len(t, changed, 1, "OnChange told at the expiry")
		assert.Empty(t, s.List())
	})
}
