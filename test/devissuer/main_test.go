package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
)

const audience = "http://127.0.0.1:9190/mcp"

// syncBuffer is a bytes.Buffer safe for a writer and a reader in different
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe runs the serving devissuer until the test ends and returns
// what it printed on stdout, as KEY=value pairs.
func startServe(t *testing.T, args ...string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	pr, pw := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, args, pw, stderr)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
	})

	out := make(map[string]string)
	sc := bufio.NewScanner(pr)
	for len(out) < 2 && sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		out[k] = v
	}
	require.Len(t, out, 2, "stderr: %s", stderr.String())
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	assert.Contains(t, stderr.String(), "DEVELOPMENT ONLY — NOT FOR PRODUCTION")
	return out
}

// verifier trusts the devissuer at issuer.
func verifier(t *testing.T, issuer string) *authn.Authenticator {
	t.Helper()
	a, err := authn.New(&configs.Auth{Resource: audience, Issuers: []configs.AuthIssuer{{Issuer: issuer}}}, authn.Options{})
	require.NoError(t, err)
	return a
}

func TestServeAndMint(t *testing.T) {
	t.Parallel()

	keyfile := filepath.Join(t.TempDir(), "keys.json")
	out := startServe(t, "-listen", "127.0.0.1:0", "-audience", audience, "-keyfile", keyfile)
	issuer := out["ISSUER_URL"]
	require.True(t, strings.HasPrefix(issuer, "http://127.0.0.1:"), issuer)
	a := verifier(t, issuer)

	principal := authenticate(t, a, out["TOKEN"])
	assert.Equal(t, "dev", principal.Subject)
	assert.Equal(t, []string{"mcp:tools"}, principal.Scopes)

	// mint, in what could be another process, reads keys, issuer and
	// audience from the key file.
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"mint", "-sub", "alice", "-scope", "mcp:tools orders:write", "-keyfile", keyfile}, &stdout, &stderr))
	assert.Contains(t, stderr.String(), "NOT FOR PRODUCTION")
	principal = authenticate(t, a, strings.TrimSpace(stdout.String()))
	assert.Equal(t, "alice", principal.Subject)
	assert.Equal(t, []string{"mcp:tools", "orders:write"}, principal.Scopes)
	assert.Equal(t, "mcpgw-dev", principal.ClientID)

	// A restart with the same key file keeps the keys.
	again := startServe(t, "-audience", audience, "-keyfile", keyfile)
	stdout.Reset()
	require.NoError(t, run(t.Context(), []string{"mint", "-sub", "bob", "-keyfile", keyfile}, &stdout, io.Discard))
	principal = authenticate(t, verifier(t, again["ISSUER_URL"]), strings.TrimSpace(stdout.String()))
	assert.Equal(t, "bob", principal.Subject)
}

// authenticate verifies token as the gateway would.
func authenticate(t *testing.T, a *authn.Authenticator, token string) *authn.Principal {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := a.Authenticate(t.Context(), r)
	require.NoError(t, err)
	return p
}

func TestErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no audience", []string{"-listen", "127.0.0.1:0"}, "-audience is required"},
		{"not loopback", []string{"-listen", "0.0.0.0:0", "-audience", audience}, "not a loopback address"},
		{"mint without key file", []string{"mint", "-sub", "alice"}, "-keyfile is required"},
		{"mint without sub", []string{"mint", "-keyfile", "x"}, "-sub is required"},
		{"mint with a missing key file", []string{"mint", "-sub", "a", "-keyfile", filepath.Join(t.TempDir(), "none.json")}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := run(t.Context(), tt.args, io.Discard, io.Discard)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
