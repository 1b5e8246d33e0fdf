package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mcpgw/mcpgw/configs"
)

// AssertionType is the typ header of identity assertions (explicit typing,
// RFC 8725 section 3.11), so an upstream can tell them from access tokens.
const AssertionType = "mcpgw-identity+jwt"

// Asserter signs identity assertions: short-lived ES256 JWTs in which the
// gateway tells an upstream who the caller is (iss, aud = the upstream's
// name, sub, client_id, scope, iat, exp, jti). Upstreams verify them with
// the key set of JWKS, which the gateway serves at
// /.well-known/mcpgw/jwks.json.
//
// Keep one Asserter for the life of the process, across configuration
// reloads, so its key (and so the key set upstreams cached) stays the
// same. It is safe for concurrent use.
type Asserter struct {
	now func() time.Time

	mu      sync.RWMutex
	current *assertionKey
	retired []*assertionKey
}

// assertionKey is one signing key and the latest exp it has signed.
type assertionKey struct {
	public  jose.JSONWebKey
	signer  jose.Signer
	lastExp atomic.Int64 // Unix seconds
}

// NewAsserter returns an Asserter with a fresh P-256 key. now nil means
// time.Now.
func NewAsserter(now func() time.Time) (*Asserter, error) {
	if now == nil {
		now = time.Now
	}
	k, err := newAssertionKey()
	if err != nil {
		return nil, err
	}
	return &Asserter{now: now, current: k}, nil
}

func newAssertionKey() (*assertionKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("identity assertion key: %w", err)
	}
	pub := jose.JSONWebKey{Key: priv.Public(), Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("identity assertion key: %w", err)
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType(AssertionType),
	)
	if err != nil {
		return nil, fmt.Errorf("identity assertion signer: %w", err)
	}
	return &assertionKey{public: pub, signer: signer}, nil
}

// Rotate makes a fresh key current. The previous key stays in JWKS until
// the last assertion it signed has expired, so upstreams can verify every
// assertion in flight.
func (a *Asserter) Rotate() error {
	k, err := newAssertionKey()
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.retired = append(a.retired, a.current)
	a.current = k
	return nil
}

// JWKS returns the public key set: the current key and retired keys with
// unexpired assertions.
func (a *Asserter) JWKS() []byte {
	now := a.now().Unix()
	a.mu.Lock()
	kept := a.retired[:0]
	for _, k := range a.retired {
		if k.lastExp.Load() >= now {
			kept = append(kept, k)
		}
	}
	clear(a.retired[len(kept):])
	a.retired = kept
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{a.current.public}}
	for _, k := range kept {
		set.Keys = append(set.Keys, k.public)
	}
	a.mu.Unlock()
	b, err := json.Marshal(set)
	if err != nil {
		// Public EC keys always encode.
		panic(fmt.Sprintf("encoding identity assertion key set: %v", err))
	}
	return b
}

// assertionClaims are the claims of an identity assertion.
type assertionClaims struct {
	Issuer   string `json:"iss"`
	Audience string `json:"aud"`
	Subject  string `json:"sub"`
	// SubjectID names the subject with its issuer (RFC 9493 §3.2.3, the
	// iss_sub format): sub alone is unique only within the issuer that
	// authenticated the caller, which is not the assertion's iss.
	SubjectID *subjectID `json:"sub_id,omitempty"`
	ClientID  string     `json:"client_id,omitempty"`
	Scope     string     `json:"scope,omitempty"`
	IssuedAt  int64      `json:"iat"`
	Expiry    int64      `json:"exp"`
	ID        string     `json:"jti"`
}

// subjectID is an RFC 9493 subject identifier in the iss_sub format.
type subjectID struct {
	Format  string `json:"format"`
	Issuer  string `json:"iss"`
	Subject string `json:"sub"`
}

// Assert signs an assertion of id for the upstream named audience, valid
// for ttl. id must have a subject.
func (a *Asserter) Assert(issuer, audience string, ttl time.Duration, id *Identity) (string, error) {
	if id == nil || id.Subject == "" {
		return "", fmt.Errorf("%w: identity assertion needs a subject", ErrNoIdentity)
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("%w: identity assertion id: %w", ErrCredentials, err)
	}
	now := a.now()
	c := assertionClaims{
		Issuer:   issuer,
		Audience: audience,
		Subject:  id.Subject,
		ClientID: id.ClientID,
		Scope:    strings.Join(id.Scopes, " "),
		IssuedAt: now.Unix(),
		Expiry:   now.Add(ttl).Unix(),
		ID:       base64.RawURLEncoding.EncodeToString(jti),
	}
	if id.Issuer != "" {
		c.SubjectID = &subjectID{Format: "iss_sub", Issuer: id.Issuer, Subject: id.Subject}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("%w: identity assertion: %w", ErrCredentials, err)
	}
	a.mu.RLock()
	k := a.current
	a.mu.RUnlock()
	// Record the expiry before signing, so the key cannot leave the key
	// set while an assertion it signed is valid.
	for {
		last := k.lastExp.Load()
		if c.Expiry <= last || k.lastExp.CompareAndSwap(last, c.Expiry) {
			break
		}
	}
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("%w: signing identity assertion: %w", ErrCredentials, err)
	}
	return jws.CompactSerialize()
}

// Credentials returns the Credentials that send an assertion in the header
// of cfg for the upstream named upstream, issued as cfg.Issuer or, when
// that is empty, defaultIssuer (auth.resource).
//
//nolint:ireturn // an assertion is one kind of Credentials, held beside the credential of the auth block.
func (a *Asserter) Credentials(cfg configs.IdentityAssertion, upstream, defaultIssuer string) (Credentials, error) {
	issuer := cfg.Issuer
	if issuer == "" {
		issuer = defaultIssuer
	}
	header, ttl := cfg.Header, cfg.TTL
	if header == "" {
		header = configs.DefaultIdentityHeader
	}
	if ttl <= 0 {
		ttl = configs.DefaultIdentityTTL
	}
	if issuer == "" || upstream == "" {
		return nil, fmt.Errorf("%w: identity assertion needs an issuer and an upstream name", ErrCredentials)
	}
	return &assertionCredential{a: a, header: header, issuer: issuer, audience: upstream, ttl: ttl}, nil
}

// assertionCredential sends a fresh assertion with every request.
type assertionCredential struct {
	a        *Asserter
	header   string
	issuer   string
	audience string
	ttl      time.Duration
}

var _ Credentials = (*assertionCredential)(nil)

func (c *assertionCredential) Header(_ context.Context, id *Identity) (string, string, error) {
	tok, err := c.a.Assert(c.issuer, c.audience, c.ttl, id)
	if err != nil {
		return "", "", err
	}
	return c.header, tok, nil
}
