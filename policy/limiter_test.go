package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
)

func newLimiter(tb testing.TB, cfg configs.RateLimits, clk *clock) *policy.Limiter {
	tb.Helper()
	l, err := policy.NewLimiter(cfg, nil, policy.LimiterOptions{Now: clk.Now})
	require.NoError(tb, err)
	return l
}

func allowed() policy.Decision { return policy.Decision{Allowed: true} }

func refused(rule string, after time.Duration) policy.Decision {
	return policy.Decision{Rule: rule, RetryAfter: after}
}

func TestLimiterTokenBucket(t *testing.T) {
	t.Parallel()

	clk := newClock()
	l := newLimiter(t, configs.RateLimits{PerPrincipal: &configs.Limit{Rate: 1, Burst: 2}}, clk)
	ctx := t.Context()
	allow := func() policy.Decision { return l.Allow(ctx, "alice", "orders__get_order", "orders") }

	assert.Equal(t, allowed(), allow(), "a full bucket allows the burst")
	assert.Equal(t, allowed(), allow())
	assert.Equal(t, refused(policy.RulePerPrincipal, time.Second), allow())
	assert.Equal(t, allowed(), l.Allow(ctx, "bob", "orders__get_order", "orders"), "another principal has its own bucket")

	clk.Advance(400 * time.Millisecond)
	assert.Equal(t, refused(policy.RulePerPrincipal, 600*time.Millisecond), allow())
	clk.Advance(600 * time.Millisecond)
	assert.Equal(t, allowed(), allow(), "one token refilled")
	assert.Equal(t, refused(policy.RulePerPrincipal, time.Second), allow())

	clk.Advance(time.Hour)
	assert.Equal(t, allowed(), allow(), "the bucket refills up to the burst")
	assert.Equal(t, allowed(), allow())
	assert.False(t, allow().Allowed)
}

func TestLimiterRules(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		cfg   configs.RateLimits
		calls []struct{ subject, tool, upstream string }
		want  []policy.Decision
	}{
		{
			name: "no limits",
			cfg:  configs.RateLimits{},
			calls: []struct{ subject, tool, upstream string }{
				{"a", "t", "u"}, {"a", "t", "u"}, {"a", "t", "u"},
			},
			want: []policy.Decision{allowed(), allowed(), allowed()},
		},
		{
			name: "a refused call costs the other buckets nothing",
			cfg: configs.RateLimits{
				PerPrincipal:     &configs.Limit{Rate: 1, Burst: 3},
				PerPrincipalTool: &configs.Limit{Rate: 1, Burst: 1},
			},
			calls: []struct{ subject, tool, upstream string }{
				{"a", "t1", "u"}, {"a", "t1", "u"}, {"a", "t1", "u"}, {"a", "t2", "u"}, {"a", "t3", "u"}, {"a", "t4", "u"},
			},
			want: []policy.Decision{
				allowed(),
				refused(policy.RulePerPrincipalTool, time.Second),
				refused(policy.RulePerPrincipalTool, time.Second),
				allowed(),
				allowed(),
				refused(policy.RulePerPrincipal, time.Second),
			},
		},
		{
			name: "per upstream with an override",
			cfg: configs.RateLimits{
				PerUpstream:          &configs.Limit{Rate: 2, Burst: 1},
				PerUpstreamOverrides: map[string]configs.Limit{"payments": {Rate: 0.5, Burst: 2}},
			},
			calls: []struct{ subject, tool, upstream string }{
				{"a", "t", "orders"}, {"b", "t", "orders"}, {"a", "t", "payments"}, {"b", "t", "payments"}, {"c", "t", "payments"},
			},
			want: []policy.Decision{
				allowed(),
				refused(policy.RulePerUpstream, 500*time.Millisecond),
				allowed(),
				allowed(),
				refused(policy.RulePerUpstream, 2*time.Second),
			},
		},
		{
			name: "only an override",
			cfg: configs.RateLimits{
				PerUpstreamOverrides: map[string]configs.Limit{"payments": {Rate: 1, Burst: 1}},
			},
			calls: []struct{ subject, tool, upstream string }{
				{"a", "t", "orders"}, {"a", "t", "orders"}, {"a", "t", "payments"}, {"a", "t", "payments"},
			},
			want: []policy.Decision{allowed(), allowed(), allowed(), refused(policy.RulePerUpstream, time.Second)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			l := newLimiter(t, tt.cfg, newClock())
			var got []policy.Decision
			for _, c := range tt.calls {
				got = append(got, l.Allow(t.Context(), c.subject, c.tool, c.upstream))
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLimiterBoundedKeys(t *testing.T) {
	t.Parallel()

	clk := newClock()
	l := newLimiter(t, configs.RateLimits{
		PerPrincipal:     &configs.Limit{Rate: 1, Burst: 1},
		PerPrincipalTool: &configs.Limit{Rate: 1, Burst: 1},
		MaxKeys:          20,
	}, clk)
	for i := range 1000 {
		l.Allow(t.Context(), fmt.Sprintf("user-%d", i), "tool", "u")
		require.LessOrEqual(t, l.Buckets(), 20)
	}
	assert.Equal(t, 20, l.Buckets())
}

func TestNewLimiterRejects(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		cfg  configs.RateLimits
	}{
		{name: "zero rate", cfg: configs.RateLimits{PerPrincipal: &configs.Limit{Rate: 0, Burst: 1}}},
		{name: "negative rate", cfg: configs.RateLimits{PerUpstream: &configs.Limit{Rate: -1, Burst: 1}}},
		{name: "zero burst", cfg: configs.RateLimits{PerPrincipalTool: &configs.Limit{Rate: 1}}},
		{name: "bad override", cfg: configs.RateLimits{PerUpstreamOverrides: map[string]configs.Limit{"u": {}}}},
		{name: "redis without client", cfg: configs.RateLimits{Backend: configs.RateLimitBackendRedis}},
		{name: "unknown backend", cfg: configs.RateLimits{Backend: "etcd"}},
		{name: "unknown on_redis_error", cfg: configs.RateLimits{OnRedisError: "shrug"}},
		{name: "negative max keys", cfg: configs.RateLimits{MaxKeys: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := policy.NewLimiter(tt.cfg, nil, policy.LimiterOptions{})
			require.ErrorIs(t, err, policy.ErrInvalidConfig)
		})
	}
}

func TestLimiterSharedThroughRedis(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	// A rate this low refills nothing during the test.
	cfg := configs.RateLimits{
		PerPrincipal:     &configs.Limit{Rate: 0.001, Burst: 5},
		PerPrincipalTool: &configs.Limit{Rate: 0.001, Burst: 100},
	}
	newReplica := func() *policy.Limiter {
		l, err := policy.NewLimiter(cfg, redisClient(t, srv), policy.LimiterOptions{KeyPrefix: "test:"})
		require.NoError(t, err)
		return l
	}
	a, b := newReplica(), newReplica()
	ctx := t.Context()

	var allowedCalls int
	for i := range 10 {
		l := a
		if i%2 == 1 {
			l = b
		}
		d := l.Allow(ctx, "alice", "orders__get_order", "orders")
		if d.Allowed {
			allowedCalls++
			continue
		}
		assert.Equal(t, policy.RulePerPrincipal, d.Rule)
		assert.Greater(t, d.RetryAfter, time.Duration(0))
	}
	assert.Equal(t, 5, allowedCalls, "the burst holds across both replicas")
	assert.True(t, b.Allow(ctx, "bob", "orders__get_order", "orders").Allowed, "another principal has its own bucket")
	assert.Equal(t, policy.LimiterStats{}, a.Stats())

	// Length-prefixed keys keep "a:b"+"c" apart from "a"+"b:c".
	tight := configs.RateLimits{PerPrincipalTool: &configs.Limit{Rate: 0.001, Burst: 1}}
	l, err := policy.NewLimiter(tight, redisClient(t, srv), policy.LimiterOptions{KeyPrefix: "test2:"})
	require.NoError(t, err)
	assert.True(t, l.Allow(ctx, "a:b", "c", "u").Allowed)
	assert.True(t, l.Allow(ctx, "a", "b:c", "u").Allowed)
	assert.False(t, l.Allow(ctx, "a", "b:c", "u").Allowed)
}

func TestLimiterRedisDown(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name         string
		onRedisError string
		// whileDown are the decisions of three calls while Redis is down.
		whileDown []policy.Decision
		stats     policy.LimiterStats
	}{
		{
			name:         "fall back to local buckets",
			onRedisError: configs.OnRedisErrorLocal,
			whileDown:    []policy.Decision{allowed(), allowed(), refused(policy.RulePerPrincipal, 1000*time.Second)},
			stats:        policy.LimiterStats{RedisErrors: 1, Fallbacks: 3, RedisDown: true},
		},
		{
			name:         "refuse",
			onRedisError: configs.OnRedisErrorRefuse,
			whileDown: []policy.Decision{
				refused(policy.RuleRedisUnavailable, time.Second),
				refused(policy.RuleRedisUnavailable, time.Second),
				refused(policy.RuleRedisUnavailable, time.Second),
			},
			stats: policy.LimiterStats{RedisErrors: 1, Refused: 3, RedisDown: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			srv := redistest.Start(t)
			clk := newClock()
			l, err := policy.NewLimiter(configs.RateLimits{
				PerPrincipal: &configs.Limit{Rate: 0.001, Burst: 2},
				OnRedisError: tt.onRedisError,
			}, redisClient(t, srv), policy.LimiterOptions{Now: clk.Now, RedisRetry: time.Second})
			require.NoError(t, err)
			ctx := t.Context()

			assert.Equal(t, allowed(), l.Allow(ctx, "alice", "t", "u"))
			srv.Stop()
			var got []policy.Decision
			for range 3 {
				got = append(got, l.Allow(ctx, "alice", "t", "u"))
			}
			assert.Equal(t, tt.whileDown, got)
			assert.Equal(t, tt.stats, l.Stats())

			// Redis is back (empty); calls use it again once the retry delay
			// has passed.
			srv.Restart()
			clk.Advance(time.Second)
			assert.Equal(t, allowed(), l.Allow(ctx, "alice", "t", "u"))
			assert.False(t, l.Stats().RedisDown)
			assert.Equal(t, allowed(), l.Allow(ctx, "alice", "t", "u"))
			assert.Equal(t, policy.RulePerPrincipal, l.Allow(ctx, "alice", "t", "u").Rule, "Redis decides again")
		})
	}
}

func TestLimiterCanceledCallerIsNotARedisFailure(t *testing.T) {
	t.Parallel()

	srv := redistest.Start(t)
	l, err := policy.NewLimiter(configs.RateLimits{PerPrincipal: &configs.Limit{Rate: 1, Burst: 1}}, redisClient(t, srv), policy.LimiterOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	l.Allow(ctx, "alice", "t", "u")
	assert.False(t, l.Stats().RedisDown)
	assert.Zero(t, l.Stats().RedisErrors)
}

func BenchmarkLimiterLocal(b *testing.B) {
	clk := newClock()
	l := newLimiter(b, configs.RateLimits{
		PerPrincipal:     &configs.Limit{Rate: 1e9, Burst: 1e9},
		PerPrincipalTool: &configs.Limit{Rate: 1e9, Burst: 1e9},
		PerUpstream:      &configs.Limit{Rate: 1e9, Burst: 1e9},
	}, clk)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !l.Allow(ctx, "alice", "orders__get_order", "orders").Allowed {
			b.Fatal("refused")
		}
	}
}
