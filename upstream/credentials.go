package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"

	"github.com/mcpgw/mcpgw/configs"
)

// Sentinels of outbound credentials. They live here rather than in
// errors.go, which belongs to the transport code.
var (
	// ErrCredentials: the credential for an upstream could not be obtained
	// (the token endpoint failed or refused). Every error of a Credentials
	// wraps it.
	ErrCredentials = errors.New("upstream credentials")
	// ErrNoIdentity: the credential needs a caller identity (the caller's
	// token for an exchange, a subject for an assertion) and there is none.
	// It wraps ErrCredentials.
	ErrNoIdentity = fmt.Errorf("%w: no caller identity", ErrCredentials)
)

// Token types and grant of RFC 8693.
const (
	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // a grant type URN, not a credential.
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"   //nolint:gosec // a token type URN, not a credential.
)

const (
	// tokenFetchTimeout bounds one request to a token endpoint when the
	// HTTP client has no timeout of its own.
	tokenFetchTimeout = 10 * time.Second
	// defaultTokenLifetime is assumed for a token answered without
	// expires_in.
	defaultTokenLifetime = time.Minute
	// maxRefreshMargin bounds how long before expiry a token is renewed.
	maxRefreshMargin = time.Minute
	// exchangeCacheSize bounds the exchanged tokens kept per upstream.
	exchangeCacheSize = 10000
	// maxTokenResponseBytes bounds a token endpoint's answer.
	maxTokenResponseBytes = 1 << 20
)

// Identity is who a call to an upstream is made for, as the gateway's
// authentication established it. The zero value is an anonymous caller.
type Identity struct {
	// Subject is the caller's sub.
	Subject string
	// Issuer is the issuer of the caller's token; Subject is unique only
	// within it. Identity assertions carry both.
	Issuer string
	// ClientID is the OAuth client the caller used.
	ClientID string
	// Scopes are the caller's granted scopes.
	Scopes []string
	// Token is the caller's own bearer token, used only as the
	// subject_token of an RFC 8693 exchange: it is never sent to an
	// upstream. Its type redacts it in fmt, JSON and slog output.
	Token configs.Secret
	// TokenHash is the hex SHA-256 of Token; exchanged tokens are cached
	// under it. Computed from Token when empty.
	TokenHash string
}

// Credentials produce the header that authenticates the gateway to one
// upstream, never the caller's own token (MCP security best practices,
// "Token Passthrough": a server "MUST NOT accept any tokens that were not
// explicitly issued for the MCP server", so forwarding the caller's token
// would be both useless and dangerous).
type Credentials interface {
	// Header returns the header to set on a request for id. An empty name
	// means no header. It may fetch a token and is safe for concurrent use.
	Header(ctx context.Context, id *Identity) (name, value string, err error)
}

var (
	_ Credentials = noCredentials{}
	_ Credentials = (*staticCredential)(nil)
	_ Credentials = (*clientCredentials)(nil)
	_ Credentials = (*tokenExchange)(nil)
)

// NewCredentials returns the Credentials cfg describes: none, a static
// header, a client credentials token the gateway obtains for itself, or
// an RFC 8693 exchange of the caller's token. Tokens are cached until
// shortly before they expire by the clock now and fetched once for all
// concurrent callers. hc (nil: a client with a 10s timeout) reaches the
// token endpoint; now nil means time.Now.
//
//nolint:ireturn // the kind of credential is chosen by cfg.Type: the interface is the point.
func NewCredentials(cfg *configs.UpstreamAuth, hc *http.Client, now func() time.Time) (Credentials, error) {
	if hc == nil {
		hc = &http.Client{Timeout: tokenFetchTimeout}
	}
	if now == nil {
		now = time.Now
	}
	header := cfg.Header
	if header == "" {
		header = configs.DefaultUpstreamAuthHeader
	}
	switch cfg.Type {
	case "", configs.UpstreamAuthNone:
		return noCredentials{}, nil
	case configs.UpstreamAuthStatic:
		v := resolvedSecret(cfg.Value)
		if v == "" {
			return nil, fmt.Errorf("%w: static credential has no value", ErrCredentials)
		}
		return &staticCredential{name: header, value: v}, nil
	case configs.UpstreamAuthClientCredentials, configs.UpstreamAuthTokenExchange:
	default:
		return nil, fmt.Errorf("%w: unknown type %q", ErrCredentials, cfg.Type)
	}

	if cfg.TokenURL == "" || cfg.ClientID == "" {
		return nil, fmt.Errorf("%w: %s needs token_url and client_id", ErrCredentials, cfg.Type)
	}
	secret := resolvedSecret(cfg.ClientSecret)
	if cfg.Type == configs.UpstreamAuthClientCredentials {
		params := url.Values{}
		if cfg.Audience != "" {
			params.Set("audience", cfg.Audience)
		}
		if cfg.Resource != "" {
			params.Set("resource", cfg.Resource)
		}
		return &clientCredentials{fetcher: fetcher{header: header, hc: hc, now: now}, cfg: clientcredentials.Config{
			ClientID:       cfg.ClientID,
			ClientSecret:   secret,
			TokenURL:       cfg.TokenURL,
			Scopes:         cfg.Scopes,
			EndpointParams: params,
		}}, nil
	}
	cache, err := lru.New[string, cachedToken](exchangeCacheSize)
	if err != nil {
		return nil, err
	}
	return &tokenExchange{
		fetcher:      fetcher{header: header, hc: hc, now: now},
		tokenURL:     cfg.TokenURL,
		clientID:     cfg.ClientID,
		clientSecret: secret,
		audience:     cfg.Audience,
		resource:     cfg.Resource,
		scope:        strings.Join(cfg.Scopes, " "),
		cache:        cache,
	}, nil
}

// resolvedSecret returns the resolved value of r, or its inline value when
// it was not loaded through configs.Load.
func resolvedSecret(r configs.SecretRef) string {
	if r.Resolved != "" {
		return r.Resolved.Reveal()
	}
	return r.Value.Reveal()
}

// noCredentials sends nothing.
type noCredentials struct{}

func (noCredentials) Header(context.Context, *Identity) (string, string, error) { return "", "", nil }

// staticCredential sends a configured secret header.
type staticCredential struct {
	name, value string
}

func (s *staticCredential) Header(context.Context, *Identity) (string, string, error) {
	return s.name, s.value, nil
}

// cachedToken is a token and when to stop using it.
type cachedToken struct {
	value     string
	refreshAt time.Time
}

// fetcher holds what token-fetching credentials share.
type fetcher struct {
	header string
	hc     *http.Client
	now    func() time.Time
	group  singleflight.Group
}

// headerValue formats a token for the header: a Bearer credential in
// Authorization, the bare token in any other header.
func (f *fetcher) headerValue(token string) string {
	if strings.EqualFold(f.header, "Authorization") {
		return "Bearer " + token
	}
	return token
}

// expiry returns when a token fetched now with lifetime expiresIn
// (seconds, 0 when unknown) should be renewed: a tenth of its lifetime,
// at most a minute, before it expires.
func (f *fetcher) expiry(expiresIn int64) time.Time {
	life := time.Duration(expiresIn) * time.Second
	if life <= 0 {
		life = defaultTokenLifetime
	}
	return f.now().Add(life - min(life/10, maxRefreshMargin))
}

// once runs fetch for key once for all concurrent callers; a caller whose
// context ends stops waiting, while the fetch goes on for the others under
// its own timeout.
func (f *fetcher) once(ctx context.Context, key string, fetch func(ctx context.Context) (cachedToken, error)) (cachedToken, error) {
	if err := ctx.Err(); err != nil {
		return cachedToken{}, err
	}
	ch := f.group.DoChan(key, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.timeout())
		defer cancel()
		return fetch(fctx)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return cachedToken{}, res.Err
		}
		return res.Val.(cachedToken), nil //nolint:errcheck // fetch returns only cachedToken.
	case <-ctx.Done():
		return cachedToken{}, ctx.Err()
	}
}

func (f *fetcher) timeout() time.Duration {
	if f.hc.Timeout > 0 {
		return f.hc.Timeout
	}
	return tokenFetchTimeout
}

// clientCredentials sends a token the gateway obtains for itself with the
// client credentials grant (RFC 6749 section 4.4), the same for every
// caller.
type clientCredentials struct {
	fetcher
	cfg clientcredentials.Config

	mu  sync.Mutex
	tok cachedToken
}

func (c *clientCredentials) Header(ctx context.Context, _ *Identity) (string, string, error) {
	if t, ok := c.cached(); ok {
		return c.header, c.headerValue(t.value), nil
	}
	t, err := c.once(ctx, "", func(ctx context.Context) (cachedToken, error) {
		// A caller that missed the cache just before the previous fetch
		// stored its token finds it here instead of fetching again.
		if t, ok := c.cached(); ok {
			return t, nil
		}
		tok, err := c.cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, c.hc))
		if err != nil {
			return cachedToken{}, fmt.Errorf("%w: client credentials: %w", ErrCredentials, err)
		}
		if tok.Type() != "Bearer" {
			return cachedToken{}, fmt.Errorf("%w: client credentials: token type %q is not Bearer", ErrCredentials, tok.TokenType)
		}
		t := cachedToken{value: tok.AccessToken, refreshAt: c.expiry(expiresIn(tok))}
		c.mu.Lock()
		c.tok = t
		c.mu.Unlock()
		return t, nil
	})
	if err != nil {
		return "", "", err
	}
	return c.header, c.headerValue(t.value), nil
}

// expiresIn returns the lifetime the token endpoint gave tok, in seconds.
// clientcredentials leaves Token.ExpiresIn unset and turns expires_in into
// an Expiry on the real clock, so the raw field is read instead; Expiry is
// the last resort.
func expiresIn(tok *oauth2.Token) int64 {
	if tok.ExpiresIn > 0 {
		return tok.ExpiresIn
	}
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	case string:
		var n int64
		_, _ = fmt.Sscan(v, &n)
		return n
	}
	if !tok.Expiry.IsZero() {
		return int64(time.Until(tok.Expiry) / time.Second)
	}
	return 0
}

func (c *clientCredentials) cached() (cachedToken, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tok, c.tok.value != "" && c.now().Before(c.tok.refreshAt)
}

// tokenExchange sends a token obtained by exchanging the caller's token
// (RFC 8693) for one issued for the upstream: the upstream learns who the
// caller is from a token meant for it, with an act claim naming the
// gateway, and the caller's token stays with the gateway. Exchanged tokens
// are cached per caller token in a bounded LRU.
type tokenExchange struct {
	fetcher
	tokenURL     string
	clientID     string
	clientSecret string
	audience     string
	resource     string
	scope        string
	cache        *lru.Cache[string, cachedToken]
}

func (e *tokenExchange) Header(ctx context.Context, id *Identity) (string, string, error) {
	if id == nil || id.Token == "" {
		return "", "", fmt.Errorf("%w: token exchange needs the caller's token", ErrNoIdentity)
	}
	key := id.TokenHash
	if key == "" {
		sum := sha256.Sum256([]byte(id.Token.Reveal()))
		key = hex.EncodeToString(sum[:])
	}
	if t, ok := e.cached(key); ok {
		return e.header, e.headerValue(t.value), nil
	}
	subject := id.Token.Reveal()
	t, err := e.once(ctx, key, func(ctx context.Context) (cachedToken, error) {
		if t, ok := e.cached(key); ok {
			return t, nil
		}
		t, err := e.exchange(ctx, subject)
		if err != nil {
			return cachedToken{}, err
		}
		e.cache.Add(key, t)
		return t, nil
	})
	if err != nil {
		return "", "", err
	}
	return e.header, e.headerValue(t.value), nil
}

func (e *tokenExchange) cached(key string) (cachedToken, bool) {
	t, ok := e.cache.Get(key)
	if !ok {
		return cachedToken{}, false
	}
	if !e.now().Before(t.refreshAt) {
		e.cache.Remove(key)
		return cachedToken{}, false
	}
	return t, true
}

// exchange makes the RFC 8693 section 2.1 request: the caller's token as
// subject_token of type access_token, the upstream named by audience and
// resource (RFC 8707), the gateway authenticated with HTTP Basic.
func (e *tokenExchange) exchange(ctx context.Context, subject string) (cachedToken, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
	}
	if e.audience != "" {
		form.Set("audience", e.audience)
	}
	if e.resource != "" {
		form.Set("resource", e.resource)
	}
	if e.scope != "" {
		form.Set("scope", e.scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: token exchange: %w", ErrCredentials, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: the client id and secret are form-encoded
	// before the Basic encoding.
	req.SetBasicAuth(url.QueryEscape(e.clientID), url.QueryEscape(e.clientSecret))
	resp, err := e.hc.Do(req)
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: token exchange: %w", ErrCredentials, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes))
	if err != nil {
		return cachedToken{}, fmt.Errorf("%w: token exchange: reading answer: %w", ErrCredentials, err)
	}
	var answer struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		TokenType       string `json:"token_type"`
		ExpiresIn       int64  `json:"expires_in"`
		Error           string `json:"error"`
		Description     string `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &answer)
	if resp.StatusCode != http.StatusOK {
		if jerr == nil && answer.Error != "" {
			return cachedToken{}, fmt.Errorf("%w: token exchange: %s: %s: %s", ErrCredentials, resp.Status, answer.Error, answer.Description)
		}
		return cachedToken{}, fmt.Errorf("%w: token exchange: %s", ErrCredentials, resp.Status)
	}
	switch {
	case jerr != nil:
		return cachedToken{}, fmt.Errorf("%w: token exchange: decoding answer: %w", ErrCredentials, jerr)
	case answer.AccessToken == "":
		return cachedToken{}, fmt.Errorf("%w: token exchange: answer has no access_token", ErrCredentials)
	case answer.AccessToken == subject:
		// An authorization server that hands the subject token back would
		// make the gateway forward the caller's token after all.
		return cachedToken{}, fmt.Errorf("%w: token exchange: the issued token is the caller's own", ErrCredentials)
	case !strings.EqualFold(answer.TokenType, "Bearer"):
		return cachedToken{}, fmt.Errorf("%w: token exchange: token type %q is not Bearer", ErrCredentials, answer.TokenType)
	case answer.IssuedTokenType != "" && answer.IssuedTokenType != tokenTypeAccessToken:
		return cachedToken{}, fmt.Errorf("%w: token exchange: issued %q, not an access token", ErrCredentials, answer.IssuedTokenType)
	}
	return cachedToken{value: answer.AccessToken, refreshAt: e.expiry(answer.ExpiresIn)}, nil
}
