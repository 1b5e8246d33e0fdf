package authn_test

import (
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

// okHandler answers 200 with the principal's subject.
func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := authn.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", http.StatusInternalServerError)
			return
		}
		_, _ = w.Write([]byte(p.Subject))
	})
}

// errorBody decodes the JSON error body.
func errorBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var body map[string]string
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &body))
	return body
}

const metadataURL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

func TestMiddleware(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	good := f.iss.Mint(map[string]any{"sub": "alice", "scope": "mcp:tools"})
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantParams map[string]string
		wantBody   map[string]string
	}{
		{
			name:       "no token",
			req:        request(""),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{"resource_metadata": metadataURL, "scope": "mcp:tools"},
			wantBody:   map[string]string{"error": "unauthorized", "error_description": "bearer token required"},
		},
		{
			name:       "Basic",
			req:        request("Basic YTpi"),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{"resource_metadata": metadataURL, "scope": "mcp:tools"},
			wantBody:   map[string]string{"error": "unauthorized", "error_description": "authorization scheme is not Bearer"},
		},
		{
			name:       "expired",
			req:        bearer(f.iss.Mint(map[string]any{"sub": "alice", "exp": f.clock.Now().Add(-2 * 60 * 1e9).Unix()})),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{
				"error": "invalid_token", "error_description": "token expired",
				"resource_metadata": metadataURL, "scope": "mcp:tools",
			},
			wantBody: map[string]string{"error": "invalid_token", "error_description": "token expired"},
		},
		{
			name:       "wrong audience",
			req:        bearer(f.iss.Mint(map[string]any{"sub": "alice", "aud": "https://other.example.com"})),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{
				"error": "invalid_token", "error_description": "token not issued for this resource",
				"resource_metadata": metadataURL, "scope": "mcp:tools",
			},
			wantBody: map[string]string{"error": "invalid_token", "error_description": "token not issued for this resource"},
		},
		{
			name: "token in the query",
			req: func() *http.Request {
				r := request("")
				r.URL.RawQuery = "access_token=" + good
				return r
			}(),
			wantStatus: http.StatusBadRequest,
			wantParams: map[string]string{
				"error": "invalid_request", "error_description": "access token in the query string",
				"resource_metadata": metadataURL, "scope": "mcp:tools",
			},
			wantBody: map[string]string{"error": "invalid_request", "error_description": "access token in the query string"},
		},
		{
			name:       "valid without the required scope",
			req:        bearer(f.iss.Mint(map[string]any{"sub": "alice", "scope": "other"})),
			wantStatus: http.StatusForbidden,
			wantParams: map[string]string{
				"error": "insufficient_scope", "error_description": "additional scope required",
				"resource_metadata": metadataURL, "scope": "mcp:tools",
			},
			wantBody: map[string]string{"error": "insufficient_scope", "error_description": "additional scope required"},
		},
		{name: "valid", req: bearer(good), wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			f.auth.Middleware(okHandler()).ServeHTTP(rec, tt.req)
			require.Equal(t, tt.wantStatus, rec.Code, rec.Body.String())
			if tt.wantStatus == http.StatusOK {
				assert.Equal(t, "alice", rec.Body.String())
				assert.Empty(t, rec.Header().Get("WWW-Authenticate"))
				return
			}
			scheme, params := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
			assert.Equal(t, "Bearer", scheme)
			assert.Equal(t, tt.wantParams, params)
			assert.Equal(t, tt.wantBody, errorBody(t, rec))
			assert.NotContains(t, rec.Body.String(), good)
		})
	}
}

func TestChallengeHeaderExactly(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	rec := newRecorder()
	f.auth.Middleware(okHandler()).ServeHTTP(rec, request(""))
	assert.Equal(t, `Bearer resource_metadata="`+metadataURL+`", scope="mcp:tools"`, rec.Header().Get("WWW-Authenticate"))

	// Step-up: the principal has mcp:tools and calls a tool that needs
	// orders:write; the challenge names every scope the operation needs.
	p := &authn.Principal{Subject: "alice", Scopes: []string{"mcp:tools", "orders:read"}}
	r := request("")
	r = r.WithContext(authn.WithPrincipal(r.Context(), p))
	rec = newRecorder()
	f.auth.Challenge(rec, r, []string{"orders:read", "orders:write", "mcp:tools"})
	assert.Equal(t, http.StatusForbidden, rec.Code)
	h := rec.Header().Get("WWW-Authenticate")
	assert.Equal(t, `Bearer error="insufficient_scope", error_description="missing scope orders:write", resource_metadata="`+metadataURL+`", scope="mcp:tools orders:read orders:write"`, h)
	scheme, params := parseChallenge(t, h)
	assert.Equal(t, "Bearer", scheme)
	assert.Equal(t, map[string]string{
		"error":             "insufficient_scope",
		"error_description": "missing scope orders:write",
		"resource_metadata": metadataURL,
		"scope":             "mcp:tools orders:read orders:write",
	}, params)
	assert.Equal(t, map[string]string{"error": "insufficient_scope", "error_description": "missing scope orders:write"}, errorBody(t, rec))

	// WriteError maps ErrInsufficientScope to the same 403.
	rec = newRecorder()
	f.auth.WriteError(rec, request(""), authn.ErrInsufficientScope)
	assert.Equal(t, http.StatusForbidden, rec.Code)
}

func TestRequireScope(t *testing.T) {
	t.Parallel()

	f := setup(t, func(c *configs.Auth) { c.RequiredScopes = nil })
	admin := f.auth.RequireScope(configs.DefaultAdminScope)(okHandler())
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantParams map[string]string
	}{
		{
			name:       "no token",
			req:        request(""),
			wantStatus: http.StatusUnauthorized,
			wantParams: map[string]string{"resource_metadata": metadataURL},
		},
		{
			name:       "no admin scope",
			req:        bearer(f.iss.Mint(map[string]any{"sub": "alice", "scope": "mcp:tools"})),
			wantStatus: http.StatusForbidden,
			wantParams: map[string]string{
				"error": "insufficient_scope", "error_description": "missing scope mcpgw:admin",
				"resource_metadata": metadataURL, "scope": "mcpgw:admin",
			},
		},
		{name: "admin", req: bearer(f.iss.Mint(map[string]any{"sub": "alice", "scope": "mcpgw:admin"})), wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			admin.ServeHTTP(rec, tt.req)
			require.Equal(t, tt.wantStatus, rec.Code)
			if tt.wantParams != nil {
				_, params := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
				assert.Equal(t, tt.wantParams, params)
			}
		})
	}

	// Behind Middleware, the principal in the context is reused.
	rec := newRecorder()
	f.auth.Middleware(admin).ServeHTTP(rec, bearer(f.iss.Mint(map[string]any{"sub": "bob", "scope": "mcpgw:admin"})))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "bob", rec.Body.String())
}

// metadataAuth builds an authenticator for metadata tests; its issuers are
// never contacted.
func metadataAuth(t *testing.T, resource string) *authn.Authenticator {
	t.Helper()
	a, err := authn.New(&configs.Auth{
		Resource:        resource,
		Issuers:         []configs.AuthIssuer{{Issuer: "https://login.example.com/realms/mcp"}, {Issuer: "https://dex.example.com"}},
		ScopesSupported: []string{"mcp:tools", "orders:read"},
		TrustedProxies:  []string{"10.0.0.0/8"},
	}, authn.Options{})
	require.NoError(t, err)
	return a
}

func TestMetadataGolden(t *testing.T) {
	t.Parallel()

	a := metadataAuth(t, testResource)
	assert.Equal(t, []string{"/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"}, a.MetadataPaths())
	golden := filepath.Join("testdata", "prm.golden.json")
	var bodies []string
	for _, path := range a.MetadataPaths() {
		rec := newRecorder()
		a.MetadataHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		require.Equal(t, http.StatusOK, rec.Code, path)
		assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		assert.Equal(t, "*", rec.Header().Get("Access-Control-Allow-Origin"))
		bodies = append(bodies, rec.Body.String())
	}
	assert.Equal(t, bodies[0], bodies[1], "both paths serve the same document")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(bodies[0]), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), bodies[1])

	var doc map[string]any
	require.NoError(t, json.Unmarshal([]byte(bodies[0]), &doc))
	assert.NotContains(t, doc["scopes_supported"], "offline_access")
	assert.Equal(t, []any{"header"}, doc["bearer_methods_supported"])
}

func TestMetadataHandler(t *testing.T) {
	t.Parallel()

	a := metadataAuth(t, testResource)
	h := a.MetadataHandler()
	tests := []struct {
		name       string
		method     string
		path       string
		wantStatus int
	}{
		{"HEAD", http.MethodHead, "/.well-known/oauth-protected-resource/mcp", http.StatusOK},
		{"preflight", http.MethodOptions, "/.well-known/oauth-protected-resource/mcp", http.StatusNoContent},
		{"POST", http.MethodPost, "/.well-known/oauth-protected-resource", http.StatusMethodNotAllowed},
		{"other resource", http.MethodGet, "/.well-known/oauth-protected-resource/other", http.StatusNotFound},
		{"prefix", http.MethodGet, "/.well-known/oauth-protected-resource/mcp/x", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			assert.Equal(t, tt.wantStatus, rec.Code)
		})
	}

	// A resource at the root has only the root document.
	root := metadataAuth(t, "https://mcp.example.com/")
	assert.Equal(t, []string{"/.well-known/oauth-protected-resource"}, root.MetadataPaths())
	rec := newRecorder()
	root.MetadataHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
	assert.Equal(t, "https://mcp.example.com/", doc["resource"])
	assert.Equal(t, "https://mcp.example.com/.well-known/oauth-protected-resource", root.ResourceMetadataURL(request("")))
}

func TestForwardedHeaders(t *testing.T) {
	t.Parallel()

	a := metadataAuth(t, testResource)
	tests := []struct {
		name     string
		peer     string
		host     string
		proto    string
		wantBase string
	}{
		{name: "untrusted peer is ignored", peer: "203.0.113.7:4242", host: "evil.example.com", proto: "http", wantBase: "https://mcp.example.com"},
		{name: "trusted proxy is honoured", peer: "10.1.2.3:4242", host: "mcp.internal.example.com:8443", proto: "https", wantBase: "https://mcp.internal.example.com:8443"},
		{name: "trusted proxy, first of a list", peer: "10.1.2.3:4242", host: "a.example.com, b.example.com", proto: "http, https", wantBase: "http://a.example.com"},
		{name: "trusted IPv4-mapped peer", peer: "[::ffff:10.0.0.1]:4242", host: "a.example.com", wantBase: "https://a.example.com"},
		{name: "trusted proxy, host with a path", peer: "10.1.2.3:4242", host: "evil.example.com/x", wantBase: "https://mcp.example.com"},
		{name: "trusted proxy, host with credentials", peer: "10.1.2.3:4242", host: "user@evil.example.com", wantBase: "https://mcp.example.com"},
		{name: "trusted proxy, host with a quote", peer: "10.1.2.3:4242", host: `evil"`, wantBase: "https://mcp.example.com"},
		{name: "trusted proxy, odd scheme", peer: "10.1.2.3:4242", proto: "javascript", wantBase: "https://mcp.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil)
			req.RemoteAddr = tt.peer
			if tt.host != "" {
				req.Header.Set("X-Forwarded-Host", tt.host)
			}
			if tt.proto != "" {
				req.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			rec := newRecorder()
			a.MetadataHandler().ServeHTTP(rec, req)
			require.Equal(t, http.StatusOK, rec.Code)
			var doc map[string]any
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
			assert.Equal(t, tt.wantBase+"/mcp", doc["resource"])

			// The challenge points at the same place.
			challenge := request("")
			challenge.RemoteAddr, challenge.Header = req.RemoteAddr, req.Header.Clone()
			rec = newRecorder()
			a.Middleware(okHandler()).ServeHTTP(rec, challenge)
			_, params := parseChallenge(t, rec.Header().Get("WWW-Authenticate"))
			assert.Equal(t, tt.wantBase+"/.well-known/oauth-protected-resource/mcp", params["resource_metadata"])
		})
	}
}
