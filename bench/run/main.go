// Command run is the benchmark runner behind `make bench`: it builds mcpgw
// and the helpers in bench/, starts the upstream, the bare reverse proxy
// and mcpgw, pins them and the load generator to separate CPUs when
// taskset exists, runs every scenario against every target interleaved for
// several rounds, and writes docs/BENCHMARKS.md.
//
//	go run ./bench/run                 # about 17 minutes on 2 cores
//	go run ./bench/run -smoke          # seconds: checks the runner works; report to a temp file
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run parses flags, runs the benchmark, writes the report and returns the
// exit code: 1 when something failed (the report is still written).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	rep, err := runBench(ctx, &opts)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	out, err := writeReport(rep)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "report written to %s\n", out)
	if rep.failed() {
		fmt.Fprintln(stderr, "bench: some runs failed; see the report")
		return 1
	}
	return 0
}

// smokeDefaults makes a smoke run brief: every flag not set by name gets
// its smoke value.
func smokeDefaults(opts *options, conc *string, set map[string]bool) {
	if !set["rounds"] {
		opts.rounds = 1
	}
	if !set["duration"] {
		opts.duration = 300 * time.Millisecond
	}
	if !set["warmup"] {
		opts.warmup = 0
	}
	if !set["idle-sessions"] {
		opts.idleSessions = 50
	}
	if !set["killswitch-trials"] {
		opts.killTrials = 3
	}
	if !set["concurrency"] {
		*conc = "4"
	}
	// Both need a go test -bench build and go tool pprof (itself a build on
	// a machine that never ran it): minutes cold, which a check that the
	// runner works does not need. Asked for by name, they run.
	if !set["micro"] {
		opts.micro = false
	}
	if !set["live-profile"] {
		opts.liveProfile = false
	}
	if !set["upstream-rounds"] {
		opts.sdkRounds = 1
	}
	if !set["upstream-duration"] {
		opts.sdkDuration = opts.duration
	}
}

func parseFlags(args []string, stdout, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts := options{log: stdout}
	fs.IntVar(&opts.rounds, "rounds", 5, "rounds; every round runs every scenario against every target")
	fs.DurationVar(&opts.duration, "duration", 4*time.Second, "measured duration of each run")
	fs.DurationVar(&opts.warmup, "warmup", 500*time.Millisecond, "unrecorded warm-up run of every scenario and target before the rounds (0: none)")
	fs.IntVar(&opts.idleSessions, "idle-sessions", 10000, "idle 2025-era sessions opened against a fresh mcpgw (0: skip)")
	fs.IntVar(&opts.catalog, "catalog", 1000, "tools in the upstream's catalog (echo, sleep and filler tools)")
	fs.BoolVar(&opts.smoke, "smoke", false, "check the runner works: 1 round of 300ms runs at concurrency 4, 50 idle sessions, 3 kill-switch trials, no micro-benchmarks or live profile (unless set); the report goes to a temp file")
	fs.StringVar(&opts.out, "out", "", "report path (default docs/BENCHMARKS.md, or a temp file with -smoke)")
	fs.IntVar(&opts.killTrials, "killswitch-trials", 20, "kill-switch propagation trials across two replicas sharing a redis-server (0: skip)")
	fs.BoolVar(&opts.micro, "micro", true, "run the Go micro-benchmarks of the call path and profile the in-process whole path")
	fs.BoolVar(&opts.liveProfile, "live-profile", true, "after the rounds, take a CPU profile of each running mcpgw through its pprof endpoint while the load generator drives it")
	fs.BoolVar(&opts.sdk, "upstream-libs", true, "also measure what a call costs mcp-go and go-sdk servers (with and without sessions) behind the proxy and behind mcpgw, in both eras")
	fs.IntVar(&opts.sdkRounds, "upstream-rounds", 3, "rounds of the -upstream-libs comparison")
	fs.DurationVar(&opts.sdkDuration, "upstream-duration", 3*time.Second, "measured duration of each run of the -upstream-libs comparison")
	fs.BoolVar(&opts.keep, "keep", false, "keep the temp directory with binaries, configs and server logs")
	targets := fs.String("targets", strings.Join(allTargets(), ","), "comma-separated targets: "+strings.Join(allTargets(), ", "))
	conc := fs.String("concurrency", "1,16,64", "comma-separated concurrencies of the tools/call scenarios")
	if err := fs.Parse(args); err != nil {
		return opts, err
	}
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if opts.smoke {
		smokeDefaults(&opts, conc, set)
	}

	var errs []error
	for t := range strings.SplitSeq(*targets, ",") {
		t = strings.TrimSpace(t)
		switch t {
		case targetDirect, targetProxy, targetGateway, targetFull:
			if !slices.Contains(opts.targets, t) {
				opts.targets = append(opts.targets, t)
			}
		default:
			errs = append(errs, fmt.Errorf("-targets: unknown target %q", t))
		}
	}
	if !slices.Contains(opts.targets, targetDirect) {
		// Every "added" number is relative to direct, and the order is
		// that of allTargets.
		opts.targets = append([]string{targetDirect}, opts.targets...)
	}
	order := allTargets()
	slices.SortFunc(opts.targets, func(a, b string) int { return slices.Index(order, a) - slices.Index(order, b) })
	for c := range strings.SplitSeq(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("-concurrency: %q is not a positive integer", c))
			continue
		}
		opts.concurrency = append(opts.concurrency, n)
	}
	if opts.rounds < 1 {
		errs = append(errs, errors.New("-rounds must be at least 1"))
	}
	if opts.sdkRounds < 1 {
		errs = append(errs, errors.New("-upstream-rounds must be at least 1"))
	}
	if opts.sdkDuration <= 0 {
		errs = append(errs, errors.New("-upstream-duration must be positive"))
	}
	if opts.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	if opts.catalog < 2 {
		errs = append(errs, errors.New("-catalog must be at least 2 (echo and sleep)"))
	}
	return opts, errors.Join(errs...)
}

// writeReport writes the Markdown report and returns its path.
func writeReport(rep *report) (string, error) {
	path := rep.opts.out
	if path == "" && rep.opts.smoke {
		f, err := os.CreateTemp("", "mcpgw-bench-smoke-*.md")
		if err != nil {
			return "", err
		}
		path = f.Name()
		_ = f.Close()
	}
	if path == "" {
		root, err := moduleRoot(context.Background())
		if err != nil {
			return "", err
		}
		path = filepath.Join(root, "docs", "BENCHMARKS.md")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil { //nolint:gosec // the report goes under docs/, readable like the rest of the repository.
		return "", err
	}
	return path, os.WriteFile(path, rep.markdown(), 0o644) //nolint:gosec // a report meant to be read and committed.
}
