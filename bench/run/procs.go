package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// It is 100 on every Linux architecture Go supports (sysconf(_SC_CLK_TCK)
// reports it; reading it needs cgo, so it is a constant here).
const clockTicks = 100

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the mcpgw module (go env GOMOD is empty); run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// goBuild builds the packages into dir (one binary per main package) as
// the Dockerfile builds mcpgw: CGO_ENABLED=0 and -trimpath. make test's
// binaries phase compiles these binaries with the same settings first, so
// every package is then in the build cache and only the main packages
// compile. quick (a smoke run) also
// links without symbol tables and DWARF, a quarter of the link time.
func goBuild(ctx context.Context, root, dir string, quick bool, pkgs ...string) error {
	args := []string{"build", "-trimpath", "-o", dir + string(filepath.Separator)}
	if quick {
		args = append(args, "-ldflags=-s -w")
	}
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build %s: %w\n%s", strings.Join(pkgs, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// pinning says which CPUs each role runs on (taskset -c lists), or why
// nothing is pinned.
type pinning struct {
	taskset                string // path of taskset; "" when not pinning
	upstream, server, load string
	note                   string
}

// planPinning splits the CPUs this process may use between the upstream,
// the server under test (proxy or mcpgw) and the load generator.
func planPinning() pinning {
	cpus := allowedCPUs()
	path, err := exec.LookPath("taskset")
	switch {
	case err != nil:
		return pinning{note: "not pinned: taskset not found; every process may run on every CPU"}
	case len(cpus) < 2:
		return pinning{note: fmt.Sprintf("not pinned: only %d CPU available", len(cpus))}
	case len(cpus) == 2:
		p := pinning{taskset: path, upstream: cpus[0], server: cpus[0], load: cpus[1]}
		p.note = fmt.Sprintf("taskset: upstream and the server under test share CPU %s, the load generator has CPU %s", cpus[0], cpus[1])
		return p
	default:
		k := len(cpus) / 3
		p := pinning{
			taskset:  path,
			upstream: strings.Join(cpus[:k], ","),
			server:   strings.Join(cpus[k:2*k], ","),
			load:     strings.Join(cpus[2*k:], ","),
		}
		p.note = fmt.Sprintf("taskset: upstream on CPU %s, server under test on CPU %s, load generator on CPU %s", p.upstream, p.server, p.load)
		return p
	}
}

// command returns argv, prefixed with taskset when pinning to cpus.
func (p *pinning) command(cpus, bin string, args ...string) []string {
	if p.taskset == "" || cpus == "" {
		return append([]string{bin}, args...)
	}
	return append([]string{p.taskset, "-c", cpus, bin}, args...)
}

// allowedCPUs lists the CPUs in this process's affinity mask.
func allowedCPUs() []string {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				if cpus := expandCPUList(strings.TrimSpace(v)); len(cpus) > 0 {
					return cpus
				}
			}
		}
	}
	cpus := make([]string, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = strconv.Itoa(i)
	}
	return cpus
}

// expandCPUList expands "0-2,5" to [0 1 2 5].
func expandCPUList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil
			}
		}
		for i := a; i <= b; i++ {
			out = append(out, strconv.Itoa(i))
		}
	}
	return out
}

// proc is a server process the runner started.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

// startProc starts argv with its stdout and stderr copied to
// logDir/name.log, and waits until ready finds a line it accepts on the
// stream it watches (stdout, or stderr when onStderr). It returns what
// ready extracted from that line.
func startProc(ctx context.Context, name, logDir string, argv []string, onStderr bool, ready func(line string) (string, bool)) (*proc, string, error) {
	logPath := filepath.Join(logDir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	// The process outlives ctx, which bounds only the wait for readiness;
	// stop ends it with SIGTERM first.
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec,noctx // argv is a binary the runner built or pinned, with its own flags.
	cmd.Env = childEnv()
	dieWithParent(cmd)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, "", err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		_ = logFile.Close()
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, "", fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}

	found := make(chan string, 1)
	var logMu sync.Mutex
	var copiers sync.WaitGroup
	copyLines := func(r io.Reader, watch bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		matched := false
		for sc.Scan() {
			line := sc.Text()
			logMu.Lock()
			fmt.Fprintln(logFile, line)
			logMu.Unlock()
			if watch && !matched {
				if v, ok := ready(line); ok {
					matched = true
					found <- v
				}
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}
	copiers.Go(func() { copyLines(stdout, !onStderr) })
	copiers.Go(func() { copyLines(stderr, onStderr) })
	go func() {
		copiers.Wait()
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()

	timer := time.NewTimer(60 * time.Second)
	defer timer.Stop()
	select {
	case v := <-found:
		return p, v, nil
	case <-p.done:
		return nil, "", fmt.Errorf("%s exited before it was ready (%w); its log:\n%s", name, p.waitErr, tail(logPath, 20))
	case <-timer.C:
		p.stop()
		return nil, "", fmt.Errorf("%s was not ready within 60s; its log:\n%s", name, tail(logPath, 20))
	case <-ctx.Done():
		p.stop()
		return nil, "", ctx.Err()
	}
}

// childEnv is the runner's environment without MCPGW_* variables, which
// would override the gateway's benchmark config.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCPGW_") {
			env = append(env, kv)
		}
	}
	return env
}

// pid returns the process id (taskset execs the command, so it is the
// server's own).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 5 seconds.
func (p *proc) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// cpuTicks returns utime+stime of the process, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces; fields resume after
	// the last ')'. f[0] is field 3 (state), so utime (14) is f[11] and
	// stime (15) is f[12].
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return ut + st, nil
}

// memory is a process's resident memory, from /proc/PID/status.
type memory struct {
	rssKiB, hwmKiB int64
}

func readMemory(pid int) (memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return memory{}, err
	}
	var m memory
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch k {
		case "VmRSS":
			dst = &m.rssKiB
		case "VmHWM":
			dst = &m.hwmKiB
		default:
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		*dst = n
	}
	return m, nil
}

// upstreamStats is the upstream's GET /stats.
type upstreamStats struct {
	Conns       int64 `json:"conns"`
	Requests    int64 `json:"requests"`
	Calls       int64 `json:"calls"`
	Lists       int64 `json:"lists"`
	Initializes int64 `json:"initializes"`
	Sessions    int64 `json:"sessions"`
}

func (s upstreamStats) sub(o upstreamStats) upstreamStats {
	return upstreamStats{
		Conns: s.Conns - o.Conns, Requests: s.Requests - o.Requests, Calls: s.Calls - o.Calls,
		Lists: s.Lists - o.Lists, Initializes: s.Initializes - o.Initializes, Sessions: s.Sessions - o.Sessions,
	}
}

// statsClient reads /stats over one keep-alive connection, opened once, so
// that reading the counters does not move the connection count.
type statsClient struct {
	url string
	hc  *http.Client
}

func newStatsClient(mcpURL string) *statsClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 1, DisableCompression: true}
	return &statsClient{url: strings.TrimSuffix(mcpURL, "/mcp") + "/stats", hc: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (c *statsClient) get(ctx context.Context) (upstreamStats, error) {
	var s upstreamStats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return s, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return s, fmt.Errorf("upstream stats: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("upstream stats: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("upstream stats: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return s, nil
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	var client http.Client // the default transport, as http.DefaultClient has
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready within %s (last answer: %s)", url, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
