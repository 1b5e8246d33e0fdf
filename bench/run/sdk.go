package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// What mcpgw costs the servers behind it: the fast upstream of the main
// rounds costs almost nothing in either era, so it cannot show what a
// gateway's choice of era costs a real server. Here each of the two MCP
// libraries the gateway meets most serves echo (bench/sdkupstream), with
// and without sessions, behind the bare proxy and behind mcpgw with
// protocol_version auto, and the report puts the upstream's CPU per call
// beside the hop's. Behind the proxy the upstream serves the client's own
// era, so the proxy rows are also the comparison of the two eras that
// auto's rule rests on; mcpgw also reaches every server pinned to each era
// (a second and third upstream entry per server), so the report can show
// what each era costs the server and the gateway through mcpgw, and which
// one auto picked.

// sdkUpstream is one real MCP server of the comparison.
type sdkUpstream struct {
	key       string // row label
	lib       string // -lib of bench/sdkupstream
	stateless bool
	name      string // upstream name in the gateway's configuration
	// what the server offers, as the report states it
	offers string
	// full also puts mcpgw with everything on (mcpgw-full's
	// configuration) in front of it: the setup of issue 15's first table.
	full bool
}

func sdkUpstreams() []sdkUpstream {
	return []sdkUpstream{
		{key: "mcp-go", lib: "mcp-go", name: "mcpgo", offers: "both eras; session ids", full: true},
		{key: "mcp-go stateless", lib: "mcp-go", stateless: true, name: "mcpgo_sl", offers: "both eras; no session ids (`WithStateLess`)"},
		{key: "go-sdk", lib: "go-sdk", name: "gosdk", offers: "2025 era only; session ids"},
		{key: "go-sdk stateless", lib: "go-sdk", stateless: true, name: "gosdk_sl", offers: "both eras; no session ids (`Stateless`)"},
	}
}

// The pinned hops: the same mcpgw, through an upstream entry that pins
// the era. Each runs in the client era that matches its pin, so the
// request crosses both hops in one era, as it does through the proxy.
const (
	targetPinned2025 = "mcpgw-2025"
	targetPinned2026 = "mcpgw-2026"
)

// sdkTargets are the hops in front of each SDK upstream, in run order;
// mcpgw-full only in front of a server marked full.
func sdkTargets() []string {
	return []string{targetProxy, targetGateway, targetPinned2025, targetPinned2026, targetFull}
}

// hasHop reports whether hop t is measured in front of server u.
func (u *sdkUpstream) hasHop(t string) bool { return t != targetFull || u.full }

// pinnedVersion returns the version a pinned hop pins and the client era
// it runs in; ok is false for the other hops.
func pinnedVersion(t string) (version, clientEra string, ok bool) {
	switch t {
	case targetPinned2025:
		return mcpwire.Version20251125, loadgen.Era2025, true
	case targetPinned2026:
		return mcpwire.Version20260728, loadgen.Era2026, true
	}
	return "", "", false
}

// pinnedName is the upstream entry of server name pinned by hop t.
func pinnedName(name, t string) string {
	if t == targetPinned2025 {
		return name + "_v25"
	}
	return name + "_v26"
}

// hopLabel names a hop in the report.
func hopLabel(t string) string {
	if v, _, ok := pinnedVersion(t); ok {
		return "mcpgw pinned to " + v
	}
	switch t {
	case targetGateway:
		return "mcpgw auto"
	case targetFull:
		return "mcpgw-full auto (everything on)"
	}
	return t
}

// sdkConcurrency is the one load shape of the comparison.
const sdkConcurrency = 16

// sdkResults is what the comparison measured.
type sdkResults struct {
	ups []sdkUpstream
	// chosen is the era mcpgw spoke to each upstream entry (auto and
	// pinned), as /admin/v1/upstreams reported it after the runs
	// ("protocol_version era"); "" when it never listed the upstream.
	chosen map[string]string
	cells  map[string]*cell // by sdkKey
	rounds int
	// gatewayURL is the /mcp URL of the mcpgw in front of them.
	gatewayURL string
	// fullChosen is the era mcpgw-full spoke to the server marked full,
	// as its admin API reported it after the runs (or why not).
	fullChosen string
	// fullProfile is mcpgw-full's live profile in front of that server,
	// taken when it missed a target there.
	fullProfile *liveProfile
	// profiles holds, by server key, the server's own CPU profile under
	// load through mcpgw (auto), taken when mcpgw cost it more than the
	// proxy did: where that cost goes.
	profiles map[string]*liveProfile
	err      string // the comparison could not run
}

func sdkKey(up, target, era string) string { return up + "/" + target + "/" + era }

func (r *sdkResults) cell(up, target, era string) *cell {
	k := sdkKey(up, target, era)
	c := r.cells[k]
	if c == nil {
		c = &cell{}
		r.cells[k] = c
	}
	return c
}

// sdkGatewayConfig is mcpgw with routing only in front of every SDK
// upstream, three times: left to protocol_version auto, and pinned to each
// era. The pinned entries are optional: a server that does not speak the
// pinned era must not keep the gateway from becoming ready (its row then
// reads not served).
func sdkGatewayConfig(ups []sdkUpstream, urls map[string]string, auditPath string) string {
	var b strings.Builder
	b.WriteString("# Written by bench/run.\nserver: {listen: 127.0.0.1:0}\nupstreams:\n")
	for _, u := range ups {
		fmt.Fprintf(&b, "  - name: %s\n    http: {url: %q, max_idle_conns: 256}\n    protocol_version: %s\n", u.name, urls[u.name], autoVersion)
		for _, t := range []string{targetPinned2025, targetPinned2026} {
			v, _, _ := pinnedVersion(t)
			fmt.Fprintf(&b, "  - name: %s\n    http: {url: %q, max_idle_conns: 256}\n    protocol_version: %q\n    optional: true\n",
				pinnedName(u.name, t), urls[u.name], v)
		}
	}
	fmt.Fprintf(&b, "audit:\n  sinks:\n    - {type: file, path: %q}\n", auditPath)
	return b.String()
}

// sdkFront is one SDK upstream and the hops in front of it.
type sdkFront struct {
	up    *proc
	url   string // the server's /mcp URL
	stats *statsClient
	eps   map[string]endpoint
}

// runSDK starts the SDK upstreams, a proxy in front of each and one mcpgw
// in front of all, and runs tools/call echo at concurrency 16 in both
// client eras against each, interleaved, for rounds rounds.
func (b *bencher) runSDK(ctx context.Context, rounds int) *sdkResults {
	res := &sdkResults{ups: sdkUpstreams(), chosen: map[string]string{}, cells: map[string]*cell{}, rounds: rounds, profiles: map[string]*liveProfile{}}
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	fronts, err := b.startSDK(ctx, res, &stops)
	if err != nil {
		res.err = err.Error()
		return res
	}
	run := func(round int, d time.Duration) {
		for _, u := range res.ups {
			b.runSDKServer(ctx, res, &u, fronts[u.name], round, d)
		}
	}
	if b.opts.warmup > 0 {
		b.logf("SDK upstreams: warm-up of every run for %s", b.opts.warmup)
		run(0, b.opts.warmup)
	}
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		run(round, b.opts.sdkDuration)
	}
	// What the gateway spoke to each upstream while it served the calls
	// above, read from the gateway itself: the rule behind auto may change
	// (or decide per principal), and the report must follow it.
	if g := res.gatewayURL; g != "" {
		if eras, err := b.upstreamEras(ctx, g, ""); err != nil {
			b.logf("SDK upstreams: reading the eras mcpgw spoke: %v", err)
		} else {
			res.chosen = eras.strings()
		}
	}
	res.fullChosen = b.fullChosen(ctx, res, fronts)
	if b.opts.liveProfile {
		b.upstreamProfiles(ctx, res, fronts)
		b.sdkFullProfile(ctx, res, fronts)
	}
	return res
}

// sdkFullProfile takes mcpgw-full's live profile in front of the server
// marked full when it missed its calls/s or gateway-CPU target there.
func (b *bencher) sdkFullProfile(ctx context.Context, res *sdkResults, fronts map[string]*sdkFront) {
	missedHere := false
	gs := sdkFullGoals(res)
	for i := range gs {
		missedHere = missedHere || (gs[i].ok == missed && gs[i].gatewayCost)
	}
	for _, u := range res.ups {
		ep, ok := fronts[u.name].eps[targetFull]
		if !ok || !missedHere {
			continue
		}
		lp := &liveProfile{target: targetFull, sc: liveScenario(), where: "from its pprof endpoint, like the main rounds' profiles"}
		lp.seconds, lp.load = b.liveProfileSeconds()
		tok, err := b.mintAdminToken(ctx)
		if err != nil {
			lp.err = "minting a token with the admin scope: " + err.Error()
			res.fullProfile = lp
			return
		}
		b.logf("SDK upstreams: live profile of mcpgw-full in front of the %s server for %ds", u.key, lp.seconds)
		b.profileUnderLoad(ctx, lp, ep, profileSource{
			url:   strings.TrimSuffix(ep.url, "/mcp") + "/admin/v1/debug/pprof/profile",
			authz: "Bearer " + tok,
			bin:   filepath.Join(b.dir, "mcpgw"),
			file:  filepath.Join(b.dir, "live-mcpgw-sdk-full.pprof"),
		})
		lp.target = targetFull + " in front of the " + u.key + " server"
		res.fullProfile = lp
		return
	}
}

// fullChosen reads the era mcpgw-full spoke to the server marked full
// from its admin API, with a token that carries the admin scope.
func (b *bencher) fullChosen(ctx context.Context, res *sdkResults, fronts map[string]*sdkFront) string {
	for _, u := range res.ups {
		ep, ok := fronts[u.name].eps[targetFull]
		if !ok {
			continue
		}
		tok, err := b.mintAdminToken(ctx)
		if err != nil {
			return "not read: minting a token with the admin scope: " + firstLine(err.Error())
		}
		eras, err := b.upstreamEras(ctx, ep.url, "Bearer "+tok)
		if err != nil {
			return "not read: " + firstLine(err.Error())
		}
		return eras[upstreamName].String()
	}
	return ""
}

// runSDKServer runs one round (0: the warm-up) of every hop in front of
// server u: the proxy and auto in both client eras, each pinned entry in
// the client era of its pin.
func (b *bencher) runSDKServer(ctx context.Context, res *sdkResults, u *sdkUpstream, f *sdkFront, round int, d time.Duration) {
	for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
		for _, t := range sdkTargets() {
			if _, pinEra, ok := pinnedVersion(t); ok && pinEra != era {
				continue
			}
			if ep, ok := f.eps[t]; ok && u.hasHop(t) {
				ep.up, ep.stats = f.up, f.stats
				b.runSDKCell(ctx, res.cell(u.key, t, era), round, u.key, era, t, ep, d)
			}
		}
	}
}

// upstreamProfiles takes, from its own pprof endpoint, a CPU profile of
// each server that mcpgw (auto) cost more than the proxy did, under load
// through mcpgw in the client era where the ratio was worst.
func (b *bencher) upstreamProfiles(ctx context.Context, res *sdkResults, fronts map[string]*sdkFront) {
	for _, u := range res.ups {
		era, worst, ok := res.worstEra(u.key)
		f := fronts[u.name]
		ep, running := f.eps[targetGateway]
		if !ok || worst <= 1 || !running || f.up.exited() {
			continue
		}
		ep.up, ep.stats = f.up, f.stats
		lp := &liveProfile{
			target: "the " + u.key + " server", sc: scenario{key: "live-profile-sdk", era: era, method: loadgen.MethodCall, conc: sdkConcurrency},
			where: "through mcpgw with `auto`, from the server's own pprof endpoint; sorted by cumulative time",
		}
		lp.seconds, lp.load = b.liveProfileSeconds()
		b.logf("SDK upstreams: profile of the %s server through mcpgw, %s c=%d, for %ds", u.key, era, sdkConcurrency, lp.seconds)
		b.profileUnderLoad(ctx, lp, ep, profileSource{
			url:  strings.TrimSuffix(f.url, "/mcp") + "/debug/pprof/profile",
			bin:  filepath.Join(b.dir, "sdkupstream"),
			file: filepath.Join(b.dir, "live-sdkupstream-"+u.name+".pprof"),
			cum:  true,
		})
		if lp.err != "" {
			b.logf("SDK upstreams: profile of the %s server: %s", u.key, firstLine(lp.err))
		}
		res.profiles[u.key] = lp
	}
}

// worstEra is the client era in which mcpgw (auto) cost server up the
// most over the proxy, and that ratio; ok is false when no era was
// measured on both hops.
func (r *sdkResults) worstEra(up string) (era string, worst float64, ok bool) {
	for _, e := range []string{loadgen.Era2025, loadgen.Era2026} {
		x := r.row(up, targetGateway, e)
		base, _ := r.proxyBase(up, e)
		if x.status != "" || base.status != "" || math.IsNaN(x.upCPU) || math.IsNaN(base.upCPU) || base.upCPU == 0 {
			continue
		}
		if q := x.upCPU / base.upCPU; !ok || q > worst {
			era, worst, ok = e, q, true
		}
	}
	return era, worst, ok
}

// startSDK starts the SDK upstreams and their hops, appending what stops
// them to stops, and reads the eras mcpgw chose into res.
func (b *bencher) startSDK(ctx context.Context, res *sdkResults, stops *[]func()) (map[string]*sdkFront, error) {
	fronts := map[string]*sdkFront{}
	urls := map[string]string{}
	for _, u := range res.ups {
		argv := b.pin.command(b.pin.upstream, filepath.Join(b.dir, "sdkupstream"), "-listen", "127.0.0.1:0", "-lib", u.lib)
		if u.stateless {
			argv = append(argv, "-stateless")
		}
		p, url, err := startProc(ctx, "sdkupstream-"+u.name, b.dir, argv, false, prefixed("MCP_URL="))
		if err != nil {
			return nil, fmt.Errorf("the %s upstream did not start: %w", u.key, err)
		}
		*stops = append(*stops, p.stop)
		pp, purl, err := b.startProxyTo(ctx, "proxy-"+u.name, url)
		if err != nil {
			return nil, fmt.Errorf("the proxy in front of %s did not start: %w", u.key, err)
		}
		*stops = append(*stops, pp.stop)
		urls[u.name] = url
		f := &sdkFront{up: p, url: url, stats: newStatsClient(url), eps: map[string]endpoint{targetProxy: {url: purl, tool: "echo", hop: pp}}}
		if _, err := f.stats.get(ctx); err != nil { // Opens the stats connection.
			return nil, err
		}
		fronts[u.name] = f
	}
	if b.rep.gatewayErr != "" {
		return fronts, nil
	}
	g, gurl, err := b.startGateway(ctx, "mcpgw-sdk", sdkGatewayConfig(res.ups, urls, b.auditPath("mcpgw-sdk")))
	if err != nil {
		return nil, fmt.Errorf("mcpgw in front of the SDK upstreams did not start: %w", err)
	}
	*stops = append(*stops, g.stop)
	res.gatewayURL = gurl
	for _, u := range res.ups {
		if !u.full {
			continue
		}
		fp, furl, err := b.startFullGatewayTo(ctx, "mcpgw-sdk-full", urls[u.name])
		if err != nil {
			return nil, fmt.Errorf("mcpgw with everything on in front of %s did not start: %w", u.key, err)
		}
		*stops = append(*stops, fp.stop)
		fronts[u.name].eps[targetFull] = endpoint{url: furl, tool: upstreamName + "__echo", hop: fp, authz: "Bearer " + b.issuer.token}
	}
	// /readyz waits for the auto entries (required); the pinned ones are
	// optional, so wait a little for them to list, then read every era.
	eras := b.waitListed(ctx, gurl, 5*time.Second)
	res.chosen = eras.strings()
	for _, u := range res.ups {
		fronts[u.name].eps[targetGateway] = endpoint{url: gurl, tool: u.name + "__echo", hop: g}
		for _, t := range []string{targetPinned2025, targetPinned2026} {
			name := pinnedName(u.name, t)
			if st, ok := eras[name]; ok && !st.Loaded {
				// Not listed: every call would be refused as an unknown
				// tool. The row says why instead of measuring a refusal.
				_, era, _ := pinnedVersion(t)
				res.cell(u.key, t, era).unsupported = "not served: mcpgw could not list it pinned to this era" + st.problem()
				continue
			}
			fronts[u.name].eps[t] = endpoint{url: gurl, tool: name + "__echo", hop: g}
		}
	}
	return fronts, nil
}

// runSDKCell runs one load against ep and records it in c (round 0, the
// warm-up, keeps only failures). A hop that refuses the client's era
// before the window opens (go-sdk's stateful server behind the proxy, for
// 2026-07-28) marks the cell unsupported.
func (b *bencher) runSDKCell(ctx context.Context, c *cell, round int, up, era, t string, ep endpoint, d time.Duration) {
	if c.unsupported != "" {
		return
	}
	s := scenario{key: "sdk", era: era, method: loadgen.MethodCall, conc: sdkConcurrency}
	smp, started, err := b.load(ctx, s, ep, d, nil)
	label := fmt.Sprintf("round %d", round)
	if round == 0 {
		label = "warm-up"
	}
	if err != nil {
		if !started {
			c.unsupported = "not served: " + firstLine(err.Error())
			if strings.Contains(err.Error(), strconv.Itoa(mcpwire.CodeUnsupportedVersion)) {
				c.unsupported = "not served: the server does not speak " + mcpwire.Version20260728
			}
			c.failures = nil
			b.logf("%-8s %-18s %-5s %-6s %s", label, up, era, t, c.unsupported)
			return
		}
		c.failures = append(c.failures, label+": "+err.Error())
		b.logf("%-8s %-18s %-5s %-6s FAILED: %v", label, up, era, t, err)
		return
	}
	smp.round = round
	b.logf("%-8s %-18s %-5s %-6s %8.0f ops/s  hop CPU %5.0f µs/op  upstream CPU %5.0f µs/op",
		label, up, era, t, smp.res.CallsPerSec, ticksToMicros(smp.hopTicks)/float64(max(smp.ops(), 1)), ticksToMicros(smp.upTicks)/float64(max(smp.ops(), 1)))
	if round > 0 {
		c.samples = append(c.samples, smp)
	}
}

// upstreamEra is one upstream as GET /admin/v1/upstreams reports it.
type upstreamEra struct {
	Name            string   `json:"name"`
	Loaded          bool     `json:"loaded"`
	ProtocolVersion string   `json:"protocol_version"`
	Era             string   `json:"era"`
	Problems        []string `json:"problems"`
}

// String is "protocol_version era", or "" before the first listing.
func (u upstreamEra) String() string {
	if u.ProtocolVersion == "" {
		return ""
	}
	return strings.TrimSpace(u.ProtocolVersion + " " + u.Era)
}

// problem is the first problem the gateway reports, as ": …", or "".
func (u *upstreamEra) problem() string {
	if len(u.Problems) == 0 {
		return ""
	}
	return ": " + u.Problems[0]
}

// upstreamEras is every upstream of a gateway, by name.
type upstreamEras map[string]upstreamEra

func (e upstreamEras) strings() map[string]string {
	out := make(map[string]string, len(e))
	for name, u := range e {
		out[name] = u.String()
	}
	return out
}

// upstreamEras reads, from the gateway's admin API, the era it speaks to
// each upstream. authz is the Authorization value ("" when the gateway has
// no auth; its admin API then answers loopback only).
func (b *bencher) upstreamEras(ctx context.Context, mcpURL, authz string) (upstreamEras, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(mcpURL, "/mcp") + "/admin/v1/upstreams"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: HTTP %d", url, resp.StatusCode)
	}
	var body struct {
		Upstreams []upstreamEra `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	out := upstreamEras{}
	for _, u := range body.Upstreams {
		out[u.Name] = u
	}
	return out, nil
}

// waitListed polls the gateway's upstreams until every one has listed its
// catalog once, or for at most wait, and returns the last reading.
func (b *bencher) waitListed(ctx context.Context, mcpURL string, wait time.Duration) upstreamEras {
	deadline := time.Now().Add(wait)
	for {
		eras, err := b.upstreamEras(ctx, mcpURL, "")
		all := err == nil
		for _, u := range eras {
			all = all && u.Loaded
		}
		if all || time.Now().After(deadline) || ctx.Err() != nil {
			if err != nil {
				b.logf("SDK upstreams: reading the eras mcpgw chose: %v", err)
			}
			return eras
		}
		sleep(ctx, 200*time.Millisecond)
	}
}

// sdkRow is a cell's medians.
type sdkRow struct {
	status           string
	callsPerSec, p50 float64
	hopCPU, upCPU    float64
	upReqPerOp       float64
	connsPerOp       float64
}

func (r *sdkResults) row(up, target, era string) sdkRow {
	c := r.cell(up, target, era)
	var out sdkRow
	switch {
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
	out.hopCPU = per(func(s *sample) float64 { return ticksToMicros(s.hopTicks) / float64(s.ops()) })
	out.upCPU = per(func(s *sample) float64 { return ticksToMicros(s.upTicks) / float64(s.ops()) })
	out.upReqPerOp = per(func(s *sample) float64 { return float64(s.up.Requests) / float64(s.ops()) })
	out.connsPerOp = per(func(s *sample) float64 { return float64(s.up.Conns) / float64(s.ops()) })
	return out
}

// failures lists what went wrong, for the report's failures section.
func (r *sdkResults) failures() []string {
	if r == nil {
		return nil
	}
	var out []string
	if r.err != "" {
		out = append(out, "SDK upstreams: "+r.err)
	}
	for _, u := range r.ups {
		for _, t := range sdkTargets() {
			for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
				for _, f := range r.cell(u.key, t, era).failures {
					out = append(out, fmt.Sprintf("SDK upstreams, %s, %s, era %s: %s", u.key, t, era, f))
				}
			}
		}
	}
	return out
}

// ratio formats a/b as "0.00×", or "—".
func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// sdkServerName names the library and mode of a server.
func sdkServerName(u *sdkUpstream) string {
	lib := "mark3labs/mcp-go v1.2.1"
	if u.lib == "go-sdk" {
		lib = "go-sdk v1.8.0"
	}
	if u.stateless {
		return lib + ", stateless"
	}
	return lib
}

// sdkUpstreamGoals is the upstream-CPU goal for each real server: through
// mcpgw (auto) against behind the proxy, in each client era.
func (r *report) sdkUpstreamGoals() []goal {
	res := r.sdk
	if res == nil || res.err != "" {
		return nil
	}
	var gs []goal
	for _, u := range res.ups {
		chosen := res.chosen[u.name]
		if chosen == "" {
			chosen = "not read"
		}
		g := goal{name: fmt.Sprintf("upstream CPU per call, %s server, routing only (auto chose %s)", u.key, chosen), want: "≤ 1.0× behind the proxy"}
		var parts []string
		ok, judged := true, false
		for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
			x := res.row(u.key, targetGateway, era)
			base, baseEra := res.proxyBase(u.key, era)
			if x.status != "" || base.status != "" || math.IsNaN(x.upCPU) || math.IsNaN(base.upCPU) || base.upCPU == 0 {
				continue
			}
			vs := ""
			if baseEra != era {
				vs = " (" + sdkEraName(baseEra) + ", the era it serves)"
			}
			parts = append(parts, fmt.Sprintf("%s clients: %s µs, proxy %s µs%s → %s", sdkEraName(era), num(x.upCPU, 1), num(base.upCPU, 1), vs, ratio(x.upCPU, base.upCPU)))
			judged = true
			ok = ok && x.upCPU <= base.upCPU
		}
		if !judged {
			g.measured, g.ok = "—", "not measured"
		} else {
			g.measured, g.ok = strings.Join(parts, "; "), judge(ok)
		}
		g.cost = fmt.Sprintf("In the server, not in mcpgw: the era mcpgw speaks decides what a call costs the server; see *Why auto picks what it picks* for %s.", u.key)
		g.extraProfile = res.profiles[u.key]
		gs = append(gs, g)
	}
	return gs
}

// sdkFullGoals are issue 15's ratio targets for everything on, measured
// on the setup of the first table: mcpgw-full (auto) in front of
// the mcp-go server, against the proxy in front of it, c=16, each row
// over both client eras.
func (r *report) sdkFullGoals() []goal { return sdkFullGoals(r.sdk) }

func sdkFullGoals(res *sdkResults) []goal {
	if res == nil || res.err != "" {
		return nil
	}
	specs := []struct {
		name, want, unit string
		limit            float64
		atMost, upstream bool
		f                func(sdkRow) float64
	}{
		{name: "calls/s", want: "≥ 1.2× proxy", unit: "/s", limit: 1.2, f: func(x sdkRow) float64 { return x.callsPerSec }},
		{name: "gateway CPU per call", want: "≤ 0.8× proxy", unit: "µs", limit: 0.8, atMost: true, f: func(x sdkRow) float64 { return x.hopCPU }},
		{name: "upstream CPU per call", want: "≤ 1.0× behind the proxy", unit: "µs", limit: 1.0, atMost: true, upstream: true, f: func(x sdkRow) float64 { return x.upCPU }},
	}
	var gs []goal
	for _, u := range res.ups {
		if !u.full {
			continue
		}
		for _, sp := range specs {
			g := goal{name: fmt.Sprintf("%s, everything on, in front of the %s server (auto chose %s, c=%d)", sp.name, u.key, res.fullChosen, sdkConcurrency), want: sp.want}
			var parts []string
			ok, judged := true, false
			for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
				x := res.row(u.key, targetFull, era)
				base, _ := res.proxyBase(u.key, era)
				a, b := sp.f(x), sp.f(base)
				if x.status != "" || base.status != "" || math.IsNaN(a) || math.IsNaN(b) || b == 0 {
					continue
				}
				parts = append(parts, fmt.Sprintf("%s clients: %s %s, proxy %s %s → %s", sdkEraName(era), num(a, 1), sp.unit, num(b, 1), sp.unit, ratio(a, b)))
				judged = true
				if sp.atMost {
					ok = ok && a <= sp.limit*b
				} else {
					ok = ok && a >= sp.limit*b
				}
			}
			if !judged {
				g.measured, g.ok = "—", "not measured"
			} else {
				g.measured, g.ok = strings.Join(parts, "; "), judge(ok)
			}
			if sp.upstream {
				g.cost = fmt.Sprintf("In the server, not in mcpgw; see *Why auto picks what it picks* for %s.", u.key)
				g.extraProfile = res.profiles[u.key]
			} else {
				g.extraProfile, g.gatewayCost = res.fullProfile, true
			}
			gs = append(gs, g)
		}
	}
	return gs
}

// proxyBase is the proxy row a hop's upstream CPU is compared with: the
// same client era, or the other one where the proxy cannot serve it.
func (r *sdkResults) proxyBase(up, era string) (sdkRow, string) {
	base := r.row(up, targetProxy, era)
	if base.status == "" {
		return base, era
	}
	other := loadgen.Era2025
	if era == loadgen.Era2025 {
		other = loadgen.Era2026
	}
	return r.row(up, targetProxy, other), other
}

// sdkMarkdown writes the section.
func (r *report) sdkMarkdown(p func(string, ...any)) {
	p("## What mcpgw costs the servers behind it")
	p("")
	res := r.sdk
	if res == nil {
		p("Not measured (`-upstream-libs=false`).")
		p("")
		return
	}
	p("`tools/call echo` at concurrency %d on servers built with the two MCP libraries mcpgw meets most (bench/sdkupstream: mark3labs/mcp-go v1.2.1 and the official go-sdk v1.8.0), each with and without sessions, behind the bare proxy and behind one mcpgw (routing only) that reaches every server three times: through an upstream entry left to `protocol_version: %s`, one pinned to %s and one pinned to %s (optional, so a server that does not speak the pinned era cannot keep the gateway from starting). %d round(s) of %s, interleaved, medians. *upstream CPU* is the server's CPU per call, *gateway CPU* the proxy's or mcpgw's.",
		sdkConcurrency, autoVersion, mcpwire.Version20251125, mcpwire.Version20260728, res.rounds, r.opts.sdkDuration)
	p("")
	if res.err != "" {
		p("Not measured: %s", cellText(res.err))
		p("")
		return
	}
	res.ruleMarkdown(p)
	res.hopsMarkdown(p)
}

// ruleMarkdown writes the comparison that justifies auto's rule: for each
// server, what each era costs it and the gateway behind the proxy and
// behind mcpgw pinned to that era, then the era auto picked and why.
func (r *sdkResults) ruleMarkdown(p func(string, ...any)) {
	p("### Why `auto` picks what it picks")
	p("")
	p("For each server, both eras: behind the bare proxy (which passes the client's era through, so the server serves that era) and behind mcpgw pinned to that era (the load generator speaks the same era to mcpgw). *vs proxy* is the row's upstream CPU over the server's behind the proxy in the same era (where the proxy cannot serve the era: its other era). Then mcpgw with `auto`, in each client era, and the era it picked, as mcpgw reported it.")
	p("")
	p("| server | offers | hop | era the server serves | calls/s | upstream CPU µs/call | vs proxy | gateway CPU µs/call | upstream + gateway µs/call |")
	p("|---|---|---|---|---:|---:|---:|---:|---:|")
	for _, u := range r.ups {
		type line struct{ t, era, serves string }
		lines := []line{
			{targetProxy, loadgen.Era2025, mcpwire.Version20251125},
			{targetProxy, loadgen.Era2026, mcpwire.Version20260728},
			{targetPinned2025, loadgen.Era2025, mcpwire.Version20251125},
			{targetPinned2026, loadgen.Era2026, mcpwire.Version20260728},
		}
		chosen := r.chosen[u.name]
		for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
			serves := "auto: " + chosen
			if chosen == "" {
				serves = "auto: not read"
			}
			lines = append(lines, line{targetGateway, era, serves})
		}
		if u.full {
			for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
				lines = append(lines, line{targetFull, era, "auto: " + r.fullChosen})
			}
		}
		for _, l := range lines {
			x := r.row(u.key, l.t, l.era)
			hop := hopLabel(l.t)
			if l.t == targetProxy || l.t == targetGateway || l.t == targetFull {
				hop += ", " + sdkEraName(l.era) + " clients"
			}
			if x.status != "" {
				p("| %s | %s | %s | %s | %s | | | | |", u.key, u.offers, hop, l.serves, cellText(shortStatus(x.status)))
				continue
			}
			vs := "—"
			if l.t != targetProxy {
				base, _ := r.proxyBase(u.key, l.era)
				vs = ratio(x.upCPU, base.upCPU)
			}
			p("| %s | %s | %s | %s | %s | %s | %s | %s | %s |", u.key, u.offers, hop, cellText(l.serves), num(x.callsPerSec, 0), num(x.upCPU, 1), vs,
				num(x.hopCPU, 1), num(x.upCPU+x.hopCPU, 1))
		}
	}
	p("")
	for _, u := range r.ups {
		p("- %s", r.verdict(&u))
	}
	p("")
}

// verdict says which era auto picked for server u and why, from this
// run's numbers: what the server spent per call through mcpgw pinned to
// each era.
func (r *sdkResults) verdict(u *sdkUpstream) string {
	chosen := r.chosen[u.name]
	head := fmt.Sprintf("**%s** (%s): ", u.key, sdkServerName(u))
	if chosen == "" {
		return head + "mcpgw did not report the era it chose."
	}
	// The pinned hop of the picked era's group, and of the other one.
	mineT, altT, other := targetPinned2025, targetPinned2026, mcpwire.Version20260728
	if v, _, _ := strings.Cut(chosen, " "); v == mcpwire.Version20260728 {
		mineT, altT, other = targetPinned2026, targetPinned2025, mcpwire.Version20251125
	}
	pinnedRow := func(t string) sdkRow {
		_, era, _ := pinnedVersion(t)
		return r.row(u.key, t, era)
	}
	mine, alt := pinnedRow(mineT), pinnedRow(altT)
	picked, _, _ := pinnedVersion(mineT)
	head += fmt.Sprintf("`auto` picks **%s**", chosen)
	switch {
	case mine.status == "" && alt.status != "":
		return head + fmt.Sprintf(" because it is the one era of the two the server serves through mcpgw (pinned to %s: %s).", other, shortStatus(alt.status))
	case mine.status != "" || math.IsNaN(mine.upCPU) || math.IsNaN(alt.upCPU):
		return head + "; this run has no pinned measurement to compare it with."
	case mine.upCPU <= alt.upCPU:
		return head + fmt.Sprintf(" because it costs the server less: %s µs of its CPU per call against %s µs pinned to %s (%s the cost); mcpgw's own CPU per call is %s µs against %s µs.",
			num(mine.upCPU, 1), num(alt.upCPU, 1), other, ratio(mine.upCPU, alt.upCPU), num(mine.hopCPU, 1), num(alt.hopCPU, 1))
	default:
		return head + fmt.Sprintf(", although %s costs the server less: %s µs of its CPU per call against %s µs for %s, which costs it %s as much; mcpgw's own CPU per call is %s µs against %s µs. In this run the rule does not pick the era this server serves cheapest.",
			other, num(alt.upCPU, 1), num(mine.upCPU, 1), picked, ratio(mine.upCPU, alt.upCPU), num(alt.hopCPU, 1), num(mine.hopCPU, 1))
	}
}

// sdkEraName names the version a client era speaks.
func sdkEraName(era string) string {
	if era == loadgen.Era2026 {
		return mcpwire.Version20260728
	}
	return mcpwire.Version20251125
}

// hopsMarkdown writes every server, client era and hop.
func (r *sdkResults) hopsMarkdown(p func(string, ...any)) {
	eraName := sdkEraName
	p("### Every client era through each hop")
	p("")
	p("*upstream CPU vs proxy* is the server's CPU per call through mcpgw over the same server's behind the proxy for the same client era (the target is ≤ 1.00×); where the proxy cannot serve that era, against the proxy's other era.")
	p("")
	p("| server | client era | hop | calls/s | p50 µs | hop CPU µs/call | upstream CPU µs/call | upstream CPU vs proxy | upstream requests/call | upstream conns/call |")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, u := range r.ups {
		for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
			for _, t := range sdkTargets() {
				if _, pinEra, ok := pinnedVersion(t); (ok && pinEra != era) || !u.hasHop(t) {
					continue
				}
				x := r.row(u.key, t, era)
				if x.status != "" {
					p("| %s | %s | %s | %s | | | | | | |", u.key, eraName(era), hopLabel(t), cellText(shortStatus(x.status)))
					continue
				}
				vs := "—"
				if t != targetProxy {
					base, _ := r.proxyBase(u.key, era)
					vs = ratio(x.upCPU, base.upCPU)
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", u.key, eraName(era), hopLabel(t),
					num(x.callsPerSec, 0), num(x.p50, 0), num(x.hopCPU, 1), num(x.upCPU, 1), vs, num(x.upReqPerOp, 2), num(x.connsPerOp, 4))
			}
		}
	}
	p("")
}
