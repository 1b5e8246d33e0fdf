package configs

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidatePolicy(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		mutate func(c *Config)
		want   []string
	}{
		{name: "defaults are valid", mutate: func(*Config) {}},
		{
			name: "every limit and redis",
			mutate: func(c *Config) {
				c.Policy.RateLimits = RateLimits{
					PerPrincipal:         &Limit{Rate: 10, Burst: 20},
					PerPrincipalTool:     &Limit{Rate: 0.5, Burst: 1},
					PerUpstream:          &Limit{Rate: 100, Burst: 100},
					PerUpstreamOverrides: map[string]Limit{"orders": {Rate: 5, Burst: 5}},
					Backend:              RateLimitBackendRedis,
					OnRedisError:         OnRedisErrorRefuse,
					MaxKeys:              10,
				}
				c.Redis = &Redis{URL: "rediss://user@redis.example.com:6380/2", Password: SecretRef{Env: "REDIS_PASSWORD"}}
				c.Redis.setDefaults()
			},
		},
		{
			name: "zero and negative rates",
			mutate: func(c *Config) {
				c.Policy.RateLimits.PerPrincipal = &Limit{Rate: 0, Burst: 1}
				c.Policy.RateLimits.PerPrincipalTool = &Limit{Rate: -1, Burst: 1}
				c.Policy.RateLimits.PerUpstream = &Limit{Rate: math.Inf(1), Burst: 1}
				c.Policy.RateLimits.PerUpstreamOverrides = map[string]Limit{"orders": {Rate: math.NaN(), Burst: 1}}
			},
			want: []string{
				`policy.rate_limits.per_principal.rate: must be a positive number of calls per second`,
				`policy.rate_limits.per_principal_tool.rate: must be a positive number of calls per second`,
				`policy.rate_limits.per_upstream.rate: must be a positive number of calls per second`,
				`policy.rate_limits.per_upstream_overrides[orders].rate: must be a positive number of calls per second`,
			},
		},
		{
			name: "burst below one",
			mutate: func(c *Config) {
				c.Policy.RateLimits.PerPrincipal = &Limit{Rate: 1, Burst: 0}
				c.Policy.RateLimits.PerUpstream = &Limit{Rate: 1, Burst: -3}
			},
			want: []string{
				`policy.rate_limits.per_principal.burst: must be at least 1`,
				`policy.rate_limits.per_upstream.burst: must be at least 1`,
			},
		},
		{
			name: "override of an unknown upstream",
			mutate: func(c *Config) {
				c.Policy.RateLimits.PerUpstreamOverrides = map[string]Limit{"nope": {Rate: 1, Burst: 1}}
			},
			want: []string{`policy.rate_limits.per_upstream_overrides[nope]: "nope" is not the name of an upstream`},
		},
		{
			name: "bad enums",
			mutate: func(c *Config) {
				c.Policy.RateLimits.Backend = "memcached"
				c.Policy.RateLimits.OnRedisError = "ignore"
				c.Audit.Sinks = []AuditSink{{Type: "syslog"}}
			},
			want: []string{
				`policy.rate_limits.backend: "memcached" must be local or redis`,
				`policy.rate_limits.on_redis_error: "ignore" must be local or refuse`,
				`audit.sinks[0].type: "syslog" must be stdout or file`,
			},
		},
		{
			name:   "redis backend without redis",
			mutate: func(c *Config) { c.Policy.RateLimits.Backend = RateLimitBackendRedis },
			want:   []string{`policy.rate_limits.backend: redis needs the redis section`},
		},
		{
			name: "negative sizes and durations",
			mutate: func(c *Config) {
				c.Policy.RateLimits.MaxKeys = -1
				c.Policy.KillSwitches.ResyncInterval = -time.Second
				c.Audit.QueueSize = -1
				c.Audit.StuckAfter = -time.Second
				c.Redis = &Redis{URL: "redis://127.0.0.1:6379", DialTimeout: -1, CommandTimeout: -1}
			},
			want: []string{
				`policy.rate_limits.max_keys: must be positive`,
				`policy.kill_switches.resync_interval: must be a positive duration`,
				`redis.dial_timeout: must be a positive duration`,
				`redis.command_timeout: must be a positive duration`,
				`audit.queue_size: must be between 1 and 1048576`,
				`audit.stuck_after: must be a positive duration`,
			},
		},
		{
			name: "sizes and timeouts too large or too short",
			mutate: func(c *Config) {
				c.Audit.QueueSize = MaxAuditQueueSize + 1
				c.Redis = &Redis{URL: "redis://127.0.0.1:6379", DialTimeout: time.Millisecond, CommandTimeout: time.Nanosecond}
			},
			want: []string{
				`redis.dial_timeout: 1ms is below 10ms: the gateway could not reach Redis at start, and every command would time out`,
				`redis.command_timeout: 1ns is below 10ms: the gateway could not reach Redis at start, and every command would time out`,
				`audit.queue_size: must be between 1 and 1048576`,
			},
		},
		{
			name: "state file with redis",
			mutate: func(c *Config) {
				c.Policy.KillSwitches.StateFile = "/var/lib/mcpgw/switches.json"
				c.Redis = &Redis{URL: "redis://127.0.0.1:6379"}
			},
			want: []string{`policy.kill_switches.state_file: must be empty when the redis section is set: kill switches then live in Redis`},
		},
		{
			name: "redis password twice",
			mutate: func(c *Config) {
				c.Redis = &Redis{URL: "redis://:hunter2@127.0.0.1:6379", Password: SecretRef{Value: "hunter2"}}
			},
			want: []string{`redis.password: set the password here or in redis.url, not both`},
		},
		{
			name: "redis password with two sources",
			mutate: func(c *Config) {
				c.Redis = &Redis{URL: "redis://127.0.0.1:6379", Password: SecretRef{Value: "a", Env: "B"}}
			},
			want: []string{`redis.password: exactly one of env, file, value must be set`},
		},
		{
			name: "audit sinks",
			mutate: func(c *Config) {
				c.Audit.Sinks = []AuditSink{
					{Type: AuditSinkStdout, Path: "/tmp/x"},
					{Type: AuditSinkFile},
					{Type: AuditSinkFile, Path: "/var/log/audit.jsonl"},
					{Type: AuditSinkFile, Path: "/var/log/audit.jsonl"},
				}
			},
			want: []string{
				`audit.sinks[0].path: only a file sink has a path`,
				`audit.sinks[1].path: required for a file sink`,
				`audit.sinks[3].path: "/var/log/audit.jsonl" is already used by audit.sinks[2]`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			c := validConfig()
			tt.mutate(c)
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, Problems(err))
		})
	}
}

func TestValidateRedisURL(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		url  string
		want []string
	}{
		{name: "plain", url: "redis://127.0.0.1:6379"},
		{name: "tls with user and db", url: "rediss://mcpgw@redis.internal:6380/3"},
		{name: "no port", url: "redis://redis"},
		{name: "empty", url: "", want: []string{`redis.url: required`}},
		{name: "not a URL", url: "127.0.0.1:6379", want: []string{`redis.url: must be a URL such as redis://host:6379/0`}},
		{name: "unparsable", url: "redis://[::1", want: []string{`redis.url: must be a URL such as redis://host:6379/0`}},
		{name: "wrong scheme", url: "http://127.0.0.1:6379", want: []string{`redis.url: scheme must be redis or rediss`}},
		{name: "no host", url: "redis:///0", want: []string{`redis.url: must have a host`}},
		{name: "bad port", url: "redis://h:99999", want: []string{`redis.url: port is out of range`}},
		{name: "bad db", url: "redis://h:6379/cache", want: []string{`redis.url: the path must be a database number, such as /0`}},
		{
			// The URL, which may carry a password, is never quoted.
			name: "password not echoed",
			url:  "http://:s3cret-pass@h:6379",
			want: []string{`redis.url: scheme must be redis or rediss`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			c := validConfig()
			c.Redis = &Redis{URL: tt.url}
			c.Redis.setDefaults()
			err := c.Validate()
			if tt.want == nil {
				require.NoError(t, err)
				return
			}
			assert.Equal(t, tt.want, Problems(err))
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestPolicyDefaults(t *testing.T) {
	t.Parallel()

	c := &Config{
		Policy: Policy{RateLimits: RateLimits{
			PerPrincipal:         &Limit{Rate: 2.5},
			PerUpstreamOverrides: map[string]Limit{"a": {Rate: 0.1}, "b": {Rate: 3, Burst: 7}},
		}},
		Redis: &Redis{URL: "redis://127.0.0.1:6379"},
	}
	c.SetDefaults()
	assert.Equal(t, 3, c.Policy.RateLimits.PerPrincipal.Burst, "burst defaults to the rate rounded up")
	assert.Equal(t, map[string]Limit{"a": {Rate: 0.1, Burst: 1}, "b": {Rate: 3, Burst: 7}}, c.Policy.RateLimits.PerUpstreamOverrides)
	assert.Equal(t, OnRedisErrorLocal, c.Policy.RateLimits.OnRedisError)
	assert.Equal(t, DefaultRateLimitMaxKeys, c.Policy.RateLimits.MaxKeys)
	assert.Equal(t, DefaultResyncInterval, c.Policy.KillSwitches.ResyncInterval)
	assert.Equal(t, &Redis{URL: "redis://127.0.0.1:6379", KeyPrefix: "mcpgw:", DialTimeout: time.Second, CommandTimeout: DefaultRedisCommandTimeout}, c.Redis)
	assert.Equal(t, Audit{Sinks: []AuditSink{{Type: AuditSinkStdout}}, QueueSize: 8192, StuckAfter: 2 * time.Second}, c.Audit)
	assert.Equal(t, RateLimitBackendRedis, c.RateLimitBackend(), "redis when the redis section is set")

	c.Redis = nil
	assert.Equal(t, RateLimitBackendLocal, c.RateLimitBackend())
	c.Policy.RateLimits.Backend = RateLimitBackendLocal
	c.Redis = &Redis{}
	assert.Equal(t, RateLimitBackendLocal, c.RateLimitBackend(), "an explicit backend wins")

	assert.Equal(t, ArgumentsNone, ArgumentLogging("").Effective())
	assert.Equal(t, ArgumentsFull, ArgumentsFull.Effective())
}

func TestParsePolicy(t *testing.T) {
	t.Parallel()

	src := minimal + `
policy:
  rate_limits:
    per_principal: {rate: 10, burst: 20}
    per_upstream_overrides:
      a: {rate: 0.5}
    on_redis_error: refuse
  kill_switches:
    resync_interval: 250ms
redis:
  url: redis://127.0.0.1:6379/1
  key_prefix: "gw1:"
  command_timeout: 100ms
audit:
  sinks:
    - {type: file, path: /var/log/mcpgw/audit.jsonl}
    - {type: stdout}
  queue_size: 16
  stuck_after: 500ms
`
	cfg, err := Parse([]byte(src))
	require.NoError(t, err)
	assert.Equal(t, &Limit{Rate: 10, Burst: 20}, cfg.Policy.RateLimits.PerPrincipal)
	assert.Equal(t, map[string]Limit{"a": {Rate: 0.5, Burst: 1}}, cfg.Policy.RateLimits.PerUpstreamOverrides)
	assert.Equal(t, OnRedisErrorRefuse, cfg.Policy.RateLimits.OnRedisError)
	assert.Equal(t, 250*time.Millisecond, cfg.Policy.KillSwitches.ResyncInterval)
	assert.Equal(t, &Redis{URL: "redis://127.0.0.1:6379/1", KeyPrefix: "gw1:", DialTimeout: time.Second, CommandTimeout: 100 * time.Millisecond}, cfg.Redis)
	assert.Equal(t, Audit{
		Sinks:      []AuditSink{{Type: AuditSinkFile, Path: "/var/log/mcpgw/audit.jsonl"}, {Type: AuditSinkStdout}},
		QueueSize:  16,
		StuckAfter: 500 * time.Millisecond,
	}, cfg.Audit)
}

func TestParsePolicyProblems(t *testing.T) {
	t.Parallel()

	src := minimal + `
policy:
  rate_limits:
    per_principal: {rate: 0, brust: 2}
    per_upstream: {rate: fast}
    backend: etcd
redis:
  url: "http://127.0.0.1:6379"
audit:
  sinks: [{type: file}]
  stuck_after: 2
`
	assert.Equal(t, []string{
		`policy.rate_limits.per_principal.rate: must be a positive number of calls per second`,
		`policy.rate_limits.per_principal.burst: must be at least 1`, // brust is unknown: burst is unset
		`policy.rate_limits.per_principal.brust: unknown key; did you mean "burst"?`,
		`policy.rate_limits.per_upstream.rate: must be a number`,
		`policy.rate_limits.backend: "etcd" must be local or redis`,
		`redis.url: scheme must be redis or rediss`,
		`audit.sinks[0].path: required for a file sink`,
		`audit.stuck_after: must be a duration with a unit, such as "30s"`,
	}, problems(t, src))
}

func TestValidateArgumentLogging(t *testing.T) {
	t.Parallel()

	v := &validator{}
	v.argumentLogging("upstreams[0].audit_arguments", "")
	v.argumentLogging("upstreams[0].audit_arguments", ArgumentsRedacted)
	v.argumentLogging("upstreams[1].audit_arguments", "everything")
	require.Len(t, v.errs, 1)
	assert.EqualError(t, v.errs[0], `upstreams[1].audit_arguments: "everything" must be none, redacted or full`)
}
