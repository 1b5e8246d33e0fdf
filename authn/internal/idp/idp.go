// Package idp is a small OpenID provider that really signs tokens, for tests
// (authn/authntest wraps it in an httptest server) and for the development
// issuer of make demo (test/devissuer). It is NOT an authorization server
// for production: it authenticates nobody and signs whatever it is asked to.
//
// It serves OpenID Connect discovery, RFC 8414 authorization server
// metadata, a JWKS with an RS256 and an ES256 key (rotatable, retired keys
// stay published), and a token endpoint for the client credentials grant
// and RFC 8693 token exchange.
package idp

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Grant types and token types of RFC 8693.
const (
	GrantTokenExchange     = "urn:ietf:params:oauth:grant-type:token-exchange" //nolint:gosec // a grant type URN, not a credential.
	GrantClientCredentials = "client_credentials"
	TokenTypeAccessToken   = "urn:ietf:params:oauth:token-type:access_token" //nolint:gosec // a token type URN, not a credential.
	TokenTypeJWT           = "urn:ietf:params:oauth:token-type:jwt"          //nolint:gosec // a token type URN, not a credential.
)

// Client is a registered OAuth client of the issuer.
type Client struct {
	// ID is the client id.
	ID string
	// Secret authenticates the client (HTTP Basic or client_secret_post).
	Secret string
	// Scopes are the scopes the client may request. Empty means any.
	Scopes []string
}

// Config configures an Issuer.
type Config struct {
	// URL is the issuer identifier, such as http://127.0.0.1:5556 or
	// http://127.0.0.1:5556/realms/mcp, without a trailing slash. Required.
	URL string
	// Audience is the aud of minted tokens when the claims name none and of
	// token endpoint answers when the request names no audience or resource.
	Audience string
	// OAuthMetadataOnly serves RFC 8414 metadata but no OpenID Connect
	// discovery document.
	OAuthMetadataOnly bool
	// Now is the issuer's clock. Default time.Now.
	Now func() time.Time
	// TokenTTL is the lifetime of minted and issued tokens. Default 1h.
	TokenTTL time.Duration
	// Clients are the registered clients of the token endpoint.
	Clients []Client
	// JWKSCacheControl is the Cache-Control header of the key set. Empty
	// sends none.
	JWKSCacheControl string
	// Keys are private signing keys to start with (RS256 and ES256, as
	// written by Keys); generated when empty.
	Keys []jose.JSONWebKey
}

// Issuer is the development OpenID provider. Its methods are safe for
// concurrent use.
type Issuer struct {
	url       string
	path      string
	audience  string
	oauthOnly bool
	jwksCC    string
	now       func() time.Time
	ttl       time.Duration
	clients   map[string]Client
	mux       *http.ServeMux

	mu      sync.RWMutex
	current map[jose.SignatureAlgorithm]jose.JSONWebKey
	retired []jose.JSONWebKey

	jwksRequests      atomic.Int64
	discoveryRequests atomic.Int64
	tokenRequests     atomic.Int64
	requests          atomic.Int64
}

// signingAlgorithms are the algorithms of the issuer's keys.
func signingAlgorithms() []jose.SignatureAlgorithm {
	return []jose.SignatureAlgorithm{jose.RS256, jose.ES256}
}

// New returns an issuer for cfg.
func New(cfg *Config) (*Issuer, error) {
	if cfg.URL == "" || strings.HasSuffix(cfg.URL, "/") {
		return nil, errors.New("idp: URL is required, without a trailing slash")
	}
	i := &Issuer{
		url:       cfg.URL,
		audience:  cfg.Audience,
		oauthOnly: cfg.OAuthMetadataOnly,
		jwksCC:    cfg.JWKSCacheControl,
		now:       cfg.Now,
		ttl:       cfg.TokenTTL,
		clients:   make(map[string]Client, len(cfg.Clients)),
		current:   make(map[jose.SignatureAlgorithm]jose.JSONWebKey),
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.ttl <= 0 {
		i.ttl = time.Hour
	}
	for _, c := range cfg.Clients {
		i.clients[c.ID] = c
	}
	if _, rest, ok := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(cfg.URL, "http://"), "https://"), "/"); ok {
		i.path = "/" + rest
	}
	algorithms := signingAlgorithms()
	for j := range cfg.Keys {
		k := &cfg.Keys[j]
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if k.IsPublic() || !slices.Contains(algorithms, alg) {
			return nil, fmt.Errorf("idp: key %q must be a private %v key", k.KeyID, algorithms)
		}
		if _, ok := i.current[alg]; ok {
			i.retired = append(i.retired, *k)
			continue
		}
		i.current[alg] = *k
	}
	for _, alg := range algorithms {
		if _, ok := i.current[alg]; ok {
			continue
		}
		k, err := newKey(alg)
		if err != nil {
			return nil, err
		}
		i.current[alg] = k
	}

	i.mux = http.NewServeMux()
	i.mux.HandleFunc("GET "+i.path+"/.well-known/openid-configuration", i.serveOIDCDiscovery)
	i.mux.HandleFunc("GET /.well-known/oauth-authorization-server"+i.path, i.serveOAuthMetadata)
	i.mux.HandleFunc("GET "+i.path+"/jwks", i.serveJWKS)
	i.mux.HandleFunc("POST "+i.path+"/token", i.serveToken)
	return i, nil
}

// newKey generates a private key for alg, with its RFC 7638 thumbprint as
// key id.
func newKey(alg jose.SignatureAlgorithm) (jose.JSONWebKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return jose.JSONWebKey{}, fmt.Errorf("idp: unsupported algorithm %s", alg)
	}
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("idp: generating %s key: %w", alg, err)
	}
	k := jose.JSONWebKey{Key: priv, Algorithm: string(alg), Use: "sig"}
	pub := k.Public()
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("idp: key thumbprint: %w", err)
	}
	k.KeyID = base64.RawURLEncoding.EncodeToString(tp)[:16]
	return k, nil
}

// URL returns the issuer identifier.
func (i *Issuer) URL() string { return i.url }

// Handler serves discovery, JWKS and the token endpoint.
func (i *Issuer) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i.requests.Add(1)
		i.mux.ServeHTTP(w, r)
	})
}

// Counts are the requests the issuer has served, by kind.
type Counts struct {
	// Requests counts every request, including unknown paths.
	Requests int64
	// Discovery counts discovery and metadata documents.
	Discovery int64
	// JWKS counts key-set fetches.
	JWKS int64
	// Token counts token endpoint requests.
	Token int64
}

// Counts returns the requests served so far.
func (i *Issuer) Counts() Counts {
	return Counts{
		Requests:  i.requests.Load(),
		Discovery: i.discoveryRequests.Load(),
		JWKS:      i.jwksRequests.Load(),
		Token:     i.tokenRequests.Load(),
	}
}

// Rotate makes fresh RS256 and ES256 keys current. The previous keys stay in
// the JWKS, so tokens they signed still verify.
func (i *Issuer) Rotate() error {
	algorithms := signingAlgorithms()
	fresh := make(map[jose.SignatureAlgorithm]jose.JSONWebKey, len(algorithms))
	for _, alg := range algorithms {
		k, err := newKey(alg)
		if err != nil {
			return err
		}
		fresh[alg] = k
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, alg := range algorithms {
		i.retired = append(i.retired, i.current[alg])
	}
	i.current = fresh
	return nil
}

// Keys returns the private keys, current first, for a key file.
func (i *Issuer) Keys() []jose.JSONWebKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	out := make([]jose.JSONWebKey, 0, len(i.current)+len(i.retired))
	for _, alg := range signingAlgorithms() {
		out = append(out, i.current[alg])
	}
	return append(out, i.retired...)
}

// KeyID returns the key id of the current key for alg (RS256 or ES256).
func (i *Issuer) KeyID(alg string) string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current[jose.SignatureAlgorithm(alg)].KeyID
}

// JWKS returns the public key set as served.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	keys := i.Keys()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for j := range keys {
		set.Keys = append(set.Keys, keys[j].Public())
	}
	return set
}

// mintOptions are the knobs of Mint.
type mintOptions struct {
	alg             string
	kid             *string
	headers         map[string]any
	tamperSignature bool
	tamperPayload   bool
}

// MintOption changes how Mint signs a token, mostly to build bad ones.
type MintOption func(*mintOptions)

// WithAlg signs with alg: RS256 (the default) or ES256 with the current
// key; "none" for an unsigned token; HS256 with the PEM of the current RSA
// public key as the MAC secret (the key-confusion attack).
func WithAlg(alg string) MintOption { return func(o *mintOptions) { o.alg = alg } }

// WithKID sets the kid header to kid instead of the signing key's id.
func WithKID(kid string) MintOption { return func(o *mintOptions) { o.kid = &kid } }

// WithHeader adds a protected header.
func WithHeader(name string, value any) MintOption {
	return func(o *mintOptions) {
		if o.headers == nil {
			o.headers = make(map[string]any)
		}
		o.headers[name] = value
	}
}

// WithTamperedSignature flips a bit of the signature (of its decoded
// bytes, so the token always differs from the genuine one).
func WithTamperedSignature() MintOption { return func(o *mintOptions) { o.tamperSignature = true } }

// WithTamperedPayload replaces the payload after signing with one that
// grants the scope "admin" and names the subject "mallory". Mint fails
// when the claims already say so, rather than return a genuine token.
func WithTamperedPayload() MintOption { return func(o *mintOptions) { o.tamperPayload = true } }

// Mint signs a JWT access token with claims over these defaults: iss (the
// issuer), aud (the configured audience, when set), iat (now), exp (now +
// TokenTTL) and a random jti. A claim whose value is nil is removed.
func (i *Issuer) Mint(claims map[string]any, opts ...MintOption) (string, error) {
	o := mintOptions{alg: string(jose.RS256)}
	for _, opt := range opts {
		opt(&o)
	}
	now := i.now()
	c := map[string]any{
		"iss": i.url,
		"iat": now.Unix(),
		"exp": now.Add(i.ttl).Unix(),
		"jti": randomID(),
	}
	if i.audience != "" {
		c["aud"] = i.audience
	}
	maps.Copy(c, claims)
	for k, v := range c {
		if v == nil {
			delete(c, k)
		}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("idp: encoding claims: %w", err)
	}

	var token string
	switch o.alg {
	case "none":
		header := map[string]any{"alg": "none", "typ": "at+jwt"}
		maps.Copy(header, o.headers)
		h, err := json.Marshal(header)
		if err != nil {
			return "", err
		}
		token = b64(h) + "." + b64(payload) + "."
	case "HS256":
		token, err = i.signHMACWithPublicKey(payload, o)
	default:
		token, err = i.sign(jose.SignatureAlgorithm(o.alg), payload, o)
	}
	if err != nil {
		return "", err
	}

	parts := strings.Split(token, ".")
	if o.tamperPayload {
		var forged map[string]any
		if err := json.Unmarshal(payload, &forged); err != nil {
			return "", err
		}
		forged["scope"] = "admin"
		forged["sub"] = "mallory"
		p, err := json.Marshal(forged)
		if err != nil {
			return "", err
		}
		if bytes.Equal(p, payload) {
			// Claims that already grant this would leave a genuine token.
			return "", errors.New("idp: the tampered payload equals the signed one")
		}
		parts[1] = b64(p)
	}
	if o.tamperSignature {
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) == 0 {
			return "", errors.New("idp: no signature to tamper with")
		}
		sig[len(sig)/2] ^= 0x01
		parts[2] = b64(sig)
	}
	return strings.Join(parts, "."), nil
}

// sign signs payload with the current key for alg.
func (i *Issuer) sign(alg jose.SignatureAlgorithm, payload []byte, o mintOptions) (string, error) {
	i.mu.RLock()
	key, ok := i.current[alg]
	i.mu.RUnlock()
	if !ok {
		return "", fmt.Errorf("idp: no key for %s", alg)
	}
	kid := key.KeyID
	if o.kid != nil {
		kid = *o.kid
	}
	so := (&jose.SignerOptions{}).WithType("at+jwt")
	if kid != "" {
		so.WithHeader("kid", kid)
	}
	for k, v := range o.headers {
		so.WithHeader(jose.HeaderKey(k), v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key.Key}, so)
	if err != nil {
		return "", fmt.Errorf("idp: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("idp: signing: %w", err)
	}
	return jws.CompactSerialize()
}

// signHMACWithPublicKey builds an HS256 token whose MAC key is the PEM of
// the current RSA public key: what a verifier that lets the token choose
// the algorithm would accept.
func (i *Issuer) signHMACWithPublicKey(payload []byte, o mintOptions) (string, error) {
	i.mu.RLock()
	key := i.current[jose.RS256]
	i.mu.RUnlock()
	der, err := x509.MarshalPKIXPublicKey(key.Public().Key)
	if err != nil {
		return "", err
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	header := map[string]any{"alg": "HS256", "typ": "at+jwt", "kid": key.KeyID}
	if o.kid != nil {
		header["kid"] = *o.kid
	}
	maps.Copy(header, o.headers)
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(payload)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil)), nil
}

// verify checks a token the issuer signed (for token exchange) and returns
// its claims.
func (i *Issuer) verify(token string) (map[string]any, error) {
	jws, err := jose.ParseSignedCompact(token, signingAlgorithms())
	if err != nil {
		return nil, err
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("want one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys := i.Keys()
	for j := range keys {
		if keys[j].KeyID != kid {
			continue
		}
		payload, err := jws.Verify(keys[j].Public())
		if err != nil {
			return nil, err
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			return nil, err
		}
		if claims["iss"] != i.url {
			return nil, errors.New("issued by someone else")
		}
		exp, _ := claims["exp"].(float64)
		if !i.now().Before(time.Unix(int64(exp), 0)) {
			return nil, errors.New("expired")
		}
		return claims, nil
	}
	return nil, errors.New("unknown key")
}

func (i *Issuer) metadata() map[string]any {
	return map[string]any{
		"issuer":                                i.url,
		"jwks_uri":                              i.url + "/jwks",
		"token_endpoint":                        i.url + "/token",
		"grant_types_supported":                 []string{GrantClientCredentials, GrantTokenExchange},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
	}
}

func (i *Issuer) serveOIDCDiscovery(w http.ResponseWriter, r *http.Request) {
	if i.oauthOnly {
		http.NotFound(w, r)
		return
	}
	i.discoveryRequests.Add(1)
	writeJSON(w, http.StatusOK, i.metadata())
}

func (i *Issuer) serveOAuthMetadata(w http.ResponseWriter, _ *http.Request) {
	i.discoveryRequests.Add(1)
	writeJSON(w, http.StatusOK, i.metadata())
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.jwksRequests.Add(1)
	if i.jwksCC != "" {
		w.Header().Set("Cache-Control", i.jwksCC)
	}
	writeJSON(w, http.StatusOK, i.JWKS())
}

// tokenError is an OAuth error response (RFC 6749 section 5.2).
type tokenError struct {
	status int
	code   string
	desc   string
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	i.tokenRequests.Add(1)
	resp, terr := i.token(r)
	if terr != nil {
		if terr.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		}
		writeJSON(w, terr.status, map[string]string{"error": terr.code, "error_description": terr.desc})
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, resp)
}

func (i *Issuer) token(r *http.Request) (map[string]any, *tokenError) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		return nil, &tokenError{http.StatusBadRequest, "invalid_request", "unreadable form"}
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	} else {
		// RFC 6749 section 2.3.1: the credentials are form-urlencoded
		// before Basic encoding.
		id, secret = unescape(id), unescape(secret)
	}
	client, known := i.clients[id]
	if !known || !hmac.Equal([]byte(client.Secret), []byte(secret)) {
		return nil, &tokenError{http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret"}
	}

	scopes := strings.Fields(r.PostForm.Get("scope"))
	if len(client.Scopes) > 0 {
		for _, s := range scopes {
			if !slices.Contains(client.Scopes, s) {
				return nil, &tokenError{http.StatusBadRequest, "invalid_scope", "scope " + s + " is not allowed"}
			}
		}
	}
	aud := i.audience
	if v := r.PostForm.Get("audience"); v != "" {
		aud = v
	}
	if v := r.PostForm.Get("resource"); v != "" {
		aud = v
	}

	claims := map[string]any{"client_id": client.ID, "aud": aud}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case GrantClientCredentials:
		claims["sub"] = client.ID
		if len(scopes) == 0 {
			scopes = client.Scopes
		}
	case GrantTokenExchange:
		switch r.PostForm.Get("subject_token_type") {
		case TokenTypeAccessToken, TokenTypeJWT:
		default:
			return nil, &tokenError{http.StatusBadRequest, "invalid_request", "unsupported subject_token_type"}
		}
		subject, err := i.verify(r.PostForm.Get("subject_token"))
		if err != nil {
			return nil, &tokenError{http.StatusBadRequest, "invalid_grant", "subject_token: " + err.Error()}
		}
		claims["sub"] = subject["sub"]
		// RFC 8693 section 4.1: the act claim names the party acting on
		// behalf of the subject.
		claims["act"] = map[string]any{"sub": client.ID}
		if len(scopes) == 0 {
			if s, ok := subject["scope"].(string); ok {
				scopes = strings.Fields(s)
			}
		}
	default:
		return nil, &tokenError{http.StatusBadRequest, "unsupported_grant_type", "grant_type " + gt + " is not supported"}
	}
	if len(scopes) > 0 {
		claims["scope"] = strings.Join(scopes, " ")
	}
	if aud == "" {
		claims["aud"] = nil
	}
	tok, err := i.Mint(claims, WithAlg("ES256"))
	if err != nil {
		return nil, &tokenError{http.StatusInternalServerError, "server_error", "signing failed"}
	}
	resp := map[string]any{
		"access_token":      tok,
		"token_type":        "Bearer",
		"expires_in":        int64(i.ttl / time.Second),
		"issued_token_type": TokenTypeAccessToken,
	}
	if len(scopes) > 0 {
		resp["scope"] = strings.Join(scopes, " ")
	}
	return resp, nil
}

// KeyFile is what the development issuer keeps on disk, so tokens minted by
// one process verify against the key set another serves.
type KeyFile struct {
	// Issuer is the issuer URL the serving process listened on.
	Issuer string `json:"issuer,omitempty"`
	// Audience is the default audience of minted tokens.
	Audience string `json:"audience,omitempty"`
	// Keys are private JWKs.
	Keys []jose.JSONWebKey `json:"keys"`
}

// ReadKeyFile reads a key file; a missing file is an error wrapping
// os.ErrNotExist.
func ReadKeyFile(path string) (*KeyFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var kf KeyFile
	if err := json.Unmarshal(data, &kf); err != nil {
		return nil, fmt.Errorf("idp: key file %s: %w", path, err)
	}
	return &kf, nil
}

// WriteKeyFile writes a key file readable by its owner only.
func WriteKeyFile(path string, kf *KeyFile) error {
	data, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return b64(b)
}

// unescape undoes the form encoding of Basic credentials, keeping the raw
// value when it is not valid encoding.
func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
