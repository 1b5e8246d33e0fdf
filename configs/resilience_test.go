package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResilienceDefaults(t *testing.T) {
	c := validConfig()
	c.SetDefaults()
	u := c.Upstreams[0]
	assert.Equal(t, Breaker{Failures: 5, Window: 30 * time.Second, OpenFor: 10 * time.Second, HalfOpenProbes: 1, Scope: BreakerScopeTool}, u.Breaker)
	assert.Equal(t, Bulkhead{MaxConcurrent: 64, MaxQueued: 64, QueueTimeout: time.Second}, u.Bulkhead)
	assert.Equal(t, Retry{Attempts: 2, Backoff: 100 * time.Millisecond}, u.Retry)
	require.NoError(t, c.Validate())
}

func TestResilienceValidate(t *testing.T) {
	c := validConfig()
	c.SetDefaults()
	u := &c.Upstreams[0]
	u.Breaker.Failures = -1
	u.Breaker.OpenFor = -time.Second
	u.Breaker.Scope = "session"
	u.Bulkhead.MaxConcurrent = -2
	u.Bulkhead.QueueTimeout = -time.Second
	u.Retry.Attempts = -1
	u.Retry.Tools = []string{"get_[", ""}
	u.Timeouts = []ToolTimeout{{Match: "export_*", Timeout: time.Minute}, {Match: "", Timeout: 0}, {Match: "x[", Timeout: time.Second}}
	assert.Equal(t, []string{
		"upstreams[0].timeouts[1].match: required",
		"upstreams[0].timeouts[1].timeout: must be a positive duration",
		`upstreams[0].timeouts[2].match: "x[" is not a valid glob: syntax error in pattern`,
		"upstreams[0].breaker.failures: must not be negative",
		"upstreams[0].breaker.open_for: must not be negative",
		`upstreams[0].breaker.scope: must be tool or upstream, not "session"`,
		"upstreams[0].bulkhead.max_concurrent: must not be negative",
		"upstreams[0].bulkhead.queue_timeout: must not be negative",
		"upstreams[0].retry.attempts: must not be negative",
		`upstreams[0].retry.tools[0]: "get_[" is not a valid glob: syntax error in pattern`,
		"upstreams[0].retry.tools[1]: must not be empty",
	}, Problems(c.Validate()))
}

func TestResilienceParse(t *testing.T) {
	c, err := Parse([]byte(`
upstreams:
  - name: orders
    http: {url: "http://127.0.0.1:1/mcp"}
    timeouts:
      - {match: "Export_*", timeout: 2m}
    breaker: {failures: 3, window: 1m, open_for: 200ms, half_open_probes: 2, per_tool: true}
    bulkhead: {max_concurrent: 8, queue_timeout: 50ms}
    retry: {attempts: 3, tools: ["get_*"]}
`))
	require.NoError(t, err)
	u := c.Upstreams[0]
	assert.Equal(t, []ToolTimeout{{Match: "Export_*", Timeout: 2 * time.Minute}}, u.Timeouts, "globs keep their case")
	assert.Equal(t, Breaker{Failures: 3, Window: time.Minute, OpenFor: 200 * time.Millisecond, HalfOpenProbes: 2, Scope: BreakerScopeTool, PerTool: true}, u.Breaker)
	assert.Equal(t, Bulkhead{MaxConcurrent: 8, MaxQueued: DefaultMaxQueued, QueueTimeout: 50 * time.Millisecond}, u.Bulkhead)
	assert.Equal(t, Retry{Attempts: 3, Backoff: DefaultRetryBackoff, Tools: []string{"get_*"}}, u.Retry)
}
