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
	hc       *http.Client // discovery and key-set fetches
	minFetch time.Duration

	verifier atomic.Pointer[oidc.IDTokenVerifier]
	keys     atomic.Pointer[keySet] // set with verifier

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
		cfg:      *cfg,
		algs:     make(map[string]bool, len(cfg.Algorithms)),
		log:      log,
		now:      now,
		hc:       limitedClient(hc),
		minFetch: minInterval,
		// No jitter: the wait gates requests, not a timer, and requests
		// arrive spread out already.
		retry: backoff.Exponential{Initial: discoveryRetryFloor, Max: discoveryRetryMax},
	}
	for _, a := range cfg.Algorithms {
		is.algs[a] = true
	}
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
	v, ks, err := is.discover(ctx)
	if err != nil {
		wait := is.retry.Next()
		is.retryAt = is.now().Add(wait)
		is.lastErr = err
		is.log.WarnContext(ctx, "issuer discovery failed", "issuer", is.cfg.Issuer, "retry_in", wait, "error", err)
		return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, is.cfg.Issuer, err)
	}
	is.retry.Reset()
	is.lastErr = nil
	is.keys.Store(ks)
	is.verifier.Store(v)
	is.log.InfoContext(ctx, "issuer discovered", "issuer", is.cfg.Issuer)
	return v, nil
}

// discover finds the issuer's key set as its discovery setting says and
// returns a verifier over it.
func (is *issuer) discover(ctx context.Context) (*oidc.IDTokenVerifier, *keySet, error) {
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
	var errs []error
	jwksURI, err := "", error(nil)
	if is.cfg.Discovery != configs.DiscoveryOAuth {
		jwksURI, err = is.oidcJWKSURI(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("openid configuration: %w", err))
			if is.cfg.Discovery == configs.DiscoveryOIDC {
				return nil, nil, errors.Join(errs...)
			}
		}
	}
	if jwksURI == "" {
		if jwksURI, err = is.oauthMetadata(ctx); err != nil {
			return nil, nil, errors.Join(append(errs, fmt.Errorf("oauth authorization server metadata: %w", err))...)
		}
	}
	ks := newKeySet(is.cfg.Issuer, jwksURI, is.hc, is.cfg.Algorithms, is.minFetch, is.log)
	return oidc.NewVerifier(is.cfg.Issuer, ks, vcfg), ks, nil
}

// oidcJWKSURI runs OpenID Connect discovery (go-oidc checks that the
// document names this issuer) and returns its jwks_uri.
func (is *issuer) oidcJWKSURI(ctx context.Context) (string, error) {
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, is.hc), is.cfg.Issuer)
	if err != nil {
		return "", err
	}
	var md struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&md); err != nil {
		return "", err
	}
	return checkJWKSURI(md.JWKSURI)
}

// checkJWKSURI returns u if it is an absolute http(s) URL.
func checkJWKSURI(u string) (string, error) {
	ju, err := url.Parse(u)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return "", errors.New("metadata has no usable jwks_uri")
	}
	return u, nil
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
	return checkJWKSURI(md.JWKSURI)
}

// limitedClient returns a copy of hc whose responses are cut at
// maxMetadataBytes. A client without a timeout gets the discovery timeout,
// because key-set fetches run without a request's deadline.
func limitedClient(hc *http.Client) *http.Client {
	inner := *hc
	if inner.Timeout == 0 {
		inner.Timeout = discoveryTimeout
	}
	return &http.Client{
		Transport: &limitTransport{client: &inner},
		Timeout:   inner.Timeout,
		// The inner client follows redirects; the outer one sees only
		// final answers.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// limitTransport performs a request through a client (so redirects are
// followed within one round trip) and bounds the response body.
type limitTransport struct {
	client *http.Client
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
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
