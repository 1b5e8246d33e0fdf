package authn_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

// otherResource is a resource the provider also issues tokens for, which
// the gateway must refuse.
const otherResource = "https://other.example.com/mcp"

// TestOIDCProvider checks tokens of panva oidc-provider 9.13.3: a client
// credentials token requested with resource = the gateway's resource URI
// (RFC 8707) is a JWT (typ at+jwt, string aud, scope claim) the gateway
// accepts; one requested for another resource is refused for its audience.
func TestOIDCProvider(t *testing.T) {
	t.Parallel()

	const clientID, secret = "mcpgw-e2e", "e2e-secret-0123456789"
	issuer := authntest.StartOIDCProvider(t, &authntest.OIDCProvider{
		ClientID: clientID, Secret: secret,
		Resources: []string{testResource, otherResource},
		Scopes:    []string{"mcp:tools", "orders:read"},
	})
	a, err := authn.New(&configs.Auth{
		Resource:       testResource,
		Issuers:        []configs.AuthIssuer{{Issuer: issuer}},
		RequiredScopes: []string{"mcp:tools"},
	}, authn.Options{})
	require.NoError(t, err)

	token := func(resource string) string {
		cc := clientcredentials.Config{
			ClientID:       clientID,
			ClientSecret:   secret,
			TokenURL:       issuer + "/token",
			Scopes:         []string{"mcp:tools", "orders:read"},
			EndpointParams: url.Values{"resource": {resource}},
		}
		tok, err := cc.Token(t.Context())
		require.NoError(t, err)
		return tok.AccessToken
	}

	p, err := a.Authenticate(t.Context(), bearer(token(testResource)))
	require.NoError(t, err)
	assert.Equal(t, issuer, p.Issuer)
	assert.Equal(t, clientID, p.Subject, "oidc-provider names the client as sub of a client credentials token")
	assert.Equal(t, clientID, p.ClientID)
	assert.Equal(t, []string{"mcp:tools", "orders:read"}, p.Scopes)
	assert.WithinDuration(t, time.Now().Add(5*time.Minute), p.Expiry, time.Hour)

	rec := newRecorder()
	a.Middleware(okHandler()).ServeHTTP(rec, bearer(token(testResource)))
	assert.Equal(t, http.StatusOK, rec.Code)

	other := token(otherResource)
	_, err = a.Authenticate(t.Context(), bearer(other))
	require.ErrorIs(t, err, authn.ErrAudience)
	rec = newRecorder()
	a.Middleware(okHandler()).ServeHTTP(rec, bearer(other))
	assert.Equal(t, http.StatusUnauthorized, rec.Code)
	_, params := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
	assert.Equal(t, "invalid_token", params["error"])
}
