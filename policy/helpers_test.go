package policy_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
)

// failAfter bounds waits for something that should happen promptly. It is a
// failure timeout, never a synchronisation.
const failAfter = 10 * time.Second

// clock is a manual clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// redisClient connects to srv as the gateway would.
func redisClient(t *testing.T, srv *redistest.Server) *redis.Client {
	t.Helper()
	cfg := &configs.Redis{URL: srv.URL(), DialTimeout: time.Second, CommandTimeout: time.Second}
	c, err := policy.NewRedisClient(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// changes returns an OnChange callback and the channel it signals.
func changes() (func(), chan struct{}) {
	ch := make(chan struct{}, 1)
	return func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}, ch
}

// waitFor waits until cond holds, re-checking after every signal on ch.
func waitFor(t *testing.T, ch <-chan struct{}, cond func() bool, what string) {
	t.Helper()
	timer := time.NewTimer(failAfter)
	defer timer.Stop()
	for !cond() {
		select {
		case <-ch:
		case <-timer.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func tick(t *testing.T, ticker interface{ Tick(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	require.NoError(t, ticker.Tick(ctx))
}
