package configs

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// Defaults of the auth section and of the per-upstream auth blocks,
// documented on the fields they fill.
const (
	// DefaultClockSkew is the leeway allowed on exp, nbf and iat.
	DefaultClockSkew = 60 * time.Second
	// MaxClockSkew bounds clock_skew: a larger leeway keeps expired tokens
	// alive for too long.
	MaxClockSkew = 5 * time.Minute
	// DefaultAdminScope is the scope the admin API requires.
	DefaultAdminScope = "mcpgw:admin"
	// DefaultAuthCacheSize is the number of verified tokens kept.
	DefaultAuthCacheSize = 10000
	// DefaultMaxTokenBytes bounds a bearer token.
	DefaultMaxTokenBytes = 8192
	// DefaultJWKSRefreshMinInterval is the least time between two fetches
	// of an issuer's key set. One second bounds both what a flood of forged
	// key ids costs the issuer (one fetch a second per gateway replica) and
	// how long a token signed with a freshly rotated key waits (about a
	// second, once per rotation).
	DefaultJWKSRefreshMinInterval = time.Second
	// MaxJWKSRefreshMinInterval caps jwks_refresh_min_interval: a token with
	// an unknown key id waits up to that long for the next fetch.
	MaxJWKSRefreshMinInterval = time.Minute
	// DefaultResourceName is the resource_name of the protected resource
	// metadata.
	DefaultResourceName = "mcpgw"

	// DiscoveryAuto tries OpenID Connect discovery, then RFC 8414.
	DiscoveryAuto = "auto"
	// DiscoveryOIDC uses only OpenID Connect discovery.
	DiscoveryOIDC = "oidc"
	// DiscoveryOAuth uses only RFC 8414 authorization server metadata.
	DiscoveryOAuth = "oauth"

	// UpstreamAuthNone sends no credentials.
	UpstreamAuthNone = "none"
	// UpstreamAuthStatic sends a fixed secret header.
	UpstreamAuthStatic = "static"
	// UpstreamAuthClientCredentials sends a token the gateway obtains for
	// itself with the OAuth client credentials grant.
	UpstreamAuthClientCredentials = "client_credentials"
	// UpstreamAuthTokenExchange sends a token obtained by exchanging the
	// caller's token (RFC 8693) for one meant for the upstream.
	UpstreamAuthTokenExchange = "token_exchange"
	// DefaultUpstreamAuthHeader is the header the upstream credential is
	// sent in.
	DefaultUpstreamAuthHeader = "Authorization"

	// DefaultIdentityHeader carries the identity assertion.
	DefaultIdentityHeader = "X-MCPGW-Identity"
	// DefaultIdentityTTL is the lifetime of one identity assertion.
	DefaultIdentityTTL = 60 * time.Second
	// MaxIdentityTTL bounds the lifetime of an identity assertion.
	MaxIdentityTTL = time.Hour
)

// DefaultAlgorithms returns the signing algorithms accepted from an issuer
// when its algorithms are unset: asymmetric only.
func DefaultAlgorithms() []string { return []string{"RS256", "ES256", "EdDSA"} }

// DefaultScopeClaims returns the claims scopes are read from when
// scope_claims is unset: scope (RFC 9068, space-separated) and scp (a
// string or an array, as Microsoft Entra and Okta issue).
func DefaultScopeClaims() []string { return []string{"scope", "scp"} }

// DefaultClientIDClaims returns the claims the client id is read from when
// client_id_claims is unset: client_id (RFC 9068), then azp.
func DefaultClientIDClaims() []string { return []string{"client_id", "azp"} }

// asymmetricAlgorithms returns the JWS algorithms an issuer may be
// configured with. Symmetric (HS*) and "none" are never accepted: a
// resource server that shares a MAC key with the issuer can mint tokens,
// and "none" is no signature at all (RFC 8725 section 3.1).
func asymmetricAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
}

// Auth makes the gateway an OAuth 2.1 resource server, as the MCP
// authorization specification requires of an HTTP MCP server: every request
// to /mcp carries a bearer token in the Authorization header, issued by one
// of the configured issuers for this gateway (its audience), and the gateway
// publishes RFC 9728 protected resource metadata so clients can find the
// issuers.
//
//	auth:
//	  resource: https://mcp.example.com/mcp
//	  issuers:
//	    - issuer: https://login.example.com/realms/mcp
//	      roles_claim: realm_access.roles
//	  scopes_supported: [mcp:tools]
//	  required_scopes: [mcp:tools]
type Auth struct {
	// Resource is the gateway's canonical resource URI (RFC 8707), the URL
	// hosts connect to, such as https://mcp.example.com/mcp. Tokens must
	// name it in aud (unless an issuer sets another audience), and the
	// protected resource metadata is served at its path with
	// /.well-known/oauth-protected-resource inserted after the host. Must be
	// https, except for loopback hosts. Required.
	Resource string `mapstructure:"resource" yaml:"resource"`
	// ResourceName is the human-readable name in the protected resource
	// metadata. Default "mcpgw".
	ResourceName string `mapstructure:"resource_name" yaml:"resource_name"`
	// Issuers are the authorization servers whose tokens are accepted. A
	// token is matched to an issuer by its iss claim, exactly; tokens from
	// any other issuer are rejected without a network request. At least one.
	Issuers []AuthIssuer `mapstructure:"issuers" yaml:"issuers"`
	// ClockSkew is the leeway allowed when checking exp, nbf and iat.
	// Default 60s, at most 5m.
	ClockSkew time.Duration `mapstructure:"clock_skew" yaml:"clock_skew"`
	// ScopesSupported is advertised as scopes_supported in the protected
	// resource metadata; MCP clients that get no scope in a challenge
	// request all of them, so list only the baseline (MCP security best
	// practices, "Scope Minimization"). offline_access is rejected: it asks
	// for refresh tokens, which are the authorization server's business,
	// not a scope of this resource.
	ScopesSupported []string `mapstructure:"scopes_supported" yaml:"scopes_supported,omitempty"`
	// RequiredScopes are needed for any access to the MCP endpoint. A valid
	// token without them gets 403 with an insufficient_scope challenge.
	// Default none.
	RequiredScopes []string `mapstructure:"required_scopes" yaml:"required_scopes,omitempty"`
	// AdminScope is the scope the admin API requires. Default mcpgw:admin.
	AdminScope string `mapstructure:"admin_scope" yaml:"admin_scope"`
	// TrustedProxies lists the addresses (CIDRs or single IPs) of reverse
	// proxies whose X-Forwarded-Host and X-Forwarded-Proto headers are
	// honoured when building metadata URLs. From any other peer these
	// headers are ignored, so a client cannot point the metadata at a host
	// of its choosing. Note that a forwarded host changes the resource the
	// metadata advertises, while tokens must still carry each issuer's
	// audience. Default none.
	TrustedProxies []string `mapstructure:"trusted_proxies" yaml:"trusted_proxies,omitempty"`
	// CacheSize is the number of verified tokens kept, so a token seen
	// before costs no signature check. Entries never outlive their token.
	// Default 10000.
	CacheSize int `mapstructure:"cache_size" yaml:"cache_size"`
	// MaxTokenBytes bounds a bearer token; a longer one is rejected before
	// it is parsed. Default 8192.
	MaxTokenBytes int `mapstructure:"max_token_bytes" yaml:"max_token_bytes"`
	// JWKSRefreshMinInterval is the least time between two fetches of an
	// issuer's key set. A token with an unknown key id asks for a re-fetch
	// (that is how key rotation is followed, OpenID Connect Core section
	// 10.1.1) and waits for the next one, so forged key ids cannot make the
	// gateway hammer the issuer, and a real token signed with a new key is
	// never refused because a forged one used up the fetch. The key set is
	// also refreshed in the background when the issuer's Cache-Control
	// max-age runs out (5m without one), never more often than this. At
	// most 1m. Default 1s.
	JWKSRefreshMinInterval time.Duration `mapstructure:"jwks_refresh_min_interval" yaml:"jwks_refresh_min_interval"`
}

// AuthIssuer is one trusted authorization server.
type AuthIssuer struct {
	// Issuer is the issuer identifier, compared exactly with the iss claim
	// and with the issuer in the discovered metadata. Must be https, except
	// for loopback hosts. Required, unique.
	Issuer string `mapstructure:"issuer" yaml:"issuer"`
	// Audience must be contained in the token's aud claim (a string or an
	// array). Default: auth.resource.
	Audience string `mapstructure:"audience" yaml:"audience"`
	// Discovery is how the issuer's key set is found: oidc
	// (<issuer>/.well-known/openid-configuration), oauth (RFC 8414,
	// /.well-known/oauth-authorization-server inserted before the issuer's
	// path) or auto (oidc, then oauth). Default auto.
	Discovery string `mapstructure:"discovery" yaml:"discovery"`
	// Algorithms are the JWS algorithms accepted from this issuer. HS* and
	// none are rejected. Default RS256, ES256, EdDSA.
	Algorithms []string `mapstructure:"algorithms" yaml:"algorithms,omitempty"`
	// ScopeClaims are the claims scopes are read from, in order; their
	// values are merged. A string is split on spaces; an array is taken as
	// is. Default scope, scp. Set it for a provider that issues no scope
	// claim: Dex, with [groups] (docs/identity-providers.md).
	ScopeClaims []string `mapstructure:"scope_claims" yaml:"scope_claims,omitempty"`
	// RolesClaim is the dotted path of the claim holding roles, such as
	// realm_access.roles (Keycloak) or roles (Entra). Unset means no roles.
	RolesClaim string `mapstructure:"roles_claim" yaml:"roles_claim,omitempty"`
	// ClientIDClaims are the claims the client id is read from; the first
	// present wins. Default client_id, azp.
	ClientIDClaims []string `mapstructure:"client_id_claims" yaml:"client_id_claims,omitempty"`
}

// ToolScopes says which OAuth scopes the tools of one upstream require.
// A tool needs the scopes of the first rule whose glob matches its
// original (upstream) name, or Default when none does; the gateway answers
// a call without them with a 403 insufficient_scope challenge naming them.
//
//	scopes:
//	  default: [orders:read]
//	  tools:
//	    - match: "create_*"
//	      scopes: [orders:write]
type ToolScopes struct {
	// Default are the scopes of tools no rule matches. Empty means none.
	Default []string `mapstructure:"default" yaml:"default,omitempty"`
	// Tools are rules tried in order.
	Tools []ToolScopeRule `mapstructure:"tools" yaml:"tools,omitempty"`
}

// ToolScopeRule gives scopes to the tools whose original name matches.
type ToolScopeRule struct {
	// Match is a path.Match glob on the tool's original name. Required.
	Match string `mapstructure:"match" yaml:"match"`
	// Scopes are all required. Empty means the matching tools need no
	// scope, even when Default has some.
	Scopes []string `mapstructure:"scopes" yaml:"scopes,omitempty"`
}

// For returns the scopes the tool with the given original name requires.
func (s *ToolScopes) For(tool string) []string {
	for i := range s.Tools {
		if ok, _ := path.Match(s.Tools[i].Match, tool); ok {
			return s.Tools[i].Scopes
		}
	}
	return s.Default
}

// UpstreamAuth is the credential the gateway sends to one upstream. The
// caller's own token is never forwarded (MCP security best practices,
// "Token Passthrough"); with token_exchange it is exchanged for one issued
// for the upstream, cached per caller until it nears expiry, and the
// gateway's own traffic to the upstream (discovery, health checks, which
// have no caller) uses a client credentials token of the same client,
// token endpoint, scopes, audience and resource. token_exchange needs auth
// to be configured. stdio upstreams have no headers and take no credential
// (pass a secret in stdio.env).
//
//	auth:
//	  type: client_credentials
//	  token_url: https://login.example.com/oauth2/token
//	  client_id: mcpgw
//	  client_secret: {env: MCPGW_ORDERS_SECRET}
//	  scopes: [orders.api]
type UpstreamAuth struct {
	// Type is none, static, client_credentials or token_exchange.
	// Default none.
	Type string `mapstructure:"type" yaml:"type"`
	// Header is the request header the credential is sent in. Default
	// Authorization. A token (client_credentials, token_exchange) is sent
	// as "Bearer <token>" in Authorization and bare in any other header.
	Header string `mapstructure:"header" yaml:"header"`
	// Value is the whole header value for static, such as "Bearer abc" or
	// an API key. Only for static, where it is required.
	Value SecretRef `mapstructure:"value" yaml:"value"`
	// TokenURL is the token endpoint of the authorization server that
	// issues the upstream's tokens. Required for client_credentials and
	// token_exchange.
	TokenURL string `mapstructure:"token_url" yaml:"token_url,omitempty"`
	// ClientID is the gateway's client id at that server. Required for
	// client_credentials and token_exchange.
	ClientID string `mapstructure:"client_id" yaml:"client_id,omitempty"`
	// ClientSecret authenticates the gateway (HTTP Basic). Required for
	// client_credentials and token_exchange.
	ClientSecret SecretRef `mapstructure:"client_secret" yaml:"client_secret"`
	// Scopes are requested with each token.
	Scopes []string `mapstructure:"scopes" yaml:"scopes,omitempty"`
	// Audience is sent as the audience parameter (RFC 8693 section 2.1, also
	// understood by several servers for client credentials).
	Audience string `mapstructure:"audience" yaml:"audience,omitempty"`
	// Resource is sent as the resource parameter (RFC 8707): the upstream's
	// canonical URI.
	Resource string `mapstructure:"resource" yaml:"resource,omitempty"`
}

// IdentityAssertion makes the gateway send the upstream a short-lived JWT
// it signs itself (ES256, typ mcpgw-identity+jwt), naming the caller: iss,
// aud (the upstream's name), sub, client_id, scope, iat, exp and jti. The
// upstream verifies it with the gateway's key set at
// /.well-known/mcpgw/jwks.json (rotated with POST /admin/v1/keys/rotate).
// It is sent on calls made for a caller, not on the gateway's own traffic,
// and needs auth to be configured; stdio upstreams cannot carry it.
type IdentityAssertion struct {
	// Enabled turns the assertion on. Default false.
	Enabled bool `mapstructure:"enabled" yaml:"enabled"`
	// Header carries the assertion. Default X-MCPGW-Identity.
	Header string `mapstructure:"header" yaml:"header"`
	// TTL is the lifetime of one assertion. Default 60s, at most 1h.
	TTL time.Duration `mapstructure:"ttl" yaml:"ttl"`
	// Issuer is the assertion's iss. Default: auth.resource.
	Issuer string `mapstructure:"issuer" yaml:"issuer,omitempty"`
}

// SetDefaults fills the fields of a left at their zero value, as
// Config.SetDefaults does, for code that builds an Auth without a whole
// Config.
func (a *Auth) SetDefaults() { a.setDefaults() }

func (a *Auth) setDefaults() {
	setDefault(&a.ResourceName, DefaultResourceName)
	setDefault(&a.ClockSkew, DefaultClockSkew)
	setDefault(&a.AdminScope, DefaultAdminScope)
	setDefault(&a.CacheSize, DefaultAuthCacheSize)
	setDefault(&a.MaxTokenBytes, DefaultMaxTokenBytes)
	setDefault(&a.JWKSRefreshMinInterval, DefaultJWKSRefreshMinInterval)
	for i := range a.Issuers {
		is := &a.Issuers[i]
		setDefault(&is.Audience, a.Resource)
		setDefault(&is.Discovery, DiscoveryAuto)
		if len(is.Algorithms) == 0 {
			is.Algorithms = DefaultAlgorithms()
		}
		if len(is.ScopeClaims) == 0 {
			is.ScopeClaims = DefaultScopeClaims()
		}
		if len(is.ClientIDClaims) == 0 {
			is.ClientIDClaims = DefaultClientIDClaims()
		}
	}
}

func (a *UpstreamAuth) setDefaults() {
	setDefault(&a.Type, UpstreamAuthNone)
	setDefault(&a.Header, DefaultUpstreamAuthHeader)
}

func (a *IdentityAssertion) setDefaults() {
	setDefault(&a.Header, DefaultIdentityHeader)
	setDefault(&a.TTL, DefaultIdentityTTL)
}

// secretRefs calls fn with the path and address of every SecretRef in a;
// Config.secretRefs calls it for each upstream so Load resolves them.
func (a *UpstreamAuth) secretRefs(path string, fn func(path string, r *SecretRef)) {
	fn(path+".value", &a.Value)
	fn(path+".client_secret", &a.ClientSecret)
}

// Validate checks the auth section alone, as Config.Validate does with it,
// for code that builds an Auth without a whole Config.
func (a *Auth) Validate() error {
	v := &validator{}
	v.auth(a)
	sortByPath(v.errs)
	return errors.Join(v.errs...)
}

func (v *validator) auth(a *Auth) {
	v.resourceURL("auth.resource", a.Resource)
	if len(a.Issuers) == 0 {
		v.add("auth.issuers", "at least one issuer is required")
	}
	seen := make(map[string]int, len(a.Issuers))
	for i := range a.Issuers {
		v.authIssuer(fmt.Sprintf("auth.issuers[%d]", i), &a.Issuers[i], i, seen)
	}
	switch {
	case a.ClockSkew < 0:
		v.add("auth.clock_skew", "must not be negative")
	case a.ClockSkew > MaxClockSkew:
		v.add("auth.clock_skew", "must be at most %s", MaxClockSkew)
	}
	v.scopes("auth.scopes_supported", a.ScopesSupported)
	for i, s := range a.ScopesSupported {
		if s == "offline_access" {
			v.add(fmt.Sprintf("auth.scopes_supported[%d]", i), "offline_access must not be advertised: refresh tokens are the authorization server's business, not a scope of this resource")
		}
	}
	v.scopes("auth.required_scopes", a.RequiredScopes)
	if !isScopeToken(a.AdminScope) {
		v.add("auth.admin_scope", "%q is not a valid scope", a.AdminScope)
	}
	for i, p := range a.TrustedProxies {
		if _, err := parsePrefix(p); err != nil {
			v.add(fmt.Sprintf("auth.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if a.CacheSize <= 0 {
		v.add("auth.cache_size", "must be positive")
	}
	if a.MaxTokenBytes <= 0 {
		v.add("auth.max_token_bytes", "must be positive")
	}
	v.positiveDuration("auth.jwks_refresh_min_interval", a.JWKSRefreshMinInterval)
	if a.JWKSRefreshMinInterval > MaxJWKSRefreshMinInterval {
		v.add("auth.jwks_refresh_min_interval", "must be at most %s: a token with an unknown key id waits up to this long", MaxJWKSRefreshMinInterval)
	}
}

func (v *validator) authIssuer(p string, is *AuthIssuer, i int, seen map[string]int) {
	v.secureURL(p+".issuer", is.Issuer)
	if j, ok := seen[is.Issuer]; ok && is.Issuer != "" {
		v.add(p+".issuer", "is already used by auth.issuers[%d]", j)
	} else {
		seen[is.Issuer] = i
	}
	if strings.TrimSpace(is.Audience) == "" {
		v.add(p+".audience", "must not be empty")
	}
	switch is.Discovery {
	case DiscoveryAuto, DiscoveryOIDC, DiscoveryOAuth:
	default:
		v.add(p+".discovery", "%q must be auto, oidc or oauth%s", is.Discovery, didYouMean(is.Discovery, DiscoveryAuto, DiscoveryOIDC, DiscoveryOAuth))
	}
	if len(is.Algorithms) == 0 {
		v.add(p+".algorithms", "at least one algorithm is required")
	}
	for j, alg := range is.Algorithms {
		ap := fmt.Sprintf("%s.algorithms[%d]", p, j)
		switch {
		case strings.EqualFold(alg, "none"):
			v.add(ap, `"none" is never accepted: it is no signature`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.add(ap, "%q is symmetric: whoever verifies it can also mint tokens; use an asymmetric algorithm", alg)
		case !slices.Contains(asymmetricAlgorithms(), alg):
			v.add(ap, "%q is not one of %s", alg, strings.Join(asymmetricAlgorithms(), ", "))
		}
	}
	v.claimNames(p+".scope_claims", is.ScopeClaims)
	v.claimNames(p+".client_id_claims", is.ClientIDClaims)
	if is.RolesClaim != "" && slices.Contains(strings.Split(is.RolesClaim, "."), "") {
		v.add(p+".roles_claim", "%q has an empty path segment", is.RolesClaim)
	}
}

func (v *validator) claimNames(p string, names []string) {
	if len(names) == 0 {
		v.add(p, "at least one claim is required")
	}
	for i, n := range names {
		if strings.TrimSpace(n) == "" {
			v.add(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
}

// scopes checks scope tokens (RFC 6749 section 3.3).
func (v *validator) scopes(p string, scopes []string) {
	for i, s := range scopes {
		if !isScopeToken(s) {
			v.add(fmt.Sprintf("%s[%d]", p, i), "%q is not a valid scope (printable ASCII, no space, quote or backslash)", s)
		}
	}
}

// toolScopes checks the scopes table of the upstream at path p.
func (v *validator) toolScopes(p string, s *ToolScopes) {
	v.scopes(p+".default", s.Default)
	for i := range s.Tools {
		rp := fmt.Sprintf("%s.tools[%d]", p, i)
		r := &s.Tools[i]
		if r.Match == "" {
			v.add(rp+".match", "required")
		} else if _, err := path.Match(r.Match, ""); err != nil {
			v.add(rp+".match", "%q is not a valid glob: %v", r.Match, err)
		}
		v.scopes(rp+".scopes", r.Scopes)
	}
}

// upstreamAuth checks the auth block of the upstream at path p: the fields
// its type needs are set and the others are not. Zero values (an upstream
// that never went through SetDefaults) mean the defaults.
func (v *validator) upstreamAuth(p string, a *UpstreamAuth) {
	oauth := a.Type == UpstreamAuthClientCredentials || a.Type == UpstreamAuthTokenExchange
	switch a.Type {
	case "", UpstreamAuthNone, UpstreamAuthStatic, UpstreamAuthClientCredentials, UpstreamAuthTokenExchange:
	default:
		v.add(p+".type", "%q must be none, static, client_credentials or token_exchange%s", a.Type,
			didYouMean(a.Type, UpstreamAuthNone, UpstreamAuthStatic, UpstreamAuthClientCredentials, UpstreamAuthTokenExchange))
		return
	}
	if a.Header != "" && !isToken(a.Header) {
		v.add(p+".header", "%q is not a valid header name", a.Header)
	}
	if a.Type == UpstreamAuthStatic {
		v.secretRef(p+".value", a.Value)
	} else if !a.Value.IsZero() {
		v.add(p+".value", "only for type static")
	}
	only := func(field string, set bool) {
		if set && !oauth {
			v.add(p+"."+field, "only for types client_credentials and token_exchange")
		}
	}
	only("token_url", a.TokenURL != "")
	only("client_id", a.ClientID != "")
	only("client_secret", !a.ClientSecret.IsZero())
	only("scopes", len(a.Scopes) > 0)
	only("audience", a.Audience != "")
	only("resource", a.Resource != "")
	if !oauth {
		return
	}
	v.secureURL(p+".token_url", a.TokenURL)
	if strings.TrimSpace(a.ClientID) == "" {
		v.add(p+".client_id", "required")
	}
	v.secretRef(p+".client_secret", a.ClientSecret)
	v.scopes(p+".scopes", a.Scopes)
	if a.Resource != "" {
		v.resourceURL(p+".resource", a.Resource)
	}
}

// upstreamIdentity checks what the upstreams' credentials need of the
// rest of the configuration: headers (stdio has none) and, for token
// exchange and the identity assertion, a caller identity, which only an
// authenticated gateway has.
func (v *validator) upstreamIdentity(c *Config) {
	for i := range c.Upstreams {
		u := &c.Upstreams[i]
		p := fmt.Sprintf("upstreams[%d]", i)
		if u.Stdio != nil {
			if u.Auth.Type != "" && u.Auth.Type != UpstreamAuthNone {
				v.add(p+".auth.type", "stdio upstreams have no headers to carry a credential; pass it in stdio.env")
			}
			if u.IdentityAssertion.Enabled {
				v.add(p+".identity_assertion.enabled", "stdio upstreams have no headers to carry an assertion")
			}
		}
		if c.Auth == nil {
			if u.Auth.Type == UpstreamAuthTokenExchange {
				v.add(p+".auth.type", "token_exchange needs the caller's token: configure auth")
			}
			if u.IdentityAssertion.Enabled {
				v.add(p+".identity_assertion.enabled", "an identity assertion needs an authenticated caller: configure auth")
			}
		}
	}
}

// identityAssertion checks the identity_assertion block of the upstream at
// path p. Zero values mean the defaults.
func (v *validator) identityAssertion(p string, a *IdentityAssertion) {
	if a.Header != "" && !isToken(a.Header) {
		v.add(p+".header", "%q is not a valid header name", a.Header)
	}
	switch {
	case a.TTL < 0:
		v.add(p+".ttl", "must not be negative")
	case a.TTL > MaxIdentityTTL:
		v.add(p+".ttl", "must be at most %s", MaxIdentityTTL)
	}
	if a.Issuer != "" && strings.TrimSpace(a.Issuer) != a.Issuer {
		v.add(p+".issuer", "must not have leading or trailing spaces")
	}
}

// resourceURL checks a resource indicator (RFC 8707 section 2): an
// absolute URI without a fragment, https except on loopback hosts.
func (v *validator) resourceURL(p, raw string) {
	if !v.secureURL(p, raw) {
		return
	}
	u, _ := url.Parse(raw)
	if u.Fragment != "" || strings.Contains(raw, "#") {
		v.add(p, "must not have a fragment")
	}
	if u.RawQuery != "" || u.ForceQuery {
		v.add(p, "must not have a query")
	}
}

// secureURL checks an absolute http(s) URL that must be https unless its
// host is loopback (the MCP authorization specification requires HTTPS for
// authorization server endpoints; loopback serves development). It reports
// whether the URL parsed well enough for further checks.
func (v *validator) secureURL(p, raw string) bool {
	n := len(v.errs)
	v.httpURL(p, raw)
	if len(v.errs) > n {
		return false
	}
	u, _ := url.Parse(raw)
	if u.Scheme != "https" && !isLoopbackHost(u.Hostname()) {
		v.add(p, "must be https (http only for loopback hosts)")
	}
	return true
}

// isLoopbackHost reports whether host is localhost or a loopback address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.IsLoopback()
}

// parsePrefix parses a CIDR or a single address (as a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	addr = addr.Unmap()
	return netip.PrefixFrom(addr, addr.BitLen()), nil
}

// TrustedProxyPrefixes parses TrustedProxies; Validate has reported any
// entry that does not parse, and such entries are skipped.
func (a *Auth) TrustedProxyPrefixes() []netip.Prefix {
	out := make([]netip.Prefix, 0, len(a.TrustedProxies))
	for _, s := range a.TrustedProxies {
		if p, err := parsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// isScopeToken reports whether s is a scope token: 1*( %x21 / %x23-5B /
// %x5D-7E ), RFC 6749 section 3.3.
func isScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
