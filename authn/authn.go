// Package authn makes the gateway an OAuth 2.1 resource server, as the MCP
// authorization specification (2025-11-25, basic/authorization) asks of an
// HTTP MCP server. It is plain HTTP and knows nothing of MCP:
//
//   - bearer extraction from the Authorization header only;
//   - JWT verification with go-oidc against the configured issuers, with
//     lazy discovery (OpenID Connect, falling back to RFC 8414), an explicit
//     algorithm allow-list, exact iss, audience containment (RFC 8707) and
//     exp/nbf/iat with a configured skew;
//   - a bounded cache of verified tokens, so a token seen before costs a
//     hash and a map lookup;
//   - RFC 9728 protected resource metadata and the WWW-Authenticate
//     challenges (401, and 403 insufficient_scope for step-up) that point
//     clients at it.
//
// The result is a Principal in the request context.
package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mcpgw/mcpgw/configs"
)

// Options are the dependencies of an Authenticator. The zero value is
// usable.
type Options struct {
	// Logger receives discovery problems and rejected tokens (the reason,
	// never the token). Nil discards.
	Logger *slog.Logger
	// HTTPClient fetches discovery documents and key sets. Nil means a
	// client with a 10s timeout.
	HTTPClient *http.Client
	// Now is the clock for token times, the cache and the discovery
	// backoff. Nil means time.Now. Key-set fetches are spaced on the real
	// clock, because a token waiting for the next one waits in real time.
	Now func() time.Time
}

// Authenticator verifies bearer tokens and answers for the resource server.
// It is safe for concurrent use. Build a new one when the configuration
// changes; its caches belong to the configuration they were built from.
type Authenticator struct {
	log      *slog.Logger
	now      func() time.Time
	skew     time.Duration
	maxBytes int
	issuers  map[string]*issuer
	cache    *lru.Cache[[sha256.Size]byte, *Principal]
	trusted  []netip.Prefix
	// main is the MCP endpoint's protected resource, auth.resource.
	main *Resource
	// endpoints are the resource URIs of the virtual endpoints (Endpoint),
	// which a token from an issuer with the default audience may name in
	// aud instead of auth.resource; copy on write.
	endpoints   atomic.Pointer[map[string]bool]
	endpointsMu sync.Mutex
	// defaultAudience is auth.resource: the audience of an issuer that
	// sets none, whose tokens name the resource they are for.
	defaultAudience string
}

// issuerClaims is how the claims of one issuer map onto a Principal.
type issuerClaims struct {
	audience  string
	scopes    []string
	roles     []string // path segments; nil for none
	clientIDs []string
}

// New applies defaults to a copy of cfg, validates it (as Config.Validate
// would: an Authenticator may be built from a configuration assembled in
// code) and returns an Authenticator. It makes no network request: issuers
// are discovered when their first token arrives, see Warm.
func New(cfg *configs.Auth, opts Options) (*Authenticator, error) {
	if cfg == nil {
		return nil, errors.New("authn: no auth configuration")
	}
	// Defaults are applied to a copy: the caller's configuration is not
	// touched, and one assembled in code needs only what it sets.
	c := *cfg
	c.Issuers = slices.Clone(cfg.Issuers)
	c.RequiredScopes = slices.Clone(cfg.RequiredScopes)
	c.ScopesSupported = slices.Clone(cfg.ScopesSupported)
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("authn: %w", err)
	}
	cfg = &c
	res, err := parseResource(cfg.Resource)
	if err != nil {
		return nil, fmt.Errorf("authn: auth.resource: %w", err)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: discoveryTimeout}
	}
	cache, err := lru.New[[sha256.Size]byte, *Principal](cfg.CacheSize)
	if err != nil {
		return nil, fmt.Errorf("authn: token cache: %w", err)
	}
	a := &Authenticator{
		log:      log,
		now:      now,
		skew:     cfg.ClockSkew,
		maxBytes: cfg.MaxTokenBytes,
		issuers:  make(map[string]*issuer, len(cfg.Issuers)),
		cache:    cache,
		trusted:  cfg.TrustedProxyPrefixes(),
	}
	a.main = &Resource{a: a, resource: res, required: cfg.RequiredScopes}
	a.defaultAudience = cfg.Resource
	servers := make([]string, 0, len(cfg.Issuers))
	for i := range cfg.Issuers {
		ic := &cfg.Issuers[i]
		is := newIssuer(ic, hc, cfg.JWKSRefreshMinInterval, now, log)
		is.claims = issuerClaims{
			audience:  ic.Audience,
			scopes:    ic.ScopeClaims,
			clientIDs: ic.ClientIDClaims,
		}
		if ic.RolesClaim != "" {
			is.claims.roles = strings.Split(ic.RolesClaim, ".")
		}
		a.issuers[ic.Issuer] = is
		servers = append(servers, ic.Issuer)
	}
	a.main.prm = prmDoc{
		AuthorizationServers:   servers,
		ScopesSupported:        cfg.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           cfg.ResourceName,
	}
	if a.main.prmStatic, err = a.main.prm.encode(cfg.Resource); err != nil {
		return nil, fmt.Errorf("authn: encoding protected resource metadata: %w", err)
	}
	return a, nil
}

// Warm discovers every issuer and fetches its key set now instead of on its
// first token, and returns what failed. A failure is not fatal: the issuer is retried when a
// token needs it.
func (a *Authenticator) Warm(ctx context.Context) error {
	var errs []error
	for _, is := range a.issuers {
		if _, err := is.verifierFor(ctx); err != nil {
			errs = append(errs, err)
		} else if err := is.keys.Load().warm(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%w: %s: key set: %w", ErrIssuerUnavailable, is.cfg.Issuer, err))
		}
	}
	return errors.Join(errs...)
}

// Authenticate returns the Principal of the request's bearer token. Its
// errors wrap one of ErrNoToken, ErrInvalidRequest, ErrInvalidToken and
// ErrIssuerUnavailable, and a more specific sentinel where there is one;
// WriteError turns them into the right answer.
//
// The token must be for the MCP endpoint, auth.resource (or its issuer's
// audience); a token for a virtual endpoint is refused with ErrAudience
// (Resource.Authenticate accepts it there).
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	token, err := bearerToken(r, a.maxBytes)
	if err != nil {
		return nil, err
	}
	p, err := a.verify(ctx, token)
	if err == nil && !p.mainAudience {
		return nil, ErrAudience
	}
	return p, err
}

// verify returns the Principal of a raw token, from the cache when it has
// been verified before and has not expired since.
func (a *Authenticator) verify(ctx context.Context, token string) (*Principal, error) {
	if len(token) > a.maxBytes {
		return nil, ErrTokenTooLarge
	}
	key := tokenKey(token)
	now := a.now()
	if p, ok := a.cache.Get(key); ok {
		if now.Before(p.Expiry) {
			return p, nil
		}
		a.cache.Remove(key)
	}
	p, err := a.verifySlow(ctx, token, key, now)
	if err != nil {
		a.log.DebugContext(ctx, "token rejected", slog.String("reason", reason(err)), slog.Any("error", err))
		return nil, err
	}
	// An entry never outlives its token: a token accepted within the skew
	// after its exp is verified again next time, and fails then.
	if now.Before(p.Expiry) {
		a.cache.Add(key, p)
	}
	return p, nil
}

// tokenKey returns the SHA-256 of token. It hashes the string's bytes in
// place: converting a token of several hundred bytes to a []byte would
// allocate on every cached request, and Sum256 only reads its input.
func tokenKey(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
}

// verifySlow verifies a token that is not in the cache.
func (a *Authenticator) verifySlow(ctx context.Context, token string, key [sha256.Size]byte, now time.Time) (*Principal, error) {
	if err := checkToken68(token); err != nil {
		return nil, err
	}
	pk, err := peek(token)
	if err != nil {
		return nil, err
	}
	// The unverified iss only selects among configured issuers; anything
	// else is refused before any network request is made on its behalf.
	is, ok := a.issuers[pk.iss]
	if !ok {
		return nil, ErrUntrustedIssuer
	}
	if !is.algs[pk.alg] {
		return nil, ErrAlgorithm
	}
	v, err := is.verifierFor(ctx)
	if err != nil {
		return nil, err
	}
	var sig sigOutcome
	idt, err := v.Verify(context.WithValue(ctx, sigOutcomeKey{}, &sig), token)
	if err != nil {
		if sig.err != nil {
			// The key set's own error: ErrSignature, or
			// ErrIssuerUnavailable when the fetch a token with a new key
			// waited for failed or outlasted the request.
			return nil, sig.err
		}
		if strings.Contains(err.Error(), "failed to verify signature") {
			return nil, fmt.Errorf("%w: %w", ErrSignature, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	var cs claimSet
	if err := idt.Claims(&cs); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	if err := a.checkTimes(cs, now); err != nil {
		return nil, err
	}
	// A token names the resource it is for (RFC 8707): the MCP endpoint's,
	// or, from an issuer with the default audience, a virtual endpoint's.
	// Which one it may be used at is checked per request (Authenticate,
	// Resource.Authenticate), so one verified token is cached once.
	mainAud := cs.audience(is.claims.audience)
	perResource := is.claims.audience == a.defaultAudience
	if !mainAud && (!perResource || !a.namesEndpoint(cs)) {
		return nil, ErrAudience
	}
	sub, ok := cs.str("sub")
	if !ok || sub == "" {
		// RFC 9068 section 2.2: sub is required in JWT access tokens.
		return nil, fmt.Errorf("%w: sub", ErrMissingClaim)
	}
	exp, _, _ := cs.date("exp")
	p := &Principal{
		Subject:      sub,
		Issuer:       pk.iss,
		Expiry:       exp,
		TokenHash:    hex.EncodeToString(key[:]),
		mainAudience: mainAud,
		perResource:  perResource,
		Token:        configs.Secret(token),
		Claims:       cs,
	}
	// A cached principal serves every request with its token: the rate
	// limit and session binding read its Key on each call.
	p.key = p.Issuer + "\x00" + p.Subject
	for _, name := range is.claims.clientIDs {
		if id, ok := cs.str(name); ok && id != "" {
			p.ClientID = id
			break
		}
	}
	for _, name := range is.claims.scopes {
		p.Scopes = appendUnique(p.Scopes, cs.strings(cs[name], true))
	}
	if is.claims.roles != nil {
		p.Roles = appendUnique(nil, cs.strings(cs.path(is.claims.roles), false))
	}
	return p, nil
}

// checkTimes checks exp (required), nbf and iat against now with the
// configured skew (RFC 7519 sections 4.1.4 to 4.1.6 allow "some small
// leeway").
func (a *Authenticator) checkTimes(cs claimSet, now time.Time) error {
	exp, present, ok := cs.date("exp")
	if !present || !ok {
		return fmt.Errorf("%w: exp", ErrMissingClaim)
	}
	if !now.Before(exp.Add(a.skew)) {
		return ErrExpired
	}
	if nbf, present, ok := cs.date("nbf"); !ok {
		return fmt.Errorf("%w: nbf", ErrMissingClaim)
	} else if present && now.Add(a.skew).Before(nbf) {
		return ErrNotYetValid
	}
	if iat, present, ok := cs.date("iat"); !ok {
		return fmt.Errorf("%w: iat", ErrMissingClaim)
	} else if present && now.Add(a.skew).Before(iat) {
		return ErrIssuedInFuture
	}
	return nil
}
