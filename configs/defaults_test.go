package configs

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSetDefaults(t *testing.T) {
	t.Parallel()

	c := &Config{Upstreams: []Upstream{
		{Name: "a", HTTP: &HTTPTransport{URL: "http://a"}},
		{Name: "b", Stdio: &StdioTransport{Command: "b"}},
	}}
	c.SetDefaults()

	assert.Equal(t, "127.0.0.1:9190", c.Server.Listen)
	assert.Equal(t, "/mcp", c.Server.MCPPath)
	assert.Equal(t, int64(4<<20), c.Server.MaxBodyBytes)
	assert.Equal(t, 30*time.Minute, c.Server.SessionIdleTTL)
	assert.Equal(t, 30*time.Second, c.Server.ShutdownTimeout)
	assert.Equal(t, 10*time.Second, c.Server.ReadHeaderTimeout)
	assert.Equal(t, 30*time.Second, c.Server.ReadBodyTimeout)
	assert.Equal(t, 2*time.Minute, c.Server.IdleTimeout)
	assert.Equal(t, 32<<10, c.Server.MaxHeaderBytes)
	assert.Equal(t, 100, c.Server.MaxHeaderCount)
	assert.Equal(t, 256, c.Server.MaxUnauthenticated)
	assert.Zero(t, c.Server.ShutdownDelay)
	assert.Nil(t, c.Server.AllowedOrigins, "nil means the loopback origins")
	assert.Nil(t, c.Server.CORS.AllowedOrigins, "nil means server.allowed_origins")
	assert.False(t, c.Server.CORS.Enabled)
	assert.Equal(t, 10*time.Minute, c.Server.CORS.MaxAge)
	assert.True(t, c.Server.SessionKey.IsZero())

	assert.Equal(t, "__", c.Catalog.Separator)
	assert.Equal(t, `^[a-zA-Z0-9_-]{1,64}$`, c.Catalog.NamePattern)
	assert.Equal(t, 500, c.Catalog.PageSize)
	assert.Equal(t, 250*time.Millisecond, c.Catalog.ListChangedDebounce)

	for i, u := range c.Upstreams {
		assert.Equal(t, 30*time.Second, u.Timeout, "upstream %d", i)
		assert.Equal(t, int64(16<<20), u.MaxResponseBytes, "upstream %d", i)
		assert.Nil(t, u.Prefix, "upstream %d", i)
		assert.False(t, u.Optional, "upstream %d", i)
		assert.Equal(t, ProtocolAuto, u.ProtocolVersion, "upstream %d", i)
		assert.Empty(t, u.PinnedVersion(), "upstream %d: auto pins nothing", i)
	}
	assert.Equal(t, 256, c.Upstreams[0].HTTP.MaxIdleConns)
	assert.Equal(t, UpstreamSessions{IdleTimeout: 5 * time.Minute, MaxPerPrincipal: 64, Max: 256}, c.Upstreams[0].HTTP.Sessions)

	assert.Equal(t, "info", c.Log.Level)
	assert.Equal(t, "json", c.Log.Format)

	require.NoError(t, c.Validate(), "defaults plus a minimal upstream are valid")
}

func TestSetDefaultsKeepsSetValues(t *testing.T) {
	t.Parallel()

	c := &Config{
		Server:    Server{Listen: ":1", MaxBodyBytes: -1, SessionIdleTTL: time.Hour},
		Catalog:   Catalog{Separator: ".", PageSize: 7},
		Upstreams: []Upstream{{Name: "a", HTTP: &HTTPTransport{URL: "http://a", MaxIdleConns: 3}, Timeout: time.Second}},
		Log:       Log{Level: "debug", Format: "text"},
	}
	c.SetDefaults()
	once := *c
	c.SetDefaults()

	assert.Equal(t, once, *c, "SetDefaults is idempotent")
	assert.Equal(t, ":1", c.Server.Listen)
	assert.Equal(t, int64(-1), c.Server.MaxBodyBytes, "an invalid value is left for Validate")
	assert.Equal(t, time.Hour, c.Server.SessionIdleTTL)
	assert.Equal(t, ".", c.Catalog.Separator)
	assert.Equal(t, 7, c.Catalog.PageSize)
	assert.Equal(t, 3, c.Upstreams[0].HTTP.MaxIdleConns)
	assert.Equal(t, time.Second, c.Upstreams[0].Timeout)
	assert.Equal(t, "debug", c.Log.Level)
	assert.Equal(t, "text", c.Log.Format)
}
