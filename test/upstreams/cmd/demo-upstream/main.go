// Command demo-upstream serves one of the demo upstream MCP servers from
// package upstreams, for `make demo` and for tests that need a separate
// process.
//
// Usage:
//
//	demo-upstream -server customers|orders|payments|bulk [-listen 127.0.0.1:0] [-n 300]
//	demo-upstream -server payments -stdio
//
// Over HTTP it serves at path /mcp and, once listening, prints exactly one
// line to stdout, MCP_URL=http://127.0.0.1:PORT/mcp, so that a script can
// read the port back from -listen 127.0.0.1:0. It then serves until SIGINT or
// SIGTERM. With -stdio (payments only) it speaks MCP over stdin and stdout
// and prints nothing else to stdout. Logs go to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// shutdownTimeout bounds how long a graceful HTTP shutdown waits for
// in-flight requests.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop() // not deferred: os.Exit below would skip it
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "demo-upstream:", err)
		os.Exit(1)
	}
}

// options are the parsed command-line flags.
type options struct {
	server string
	listen string
	n      int
	stdio  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("demo-upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.server, "server", "", "which upstream to serve: customers, orders, payments or bulk")
	fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "HTTP listen address; port 0 picks a free port")
	fs.IntVar(&o.n, "n", 300, "number of tools the bulk server exposes")
	fs.BoolVar(&o.stdio, "stdio", false, "serve MCP over stdin/stdout instead of HTTP (payments only)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case o.stdio && o.server != "payments":
		return o, fmt.Errorf("-stdio: only the payments server serves stdio, not %q", o.server)
	case o.n < 1:
		return o, fmt.Errorf("-n: %d is less than 1", o.n)
	}
	return o, nil
}

// handlerFor returns the HTTP handler of the named upstream.
func handlerFor(o options) (http.Handler, error) {
	switch o.server {
	case "customers":
		return upstreams.CustomersHandler(nil), nil
	case "orders":
		return upstreams.OrdersHandler(nil), nil
	case "payments":
		return upstreams.PaymentsHandler(nil), nil
	case "bulk":
		return upstreams.BulkHandler(o.n), nil
	}
	return nil, fmt.Errorf("-server: unknown server %q (want customers, orders, payments or bulk)", o.server)
}

// run is main without the process: it serves until ctx is done (or, with
// -stdio, until stdin reaches EOF).
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil)).With(slog.String("server", o.server))

	if o.stdio {
		logger.InfoContext(ctx, "serving over stdio")
		err := upstreams.ServePaymentsStdio(ctx, stdin, stdout)
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return nil
		}
		return err
	}

	h, err := handlerFor(o)
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", o.listen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)

	// Request contexts derive from baseCtx, so cancelling it at shutdown
	// ends long-lived SSE streams that would otherwise hold Shutdown up.
	baseCtx, cancelBase := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelBase()
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
	}

	url := fmt.Sprintf("http://%s/mcp", ln.Addr())
	if _, err := fmt.Fprintf(stdout, "MCP_URL=%s\n", url); err != nil {
		_ = ln.Close()
		return fmt.Errorf("printing the URL: %w", err)
	}
	logger.InfoContext(ctx, "serving over HTTP", slog.String("url", url))

	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}
	logger.InfoContext(ctx, "shutting down")
	cancelBase()
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// A handler that ignores its context (seen with go-sdk's stateful
		// handler under load) must not keep a demo server alive: after the
		// grace period the remaining connections are closed.
		logger.WarnContext(ctx, "graceful shutdown timed out; closing connections", slog.Any("error", err))
		_ = srv.Close()
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serving HTTP: %w", err)
	}
	return nil
}
