package main

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// row is a cell's medians across rounds. NaN means not measured.
type row struct {
	target      string
	status      string // "" when measured
	rounds      int
	callsPerSec float64
	p50, p99    float64 // µs
	added       float64 // p50 over direct's p50 in the same round, µs
	hopCPU      float64 // µs of proxy or gateway CPU per operation
	upCPU       float64 // µs of upstream CPU per operation
	connsPerOp  float64 // upstream TCP connections opened per operation
	upReqPerOp  float64 // upstream MCP requests per operation
	upListPerOp float64 // upstream tools/list requests per operation
	loadCores   float64 // load generator CPU, in cores
	loadCPU     float64 // load generator CPU µs per operation
	errors      int64
	tools       int
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianOf applies f to every sample with operations and takes the median.
func medianOf(samples []sample, f func(*sample) float64) float64 {
	var xs []float64
	for i := range samples {
		if s := &samples[i]; s.ops() > 0 {
			if v := f(s); !math.IsNaN(v) {
				xs = append(xs, v)
			}
		}
	}
	return median(xs)
}

// row aggregates scenario s for target t.
func (r *report) row(s scenario, t string) row {
	c := r.cell(s, t)
	out := row{target: t, rounds: len(c.samples)}
	switch {
	case isGateway(t) && r.gatewayErr != "":
		out.status = "failed: mcpgw did not build or start (see below)"
	case t == targetFull && r.fullErr != "":
		out.status = "failed: " + r.fullErr
	case c.unsupported != "":
		out.status = c.unsupported
	case len(c.samples) == 0 && len(c.failures) > 0:
		out.status = "failed: " + firstLine(c.failures[0])
	case len(c.samples) == 0:
		out.status = "not run"
	}
	per := func(f func(*sample) float64) float64 { return medianOf(c.samples, f) }
	out.callsPerSec = per(func(s *sample) float64 { return s.res.CallsPerSec })
	out.p50 = per(func(s *sample) float64 { return s.res.P50us })
	out.p99 = per(func(s *sample) float64 { return s.res.P99us })
	out.hopCPU = per(func(s *sample) float64 {
		if s.hopTicks < 0 {
			return math.NaN()
		}
		return ticksToMicros(s.hopTicks) / float64(s.ops())
	})
	out.upCPU = per(func(s *sample) float64 { return ticksToMicros(s.upTicks) / float64(s.ops()) })
	out.connsPerOp = per(func(s *sample) float64 { return float64(s.up.Conns) / float64(s.ops()) })
	out.upReqPerOp = per(func(s *sample) float64 { return float64(s.up.Requests) / float64(s.ops()) })
	out.upListPerOp = per(func(s *sample) float64 { return float64(s.up.Lists) / float64(s.ops()) })
	out.loadCores = per(func(s *sample) float64 { return s.res.CPUCores })
	out.loadCPU = per(func(s *sample) float64 { return s.res.CPUPerCallUs })
	for i := range c.samples {
		out.errors += c.samples[i].res.Errors
		out.tools = max(out.tools, c.samples[i].res.Tools)
	}

	// p50 added: paired with the direct run of the same round, so slow
	// drift on a shared machine cancels out.
	out.added = math.NaN()
	if t != targetDirect {
		direct := r.cell(s, targetDirect)
		var xs []float64
		for i := range c.samples {
			smp := &c.samples[i]
			for j := range direct.samples {
				if d := &direct.samples[j]; d.round == smp.round && d.ops() > 0 && smp.ops() > 0 {
					xs = append(xs, smp.res.P50us-d.res.P50us)
				}
			}
		}
		out.added = median(xs)
	}
	return out
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// num formats v with the given decimals, or "—" when not measured.
func num(v float64, decimals int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "—"
	}
	return fmt.Sprintf("%.*f", decimals, v)
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// goal is one line of the targets table.
type goal struct {
	name, want, measured string
	ok                   string // ✅, ❌ or a reason it was not judged
	// profile is the gateway target whose live profile shows where a
	// missed goal's cost is ("" when no profile of mcpgw speaks to it);
	// cost says in words where it is, when the profile alone would not.
	profile, cost string
	// profileMethod is the load of that profile (loadgen.MethodCall when
	// empty).
	profileMethod string
	// extraProfile is a profile of a process other than the main rounds'
	// gateways, shown under the goal when it is missed: an upstream's own
	// profile under load through mcpgw, or mcpgw-full's in front of a real
	// server.
	extraProfile *liveProfile
	// gatewayCost marks a goal on the gateway's own cost measured in front
	// of a real server: its miss asks for a profile of that gateway.
	gatewayCost bool
}

// Verdicts of a goal.
const (
	met    = "✅"
	missed = "❌"
)

func judge(ok bool) string {
	if ok {
		return met
	}
	return missed
}

// findScenario returns the scenario with the given shape.
func (r *report) findScenario(era, method string, conc int) (scenario, bool) {
	for _, s := range r.scenarios {
		if s.era == era && s.method == method && s.conc == conc {
			return s, true
		}
	}
	return scenario{}, false
}

// nearestScenario returns the scenario of era and method whose
// concurrency is closest to conc (a run without c=16, such as a smoke run,
// still judges its rows, at the concurrency it ran).
func (r *report) nearestScenario(era, method string, conc int) (scenario, bool) {
	var best scenario
	found := false
	for _, s := range r.scenarios {
		if s.era != era || s.method != method {
			continue
		}
		if !found || absInt(s.conc-conc) < absInt(best.conc-conc) {
			best, found = s, true
		}
	}
	return best, found
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// goals evaluates issue 15's targets against the bare proxy of the same
// run, in the order.
func (r *report) goals() []goal {
	var gs []goal
	eras := []string{loadgen.Era2025, loadgen.Era2026}
	for _, sp := range ratioGoals() {
		for _, era := range eras {
			gs = append(gs, r.ratioGoal(&sp, era))
		}
		if sp.upstream {
			// After the fast upstream's rows: the real servers', then
			// everything on in front of mcp-go (the issue's own setup).
			gs = append(gs, r.sdkUpstreamGoals()...)
			gs = append(gs, r.sdkFullGoals()...)
		}
	}
	return append(gs, r.listGoal(), r.allocGoal(), r.idleGoal())
}

// ratioSpec is a goal set as a ratio of a target's tools/call row to the
// bare proxy's, in one era at one concurrency.
type ratioSpec struct {
	target, name, want string
	conc               int
	limit              float64
	atMost             bool // the target's value must be ≤ limit × the proxy's; else ≥
	f                  func(row) float64
	unit               string
	upstream           bool // the upstream's CPU: the SDK servers' rows follow
}

// ratioGoals are the ratio goals, in the order of the targets table.
// Everything on is mcpgw-full (protocol_version auto, like every target).
func ratioGoals() []ratioSpec {
	hop := func(x row) float64 { return x.hopCPU }
	up := func(x row) float64 { return x.upCPU }
	cps := func(x row) float64 { return x.callsPerSec }
	added := func(x row) float64 { return x.added }
	return []ratioSpec{
		{target: targetFull, name: "calls/s, everything on", want: "≥ 1.2× proxy", conc: 16, limit: 1.2, f: cps, unit: "/s"},
		{target: targetFull, name: "gateway CPU per call, everything on", want: "≤ 0.8× proxy", conc: 16, limit: 0.8, atMost: true, f: hop, unit: "µs"},
		{target: targetGateway, name: "gateway CPU per call, routing only", want: "≤ 0.6× proxy", conc: 16, limit: 0.6, atMost: true, f: hop, unit: "µs"},
		{target: targetFull, name: "upstream CPU per call, fast upstream, everything on", want: "≤ 1.0× behind the proxy", conc: 16, limit: 1.0, atMost: true, f: up, unit: "µs", upstream: true},
		{target: targetFull, name: "p50 added over direct, everything on", want: "≤ 1.0× what the proxy adds", conc: 1, limit: 1.0, atMost: true, f: added, unit: "µs"},
		{target: targetGateway, name: "p50 added over direct, routing only", want: "≤ 1.0× what the proxy adds", conc: 1, limit: 1.0, atMost: true, f: added, unit: "µs"},
	}
}

// ratioGoal evaluates sp in era.
func (r *report) ratioGoal(sp *ratioSpec, era string) goal {
	g := goal{name: sp.name + " (" + eraShort(era) + fmt.Sprintf(" clients, c=%d)", sp.conc), want: sp.want, profile: sp.target}
	s, ok := r.nearestScenario(era, loadgen.MethodCall, sp.conc)
	if !ok || !slices.Contains(r.targets, sp.target) || !slices.Contains(r.targets, targetProxy) {
		g.measured, g.ok = "—", "not run"
		return g
	}
	if s.conc != sp.conc {
		g.name = sp.name + " (" + eraShort(era) + fmt.Sprintf(" clients, c=%d: c=%d not run)", s.conc, sp.conc)
	}
	if sp.upstream {
		g.profile = ""
		g.cost = "In the upstream (bench/upstream), not in mcpgw: no profile of mcpgw shows it; the tools/call tables show the upstream's CPU per call behind each hop, and *What mcpgw costs the servers behind it* what each era costs real servers."
	}
	gw, px := r.row(s, sp.target), r.row(s, targetProxy)
	if gw.status != "" || px.status != "" {
		g.measured, g.ok = "—", "not measured"
		if gw.status != "" {
			g.ok = sp.target + ": " + shortStatus(gw.status)
		}
		return g
	}
	a, b := sp.f(gw), sp.f(px)
	ratio := a / b
	g.measured = fmt.Sprintf("%s %s %s, proxy %s %s → %s×", sp.target, num(a, 1), sp.unit, num(b, 1), sp.unit, num(ratio, 2))
	switch {
	case math.IsNaN(ratio) || math.IsInf(ratio, 0):
		g.ok = "not measured"
	case sp.atMost:
		g.ok = judge(a <= sp.limit*b)
	default:
		g.ok = judge(a >= sp.limit*b)
	}
	return g
}

// listGoal is tools/list of the merged catalog with auth on, served
// from the catalog snapshot.
func (r *report) listGoal() goal {
	g := goal{
		name: fmt.Sprintf("tools/list of the merged %d-tool catalog, auth on (mcpgw-full, c=1)", r.opts.catalog),
		want: "p50 ≤ 1 ms and 0 upstream requests per list", profile: targetFull, profileMethod: loadgen.MethodList,
	}
	s, ok := r.findScenario(loadgen.Era2025, loadgen.MethodList, 1)
	if !ok || !slices.Contains(r.targets, targetFull) {
		g.measured, g.ok = "—", "not run"
		return g
	}
	x := r.row(s, targetFull)
	if x.status != "" {
		g.measured, g.ok = "—", targetFull+": "+shortStatus(x.status)
		return g
	}
	g.measured = fmt.Sprintf("p50 %s µs, %s upstream tools/list requests per list (%s upstream requests of any kind)", num(x.p50, 0), num(x.upListPerOp, 3), num(x.upReqPerOp, 3))
	if slices.Contains(r.targets, targetGateway) {
		if rx := r.row(s, targetGateway); rx.status == "" {
			g.measured += fmt.Sprintf("; routing only: p50 %s µs", num(rx.p50, 0))
		}
	}
	g.ok = judge(x.p50 <= 1000 && x.upListPerOp == 0)
	return g
}

// allocGoal is allocations per proxied call, from the in-process
// benchmark.
func (r *report) allocGoal() goal {
	g := goal{
		name: "allocated per proxied call (in-process whole-path benchmark, mcpgw's share, routing only)", want: "≤ 8 KB", profile: targetGateway,
		cost: "Allocation sites: `runtime.mallocgc`'s callers in the in-process profile of `BenchmarkCallPath/mcpgw/2025` under *Where the remaining cost is*.",
	}
	kb, allocs, ok := r.allocShare("BenchmarkCallPath/mcpgw/2025")
	if !ok {
		g.measured, g.ok = "—", "not measured"
		return g
	}
	g.measured = fmt.Sprintf("%.1f KB, %.0f allocs (routing only, %s)", kb, allocs, mcpwire.Version20251125)
	if fkb, fallocs, ok := r.allocShare("BenchmarkCallPath/mcpgw-full/2025"); ok {
		g.measured += fmt.Sprintf("; %.1f KB, %.0f allocs with everything on", fkb, fallocs)
	}
	g.ok = judge(kb <= 8)
	return g
}

// idleGoal is the memory of idle sessions.
func (r *report) idleGoal() goal {
	g := goal{
		name: "10,000 idle 2025-era sessions (fresh mcpgw)", want: "≤ 150 MiB RSS",
		cost: "Memory, not CPU: the sessions' state in the gateway (see *Idle sessions*).",
	}
	switch {
	case r.idle != nil && r.idleErr == "":
		g.measured = fmt.Sprintf("%s RSS with %d sessions", mib(r.idle.after.rssKiB), r.idle.sessions)
		if r.idle.sessions >= 10000 {
			g.ok = judge(r.idle.after.rssKiB <= 150*1024)
		} else {
			g.ok = fmt.Sprintf("not judged (%d sessions)", r.idle.sessions)
		}
	case r.idleErr != "":
		g.measured, g.ok = "—", "failed"
	default:
		g.measured, g.ok = "—", "not run"
	}
	return g
}

// allocShare is the gateway's share of a whole-path benchmark, in KB
// (1,000 bytes) and allocations per call.
func (r *report) allocShare(bench string) (kb, allocs float64, ok bool) {
	if r.micro == nil {
		return 0, 0, false
	}
	b, a, ok := r.micro.gatewayShare(bench)
	return b / 1000, a, ok
}

func eraShort(era string) string {
	if era == loadgen.Era2026 {
		return mcpwire.Version20260728
	}
	return mcpwire.Version20251125
}

func shortStatus(s string) string {
	if len(s) > 60 {
		return s[:60] + "…"
	}
	return s
}

// cellText makes s safe inside a Markdown table cell.
func cellText(s string) string {
	s = strings.ReplaceAll(firstLine(s), "|", `\|`)
	if r := []rune(s); len(r) > 240 {
		s = string(r[:240]) + "…"
	}
	return s
}

// inline is s's first line, for a Markdown paragraph.
func inline(s string) string { return firstLine(s) }

// markdown renders the report as docs/BENCHMARKS.md, section by section.
func (r *report) markdown() []byte {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	r.headerMarkdown(p)
	r.goalsMarkdown(p)
	r.erasMarkdown(p)
	r.callsMarkdown(p)
	r.sdkMarkdown(p)
	r.listMarkdown(p)
	r.memoryMarkdown(p)
	r.idleMarkdown(p)
	r.killSwitchMarkdown(p)
	r.microMarkdown(p)
	r.remainingCostMarkdown(p)
	r.failuresMarkdown(p)
	r.reproduceMarkdown(p)
	r.runsMarkdown(p)
	return b.Bytes()
}

// headerMarkdown writes the title, the machine and the method.
func (r *report) headerMarkdown(p func(string, ...any)) {
	o := &r.opts
	p("# mcpgw benchmarks")
	p("")
	p("Generated by `make bench` (`go run ./bench/run`) on %s UTC, commit `%s`; the run took %s.",
		r.started.UTC().Format("2006-01-02 15:04"), r.machine.commit, r.finished.Sub(r.started).Round(time.Second))
	if o.smoke {
		p("")
		p("**Smoke run** (`-smoke`): every run is a few hundred milliseconds long, the binaries are linked without symbols, and the micro-benchmarks and the live profile are skipped unless asked for; the numbers only show that the runner works.")
	}
	p("")
	p("The `tools/call` hot path of mcpgw is measured against a bare `httputil.ReverseProxy` (bench/proxy) in front of the same upstream (bench/upstream), and against the upstream reached directly. See [bench/README.md](../bench/README.md) for what each number means.")
	p("")
	p("## Machine")
	p("")
	p("- CPU: %s; %d CPUs visible, this run allowed on %s", r.machine.cpuModel, r.machine.cpus, r.machine.allowed)
	p("- %s, %s", r.machine.goVersion, r.machine.kernel)
	p("- Load average (1, 5, 15 min) at start: %s; at end: %s. The machine is shared: other work competes for the same CPUs.", r.machine.loadStart, r.machine.loadEnd)
	p("- Pinning: %s. Go sets GOMAXPROCS from the affinity mask, so each pinned process runs with as many Ps as CPUs it was given.", r.pin.note)
	p("- Method: %d round(s) of %s per run after a %s warm-up of every run; within each scenario of a round the targets run interleaved (%s). Tables show medians across rounds.",
		o.rounds, o.duration, o.warmup, strings.Join(r.targets, ", "))
	p("")

	if r.gatewayErr != "" {
		p("## ⚠️ mcpgw was not measured")
		p("")
		p("```")
		p("%s", strings.TrimSpace(r.gatewayErr))
		p("```")
		p("")
	}
}

// goalsMarkdown writes the targets table, then each missed target with
// the remaining cost the live profile shows.
func (r *report) goalsMarkdown(p func(string, ...any)) {
	p("## Targets")
	p("")
	p("Issue 15's targets. Ratios are against the bare proxy measured in the same run; *everything on* is mcpgw-full (below), and every mcpgw target leaves the era to `protocol_version: %s` (the era it chose for each upstream is in the next section). *clients* is the era the load generator speaks to the hop.", autoVersion)
	p("")
	p("| target | goal | measured | |")
	p("|---|---|---|---|")
	gs := r.goals()
	for i := range gs {
		g := &gs[i]
		p("| %s | %s | %s | %s |", g.name, g.want, cellText(g.measured), cellText(g.ok))
	}
	p("")
	r.missedMarkdown(p, gs)
}

// missedMarkdown names every missed target and, under it, what the live
// profile of the gateway it was measured on says the remaining cost is.
// Targets measured on the same gateway share one listing.
func (r *report) missedMarkdown(p func(string, ...any), gs []goal) {
	p("### Missed targets and their remaining cost")
	p("")
	type key struct{ target, method string }
	var order []key
	byProfile := map[key][]*goal{}
	for i := range gs {
		g := &gs[i]
		if g.ok != missed {
			continue
		}
		k := key{g.profile, g.profileMethod}
		if k.target != "" && k.method == "" {
			k.method = loadgen.MethodCall
		}
		if _, ok := byProfile[k]; !ok {
			order = append(order, k)
		}
		byProfile[k] = append(byProfile[k], g)
	}
	if len(order) == 0 {
		p("None: every target that was measured is met.")
		p("")
		return
	}
	shown := map[*liveProfile]bool{}
	for _, k := range order {
		for _, g := range byProfile[k] {
			p("- **Missed: %s** (goal %s; measured %s).", g.name, g.want, inline(g.measured))
			if g.cost != "" {
				p("  Remaining cost: %s", g.cost)
			}
			if lp := g.extraProfile; lp != nil && shown[lp] {
				p("  Remaining cost: the profile of %s above.", lp.target)
			} else if lp != nil {
				shown[lp] = true
				p("")
				profileBlock(p, lp)
				p("")
			} else if g.gatewayCost {
				p("  Remaining cost: no live profile of this gateway was taken in this run (`-live-profile=false`).")
			}
		}
		p("")
		if k.target == "" {
			continue
		}
		prof := k.target
		if lp := r.liveProfileOf(prof, k.method); lp != nil {
			profileBlock(p, lp)
		} else {
			p("Remaining cost in %s: no live profile of it under `%s` was taken in this run (`-live-profile=false`, or %s did not run).", prof, k.method, prof)
		}
		p("")
	}
}

// profileBlock writes the top of live profile lp as a missed target's
// remaining cost.
func profileBlock(p func(string, ...any), lp *liveProfile) {
	if lp.err != "" {
		p("Remaining cost in %s: the live profile failed: %s", lp.target, cellText(lp.err))
		return
	}
	where := "the whole listing is under *Where the remaining cost is*"
	if lp.where != "" {
		where = lp.where
	}
	p("Remaining cost, from the live CPU profile of **%s** taken during this run (%s; %s): %s.",
		lp.target, lp.sc.describe(), where, lp.shares.line())
	p("")
	p("```")
	p("%s", topLines(lp.top, missedTopLines))
	p("```")
}

// missedTopLines is how many functions of the live profile the missed
// targets show (the full listing has 30).
const missedTopLines = 15

// topLines keeps the header of a `go tool pprof -top` listing and its
// first n functions.
func topLines(top string, n int) string {
	var out []string
	fns := 0
	for line := range strings.Lines(top) {
		line = strings.TrimRight(line, "\n")
		f := strings.Fields(line)
		if strings.HasPrefix(line, "Build ID:") || strings.HasPrefix(line, "Time:") {
			continue // the full listing has them
		}
		isFn := len(f) >= 6 && strings.HasSuffix(f[1], "%") && strings.HasSuffix(f[2], "%")
		if isFn {
			if fns == n {
				break
			}
			fns++
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// liveProfileOf returns the live profile of gateway target t under
// method, or nil.
func (r *report) liveProfileOf(t, method string) *liveProfile {
	for i := range r.live {
		if lp := &r.live[i]; lp.target == t && lp.sc.method == method {
			return lp
		}
	}
	return nil
}

// describe names a load shape in prose.
func (s scenario) describe() string {
	what := "`tools/call echo`"
	if s.method == loadgen.MethodList {
		what = "`tools/list` of the whole catalog"
	}
	return fmt.Sprintf("%s clients, %s, c=%d", eraShort(s.era), what, s.conc)
}

// erasMarkdown writes the era protocol_version auto chose for each
// upstream of the run, as each gateway reported it.
func (r *report) erasMarkdown(p func(string, ...any)) {
	p("## The era `auto` chose for each upstream")
	p("")
	p("Read from each running gateway's admin API (`GET /admin/v1/upstreams`: `protocol_version` and `era`) after its measured runs, not assumed from the rule: *session* is a 2025-era session opened by `initialize`, *stateless* the 2026-07-28 era.")
	p("")
	p("| gateway | upstream | server | offers | auto chose |")
	p("|---|---|---|---|---|")
	for _, t := range []string{targetGateway, targetFull} {
		if !slices.Contains(r.targets, t) {
			continue
		}
		chosen := r.benchEras[t]
		if chosen == "" {
			chosen = "not read (the gateway did not run)"
		}
		p("| %s | %s | bench/upstream (fast, no SDK) | both eras; session ids | %s |", t, upstreamName, cellText(chosen))
	}
	if res := r.sdk; res != nil && res.err == "" {
		for _, u := range res.ups {
			chosen := res.chosen[u.name]
			if chosen == "" {
				chosen = "not read"
			}
			p("| mcpgw (SDK comparison) | %s | %s | %s | %s |", u.name, sdkServerName(&u), u.offers, cellText(chosen))
		}
		for _, u := range res.ups {
			if u.full {
				chosen := res.fullChosen
				if chosen == "" {
					chosen = "not read"
				}
				p("| mcpgw-full (SDK comparison) | %s (%s) | %s | %s | %s |", upstreamName, u.name, sdkServerName(&u), u.offers, cellText(chosen))
			}
		}
	}
	p("")
}

// callsMarkdown writes the tools/call tables, one per era.
func (r *report) callsMarkdown(p func(string, ...any)) {
	p("## tools/call echo (200-byte text)")
	p("")
	p("*added* is the p50 over the direct target's p50 in the same round; *hop CPU* is the CPU time of the proxy or gateway process per call; *upstream conns* counts TCP connections the upstream accepted per call during the window.")
	r.fullMarkdown(p)
	for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
		p("")
		p("### %s", map[string]string{loadgen.Era2025: mcpwire.Version20251125 + " (a session per client)", loadgen.Era2026: mcpwire.Version20260728 + " (stateless)"}[era])
		p("")
		p("| c | target | calls/s | p50 µs | p99 µs | p50 added µs | hop CPU µs/call | upstream CPU µs/call | upstream conns/call | load gen CPU (cores, µs/call) | errors |")
		p("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
		for _, s := range r.scenarios {
			if s.era != era || s.method != loadgen.MethodCall {
				continue
			}
			for _, t := range r.targets {
				x := r.row(s, t)
				if x.status != "" {
					p("| %d | %s | %s | | | | | | | | |", s.conc, t, cellText(x.status))
					continue
				}
				p("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s, %s | %d |", s.conc, t,
					num(x.callsPerSec, 0), num(x.p50, 0), num(x.p99, 0), num(x.added, 0),
					num(x.hopCPU, 1), num(x.upCPU, 1), num(x.connsPerOp, 4), num(x.loadCores, 2), num(x.loadCPU, 0), x.errors)
			}
		}
	}
	p("")
}

// listMarkdown writes the tools/list table.
func (r *report) listMarkdown(p func(string, ...any)) {
	s, ok := r.findScenario(loadgen.Era2025, loadgen.MethodList, 1)
	if !ok {
		return
	}
	p("## tools/list, %d tools (%s session, c=1)", r.opts.catalog, mcpwire.Version20251125)
	p("")
	p("One operation is a complete listing: every page, following `nextCursor` (the upstream pages at 500). Latency is the sum of the page requests. mcpgw-full lists with auth on: its token is checked on every page, and the list is filtered for its principal.")
	p("")
	p("| target | lists/s | p50 µs | p99 µs | p50 added µs | tools seen | upstream tools/list requests per list | upstream requests of any kind per list | hop CPU µs/list | load gen CPU (cores) | errors |")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, t := range r.targets {
		x := r.row(s, t)
		if x.status != "" {
			p("| %s | %s | | | | | | | | | |", t, cellText(x.status))
			continue
		}
		p("| %s | %s | %s | %s | %s | %d | %s | %s | %s | %s | %d |", t, num(x.callsPerSec, 0), num(x.p50, 0), num(x.p99, 0), num(x.added, 0),
			x.tools, num(x.upListPerOp, 3), num(x.upReqPerOp, 3), num(x.hopCPU, 0), num(x.loadCores, 2), x.errors)
	}
	p("")
}

// memoryMarkdown writes the memory of each process.
func (r *report) memoryMarkdown(p func(string, ...any)) {
	p("## Memory")
	p("")
	p("Peak resident memory (VmHWM) of each process after every call and list run above.")
	p("")
	p("| process | peak RSS | RSS at the end |")
	p("|---|---:|---:|")
	for _, name := range []string{"upstream", targetProxy, targetGateway, targetFull} {
		if m, ok := r.memory[name]; ok {
			p("| %s | %s | %s |", name, mib(m.hwmKiB), mib(m.rssKiB))
		}
	}
	p("")
}

// idleMarkdown writes the idle-sessions section.
func (r *report) idleMarkdown(p func(string, ...any)) {
	p("## Idle sessions (mcpgw)")
	p("")
	switch {
	case r.idle != nil && r.idleErr == "":
		i := r.idle
		per := float64(i.after.rssKiB-i.before.rssKiB) / float64(max(i.sessions, 1))
		p("A fresh mcpgw; %d 2025-era sessions opened with `initialize` + `notifications/initialized` by 8 concurrent clients in %.2f s, then left idle.", i.sessions, i.openSeconds)
		p("")
		p("| sessions | RSS before | RSS after | per session | peak RSS | upstream requests while opening | still answering ping |")
		p("|---:|---:|---:|---:|---:|---:|---:|")
		p("| %d | %s | %s | %.1f KiB | %s | %d | %d of %d |", i.sessions, mib(i.before.rssKiB), mib(i.after.rssKiB), per, mib(i.after.hwmKiB), i.up.Requests, i.alive, i.pinged)
	case r.idleErr != "":
		p("Failed:")
		p("")
		p("```")
		p("%s", strings.TrimSpace(r.idleErr))
		p("```")
	default:
		p("Not run (needs mcpgw).")
	}
	p("")
}

// failuresMarkdown lists every failure, when there are any.
func (r *report) failuresMarkdown(p func(string, ...any)) {
	if fails := r.failures(); len(fails) > 0 {
		p("## Failures")
		p("")
		p("```")
		for _, f := range fails {
			p("%s", f)
		}
		p("```")
		p("")
	}
}

// reproduceMarkdown writes how to run the benchmark again.
func (r *report) reproduceMarkdown(p func(string, ...any)) {
	p("## How to reproduce")
	p("")
	p("```sh")
	p("make bench          # this file: %s", "go run ./bench/run")
	p("make bench-smoke    # a few seconds, writes to a temp file; checks the runner works")
	p("go run ./bench/run -rounds 3 -duration 2s -targets direct,proxy,mcpgw -out /tmp/b.md")
	p("go run ./bench/load -url http://127.0.0.1:PORT/mcp -era 2026 -c 16 -d 10s   # one load run by hand")
	p("```")
	p("")
	p("Numbers move with the machine and its neighbours; compare targets within one run, not across runs.")
	p("")
}

// runsMarkdown writes every run, folded.
func (r *report) runsMarkdown(p func(string, ...any)) {
	p("<details><summary>Every run</summary>")
	p("")
	p("| scenario | target | round | calls/s | p50 µs | p99 µs | p99.9 µs | hop CPU µs/op | upstream conns | errors |")
	p("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, s := range r.scenarios {
		for _, t := range r.targets {
			samples := r.cell(s, t).samples
			for i := range samples {
				smp := &samples[i]
				hop := math.NaN()
				if smp.hopTicks >= 0 && smp.ops() > 0 {
					hop = ticksToMicros(smp.hopTicks) / float64(smp.ops())
				}
				p("| %s | %s | %d | %s | %s | %s | %s | %s | %d | %d |", s.key, t, smp.round, num(smp.res.CallsPerSec, 0),
					num(smp.res.P50us, 0), num(smp.res.P99us, 0), num(smp.res.P999us, 0), num(hop, 1), smp.up.Conns, smp.res.Errors)
			}
		}
	}
	p("")
	p("</details>")
}

// failures lists every failure, labelled.
func (r *report) failures() []string {
	var out []string
	for _, s := range r.scenarios {
		for _, t := range r.targets {
			for _, f := range r.cell(s, t).failures {
				out = append(out, fmt.Sprintf("%s / %s: %s", s.key, t, f))
			}
		}
	}
	if r.idleErr != "" {
		out = append(out, "idle sessions: "+r.idleErr)
	}
	return append(out, r.sdk.failures()...)
}
