package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/configs"
)

// Targets: the same upstream reached directly, through the bare reverse
// proxy, through mcpgw with routing only, and through mcpgw with
// everything on the call path (see full.go).
const (
	targetDirect  = "direct"
	targetProxy   = "proxy"
	targetGateway = "mcpgw"
	targetFull    = "mcpgw-full"
)

// allTargets is every target, in the order they run within a scenario.
func allTargets() []string { return []string{targetDirect, targetProxy, targetGateway, targetFull} }

// isGateway reports whether t is an mcpgw target.
func isGateway(t string) bool { return t == targetGateway || t == targetFull }

// Window markers printed by bench/load -markers.
const (
	markerStart = "LOADGEN_WINDOW_START"
	markerStop  = "LOADGEN_WINDOW_STOP"
)

// upstreamName is the upstream's name in the gateway config; tools are
// exposed as bench__echo.
const upstreamName = "bench"

// autoVersion is the protocol_version every measured gateway target leaves
// to mcpgw (it is the default; the configs spell it out so the report's
// headline is plainly auto's).
const autoVersion = configs.ProtocolAuto

// options are the runner's settings (see the flags in main.go).
type options struct {
	rounds       int
	duration     time.Duration
	warmup       time.Duration
	idleSessions int
	smoke        bool
	out          string
	targets      []string
	concurrency  []int
	catalog      int // tools in the upstream's catalog (echo, sleep and fillers)
	keep         bool
	log          io.Writer
	// killTrials is the number of kill-switch propagation trials (0: skip).
	killTrials int
	// micro runs the Go micro-benchmarks and the in-process profile.
	micro bool
	// liveProfile takes a CPU profile of each running gateway under load
	// through its pprof endpoint, after the rounds.
	liveProfile bool
	// sdk runs the comparison on mcp-go and go-sdk upstreams (sdk.go),
	// sdkRounds rounds of it, each run sdkDuration long.
	sdk         bool
	sdkRounds   int
	sdkDuration time.Duration
}

// scenario is one load shape, run against every target.
type scenario struct {
	key    string
	era    string // loadgen.Era2025 or loadgen.Era2026
	method string // loadgen.MethodCall or loadgen.MethodList
	conc   int
}

// sample is one measured run of a scenario against a target.
type sample struct {
	round int
	res   loadgen.Result
	// hopTicks is the CPU of the proxy or gateway during the window, in
	// clock ticks; -1 for the direct target.
	hopTicks int64
	upTicks  int64
	up       upstreamStats
}

// ops is the number of operations the load generator completed.
func (s *sample) ops() int64 { return s.res.Calls + s.res.Errors }

// cell holds a scenario × target's samples and what went wrong.
type cell struct {
	samples     []sample
	failures    []string
	unsupported string
}

// endpoint is where a target is reached.
type endpoint struct {
	url  string
	tool string
	hop  *proc // the proxy or gateway; nil for direct
	// up and stats, when set, are the upstream sampled instead of the
	// run's fast upstream (the SDK upstreams, sdk.go).
	up    *proc
	stats *statsClient
	// authz is the Authorization header value, or "".
	authz string
}

// idleResult is the idle-sessions measurement of a fresh gateway.
type idleResult struct {
	sessions      int
	before, after memory
	up            upstreamStats
	openSeconds   float64
	pinged, alive int
}

// machineInfo describes where the run happened.
type machineInfo struct {
	cpuModel  string
	cpus      int
	allowed   string
	goVersion string
	kernel    string
	commit    string
	loadStart string
	loadEnd   string
}

// report is everything a run measured.
type report struct {
	opts              options
	started, finished time.Time
	machine           machineInfo
	pin               pinning
	gatewayErr        string
	fullErr           string // the full target did not start
	fullAuditRecords  int    // lines in the full target's audit file
	scenarios         []scenario
	targets           []string
	cells             map[string]map[string]*cell
	memory            map[string]memory
	idle              *idleResult
	idleErr           string
	prop              *propagation
	micro             *microResults
	live              []liveProfile
	sdk               *sdkResults
	// benchEras is the era each gateway target's protocol_version auto
	// spoke to the fast upstream, read from its admin API after the
	// rounds ("protocol_version era"), by target; an error says why not.
	benchEras map[string]string
}

func (r *report) cell(s scenario, target string) *cell {
	m := r.cells[s.key]
	if m == nil {
		m = map[string]*cell{}
		r.cells[s.key] = m
	}
	c := m[target]
	if c == nil {
		c = &cell{}
		m[target] = c
	}
	return c
}

// failed reports hard failures: a target that did not build or start, a
// run that broke, the idle-sessions measurement failing. A gateway that
// answers the 2026 era with an error is "not supported yet", not a failure.
func (r *report) failed() bool {
	if r.gatewayErr != "" || r.fullErr != "" || r.idleErr != "" {
		return true
	}
	if r.prop != nil && r.prop.err != "" {
		return true
	}
	if r.micro != nil && r.micro.err != "" {
		return true
	}
	if len(r.sdk.failures()) > 0 {
		return true
	}
	for _, m := range r.cells {
		for _, c := range m {
			if len(c.failures) > 0 {
				return true
			}
		}
	}
	return false
}

// scenarios returns the load shapes of a run, in the order they are run
// within a round.
func scenarios(opts *options) []scenario {
	var out []scenario
	for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
		for _, c := range opts.concurrency {
			out = append(out, scenario{key: fmt.Sprintf("call-%s-c%d", era, c), era: era, method: loadgen.MethodCall, conc: c})
		}
	}
	return append(out, scenario{key: "list-2025-c1", era: loadgen.Era2025, method: loadgen.MethodList, conc: 1})
}

// bencher runs one benchmark.
type bencher struct {
	opts     options
	root     string
	dir      string // binaries, configs and logs
	pin      pinning
	upstream *proc
	upURL    string
	stats    *statsClient
	eps      map[string]endpoint
	rep      *report
	issuer   *issuer // for the full target
	// cleanups stop what the run started, last first (cleanup).
	cleanups []func()
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.opts.log, format+"\n", args...)
}

// runBench builds and starts everything, measures, stops everything and
// returns the report. An error means nothing useful could be measured (the
// helpers did not build, the upstream did not start); anything less is
// recorded in the report.
func runBench(ctx context.Context, opts *options) (*report, error) {
	rep := &report{opts: *opts, started: time.Now(), targets: opts.targets, cells: map[string]map[string]*cell{}, memory: map[string]memory{}}
	rep.scenarios = scenarios(opts)
	rep.machine = describeMachine(ctx)

	b, err := newBencher(ctx, rep)
	if err != nil {
		return nil, err
	}
	defer b.cleanup()
	if err := b.build(ctx); err != nil {
		return nil, err
	}
	if err := b.startTargets(ctx); err != nil {
		return nil, err
	}
	if err := b.runRounds(ctx); err != nil {
		return nil, err
	}
	b.afterRounds(ctx)
	b.runExtras(ctx)
	rep.machine.loadEnd = loadAverage()
	rep.finished = time.Now()
	return rep, nil
}

// newBencher prepares the run's temp directory for rep's options.
func newBencher(ctx context.Context, rep *report) (*bencher, error) {
	opts := &rep.opts
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mcpgw-bench-")
	if err != nil {
		return nil, err
	}
	b := &bencher{opts: *opts, root: root, dir: dir, pin: planPinning(), eps: map[string]endpoint{}, rep: rep}
	if opts.keep {
		fmt.Fprintf(opts.log, "keeping binaries and logs in %s\n", dir)
	} else {
		b.onCleanup(func() { _ = os.RemoveAll(dir) })
	}
	// Audit files go in a directory of their own: mcpgw watches its
	// config file's directory for changes, and an audit file beside the
	// config would wake that watcher on every flush (operations.md, "The
	// audit log").
	if err := os.Mkdir(filepath.Join(dir, "audit"), 0o700); err != nil {
		b.cleanup()
		return nil, err
	}
	rep.pin = b.pin
	rep.machine.commit = gitDescribe(ctx, root)
	return b, nil
}

// onCleanup registers fn to run at cleanup, before the functions
// registered earlier.
func (b *bencher) onCleanup(fn func()) { b.cleanups = append(b.cleanups, fn) }

// cleanup stops what the run started and removes its temp directory, in
// the reverse order of onCleanup.
func (b *bencher) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
	b.cleanups = nil
}

// build builds the helpers and, when a gateway target is wanted, mcpgw; a
// gateway that does not build is recorded, not returned. One go build
// links every binary in parallel; when it fails, the helpers are built
// alone, so that only their failure ends the run. A smoke run only checks
// that the runner works: it links its binaries quickly.
func (b *bencher) build(ctx context.Context) error {
	helpers := []string{"./bench/upstream", "./bench/proxy", "./bench/load", "./test/devissuer", "./bench/sdkupstream"}
	smoke := b.opts.smoke
	wantGateway := slices.Contains(b.opts.targets, targetGateway) || slices.Contains(b.opts.targets, targetFull) || b.opts.sdk
	if wantGateway {
		b.logf("building mcpgw, the upstreams, proxy, load generator and development token issuer")
		if err := goBuild(ctx, b.root, b.dir, smoke, append(helpers, "./cmd/mcpgw")...); err != nil {
			b.rep.gatewayErr = "mcpgw did not build: " + err.Error()
			b.logf("%s", b.rep.gatewayErr)
		}
	}
	if b.rep.gatewayErr != "" || !wantGateway {
		b.logf("building the upstreams, proxy, load generator and development token issuer")
		if err := goBuild(ctx, b.root, b.dir, smoke, helpers...); err != nil {
			return err
		}
	}
	b.logf("%s", b.pin.note)
	return nil
}

// startTargets starts the upstream and every target's hop. The upstream
// or the proxy failing to start ends the run; a gateway failing is
// recorded in the report.
func (b *bencher) startTargets(ctx context.Context) error {
	if err := b.startUpstream(ctx); err != nil {
		return err
	}
	b.onCleanup(b.upstream.stop)
	if _, err := b.stats.get(ctx); err != nil { // Opens the stats connection.
		return err
	}
	b.eps[targetDirect] = endpoint{url: b.upURL, tool: "echo"}
	targets, rep := b.opts.targets, b.rep
	if slices.Contains(targets, targetProxy) {
		p, url, err := b.startProxy(ctx)
		if err != nil {
			return fmt.Errorf("the bare proxy did not start: %w", err)
		}
		b.onCleanup(p.stop)
		b.eps[targetProxy] = endpoint{url: url, tool: "echo", hop: p}
	}
	rep.benchEras = map[string]string{}
	if slices.Contains(targets, targetGateway) && rep.gatewayErr == "" {
		p, url, err := b.startGateway(ctx, "mcpgw", gatewayConfig(b.upURL, b.auditPath("mcpgw")))
		if err != nil {
			rep.gatewayErr = "mcpgw did not start: " + err.Error()
			b.logf("%s", rep.gatewayErr)
		} else {
			b.onCleanup(p.stop)
			b.eps[targetGateway] = endpoint{url: url, tool: upstreamName + "__echo", hop: p}
		}
	}
	// The issuer starts with the full target, or later for the
	// kill-switch measurement: it is read when the run ends.
	b.onCleanup(func() { b.issuer.close() })
	if slices.Contains(targets, targetFull) && rep.gatewayErr == "" {
		p, url, err := b.startFullGateway(ctx)
		if err != nil {
			rep.fullErr = "mcpgw with everything on did not start: " + err.Error()
			b.logf("%s", rep.fullErr)
		} else {
			b.onCleanup(p.stop)
			b.eps[targetFull] = endpoint{url: url, tool: upstreamName + "__echo", hop: p, authz: "Bearer " + b.issuer.token}
		}
	}
	return nil
}

// runRounds runs the warm-up and then every round: each scenario against
// each target.
func (b *bencher) runRounds(ctx context.Context) error {
	opts := &b.opts
	if opts.warmup > 0 {
		b.logf("warm-up: every scenario and target for %s", opts.warmup)
		for _, s := range b.rep.scenarios {
			for _, t := range opts.targets {
				b.runCell(ctx, 0, s, t, opts.warmup)
			}
		}
	}
	for round := 1; round <= opts.rounds; round++ {
		for _, s := range b.rep.scenarios {
			for _, t := range opts.targets {
				if err := ctx.Err(); err != nil {
					return err
				}
				b.runCell(ctx, round, s, t, opts.duration)
			}
		}
	}
	return nil
}

// afterRounds reads what the measured runs left behind (memory, audit
// records), takes the live profiles while the hops still run, then stops
// the hops to free the CPU for what follows.
func (b *bencher) afterRounds(ctx context.Context) {
	rep := b.rep
	if m, err := readMemory(b.upstream.pid()); err == nil {
		rep.memory["upstream"] = m
	}
	if _, ok := b.eps[targetFull]; ok {
		if n, err := b.auditLines(); err == nil {
			rep.fullAuditRecords = n
		}
	}
	hops := []string{targetProxy, targetGateway, targetFull}
	for _, t := range hops {
		if ep, ok := b.eps[t]; ok && !ep.hop.exited() {
			if m, err := readMemory(ep.hop.pid()); err == nil {
				rep.memory[t] = m
			}
		}
	}
	b.readBenchEras(ctx)
	// After the memory readings, which cover the measured runs only, and
	// before the gateways stop: the profile is of the processes measured.
	if b.opts.liveProfile {
		rep.live = b.liveProfiles(ctx)
	}
	for _, t := range hops {
		if ep, ok := b.eps[t]; ok {
			ep.hop.stop()
		}
	}
}

// readBenchEras reads, from each gateway target still running, the era
// its protocol_version auto spoke to the fast upstream during the rounds.
// mcpgw-full's admin API needs a token with the admin scope.
func (b *bencher) readBenchEras(ctx context.Context) {
	for _, t := range []string{targetGateway, targetFull} {
		ep, ok := b.eps[t]
		if !ok || ep.hop.exited() {
			continue
		}
		authz := ""
		if t == targetFull {
			tok, err := b.mintAdminToken(ctx)
			if err != nil {
				b.rep.benchEras[t] = "not read: minting a token with the admin scope: " + firstLine(err.Error())
				continue
			}
			authz = "Bearer " + tok
		}
		eras, err := b.upstreamEras(ctx, ep.url, authz)
		switch {
		case err != nil:
			b.rep.benchEras[t] = "not read: " + firstLine(err.Error())
		case eras[upstreamName].String() == "":
			b.rep.benchEras[t] = "not listed"
		default:
			b.rep.benchEras[t] = eras[upstreamName].String()
		}
		b.logf("%s speaks %s to the fast upstream", t, b.rep.benchEras[t])
	}
}

// runExtras runs the measurements beside the rounds: idle sessions,
// kill-switch propagation and the micro-benchmarks.
func (b *bencher) runExtras(ctx context.Context) {
	opts, rep := &b.opts, b.rep
	if opts.sdk {
		b.logf("SDK upstreams: mcp-go and go-sdk servers behind the proxy and mcpgw")
		rep.sdk = b.runSDK(ctx, opts.sdkRounds)
		if rep.sdk.err != "" {
			b.logf("SDK upstreams: %s", rep.sdk.err)
		}
	}
	if _, ok := b.eps[targetGateway]; ok && opts.idleSessions > 0 {
		idle, err := b.idleSessions(ctx)
		if err != nil {
			rep.idleErr = err.Error()
			b.logf("idle sessions: %v", err)
		}
		rep.idle = idle
	}
	if opts.killTrials > 0 && rep.gatewayErr == "" {
		rep.prop = b.killSwitchPropagation(ctx, opts.killTrials)
		if rep.prop.err != "" {
			b.logf("kill-switch propagation: %s", rep.prop.err)
		} else if rep.prop.skipped != "" {
			b.logf("kill-switch propagation: not measured: %s", rep.prop.skipped)
		}
	}
	if opts.micro {
		rep.micro = b.runMicro(ctx)
		b.profileCallPath(ctx, rep.micro)
	}
}

func (b *bencher) startUpstream(ctx context.Context) error {
	argv := b.pin.command(b.pin.upstream, filepath.Join(b.dir, "upstream"),
		"-listen", "127.0.0.1:0", "-filler", strconv.Itoa(max(b.opts.catalog-2, 0)))
	p, url, err := startProc(ctx, "upstream", b.dir, argv, false, prefixed("MCP_URL="))
	if err != nil {
		return fmt.Errorf("the upstream did not start: %w", err)
	}
	b.upstream, b.upURL, b.stats = p, url, newStatsClient(url)
	b.logf("upstream %s (pid %d)", url, p.pid())
	return nil
}

func (b *bencher) startProxy(ctx context.Context) (*proc, string, error) {
	return b.startProxyTo(ctx, "proxy", b.upURL)
}

// startProxyTo starts a bare proxy named name in front of upstreamURL.
func (b *bencher) startProxyTo(ctx context.Context, name, upstreamURL string) (*proc, string, error) {
	argv := b.pin.command(b.pin.server, filepath.Join(b.dir, "proxy"), "-listen", "127.0.0.1:0", "-upstream", upstreamURL)
	p, url, err := startProc(ctx, name, b.dir, argv, false, prefixed("PROXY_URL="))
	if err == nil {
		b.logf("%s %s (pid %d)", name, url, p.pid())
	}
	return p, url, err
}

// gatewayConfig is the minimal mcpgw configuration in front of the
// benchmark upstream. The audit stream cannot be turned off; it goes to a
// file (the default, stdout, would put the runner reading a pipe inside
// every measurement). Without auth the admin API, pprof included, needs no
// token: the gateway then binds loopback only.
// auditPath is the audit file of the gateway target name.
func (b *bencher) auditPath(name string) string {
	return filepath.Join(b.dir, "audit", name+"-audit.jsonl")
}

func gatewayConfig(upstreamURL, auditPath string) string {
	return fmt.Sprintf(`# Written by bench/run.
server: {listen: 127.0.0.1:0}
# pprof under /admin/v1/debug/pprof/ for the live profile; the routes cost
# nothing until asked.
telemetry: {profiling: true}
upstreams:
  - name: %s
    http: {url: %q, max_idle_conns: 256}
    protocol_version: %s
audit:
  sinks:
    - {type: file, path: %q}
`, upstreamName, upstreamURL, autoVersion, auditPath)
}

// startGateway starts mcpgw with the given configuration and waits for
// /readyz.
func (b *bencher) startGateway(ctx context.Context, name, config string) (*proc, string, error) {
	cfgPath := filepath.Join(b.dir, name+".yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		return nil, "", err
	}
	argv := b.pin.command(b.pin.server, filepath.Join(b.dir, "mcpgw"), "serve", "-config", cfgPath)
	p, addr, err := startProc(ctx, name, b.dir, argv, true, listeningAddr)
	if err != nil {
		return nil, "", err
	}
	if err := waitReady(ctx, "http://"+addr+"/readyz", 60*time.Second); err != nil {
		p.stop()
		return nil, "", fmt.Errorf("%w; its log:\n%s", err, tail(p.logPath, 20))
	}
	url := "http://" + addr + "/mcp"
	b.logf("%s %s (pid %d)", name, url, p.pid())
	return p, url, nil
}

// listeningAddr finds mcpgw's {"msg":"mcpgw listening","addr":...} line.
func listeningAddr(line string) (string, bool) {
	var l struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "mcpgw listening" || l.Addr == "" {
		return "", false
	}
	return l.Addr, true
}

func prefixed(prefix string) func(string) (string, bool) {
	return func(line string) (string, bool) {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), prefix)
		return v, ok && v != ""
	}
}

// runCell runs scenario s against target t once and records the sample,
// or the failure (round 0 is the warm-up: only failures are kept).
func (b *bencher) runCell(ctx context.Context, round int, s scenario, t string, d time.Duration) {
	c := b.rep.cell(s, t)
	ep, ok := b.eps[t]
	if !ok || c.unsupported != "" {
		return
	}
	if ep.hop != nil && ep.hop.exited() {
		msg := fmt.Sprintf("round %d: %s has exited (%v); its log:\n%s", round, t, ep.hop.waitErr, tail(ep.hop.logPath, 10))
		if len(c.failures) == 0 || !strings.Contains(c.failures[len(c.failures)-1], "has exited") {
			c.failures = append(c.failures, msg)
		}
		return
	}
	smp, started, err := b.load(ctx, s, ep, d, nil)
	label := fmt.Sprintf("round %d", round)
	if round == 0 {
		label = "warm-up"
	}
	if err != nil {
		if isGateway(t) && s.era == loadgen.Era2026 && !started {
			c.unsupported = "not supported yet: " + err.Error()
			b.logf("%-8s %-16s %-10s %s", label, s.key, t, c.unsupported)
			return
		}
		c.failures = append(c.failures, label+": "+err.Error())
		b.logf("%-8s %-16s %-10s FAILED: %v", label, s.key, t, err)
		return
	}
	smp.round = round
	hop := "—"
	if smp.hopTicks >= 0 && smp.ops() > 0 {
		hop = fmt.Sprintf("%.0f", ticksToMicros(smp.hopTicks)/float64(smp.ops()))
	}
	b.logf("%-8s %-16s %-10s %8.0f ops/s  p50 %6.0f µs  p99 %6.0f µs  hop CPU %4s µs/op  errors %d",
		label, s.key, t, smp.res.CallsPerSec, smp.res.P50us, smp.res.P99us, hop, smp.res.Errors)
	if round > 0 {
		c.samples = append(c.samples, smp)
	}
}

func ticksToMicros(ticks int64) float64 { return float64(ticks) * 1e6 / clockTicks }

// load runs the load generator once against ep, sampling the servers over
// exactly its measured window. started reports whether the window opened
// (an error before it means the target refused the scenario). onStart, if
// not nil, is called once when the window opens, after the first sample;
// it must not block, since the load generator's output waits on it.
func (b *bencher) load(ctx context.Context, s scenario, ep endpoint, d time.Duration, onStart func()) (smp sample, started bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, d+2*time.Minute)
	defer cancel()
	argv := b.pin.command(b.pin.load, filepath.Join(b.dir, "load"),
		"-url", ep.url, "-era", s.era, "-method", s.method, "-tool", ep.tool,
		"-c", strconv.Itoa(s.conc), "-d", d.String(), "-json", "-markers")
	if ep.authz != "" {
		argv = append(argv, "-H", "Authorization: @"+authEnv)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...) //nolint:gosec // argv is the pinned load generator and the runner's own flags.
	if ep.authz != "" {
		cmd.Env = append(os.Environ(), authEnv+"="+ep.authz)
	}
	dieWithParent(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return smp, false, err
	}
	if err := cmd.Start(); err != nil {
		return smp, false, fmt.Errorf("starting the load generator: %w", err)
	}

	type snapshot struct {
		hop, up int64
		stats   upstreamStats
	}
	take := func() (snapshot, error) {
		var sn snapshot
		var err error
		sn.hop = -1
		if ep.hop != nil {
			if sn.hop, err = cpuTicks(ep.hop.pid()); err != nil {
				return sn, err
			}
		}
		up, stats := b.upstream, b.stats
		if ep.up != nil {
			up, stats = ep.up, ep.stats
		}
		if sn.up, err = cpuTicks(up.pid()); err != nil {
			return sn, err
		}
		sn.stats, err = stats.get(ctx)
		return sn, err
	}
	var first, last snapshot
	var snapErr error
	stopped := false
	var result []byte
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		switch line := sc.Bytes(); string(line) {
		case markerStart:
			started = true
			first, err = take()
			snapErr = errors.Join(snapErr, err)
			if onStart != nil {
				onStart()
			}
		case markerStop:
			stopped = true
			last, err = take()
			snapErr = errors.Join(snapErr, err)
		default:
			result = append(result[:0], line...)
		}
	}
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()

	var res loadgen.Result
	if jerr := json.Unmarshal(result, &res); jerr != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = jerr.Error()
		}
		return smp, started, fmt.Errorf("load generator (%w): %s", waitErr, msg)
	}
	if res.Error != "" {
		return smp, started, errors.New(res.Error)
	}
	if waitErr != nil {
		return smp, started, fmt.Errorf("load generator: %w: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	if !started || !stopped {
		return smp, started, errors.New("load generator printed no window markers")
	}
	if snapErr != nil {
		return smp, started, fmt.Errorf("sampling the servers: %w", snapErr)
	}
	smp.res = res
	smp.hopTicks = -1
	if ep.hop != nil {
		smp.hopTicks = last.hop - first.hop
	}
	smp.upTicks = last.up - first.up
	smp.up = last.stats.sub(first.stats)
	return smp, true, nil
}

// idleSessions starts a fresh gateway, opens opts.idleSessions 2025-era
// sessions at a modest concurrency, leaves them idle and measures the
// gateway's resident memory before and after.
func (b *bencher) idleSessions(ctx context.Context) (*idleResult, error) {
	n := b.opts.idleSessions
	b.logf("idle sessions: starting a fresh mcpgw and opening %d sessions", n)
	p, url, err := b.startGateway(ctx, "mcpgw-idle", gatewayConfig(b.upURL, b.auditPath("mcpgw-idle")))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	settle := 2 * time.Second
	if b.opts.smoke {
		settle = 200 * time.Millisecond
	}
	sleep(ctx, settle)
	res := &idleResult{sessions: n}
	if res.before, err = readMemory(p.pid()); err != nil {
		return nil, err
	}
	st0, err := b.stats.get(ctx)
	if err != nil {
		return nil, err
	}
	const conc = 8
	tr := loadgen.NewTransport(conc, nil)
	defer tr.CloseIdleConnections()
	t0 := time.Now()
	clients, err := loadgen.OpenSessions(ctx, url, n, conc, tr)
	if err != nil {
		return res, fmt.Errorf("opening %d sessions: %w", n, err)
	}
	res.openSeconds = time.Since(t0).Seconds()
	sleep(ctx, settle)
	if res.after, err = readMemory(p.pid()); err != nil {
		return res, err
	}
	st1, err := b.stats.get(ctx)
	if err != nil {
		return res, err
	}
	res.up = st1.sub(st0)
	// The oldest, a middle and the newest session must still answer.
	for _, i := range []int{0, n / 2, n - 1} {
		res.pinged++
		if err := clients[i].Ping(ctx); err == nil {
			res.alive++
		} else {
			b.logf("idle sessions: ping of session %d: %v", i, err)
		}
	}
	b.logf("idle sessions: %d opened in %.1fs; RSS %s → %s", n, res.openSeconds, mib(res.before.rssKiB), mib(res.after.rssKiB))
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func describeMachine(ctx context.Context) machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), goVersion: runtime.Version(), loadStart: loadAverage()}
	m.allowed = strings.Join(allowedCPUs(), ",")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.Lines(string(b)) {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if m.cpuModel == "" {
		m.cpuModel = "unknown (" + runtime.GOARCH + ")"
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = runtime.GOOS + " " + strings.TrimSpace(string(b))
	} else {
		m.kernel = runtime.GOOS
	}
	if out, err := exec.CommandContext(ctx, "go", "version").Output(); err == nil {
		m.goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func gitDescribe(ctx context.Context, root string) string {
	cmd := exec.CommandContext(ctx, "git", "describe", "--always", "--dirty")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}
