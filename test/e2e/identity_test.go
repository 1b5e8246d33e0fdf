package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// seen is one request an upstream received.
type seen struct {
	method string // the JSON-RPC method, "" for GET/DELETE
	header http.Header
	body   []byte // the POST body, nil for GET/DELETE
}

// recorder wraps an upstream handler: it records the headers and JSON-RPC
// method of every request, and refuses with 401 those that check rejects,
// as an upstream that requires its own credential does.
type recorder struct {
	next  http.Handler
	check func(h http.Header) error
	// saw, when set, is told of each request as it is recorded, before
	// the upstream serves it.
	saw func(seen)

	mu   sync.Mutex
	reqs []seen
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var method string
	var body []byte
	if r.Method == http.MethodPost {
		var err error
		body, err = io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var env struct {
			Method string `json:"method"`
		}
		_ = json.Unmarshal(body, &env)
		method = env.Method
	}
	rc.mu.Lock()
	s := seen{method: method, header: r.Header.Clone(), body: body}
	rc.reqs = append(rc.reqs, s)
	rc.mu.Unlock()
	if rc.saw != nil {
		rc.saw(s)
	}
	if rc.check != nil {
		if err := rc.check(r.Header); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
	}
	rc.next.ServeHTTP(w, r)
}

// all returns every request seen so far.
func (rc *recorder) all() []seen {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]seen(nil), rc.reqs...)
}

// calls returns the tools/call requests seen so far.
func (rc *recorder) calls() []seen {
	var out []seen
	for _, s := range rc.all() {
		if s.method == "tools/call" {
			out = append(out, s)
		}
	}
	return out
}

// verifyJWT checks a compact JWS against a key set and returns its claims
// and protected header.
func verifyJWT(t *testing.T, keys jose.JSONWebKeySet, token string) (map[string]any, jose.Header) {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	require.NoError(t, err)
	hdr := jws.Signatures[0].Header
	match := keys.Key(hdr.KeyID)
	require.Len(t, match, 1, "signed with unknown key %q", hdr.KeyID)
	payload, err := jws.Verify(match[0])
	require.NoError(t, err, "signature")
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims, hdr
}

// bearerClaims verifies the Bearer token in h against the issuer's keys.
func bearerClaims(t *testing.T, iss *authntest.Issuer, h http.Header) map[string]any {
	t.Helper()
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	require.True(t, ok, "no Bearer credential in %v", h)
	claims, _ := verifyJWT(t, iss.JWKS(), tok)
	return claims
}

// issuedFor accepts a Bearer token of iss with audience aud, the check an
// upstream that is a resource server of its own makes.
func issuedFor(iss *authntest.Issuer, aud string) func(http.Header) error {
	return func(h http.Header) error {
		tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
		if !ok {
			return fmt.Errorf("no bearer token")
		}
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil {
			return err
		}
		set := iss.JWKS()
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			return fmt.Errorf("unknown key")
		}
		payload, err := jws.Verify(keys[0])
		if err != nil {
			return err
		}
		var c struct {
			Aud string `json:"aud"`
		}
		if err := json.Unmarshal(payload, &c); err != nil || c.Aud != aud {
			return fmt.Errorf("token is not for %s", aud)
		}
		return nil
	}
}

// getJSON fetches a URL and decodes its JSON body into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
}

// assertNoPassthrough checks that no request an upstream saw carried the
// client's token, in Authorization or anywhere else.
func assertNoPassthrough(t *testing.T, reqs []seen, clientTokens ...string) {
	t.Helper()
	require.NotEmpty(t, reqs)
	for _, s := range reqs {
		for name, vals := range s.header {
			for _, v := range vals {
				for _, tok := range clientTokens {
					assert.NotContains(t, v, tok, "header %s of a %q request carries the client's token", name, s.method)
				}
			}
		}
	}
}

const (
	gwClientID     = "mcpgw"
	gwClientSecret = "gateway-secret"
	ordersResource = "https://orders.internal.test/mcp"
	custResource   = "https://customers.internal.test/mcp"
)

// TestUpstreamIdentity: the client's token never goes upstream; each
// upstream receives its own credential (a static header from an env secret,
// a client credentials token from a real token endpoint) and, when
// configured, an identity assertion it verifies against the gateway's key
// set.
func TestUpstreamIdentity(t *testing.T) {
	t.Setenv("E2E_CUSTOMERS_API_KEY", "k-123 static secret")
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource),
		authntest.WithClient(authntest.Client{ID: gwClientID, Secret: gwClientSecret}))

	customers := &recorder{
		next: upstreams.CustomersHandler(nil),
		check: func(h http.Header) error {
			if h.Get("X-Api-Key") != "k-123 static secret" {
				return fmt.Errorf("wrong api key")
			}
			return nil
		},
	}
	orders := &recorder{next: upstreams.OrdersHandler(nil), check: issuedFor(iss, ordersResource)}
	cs := startServer(t, func() http.Handler { return customers })
	osrv := startServer(t, func() http.Handler { return orders })

	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - name: customers
    http: {url: %q}
    auth: {type: static, header: X-Api-Key, value: {env: E2E_CUSTOMERS_API_KEY}}
  - name: orders
    http: {url: %q}
    auth:
      type: client_credentials
      token_url: %q
      client_id: %s
      client_secret: {value: %s}
      resource: %s
      scopes: [orders.api]
    identity_assertion: {enabled: true, ttl: 2m}
`, resource, iss.URL(), cs.url(), osrv.url(), iss.TokenURL(), gwClientID, gwClientSecret, ordersResource), true)

	alice := iss.Mint(map[string]any{"sub": "alice", "client_id": "claude", "scope": "mcp orders:read"})
	c := newRawClient(t, g.url)
	c.header.Set("Authorization", "Bearer "+alice)
	c.initialize()
	for range 3 {
		r := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
		require.Nil(t, r.Error, "%+v", r.Error)
	}
	r := c.call("tools/call", `{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}`)
	require.Nil(t, r.Error, "%+v", r.Error)

	t.Run("no upstream request carries the client's token", func(t *testing.T) {
		assertNoPassthrough(t, customers.all(), alice)
		assertNoPassthrough(t, orders.all(), alice)
	})

	t.Run("static header from an env secret", func(t *testing.T) {
		for _, s := range customers.all() {
			assert.Equal(t, "k-123 static secret", s.header.Get("X-Api-Key"), "%q request", s.method)
			assert.Empty(t, s.header.Get("Authorization"))
			assert.Empty(t, s.header.Get("X-Mcpgw-Identity"), "no assertion where none is configured")
		}
	})

	t.Run("client credentials token for every request, fetched once", func(t *testing.T) {
		for _, s := range orders.all() {
			claims := bearerClaims(t, iss, s.header)
			assert.Equal(t, ordersResource, claims["aud"], "%q request", s.method)
			assert.Equal(t, gwClientID, claims["sub"])
			assert.Equal(t, "orders.api", claims["scope"])
		}
		assert.Equal(t, int64(1), iss.Counts().Token, "the token is cached until it nears expiry")
	})

	var jwks jose.JSONWebKeySet
	getJSON(t, g.base+"/.well-known/mcpgw/jwks.json", &jwks)
	require.NotEmpty(t, jwks.Keys)

	t.Run("identity assertion verifies against the gateway's key set", func(t *testing.T) {
		calls := orders.calls()
		require.Len(t, calls, 3)
		jtis := map[string]bool{}
		for _, s := range calls {
			a := s.header.Get("X-Mcpgw-Identity")
			require.NotEmpty(t, a, "tools/call without an assertion")
			claims, hdr := verifyJWT(t, jwks, a)
			assert.Equal(t, "mcpgw-identity+jwt", hdr.ExtraHeaders["typ"])
			assert.Equal(t, resource, claims["iss"])
			assert.Equal(t, "orders", claims["aud"])
			assert.Equal(t, "alice", claims["sub"])
			assert.Equal(t, "claude", claims["client_id"])
			assert.Equal(t, "mcp orders:read", claims["scope"])
			iat, exp := claims["iat"].(float64), claims["exp"].(float64)
			assert.InDelta(t, 120.0, exp-iat, 0, "ttl from the configuration")
			assert.Greater(t, exp, float64(time.Now().Unix()), "not expired")
			jti, _ := claims["jti"].(string)
			assert.False(t, jtis[jti], "every assertion has its own jti")
			jtis[jti] = true
		}
		// The calls went on an upstream session opened for alice
		// (upstream/pool.go): its handshake asserts her; everything else
		// that is not a call is the gateway's own and asserts no one.
		callSessions := map[string]bool{}
		for _, s := range calls {
			callSessions[s.header.Get("Mcp-Session-Id")] = true
		}
		for _, s := range orders.all() {
			a := s.header.Get("X-Mcpgw-Identity")
			switch {
			case s.method == "tools/call":
			case a != "" && (s.method == "initialize" || callSessions[s.header.Get("Mcp-Session-Id")]):
				claims, _ := verifyJWT(t, jwks, a)
				assert.Equal(t, "alice", claims["sub"], "alice's session's own %q traffic asserts her", s.method)
			default:
				assert.Empty(t, a, "the gateway's own %q traffic asserts no one", s.method)
			}
		}
	})

	t.Run("rotated keys: new assertions use the new key, the old one stays published", func(t *testing.T) {
		admin := iss.Mint(map[string]any{"sub": "sre", "scope": "mcpgw:admin"})
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.base+"/admin/v1/keys/rotate", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+alice)
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // test.
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "rotation needs the admin scope")
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err = http.DefaultClient.Do(req) //nolint:forbidigo // test.
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)

		require.Nil(t, c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1002"}}`).Error)
		var rotated jose.JSONWebKeySet
		getJSON(t, g.base+"/.well-known/mcpgw/jwks.json", &rotated)
		require.Len(t, rotated.Keys, 2)
		calls := orders.calls()
		_, hdr := verifyJWT(t, rotated, calls[len(calls)-1].header.Get("X-Mcpgw-Identity"))
		assert.NotEqual(t, jwks.Keys[0].KeyID, hdr.KeyID)
		_, _ = verifyJWT(t, rotated, calls[0].header.Get("X-Mcpgw-Identity"))
	})
}

// TestTokenExchange: a token_exchange upstream receives, for each call, a
// token the real token endpoint issued for it in exchange for the caller's
// (RFC 8693), cached per principal; the gateway's own traffic uses a
// client credentials token of the same client.
func TestTokenExchange(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource),
		authntest.WithClient(authntest.Client{ID: gwClientID, Secret: gwClientSecret}))
	for _, era := range []struct {
		name    string
		handler func(*upstreams.Observer) http.Handler
	}{
		{"2025 session upstream", upstreams.CustomersHandler},
		{"2026-07-28 stateless upstream", upstreams.CustomersStatelessHandler},
	} {
		t.Run(era.name, func(t *testing.T) {
			customers := &recorder{next: era.handler(nil), check: issuedFor(iss, custResource)}
			cs := startServer(t, func() http.Handler { return customers })
			g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - name: customers
    http: {url: %q}
    auth:
      type: token_exchange
      token_url: %q
      client_id: %s
      client_secret: {value: %s}
      resource: %s
`, resource, iss.URL(), cs.url(), iss.TokenURL(), gwClientID, gwClientSecret, custResource), true)

			alice := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})
			bob := iss.Mint(map[string]any{"sub": "bob", "scope": "mcp"})
			call := func(tok, id string) {
				t.Helper()
				c := newRawClient(t, g.url)
				c.header.Set("Authorization", "Bearer "+tok)
				c.initialize()
				r := c.call("tools/call", fmt.Sprintf(`{"name":"customers__lookup_customer","arguments":{"id":%q}}`, id))
				require.Nil(t, r.Error, "%+v", r.Error)
			}

			before := iss.Counts().Token
			call(alice, "c-001")
			afterFirst := iss.Counts().Token
			assert.Equal(t, before+1, afterFirst, "one exchange for alice")
			call(alice, "c-002")
			assert.Equal(t, afterFirst, iss.Counts().Token, "alice's exchanged token is cached")
			call(bob, "c-003")
			assert.Equal(t, afterFirst+1, iss.Counts().Token, "bob gets his own exchange")

			calls := customers.calls()
			require.Len(t, calls, 3)
			subs := []string{"alice", "alice", "bob"}
			var aliceTokens []string
			for i, s := range calls {
				claims := bearerClaims(t, iss, s.header)
				assert.Equal(t, custResource, claims["aud"], "exchanged for the upstream's audience")
				assert.Equal(t, subs[i], claims["sub"])
				assert.Equal(t, map[string]any{"sub": gwClientID}, claims["act"], "the gateway acts for the caller")
				if subs[i] == "alice" {
					aliceTokens = append(aliceTokens, s.header.Get("Authorization"))
				}
			}
			assert.Equal(t, aliceTokens[0], aliceTokens[1], "the same exchanged token is reused")
			// A session-era upstream's calls go on sessions opened for
			// their caller (upstream/pool.go): what such a session sends
			// for itself carries the caller's token, the rest is the
			// gateway's own.
			callerOf := map[string]string{} // session id → the caller of its calls
			for i, s := range calls {
				if sid := s.header.Get("Mcp-Session-Id"); sid != "" {
					callerOf[sid] = subs[i]
				}
			}
			for _, s := range customers.all() {
				if s.method == "tools/call" {
					continue
				}
				claims := bearerClaims(t, iss, s.header)
				assert.Equal(t, custResource, claims["aud"])
				sid := s.header.Get("Mcp-Session-Id")
				switch {
				case callerOf[sid] != "":
					assert.Equal(t, callerOf[sid], claims["sub"], "a caller's session's own %q traffic carries the caller's token", s.method)
				case s.method == "initialize" && claims["sub"] != gwClientID:
					assert.Contains(t, []any{"alice", "bob"}, claims["sub"], "a session opened for a caller")
				default:
					assert.Equal(t, gwClientID, claims["sub"], "the gateway's own %q traffic uses its client credentials", s.method)
				}
			}
			assertNoPassthrough(t, customers.all(), alice, bob)
		})
	}
}

// TestBadTokensNeverReachUpstreams sends every kind of bad bearer input
// of issue #4 through the gateway: each is refused with 401 or 400 and a
// challenge, and the upstream never sees the call.
func TestBadTokensNeverReachUpstreams(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	forger := authntest.NewIssuer(t, authntest.WithAudience(resource))
	customers := &recorder{next: upstreams.CustomersHandler(nil)}
	cs := startServer(t, func() http.Handler { return customers })
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
`, resource, iss.URL(), cs.url()), true)

	mint := func(claims map[string]any, opts ...authntest.MintOption) string {
		claims["sub"] = "mallory"
		return iss.Mint(claims, opts...)
	}
	// The forged inputs differ from the genuine ones: the forger has its
	// own URL and keys (a key id is a thumbprint), "nope" is no key id.
	require.NotEqual(t, iss.URL(), forger.URL())
	require.NotEqual(t, iss.KeyID("RS256"), forger.KeyID("RS256"))
	for _, k := range iss.Keys() {
		require.NotEqual(t, "nope", k.KeyID)
	}
	now := time.Now()
	const body = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"customers__lookup_customer","arguments":{"id":"c-001"}}}`
	tests := []struct {
		name          string
		authorization string
		query         string
		want          int
	}{
		{name: "no token", want: http.StatusUnauthorized},
		{name: "wrong scheme", authorization: "Basic YWxpY2U6c2VjcmV0", want: http.StatusUnauthorized},
		{name: "token in the query string", query: "access_token=" + mint(map[string]any{}), want: http.StatusBadRequest},
		{name: "expired", authorization: "Bearer " + mint(map[string]any{"exp": now.Add(-2 * time.Minute).Unix()}), want: http.StatusUnauthorized},
		{name: "not yet valid", authorization: "Bearer " + mint(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()}), want: http.StatusUnauthorized},
		{name: "issued in the future", authorization: "Bearer " + mint(map[string]any{"iat": now.Add(5 * time.Minute).Unix()}), want: http.StatusUnauthorized},
		{name: "wrong iss", authorization: "Bearer " + mint(map[string]any{"iss": iss.URL() + "/other"}), want: http.StatusUnauthorized},
		{name: "wrong aud", authorization: "Bearer " + mint(map[string]any{"aud": "https://other.example.test/mcp"}), want: http.StatusUnauthorized},
		{name: "missing aud", authorization: "Bearer " + mint(map[string]any{"aud": nil}), want: http.StatusUnauthorized},
		{name: "alg none", authorization: "Bearer " + mint(map[string]any{}, authntest.WithAlg("none")), want: http.StatusUnauthorized},
		{name: "HS256 with the public key", authorization: "Bearer " + mint(map[string]any{}, authntest.WithAlg("HS256")), want: http.StatusUnauthorized},
		{name: "unknown kid", authorization: "Bearer " + mint(map[string]any{}, authntest.WithKID("nope")), want: http.StatusUnauthorized},
		{name: "tampered signature", authorization: "Bearer " + mint(map[string]any{}, authntest.WithTamperedSignature()), want: http.StatusUnauthorized},
		{name: "tampered payload", authorization: "Bearer " + mint(map[string]any{}, authntest.WithTamperedPayload()), want: http.StatusUnauthorized},
		{name: "untrusted issuer", authorization: "Bearer " + forger.Mint(map[string]any{"sub": "mallory"}), want: http.StatusUnauthorized},
		{name: "oversized", authorization: "Bearer " + mint(map[string]any{"pad": strings.Repeat("x", 9000)}), want: http.StatusUnauthorized},
		{name: "garbage base64", authorization: "Bearer eyJ!!!.eyJ***.sig", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newRawClient(t, g.url)
			if tt.query != "" {
				c.url += "?" + tt.query
			}
			if tt.authorization != "" {
				c.header.Set("Authorization", tt.authorization)
			}
			resp, data := c.post(body)
			assert.Equal(t, tt.want, resp.StatusCode, string(data))
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), "Bearer ")
			assert.Contains(t, resp.Header.Get("WWW-Authenticate"), `resource_metadata="`)
		})
	}
	assert.Empty(t, customers.calls(), "no bad input is forwarded upstream")
}

// TestPrincipalsGetUpstreamSessionsOfTheirOwn: two principals call through
// the same upstreams, each from a 2025-era session and with 2026-07-28
// requests. The mcp-go upstream pinned to 2025-11-25 and the same server
// under auto with token_exchange (it keeps sessions, so auto speaks the
// 2025 era too) both give each principal upstream sessions of its own
// (upstream/pool.go), never one another's. On the first, every call
// carries the gateway's one credential and the identity assertion of the
// principal who made it; on the second, that principal's own exchanged
// token and assertion.
func TestPrincipalsGetUpstreamSessionsOfTheirOwn(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource),
		authntest.WithClient(authntest.Client{ID: gwClientID, Secret: gwClientSecret}))
	shared := &recorder{next: upstreams.PaymentsHandler(nil), check: issuedFor(iss, ordersResource)}
	exchanged := &recorder{next: upstreams.PaymentsHandler(nil), check: issuedFor(iss, custResource)}
	ss := startServer(t, func() http.Handler { return shared })
	xs := startServer(t, func() http.Handler { return exchanged })
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - name: shared
    protocol_version: "2025-11-25"
    http: {url: %q}
    auth: {type: client_credentials, token_url: %q, client_id: %s, client_secret: {value: %s}, resource: %s}
    identity_assertion: {enabled: true}
  - name: exchanged
    http: {url: %q}
    auth: {type: token_exchange, token_url: %q, client_id: %s, client_secret: {value: %s}, resource: %s}
    identity_assertion: {enabled: true}
`, resource, iss.URL(),
		ss.url(), iss.TokenURL(), gwClientID, gwClientSecret, ordersResource,
		xs.url(), iss.TokenURL(), gwClientID, gwClientSecret, custResource), true)

	var jwks jose.JSONWebKeySet
	getJSON(t, g.base+"/.well-known/mcpgw/jwks.json", &jwks)
	tokens := map[string]string{}
	for _, sub := range []string{"alice", "bob"} {
		tokens[sub] = iss.Mint(map[string]any{"sub": sub, "scope": "mcp"})
	}
	// Each principal calls each upstream from both eras, interleaved.
	var want []string
	for round := range 2 {
		for _, sub := range []string{"alice", "bob"} {
			for _, up := range []string{"shared", "exchanged"} {
				params := fmt.Sprintf(`{"name":"%s__get_payment","arguments":{"payment_id":"p-500%d"}}`, up, round+1)
				c := newRawClient(t, g.url)
				c.header.Set("Authorization", "Bearer "+tokens[sub])
				c.initialize()
				r := c.call("tools/call", params)
				require.Nil(t, r.Error, "%+v", r.Error)

				status, mr := newRawClient(t, g.url).modern(modernRequest{
					method: "tools/call", name: up + "__get_payment",
					body:   fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":%s,%s}}`, params[:len(params)-1], modernMeta),
					header: map[string]string{"Authorization": "Bearer " + tokens[sub]},
				})
				require.Equal(t, http.StatusOK, status)
				require.Nil(t, mr.Error, "%+v", mr.Error)
			}
			want = append(want, sub, sub) // a 2025 and a 2026 call
		}
	}

	assertion := func(t *testing.T, s seen) string {
		t.Helper()
		a := s.header.Get("X-Mcpgw-Identity")
		require.NotEmpty(t, a, "a call without an assertion")
		claims, _ := verifyJWT(t, jwks, a)
		sub, _ := claims["sub"].(string)
		return sub
	}
	// sessionsOf checks that every call went in the 2025 era on a
	// session of its caller's own, and returns who made each call.
	sessionsOf := func(t *testing.T, calls []seen, who func(seen) string) []string {
		t.Helper()
		owner := map[string]string{} // upstream session id → principal
		var got []string
		for _, s := range calls {
			assert.Equal(t, era2025, s.header.Get("Mcp-Protocol-Version"), "the session era")
			sid := s.header.Get("Mcp-Session-Id")
			require.NotEmpty(t, sid)
			sub := who(s)
			if prev, ok := owner[sid]; ok {
				assert.Equal(t, prev, sub, "one upstream session carried two principals' calls")
			}
			owner[sid] = sub
			got = append(got, sub)
		}
		assert.Len(t, owner, 2, "calls one after another reuse their principal's one session")
		return got
	}
	t.Run("pinned 2025-11-25: the gateway's credential, each caller's assertion and session", func(t *testing.T) {
		calls := shared.calls()
		require.Len(t, calls, len(want))
		got := sessionsOf(t, calls, func(s seen) string {
			assert.Equal(t, gwClientID, bearerClaims(t, iss, s.header)["sub"])
			return assertion(t, s)
		})
		assert.Equal(t, want, got)
	})
	t.Run("auto with token exchange: each caller's own token, assertion and session", func(t *testing.T) {
		calls := exchanged.calls()
		require.Len(t, calls, len(want))
		got := sessionsOf(t, calls, func(s seen) string {
			sub := assertion(t, s)
			assert.Equal(t, sub, bearerClaims(t, iss, s.header)["sub"], "the token and the assertion name the same caller")
			return sub
		})
		assert.Equal(t, want, got)
	})
	assertNoPassthrough(t, append(shared.all(), exchanged.all()...), tokens["alice"], tokens["bob"])
}
