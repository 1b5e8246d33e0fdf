package upstream_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// verifyAssertion verifies an assertion against a served key set, as an
// upstream would, and returns its claims.
func verifyAssertion(t *testing.T, jwks []byte, token string) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(jwks, &set))
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256})
	require.NoError(t, err)
	h := jws.Signatures[0].Header
	assert.Equal(t, upstream.AssertionType, h.ExtraHeaders[jose.HeaderType])
	keys := set.Key(h.KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("kid %s is not in the key set", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	require.NoError(t, json.Unmarshal(payload, &claims))
	return claims, nil
}

func TestAsserter(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	a, err := upstream.NewAsserter(c.Now)
	require.NoError(t, err)
	creds, err := a.Credentials(configs.IdentityAssertion{Enabled: true}, "orders", credGatewayResource)
	require.NoError(t, err)

	id := &upstream.Identity{Subject: "alice", ClientID: "claude", Scopes: []string{"mcp:tools", "orders:read"}, Token: "callers-own-token"}
	name, tok, err := creds.Header(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, "X-MCPGW-Identity", name)
	assert.NotContains(t, tok, "callers-own-token")
	claims, err := verifyAssertion(t, a.JWKS(), tok)
	require.NoError(t, err)
	now := c.Now().Unix()
	jti, _ := claims["jti"].(string)
	assert.NotEmpty(t, jti)
	delete(claims, "jti")
	assert.Equal(t, map[string]any{
		"iss":       credGatewayResource,
		"aud":       "orders",
		"sub":       "alice",
		"client_id": "claude",
		"scope":     "mcp:tools orders:read",
		"iat":       float64(now),
		"exp":       float64(now + 60),
	}, claims)

	// Every assertion is fresh.
	_, tok2, err := creds.Header(t.Context(), id)
	require.NoError(t, err)
	claims2, err := verifyAssertion(t, a.JWKS(), tok2)
	require.NoError(t, err)
	assert.NotEqual(t, jti, claims2["jti"])

	// Configured header, issuer and lifetime.
	custom, err := a.Credentials(configs.IdentityAssertion{Header: "X-Caller", Issuer: "mcpgw-prod", TTL: 10 * time.Second}, "payments", credGatewayResource)
	require.NoError(t, err)
	name, tok, err = custom.Header(t.Context(), &upstream.Identity{Subject: "bob"})
	require.NoError(t, err)
	assert.Equal(t, "X-Caller", name)
	claims, err = verifyAssertion(t, a.JWKS(), tok)
	require.NoError(t, err)
	assert.Equal(t, "mcpgw-prod", claims["iss"])
	assert.Equal(t, "payments", claims["aud"])
	assert.InDelta(t, float64(now+10), claims["exp"], 0, "exact: a NumericDate in whole seconds")
	assert.NotContains(t, claims, "client_id")
	assert.NotContains(t, claims, "scope")

	// No subject, no assertion.
	_, _, err = creds.Header(t.Context(), &upstream.Identity{})
	require.ErrorIs(t, err, upstream.ErrNoIdentity)
	_, _, err = creds.Header(t.Context(), nil)
	require.ErrorIs(t, err, upstream.ErrNoIdentity)
	_, err = a.Credentials(configs.IdentityAssertion{}, "orders", "")
	require.ErrorIs(t, err, upstream.ErrCredentials)
}

func TestAsserterRotation(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	a, err := upstream.NewAsserter(c.Now)
	require.NoError(t, err)
	id := &upstream.Identity{Subject: "alice"}
	old, err := a.Assert(credGatewayResource, "orders", time.Minute, id)
	require.NoError(t, err)

	require.NoError(t, a.Rotate())
	fresh, err := a.Assert(credGatewayResource, "orders", time.Minute, id)
	require.NoError(t, err)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(a.JWKS(), &set))
	assert.Len(t, set.Keys, 2, "the previous key stays while its assertions are valid")
	for _, tok := range []string{old, fresh} {
		_, err := verifyAssertion(t, a.JWKS(), tok)
		require.NoError(t, err)
	}

	// Once the old key's last assertion has expired, it leaves the set.
	c.Advance(time.Minute)
	_, err = verifyAssertion(t, a.JWKS(), old)
	require.NoError(t, err, "valid up to and including its exp second")
	c.Advance(time.Second)
	_, err = verifyAssertion(t, a.JWKS(), old)
	require.Error(t, err)
	require.NoError(t, json.Unmarshal(a.JWKS(), &set))
	assert.Len(t, set.Keys, 1)
	_, err = verifyAssertion(t, a.JWKS(), fresh)
	require.NoError(t, err, "the current key always stays (checking exp is the upstream's job)")

	// A key retired before it signed anything leaves at once.
	require.NoError(t, a.Rotate())
	require.NoError(t, a.Rotate())
	require.NoError(t, json.Unmarshal(a.JWKS(), &set))
	assert.Len(t, set.Keys, 1)
}

func TestAsserterConcurrent(t *testing.T) {
	t.Parallel()

	c := newCredClock()
	a, err := upstream.NewAsserter(c.Now)
	require.NoError(t, err)
	var wg sync.WaitGroup
	tokens := make(chan string, 200)
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				if g == 0 && i%5 == 0 {
					assert.NoError(t, a.Rotate()) //nolint:testifylint // runs in a spawned goroutine, where require (FailNow) must not be called
				}
				tok, err := a.Assert(credGatewayResource, "orders", time.Minute, &upstream.Identity{Subject: fmt.Sprint("user", g)})
				if assert.NoError(t, err) {
					tokens <- tok
				}
				_ = a.JWKS()
			}
		})
	}
	wg.Wait()
	close(tokens)
	jwks := a.JWKS()
	for tok := range tokens {
		_, err := verifyAssertion(t, jwks, tok)
		assert.NoError(t, err, "every unexpired assertion verifies after concurrent rotations")
	}
}
