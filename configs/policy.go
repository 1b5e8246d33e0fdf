package configs

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Policy configures the per-call controls on tools/call: rate limits and
// where kill-switch state lives. Kill switches themselves are not
// configuration; they change at runtime through the admin API or the CLI.
// In the policy, redis and audit sections a zero value means the
// documented default (SetDefaults fills it in); negative values are
// errors.
type Policy struct {
	// RateLimits are token buckets applied after authorization.
	RateLimits RateLimits `mapstructure:"rate_limits" yaml:"rate_limits"`
	// KillSwitches says where kill-switch and drain state is kept when no
	// Redis is configured, and how often replicas resync it when one is.
	KillSwitches KillSwitchConfig `mapstructure:"kill_switches" yaml:"kill_switches"`
	// Rules are CEL authorization rules over the principal, the tool, the
	// endpoint and the arguments, checked in order after the required
	// scopes; the first that matches decides. See Rule.
	Rules []Rule `mapstructure:"rules" yaml:"rules,omitempty"`
}

// Rate-limit backends (RateLimits.Backend).
const (
	// RateLimitBackendLocal keeps buckets in each replica's memory.
	RateLimitBackendLocal = "local"
	// RateLimitBackendRedis keeps buckets in Redis, shared by replicas.
	RateLimitBackendRedis = "redis"
)

// What a Redis-backed limiter does when Redis fails (RateLimits.OnRedisError).
const (
	// OnRedisErrorLocal decides with per-replica buckets until Redis answers.
	OnRedisErrorLocal = "local"
	// OnRedisErrorRefuse refuses every call until Redis answers.
	OnRedisErrorRefuse = "refuse"
)

// RateLimits configures the rate limits. Every limit is optional; a call
// must pass all that apply to it, and the first that refuses names the rule
// in the audit record.
//
//	rate_limits:
//	  per_principal:      {rate: 10, burst: 20}
//	  per_principal_tool: {rate: 2, burst: 5}
//	  per_upstream:       {rate: 200, burst: 400}
//	  per_upstream_overrides:
//	    payments: {rate: 20, burst: 20}
type RateLimits struct {
	// PerPrincipal limits the calls of one subject, over all tools. Unset
	// means no such limit.
	PerPrincipal *Limit `mapstructure:"per_principal" yaml:"per_principal,omitempty"`
	// PerPrincipalTool limits the calls of one subject to one exposed tool.
	// Unset means no such limit.
	PerPrincipalTool *Limit `mapstructure:"per_principal_tool" yaml:"per_principal_tool,omitempty"`
	// PerUpstream limits the calls to one upstream, over all subjects: it
	// protects the upstream. Unset means no such limit, except for the
	// upstreams named in PerUpstreamOverrides.
	PerUpstream *Limit `mapstructure:"per_upstream" yaml:"per_upstream,omitempty"`
	// PerUpstreamOverrides replaces PerUpstream for the upstreams it names
	// (by upstream name).
	PerUpstreamOverrides map[string]Limit `mapstructure:"per_upstream_overrides" yaml:"per_upstream_overrides,omitempty"`
	// Backend is local (buckets in each replica's memory, so N replicas
	// allow N times the rate) or redis (buckets shared through the redis
	// section). Empty, the default, means redis when the redis section is
	// set and local otherwise; see Config.RateLimitBackend.
	Backend string `mapstructure:"backend" yaml:"backend,omitempty"`
	// OnRedisError is what the redis backend does while Redis fails: local
	// (decide with per-replica buckets, logged and counted) or refuse
	// (refuse every call with the rule redis_unavailable). Default local.
	OnRedisError string `mapstructure:"on_redis_error" yaml:"on_redis_error"`
	// MaxKeys bounds the number of local buckets (one per subject, subject
	// and tool, or upstream); the least recently used is forgotten, which
	// refills it. Default 100000.
	MaxKeys int `mapstructure:"max_keys" yaml:"max_keys"`
}

// Limit is a token bucket.
type Limit struct {
	// Rate is the sustained number of calls per second; fractions are
	// allowed (0.5 is one call every two seconds). It must be positive.
	Rate float64 `mapstructure:"rate" yaml:"rate"`
	// Burst is the number of calls allowed at once after a quiet period.
	// At least 1. Default: Rate rounded up, at least 1.
	Burst int `mapstructure:"burst" yaml:"burst"`
}

// KillSwitchConfig says where kill-switch and drain state lives. With a
// redis section it lives in Redis (a hash, changes broadcast with pub/sub)
// and StateFile must be empty; otherwise in StateFile, or in memory when
// that is empty too.
type KillSwitchConfig struct {
	// StateFile is a JSON file holding the kill switches of a single
	// replica, so they survive a restart; drains are kept beside it in
	// <state_file>.drains, and the tool contracts approved at run time
	// (pinning) in <state_file>.approvals. Written atomically. Empty, the default, keeps
	// them in memory only.
	StateFile string `mapstructure:"state_file" yaml:"state_file,omitempty"`
	// ResyncInterval is how often a replica reloads the shared state from
	// Redis, in addition to pub/sub notifications, and how often it retries
	// while the state cannot be loaded. Default 500ms.
	ResyncInterval time.Duration `mapstructure:"resync_interval" yaml:"resync_interval"`
}

// Redis is the shared state of replicas: rate-limit buckets and kill
// switches. A single Redis server (or a Sentinel-managed primary behind one
// address) is supported, not Redis Cluster.
//
// The gateway refuses to start when Redis does not answer PING within
// DialTimeout plus CommandTimeout, with an error naming the address. Once
// running, a Redis failure leaves the kill switches at their last known
// state and the rate limits to rate_limits.on_redis_error.
type Redis struct {
	// URL is redis://[user@]host:port[/db] or rediss:// for TLS. Put the
	// password in Password rather than in the URL.
	URL string `mapstructure:"url" yaml:"url"`
	// Password authenticates to Redis. Optional.
	Password SecretRef `mapstructure:"password" yaml:"password"`
	// KeyPrefix starts every key and channel mcpgw uses, so several
	// gateways can share one Redis. Default "mcpgw:".
	KeyPrefix string `mapstructure:"key_prefix" yaml:"key_prefix"`
	// DialTimeout bounds connecting to Redis. Default 1s, at least 10ms.
	DialTimeout time.Duration `mapstructure:"dial_timeout" yaml:"dial_timeout"`
	// CommandTimeout bounds one command, such as a rate-limit check; one
	// that takes longer counts as a Redis failure (see
	// rate_limits.on_redis_error). Default 250ms, at least 10ms.
	CommandTimeout time.Duration `mapstructure:"command_timeout" yaml:"command_timeout"`
}

// Audit sink types (AuditSink.Type).
const (
	// AuditSinkStdout writes JSON Lines to standard output.
	AuditSinkStdout = "stdout"
	// AuditSinkFile appends JSON Lines to a file.
	AuditSinkFile = "file"
)

// Audit configures the audit stream: one JSON line per tools/call decision
// and per kill-switch, drain or reload event. It is never sampled and never
// drops a record silently.
type Audit struct {
	// Sinks are where records go; each record is written to every sink.
	// Default: one stdout sink.
	Sinks []AuditSink `mapstructure:"sinks" yaml:"sinks"`
	// QueueSize is the number of records buffered between the calls and the
	// writer; the queue is allocated at start. Default 8192, at most
	// 1048576.
	QueueSize int `mapstructure:"queue_size" yaml:"queue_size"`
	// StuckAfter is how long a call waits for room in a full queue before
	// the sink counts as stuck; while it is, tools marked destructive are
	// refused rather than run unaudited. Default 2s.
	StuckAfter time.Duration `mapstructure:"stuck_after" yaml:"stuck_after"`
}

// AuditSink is one destination of the audit stream.
type AuditSink struct {
	// Type is stdout or file.
	Type string `mapstructure:"type" yaml:"type"`
	// Path is the file a file sink appends to; it is created (mode 0600)
	// when missing, and the gateway refuses to start when it cannot be
	// opened for writing. Only for type file.
	Path string `mapstructure:"path" yaml:"path,omitempty"`
}

// ArgumentLogging says what the audit stream records of a call's arguments
// besides their SHA-256 (always recorded, over the RFC 8785 canonical
// form). It is a per-upstream setting.
type ArgumentLogging string

// Argument logging levels.
const (
	// ArgumentsNone records only the hash. The zero value means this.
	ArgumentsNone ArgumentLogging = "none"
	// ArgumentsRedacted records the arguments' structure: object keys,
	// arrays, booleans and null as they are, every string replaced by
	// "<string>" and every number by "<number>".
	ArgumentsRedacted ArgumentLogging = "redacted"
	// ArgumentsFull records the arguments as sent. They may hold personal
	// data or secrets.
	ArgumentsFull ArgumentLogging = "full"
)

// Defaults of the policy, redis and audit sections.
const (
	// DefaultRateLimitMaxKeys bounds the local rate-limit buckets.
	DefaultRateLimitMaxKeys = 100_000
	// DefaultResyncInterval is how often replicas reload shared kill-switch
	// state.
	DefaultResyncInterval = 500 * time.Millisecond
	// DefaultRedisKeyPrefix starts every Redis key and channel.
	DefaultRedisKeyPrefix = "mcpgw:"
	// DefaultRedisDialTimeout bounds connecting to Redis.
	DefaultRedisDialTimeout = time.Second
	// DefaultRedisCommandTimeout bounds one Redis command.
	DefaultRedisCommandTimeout = 250 * time.Millisecond
	// MinRedisTimeout is the least dial and command timeout: a round trip
	// to Redis, even on the same host, may take a millisecond under load.
	MinRedisTimeout = 10 * time.Millisecond
	// DefaultAuditQueueSize is the number of records buffered.
	DefaultAuditQueueSize = 8192
	// MaxAuditQueueSize bounds audit.queue_size: the queue is allocated
	// whole at start, and a larger one only delays noticing a stuck sink.
	MaxAuditQueueSize = 1 << 20
	// DefaultAuditStuckAfter is when a full audit queue counts as stuck.
	DefaultAuditStuckAfter = 2 * time.Second
	// DefaultArgumentLogging is what the audit stream records of arguments.
	DefaultArgumentLogging = ArgumentsNone
)

func (p *Policy) setDefaults() {
	rl := &p.RateLimits
	setDefault(&rl.OnRedisError, OnRedisErrorLocal)
	setDefault(&rl.MaxKeys, DefaultRateLimitMaxKeys)
	for _, l := range []*Limit{rl.PerPrincipal, rl.PerPrincipalTool, rl.PerUpstream} {
		if l != nil {
			l.setDefaults()
		}
	}
	for name, l := range rl.PerUpstreamOverrides {
		l.setDefaults()
		rl.PerUpstreamOverrides[name] = l
	}
	setDefault(&p.KillSwitches.ResyncInterval, DefaultResyncInterval)
}

// setDefaults fills Burst from Rate. A rate that is not a positive finite
// number is left for Validate to report.
func (l *Limit) setDefaults() {
	if l.Burst != 0 || !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		return
	}
	l.Burst = int(min(math.Ceil(l.Rate), math.MaxInt32))
}

func (r *Redis) setDefaults() {
	setDefault(&r.KeyPrefix, DefaultRedisKeyPrefix)
	setDefault(&r.DialTimeout, DefaultRedisDialTimeout)
	setDefault(&r.CommandTimeout, DefaultRedisCommandTimeout)
}

func (a *Audit) setDefaults() {
	if len(a.Sinks) == 0 {
		a.Sinks = []AuditSink{{Type: AuditSinkStdout}}
	}
	setDefault(&a.QueueSize, DefaultAuditQueueSize)
	setDefault(&a.StuckAfter, DefaultAuditStuckAfter)
}

// DrainStateFile is where drains are kept beside StateFile:
// <state_file>.drains, or "" (memory) when StateFile is empty.
func (k *KillSwitchConfig) DrainStateFile() string {
	if k.StateFile == "" {
		return ""
	}
	return k.StateFile + ".drains"
}

// ApprovalStateFile is where run-time approvals of tool contracts are kept
// beside StateFile: <state_file>.approvals, or "" (memory) when StateFile
// is empty.
func (k *KillSwitchConfig) ApprovalStateFile() string {
	if k.StateFile == "" {
		return ""
	}
	return k.StateFile + ".approvals"
}

// RateLimitBackend returns the rate-limit backend in effect: Backend when
// set, otherwise redis when the redis section is set and local when not.
func (c *Config) RateLimitBackend() string {
	switch {
	case c.Policy.RateLimits.Backend != "":
		return c.Policy.RateLimits.Backend
	case c.Redis != nil:
		return RateLimitBackendRedis
	default:
		return RateLimitBackendLocal
	}
}

// Effective returns the level in effect: a, or ArgumentsNone when a is
// empty.
func (a ArgumentLogging) Effective() ArgumentLogging {
	if a == "" {
		return DefaultArgumentLogging
	}
	return a
}

func (v *validator) policy(p *Policy, c *Config) {
	rl := &p.RateLimits
	v.limit("policy.rate_limits.per_principal", rl.PerPrincipal)
	v.limit("policy.rate_limits.per_principal_tool", rl.PerPrincipalTool)
	v.limit("policy.rate_limits.per_upstream", rl.PerUpstream)
	for _, name := range sortedKeys(rl.PerUpstreamOverrides) {
		path := fmt.Sprintf("policy.rate_limits.per_upstream_overrides[%s]", name)
		l := rl.PerUpstreamOverrides[name]
		v.limit(path, &l)
		if !slices.ContainsFunc(c.Upstreams, func(u Upstream) bool { return u.Name == name }) {
			v.add(path, "%q is not the name of an upstream", name)
		}
	}
	switch rl.Backend {
	case "", RateLimitBackendLocal:
	case RateLimitBackendRedis:
		if c.Redis == nil {
			v.add("policy.rate_limits.backend", "redis needs the redis section")
		}
	default:
		v.add("policy.rate_limits.backend", "%q must be local or redis%s", rl.Backend, didYouMean(rl.Backend, "local", "redis"))
	}
	switch rl.OnRedisError {
	case "", OnRedisErrorLocal, OnRedisErrorRefuse:
	default:
		v.add("policy.rate_limits.on_redis_error", "%q must be local or refuse%s", rl.OnRedisError, didYouMean(rl.OnRedisError, OnRedisErrorLocal, OnRedisErrorRefuse))
	}
	if rl.MaxKeys < 0 {
		v.add("policy.rate_limits.max_keys", "must be positive")
	}

	ks := &p.KillSwitches
	if ks.StateFile != "" && c.Redis != nil {
		v.add("policy.kill_switches.state_file", "must be empty when the redis section is set: kill switches then live in Redis")
	}
	v.nonNegativeDuration("policy.kill_switches.resync_interval", ks.ResyncInterval)
	v.rules(p.Rules)
}

// nonNegativeDuration checks a duration whose zero value means its default,
// which SetDefaults fills in.
func (v *validator) nonNegativeDuration(path string, d time.Duration) {
	if d < 0 {
		v.add(path, "must be a positive duration")
	}
}

// limit checks an optional token bucket.
func (v *validator) limit(path string, l *Limit) {
	if l == nil {
		return
	}
	if !(l.Rate > 0) || math.IsInf(l.Rate, 0) {
		v.add(path+".rate", "must be a positive number of calls per second")
	}
	if l.Burst < 1 {
		v.add(path+".burst", "must be at least 1")
	}
}

func (v *validator) redis(r *Redis) {
	v.redisURL("redis.url", r.URL)
	if !r.Password.IsZero() {
		v.secretRef("redis.password", r.Password)
		if u, err := url.Parse(r.URL); err == nil && u.User != nil {
			if _, ok := u.User.Password(); ok {
				v.add("redis.password", "set the password here or in redis.url, not both")
			}
		}
	}
	for path, d := range map[string]time.Duration{"redis.dial_timeout": r.DialTimeout, "redis.command_timeout": r.CommandTimeout} {
		v.nonNegativeDuration(path, d)
		if d > 0 && d < MinRedisTimeout {
			v.add(path, "%v is below %v: the gateway could not reach Redis at start, and every command would time out", d, MinRedisTimeout)
		}
	}
}

// redisURL checks a redis:// or rediss:// URL. Whether a server answers
// there is checked when the gateway starts. It never quotes the URL, which
// may carry a password.
func (v *validator) redisURL(path, raw string) {
	if raw == "" {
		v.add(path, "required")
		return
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" {
		v.add(path, "must be a URL such as redis://host:6379/0")
		return
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		v.add(path, "scheme must be redis or rediss")
	}
	if u.Hostname() == "" {
		v.add(path, "must have a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			v.add(path, "port is out of range")
		}
	}
	if db := strings.Trim(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			v.add(path, "the path must be a database number, such as /0")
		}
	}
	if u.Fragment != "" {
		v.add(path, "must not have a fragment")
	}
}

func (v *validator) audit(a *Audit) {
	paths := make(map[string]int, len(a.Sinks))
	for i, s := range a.Sinks {
		p := fmt.Sprintf("audit.sinks[%d]", i)
		switch s.Type {
		case AuditSinkStdout:
			if s.Path != "" {
				v.add(p+".path", "only a file sink has a path")
			}
		case AuditSinkFile:
			if strings.TrimSpace(s.Path) == "" {
				v.add(p+".path", "required for a file sink")
				continue
			}
			if j, ok := paths[s.Path]; ok {
				v.add(p+".path", "%q is already used by audit.sinks[%d]", s.Path, j)
				continue
			}
			paths[s.Path] = i
		default:
			v.add(p+".type", "%q must be stdout or file%s", s.Type, didYouMean(s.Type, "stdout", "file"))
		}
	}
	if a.QueueSize < 0 || a.QueueSize > MaxAuditQueueSize {
		v.add("audit.queue_size", "must be between 1 and %d", MaxAuditQueueSize)
	}
	v.nonNegativeDuration("audit.stuck_after", a.StuckAfter)
}

// argumentLogging checks an upstream's audit_arguments setting; empty means
// the default.
func (v *validator) argumentLogging(path string, a ArgumentLogging) {
	switch a {
	case "", ArgumentsNone, ArgumentsRedacted, ArgumentsFull:
	default:
		v.add(path, "%q must be none, redacted or full%s", a, didYouMean(a, ArgumentsNone, ArgumentsRedacted, ArgumentsFull))
	}
}
