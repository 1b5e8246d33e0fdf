package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
)

// BenchmarkCallPath measures one tools/call echo (200-byte text) over
// loopback TCP, with everything in this process: the load generator's
// client, mcpgw (a real gateway.Gateway on a real listener) and this
// package's fast upstream.
//
//	direct/2025       client → upstream
//	mcpgw/2025        client → mcpgw (routing only) → upstream
//	mcpgw/2026        the same, 2026-07-28 stateless
//	mcpgw-full/2025   client → mcpgw with bearer auth (cached token),
//	                  per-tool scopes, a local rate limit and audit to a
//	                  file → upstream
//
// B/op and allocs/op count every goroutine of the process, so the
// gateway's own share of a proxied call is mcpgw minus direct (the client
// and the upstream do the same work in both); make bench reports that
// difference. For CPU profiles, every goroutine carries a pprof label
// role=client, role=gateway or role=upstream (goroutines inherit labels,
// so the connection goroutines of each server carry its role):
//
//	go test -run '^$' -bench 'CallPath/mcpgw/2025' -cpuprofile cpu.out ./bench/upstream
//	go tool pprof -tagfocus role=gateway -top cpu.out
func BenchmarkCallPath(b *testing.B) {
	upURL := serveBenchUpstream(b)
	b.Run("direct/2025", func(b *testing.B) { runCallPath(b, upURL, loadgen.Era2025, "echo", "") })
	b.Run("mcpgw/2025", func(b *testing.B) {
		url := serveBenchGateway(b, routingConfig(b, upURL))
		runCallPath(b, url, loadgen.Era2025, "bench__echo", "")
	})
	b.Run("mcpgw/2026", func(b *testing.B) {
		url := serveBenchGateway(b, routingConfig(b, upURL))
		runCallPath(b, url, loadgen.Era2026, "bench__echo", "")
	})
	b.Run("mcpgw-full/2025", func(b *testing.B) {
		yaml, authz := fullConfig(b, upURL)
		url := serveBenchGateway(b, yaml, withScope("bench:call"))
		runCallPath(b, url, loadgen.Era2025, "bench__echo", authz)
	})
}

// fullConfig is mcpgw with everything on the call path: bearer auth
// (cached token), per-tool scopes (with withScope), a local rate limit,
// the default breaker and bulkhead, and audit to a file. It returns the
// YAML and the Authorization value of a token that passes.
func fullConfig(tb testing.TB, upURL string) (yaml, authz string) {
	tb.Helper()
	const resource = "http://127.0.0.1/mcp"
	iss := authntest.NewIssuer(tb, authntest.WithAudience(resource))
	tok := iss.Mint(map[string]any{"sub": "bench", "client_id": "mcpgw-bench", "scope": "mcp:tools bench:call"})
	return routingConfig(tb, upURL) + fmt.Sprintf(`
auth:
  resource: %q
  issuers:
    - issuer: %q
  required_scopes: [mcp:tools]
policy:
  rate_limits:
    per_principal: {rate: 1000000000, burst: 1000000000}
    backend: local
`, resource, iss.URL()) + "\n", "Bearer " + tok
}

// labelled runs f with the pprof label role=role; goroutines f starts
// inherit it.
func labelled(role string, f func(ctx context.Context)) {
	pprof.Do(context.Background(), pprof.Labels("role", role), f)
}

// serveBenchUpstream serves the fast upstream on a loopback port.
func serveBenchUpstream(tb testing.TB) string {
	tb.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(tb.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{Handler: newServer(0, 500), ReadHeaderTimeout: 10 * time.Second}
	labelled("upstream", func(context.Context) { go func() { _ = srv.Serve(l) }() })
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + l.Addr().String() + "/mcp"
}

// routingConfig is mcpgw with routing only (the audit stream, which cannot
// be turned off, goes to a file).
func routingConfig(tb testing.TB, upURL string) string {
	tb.Helper()
	return fmt.Sprintf(`
server: {listen: 127.0.0.1:0}
upstreams:
  - name: bench
    http: {url: %q, max_idle_conns: 256}
audit:
  sinks: [{type: file, path: %q}]
`, upURL, filepath.Join(tb.TempDir(), "audit.jsonl"))
}

// withScope makes the bench upstream's tools require scope.
func withScope(scope string) func(*configs.Config) {
	return func(c *configs.Config) {
		c.Upstreams[0].Scopes = configs.ToolScopes{Default: []string{scope}}
	}
}

// serveBenchGateway serves mcpgw with the YAML configuration on a loopback
// port and returns its MCP URL once it is ready.
func serveBenchGateway(tb testing.TB, yaml string, edits ...func(*configs.Config)) string {
	tb.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(tb.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveGatewayOn(tb, l, yaml, edits...)
}

// serveGatewayOn is serveBenchGateway on the listener l.
func serveGatewayOn(tb testing.TB, l net.Listener, yaml string, edits ...func(*configs.Config)) string {
	tb.Helper()
	cfg, err := configs.Parse([]byte(yaml))
	if err != nil {
		_ = l.Close()
		tb.Fatalf("config: %v\n%s", err, yaml)
	}
	for _, edit := range edits {
		edit(cfg)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(tb.Context()))
	done := make(chan error, 1)
	var g *gateway.Gateway
	// New starts background goroutines too (the audit writer, the policy
	// watchers): built inside the label, they are counted as the gateway's.
	labelled("gateway", func(context.Context) {
		g, err = gateway.New(cfg, &gateway.Options{Logger: slog.New(slog.DiscardHandler), Version: "bench"})
		if err != nil {
			return
		}
		g.Start()
		go func() { done <- g.Serve(ctx, l) }()
	})
	if err != nil {
		cancel()
		_ = l.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for !g.Ready() {
		if time.Now().After(deadline) {
			tb.Fatal("mcpgw not ready within 30s")
		}
		time.Sleep(5 * time.Millisecond) // Polling an observable condition.
	}
	return "http://" + l.Addr().String() + cfg.Server.MCPPath
}

// runCallPath calls tool once per iteration with the load generator's
// client (its own keep-alive transport), validating every answer.
func runCallPath(b *testing.B, url, era, tool, authz string) {
	b.Helper()
	tr := loadgen.NewTransport(1, nil)
	defer tr.CloseIdleConnections()
	c, err := loadgen.NewClient(url, era, tr)
	if err != nil {
		b.Fatal(err)
	}
	if authz != "" {
		c.SetHeader(http.Header{"Authorization": {authz}})
	}
	args := []byte(`{"text":"` + string(make200()) + `"}`)
	labelled("client", func(ctx context.Context) {
		if err := c.Open(ctx); err != nil {
			b.Fatal(err)
		}
		// The first call dials and warms every cache (token, routes).
		if _, _, err := c.Call(ctx, tool, args); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			if _, _, err := c.Call(ctx, tool, args); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// make200 is a 200-byte text, as bench/load sends by default.
func make200() []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
	t := make([]byte, 200)
	for i := range t {
		t[i] = alphabet[i%len(alphabet)]
	}
	return t
}
