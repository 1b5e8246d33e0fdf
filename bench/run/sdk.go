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
// auto's rule rests on.

// sdkUpstream is one real MCP server of the comparison.
type sdkUpstream struct {
	key       string // row label
	lib       string // -lib of bench/sdkupstream
	stateless bool
	name      string // upstream name in the gateway's configuration
	// what the server offers, as the report states it
	offers string
}

func sdkUpstreams() []sdkUpstream {
	return []sdkUpstream{
		{key: "mcp-go", lib: "mcp-go", name: "mcpgo", offers: "both eras; session ids"},
		{key: "mcp-go stateless", lib: "mcp-go", stateless: true, name: "mcpgo_sl", offers: "both eras; no session ids (`WithStateLess`)"},
		{key: "go-sdk", lib: "go-sdk", name: "gosdk", offers: "2025 era only; session ids"},
		{key: "go-sdk stateless", lib: "go-sdk", stateless: true, name: "gosdk_sl", offers: "both eras; no session ids (`Stateless`)"},
	}
}

// sdkTargets are the hops in front of each SDK upstream, in run order.
func sdkTargets() []string { return []string{targetProxy, targetGateway} }

// sdkConcurrency is the one load shape of the comparison.
const sdkConcurrency = 16

// sdkResults is what the comparison measured.
type sdkResults struct {
	ups []sdkUpstream
	// chosen is the era mcpgw's auto picked per upstream name, as
	// /admin/v1/upstreams reports it ("protocol_version era").
	chosen map[string]string
	cells  map[string]*cell // by sdkKey
	rounds int
	err    string // the comparison could not run
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
// upstream, each left to protocol_version auto.
func sdkGatewayConfig(ups []sdkUpstream, urls map[string]string, auditPath string) string {
	var b strings.Builder
	b.WriteString("# Written by bench/run.\nserver: {listen: 127.0.0.1:0}\nupstreams:\n")
	for _, u := range ups {
		fmt.Fprintf(&b, "  - name: %s\n    http: {url: %q, max_idle_conns: 256}\n    protocol_version: auto\n", u.name, urls[u.name])
	}
	fmt.Fprintf(&b, "audit:\n  sinks:\n    - {type: file, path: %q}\n", auditPath)
	return b.String()
}

// sdkFront is one SDK upstream and the hops in front of it.
type sdkFront struct {
	up    *proc
	stats *statsClient
	eps   map[string]endpoint
}

// runSDK starts the SDK upstreams, a proxy in front of each and one mcpgw
// in front of all, and runs tools/call echo at concurrency 16 in both
// client eras against each, interleaved, for rounds rounds.
func (b *bencher) runSDK(ctx context.Context, rounds int) *sdkResults {
	res := &sdkResults{ups: sdkUpstreams(), chosen: map[string]string{}, cells: map[string]*cell{}, rounds: rounds}
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
			f := fronts[u.name]
			for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
				for _, t := range sdkTargets() {
					if ep, ok := f.eps[t]; ok {
						ep.up, ep.stats = f.up, f.stats
						b.runSDKCell(ctx, res.cell(u.key, t, era), round, u.key, era, t, ep, d)
					}
				}
			}
		}
	}
	if b.opts.warmup > 0 {
		b.logf("SDK upstreams: warm-up of every run for %s", b.opts.warmup)
		run(0, b.opts.warmup)
	}
	for round := 1; round <= rounds && ctx.Err() == nil; round++ {
		run(round, b.opts.duration)
	}
	return res
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
		f := &sdkFront{up: p, stats: newStatsClient(url), eps: map[string]endpoint{targetProxy: {url: purl, tool: "echo", hop: pp}}}
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
	res.chosen = b.chosenEras(ctx, gurl)
	for _, u := range res.ups {
		fronts[u.name].eps[targetGateway] = endpoint{url: gurl, tool: u.name + "__echo", hop: g}
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

// chosenEras reads the era mcpgw picked for each upstream from its admin
// API (loopback, no auth in this configuration).
func (b *bencher) chosenEras(ctx context.Context, mcpURL string) map[string]string {
	out := map[string]string{}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	url := strings.TrimSuffix(mcpURL, "/mcp") + "/admin/v1/upstreams"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out
	}
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		b.logf("SDK upstreams: reading the eras mcpgw chose: %v", err)
		return out
	}
	defer resp.Body.Close()
	var body struct {
		Upstreams []struct {
			Name            string `json:"name"`
			ProtocolVersion string `json:"protocol_version"`
			Era             string `json:"era"`
		} `json:"upstreams"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		b.logf("SDK upstreams: reading the eras mcpgw chose: %v", err)
		return out
	}
	for _, u := range body.Upstreams {
		out[u.Name] = u.ProtocolVersion + " " + u.Era
	}
	return out
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

// sdkMarkdown writes the section.
func (r *report) sdkMarkdown(p func(string, ...any)) {
	p("## What mcpgw costs the servers behind it")
	p("")
	if r.benchEra != "" {
		p("In the tables above, mcpgw's `protocol_version: auto` spoke **%s** to the fast upstream (bench/upstream, which offers both eras and issues session ids).", r.benchEra)
		p("")
	}
	res := r.sdk
	if res == nil {
		p("Not measured (`-upstream-libs=false`).")
		p("")
		return
	}
	p("`tools/call echo` at concurrency %d on servers built with the two MCP libraries mcpgw meets most (bench/sdkupstream: mark3labs/mcp-go v1.2.1 and the official go-sdk v1.8.0), each behind the bare proxy and behind mcpgw (routing only, `protocol_version: auto`); %d round(s) of %s, interleaved, medians. *upstream CPU* is the server's CPU per call, *hop CPU* the proxy's or mcpgw's. Behind the proxy a server answers the client's own era, so those rows show what each era costs it.",
		sdkConcurrency, res.rounds, r.opts.duration)
	p("")
	if res.err != "" {
		p("Not measured: %s", cellText(res.err))
		p("")
		return
	}
	eraName := sdkEraName
	p("### The era each server serves cheapest (behind the bare proxy)")
	p("")
	p("| server | offers | upstream CPU µs/call, %s | upstream CPU µs/call, %s | 2026-07-28 ÷ 2025 | mcpgw auto chose |", eraName(loadgen.Era2025), eraName(loadgen.Era2026))
	p("|---|---|---:|---:|---:|---|")
	for _, u := range res.ups {
		a, z := res.row(u.key, targetProxy, loadgen.Era2025), res.row(u.key, targetProxy, loadgen.Era2026)
		cellOr := func(x sdkRow) string {
			if x.status != "" {
				return cellText(shortStatus(x.status))
			}
			return num(x.upCPU, 0)
		}
		chosen := res.chosen[u.name]
		if chosen == "" {
			chosen = "—"
		}
		p("| %s | %s | %s | %s | %s | %s |", u.key, u.offers, cellOr(a), cellOr(z), ratio(z.upCPU, a.upCPU), chosen)
	}
	p("")
	res.hopsMarkdown(p)
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
				x := r.row(u.key, t, era)
				if x.status != "" {
					p("| %s | %s | %s | %s | | | | | | |", u.key, eraName(era), t, cellText(shortStatus(x.status)))
					continue
				}
				vs := "—"
				if t == targetGateway {
					base := r.row(u.key, targetProxy, era)
					if base.status != "" {
						other := loadgen.Era2025
						if era == loadgen.Era2025 {
							other = loadgen.Era2026
						}
						base = r.row(u.key, targetProxy, other)
					}
					vs = ratio(x.upCPU, base.upCPU)
				}
				p("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |", u.key, eraName(era), t,
					num(x.callsPerSec, 0), num(x.p50, 0), num(x.hopCPU, 1), num(x.upCPU, 1), vs, num(x.upReqPerOp, 2), num(x.connsPerOp, 4))
			}
		}
	}
	p("")
}
