package main

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/bench/loadgen"
)

// TestSmoke runs `bench/run -smoke` end to end against every target: it
// builds mcpgw and the helpers, starts them, runs each scenario once
// briefly, measures idle sessions and kill-switch propagation, and writes
// the report. It checks that every row was produced, never what the
// numbers are. mcpgw that does not build or start fails the test. The
// micro-benchmarks and the live profile are off in a smoke run (each needs
// a build of its own, go tool pprof's included); TestMicroStepsExist checks
// the benchmark names, and TestParseShares and TestRemainingCostMarkdown
// the profile's reading and report.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the whole benchmark briefly; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	out := filepath.Join(t.TempDir(), "BENCHMARKS.md")
	logw := testWriter{t}
	opts, err := parseFlags([]string{"-smoke", "-out", out}, logw, logw)
	require.NoError(t, err)
	require.Equal(t, allTargets(), opts.targets)
	require.False(t, opts.micro)
	require.False(t, opts.liveProfile)

	rep, err := runBench(ctx, &opts)
	require.NoError(t, err)
	require.Empty(t, rep.gatewayErr, "mcpgw must build and start")
	require.Empty(t, rep.fullErr, "mcpgw with everything on must start")

	require.Len(t, rep.scenarios, 3, "each era's tools/call and the 2025 list")
	for _, s := range rep.scenarios {
		for _, target := range opts.targets {
			x := rep.row(s, target)
			c := rep.cell(s, target)
			if isGateway(target) && s.era == loadgen.Era2026 && strings.HasPrefix(x.status, "not supported yet") {
				t.Logf("%s / %s: %s", s.key, target, x.status)
				continue
			}
			if assert.Empty(t, x.status, "%s / %s: %v", s.key, target, c.failures) {
				assert.Len(t, c.samples, 1, "%s / %s", s.key, target)
				assert.Positive(t, c.samples[0].res.Calls, "%s / %s made no calls", s.key, target)
			}
			assert.Empty(t, c.failures, "%s / %s", s.key, target)
			if !isGateway(target) {
				assert.Zero(t, x.errors, "%s / %s answered with errors", s.key, target)
			}
		}
	}

	require.Empty(t, rep.idleErr)
	require.NotNil(t, rep.idle)
	assert.Equal(t, 50, rep.idle.sessions)
	assert.Equal(t, rep.idle.pinged, rep.idle.alive, "idle sessions must still answer")
	assert.Positive(t, rep.fullAuditRecords, "the full target audits every call to its file")

	// Kill-switch propagation needs a redis-server; without one the report
	// says so and the run goes on.
	require.NotNil(t, rep.prop)
	if _, err := exec.LookPath("redis-server"); err != nil {
		assert.Contains(t, rep.prop.skipped, "redis-server")
	} else {
		assert.Empty(t, rep.prop.err)
		assert.Equal(t, 3, rep.prop.trials)
		assert.Len(t, rep.prop.kill, 3)
	}

	assert.Nil(t, rep.micro)
	assert.Empty(t, rep.live)

	// The SDK upstreams: every server behind the proxy and mcpgw (auto) in
	// both client eras, except go-sdk's stateful server behind the proxy in
	// the era it does not speak, and behind mcpgw pinned to each era in the
	// matching client era; a pinned era the server does not serve reads
	// "not served".
	require.NotNil(t, rep.sdk)
	require.Empty(t, rep.sdk.err)
	assert.Empty(t, rep.sdk.failures())
	for _, u := range rep.sdk.ups {
		for _, target := range sdkTargets() {
			for _, era := range []string{loadgen.Era2025, loadgen.Era2026} {
				c := rep.sdk.cell(u.key, target, era)
				if !u.hasHop(target) {
					assert.Empty(t, c.samples, "%s / %s: everything on runs in front of mcp-go only", u.key, target)
					continue
				}
				if _, pinEra, ok := pinnedVersion(target); ok && pinEra != era {
					assert.Empty(t, c.samples, "%s / %s runs in its own era only", u.key, target)
					continue
				}
				if u.key == "go-sdk" && target == targetProxy && era == loadgen.Era2026 {
					assert.Contains(t, c.unsupported, "does not speak 2026-07-28")
					continue
				}
				if u.key == "go-sdk" && target == targetPinned2026 {
					// The stateful go-sdk server serves the 2025 era only;
					// whether mcpgw can bridge is for mcpgw to say.
					if c.unsupported != "" {
						assert.Contains(t, c.unsupported, "not served")
						continue
					}
				}
				if assert.Len(t, c.samples, 1, "%s / %s / %s: %s", u.key, target, era, c.unsupported) {
					assert.Positive(t, c.samples[0].res.Calls, "%s / %s / %s", u.key, target, era)
				}
			}
		}
	}
	// The eras come from the gateways: whatever auto's rule is, each
	// upstream reports one, and a pinned entry that listed reports its pin.
	era := regexp.MustCompile(`^20\d\d-\d\d-\d\d \S+$`)
	for _, u := range rep.sdk.ups {
		assert.Regexp(t, era, rep.sdk.chosen[u.name], "%s: protocol_version auto", u.name)
		for _, target := range []string{targetPinned2025, targetPinned2026} {
			v, _, _ := pinnedVersion(target)
			if got := rep.sdk.chosen[pinnedName(u.name, target)]; got != "" {
				assert.True(t, strings.HasPrefix(got, v+" "), "%s pinned to %s reports %q", u.name, v, got)
			}
		}
	}
	for _, target := range []string{targetGateway, targetFull} {
		assert.Regexp(t, era, rep.benchEras[target], "%s: the era auto spoke to the fast upstream", target)
	}
	assert.Regexp(t, era, rep.sdk.fullChosen, "mcpgw-full in front of mcp-go: the era auto spoke to it")

	path, err := writeReport(rep)
	require.NoError(t, err)
	require.Equal(t, out, path)
	md, err := os.ReadFile(out)
	require.NoError(t, err)
	for _, want := range []string{
		"**Smoke run**", "## Targets", "| 4 | proxy |", "| 4 | mcpgw |", "| 4 | mcpgw-full |", "## Idle sessions",
		"## Kill-switch propagation", "## Micro-benchmarks of the call path", "## Where the remaining cost is", "everything on",
		"Not taken (`-live-profile=false`", "Not run (`-micro=false`)",
		"## What mcpgw costs the servers behind it", "| go-sdk stateless | 2026-07-28 | mcpgw auto |", "| mcp-go | both eras; session ids | mcpgw pinned to 2025-11-25 |",
		"### Why `auto` picks what it picks", "**mcp-go stateless** (mark3labs/mcp-go v1.2.1, stateless): `auto` picks **" + rep.sdk.chosen["mcpgo_sl"] + "**",
		"## The era `auto` chose for each upstream", "| mcpgw-full | bench | bench/upstream (fast, no SDK) | both eras; session ids | " + rep.benchEras[targetFull] + " |",
		"| calls/s, everything on (2025-11-25 clients, c=4: c=16 not run) | ≥ 1.2× proxy |", "| tools/list of the merged 1000-tool catalog, auth on (mcpgw-full, c=1) |",
		"| upstream CPU per call, go-sdk server, routing only (auto chose " + rep.sdk.chosen["gosdk"] + ") |",
		"### Missed targets and their remaining cost",
		"| calls/s, everything on, in front of the mcp-go server (auto chose " + rep.sdk.fullChosen + ", c=16) | ≥ 1.2× proxy |",
		"| mcp-go | both eras; session ids | mcpgw-full auto (everything on), 2026-07-28 clients | auto: " + rep.sdk.fullChosen + " |",
	} {
		assert.Contains(t, string(md), want)
	}
	// The tools/list table has the full target (lists/s, p50, p99).
	assert.Regexp(t, `\n\| mcpgw-full \| \d+ \| \d+ \| \d+ \|`, string(md))
}

// TestMicroStepsExist checks, without building anything, that every
// micro-benchmark the full run reports names a benchmark function in its
// package's test files (a sub-benchmark by its top-level function).
func TestMicroStepsExist(t *testing.T) {
	t.Parallel()

	root, err := moduleRoot(t.Context())
	require.NoError(t, err)
	funcs := map[string]map[string]bool{} // package dir → Benchmark functions
	for _, s := range microSteps() {
		if funcs[s.pkg] == nil {
			funcs[s.pkg] = benchmarkFuncs(t, filepath.Join(root, s.pkg))
		}
		top, _, _ := strings.Cut(s.bench, "/")
		found := funcs[s.pkg][top]
		if s.prefix {
			found = false
			for name := range funcs[s.pkg] {
				found = found || strings.HasPrefix(name, top)
			}
		}
		assert.True(t, found, "micro-benchmark %s (%s): no such function", s.bench, s.pkg)
	}
}

// benchmarkFuncs returns the names of the Benchmark functions in dir's
// test files.
func benchmarkFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	require.NoError(t, err)
	require.NotEmpty(t, files, dir)
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Benchmark") {
				out[fd.Name.Name] = true
			}
		}
	}
	return out
}

func TestParseFlags(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		args    []string
		check   func(t *testing.T, o options)
		wantErr string
	}{
		{
			name: "defaults",
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.Equal(t, 5, o.rounds)
				assert.Equal(t, 10000, o.idleSessions)
				assert.Equal(t, []int{1, 16, 64}, o.concurrency)
				assert.True(t, o.liveProfile)
				assert.True(t, o.micro)
				assert.Equal(t, 3, o.sdkRounds)
				assert.Equal(t, 3*time.Second, o.sdkDuration)
			},
		},
		{
			name: "smoke shortens what was not set",
			args: []string{"-smoke", "-rounds", "2"},
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.Equal(t, 2, o.rounds)
				assert.Equal(t, 300*time.Millisecond, o.duration)
				assert.Equal(t, 50, o.idleSessions)
				assert.Equal(t, []int{4}, o.concurrency)
				assert.Equal(t, 300*time.Millisecond, o.sdkDuration, "the comparison's runs are as short as the rest")
				assert.False(t, o.liveProfile, "smoke skips the live profile (go tool pprof)")
				assert.False(t, o.micro, "smoke skips the micro-benchmarks (go test -bench)")
			},
		},
		{
			name: "smoke keeps what was asked for",
			args: []string{"-smoke", "-micro", "-live-profile", "-concurrency", "1,16"},
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.True(t, o.liveProfile)
				assert.True(t, o.micro)
				assert.Equal(t, []int{1, 16}, o.concurrency)
			},
		},
		{
			name: "the live profile can be skipped",
			args: []string{"-live-profile=false"},
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.False(t, o.liveProfile)
			},
		},
		{
			name: "direct is always measured, first",
			args: []string{"-targets", "mcpgw,proxy"},
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.Equal(t, []string{targetDirect, targetProxy, targetGateway}, o.targets)
			},
		},
		{
			name: "the full target runs after mcpgw",
			args: []string{"-targets", "mcpgw-full,mcpgw"},
			check: func(t *testing.T, o options) {
				t.Helper()
				assert.Equal(t, []string{targetDirect, targetGateway, targetFull}, o.targets)
			},
		},
		{name: "unknown target", args: []string{"-targets", "nginx"}, wantErr: `unknown target "nginx"`},
		{name: "bad concurrency", args: []string{"-concurrency", "1,x"}, wantErr: "-concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := parseFlags(tt.args, testWriter{t}, testWriter{t})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}

func TestProcReaders(t *testing.T) {
	t.Parallel()

	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	ticks, err := cpuTicks(os.Getpid())
	require.NoError(t, err)
	assert.GreaterOrEqual(t, ticks, int64(0))
	m, err := readMemory(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.rssKiB)
	assert.GreaterOrEqual(t, m.hwmKiB, m.rssKiB)

	assert.Equal(t, []string{"0", "1", "2", "5"}, expandCPUList("0-2,5"))
	assert.Nil(t, expandCPUList("3-1"))

	addr, ok := listeningAddr(`{"time":"x","level":"INFO","msg":"mcpgw listening","addr":"127.0.0.1:4321","mcp_path":"/mcp"}`)
	assert.True(t, ok)
	assert.Equal(t, "127.0.0.1:4321", addr)
	_, ok = listeningAddr(`{"msg":"upstream available"}`)
	assert.False(t, ok)
}

// testWriter sends the runner's progress lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestParseBench(t *testing.T) {
	t.Parallel()

	out := `goos: linux
pkg: github.com/mcpgw/mcpgw/gateway
BenchmarkResolve-2        	  387352	      3263 ns/op	     440 B/op	       6 allocs/op
BenchmarkParseMessage-2   	   80274	     15120 ns/op	  20.24 MB/s	     680 B/op	      11 allocs/op
PASS
pkg: github.com/mcpgw/mcpgw/bench/upstream
BenchmarkCallPath/direct/2025-2         	    2000	     85996 ns/op	    7976 B/op	      91 allocs/op
BenchmarkCallPath/mcpgw/2025-2          	    2000	    476385 ns/op	   22733 B/op	     244 allocs/op
ok  	github.com/mcpgw/mcpgw/bench/upstream	5.423s
`
	m := &microResults{results: parseBench(out)}
	require.Len(t, m.results, 4)
	r, ok := m.find(microStep{pkg: "./gateway", bench: "BenchmarkParseMessage"})
	require.True(t, ok)
	assert.Equal(t, benchResult{pkg: "github.com/mcpgw/mcpgw/gateway", name: "BenchmarkParseMessage", iters: 80274, nsPerOp: 15120, bPerOp: 680, allocs: 11}, r)
	_, ok = m.find(microStep{pkg: "./policy", bench: "BenchmarkResolve"})
	assert.False(t, ok, "the package must match")
	b, a, ok := m.gatewayShare("BenchmarkCallPath/mcpgw/2025")
	require.True(t, ok)
	assert.InDelta(t, 22733-7976, b, 0.001)
	assert.InDelta(t, 244-91, a, 0.001)
}

func TestParseShares(t *testing.T) {
	t.Parallel()

	out := `File: mcpgw
Type: cpu
Duration: 4s, Total samples = 3.20s (80.00%)
Showing nodes accounting for 3.20s, 100% of 3.20s total
      flat  flat%   sum%        cum   cum%
         0     0%     0%      2.80s 87.50%  net/http.(*conn).serve
     1.30s 40.62% 40.62%      1.30s 40.62%  internal/runtime/syscall/linux.Syscall6
         0     0% 40.62%      1.20s 37.50%  syscall.RawSyscall6
         0     0% 40.62%      0.31s  9.69%  runtime.mallocgc
         0     0% 40.62%      0.17s  5.31%  runtime.gcBgMarkWorker
      0.01s  0.31% 40.93%      0.01s  0.31%  runtime.gcBgMarkWorker.func2
`
	s := parseShares(out)
	assert.Equal(t, "internal/runtime/syscall/linux.Syscall6", s.syscallFn, "the larger of the two entry points")
	assert.InDelta(t, 40.62, s.syscalls, 0.001)
	assert.InDelta(t, 9.69, s.mallocgc, 0.001)
	assert.InDelta(t, 5.31, s.gcWorker, 0.001, "an exact name, not a prefix")
	assert.Equal(t, "system calls 40.6% (cum of `internal/runtime/syscall/linux.Syscall6`); allocation and garbage collection 15.0% "+
		"(cum of `runtime.mallocgc` 9.7% + `runtime.gcBgMarkWorker` 5.3%)", s.line())

	// A figure that is not there reads "—", and so does a sum it is part of.
	s = parseShares("     0     0%     0%      1.20s 37.50%  syscall.RawSyscall6\n      0     0%     0%      0.31s  9.69%  runtime.mallocgc\n")
	assert.Equal(t, "syscall.RawSyscall6", s.syscallFn)
	assert.Contains(t, s.line(), "allocation and garbage collection — (cum of `runtime.mallocgc` 9.7% + `runtime.gcBgMarkWorker` —)")
	assert.Equal(t, "system calls —; allocation and garbage collection — (cum of `runtime.mallocgc` — + `runtime.gcBgMarkWorker` —)",
		parseShares("go tool pprof: no such file").line())
}

func TestRemainingCostMarkdown(t *testing.T) {
	t.Parallel()

	render := func(r *report) string {
		var b strings.Builder
		r.remainingCostMarkdown(func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) })
		return b.String()
	}

	// The live profiles come first, then the in-process ones, then the
	// reading of them, separate from both.
	r := &report{
		live: []liveProfile{
			{target: targetGateway, seconds: 4, load: 6 * time.Second, top: "Type: cpu\nflat  flat%", shares: parseShares("")},
			{target: targetFull, seconds: 4, load: 6 * time.Second, err: "fetching the CPU profile: refused"},
		},
		micro: &microResults{profileTime: "3s", profiles: []profile{{name: "mcpgw/2025", top: "tagfocus=role=gateway"}}},
	}
	md := render(r)
	order := []string{
		"## Where the remaining cost is",
		"### Live: the mcpgw process under load",
		"`GET /admin/v1/debug/pprof/profile?seconds=4`",
		"#### mcpgw (routing only)",
		"**Summary:** system calls —",
		"Type: cpu",
		"#### mcpgw-full (everything on)",
		"fetching the CPU profile: refused",
		"### In process: BenchmarkCallPath",
		"#### BenchmarkCallPath/mcpgw/2025",
		"tagfocus=role=gateway",
		"### Reading the profiles",
		remainingCostNote,
	}
	at := 0
	for _, want := range order {
		i := strings.Index(md[at:], want)
		if !assert.GreaterOrEqual(t, i, 0, "%q missing or out of order", want) {
			continue
		}
		at += i + len(want)
	}
	assert.NotContains(t, md, "has no pprof endpoint")

	// Neither taken: each subsection says why, and the note stays.
	md = render(&report{})
	assert.Contains(t, md, "Not taken (`-live-profile=false`")
	assert.Contains(t, md, "Not run (`-micro=false`)")
	assert.Contains(t, md, remainingCostNote)
}
