package configs

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// validAuth is a valid auth section, after SetDefaults.
func validAuth() *Auth {
	a := &Auth{
		Resource: "https://mcp.example.com/mcp",
		Issuers:  []AuthIssuer{{Issuer: "https://login.example.com/realms/mcp"}},
	}
	a.setDefaults()
	return a
}

func TestAuthDefaults(t *testing.T) {
	t.Parallel()

	a := validAuth()
	assert.Equal(t, "mcpgw", a.ResourceName)
	assert.Equal(t, 60*time.Second, a.ClockSkew)
	assert.Equal(t, "mcpgw:admin", a.AdminScope)
	assert.Equal(t, 10000, a.CacheSize)
	assert.Equal(t, 8192, a.MaxTokenBytes)
	assert.Equal(t, time.Second, a.JWKSRefreshMinInterval)
	assert.Empty(t, a.RequiredScopes)
	is := a.Issuers[0]
	assert.Equal(t, a.Resource, is.Audience, "audience defaults to the resource")
	assert.Equal(t, "auto", is.Discovery)
	assert.Equal(t, []string{"RS256", "ES256", "EdDSA"}, is.Algorithms)
	assert.Equal(t, []string{"scope", "scp"}, is.ScopeClaims)
	assert.Equal(t, []string{"client_id", "azp"}, is.ClientIDClaims)
	assert.Empty(t, is.RolesClaim)

	// Set values survive, and setDefaults is idempotent.
	b := &Auth{
		Resource:  "https://a.example.com",
		ClockSkew: 2 * time.Minute,
		Issuers:   []AuthIssuer{{Issuer: "https://i.example.com", Audience: "api://x", Algorithms: []string{"PS256"}}},
	}
	b.setDefaults()
	b.setDefaults()
	assert.Equal(t, 2*time.Minute, b.ClockSkew)
	assert.Equal(t, "api://x", b.Issuers[0].Audience)
	assert.Equal(t, []string{"PS256"}, b.Issuers[0].Algorithms)

	u := UpstreamAuth{}
	u.setDefaults()
	assert.Equal(t, UpstreamAuth{Type: "none", Header: "Authorization"}, u)
	ia := IdentityAssertion{}
	ia.setDefaults()
	assert.Equal(t, IdentityAssertion{Header: "X-MCPGW-Identity", TTL: time.Minute}, ia)
}

func TestAuthValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		mutate func(a *Auth)
		want   []string
	}{
		{name: "valid", mutate: func(*Auth) {}},
		{
			name: "loopback http is fine for development",
			mutate: func(a *Auth) {
				a.Resource = "http://127.0.0.1:9190/mcp"
				a.Issuers[0].Issuer = "http://localhost:5556/dex"
			},
		},
		{
			name:   "resource required",
			mutate: func(a *Auth) { a.Resource = "" },
			want:   []string{"auth.resource: required"},
		},
		{
			name:   "resource must be https off loopback",
			mutate: func(a *Auth) { a.Resource = "http://mcp.example.com/mcp" },
			want:   []string{"auth.resource: must be https (http only for loopback hosts)"},
		},
		{
			name:   "resource without fragment or query",
			mutate: func(a *Auth) { a.Resource = "https://mcp.example.com/mcp?x=1#frag" },
			want:   []string{"auth.resource: must not have a fragment", "auth.resource: must not have a query"},
		},
		{
			name:   "resource relative",
			mutate: func(a *Auth) { a.Resource = "mcp.example.com" },
			want:   []string{"auth.resource: must be an absolute http or https URL"},
		},
		{
			name:   "no issuers",
			mutate: func(a *Auth) { a.Issuers = nil },
			want:   []string{"auth.issuers: at least one issuer is required"},
		},
		{
			name: "issuer problems",
			mutate: func(a *Auth) {
				a.Issuers = append(a.Issuers, AuthIssuer{
					Issuer:         "http://login.example.com",
					Audience:       " ",
					Discovery:      "magic",
					Algorithms:     []string{"HS256", "none", "RS1", "ES256"},
					ScopeClaims:    []string{""},
					ClientIDClaims: []string{"azp"},
					RolesClaim:     "realm_access..roles",
				}, a.Issuers[0])
			},
			want: []string{
				"auth.issuers[1].issuer: must be https (http only for loopback hosts)",
				`auth.issuers[1].audience: must not be empty`,
				`auth.issuers[1].discovery: "magic" must be auto, oidc or oauth`,
				`auth.issuers[1].algorithms[0]: "HS256" is symmetric: whoever verifies it can also mint tokens; use an asymmetric algorithm`,
				`auth.issuers[1].algorithms[1]: "none" is never accepted: it is no signature`,
				`auth.issuers[1].algorithms[2]: "RS1" is not one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`,
				`auth.issuers[1].scope_claims[0]: must not be empty`,
				`auth.issuers[1].roles_claim: "realm_access..roles" has an empty path segment`,
				`auth.issuers[2].issuer: is already used by auth.issuers[0]`,
			},
		},
		{
			name:   "empty algorithm list",
			mutate: func(a *Auth) { a.Issuers[0].Algorithms = []string{} },
			want:   []string{"auth.issuers[0].algorithms: at least one algorithm is required"},
		},
		{
			name:   "clock skew too large",
			mutate: func(a *Auth) { a.ClockSkew = 6 * time.Minute },
			want:   []string{"auth.clock_skew: must be at most 5m0s"},
		},
		{
			name:   "clock skew negative",
			mutate: func(a *Auth) { a.ClockSkew = -time.Second },
			want:   []string{"auth.clock_skew: must not be negative"},
		},
		{
			name: "scopes",
			mutate: func(a *Auth) {
				a.ScopesSupported = []string{"mcp:tools", "offline_access", "two words"}
				a.RequiredScopes = []string{`quo"te`}
				a.AdminScope = "back\\slash"
			},
			want: []string{
				`auth.scopes_supported[1]: offline_access must not be advertised: refresh tokens are the authorization server's business, not a scope of this resource`,
				`auth.scopes_supported[2]: "two words" is not a valid scope (printable ASCII, no space, quote or backslash)`,
				`auth.required_scopes[0]: "quo\"te" is not a valid scope (printable ASCII, no space, quote or backslash)`,
				`auth.admin_scope: "back\\slash" is not a valid scope`,
			},
		},
		{
			name: "trusted proxies",
			mutate: func(a *Auth) {
				a.TrustedProxies = []string{"10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8", "proxy.local", "10.0.0.0/33"}
			},
			want: []string{
				`auth.trusted_proxies[4]: "proxy.local" is not an IP address or CIDR`,
				`auth.trusted_proxies[5]: "10.0.0.0/33" is not an IP address or CIDR`,
			},
		},
		{
			name: "sizes",
			mutate: func(a *Auth) {
				a.CacheSize = -1
				a.MaxTokenBytes = -1
				a.JWKSRefreshMinInterval = -time.Second
			},
			want: []string{
				"auth.cache_size: must be positive",
				"auth.max_token_bytes: must be positive",
				"auth.jwks_refresh_min_interval: must be a positive duration",
			},
		},
		{
			name:   "refresh interval too long",
			mutate: func(a *Auth) { a.JWKSRefreshMinInterval = 2 * time.Minute },
			want: []string{
				"auth.jwks_refresh_min_interval: must be at most 1m0s: a token with an unknown key id waits up to this long",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			c.Auth = validAuth()
			tt.mutate(c.Auth)
			assert.Equal(t, tt.want, Problems(c.Validate()))
		})
	}
}

func TestAuthParse(t *testing.T) {
	t.Parallel()

	cfg, err := Parse([]byte(`
upstreams:
  - name: a
    http: {url: "http://127.0.0.1:1/mcp"}
auth:
  resource: https://mcp.example.com/mcp
  issuers:
    - issuer: https://dex.example.com
      audience: mcpgw
      discovery: oauth
      algorithms: [ES256]
      scope_claims: [scp]
      roles_claim: groups
      client_id_claims: [azp]
  clock_skew: 30s
  scopes_supported: [mcp:tools]
  required_scopes: [mcp:tools]
  trusted_proxies: [10.0.0.0/8]
  jwks_refresh_min_interval: 1m
`))
	require.NoError(t, err)
	want := &Auth{
		Resource:     "https://mcp.example.com/mcp",
		ResourceName: "mcpgw",
		Issuers: []AuthIssuer{{
			Issuer:         "https://dex.example.com",
			Audience:       "mcpgw",
			Discovery:      "oauth",
			Algorithms:     []string{"ES256"},
			ScopeClaims:    []string{"scp"},
			RolesClaim:     "groups",
			ClientIDClaims: []string{"azp"},
		}},
		ClockSkew:              30 * time.Second,
		ScopesSupported:        []string{"mcp:tools"},
		RequiredScopes:         []string{"mcp:tools"},
		AdminScope:             "mcpgw:admin",
		TrustedProxies:         []string{"10.0.0.0/8"},
		CacheSize:              10000,
		MaxTokenBytes:          8192,
		JWKSRefreshMinInterval: time.Minute,
	}
	assert.Equal(t, want, cfg.Auth)

	_, err = Parse([]byte(`
upstreams:
  - name: a
    http: {url: "http://127.0.0.1:1/mcp"}
auth:
  resource: https://mcp.example.com/mcp
  issuers:
    - issuer: https://dex.example.com
      audiences: [x]
`))
	assert.Equal(t, []string{`auth.issuers[0].audiences: unknown key; did you mean "audience"?`}, Problems(err))
}

func TestTrustedProxyPrefixes(t *testing.T) {
	t.Parallel()

	a := &Auth{TrustedProxies: []string{"10.1.2.3/8", "192.168.1.1", "::ffff:172.16.0.1", "fd00::/8", "bad"}}
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("172.16.0.1/32"),
		netip.MustParsePrefix("fd00::/8"),
	}, a.TrustedProxyPrefixes())
}

// problemsOf runs one validator helper and returns its problems.
func problemsOf(check func(v *validator)) []string {
	v := &validator{}
	check(v)
	var out []string
	for _, e := range v.errs {
		out = append(out, e.Error())
	}
	return out
}

func TestUpstreamAuthValidate(t *testing.T) {
	t.Parallel()

	secret := SecretRef{Env: "SECRET"}
	tests := []struct {
		name string
		auth UpstreamAuth
		want []string
	}{
		{name: "zero is none", auth: UpstreamAuth{}},
		{name: "zero header is the default", auth: UpstreamAuth{Type: "static", Value: secret}},
		{name: "static", auth: UpstreamAuth{Type: "static", Header: "X-Api-Key", Value: secret}},
		{
			name: "client credentials",
			auth: UpstreamAuth{
				Type: "client_credentials", TokenURL: "https://login.example.com/token", ClientID: "mcpgw",
				ClientSecret: secret, Scopes: []string{"orders.api"}, Audience: "orders", Resource: "https://orders.example.com/mcp",
			},
		},
		{
			name: "token exchange on loopback",
			auth: UpstreamAuth{Type: "token_exchange", TokenURL: "http://127.0.0.1:8080/token", ClientID: "mcpgw", ClientSecret: secret},
		},
		{
			name: "unknown type",
			auth: UpstreamAuth{Type: "kerberos"},
			want: []string{`upstreams[0].auth.type: "kerberos" must be none, static, client_credentials or token_exchange`},
		},
		{
			name: "static without value",
			auth: UpstreamAuth{Type: "static", Header: "Bad Header"},
			want: []string{
				`upstreams[0].auth.header: "Bad Header" is not a valid header name`,
				`upstreams[0].auth.value: exactly one of env, file, value must be set`,
			},
		},
		{
			name: "fields of other types",
			auth: UpstreamAuth{
				Type: "static", Value: secret, TokenURL: "https://x", ClientID: "c", ClientSecret: secret,
				Scopes: []string{"s"}, Audience: "a", Resource: "https://r",
			},
			want: []string{
				"upstreams[0].auth.token_url: only for types client_credentials and token_exchange",
				"upstreams[0].auth.client_id: only for types client_credentials and token_exchange",
				"upstreams[0].auth.client_secret: only for types client_credentials and token_exchange",
				"upstreams[0].auth.scopes: only for types client_credentials and token_exchange",
				"upstreams[0].auth.audience: only for types client_credentials and token_exchange",
				"upstreams[0].auth.resource: only for types client_credentials and token_exchange",
			},
		},
		{
			name: "value outside static",
			auth: UpstreamAuth{Type: "none", Value: secret},
			want: []string{"upstreams[0].auth.value: only for type static"},
		},
		{
			name: "oauth without its fields",
			auth: UpstreamAuth{Type: "client_credentials", Scopes: []string{"a b"}, Resource: "https://r.example.com/#x"},
			want: []string{
				"upstreams[0].auth.token_url: required",
				"upstreams[0].auth.client_id: required",
				"upstreams[0].auth.client_secret: exactly one of env, file, value must be set",
				`upstreams[0].auth.scopes[0]: "a b" is not a valid scope (printable ASCII, no space, quote or backslash)`,
				"upstreams[0].auth.resource: must not have a fragment",
			},
		},
		{
			name: "token url must be https",
			auth: UpstreamAuth{Type: "token_exchange", TokenURL: "http://login.example.com/token", ClientID: "c", ClientSecret: secret},
			want: []string{"upstreams[0].auth.token_url: must be https (http only for loopback hosts)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := tt.auth
			a.setDefaults()
			assert.Equal(t, tt.want, problemsOf(func(v *validator) { v.upstreamAuth("upstreams[0].auth", &a) }))
		})
	}
}

func TestUpstreamBlocksZeroValuesAreValid(t *testing.T) {
	t.Parallel()

	// An upstream appended after SetDefaults has zero blocks; they mean
	// the defaults, not problems.
	assert.Empty(t, problemsOf(func(v *validator) {
		v.upstreamAuth("upstreams[0].auth", &UpstreamAuth{})
		v.upstreamAuth("upstreams[0].auth", &UpstreamAuth{Type: "static", Value: SecretRef{Env: "X"}})
		v.identityAssertion("upstreams[0].identity_assertion", &IdentityAssertion{})
		v.identityAssertion("upstreams[0].identity_assertion", &IdentityAssertion{Enabled: true})
		v.toolScopes("upstreams[0].scopes", &ToolScopes{})
	}))
}

func TestIdentityAssertionValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		ia   IdentityAssertion
		want []string
	}{
		{name: "defaults", ia: IdentityAssertion{Enabled: true}},
		{name: "issuer", ia: IdentityAssertion{Enabled: true, Issuer: "https://mcp.example.com/mcp"}},
		{
			name: "bad",
			ia:   IdentityAssertion{Header: "X Id", TTL: 2 * time.Hour, Issuer: " x"},
			want: []string{
				`upstreams[0].identity_assertion.header: "X Id" is not a valid header name`,
				"upstreams[0].identity_assertion.ttl: must be at most 1h0m0s",
				"upstreams[0].identity_assertion.issuer: must not have leading or trailing spaces",
			},
		},
		{
			name: "negative ttl",
			ia:   IdentityAssertion{TTL: -time.Second},
			want: []string{"upstreams[0].identity_assertion.ttl: must not be negative"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ia := tt.ia
			ia.setDefaults()
			assert.Equal(t, tt.want, problemsOf(func(v *validator) { v.identityAssertion("upstreams[0].identity_assertion", &ia) }))
		})
	}
}

func TestToolScopes(t *testing.T) {
	t.Parallel()

	s := ToolScopes{
		Default: []string{"orders:read"},
		Tools: []ToolScopeRule{
			{Match: "create_*", Scopes: []string{"orders:write"}},
			{Match: "ping"},
			{Match: "*", Scopes: []string{"never"}},
		},
	}
	assert.Equal(t, []string{"orders:write"}, s.For("create_order"))
	assert.Empty(t, s.For("ping"), "an empty rule exempts the tool")
	assert.Equal(t, []string{"never"}, s.For("list_orders"), "the first matching rule wins")
	assert.Equal(t, []string{"orders:read"}, (&ToolScopes{Default: []string{"orders:read"}}).For("x"))

	bad := ToolScopes{
		Default: []string{"a b"},
		Tools:   []ToolScopeRule{{Match: ""}, {Match: "[", Scopes: []string{"ok", ""}}},
	}
	assert.Equal(t, []string{
		`upstreams[0].scopes.default[0]: "a b" is not a valid scope (printable ASCII, no space, quote or backslash)`,
		"upstreams[0].scopes.tools[0].match: required",
		`upstreams[0].scopes.tools[1].match: "[" is not a valid glob: syntax error in pattern`,
		`upstreams[0].scopes.tools[1].scopes[1]: "" is not a valid scope (printable ASCII, no space, quote or backslash)`,
	}, problemsOf(func(v *validator) { v.toolScopes("upstreams[0].scopes", &bad) }))
	assert.Empty(t, problemsOf(func(v *validator) { v.toolScopes("upstreams[0].scopes", &s) }))
}

func TestUpstreamAuthSecretsAreRedacted(t *testing.T) {
	t.Parallel()

	ref := SecretRef{Value: leak, Resolved: leak}
	a := UpstreamAuth{Type: "static", Value: ref, ClientSecret: ref}
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		assert.NotContains(t, fmt.Sprintf(format, a), leak, format)
		assert.NotContains(t, fmt.Sprintf(format, &a), leak, format)
	}
	j, err := json.Marshal(a)
	require.NoError(t, err)
	assert.NotContains(t, string(j), leak)
	y, err := yaml.Marshal(a)
	require.NoError(t, err)
	assert.NotContains(t, string(y), leak)

	var paths []string
	a.secretRefs("upstreams[0].auth", func(p string, r *SecretRef) {
		paths = append(paths, p)
		r.Resolved = "resolved"
	})
	assert.Equal(t, []string{"upstreams[0].auth.value", "upstreams[0].auth.client_secret"}, paths)
	assert.Equal(t, Secret("resolved"), a.ClientSecret.Resolved, "secretRefs hands out addresses")
}

func TestUpstreamIdentityValidate(t *testing.T) {
	t.Parallel()

	exchange := UpstreamAuth{Type: "token_exchange", TokenURL: "https://login.example.com/token", ClientID: "c", ClientSecret: SecretRef{Env: "S"}}
	tests := []struct {
		name string
		auth *Auth
		up   Upstream
		want []string
	}{
		{name: "http with auth", auth: &Auth{}, up: Upstream{HTTP: &HTTPTransport{}, Auth: exchange, IdentityAssertion: IdentityAssertion{Enabled: true}}},
		{name: "stdio without credential", up: Upstream{Stdio: &StdioTransport{}, Auth: UpstreamAuth{Type: "none"}}},
		{
			name: "stdio has no headers",
			auth: &Auth{},
			up:   Upstream{Stdio: &StdioTransport{}, Auth: exchange, IdentityAssertion: IdentityAssertion{Enabled: true}},
			want: []string{
				"upstreams[0].auth.type: stdio upstreams have no headers to carry a credential; pass it in stdio.env",
				"upstreams[0].identity_assertion.enabled: stdio upstreams have no headers to carry an assertion",
			},
		},
		{
			name: "no caller without auth",
			up:   Upstream{SSE: &SSETransport{}, Auth: exchange, IdentityAssertion: IdentityAssertion{Enabled: true}},
			want: []string{
				"upstreams[0].auth.type: token_exchange needs the caller's token: configure auth",
				"upstreams[0].identity_assertion.enabled: an identity assertion needs an authenticated caller: configure auth",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Config{Auth: tt.auth, Upstreams: []Upstream{tt.up}}
			assert.Equal(t, tt.want, problemsOf(func(v *validator) { v.upstreamIdentity(c) }))
		})
	}
}
