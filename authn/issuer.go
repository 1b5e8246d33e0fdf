package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/backoff"
)

const (
	// discoveryTimeout bounds one discovery attempt.
	discoveryTimeout = 10 * time.Second
	// discoveryRetryFloor and discoveryRetryMax bound the wait after a failed
	// discovery before a request may try again; it doubles in between.
	discoveryRetryFloor = time.Second
	discoveryRetryMax   = time.Minute
	// maxMetadataBytes bounds a discovery document or key set.
	maxMetadataBytes = 1 << 20
)

// errJWKSRateLimited is what the key-set transport answers instead of
// fetching within jwks_refresh_min_interval of the previous fetch.
var errJWKSRateLimited = errors.New("key set fetched too recently")

// issuer verifies the tokens of one configured issuer.
//
// Discovery is lazy: nothing is fetched until the first token naming this
// issuer arrives, and a failed discovery is retried by a later request
// after a backoff (1s doubling to 1m). An authorization server that is down
// while the gateway starts therefore costs the requests in that window a
// 503, not the gateway its life. Warm discovers eagerly for those who want
// to know at start.
type issuer struct {
	cfg      configs.AuthIssuer
	claims   issuerClaims
	algs     map[string]bool
	log      logger
	now      func() time.Time
	hc       *http.Client // discovery
	jwksHTTP *http.Client // key-set fetches, rate limited

	verifier atomic.Pointer[oidc.IDTokenVerifier]

	mu      sync.Mutex // serialises discovery
	retryAt time.Time
	retry   backoff.Exponential // wait after a failed discovery
	lastErr error
}

// logger is the part of *slog.Logger the issuer uses.
type logger interface {
	WarnContext(ctx context.Context, msg string, args ...any)
	InfoContext(ctx context.Context, msg string, args ...any)
}

func newIssuer(cfg *configs.AuthIssuer, hc *http.Client, minInterval time.Duration, now func() time.Time, log logger) *issuer {
	is := &issuer{
		cfg:  *cfg,
		algs: make(map[string]bool, len(cfg.Algorithms)),
		log:  log,
		now:  now,
		hc:   limitedClient(hc, nil),
		// No jitter: the wait gates requests, not a timer, and requests
		// arrive spread out already.
		retry: backoff.Exponential{Initial: discoveryRetryFloor, Max: discoveryRetryMax},
	}
	for _, a := range cfg.Algorithms {
		is.algs[a] = true
	}
	is.jwksHTTP = limitedClient(hc, &fetchLimiter{now: now, min: minInterval})
	return is
}

// verifierFor returns the verifier, discovering the issuer first when that
// has not succeeded yet.
func (is *issuer) verifierFor(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	if v := is.verifier.Load(); v != nil {
		return v, nil
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	if v := is.verifier.Load(); v != nil {
		return v, nil
	}
	if now := is.now(); now.Before(is.retryAt) {
		return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, is.cfg.Issuer, is.lastErr)
	}
	// The result serves every request, so one impatient client must not
	// cancel it; the timeout bounds it instead.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
	defer cancel()
	v, err := is.discover(ctx)
	if err != nil {
		wait := is.retry.Next()
		is.retryAt = is.now().Add(wait)
		is.lastErr = err
		is.log.WarnContext(ctx, "issuer discovery failed", "issuer", is.cfg.Issuer, "retry_in", wait, "error", err)
		return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, is.cfg.Issuer, err)
	}
	is.retry.Reset()
	is.lastErr = nil
	is.verifier.Store(v)
	is.log.InfoContext(ctx, "issuer discovered", "issuer", is.cfg.Issuer)
	return v, nil
}

// discover finds the issuer's key set as its discovery setting says and
// returns a verifier over it.
func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	// The verifier checks the signature (with an explicit algorithm
	// allow-list, so none and HS* never verify whatever the key set holds)
	// and iss. Audience and times are checked by the caller, with the
	// configured skew and with errors it can classify: go-oidc's expiry
	// check has no leeway and its audience check is meant for ID tokens.
	vcfg := &oidc.Config{
		SkipClientIDCheck:    true,
		SkipExpiryCheck:      true,
		SupportedSigningAlgs: is.cfg.Algorithms,
	}
	// RemoteKeySet keeps this context for its fetches, which run in the
	// background after the request that caused them may have ended; it
	// carries only the rate-limited client, no request's values.
	keyCtx := oidc.ClientContext(context.Background(), is.jwksHTTP)

	var errs []error
	if is.cfg.Discovery != configs.DiscoveryOAuth {
		p, err := oidc.NewProvider(oidc.ClientContext(ctx, is.hc), is.cfg.Issuer)
		if err == nil {
			return p.VerifierContext(keyCtx, vcfg), nil
		}
		errs = append(errs, fmt.Errorf("openid configuration: %w", err))
		if is.cfg.Discovery == configs.DiscoveryOIDC {
			return nil, errors.Join(errs...)
		}
	}
	jwksURI, err := is.oauthMetadata(ctx)
	if err != nil {
		return nil, errors.Join(append(errs, fmt.Errorf("oauth authorization server metadata: %w", err))...)
	}
	return oidc.NewVerifier(is.cfg.Issuer, oidc.NewRemoteKeySet(keyCtx, jwksURI), vcfg), nil
}

// oauthMetadata fetches RFC 8414 authorization server metadata and returns
// its jwks_uri. The well-known suffix goes between host and path (RFC 8414
// section 3.1): issuer https://as.example.com/tenant1 has its metadata at
// https://as.example.com/.well-known/oauth-authorization-server/tenant1.
func (is *issuer) oauthMetadata(ctx context.Context) (string, error) {
	u, err := url.Parse(is.cfg.Issuer)
	if err != nil {
		return "", err
	}
	u.Path = "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s", resp.Status)
	}
	var md struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		return "", fmt.Errorf("decoding: %w", err)
	}
	// RFC 8414 section 3.3: the issuer in the document must be identical
	// to the one the metadata URL was built from.
	if md.Issuer != is.cfg.Issuer {
		return "", fmt.Errorf("metadata names issuer %q", md.Issuer)
	}
	ju, err := url.Parse(md.JWKSURI)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return "", errors.New("metadata has no usable jwks_uri")
	}
	return md.JWKSURI, nil
}

// limitedClient returns a copy of hc whose responses are cut at
// maxMetadataBytes (go-oidc reads bodies whole) and, with a fetch limiter,
// whose requests are rate limited. A client without a timeout gets the
// discovery timeout, because key-set fetches run without a request's
// deadline.
func limitedClient(hc *http.Client, fl *fetchLimiter) *http.Client {
	inner := *hc
	if inner.Timeout == 0 {
		inner.Timeout = discoveryTimeout
	}
	return &http.Client{
		Transport: &limitTransport{client: &inner, limiter: fl},
		Timeout:   inner.Timeout,
		// The inner client follows redirects; the outer one sees only
		// final answers, so a redirect never counts as a second fetch.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// limitTransport performs a request through a client (so redirects are
// followed within one rate-limited fetch) and bounds the response body.
type limitTransport struct {
	client  *http.Client
	limiter *fetchLimiter
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.limiter != nil && !t.limiter.allow() {
		return nil, errJWKSRateLimited
	}
	out := req.Clone(req.Context())
	out.RequestURI = ""
	resp, err := t.client.Do(out)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxMetadataBytes), c: resp.Body}
	return resp, nil
}

type limitedBody struct {
	r io.Reader
	c io.Closer
}

func (b *limitedBody) Read(p []byte) (int, error) { return b.r.Read(p) }
func (b *limitedBody) Close() error               { return b.c.Close() }

// fetchLimiter lets one fetch through per interval. go-oidc's RemoteKeySet
// re-fetches the key set whenever a token's kid is unknown or its signature
// fails to verify (jwks.go, RemoteKeySet.verify), which is how rotation is
// followed, but also how forged tokens could make the gateway hammer the
// issuer. The first fetch is always allowed.
type fetchLimiter struct {
	now func() time.Time
	min time.Duration

	mu   sync.Mutex
	last time.Time
	used bool
}

func (l *fetchLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.used && now.Sub(l.last) < l.min {
		return false
	}
	l.last, l.used = now, true
	return true
}
