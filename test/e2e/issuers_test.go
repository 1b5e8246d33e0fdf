package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// TestSameSubjectTwoIssuers: two real issuers both issue tokens for sub
// "alice". They are two principals: each has its own rate-limit bucket,
// neither can use the other's session, audit records name the issuer, and
// the identity assertion an upstream gets names the issuer of the subject
// (RFC 9493 sub_id, format iss_sub).
func TestSameSubjectTwoIssuers(t *testing.T) {
	one := authntest.NewIssuer(t, authntest.WithAudience(resource))
	two := authntest.NewIssuer(t, authntest.WithAudience(resource), authntest.WithPath("/two"))
	require.NotEqual(t, one.URL(), two.URL())
	orders := &recorder{next: upstreams.OrdersHandler(nil)}
	osrv := startServer(t, func() http.Handler { return orders })
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}, {issuer: %q}]
policy:
  rate_limits:
    per_principal: {rate: 0.001, burst: 1}
upstreams:
  - name: orders
    http: {url: %q}
    identity_assertion: {enabled: true}
`, resource, one.URL(), two.URL(), osrv.url()), true)

	clients := map[string]*rawClient{}
	for name, iss := range map[string]*authntest.Issuer{"one": one, "two": two} {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"}))
		c.initialize()
		clients[name] = c
	}

	// One call each: two principals, two buckets.
	for _, name := range []string{"one", "two"} {
		r := clients[name].call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, r.Error, "alice of issuer %s: %+v", name, r.Error)
	}
	r := clients["one"].call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	require.NotNil(t, r.Error)
	assert.Equal(t, -32061, r.Error.Code, "alice of issuer one used her own bucket")

	t.Run("sessions are bound to issuer and subject", func(t *testing.T) {
		stolen := newRawClient(t, g.url)
		stolen.header.Set("Authorization", "Bearer "+two.Mint(map[string]any{"sub": "alice", "scope": "mcp"}))
		stolen.session = clients["one"].session
		resp, body := stolen.post(`{"jsonrpc":"2.0","id":9,"method":"tools/list","params":{}}`)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, string(body))
	})

	t.Run("the identity assertion names the issuer", func(t *testing.T) {
		var jwks jose.JSONWebKeySet
		getJSON(t, g.base+"/.well-known/mcpgw/jwks.json", &jwks)
		calls := orders.calls()
		require.Len(t, calls, 2)
		var issuers []string
		for _, s := range calls {
			claims, _ := verifyJWT(t, jwks, s.header.Get("X-Mcpgw-Identity"))
			assert.Equal(t, "alice", claims["sub"])
			subID, ok := claims["sub_id"].(map[string]any)
			require.True(t, ok, "sub_id in %v", claims)
			assert.Equal(t, "iss_sub", subID["format"])
			assert.Equal(t, "alice", subID["sub"])
			iss, _ := subID["iss"].(string)
			issuers = append(issuers, iss)
		}
		assert.ElementsMatch(t, []string{one.URL(), two.URL()}, issuers)
	})

	t.Run("audit records name the issuer", func(t *testing.T) {
		g.Close()
		data, err := readFile(g.auditPath)
		require.NoError(t, err)
		seen := map[string][]string{}
		for l := range strings.SplitSeq(strings.TrimSpace(data), "\n") {
			var rec struct {
				Event, Subject, Issuer, Decision string
			}
			require.NoError(t, json.Unmarshal([]byte(l), &rec))
			if rec.Event == "tools/call" {
				assert.Equal(t, "alice", rec.Subject)
				seen[rec.Issuer] = append(seen[rec.Issuer], rec.Decision)
			}
		}
		assert.Equal(t, map[string][]string{one.URL(): {"allowed", "limited"}, two.URL(): {"allowed"}}, seen)
	})
}
