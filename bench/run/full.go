package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
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
	// adminScope is the admin API's scope (auth.admin_scope's default),
	// which the live profile's request to /admin/v1/debug/pprof/ needs.
	adminScope = "mcpgw:admin"
	// issuerKeys is the devissuer's key file in the temp directory, from
	// which `devissuer mint` signs the admin token.
	issuerKeys = "devissuer-keys.json"
)

// issuer is the development OpenID provider of test/devissuer, run as a
// process: it serves discovery and a JWKS on a loopback port and signs the
// one token the load generator sends (RS256). The gateway fetches its
// discovery document and key set once; after that it is idle.
type issuer struct {
	url   string
	token string
	p     *proc
}

// startIssuer builds nothing (devissuer is built with the helpers) and
// starts it, reading ISSUER_URL= and TOKEN= from its output.
func (b *bencher) startIssuer(ctx context.Context) (*issuer, error) {
	argv := []string{
		filepath.Join(b.dir, "devissuer"), "-listen", "127.0.0.1:0", "-audience", fullResource,
		"-sub", "bench", "-client-id", "mcpgw-bench", "-scope", "mcp:tools " + fullScope, "-ttl", "6h",
		"-keyfile", filepath.Join(b.dir, issuerKeys),
	}
	p, token, err := startProc(ctx, "devissuer", b.dir, argv, false, prefixed("TOKEN="))
	if err != nil {
		return nil, err
	}
	// ISSUER_URL= comes first; the log has every line read so far.
	log, err := os.ReadFile(p.logPath)
	if err != nil {
		p.stop()
		return nil, err
	}
	for line := range strings.Lines(string(log)) {
		if url, ok := prefixed("ISSUER_URL=")(line); ok {
			return &issuer{url: url, token: token, p: p}, nil
		}
	}
	p.stop()
	return nil, errors.New("devissuer printed no ISSUER_URL= line")
}

// mintAdminToken signs a second token, for the admin API only, with the
// running issuer's keys. The load generator's token stays as it was: the
// measured calls do not carry a scope they do not need.
func (b *bencher) mintAdminToken(ctx context.Context) (string, error) {
	if b.issuer == nil {
		return "", errors.New("the token issuer is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(b.dir, "devissuer"), "mint", "-keyfile", filepath.Join(b.dir, issuerKeys), //nolint:gosec // the devissuer the runner built into its own directory.
		"-sub", "bench-admin", "-client-id", "mcpgw-bench", "-scope", adminScope, "-ttl", "1h")
	cmd.Env = childEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("devissuer mint: %w: %s", err, tailLines(strings.TrimSpace(stderr.String()), 5))
	}
	tok := strings.TrimSpace(string(out))
	if tok == "" {
		return "", errors.New("devissuer mint printed no token")
	}
	return tok, nil
}

func (i *issuer) close() {
	if i != nil {
		i.p.stop()
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
# pprof for the live profile, behind the admin scope like the rest of
# /admin; the routes cost nothing until asked.
telemetry: {profiling: true}
upstreams:
  - name: %s
    http: {url: %q, max_idle_conns: 256}
    protocol_version: %s
    scopes:
      default: [%s]
    breaker: {failures: 5, window: 30s, open_for: 10s, half_open_probes: 1}
    bulkhead: {max_concurrent: 256, max_queued: 256, queue_timeout: 1s}
policy:
  rate_limits:
    # High enough never to refuse: the cost of the check is measured, not
    # its refusals.
    per_principal: {rate: 1000000000, burst: 1000000000}
    backend: local
audit:
  sinks:
    - {type: file, path: %q}
`, fullResource, issuerURL, upstreamName, upstreamURL, autoVersion, fullScope, auditPath)
}

// startFullGateway starts the issuer and the "everything on" mcpgw.
func (b *bencher) startFullGateway(ctx context.Context) (*proc, string, error) {
	return b.startFullGatewayTo(ctx, targetFull, b.upURL)
}

// startFullGatewayTo starts the issuer, when it is not running, and an
// "everything on" mcpgw named name in front of upstreamURL.
func (b *bencher) startFullGatewayTo(ctx context.Context, name, upstreamURL string) (*proc, string, error) {
	if b.issuer == nil {
		is, err := b.startIssuer(ctx)
		if err != nil {
			return nil, "", fmt.Errorf("starting the token issuer: %w", err)
		}
		b.issuer = is
	}
	return b.startGateway(ctx, name, fullGatewayConfig(upstreamURL, b.issuer.url, b.auditPath(name)))
}

// auditLines counts the records in the full target's audit file.
func (b *bencher) auditLines() (int, error) {
	data, err := os.ReadFile(b.auditPath(targetFull))
	if err != nil {
		return 0, err
	}
	return bytes.Count(data, []byte{'\n'}), nil
}
