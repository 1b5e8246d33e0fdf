package authn_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

// testResource is the gateway's resource URI in these tests. Nothing
// listens there: the authenticator never dials its own resource.
const testResource = "https://mcp.example.com/mcp"

// clock is a settable clock shared by the issuer and the authenticator.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_800_000_000, 0)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is an issuer and an authenticator that trusts it.
type fixture struct {
	iss   *authntest.Issuer
	auth  *authn.Authenticator
	clock *clock
	cfg   *configs.Auth
}

// setup starts an issuer and builds an authenticator for it. mutate may
// change the configuration before the authenticator is built.
func setup(tb testing.TB, mutate func(*configs.Auth), opts ...authntest.Option) *fixture {
	tb.Helper()
	c := newClock()
	iss := authntest.NewIssuer(tb, append([]authntest.Option{authntest.WithClock(c.Now), authntest.WithAudience(testResource)}, opts...)...)
	cfg := &configs.Auth{
		Resource:        testResource,
		Issuers:         []configs.AuthIssuer{{Issuer: iss.URL(), RolesClaim: "realm_access.roles"}},
		ScopesSupported: []string{"mcp:tools"},
		RequiredScopes:  []string{"mcp:tools"},
	}
	if mutate != nil {
		mutate(cfg)
	}
	a, err := authn.New(cfg, authn.Options{Now: c.Now})
	require.NoError(tb, err)
	return &fixture{iss: iss, auth: a, clock: c, cfg: cfg}
}

// request returns a request to the MCP endpoint with the given
// Authorization header ("" for none).
func request(authz string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return r
}

// bearer returns a request carrying token.
func bearer(token string) *http.Request { return request("Bearer " + token) }

// countingServer answers 404 to everything and counts requests.
func countingServer(tb testing.TB) (*httptest.Server, *atomic.Int64) {
	tb.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.NotFound(w, r)
	}))
	tb.Cleanup(srv.Close)
	return srv, &n
}

// parseChallenge parses a WWW-Authenticate value with one challenge into
// its scheme and parameters (RFC 9110 section 11.2), strictly enough to
// catch a malformed header: every parameter is token=quoted-string, comma
// separated.
func parseChallenge(tb testing.TB, h string) (string, map[string]string) {
	tb.Helper()
	scheme, rest, _ := strings.Cut(h, " ")
	params := make(map[string]string)
	for rest != "" {
		name, after, ok := strings.Cut(rest, "=")
		require.True(tb, ok, "parameter without '=' in %q", h)
		name = strings.TrimSpace(name)
		require.True(tb, strings.HasPrefix(after, `"`), "parameter %s is not quoted in %q", name, h)
		var val strings.Builder
		i := 1
		for ; i < len(after); i++ {
			c := after[i]
			if c == '\\' && i+1 < len(after) {
				i++
				val.WriteByte(after[i])
				continue
			}
			if c == '"' {
				break
			}
			val.WriteByte(c)
		}
		require.Less(tb, i, len(after), "unterminated quoted string in %q", h)
		_, dup := params[name]
		require.False(tb, dup, "parameter %s twice in %q", name, h)
		params[name] = val.String()
		rest = strings.TrimSpace(after[i+1:])
		if rest != "" {
			require.True(tb, strings.HasPrefix(rest, ","), "parameters not comma separated in %q", h)
			rest = strings.TrimSpace(rest[1:])
		}
	}
	return scheme, params
}
