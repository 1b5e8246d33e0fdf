// Package authntest runs an in-process OpenID provider that really signs
// tokens, for tests of anything behind authn: discovery (OpenID Connect and
// RFC 8414), a JWKS with rotatable RS256 and ES256 keys, Mint for tokens
// good and bad, and a token endpoint for the client credentials grant and
// RFC 8693 token exchange. It listens on 127.0.0.1 with an OS-assigned
// port.
package authntest

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/authn/internal/idp"
)

// Grant and token type URIs of RFC 8693.
const (
	GrantTokenExchange   = idp.GrantTokenExchange
	TokenTypeAccessToken = idp.TokenTypeAccessToken
)

// Client is a client registered at the token endpoint.
type Client = idp.Client

// Counts are the requests an Issuer has served, by kind.
type Counts = idp.Counts

// MintOption changes how Mint signs a token.
type MintOption = idp.MintOption

// Mint options, mostly for building bad tokens.

// WithAlg signs with RS256 (the default) or ES256; "none" leaves the token
// unsigned; HS256 uses the PEM of the issuer's RSA public key as the MAC
// secret (the key-confusion attack).
func WithAlg(alg string) MintOption { return idp.WithAlg(alg) }

// WithKID sets the kid header.
func WithKID(kid string) MintOption { return idp.WithKID(kid) }

// WithHeader adds a protected header.
func WithHeader(name string, value any) MintOption { return idp.WithHeader(name, value) }

// WithTamperedSignature flips a bit of the signature.
func WithTamperedSignature() MintOption { return idp.WithTamperedSignature() }

// WithTamperedPayload swaps in a payload granting scope admin to subject
// mallory, keeping the signature.
func WithTamperedPayload() MintOption { return idp.WithTamperedPayload() }

// Option configures NewIssuer.
type Option func(*options)

type options struct {
	cfg  idp.Config
	path string
}

// WithAudience sets the default aud of minted and issued tokens.
func WithAudience(aud string) Option { return func(o *options) { o.cfg.Audience = aud } }

// WithClock sets the issuer's clock, for iat and exp.
func WithClock(now func() time.Time) Option { return func(o *options) { o.cfg.Now = now } }

// WithTokenTTL sets the lifetime of tokens. Default 1h.
func WithTokenTTL(d time.Duration) Option { return func(o *options) { o.cfg.TokenTTL = d } }

// WithClient registers a client at the token endpoint.
func WithClient(c Client) Option {
	return func(o *options) { o.cfg.Clients = append(o.cfg.Clients, c) }
}

// WithOAuthMetadataOnly serves RFC 8414 metadata and no OpenID Connect
// discovery document.
func WithOAuthMetadataOnly() Option { return func(o *options) { o.cfg.OAuthMetadataOnly = true } }

// WithJWKSCacheControl sets the Cache-Control header of the key set, such
// as "max-age=60".
func WithJWKSCacheControl(v string) Option {
	return func(o *options) { o.cfg.JWKSCacheControl = v }
}

// WithPath gives the issuer a path, such as /realms/mcp, so RFC 8414 path
// insertion is exercised.
func WithPath(path string) Option { return func(o *options) { o.path = path } }

// Issuer is a running in-process OpenID provider.
type Issuer struct {
	*idp.Issuer
	t   testing.TB
	srv *httptest.Server
}

// NewIssuer starts an issuer on 127.0.0.1 and stops it when the test ends.
func NewIssuer(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	srv := httptest.NewUnstartedServer(nil)
	o.cfg.URL = "http://" + srv.Listener.Addr().String() + o.path
	is, err := idp.New(&o.cfg)
	if err != nil {
		srv.Close()
		tb.Fatalf("authntest: %v", err)
	}
	srv.Config.Handler = is.Handler()
	srv.Start()
	tb.Cleanup(srv.Close)
	return &Issuer{Issuer: is, t: tb, srv: srv}
}

// Mint signs a token with claims over the defaults (iss, aud, iat, exp,
// jti; a nil value removes a claim) and fails the test if it cannot.
func (i *Issuer) Mint(claims map[string]any, opts ...MintOption) string {
	i.t.Helper()
	tok, err := i.Issuer.Mint(claims, opts...)
	if err != nil {
		i.t.Fatalf("authntest: minting: %v", err)
	}
	return tok
}

// Rotate makes fresh keys current, keeping the old ones published, and
// fails the test if it cannot.
func (i *Issuer) Rotate() {
	i.t.Helper()
	if err := i.Issuer.Rotate(); err != nil {
		i.t.Fatalf("authntest: rotating: %v", err)
	}
}

// TokenURL returns the token endpoint.
func (i *Issuer) TokenURL() string { return i.URL() + "/token" }

// Close stops the issuer before the test ends, to test an issuer that is
// down.
func (i *Issuer) Close() { i.srv.Close() }

// Provider is the issuer without a test around it, for a process that
// serves it itself: the development issuer of make demo (test/devissuer).
// Serve its Handler; it signs whatever it is asked to and is never for
// production.
type Provider = idp.Issuer

// ProviderConfig configures a Provider.
type ProviderConfig = idp.Config

// NewProvider returns a Provider for cfg.
func NewProvider(cfg *ProviderConfig) (*Provider, error) { return idp.New(cfg) }

// KeyFile is a Provider's keys on disk, so tokens minted by one process
// verify against the key set another serves.
type KeyFile = idp.KeyFile

// ReadKeyFile reads a key file; a missing file is an error wrapping
// fs.ErrNotExist.
func ReadKeyFile(path string) (*KeyFile, error) { return idp.ReadKeyFile(path) }

// WriteKeyFile writes a key file readable by its owner only.
func WriteKeyFile(path string, kf *KeyFile) error { return idp.WriteKeyFile(path, kf) }
