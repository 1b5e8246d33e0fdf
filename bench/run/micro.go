package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// The Go micro-benchmarks of each step of the tools/call path, and the
// in-process whole-path benchmark with its CPU profile.

// microStep is one row of the micro-benchmark table: a benchmark (an
// exact name, or a prefix when prefix is set) in a package.
type microStep struct {
	step, pkg, bench, what string
	prefix                 bool
}

// microSteps returns the steps in the order a call meets them.
func microSteps() []microStep {
	return []microStep{
		{step: "request decode", pkg: "./gateway", bench: "BenchmarkParseMessage", what: "JSON-RPC envelope of a tools/call (params kept raw)"},
		{step: "  fast path", pkg: "./gateway", bench: "BenchmarkScanEnvelope", what: "gateway/envelope.go: the envelope validated and split by internal/rawjson in one pass, which parseMessage uses (encoding/json only for what it does not handle)"},
		{step: "cached token check", pkg: "./authn", bench: "BenchmarkAuthenticateCached", what: "bearer token found in the verified-token cache"},
		{step: "route lookup", pkg: "./gateway/catalog", bench: "BenchmarkTool", what: "Snapshot.Tool in a 1,000-tool catalog"},
		{step: "request rewrite", pkg: "./gateway", bench: "BenchmarkResolve", what: "route lookup + exposed name replaced by the upstream's (arguments copied raw)"},
		{step: "policy check", pkg: "./policy", bench: "BenchmarkPolicyCheck", what: "kill-switch Check + RequiredScopes/Missing + local per-principal limiter Allow"},
		{step: "  kill-switch check", pkg: "./policy", bench: "BenchmarkSwitchCheck", what: "3 switches set, none matching"},
		{step: "  required scopes", pkg: "./policy", bench: "BenchmarkRequiredScopes", what: "rule lookup + Missing"},
		{step: "  rate limit (local)", pkg: "./policy", bench: "BenchmarkLimiterLocal", what: "3 buckets: principal, principal+tool, upstream"},
		{step: "breaker", pkg: "./upstream", bench: "BenchmarkBreaker", prefix: true, what: "circuit breaker admission"},
		{step: "argument hash", pkg: "./telemetry/audit", bench: "BenchmarkCanonicalSHA256", what: "RFC 8785 canonical form + SHA-256 of the arguments"},
		{step: "audit encode", pkg: "./telemetry/audit", bench: "BenchmarkAuditEncode", what: "Record.AppendJSON, no reflection"},
		{step: "response relay", pkg: "./gateway", bench: "BenchmarkRelay", what: "raw result wrapped in the downstream id and written"},
		{step: "whole path: direct", pkg: "./bench/upstream", bench: "BenchmarkCallPath/direct/2025", what: "client → upstream over loopback, in one process"},
		{step: "whole path: mcpgw", pkg: "./bench/upstream", bench: "BenchmarkCallPath/mcpgw/2025", what: "client → mcpgw (routing only) → upstream"},
		{step: "whole path: mcpgw, " + mcpwire.Version20260728, pkg: "./bench/upstream", bench: "BenchmarkCallPath/mcpgw/2026", what: "the same, stateless era"},
		{step: "whole path: mcpgw, everything on", pkg: "./bench/upstream", bench: "BenchmarkCallPath/mcpgw-full/2025", what: "client → mcpgw (auth, scopes, rate limit, audit file) → upstream"},
	}
}

// benchResult is one line of go test -bench output.
type benchResult struct {
	pkg, name               string
	iters                   int64
	nsPerOp, bPerOp, allocs float64
}

// microResults are the micro-benchmarks of one run.
type microResults struct {
	results  []benchResult
	err      string
	benchDur string
	// profiles are `go tool pprof -top` outputs of the whole-path benchmark,
	// keyed by its sub-benchmark, and the error of any that failed.
	profiles    []profile
	profileTime string
}

type profile struct {
	name, top, err string
}

// find returns the result of step s.
func (m *microResults) find(s microStep) (benchResult, bool) {
	pkg := "github.com/mcpgw/mcpgw/" + strings.TrimPrefix(s.pkg, "./")
	for _, r := range m.results {
		if r.pkg != pkg {
			continue
		}
		if r.name == s.bench || (s.prefix && strings.HasPrefix(r.name, s.bench)) {
			return r, true
		}
	}
	return benchResult{}, false
}

// runMicro runs every step's benchmark with go test -bench in one go.
func (b *bencher) runMicro(ctx context.Context) *microResults {
	res := &microResults{benchDur: "300ms"}
	if b.opts.smoke {
		res.benchDur = "20x"
	}
	var names, pkgs []string
	for _, s := range microSteps() {
		top, _, _ := strings.Cut(s.bench, "/")
		if s.prefix {
			top += ".*"
		}
		if !slices.Contains(names, top) {
			names = append(names, top)
		}
		if !slices.Contains(pkgs, s.pkg) {
			pkgs = append(pkgs, s.pkg)
		}
	}
	b.logf("micro-benchmarks: go test -bench (-benchtime %s) in %s", res.benchDur, strings.Join(pkgs, " "))
	args := append([]string{
		"test", "-run", "^$", "-bench", "^(" + strings.Join(names, "|") + ")$", "-benchmem",
		"-benchtime", res.benchDur, "-count", "1",
	}, pkgs...)
	out, err := b.goCmd(ctx, args...)
	res.results = parseBench(out)
	if err != nil {
		res.err = fmt.Sprintf("go test -bench: %v\n%s", err, tailLines(out, 15))
		b.logf("micro-benchmarks: %v", err)
	}
	return res
}

// profileCallPath profiles the in-process whole-path benchmark and keeps
// the gateway's top functions (pprof label role=gateway).
func (b *bencher) profileCallPath(ctx context.Context, m *microResults) {
	m.profileTime = "3s"
	if b.opts.smoke {
		m.profileTime = "200x"
	}
	for _, sub := range []string{"mcpgw/2025", "mcpgw-full/2025"} {
		p := profile{name: sub}
		name := strings.ReplaceAll(sub, "/", "-")
		prof := filepath.Join(b.dir, name+".pprof")
		bin := filepath.Join(b.dir, "callpath.test")
		parts := strings.Split(sub, "/")
		b.logf("profile: BenchmarkCallPath/%s for %s", sub, m.profileTime)
		out, err := b.goCmd(ctx, "test", "-run", "^$", "-bench", "^BenchmarkCallPath$/^"+parts[0]+"$/^"+parts[1]+"$",
			"-benchtime", m.profileTime, "-count", "1", "-cpuprofile", prof, "-o", bin, "./bench/upstream")
		if err != nil {
			p.err = fmt.Sprintf("go test -cpuprofile: %v\n%s", err, tailLines(out, 10))
			m.profiles = append(m.profiles, p)
			continue
		}
		out, err = b.goCmd(ctx, "tool", "pprof", "-top", "-nodecount=25", "-tagfocus", "role=gateway", bin, prof)
		if err != nil {
			p.err = fmt.Sprintf("go tool pprof: %v\n%s", err, tailLines(out, 10))
		} else {
			p.top = strings.TrimSpace(out)
		}
		m.profiles = append(m.profiles, p)
	}
}

// goCmd runs the go command in the module root and returns its combined
// output.
func (b *bencher) goCmd(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.root
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// parseBench reads go test -bench output: "pkg: P" lines, then
// "BenchmarkX-N  iters  v ns/op  [v MB/s]  v B/op  v allocs/op".
func parseBench(out string) []benchResult {
	var res []benchResult
	pkg := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		iters, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		r := benchResult{pkg: pkg, name: trimProcs(f[0]), iters: iters}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch f[i+1] {
			case "ns/op":
				r.nsPerOp = v
			case "B/op":
				r.bPerOp = v
			case "allocs/op":
				r.allocs = v
			}
		}
		res = append(res, r)
	}
	return res
}

// trimProcs drops the -GOMAXPROCS suffix of a benchmark name.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// gatewayShare is the gateway's part of one proxied call in the in-process
// benchmark: a whole-path result minus the direct one.
func (m *microResults) gatewayShare(bench string) (bytesPerOp, allocs float64, ok bool) {
	direct, ok1 := m.find(microStep{pkg: "./bench/upstream", bench: "BenchmarkCallPath/direct/2025"})
	gw, ok2 := m.find(microStep{pkg: "./bench/upstream", bench: bench})
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	return gw.bPerOp - direct.bPerOp, gw.allocs - direct.allocs, true
}
