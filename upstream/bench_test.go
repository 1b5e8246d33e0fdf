package upstream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream"
)

// httpChildEnv makes the test binary serve an mcp-go Streamable HTTP server
// ("session" or "stateless" era) and print its address, so that benchmarks
// can measure the client's allocations without the server's.
const httpChildEnv = "MCPGW_UPSTREAM_TEST_HTTP_CHILD"

func serveHTTPChild(era string) {
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := mcpgoLegacy(mcpgoServer(newFixture()))
	if era == "stateless" {
		h = mcpgoModern(mcpgoServer(newFixture()))
	}
	go func() { _ = http.Serve(ln, h) }()
	fmt.Fprintf(os.Stdout, "ADDR %s\n", ln.Addr()) // the parent reads the address from stdout
	_, _ = io.Copy(io.Discard, os.Stdin)           // until the parent goes away
}

// startHTTPChild runs serveHTTPChild in a child process and returns its URL.
func startHTTPChild(b *testing.B, era string) string {
	b.Helper()
	exe, err := os.Executable()
	require.NoError(b, err)
	// Not b.Context: the cleanup ends the child by closing its stdin.
	cmd := exec.CommandContext(context.WithoutCancel(b.Context()), exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), httpChildEnv+"="+era)
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(b, err)
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "ADDR ")
	require.True(b, ok, line)
	return "http://" + addr + "/mcp"
}

// BenchmarkCallHTTP measures one tools/call through the client. The
// "child" cases serve the upstream from another process, so allocs/op are
// the client's own (net/http client included); the "inprocess" case adds
// the mcp-go server's.
func BenchmarkCallHTTP(b *testing.B) {
	params := json.RawMessage(`{"name":"echo","arguments":{"text":"hello, upstream"}}`)
	run := func(b *testing.B, url string, parallel bool) {
		b.Helper()
		cfg := httpConfig("bench", url)
		if strings.Contains(b.Name(), "/stateless") {
			cfg.ProtocolVersion = "2026-07-28" // auto would keep a session
		}
		c, _ := startClient(b, cfg)
		req := &upstream.Request{Method: "tools/call", Params: params, RequestID: "bench"}
		if _, err := c.Call(b.Context(), req); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		if parallel {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Call(b.Context(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			return
		}
		for b.Loop() {
			if _, err := c.Call(b.Context(), req); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, era := range []string{"session", "stateless"} {
		b.Run("child/"+era, func(b *testing.B) { run(b, startHTTPChild(b, era), false) })
		b.Run("child/"+era+"/parallel", func(b *testing.B) { run(b, startHTTPChild(b, era), true) })
	}
	// The floor: the same stateless tools/call as a bare net/http POST with a
	// tuned transport, what a reverse proxy's client side costs.
	b.Run("child/stateless/bare-net-http", func(b *testing.B) {
		url := startHTTPChild(b, "stateless")
		rt := &http.Transport{MaxIdleConnsPerHost: 64}
		defer rt.CloseIdleConnections()
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello, upstream"},` + rawMeta + `}}`
		b.ReportAllocs()
		for b.Loop() {
			req, _ := http.NewRequestWithContext(b.Context(), http.MethodPost, url, strings.NewReader(body))
			req.Header = http.Header{
				"Content-Type":         {"application/json"},
				"Accept":               {"application/json, text/event-stream"},
				"Mcp-Protocol-Version": {"2026-07-28"},
				"Mcp-Method":           {"tools/call"},
				"Mcp-Name":             {"echo"},
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
	})
	b.Run("inprocess/session", func(b *testing.B) {
		ts := serve(b, mcpgoLegacy(mcpgoServer(newFixture())))
		run(b, ts.url("/mcp"), false)
	})
}
