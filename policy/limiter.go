package policy

import (
	"context"
	_ "embed"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mcpgw/mcpgw/configs"
)

// Rule names, as Decision.Rule and the audit stream spell them.
const (
	// RulePerPrincipal is the per-subject limit.
	RulePerPrincipal = "per_principal"
	// RulePerPrincipalTool is the per-subject, per-tool limit.
	RulePerPrincipalTool = "per_principal_tool"
	// RulePerUpstream is the per-upstream limit (or its override).
	RulePerUpstream = "per_upstream"
	// RuleRedisUnavailable refuses calls while Redis fails and
	// on_redis_error is refuse.
	RuleRedisUnavailable = "redis_unavailable"
)

// Decision is the answer of Limiter.Allow.
type Decision struct {
	// Allowed says whether the call may proceed.
	Allowed bool
	// RetryAfter is, for a refused call, how long until the refusing
	// bucket has a token again.
	RetryAfter time.Duration
	// Rule names the limit that refused the call; empty when allowed.
	Rule string
}

// LimiterOptions configure a Limiter. Every field is optional.
type LimiterOptions struct {
	// Now is the clock of the local buckets and of the Redis retry delay
	// (the Redis buckets use the Redis server's clock, shared by every
	// replica). Default time.Now.
	Now func() time.Time
	// Logger receives Redis failures and recoveries, once per transition.
	// Default: discard.
	Logger *slog.Logger
	// KeyPrefix starts every Redis key. Default "mcpgw:".
	KeyPrefix string
	// RedisRetry is how long Redis is left alone after a failure before
	// one call probes it again; meanwhile calls are decided by
	// on_redis_error without waiting for Redis. Default 1s.
	RedisRetry time.Duration
}

// Limiter applies the rate limits of configs.RateLimits. Local buckets are
// golang.org/x/time/rate limiters in a bounded LRU; Redis buckets are GCRA
// timestamps updated atomically for all the rules of a call by one Lua
// script. A call must pass every rule that applies to it, and a refused
// call takes no token from any bucket (locally, up to a race between
// concurrent calls of the same key).
type Limiter struct {
	now    func() time.Time
	logger *slog.Logger

	principal     *ruleLimit
	principalTool *ruleLimit
	upstream      *ruleLimit
	overrides     map[string]*ruleLimit
	noRules       bool

	local *buckets

	// Redis backend; client is nil for the local backend.
	client       *redis.Client
	script       *redis.Script // gcra.lua, with its SHA-1 for EVALSHA
	refuse       bool
	retry        time.Duration
	keyPrincipal string
	keyTool      string
	keyUpstream  string
	downUntil    atomic.Int64 // Unix nanoseconds; 0 while Redis works.

	redisErrors atomic.Uint64
	fallbacks   atomic.Uint64
	refused     atomic.Uint64
}

// ruleLimit is one compiled limit.
type ruleLimit struct {
	name  string
	kind  ruleKind
	limit rate.Limit
	burst int
	// intervalUS is the GCRA emission interval in microseconds.
	intervalUS int64
}

type ruleKind uint8

const (
	kindPrincipal ruleKind = iota + 1
	kindPrincipalTool
	kindUpstream
)

// LimiterStats are counters of a Limiter's Redis backend.
type LimiterStats struct {
	// RedisErrors counts failed Redis calls.
	RedisErrors uint64
	// Fallbacks counts calls decided by local buckets because Redis
	// failed (on_redis_error local).
	Fallbacks uint64
	// Refused counts calls refused because Redis failed (on_redis_error
	// refuse).
	Refused uint64
	// RedisDown is true between a failure and the next successful call.
	RedisDown bool
}

// NewLimiter compiles cfg. client is the shared Redis (nil for none); it
// is used when cfg.Backend is redis, or empty and client is not nil. The
// limiter does not close the client.
func NewLimiter(cfg configs.RateLimits, client *redis.Client, opts LimiterOptions) (*Limiter, error) {
	l := &Limiter{
		now:    opts.Now,
		logger: opts.Logger,
		retry:  opts.RedisRetry,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.logger == nil {
		l.logger = slog.New(slog.DiscardHandler)
	}
	if l.retry <= 0 {
		l.retry = time.Second
	}
	var err error
	if l.principal, err = compileLimit(RulePerPrincipal, kindPrincipal, cfg.PerPrincipal); err != nil {
		return nil, err
	}
	if l.principalTool, err = compileLimit(RulePerPrincipalTool, kindPrincipalTool, cfg.PerPrincipalTool); err != nil {
		return nil, err
	}
	if l.upstream, err = compileLimit(RulePerUpstream, kindUpstream, cfg.PerUpstream); err != nil {
		return nil, err
	}
	l.overrides = make(map[string]*ruleLimit, len(cfg.PerUpstreamOverrides))
	for name, lim := range cfg.PerUpstreamOverrides {
		if l.overrides[name], err = compileLimit(RulePerUpstream, kindUpstream, &lim); err != nil {
			return nil, fmt.Errorf("override of %s: %w", name, err)
		}
	}
	l.noRules = l.principal == nil && l.principalTool == nil && l.upstream == nil && len(l.overrides) == 0

	maxKeys := cfg.MaxKeys
	if maxKeys == 0 {
		maxKeys = configs.DefaultRateLimitMaxKeys
	}
	if maxKeys < 0 {
		return nil, fmt.Errorf("%w: max_keys must be positive", ErrInvalidConfig)
	}
	l.local = newBuckets(maxKeys)

	switch cfg.Backend {
	case configs.RateLimitBackendLocal:
	case configs.RateLimitBackendRedis, "":
		if client == nil && cfg.Backend == configs.RateLimitBackendRedis {
			return nil, fmt.Errorf("%w: the redis rate-limit backend needs a redis client", ErrInvalidConfig)
		}
		l.client = client
		l.script = redis.NewScript(gcraSource)
	default:
		return nil, fmt.Errorf("%w: unknown rate-limit backend %q", ErrInvalidConfig, cfg.Backend)
	}
	switch cfg.OnRedisError {
	case "", configs.OnRedisErrorLocal:
	case configs.OnRedisErrorRefuse:
		l.refuse = true
	default:
		return nil, fmt.Errorf("%w: unknown on_redis_error %q", ErrInvalidConfig, cfg.OnRedisError)
	}
	prefix := opts.KeyPrefix
	if prefix == "" {
		prefix = configs.DefaultRedisKeyPrefix
	}
	l.keyPrincipal = prefix + "rl:" + RulePerPrincipal + ":"
	l.keyTool = prefix + "rl:" + RulePerPrincipalTool + ":"
	l.keyUpstream = prefix + "rl:" + RulePerUpstream + ":"
	return l, nil
}

func compileLimit(name string, kind ruleKind, l *configs.Limit) (*ruleLimit, error) {
	if l == nil {
		return nil, nil
	}
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) || l.Burst < 1 {
		return nil, fmt.Errorf("%w: %s needs a positive rate and a burst of at least 1", ErrInvalidConfig, name)
	}
	return &ruleLimit{
		name:       name,
		kind:       kind,
		limit:      rate.Limit(l.Rate),
		burst:      l.Burst,
		intervalUS: max(1, int64(math.Ceil(1e6/l.Rate))),
	}, nil
}

// check is one rule applied to one call.
type check struct {
	rule *ruleLimit
	key  bucketKey
}

// Allow decides whether subject may call the exposed tool of upstream now,
// and takes a token from every applicable bucket when it may. An empty
// subject is one principal like any other.
func (l *Limiter) Allow(ctx context.Context, subject, tool, upstream string) Decision {
	if l.noRules {
		return Decision{Allowed: true}
	}
	var buf [3]check
	checks := buf[:0]
	if r := l.principal; r != nil {
		checks = append(checks, check{rule: r, key: bucketKey{kind: r.kind, a: subject}})
	}
	if r := l.principalTool; r != nil {
		checks = append(checks, check{rule: r, key: bucketKey{kind: r.kind, a: subject, b: tool}})
	}
	r := l.overrides[upstream]
	if r == nil {
		r = l.upstream
	}
	if r != nil {
		checks = append(checks, check{rule: r, key: bucketKey{kind: r.kind, a: upstream}})
	}
	if len(checks) == 0 {
		return Decision{Allowed: true}
	}
	now := l.now()
	if l.client == nil {
		return l.allowLocal(checks, now)
	}
	return l.allowShared(ctx, checks, now)
}

// allowLocal decides with the local buckets: first it checks that every
// bucket has a token, then takes them.
func (l *Limiter) allowLocal(checks []check, now time.Time) Decision {
	var lims [3]*rate.Limiter
	for i, c := range checks {
		lims[i] = l.local.get(c.key, c.rule)
		if tokens := lims[i].TokensAt(now); tokens < 1 {
			return refusal(c.rule, tokens)
		}
	}
	for i, c := range checks {
		if !lims[i].AllowN(now, 1) {
			// A concurrent call took the last token between the two loops.
			return refusal(c.rule, lims[i].TokensAt(now))
		}
	}
	return Decision{Allowed: true}
}

// refusal is the decision of a bucket holding tokens (< 1).
func refusal(r *ruleLimit, tokens float64) Decision {
	wait := time.Duration(math.Ceil((1 - tokens) / float64(r.limit) * float64(time.Second)))
	return Decision{Rule: r.name, RetryAfter: max(wait, 0)}
}

// allowShared decides with Redis, or by OnRedisError while Redis fails.
func (l *Limiter) allowShared(ctx context.Context, checks []check, now time.Time) Decision {
	until := l.downUntil.Load()
	if until != 0 {
		// Redis failed recently. One call per retry delay probes it; the
		// others do not wait for it.
		if now.UnixNano() < until || !l.downUntil.CompareAndSwap(until, now.Add(l.retry).UnixNano()) {
			return l.fallback(checks, now)
		}
	}
	d, err := l.allowRedis(ctx, checks)
	if err != nil {
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about Redis.
			return l.fallback(checks, now)
		}
		l.redisErrors.Add(1)
		if l.downUntil.Swap(now.Add(l.retry).UnixNano()) == 0 {
			mode := configs.OnRedisErrorLocal
			if l.refuse {
				mode = configs.OnRedisErrorRefuse
			}
			l.logger.WarnContext(ctx, "redis rate limiting unavailable", slog.String("on_redis_error", mode), slog.Any("error", err))
		}
		return l.fallback(checks, now)
	}
	if until != 0 && l.downUntil.Swap(0) != 0 {
		l.logger.InfoContext(ctx, "redis rate limiting available again")
	}
	return d
}

func (l *Limiter) fallback(checks []check, now time.Time) Decision {
	if l.refuse {
		l.refused.Add(1)
		return Decision{Rule: RuleRedisUnavailable, RetryAfter: l.retry}
	}
	l.fallbacks.Add(1)
	return l.allowLocal(checks, now)
}

// gcraSource applies GCRA to every key of a call at once; see gcra.lua.
//
//go:embed gcra.lua
var gcraSource string

// allowRedis runs the GCRA script over the call's keys.
func (l *Limiter) allowRedis(ctx context.Context, checks []check) (Decision, error) {
	keys := make([]string, len(checks))
	args := make([]any, 0, 2*len(checks))
	for i, c := range checks {
		keys[i] = l.redisKey(c.key)
		args = append(args, c.rule.intervalUS, c.rule.burst)
	}
	res, err := l.script.Run(ctx, l.client, keys, args...).Int64Slice()
	if err != nil {
		return Decision{}, err
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("rate-limit script returned %d values", len(res))
	}
	if res[0] == 1 {
		return Decision{Allowed: true}, nil
	}
	i := int(res[1]) - 1
	if i < 0 || i >= len(checks) {
		return Decision{}, fmt.Errorf("rate-limit script refused key %d of %d", i+1, len(checks))
	}
	return Decision{Rule: checks[i].rule.name, RetryAfter: time.Duration(res[2]) * time.Microsecond}, nil
}

// redisKey is the Redis key of a bucket:
//
//	<prefix>rl:per_principal:<subject>
//	<prefix>rl:per_principal_tool:<len(subject)>:<subject>:<tool>
//	<prefix>rl:per_upstream:<upstream>
//
// The length keeps subject "a:b" with tool "c" apart from subject "a"
// with tool "b:c".
func (l *Limiter) redisKey(k bucketKey) string {
	switch k.kind {
	case kindPrincipal:
		return l.keyPrincipal + k.a
	case kindPrincipalTool:
		return l.keyTool + strconv.Itoa(len(k.a)) + ":" + k.a + ":" + k.b
	default:
		return l.keyUpstream + k.a
	}
}

// Stats returns the Redis counters.
func (l *Limiter) Stats() LimiterStats {
	return LimiterStats{
		RedisErrors: l.redisErrors.Load(),
		Fallbacks:   l.fallbacks.Load(),
		Refused:     l.refused.Load(),
		RedisDown:   l.downUntil.Load() != 0,
	}
}

// bucketKey identifies a local bucket. Its strings are the caller's, so a
// lookup does not allocate.
type bucketKey struct {
	kind ruleKind
	a, b string
}

// buckets is a bounded set of local token buckets, sharded to spread lock
// contention; together the shards hold at most the configured number.
type buckets struct {
	seed   maphash.Seed
	shards []*lru.Cache[bucketKey, *rate.Limiter]
}

const maxShards = 16

func newBuckets(maxKeys int) *buckets {
	n := min(maxShards, maxKeys)
	b := &buckets{seed: maphash.MakeSeed(), shards: make([]*lru.Cache[bucketKey, *rate.Limiter], n)}
	for i := range n {
		size := maxKeys / n
		if i < maxKeys%n {
			size++
		}
		b.shards[i], _ = lru.New[bucketKey, *rate.Limiter](size) // Fails only for size < 1.
	}
	return b
}

// get returns the bucket of k, creating a full one when it is missing.
func (b *buckets) get(k bucketKey, r *ruleLimit) *rate.Limiter {
	h := maphash.String(b.seed, k.a) ^ maphash.String(b.seed, k.b)*31 ^ uint64(k.kind)
	shard := b.shards[h%uint64(len(b.shards))]
	if lim, ok := shard.Get(k); ok {
		return lim
	}
	lim := rate.NewLimiter(r.limit, r.burst)
	if prev, ok, _ := shard.PeekOrAdd(k, lim); ok {
		return prev
	}
	return lim
}

// len returns the number of buckets held.
func (b *buckets) len() int {
	n := 0
	for _, s := range b.shards {
		n += s.Len()
	}
	return n
}
