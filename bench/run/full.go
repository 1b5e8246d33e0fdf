package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// The "everything on" target: mcpgw with bearer authentication (one token,
// verified once and then served from the token cache), per-tool
// authorization (the echo tool needs a scope the token carries), a local
// per-principal rate limit too high to ever refuse, and the audit stream
// written to a file.
const (
	// fullResource is auth.resource: tokens name it in aud. The gateway's
	// port is not known before it starts, and the resource is only a
	// name the token must carry, so it has none.
	fullResource = "http://127.0.0.1/mcp"
	// fullScope is the scope the upstream's tools require.
	fullScope = "bench:call"
	// authEnv carries the Authorization value to the load generator (not
	// on its command line, where ps would show it).
	authEnv = "BENCH_AUTHORIZATION"
)

// issuer is an in-process OpenID provider that really signs (discovery and
// JWKS on 127.0.0.1), and the one token the load generator sends.
type issuer struct {
	url   string
	token string
	srv   *http.Server
}

// startIssuer serves a development OpenID provider on a loopback port and
// mints a token for the benchmark's principal. The gateway fetches its
// discovery document and key set once; after that the provider is idle.
func startIssuer() (*issuer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + l.Addr().String()
	p, err := authntest.NewProvider(authntest.ProviderConfig{URL: url, Audience: fullResource, TokenTTL: 6 * time.Hour})
	if err != nil {
		l.Close()
		return nil, err
	}
	tok, err := p.Mint(map[string]any{"sub": "bench", "client_id": "mcpgw-bench", "scope": "mcp:tools " + fullScope})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("minting the benchmark token: %w", err)
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &issuer{url: url, token: tok, srv: srv}, nil
}

func (i *issuer) close() {
	if i != nil {
		_ = i.srv.Close()
	}
}

// fullGatewayConfig is mcpgw with everything on the tools/call path.
func fullGatewayConfig(upstreamURL, issuerURL, auditPath string) string {
	return fmt.Sprintf(`# Written by bench/run: the "everything on" target.
server: {listen: 127.0.0.1:0}
auth:
  resource: %q
  issuers:
    - issuer: %q
  required_scopes: [mcp:tools]
upstreams:
  - name: %s
    http: {url: %q, max_idle_conns: 256}
    scopes:
      default: [%s]
    # BREAKER: the circuit breaker's settings for this upstream go here once
    # its configuration has landed (see bench/README.md, "everything on").
policy:
  rate_limits:
    # High enough never to refuse: the cost of the check is measured, not
    # its refusals.
    per_principal: {rate: 1000000000, burst: 1000000000}
    backend: local
audit:
  sinks:
    - {type: file, path: %q}
`, fullResource, issuerURL, upstreamName, upstreamURL, fullScope, auditPath)
}

// startFullGateway starts the issuer and the "everything on" mcpgw.
func (b *bencher) startFullGateway(ctx context.Context) (*proc, string, error) {
	if b.issuer == nil {
		is, err := startIssuer()
		if err != nil {
			return nil, "", fmt.Errorf("starting the token issuer: %w", err)
		}
		b.issuer = is
	}
	cfg := fullGatewayConfig(b.upURL, b.issuer.url, filepath.Join(b.dir, targetFull+"-audit.jsonl"))
	return b.startGateway(ctx, targetFull, cfg)
}

// auditLines counts the records in the full target's audit file.
func (b *bencher) auditLines() (int, error) {
	data, err := os.ReadFile(filepath.Join(b.dir, targetFull+"-audit.jsonl"))
	if err != nil {
		return 0, err
	}
	return bytes.Count(data, []byte{'\n'}), nil
}
