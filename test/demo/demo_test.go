// Package demo tests make demo's script, scripts/demo.sh, with the built
// binaries: what it prints, where it keeps its logs, and that SIGTERM
// leaves none of its processes behind.
package demo

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// root is the repository root, from this package's directory.
const root = "../.."

// buildBinaries builds what make build builds into dir, in one go build
// (the three link in parallel), with make build's settings (CGO_ENABLED=0
// -trimpath, SHIPENV in the Makefile): make test's binaries phase compiled
// every package of them so, and this only links. With go's defaults it
// compiled every dependency once more: 113 s of a cold make test's 907.
func buildBinaries(t *testing.T, dir string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", dir+"/", "./cmd/mcpgw", "./test/upstreams/cmd/demo-upstream", "./test/devissuer")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", b)
	require.NoError(t, os.Rename(filepath.Join(dir, "devissuer"), filepath.Join(dir, "mcpgw-devissuer")))
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port //nolint:forcetypeassert // a TCP listener's address.
	require.NoError(t, l.Close())
	return port
}

// groupAlive reports whether any process of the process group pgid is
// left.
func groupAlive(pgid int) bool {
	err := syscall.Kill(-pgid, 0)
	return !errors.Is(err, syscall.ESRCH)
}

// TestDemoStopsEverything runs scripts/demo.sh in a process group of its
// own, waits for its instructions, checks them, and sends the script
// SIGTERM (what Ctrl-C's SIGINT or a supervisor does): every process it
// started (the upstreams, the issuer, mcpgw and mcpgw's stdio upstream)
// must be gone when it exits, and the logs must stay in the folder it
// named.
func TestDemoStopsEverything(t *testing.T) {
	bin := t.TempDir()
	buildBinaries(t, bin)
	run := filepath.Join(t.TempDir(), "demo")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "./scripts/demo.sh")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BIN="+bin, "DEMO_DIR="+run,
		"MCPGW_SERVER_LISTEN=127.0.0.1:"+strconv.Itoa(freePort(t)))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	pgid := cmd.Process.Pid
	t.Cleanup(func() {
		// Whatever happened, leave nothing running.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	})

	var out []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		out = append(out, sc.Text())
		if strings.Contains(sc.Text(), "Watch the audit:") {
			break
		}
	}
	text := strings.Join(out, "\n")
	require.Contains(t, text, "Watch the audit:", "the demo did not finish starting; stderr:\n%s", stderr.String())
	assert.Contains(t, out[len(out)-1], "Watch the audit: tail -f "+run+"/audit.jsonl", "the last line says how to watch the audit")
	var console string
	for _, l := range out {
		if strings.HasPrefix(l, `{"`) {
			t.Errorf("an audit record in the instructions: %s", l)
		}
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Console:" {
			console = f[1]
		}
	}
	for _, want := range []string{"MCP URL:", "Token:    export TOKEN=", "Console:", "claude mcp add", ".vscode/mcp.json", "~/.cursor/mcp.json"} {
		assert.Contains(t, text, want)
	}
	require.NotEmpty(t, console)
	// The console is up: without a token it sends a browser to sign in.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, console, nil)
	require.NoError(t, err)
	client := &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.True(t, groupAlive(pgid))

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	go func() { _, _ = sc.Scan(), stdout.Close() }()
	err = cmd.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "the script ends on SIGTERM with 143")
	assert.Equal(t, 143, exit.ExitCode(), "stderr:\n%s", stderr.String())
	// The script waited for its children; nothing of the group remains.
	// (A process it lost would still be there now: nothing else reaps or
	// stops it.)
	assert.False(t, groupAlive(pgid), "a process of the demo survived SIGTERM")

	for _, f := range []string{"mcpgw.log", "audit.jsonl", "customers.log", "orders.log", "devissuer.log"} {
		_, err := os.Stat(filepath.Join(run, f))
		assert.NoError(t, err, "the demo keeps %s", f)
	}
}
