package authn_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
)

// providerDir holds server.mjs and the pinned oidc-provider (package.json,
// package-lock.json); node_modules is installed on demand.
var providerDir = filepath.Join("testdata", "oidcprovider")

// otherResource is a resource the provider also issues tokens for, which
// the gateway must refuse.
const otherResource = "https://other.example.com/mcp"

// startOIDCProvider runs panva oidc-provider, a real third-party OpenID
// provider, on 127.0.0.1 and returns its issuer URL. It installs the
// pinned package with npm ci when node_modules is missing; when node or
// the npm registry is unavailable the test fails: this test is the
// gateway's evidence that it accepts a real provider's tokens, and a skip
// would hide its absence.
func startOIDCProvider(t *testing.T, clientID, secret string) string {
	t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(t, err, "node is needed for the oidc-provider end-to-end test")
	if _, err := os.Stat(filepath.Join(providerDir, "node_modules", "oidc-provider", "package.json")); err != nil {
		npm, err := exec.LookPath("npm")
		require.NoError(t, err, "npm is needed to install oidc-provider for the end-to-end test")
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = providerDir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "npm ci in %s failed (is the npm registry reachable?):\n%s", providerDir, out)
	}

	cmd := exec.CommandContext(t.Context(), node, "server.mjs")
	cmd.Dir = providerDir
	cmd.Env = append(os.Environ(),
		"OIDC_CLIENT_ID="+clientID,
		"OIDC_CLIENT_SECRET="+secret,
		"OIDC_RESOURCES="+testResource+" "+otherResource,
		"OIDC_SCOPES=mcp:tools orders:read",
	)
	cmd.Stderr = &testWriter{t: t}
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close() // server.mjs exits when stdin closes.
		_ = cmd.Wait()
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if issuer, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				lines <- issuer
				break
			}
		}
		close(lines)
	}()
	select {
	case issuer, ok := <-lines:
		require.True(t, ok, "oidc-provider exited before listening")
		return issuer
	case <-time.After(time.Minute):
		t.Fatal("oidc-provider did not start within a minute")
		return ""
	}
}

// testWriter sends a child's stderr to the test log.
type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Logf("oidc-provider: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestOIDCProvider checks tokens of panva oidc-provider 9.13.3: a client
// credentials token requested with resource = the gateway's resource URI
// (RFC 8707) is a JWT (typ at+jwt, string aud, scope claim) the gateway
// accepts; one requested for another resource is refused for its audience.
func TestOIDCProvider(t *testing.T) {
	t.Parallel()

	const clientID, secret = "mcpgw-e2e", "e2e-secret-0123456789"
	issuer := startOIDCProvider(t, clientID, secret)
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
