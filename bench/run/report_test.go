package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/bench/loadgen"
)

// render runs a report section into a string.
func render(f func(p func(string, ...any))) string {
	var b strings.Builder
	f(func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) })
	return b.String()
}

// pprofTop is a `go tool pprof -top` listing with n functions.
func pprofTop(n int) string {
	var b strings.Builder
	b.WriteString("File: mcpgw\nType: cpu\nShowing nodes accounting for 3s, 100% of 3s total\n      flat  flat%   sum%        cum   cum%\n")
	for i := range n {
		fmt.Fprintf(&b, "     0.10s  3.00%% %d.00%%      0.10s  3.00%%  pkg.fn%02d\n", 3*(i+1), i)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func TestTopLines(t *testing.T) {
	t.Parallel()

	top := topLines(pprofTop(30), 15)
	assert.Contains(t, top, "Type: cpu", "the header stays")
	assert.Contains(t, top, "pkg.fn14")
	assert.NotContains(t, top, "pkg.fn15")
	assert.Equal(t, pprofTop(3), topLines(pprofTop(3), 15), "a short listing is kept whole")
}

// TestMissedMarkdown checks that every missed target is named as missed
// and followed by the top of the live profile of the gateway it was
// measured on, under the load it was measured under; met targets are not
// listed, and a missing profile says why.
func TestMissedMarkdown(t *testing.T) {
	t.Parallel()

	sdkFull := &liveProfile{target: "mcpgw-full in front of the mcp-go server", sc: liveScenario(), top: strings.ReplaceAll(pprofTop(30), "pkg.fn", "sdkfull.fn"), shares: parseShares("")}
	r := &report{live: []liveProfile{
		{target: targetGateway, sc: liveScenario(), top: strings.ReplaceAll(pprofTop(30), "pkg.fn", "routing.fn"), shares: parseShares("")},
		{target: targetFull, sc: liveScenario(), top: strings.ReplaceAll(pprofTop(30), "pkg.fn", "full.fn"), shares: parseShares("")},
		{target: targetFull, sc: liveListScenario(), top: strings.ReplaceAll(pprofTop(30), "pkg.fn", "list.fn"), shares: parseShares("")},
	}}
	gs := []goal{
		{name: "calls/s, everything on", want: "≥ 1.2× proxy", measured: "1.05×", ok: missed, profile: targetFull},
		{name: "gateway CPU per call, routing only", want: "≤ 0.6× proxy", measured: "0.84×", ok: missed, profile: targetGateway},
		{name: "gateway CPU per call, everything on", want: "≤ 0.8× proxy", measured: "0.70×", ok: met, profile: targetFull},
		{name: "tools/list", want: "p50 ≤ 1 ms", measured: "p50 1100 µs", ok: missed, profile: targetFull, profileMethod: loadgen.MethodList},
		{
			name: "upstream CPU per call, mcp-go server", want: "≤ 1.0×", measured: "1.84×", ok: missed, cost: "In the server, not in mcpgw.",
			extraProfile: &liveProfile{
				target: "the mcp-go server", sc: scenario{era: loadgen.Era2026, method: loadgen.MethodCall, conc: 16},
				where: "through mcpgw with `auto`, from the server's own pprof endpoint",
				top:   strings.ReplaceAll(pprofTop(30), "pkg.fn", "mcpgo.fn"), shares: parseShares(""),
			},
		},
		{name: "allocations", want: "≤ 8 KB", measured: "—", ok: "not measured", profile: targetGateway},
		{name: "calls/s in front of mcp-go", want: "≥ 1.2× proxy", measured: "0.53×", ok: missed, gatewayCost: true, extraProfile: sdkFull},
		{name: "gateway CPU in front of mcp-go", want: "≤ 0.8× proxy", measured: "1.40×", ok: missed, gatewayCost: true, extraProfile: sdkFull},
	}
	md := render(func(p func(string, ...any)) { r.missedMarkdown(p, gs) })
	order := []string{
		"### Missed targets and their remaining cost",
		"**Missed: calls/s, everything on** (goal ≥ 1.2× proxy; measured 1.05×)",
		"live CPU profile of **mcpgw-full**", "2025-11-25 clients, `tools/call echo`, c=16", "full.fn00", "full.fn14",
		"**Missed: gateway CPU per call, routing only**",
		"live CPU profile of **mcpgw**", "routing.fn00",
		"**Missed: tools/list**",
		"live CPU profile of **mcpgw-full**", "`tools/list` of the whole catalog, c=1", "list.fn00",
		"**Missed: upstream CPU per call, mcp-go server**", "Remaining cost: In the server, not in mcpgw.",
		"live CPU profile of **the mcp-go server**", "2026-07-28 clients, `tools/call echo`, c=16; through mcpgw with `auto`, from the server's own pprof endpoint", "mcpgo.fn00",
		"**Missed: calls/s in front of mcp-go**", "live CPU profile of **mcpgw-full in front of the mcp-go server**", "sdkfull.fn00",
		"**Missed: gateway CPU in front of mcp-go**", "Remaining cost: the profile of mcpgw-full in front of the mcp-go server above.",
	}
	at := 0
	for _, want := range order {
		i := strings.Index(md[at:], want)
		if !assert.GreaterOrEqual(t, i, 0, "%q missing or out of order in\n%s", want, md) {
			continue
		}
		at += i + len(want)
	}
	assert.NotContains(t, md, "full.fn15", "the top of the profile, not all of it")
	assert.NotContains(t, md, "gateway CPU per call, everything on", "a met target is not listed")
	assert.NotContains(t, md, "allocations", "an unmeasured target is not called missed")

	assert.Equal(t, 1, strings.Count(md, "sdkfull.fn00"), "a profile shared by two missed targets is shown once")

	// No profile taken: the section says so under the missed target.
	md = render(func(p func(string, ...any)) { (&report{}).missedMarkdown(p, gs[:1]) })
	assert.Contains(t, md, "**Missed: calls/s, everything on**")
	assert.Contains(t, md, "no live profile of it under `call` was taken in this run")
	noProfile := goal{name: "calls/s in front of mcp-go", ok: missed, gatewayCost: true}
	md = render(func(p func(string, ...any)) { (&report{}).missedMarkdown(p, []goal{noProfile}) })
	assert.Contains(t, md, "no live profile of this gateway was taken in this run")

	// Nothing missed.
	md = render(func(p func(string, ...any)) { r.missedMarkdown(p, gs[2:3]) })
	assert.Contains(t, md, "None: every target that was measured is met.")
}

// sdkSample is one run at calls calls with the given CPU ticks (10 ms
// each) of the hop and the upstream.
func sdkSample(calls, hopTicks, upTicks int64) sample {
	return sample{round: 1, res: loadgen.Result{Calls: calls}, hopTicks: hopTicks, upTicks: upTicks}
}

// TestVerdict checks the sentence that says which era auto picked for a
// server and why, against what the pinned hops measured: it follows the
// era the gateway reported, whichever rule produced it.
func TestVerdict(t *testing.T) {
	t.Parallel()

	up := sdkUpstream{key: "mcp-go", lib: "mcp-go", name: "mcpgo"}
	// Pinned to 2025-11-25 the server spends 50 µs a call (1 tick over
	// 200 calls), pinned to 2026-07-28 125 µs (5 ticks over 400 calls).
	cheap2025 := func() *sdkResults {
		res := &sdkResults{ups: []sdkUpstream{up}, chosen: map[string]string{}, cells: map[string]*cell{}}
		res.cell(up.key, targetPinned2025, loadgen.Era2025).samples = []sample{sdkSample(200, 1, 1)}
		res.cell(up.key, targetPinned2026, loadgen.Era2026).samples = []sample{sdkSample(400, 2, 5)}
		return res
	}
	tests := []struct {
		name   string
		chosen string
		mutate func(*sdkResults)
		want   []string
	}{
		{
			name: "the cheaper era", chosen: "2025-11-25 session",
			want: []string{"`auto` picks **2025-11-25 session** because it costs the server less: 50.0 µs of its CPU per call against 125.0 µs pinned to 2026-07-28 (0.40× the cost)"},
		},
		{
			name: "a pooled reading of the same era", chosen: "2025-11-25 pooled",
			want: []string{"`auto` picks **2025-11-25 pooled** because it costs the server less"},
		},
		{
			name: "the dearer era", chosen: "2026-07-28 stateless",
			want: []string{
				"`auto` picks **2026-07-28 stateless**, although 2025-11-25 costs the server less: 50.0 µs", "125.0 µs for 2026-07-28, which costs it 2.50× as much",
				"the rule does not pick the era this server serves cheapest",
			},
		},
		{
			name: "the only era served", chosen: "2025-11-25 session",
			mutate: func(r *sdkResults) {
				c := r.cell(up.key, targetPinned2026, loadgen.Era2026)
				c.samples, c.unsupported = nil, "not served: mcpgw could not list it pinned to this era"
			},
			want: []string{"because it is the one era of the two the server serves through mcpgw (pinned to 2026-07-28: not served"},
		},
		{
			name: "not reported", chosen: "",
			want: []string{"mcpgw did not report the era it chose."},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := cheap2025()
			res.chosen[up.name] = tt.chosen
			if tt.mutate != nil {
				tt.mutate(res)
			}
			got := res.verdict(&up)
			require.True(t, strings.HasPrefix(got, "**mcp-go** (mark3labs/mcp-go v1.2.1): "), got)
			for _, w := range tt.want {
				assert.Contains(t, got, w)
			}
		})
	}
}
