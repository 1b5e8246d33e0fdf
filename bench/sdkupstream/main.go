// Command sdkupstream is an MCP server built on one of the two MCP
// libraries the gateway meets most, so that the benchmark can show what a
// call costs a real server behind mcpgw and behind the bare proxy, in
// each protocol era the server speaks. It offers one tool, echo, which
// returns its text argument.
//
//	go run ./bench/sdkupstream -lib mcp-go|go-sdk [-stateless] -listen 127.0.0.1:0
//
// -lib mcp-go is mark3labs/mcp-go's Streamable HTTP server: by default it
// issues session ids (and serves 2026-07-28 stateless requests too); with
// -stateless it issues none. -lib go-sdk is the official go-sdk's: by
// default stateful (2025 era only over HTTP); with -stateless its
// Stateless mode, the only one in which it serves 2026-07-28.
//
// It prints MCP_URL=http://127.0.0.1:PORT/mcp on stdout once listening, and
// serves GET /stats as the fast upstream does ({"conns":N,"requests":M}),
// so the runner reads it the same way, and GET /debug/pprof/profile (a CPU
// profile; it listens on loopback in the benchmark), from which the runner
// shows where a server's cost per call goes when mcpgw costs it more than
// the proxy does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Libraries accepted by -lib.
const (
	libMCPGo = "mcp-go"
	libGoSDK = "go-sdk"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	lib := flag.String("lib", libMCPGo, "the MCP library serving: "+libMCPGo+" or "+libGoSDK)
	stateless := flag.Bool("stateless", false, "serve without sessions")
	flag.Parse()
	log.SetFlags(0)

	h, err := handler(*lib, *stateless)
	if err != nil {
		log.Fatalf("sdkupstream: %v", err) //nolint:forbidigo // a main package; a bad flag ends it.
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", *listen)
	if err != nil {
		log.Fatalf("sdkupstream: %v", err) //nolint:forbidigo // a main package; it cannot listen.
	}
	var conns, requests atomic.Int64
	mux := http.NewServeMux()
	mux.Handle("/mcp", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"conns":` + strconv.FormatInt(conns.Load(), 10) + `,"requests":` + strconv.FormatInt(requests.Load(), 10) + `}`))
	})
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}

	fmt.Printf("MCP_URL=http://%s/mcp\n", ln.Addr()) //nolint:forbidigo // the bench runner reads this line from stdout.

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("sdkupstream: %v", err) //nolint:forbidigo,gocritic // a main package; it cannot serve, and stop only undoes signal.Notify.
	}
}

// handler returns the MCP endpoint of lib.
func handler(lib string, stateless bool) (http.Handler, error) {
	switch lib {
	case libMCPGo:
		srv := mcpserver.NewMCPServer("bench-mcp-go", "1.0.0", mcpserver.WithToolCapabilities(false))
		srv.AddTool(mcp.NewTool("echo", mcp.WithDescription("Returns its text argument."), mcp.WithString("text", mcp.Required())),
			func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				text, err := req.RequireString("text")
				if err != nil {
					return mcp.NewToolResultError(err.Error()), nil
				}
				return mcp.NewToolResultText(text), nil
			})
		// Without an idle TTL, sessions that are never deleted stay
		// (PITFALLS.md); the load generator opens one per worker and run.
		opts := []mcpserver.StreamableHTTPOption{mcpserver.WithSessionIdleTTL(time.Minute)}
		if stateless {
			opts = append(opts, mcpserver.WithStateLess(true))
		}
		return mcpserver.NewStreamableHTTPServer(srv, opts...), nil
	case libGoSDK:
		srv := sdk.NewServer(&sdk.Implementation{Name: "bench-go-sdk", Version: "1.0.0"}, nil)
		type echoArgs struct {
			Text string `json:"text"`
		}
		sdk.AddTool(srv, &sdk.Tool{Name: "echo", Description: "Returns its text argument."},
			func(_ context.Context, _ *sdk.CallToolRequest, in echoArgs) (*sdk.CallToolResult, any, error) {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.Text}}}, nil, nil
			})
		opts := &sdk.StreamableHTTPOptions{Stateless: stateless, SessionTimeout: time.Minute}
		return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, opts), nil
	default:
		return nil, fmt.Errorf("-lib must be %s or %s, not %q", libMCPGo, libGoSDK, lib)
	}
}
