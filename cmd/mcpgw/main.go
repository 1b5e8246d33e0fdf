// Command mcpgw is the MCP edge gateway. It parses flags, calls into the
// gateway and exits; the logic lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/telemetry"
)

// Set by -ldflags at release build time.
var (
	version = "dev"
	commit  = "unknown" //nolint:gochecknoglobals // -ldflags -X can set only a package-level string variable
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitError carries a command's exit code: 1 for a failure, 2 for a
// usage error.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError is an exit-2 error.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// failed is an exit-1 error whose message the command already printed.
var errFailed = &exitError{code: 1, err: errors.New("failed")}

// run executes the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(normalizeArgs(root, args))
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee != errFailed {
			fmt.Fprintln(stderr, "mcpgw:", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown command or flag, wrong arguments) are
	// usage errors.
	fmt.Fprintln(stderr, "mcpgw:", err)
	fmt.Fprintln(stderr, "Run 'mcpgw --help' for usage.")
	return 2
}

// newRoot builds the command tree.
func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mcpgw",
		Short: "mcpgw is an edge gateway for the Model Context Protocol",
		Long: `mcpgw is an edge gateway for the Model Context Protocol.

Admin verbs (kill, revive, switches, drain, undrain, upstreams, catalog,
drains, history) talk to a running gateway's admin API at --addr (env
MCPGW_ADDR, default http://127.0.0.1:9190) with the bearer token --token
(env MCPGW_TOKEN), which needs the admin scope (auth.admin_scope, mcpgw:admin)
when the gateway has auth. Every verb takes -o text|json|yaml|wide.

Single-dash long flags work as well as double-dash ones: serve -config FILE,
kill ... -addr URL.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
	}
	root.Version = version
	root.SetVersionTemplate("mcpgw {{.Version}} (commit " + commit + ")\n")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddGroup(&cobra.Group{ID: "config", Title: "Serving and configuration:"},
		&cobra.Group{ID: "admin", Title: "Against a running gateway (break-glass and state):"})
	for _, c := range []*cobra.Command{serveCmd(), validateCmd(), configCmd(), toolsCmd(), versionCmd()} {
		c.GroupID = "config"
		root.AddCommand(c)
	}
	for _, c := range adminCmds() {
		c.GroupID = "admin"
		root.AddCommand(c)
	}
	return root
}

// normalizeArgs rewrites single-dash long flags (-config, -addr=URL,
// -watch=false, -help) to their double-dash form, for the command the
// arguments select: docs, the Helm chart and scripts spell them that way,
// as Go's flag package accepted. One-letter shorthands (-o) and arguments
// after "--" are left alone.
func normalizeArgs(root *cobra.Command, args []string) []string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		cmd = root
	}
	cmd.InitDefaultHelpFlag()
	long := map[string]bool{"help": true, "version": cmd == root}
	add := func(f *pflag.Flag) { long[f.Name] = true }
	cmd.Flags().VisitAll(add)
	cmd.InheritedFlags().VisitAll(add)
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) > 2 && a[0] == '-' && a[1] != '-' {
			name, _, _ := strings.Cut(a[1:], "=")
			if len(name) > 1 && long[name] {
				a = "-" + a
			}
		}
		out = append(out, a)
	}
	return out
}

func versionCmd() *cobra.Command {
	var out outputFlag
	c := &cobra.Command{
		Use:   "version",
		Short: "Print version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			goVersion := "unknown"
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
			}
			v := struct {
				Version string `json:"version"`
				Commit  string `json:"commit"`
				Go      string `json:"go"`
			}{version, commit, goVersion}
			return out.render(cmd.OutOrStdout(), v, func(w io.Writer, _ bool) {
				fmt.Fprintf(w, "mcpgw %s (commit %s, %s)\n", v.Version, v.Commit, v.Go)
			})
		},
	}
	out.register(c)
	return c
}

func serveCmd() *cobra.Command {
	var (
		path  string
		watch bool
	)
	c := &cobra.Command{
		Use:   "serve [-config FILE]",
		Short: "Serve MCP hosts on server.listen",
		Long: `Serve MCP hosts on server.listen with the configuration in FILE
(default ./mcpgw.yaml). The file is reloaded when it changes (unless
-watch=false) and on SIGHUP; SIGINT and SIGTERM shut down gracefully.`,
		Example: "  mcpgw serve -config /etc/mcpgw/mcpgw.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(path, watch, cmd.ErrOrStderr())
		},
	}
	c.Flags().StringVarP(&path, "config", "c", "mcpgw.yaml", "configuration file")
	c.Flags().BoolVar(&watch, "watch", true, "reload when the configuration file changes (SIGHUP always reloads)")
	_ = c.MarkFlagFilename("config", "yaml", "yml")
	return c
}

func serve(path string, watch bool, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	s, err := start(ctx, path, stderr)
	if err != nil {
		return errFailed
	}
	watched := []string{path}
	if pinned(s.cfg) {
		// An approval written by `mcpgw tools approve` applies on reload.
		watched = append(watched, s.cfg.LockFilePath(path))
	}
	if err := s.run(ctx, path, reloadTriggers(ctx, watched, watch, s.log)); err != nil {
		s.log.Error("mcpgw stopped", slog.Any("error", err))
		return errFailed
	}
	return nil
}

// reloadDebounce gathers the burst of file events of one save.
const reloadDebounce = 300 * time.Millisecond

// pinned reports whether some upstream's pinning mode is not off.
func pinned(cfg *configs.Config) bool {
	for i := range cfg.Upstreams {
		if cfg.PinningMode(&cfg.Upstreams[i]) != configs.PinningOff {
			return true
		}
	}
	return false
}

// reloadTriggers returns a channel that receives a signal on SIGHUP and,
// when watch is set, after one of the files at paths (the configuration,
// the lock file) changes. The watch logs
// each trigger and each failure to watch to log; the reload logs its outcome.
func reloadTriggers(ctx context.Context, paths []string, watch bool, log *slog.Logger) <-chan struct{} {
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
		for _, p := range paths {
			configs.Watch(ctx, p, reloadDebounce, log, fire)
		}
	}
	return trig
}

// started is what serve builds before it serves: everything that can
// refuse to start (TestServeRefusesOnlyWhatValidateReports runs it on
// every mutant of a valid configuration, so a refusal added here that
// validate does not report fails that test).
type started struct {
	cfg         *configs.Config
	log         *slog.Logger
	tel         *telemetry.Telemetry
	gw          *gateway.Gateway
	l           net.Listener
	stopMetrics func()
}

// start loads the configuration at path and builds everything serve
// needs, listeners included, without serving. It reports why it failed
// on stderr (a configuration problem as validate prints it, anything else
// in the log) and returns the cause.
func start(ctx context.Context, path string, stderr io.Writer) (*started, error) {
	cfg, err := configs.Load(path)
	if err != nil {
		for _, p := range configs.Problems(err) {
			fmt.Fprintf(stderr, "config: %s\n", p)
		}
		return nil, err
	}
	log, level := telemetry.NewLogger(cfg.Log, stderr)
	s, err := build(ctx, cfg, path, log, level)
	if err != nil {
		log.ErrorContext(ctx, "mcpgw did not start", slog.Any("error", err))
		return nil, err
	}
	return s, nil
}

// build is start after the configuration has loaded.
func build(ctx context.Context, cfg *configs.Config, path string, log *slog.Logger, level *slog.LevelVar) (_ *started, err error) {
	s := &started{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.close(ctx)
		}
	}()
	if s.tel, err = telemetry.New(cfg.Telemetry, telemetry.Options{ServiceVersion: version}); err != nil {
		return nil, err
	}
	if s.gw, err = gateway.New(cfg, &gateway.Options{Logger: log, Version: version, Telemetry: s.tel, LogLevel: level, ConfigPath: path}); err != nil {
		return nil, err
	}
	if addr := s.tel.MetricsListen(); addr != "" {
		if s.stopMetrics, err = serveMetrics(ctx, addr, s.tel, log); err != nil {
			return nil, err
		}
	}
	var lc net.ListenConfig
	if s.l, err = lc.Listen(ctx, "tcp", cfg.Server.Listen); err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Server.Listen, err)
	}
	return s, nil
}

// close releases what start built, for a start that failed or a test.
func (s *started) close(ctx context.Context) {
	if s.l != nil {
		_ = s.l.Close()
	}
	if s.stopMetrics != nil {
		s.stopMetrics()
	}
	if s.gw != nil {
		s.gw.Close()
	}
	s.flushTelemetry(ctx)
}

// flushTelemetry shuts the telemetry providers down, exporting what is
// buffered.
func (s *started) flushTelemetry(ctx context.Context) {
	if s.tel == nil {
		return
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.tel.Shutdown(sctx); err != nil {
		s.log.WarnContext(ctx, "flushing telemetry", slog.Any("error", err))
	}
}

// run serves until ctx ends, reloading path on each reload trigger.
func (s *started) run(ctx context.Context, path string, reload <-chan struct{}) error {
	defer s.flushTelemetry(ctx)
	if s.stopMetrics != nil {
		defer s.stopMetrics()
	}
	s.gw.Start()
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-reload:
				// ReloadFile logs, counts and audits the outcome.
				_ = s.gw.ReloadFile(ctx, path)
			}
		}
	}()
	s.log.InfoContext(ctx, "mcpgw listening", slog.String("addr", s.l.Addr().String()), slog.String("mcp_path", s.cfg.Server.MCPPath),
		slog.String("version", version), slog.Int("upstreams", len(s.cfg.Upstreams)))
	return s.gw.Serve(ctx, s.l)
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
