// Command mcpgw is the MCP edge gateway. It parses flags, calls into the
// gateway and exits; the logic lives in the packages.
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
	"runtime/debug"
	"syscall"
	"time"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/telemetry"
)

// Set by -ldflags at release build time.
var (
	version = "dev"
	commit  = "unknown" //nolint:gochecknoglobals // -ldflags -X can set only a package-level string variable
)

const usage = `mcpgw is an edge gateway for the Model Context Protocol.

Usage:
  mcpgw serve -config FILE      serve MCP hosts on server.listen
  mcpgw validate FILE           check a configuration file; exit 1 on problems
  mcpgw version                 print version, commit and Go version

Break-glass (against a running gateway; -addr or MCPGW_ADDR, -o json):
  mcpgw kill TOOL_GLOB --reason TEXT [--ttl 1h] [--ticket ID]
  mcpgw kill --upstream NAME --reason TEXT
  mcpgw kill --all --reason TEXT
  mcpgw revive ID               lift a kill switch
  mcpgw switches                list active kill switches
  mcpgw drain UPSTREAM          refuse new calls to an upstream; in-flight calls finish
  mcpgw undrain UPSTREAM
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stderr)
	case "validate":
		return validate(args[1:], stdout, stderr)
	case "kill":
		return kill(args[1:], stdout, stderr)
	case "revive":
		return revive(args[1:], stdout, stderr)
	case "switches":
		return switches(args[1:], stdout, stderr)
	case "drain", "undrain":
		return drainCmd(args[0], args[1:], stdout, stderr)
	case "version", "-version", "--version":
		return printVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "mcpgw: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func printVersion(stdout io.Writer) int {
	goVersion := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
	}
	fmt.Fprintf(stdout, "mcpgw %s (commit %s, %s)\n", version, commit, goVersion)
	return 0
}

func validate(args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 {
		fmt.Fprintln(stderr, "usage: mcpgw validate FILE")
		return 2
	}
	if _, err := configs.Load(args[0]); err != nil {
		problems := configs.Problems(err)
		fmt.Fprintf(stderr, "%s: %d problem(s):\n", args[0], len(problems))
		for _, p := range problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", args[0])
	return 0
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "mcpgw.yaml", "configuration file")
	watch := fs.Bool("watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := configs.Load(*path)
	if err != nil {
		for _, p := range configs.Problems(err) {
			fmt.Fprintf(stderr, "config: %s\n", p)
		}
		return 1
	}
	log, level := telemetry.NewLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := listenAndServe(ctx, cfg, *path, log, level, reloadTriggers(ctx, *path, *watch)); err != nil {
		log.Error("mcpgw stopped", slog.Any("error", err))
		return 1
	}
	return 0
}

// reloadDebounce gathers the burst of file events of one save.
const reloadDebounce = 300 * time.Millisecond

// reloadTriggers returns a channel that receives the configuration path
// on SIGHUP and, when watch is set, after the file changes.
func reloadTriggers(ctx context.Context, path string, watch bool) <-chan struct{} {
	trig := make(chan struct{}, 1)
	fire := func() {
		select {
		case trig <- struct{}{}:
		default:
		}
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				fire()
			}
		}
	}()
	if watch {
		configs.Watch(ctx, path, reloadDebounce, fire)
	}
	return trig
}

func listenAndServe(ctx context.Context, cfg *configs.Config, path string, log *slog.Logger, level *slog.LevelVar, reload <-chan struct{}) error {
	if cfg.Auth == nil {
		if err := requireLoopback(cfg.Server.Listen); err != nil {
			return err
		}
	}
	tel, err := telemetry.New(cfg.Telemetry, telemetry.Options{ServiceVersion: version})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := tel.Shutdown(sctx); err != nil {
			log.Warn("flushing telemetry", slog.Any("error", err))
		}
	}()
	gw, err := gateway.New(cfg, &gateway.Options{Logger: log, Version: version, Telemetry: tel, LogLevel: level})
	if err != nil {
		return err
	}
	if addr := tel.MetricsListen(); addr != "" {
		stopMetrics, err := serveMetrics(ctx, addr, tel, log)
		if err != nil {
			gw.Close()
			return err
		}
		defer stopMetrics()
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", cfg.Server.Listen)
	if err != nil {
		gw.Close()
		return fmt.Errorf("listening on %s: %w", cfg.Server.Listen, err)
	}
	gw.Start()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				// ReloadFile logs, counts and audits the outcome.
				_ = gw.ReloadFile(ctx, path)
			}
		}
	}()
	log.InfoContext(ctx, "mcpgw listening", slog.String("addr", l.Addr().String()), slog.String("mcp_path", cfg.Server.MCPPath),
		slog.String("version", version), slog.Int("upstreams", len(cfg.Upstreams)))
	return gw.Serve(ctx, l)
}

// requireLoopback refuses to expose an unauthenticated gateway beyond this
// machine.
func requireLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("server.listen: %w", err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("server.listen: without authentication mcpgw binds only loopback addresses (127.0.0.1, ::1, localhost), not " + addr)
}

// serveMetrics serves /metrics on its own listener (telemetry.metrics.listen)
// until the returned function is called.
func serveMetrics(ctx context.Context, addr string, tel *telemetry.Telemetry, log *slog.Logger) (func(), error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry.metrics.listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", tel.MetricsHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", slog.Any("error", err))
		}
	}()
	log.InfoContext(ctx, "metrics listening", slog.String("addr", l.Addr().String()))
	return func() {
		_ = srv.Close()
		<-done
	}, nil
}
