package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/bench/loadgen"
)

// The live profile: a CPU profile of a running mcpgw, fetched from its
// pprof endpoint (telemetry.profiling) while the load generator drives it.
// Unlike the in-process BenchmarkCallPath profile it is the very process
// the hop CPU per call is measured on, and it has every goroutine in it:
// the garbage collector's workers and the runtime's own included.

// liveScenario is the load shape of the live profile: the middle
// concurrency of the tools/call table, in the era every target serves.
func liveScenario() scenario {
	return scenario{key: "live-profile", era: loadgen.Era2025, method: loadgen.MethodCall, conc: 16}
}

// liveListScenario is the load shape of the extra live profile taken
// when the tools/list target is missed: the list scenario of the rounds.
func liveListScenario() scenario {
	return scenario{key: "live-profile-list", era: loadgen.Era2025, method: loadgen.MethodList, conc: 1}
}

// liveProfile is the live profile of one gateway target.
type liveProfile struct {
	target string
	// sc is the load the profile was taken under.
	sc scenario
	// where says where the profile came from, when it is not one of the
	// main rounds' gateways (whose full listings the report has).
	where string
	// seconds is the profile's duration; load is the load generator's,
	// which outlasts it so the profile never sees the load winding down.
	seconds int
	load    time.Duration
	// smp is the load generator's run the profile was taken during.
	smp    sample
	top    string // go tool pprof -top -nodecount=30
	shares profileShares
	err    string
}

// liveProfileSeconds returns the profile's and the load's durations.
func (b *bencher) liveProfileSeconds() (int, time.Duration) {
	if b.opts.smoke {
		return 1, 2 * time.Second
	}
	return 4, 6 * time.Second
}

// liveProfiles profiles every gateway target that is still running under
// tools/call, and mcpgw-full under tools/list as well when the rounds
// missed the tools/list target: a missed target's remaining cost is read
// from a profile of the load it was measured under.
func (b *bencher) liveProfiles(ctx context.Context) []liveProfile {
	type job struct {
		t  string
		sc scenario
	}
	jobs := []job{{targetGateway, liveScenario()}, {targetFull, liveScenario()}}
	if b.rep.listGoal().ok == missed {
		jobs = append(jobs, job{targetFull, liveListScenario()})
	}
	var out []liveProfile
	for _, j := range jobs {
		t := j.t
		ep, ok := b.eps[t]
		if !ok {
			continue
		}
		lp := b.liveProfile(ctx, t, ep, j.sc)
		if lp.err != "" {
			b.logf("live profile of %s: %s", t, firstLine(lp.err))
		} else {
			b.logf("live profile of %s: %s", t, lp.shares.line())
		}
		out = append(out, lp)
	}
	return out
}

// liveProfile runs the load generator against ep and, once its measured
// window opens, fetches a CPU profile from the same gateway.
func (b *bencher) liveProfile(ctx context.Context, target string, ep endpoint, ls scenario) liveProfile {
	lp := liveProfile{target: target, sc: ls}
	lp.seconds, lp.load = b.liveProfileSeconds()
	if ep.hop == nil || ep.hop.exited() {
		lp.err = target + " is not running"
		return lp
	}
	authz := ""
	if target == targetFull {
		tok, err := b.mintAdminToken(ctx)
		if err != nil {
			lp.err = "minting a token with the admin scope: " + err.Error()
			return lp
		}
		authz = "Bearer " + tok
	}
	b.logf("live profile: %s, %s c=%d %s for %s; CPU profile of the gateway for %ds", target, ls.era,
		ls.conc, ls.method, lp.load, lp.seconds)
	b.profileUnderLoad(ctx, &lp, ep, profileSource{
		url:   strings.TrimSuffix(ep.url, "/mcp") + "/admin/v1/debug/pprof/profile",
		authz: authz,
		bin:   filepath.Join(b.dir, "mcpgw"),
		file:  filepath.Join(b.dir, "live-"+target+"-"+ls.method+".pprof"),
	})
	return lp
}

// profileSource is where a profile under load comes from: the pprof CPU
// endpoint of the process, its Authorization value, its binary (for
// pprof's symbols) and the file the profile is saved to.
type profileSource struct {
	url, authz, bin, file string
	// cum sorts the listing by cumulative time: for a server built on a
	// library, which of the library's paths the time is under says more
	// than the leaf functions (encoding/json, the allocator) do.
	cum bool
}

// profileUnderLoad runs the load generator against ep in lp's scenario
// and, once its measured window opens, fetches a CPU profile from src; it
// fills lp's sample, listing and shares, or lp.err.
func (b *bencher) profileUnderLoad(ctx context.Context, lp *liveProfile, ep endpoint, src profileSource) {
	ls := lp.sc
	type loaded struct {
		smp sample
		err error
	}
	windowOpen := make(chan struct{})
	done := make(chan loaded, 1)
	go func() {
		smp, _, err := b.load(ctx, ls, ep, lp.load, sync.OnceFunc(func() { close(windowOpen) }))
		done <- loaded{smp, err}
	}()
	var fetchErr error
	select {
	case <-windowOpen:
		// The profile starts once the load generator's sessions are open
		// and every worker has made its first call.
		fetchErr = fetchProfile(ctx, src.url, src.authz, lp.seconds, src.file)
	case l := <-done:
		lp.err = fmt.Sprintf("the load generator stopped before its window opened: %v", l.err)
		return
	}
	l := <-done
	switch {
	case fetchErr != nil:
		lp.err = fetchErr.Error()
		return
	case l.err != nil:
		lp.err = "the load generator during the profile: " + l.err.Error()
		return
	}
	lp.smp = l.smp

	args := []string{"tool", "pprof", "-top", "-nodecount=30"}
	if src.cum {
		args = append(args, "-cum")
	}
	out, err := b.goCmd(ctx, append(args, src.bin, src.file)...)
	if err != nil {
		lp.err = fmt.Sprintf("go tool pprof -top: %v\n%s", err, tailLines(out, 10))
		return
	}
	lp.top = strings.TrimSpace(out)
	// Every node, however small, so that a figure missing from the
	// summary means the function never ran.
	out, err = b.goCmd(ctx, "tool", "pprof", "-top", "-cum", "-nodecount=0", "-nodefraction=0", src.bin, src.file)
	if err != nil {
		b.logf("live profile of %s: go tool pprof -top -cum: %v", lp.target, err)
	}
	lp.shares = parseShares(out)
}

// fetchProfile GETs the pprof CPU profile endpoint at endpoint (the
// gateway's /admin/v1/debug/pprof/profile, or an SDK server's
// /debug/pprof/profile) with ?seconds=N and writes the profile to path.
func fetchProfile(ctx context.Context, endpoint, authz string, seconds int, path string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+30*time.Second)
	defer cancel()
	url := endpoint + "?seconds=" + strconv.Itoa(seconds)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	// A client of its own: the profile request must not queue behind, or
	// share connections with, anything else.
	hc := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("fetching the CPU profile: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("reading the CPU profile: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %s", url, resp.StatusCode, cellText(string(bytes.TrimSpace(body))))
	}
	// A profile is a gzip-compressed protocol buffer; anything else is an
	// error page that pprof would only fail to read.
	if !bytes.HasPrefix(body, []byte{0x1f, 0x8b}) {
		return fmt.Errorf("GET %s: not a profile: %s", url, cellText(string(body)))
	}
	if err := os.WriteFile(path, body, 0o600); err != nil {
		return fmt.Errorf("saving the CPU profile: %w", err)
	}
	return nil
}

// profileShares are the summary figures of a live profile, as percentages
// of all samples; NaN when the function is not in the profile.
type profileShares struct {
	// syscallFn is the function syscalls is the cum of.
	syscallFn string
	syscalls  float64
	mallocgc  float64
	gcWorker  float64
}

// The functions of the summary. syscall.RawSyscall6 calls
// internal/runtime/syscall/linux.Syscall6 (Go 1.26), which the runtime's
// own system calls (netpoll's epoll_wait) also go through, so the larger
// cum of the two present is the share in system calls.
const (
	mallocFn   = "runtime.mallocgc"
	gcWorkerFn = "runtime.gcBgMarkWorker"
)

// syscallFns are the system-call entry points, either of which may hold
// the share in system calls.
func syscallFns() [2]string {
	return [...]string{"internal/runtime/syscall/linux.Syscall6", "syscall.RawSyscall6"}
}

// parseShares reads `go tool pprof -top -cum` output: lines of
// "flat flat% sum% cum cum% function".
func parseShares(out string) profileShares {
	cum := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || !strings.HasSuffix(f[4], "%") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err != nil {
			continue
		}
		cum[strings.Join(f[5:], " ")] = v
	}
	get := func(fn string) float64 {
		if v, ok := cum[fn]; ok {
			return v
		}
		return math.NaN()
	}
	s := profileShares{syscalls: math.NaN(), mallocgc: get(mallocFn), gcWorker: get(gcWorkerFn)}
	for _, fn := range syscallFns() {
		if v := get(fn); !math.IsNaN(v) && (math.IsNaN(s.syscalls) || v > s.syscalls) {
			s.syscalls, s.syscallFn = v, fn
		}
	}
	return s
}

// line is the one-line summary of the shares; "—" for a figure not found.
func (s profileShares) line() string {
	pct := func(v float64) string {
		if math.IsNaN(v) {
			return "—"
		}
		return fmt.Sprintf("%.1f%%", v)
	}
	sys := "system calls " + pct(s.syscalls)
	if s.syscallFn != "" {
		sys += fmt.Sprintf(" (cum of `%s`)", s.syscallFn)
	}
	return fmt.Sprintf("%s; allocation and garbage collection %s (cum of `%s` %s + `%s` %s)",
		sys, pct(s.mallocgc+s.gcWorker), mallocFn, pct(s.mallocgc), gcWorkerFn, pct(s.gcWorker))
}
