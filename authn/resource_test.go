package authn_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
)

// A virtual endpoint is a protected resource of its own: a token names
// the one resource it is for in aud, and is refused at every other.
func TestEndpointAudience(t *testing.T) {
	f := setup(t, nil)
	support, err := f.auth.Endpoint("/mcp/support", []string{"support"})
	require.NoError(t, err)
	billing, err := f.auth.Endpoint("/mcp/billing", nil)
	require.NoError(t, err)
	assert.Equal(t, "https://mcp.example.com/mcp/support", support.URI())

	token := func(aud any) string {
		return "Bearer " + f.iss.Mint(map[string]any{"sub": "alice", "aud": aud, "scope": "mcp:tools support"})
	}
	tests := []struct {
		name                   string
		aud                    any
		main, atSupport, atBil bool
	}{
		{"for the MCP endpoint", testResource, true, false, false},
		{"for support", "https://mcp.example.com/mcp/support", false, true, false},
		{"for billing", "https://mcp.example.com/mcp/billing", false, false, true},
		{"for support and the MCP endpoint", []any{testResource, "https://mcp.example.com/mcp/support"}, true, true, false},
		{"for another host's support", "https://other.example.com/mcp/support", false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(token(tt.aud))
			_, err := f.auth.Authenticate(t.Context(), r)
			assert.Equal(t, tt.main, err == nil, "MCP endpoint: %v", err)
			_, err = support.Authenticate(t.Context(), r)
			assert.Equal(t, tt.atSupport, err == nil, "support: %v", err)
			_, err = billing.Authenticate(t.Context(), r)
			assert.Equal(t, tt.atBil, err == nil, "billing: %v", err)
			if !tt.main {
				assert.ErrorIs(t, func() error { _, err := f.auth.Authenticate(t.Context(), r); return err }(), authn.ErrAudience)
			}
		})
	}
}

// An endpoint serves its own metadata at the path-suffixed well-known URL,
// and its challenges point there with its own required scopes.
func TestEndpointMetadataAndChallenge(t *testing.T) {
	f := setup(t, nil)
	support, err := f.auth.Endpoint("/mcp/support", []string{"support"})
	require.NoError(t, err)
	assert.Equal(t, []string{"/.well-known/oauth-protected-resource/mcp/support"}, support.MetadataPaths())

	w := httptest.NewRecorder()
	support.MetadataHandler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp/support", nil))
	require.Equal(t, http.StatusOK, w.Code)
	var doc struct {
		Resource string   `json:"resource"`
		Servers  []string `json:"authorization_servers"`
	}
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &doc))
	assert.Equal(t, "https://mcp.example.com/mcp/support", doc.Resource)
	assert.Equal(t, []string{f.iss.URL()}, doc.Servers)

	w = httptest.NewRecorder()
	support.Middleware(http.NotFoundHandler()).ServeHTTP(w, request(""))
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp/support", scope="support"`,
		w.Header().Get("WWW-Authenticate"))

	tok := "Bearer " + f.iss.Mint(map[string]any{"sub": "bob", "aud": support.URI(), "scope": "mcp:tools"})
	w = httptest.NewRecorder()
	support.Middleware(http.NotFoundHandler()).ServeHTTP(w, request(tok))
	assert.Equal(t, http.StatusForbidden, w.Code, "the endpoint's scopes, not auth.required_scopes")
	assert.Contains(t, w.Header().Get("WWW-Authenticate"), `error="insufficient_scope"`)
}
