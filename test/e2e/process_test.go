package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The tests in this file's siblings run mcpgw as a real child process (the
// binary built from cmd/mcpgw, without -race) when they need separate
// processes: replicas sharing Redis, SIGTERM, the CLI.

var (
	mcpgwOnce     sync.Once
	mcpgwBin      string
	errMCPGWBuild error
)

// mcpgwBinary builds cmd/mcpgw once per test binary, beside demo-upstream
// (TestMain removes that directory).
func mcpgwBinary(t *testing.T) string {
	t.Helper()
	mcpgwOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(demoUpstreamBin), "mcpgw")
		out, err := goBuild(t.Context(), bin, "github.com/mcpgw/mcpgw/cmd/mcpgw").CombinedOutput()
		if err != nil {
			errMCPGWBuild = fmt.Errorf("building mcpgw: %w\n%s", err, out)
			return
		}
		mcpgwBin = bin
	})
	require.NoError(t, errMCPGWBuild)
	return mcpgwBin
}

// mcpgwCLI runs one mcpgw subcommand and returns its exit code, stdout and
// stderr. env adds environment variables (MCPGW_TOKEN).
func mcpgwCLI(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), mcpgwBinary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		exit, ok := err.(*exec.ExitError) //nolint:errorlint // the concrete type is the point.
		require.True(t, ok, "running mcpgw %v: %v", args, err)
		code = exit.ExitCode()
	}
	return code, stdout.String(), stderr.String()
}

// proc is a gateway running as a child process.
type proc struct {
	t         *testing.T
	cmd       *exec.Cmd
	base      string // http://127.0.0.1:PORT
	url       string // base + /mcp
	auditPath string
	cfgPath   string // the configuration file it serves
	exited    chan struct{}
	exitErr   error

	mu  sync.Mutex
	log bytes.Buffer // the process log, shown when the test fails
}

// startProc writes yaml (with a file audit sink added when it has no audit
// section, and a loopback listener on a free port) to a file, runs `mcpgw
// serve` on it and waits until /readyz answers 200 when waitReady is set.
func startProc(t *testing.T, yaml string, waitReady bool) *proc {
	t.Helper()
	dir := t.TempDir()
	auditPath := filepath.Join(dir, "audit.jsonl")
	if !strings.Contains(yaml, "\naudit:") {
		yaml += fmt.Sprintf("\naudit:\n  sinks: [{type: file, path: %q}]\n", auditPath)
	}
	if !strings.Contains(yaml, "\nserver:") {
		yaml += "\nserver: {listen: \"127.0.0.1:0\"}\n"
	}
	yaml += "\nlog: {level: info, format: json}\n"
	cfgPath := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(cfgPath, []byte(yaml), 0o600))

	// Not t.Context: that would kill mcpgw before the cleanups run; the
	// tests signal it themselves and the cleanup kills it.
	cmd := exec.CommandContext(context.WithoutCancel(t.Context()), mcpgwBinary(t), "serve", "-config", cfgPath)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	p := &proc{t: t, cmd: cmd, auditPath: auditPath, cfgPath: cfgPath, exited: make(chan struct{})}
	listening := make(chan string, 1)
	go p.readLog(stderr, listening)
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.signal(syscall.SIGKILL)
		<-p.exited
		if t.Failed() {
			p.mu.Lock()
			t.Logf("mcpgw log:\n%s", p.log.String())
			p.mu.Unlock()
		}
	})

	select {
	case addr := <-listening:
		p.base = "http://" + addr
		p.url = p.base + "/mcp"
	case <-p.exited:
		p.mu.Lock()
		defer p.mu.Unlock()
		t.Fatalf("mcpgw exited before listening: %v\n%s", p.exitErr, p.log.String())
	case <-time.After(30 * time.Second):
		t.Fatal("mcpgw never logged its address")
	}
	if waitReady {
		require.Eventually(t, func() bool { return p.readyz() == http.StatusOK }, 30*time.Second, 10*time.Millisecond,
			"mcpgw never became ready")
	}
	return p
}

// readLog keeps the process log and sends the address from the
// "mcpgw listening" line.
func (p *proc) readLog(r io.Reader, listening chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		line := sc.Bytes()
		p.mu.Lock()
		p.log.Write(line)
		p.log.WriteByte('\n')
		p.mu.Unlock()
		if sent {
			continue
		}
		var entry struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &entry) == nil && entry.Msg == "mcpgw listening" {
			listening <- entry.Addr
			sent = true
		}
	}
}

func (p *proc) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// wait waits for the process to exit and returns its exit error.
func (p *proc) wait() error {
	p.t.Helper()
	select {
	case <-p.exited:
		return p.exitErr
	case <-time.After(60 * time.Second):
		p.t.Fatal("mcpgw did not exit")
		return nil
	}
}

// readyz returns the status of GET /readyz, or 0 when it cannot be reached.
func (p *proc) readyz() int {
	resp, err := http.Get(p.base + "/readyz") //nolint:forbidigo,noctx // test.
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// modernCall sends a stateless 2026-07-28 tools/call to url with the given
// bearer token (none when empty) and X-Request-ID (none when empty), over
// client. It returns the HTTP status and the decoded body (zero for a
// non-JSON body).
func modernCall(client *http.Client, url, token, requestID, tool, args string) (int, rpcResponse, error) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,%s}}`, tool, args, modernMeta)
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body)) //nolint:noctx // the client has a timeout.
	if err != nil {
		return 0, rpcResponse{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", era2026)
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if requestID != "" {
		req.Header.Set("X-Request-ID", requestID)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, rpcResponse{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, rpcResponse{}, err
	}
	var out rpcResponse
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		// A JSON-RPC answer (also with 400 in 2026-07-28), or a JSON body
		// that is not one, such as an OAuth error with 401 or 403.
		if err := json.Unmarshal(data, &out); err != nil && resp.StatusCode == http.StatusOK {
			return resp.StatusCode, out, fmt.Errorf("decoding %q: %w", data, err)
		}
	}
	if requestID != "" && resp.Header.Get("X-Request-Id") != requestID {
		return resp.StatusCode, out, fmt.Errorf("X-Request-Id %q echoed as %q", requestID, resp.Header.Get("X-Request-Id"))
	}
	return resp.StatusCode, out, nil
}

// requireAnswer checks that a tools/call got an answer: a result with 200,
// or a JSON-RPC error, which a 2026-07-28 refusal decided on the headers
// carries with an HTTP error status (403 killed, 429 limited, 503 drained).
func requireAnswer(t *testing.T, status int, r rpcResponse) {
	t.Helper()
	if r.Error == nil {
		require.Equal(t, http.StatusOK, status, "a result comes with 200")
	}
}

// auditLines reads a JSON Lines audit file: it fails the test on a line
// that is not a JSON object or a last line without its newline.
func auditLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	if len(data) == 0 {
		return nil
	}
	require.Equal(t, byte('\n'), data[len(data)-1], "the audit file ends in a half-written line")
	var out []map[string]any
	for i, line := range bytes.Split(data[:len(data)-1], []byte("\n")) {
		var rec map[string]any
		require.NoError(t, json.Unmarshal(line, &rec), "audit line %d is not JSON: %q", i+1, line)
		out = append(out, rec)
	}
	return out
}
