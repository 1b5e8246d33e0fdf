// Command load drives an MCP endpoint over Streamable HTTP and reports
// calls/s, latency quantiles, errors and its own CPU time.
//
//	go run ./bench/load -url http://127.0.0.1:9190/mcp -era 2025 -method call -tool echo -c 16 -d 5s
//
// With -json it prints one loadgen.Result object (with "error" set when
// the run could not start) and exits 1 on failure. With -markers it also
// prints LOADGEN_WINDOW_START and LOADGEN_WINDOW_STOP lines around the
// measured window.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Window markers for -markers; bench/run samples the servers' CPU and the
// upstream's counters when it reads them.
const (
	markerStart = "LOADGEN_WINDOW_START"
	markerStop  = "LOADGEN_WINDOW_STOP"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg loadgen.Config
	fs.StringVar(&cfg.URL, "url", "", "MCP endpoint URL (required)")
	fs.StringVar(&cfg.Era, "era", loadgen.Era2025, "protocol era: 2025 (sessions) or 2026 ("+mcpwire.Version20260728+", stateless)")
	fs.StringVar(&cfg.Method, "method", loadgen.MethodCall, "call (tools/call) or list (tools/list, all pages)")
	fs.StringVar(&cfg.Tool, "tool", "echo", "tool to call")
	fs.IntVar(&cfg.Concurrency, "c", 16, "concurrent clients")
	fs.DurationVar(&cfg.Duration, "d", 5e9, "measured duration")
	fs.Int64Var(&cfg.Count, "n", 0, "run exactly this many operations instead of -d")
	fs.IntVar(&cfg.TextSize, "text-size", 200, "bytes of echo text")
	rawArgs := fs.String("args", "", `raw JSON arguments of each call, such as {"ms":10} for sleep (default: {"text": <text-size bytes>})`)
	var headers headerFlag
	fs.Var(&headers, "H", `extra request header "Name: value", repeatable (such as "Authorization: Bearer TOKEN"); a value of @NAME is read from the environment variable NAME`)
	asJSON := fs.Bool("json", false, "print a machine-readable JSON result")
	markers := fs.Bool("markers", false, "print "+markerStart+" and "+markerStop+" lines on stdout when the measured window opens and closes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if cfg.URL == "" {
		fmt.Fprintln(stderr, "load: -url is required")
		return 2
	}

	if len(headers.h) > 0 {
		cfg.Header = headers.h
	}
	if *rawArgs != "" {
		if !json.Valid([]byte(*rawArgs)) {
			fmt.Fprintln(stderr, "load: -args is not valid JSON")
			return 2
		}
		cfg.Arguments = []byte(*rawArgs)
	}
	if *markers {
		cfg.OnStart = func() { fmt.Fprintln(stdout, markerStart) }
		cfg.OnStop = func() { fmt.Fprintln(stdout, markerStop) }
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := loadgen.Run(ctx, &cfg)
	if err != nil {
		if *asJSON {
			_ = json.NewEncoder(stdout).Encode(loadgen.Result{URL: cfg.URL, Era: cfg.Era, Method: cfg.Method, Error: err.Error()})
		}
		fmt.Fprintf(stderr, "load: %v\n", err)
		return 1
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			fmt.Fprintf(stderr, "load: %v\n", err)
			return 1
		}
		return 0
	}
	what := mcpwire.MethodToolsCall + " " + res.Tool
	if res.Method == loadgen.MethodList {
		what = fmt.Sprintf("%s (%d tools in %d pages)", mcpwire.MethodToolsList, res.Tools, res.Pages)
	}
	fmt.Fprintf(stdout, "%s, era %s, c=%d, %.1fs against %s\n", what, res.Era, res.Concurrency, res.Seconds, res.URL)
	fmt.Fprintf(stdout, "  %d ok, %d errors, %.0f calls/s\n", res.Calls, res.Errors, res.CallsPerSec)
	fmt.Fprintf(stdout, "  latency µs: p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f  mean %.0f\n",
		res.P50us, res.P90us, res.P99us, res.P999us, res.MaxUs, res.MeanUs)
	fmt.Fprintf(stdout, "  load generator: %.2f CPU cores (%.1f µs CPU per call), GOMAXPROCS %d, %d connections dialed\n",
		res.CPUCores, res.CPUPerCallUs, res.GOMAXPROCS, res.Dials)
	if len(res.ErrorSample) > 0 {
		fmt.Fprintf(stdout, "  errors: %s\n", strings.Join(res.ErrorSample, "; "))
	}
	return 0
}

// headerFlag collects -H "Name: value" flags.
type headerFlag struct{ h http.Header }

func (f *headerFlag) String() string { return "" }

func (f *headerFlag) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	if !ok || name == "" {
		return fmt.Errorf("%q is not \"Name: value\"", s)
	}
	if env, isEnv := strings.CutPrefix(value, "@"); isEnv {
		v, set := os.LookupEnv(env)
		if !set {
			return fmt.Errorf("header %s: environment variable %s is not set", name, env)
		}
		value = v
	}
	if f.h == nil {
		f.h = http.Header{}
	}
	f.h.Add(name, value)
	return nil
}
