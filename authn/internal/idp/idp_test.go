package idp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func newTestIssuer(t *testing.T, cfg *Config) (*Issuer, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	cfg.URL = "http://" + srv.Listener.Addr().String() + cfg.URL
	i, err := New(cfg)
	require.NoError(t, err)
	srv.Config.Handler = i.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return i, srv
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client against the loopback test server, as any IdP client would be
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	if resp.StatusCode == http.StatusOK {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	}
	return resp.StatusCode, body
}

func TestDiscoveryDocuments(t *testing.T) {
	t.Parallel()

	i, srv := newTestIssuer(t, &Config{URL: "/realms/mcp"})
	status, oidc := getJSON(t, srv.URL+"/realms/mcp/.well-known/openid-configuration")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, i.URL(), oidc["issuer"])
	assert.Equal(t, i.URL()+"/jwks", oidc["jwks_uri"])
	status, oauth := getJSON(t, srv.URL+"/.well-known/oauth-authorization-server/realms/mcp")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, oidc, oauth)
	status, jwks := getJSON(t, i.URL()+"/jwks")
	require.Equal(t, http.StatusOK, status)
	assert.Len(t, jwks["keys"], 2)
	assert.Equal(t, Counts{Requests: 3, Discovery: 2, JWKS: 1}, i.Counts())

	only, srv := newTestIssuer(t, &Config{OAuthMetadataOnly: true})
	status, _ = getJSON(t, srv.URL+"/.well-known/openid-configuration")
	assert.Equal(t, http.StatusNotFound, status)
	status, _ = getJSON(t, srv.URL+"/.well-known/oauth-authorization-server")
	assert.Equal(t, http.StatusOK, status)
	assert.EqualValues(t, 1, only.Counts().Discovery)
}

func TestMintOptions(t *testing.T) {
	t.Parallel()

	i, err := New(&Config{URL: "http://127.0.0.1:1", Audience: "aud"})
	require.NoError(t, err)
	header := func(tok string) map[string]any {
		b, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.HS256})
		if err == nil {
			h := b.Signatures[0].Header
			return map[string]any{"alg": h.Algorithm, "kid": h.KeyID}
		}
		return nil
	}
	rs, err := i.Mint(map[string]any{"sub": "a"})
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"alg": "RS256", "kid": i.KeyID("RS256")}, header(rs))
	es, err := i.Mint(map[string]any{"sub": "a"}, WithAlg("ES256"), WithKID("other"))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"alg": "ES256", "kid": "other"}, header(es))
	hs, err := i.Mint(map[string]any{"sub": "a"}, WithAlg("HS256"))
	require.NoError(t, err)
	assert.Equal(t, "HS256", header(hs)["alg"])
	none, err := i.Mint(map[string]any{"sub": "a"}, WithAlg("none"))
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(none, "."), "an unsigned token has an empty signature")

	claims, err := i.verify(rs)
	require.NoError(t, err)
	assert.Equal(t, "aud", claims["aud"])
	for _, bad := range []MintOption{WithTamperedSignature(), WithTamperedPayload()} {
		tok, err := i.Mint(map[string]any{"sub": "a"}, bad)
		require.NoError(t, err)
		_, err = i.verify(tok)
		require.Error(t, err)
	}
	// A tampered payload that equals the signed one would be a genuine
	// token: Mint refuses rather than hand it to a test expecting refusal.
	_, err = i.Mint(map[string]any{"sub": "mallory", "scope": "admin"}, WithTamperedPayload())
	require.Error(t, err)
	noAud, err := i.Mint(map[string]any{"sub": "a", "aud": nil})
	require.NoError(t, err)
	claims, err = i.verify(noAud)
	require.NoError(t, err)
	assert.NotContains(t, claims, "aud")
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()

	now := time.Unix(1_800_000_000, 0)
	i, _ := newTestIssuer(t, &Config{
		Audience: "https://mcp.example.com/mcp",
		Now:      func() time.Time { return now },
		Clients:  []Client{{ID: "gw", Secret: "s&cret", Scopes: []string{"a", "b"}}},
	})
	subject, err := i.Mint(map[string]any{"sub": "alice", "scope": "a"})
	require.NoError(t, err)
	post := func(basic bool, form url.Values) (int, map[string]any) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, i.URL()+"/token", strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth("gw", url.QueryEscape("s&cret"))
		}
		resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client against the loopback test server, as any IdP client would be
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		return resp.StatusCode, body
	}
	tests := []struct {
		name      string
		basic     bool
		form      url.Values
		wantCode  int
		wantError string
		wantSub   string
		wantAud   string
	}{
		{"client credentials, basic", true, url.Values{"grant_type": {"client_credentials"}, "resource": {"https://r"}}, 200, "", "gw", "https://r"},
		{"client credentials, post", false, url.Values{"grant_type": {"client_credentials"}, "client_id": {"gw"}, "client_secret": {"s&cret"}}, 200, "", "gw", "https://mcp.example.com/mcp"},
		{"exchange", true, url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {TokenTypeAccessToken}, "audience": {"orders"}}, 200, "", "alice", "orders"},
		{"wrong secret", false, url.Values{"grant_type": {"client_credentials"}, "client_id": {"gw"}, "client_secret": {"x"}}, 401, "invalid_client", "", ""},
		{"scope not allowed", true, url.Values{"grant_type": {"client_credentials"}, "scope": {"c"}}, 400, "invalid_scope", "", ""},
		{"unknown grant", true, url.Values{"grant_type": {"password"}}, 400, "unsupported_grant_type", "", ""},
		{"bad subject token", true, url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {"x.y.z"}, "subject_token_type": {TokenTypeAccessToken}}, 400, "invalid_grant", "", ""},
		{"bad subject token type", true, url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {subject}, "subject_token_type": {"urn:x"}}, 400, "invalid_request", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := post(tt.basic, tt.form)
			require.Equal(t, tt.wantCode, code, body)
			if tt.wantError != "" {
				assert.Equal(t, tt.wantError, body["error"])
				return
			}
			assert.Equal(t, "Bearer", body["token_type"])
			assert.Equal(t, TokenTypeAccessToken, body["issued_token_type"])
			claims, err := i.verify(body["access_token"].(string))
			require.NoError(t, err)
			assert.Equal(t, tt.wantSub, claims["sub"])
			assert.Equal(t, tt.wantAud, claims["aud"])
			assert.Equal(t, "gw", claims["client_id"])
		})
	}
}

func TestRotateAndKeyFile(t *testing.T) {
	t.Parallel()

	i, err := New(&Config{URL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	old, err := i.Mint(map[string]any{"sub": "a"})
	require.NoError(t, err)
	oldKID := i.KeyID("RS256")
	require.NoError(t, i.Rotate())
	assert.NotEqual(t, oldKID, i.KeyID("RS256"))
	assert.Len(t, i.JWKS().Keys, 4, "retired keys stay published")
	_, err = i.verify(old)
	require.NoError(t, err)

	path := filepath.Join(t.TempDir(), "keys.json")
	require.NoError(t, WriteKeyFile(path, &KeyFile{Issuer: i.URL(), Audience: "aud", Keys: i.Keys()}))
	kf, err := ReadKeyFile(path)
	require.NoError(t, err)
	again, err := New(&Config{URL: kf.Issuer, Keys: kf.Keys})
	require.NoError(t, err)
	assert.Equal(t, i.KeyID("RS256"), again.KeyID("RS256"), "current keys come back current")
	assert.Equal(t, i.KeyID("ES256"), again.KeyID("ES256"))
	_, err = again.verify(old)
	require.NoError(t, err, "and retired ones retired")

	_, err = New(&Config{URL: "http://x/", Keys: nil})
	require.Error(t, err)
	_, err = New(&Config{URL: "http://x", Keys: []jose.JSONWebKey{i.JWKS().Keys[0]}})
	require.Error(t, err, "public keys cannot sign")
}
