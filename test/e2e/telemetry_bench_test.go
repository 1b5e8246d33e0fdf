package e2e

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/telemetry"
)

// startBenchUpstream builds and runs the benchmark's upstream
// (bench/upstream) in its own process, so that its allocations stay out of
// the measurement, and returns its MCP URL.
func startBenchUpstream(b *testing.B) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "bench-upstream")
	build := goBuild(b.Context(), bin, "github.com/mcpgw/mcpgw/bench/upstream")
	out, err := build.CombinedOutput()
	require.NoError(b, err, "%s", out)
	cmd := exec.CommandContext(b.Context(), bin, "-listen", "127.0.0.1:0")
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err)
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "MCP_URL=")
	require.True(b, ok, line)
	return url
}

// BenchmarkCallPathTelemetry measures one 2026-07-28 tools/call through
// the gateway's handler (no downstream socket; a real upstream over
// loopback) with telemetry off, with metrics only (the default once
// telemetry is built: tracing exporter none), and with metrics and
// sampled tracing exported over OTLP/HTTP.
func BenchmarkCallPathTelemetry(b *testing.B) {
	upURL := startBenchUpstream(b)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)

	variants := []struct {
		name    string
		tel     bool
		tracing string
	}{
		{name: "off"},
		{name: "metrics", tel: true},
		{name: "metrics+tracing", tel: true, tracing: fmt.Sprintf("telemetry:\n  tracing: {exporter: otlp_http, endpoint: %s}\n", sink.URL)},
	}
	for _, v := range variants {
		b.Run(v.name, func(b *testing.B) {
			yaml := fmt.Sprintf("upstreams:\n  - name: bench\n    http: {url: %q}\naudit:\n  sinks: [{type: file, path: %q}]\n%s",
				upURL, filepath.Join(b.TempDir(), "audit.jsonl"), v.tracing)
			cfg, err := configs.Parse([]byte(yaml))
			require.NoError(b, err)
			opts := gateway.Options{Logger: slog.New(slog.DiscardHandler), HealthInterval: time.Hour}
			if v.tel {
				tel, err := telemetry.New(cfg.Telemetry, telemetry.Options{})
				require.NoError(b, err)
				// b.Context is cancelled before cleanups run; shutdown needs a live context.
				b.Cleanup(func() { _ = tel.Shutdown(context.WithoutCancel(b.Context())) })
				opts.Telemetry = tel
			}
			g, err := gateway.New(cfg, &opts)
			require.NoError(b, err)
			g.Start()
			b.Cleanup(g.Close)
			require.Eventually(b, g.Ready, 30*time.Second, 10*time.Millisecond)
			h := g.Handler()
			body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"bench__echo","arguments":{"text":"hello"},` +
				`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
			call := func() {
				req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Mcp-Protocol-Version", "2026-07-28")
				req.Header.Set("Mcp-Method", "tools/call")
				req.Header.Set("Mcp-Name", "bench__echo")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || strings.Contains(rec.Body.String(), `"error"`) {
					b.Fatalf("call failed: %d %s", rec.Code, rec.Body.String())
				}
			}
			for range 100 {
				call() // warm the connection pool and the label caches
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				call()
			}
		})
	}
}
