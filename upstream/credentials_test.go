package upstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// credClock is a settable clock shared by the issuer and the credentials.
type credClock struct {
	mu  sync.Mutex
	now time.Time
}

func newCredClock() *credClock { return &credClock{now: time.Unix(1_800_000_000, 0)} }

func (c *credClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *credClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

const (
	credGatewayResource  = "https://mcp.example.com/mcp"
	credUpstreamResource = "https://orders.example.com/mcp"
	credClientID         = "mcpgw"
	credClientSecret     = "gateway secret/with+odd&chars"
)

// credIssuer starts an issuer that knows the gateway as a client and
// issues 5-minute tokens.
func credIssuer(t *testing.T, c *credClock) *authntest.Issuer {
	t.Helper()
	return authntest.NewIssuer(t,
		authntest.WithClock(c.Now),
		authntest.WithAudience(credGatewayResource),
		authntest.WithTokenTTL(5*time.Minute),
		authntest.WithClient(authntest.Client{ID: credClientID, Secret: credClientSecret}),
	)
}

// verifyIssued checks a token's signature against the issuer's key set and
// returns its claims.
func verifyIssued(t *testing.T, iss *authntest.Issuer, token string) map[string]any {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	require.NoError(t, err)
	set := iss.JWKS()
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	require.Len(t, keys, 1, "token signed with an unknown key")
	payload, err := jws.Verify(keys[0])
	require.NoError(t, err)
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims
}

// bearerToken strips "Bearer " from an Authorization value.
func bearerToken(t *testing.T, value string) string {
	t.Helper()
	tok, ok := strings.CutPrefix(value, "Bearer ")
	require.True(t, ok, "%q is not a Bearer credential", value)
	return tok
}

func TestCredentialsNoneAndStatic(t *testing.T) {
	t.Parallel()

	none, err := upstream.NewCredentials(&configs.UpstreamAuth{}, nil, nil)
	require.NoError(t, err)
	name, value, err := none.Header(t.Context(), nil)
	require.NoError(t, err)
	assert.Empty(t, name)
	assert.Empty(t, value)

	static, err := upstream.NewCredentials(&configs.UpstreamAuth{
		Type: "static", Header: "X-Api-Key", Value: configs.SecretRef{Env: "K", Resolved: "resolved-key"},
	}, nil, nil)
	require.NoError(t, err)
	name, value, err = static.Header(t.Context(), &upstream.Identity{Token: "callers-own-token"})
	require.NoError(t, err)
	assert.Equal(t, "X-Api-Key", name)
	assert.Equal(t, "resolved-key", value)

	inline, err := upstream.NewCredentials(&configs.UpstreamAuth{Type: "static", Value: configs.SecretRef{Value: "Bearer inline"}}, nil, nil)
	require.NoError(t, err)
	name, value, err = inline.Header(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, "Authorization", name)
	assert.Equal(t, "Bearer inline", value)

	for _, bad := range []*configs.UpstreamAuth{
		{Type: "static"},
		{Type: "kerberos"},
		{Type: "client_credentials", ClientID: "x"},
		{Type: "token_exchange", TokenURL: "http://127.0.0.1:1/token"},
	} {
		_, err := upstream.NewCredentials(bad, nil, nil)
		assert.ErrorIs(t, err, upstream.ErrCredentials, "%+v", bad)
	}
}

func TestCredentialsClientCredentials(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	iss := credIssuer(t, c)
	creds, err := upstream.NewCredentials(&configs.UpstreamAuth{
		Type:         "client_credentials",
		TokenURL:     iss.TokenURL(),
		ClientID:     credClientID,
		ClientSecret: configs.SecretRef{Env: "S", Resolved: credClientSecret},
		Scopes:       []string{"orders.read", "orders.write"},
		Resource:     credUpstreamResource,
	}, nil, c.Now)
	require.NoError(t, err)

	// Concurrent first calls share one fetch.
	values := make([]string, 16)
	var wg sync.WaitGroup
	for i := range values {
		wg.Go(func() {
			name, value, err := creds.Header(t.Context(), &upstream.Identity{Subject: fmt.Sprint("user", i), Token: "callers-own-token"})
			assert.NoError(t, err) //nolint:testifylint // runs in a spawned goroutine, where require (FailNow) must not be called
			assert.Equal(t, "Authorization", name)
			values[i] = value
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, iss.Counts().Token)
	for _, v := range values {
		assert.Equal(t, values[0], v, "every caller gets the gateway's one token")
	}
	claims := verifyIssued(t, iss, bearerToken(t, values[0]))
	assert.Equal(t, credClientID, claims["sub"])
	assert.Equal(t, credUpstreamResource, claims["aud"])
	assert.Equal(t, "orders.read orders.write", claims["scope"])

	// Cached until shortly before expiry (a tenth of 5m: 30s), then renewed.
	c.Advance(4*time.Minute + 29*time.Second)
	_, v, err := creds.Header(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, values[0], v)
	assert.EqualValues(t, 1, iss.Counts().Token)
	c.Advance(time.Second)
	_, v, err = creds.Header(t.Context(), nil)
	require.NoError(t, err)
	assert.NotEqual(t, values[0], v)
	assert.EqualValues(t, 2, iss.Counts().Token)
}

func TestCredentialsClientCredentialsRefused(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	iss := credIssuer(t, c)
	creds, err := upstream.NewCredentials(&configs.UpstreamAuth{
		Type: "client_credentials", TokenURL: iss.TokenURL(), ClientID: credClientID,
		ClientSecret: configs.SecretRef{Value: "not-the-secret-4711"},
	}, nil, c.Now)
	require.NoError(t, err)
	_, _, err = creds.Header(t.Context(), nil)
	require.ErrorIs(t, err, upstream.ErrCredentials)
	assert.NotContains(t, err.Error(), "not-the-secret-4711", "the secret is not echoed")
}

// exchangeCreds returns token exchange credentials for the orders
// upstream.
func exchangeCreds(t *testing.T, iss *authntest.Issuer, c *credClock) upstream.Credentials {
	t.Helper()
	creds, err := upstream.NewCredentials(&configs.UpstreamAuth{
		Type:         "token_exchange",
		TokenURL:     iss.TokenURL(),
		ClientID:     credClientID,
		ClientSecret: configs.SecretRef{Value: credClientSecret},
		Audience:     "orders",
		Resource:     credUpstreamResource,
		Scopes:       []string{"orders.read"},
	}, nil, c.Now)
	require.NoError(t, err)
	return creds
}

func TestCredentialsTokenExchange(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	iss := credIssuer(t, c)
	creds := exchangeCreds(t, iss, c)
	alice := iss.Mint(map[string]any{"sub": "alice", "client_id": "claude", "scope": "mcp:tools orders.read"})
	id := &upstream.Identity{Subject: "alice", ClientID: "claude", Token: configs.Secret(alice), TokenHash: "alice-hash"}

	// Concurrent calls for one caller share one exchange.
	values := make([]string, 16)
	var wg sync.WaitGroup
	for i := range values {
		wg.Go(func() {
			_, value, err := creds.Header(t.Context(), id)
			assert.NoError(t, err)
			values[i] = value
		})
	}
	wg.Wait()
	assert.EqualValues(t, 1, iss.Counts().Token)
	for _, v := range values {
		assert.Equal(t, values[0], v)
	}
	got := bearerToken(t, values[0])
	assert.NotEqual(t, alice, got, "the caller's token is never what the upstream gets")
	claims := verifyIssued(t, iss, got)
	assert.Equal(t, "alice", claims["sub"], "the exchanged token speaks for the caller")
	assert.Equal(t, credUpstreamResource, claims["aud"], "and is meant for the upstream")
	assert.Equal(t, map[string]any{"sub": credClientID}, claims["act"], "with the gateway as actor (RFC 8693 section 4.1)")
	assert.Equal(t, "orders.read", claims["scope"])

	// Another caller gets their own token.
	bob := iss.Mint(map[string]any{"sub": "bob"})
	_, v, err := creds.Header(t.Context(), &upstream.Identity{Subject: "bob", Token: configs.Secret(bob)})
	require.NoError(t, err)
	assert.Equal(t, "bob", verifyIssued(t, iss, bearerToken(t, v))["sub"])
	assert.EqualValues(t, 2, iss.Counts().Token)

	// Cached per caller until shortly before expiry, then exchanged again.
	_, v, err = creds.Header(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, values[0], v)
	assert.EqualValues(t, 2, iss.Counts().Token)
	c.Advance(4*time.Minute + 30*time.Second)
	_, v, err = creds.Header(t.Context(), id)
	require.NoError(t, err)
	assert.NotEqual(t, values[0], v)
	assert.EqualValues(t, 3, iss.Counts().Token)
}

func TestCredentialsTokenExchangeFailures(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	iss := credIssuer(t, c)
	creds := exchangeCreds(t, iss, c)

	_, _, err := creds.Header(t.Context(), nil)
	require.ErrorIs(t, err, upstream.ErrNoIdentity)
	_, _, err = creds.Header(t.Context(), &upstream.Identity{Subject: "anonymous"})
	require.ErrorIs(t, err, upstream.ErrNoIdentity)
	assert.Zero(t, iss.Counts().Token)

	// A subject token the authorization server does not accept.
	forged := iss.Mint(map[string]any{"sub": "mallory"}, authntest.WithTamperedSignature())
	_, _, err = creds.Header(t.Context(), &upstream.Identity{Subject: "mallory", Token: configs.Secret(forged)})
	require.ErrorIs(t, err, upstream.ErrCredentials)
	assert.Contains(t, err.Error(), "invalid_grant")
	assert.NotContains(t, err.Error(), forged)

	// A failure is not cached.
	expired := iss.Mint(map[string]any{"sub": "erin", "exp": c.Now().Add(time.Minute).Unix()})
	c.Advance(2 * time.Minute)
	erin := &upstream.Identity{Subject: "erin", Token: configs.Secret(expired)}
	_, _, err = creds.Header(t.Context(), erin)
	require.ErrorIs(t, err, upstream.ErrCredentials)
	n := iss.Counts().Token
	_, _, err = creds.Header(t.Context(), erin)
	require.ErrorIs(t, err, upstream.ErrCredentials)
	assert.Equal(t, n+1, iss.Counts().Token)

	// A token endpoint that is down.
	down := authntest.NewIssuer(t)
	down.Close()
	creds = exchangeCreds(t, down, c)
	_, _, err = creds.Header(t.Context(), &upstream.Identity{Token: "x"})
	require.ErrorIs(t, err, upstream.ErrCredentials)
}

func TestCredentialsCallerGivesUp(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	iss := credIssuer(t, c)
	creds := exchangeCreds(t, iss, c)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, _, err := creds.Header(ctx, &upstream.Identity{Token: configs.Secret(iss.Mint(map[string]any{"sub": "alice"}))})
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, iss.Counts().Token)
}

func TestCredentialsIdentityIsRedacted(t *testing.T) {
	t.Parallel()

	id := upstream.Identity{Subject: "alice", Token: "callers-own-token"}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(format, id), "callers-own-token", format)
		assert.NotContains(t, fmt.Sprintf(format, &id), "callers-own-token", format)
	}
	j, err := json.Marshal(id)
	require.NoError(t, err)
	assert.NotContains(t, string(j), "callers-own-token")
}
