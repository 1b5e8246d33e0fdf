package authntest

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// OIDCProvider configures StartOIDCProvider.
type OIDCProvider struct {
	// ClientID and Secret are a client allowed the client credentials
	// grant.
	ClientID, Secret string
	// Resources are the resource indicators (RFC 8707) the provider issues
	// JWT access tokens for, each with aud = the indicator.
	Resources []string
	// Scopes are the scopes of those resources.
	Scopes []string
}

// StartOIDCProvider runs panva oidc-provider, a real third-party OpenID
// provider (authn/testdata/oidcprovider, pinned by its package-lock.json),
// on 127.0.0.1 and returns its issuer URL; it stops when the test ends.
// The pinned package is installed with npm ci when node_modules is missing,
// under a file lock, so that tests of several packages can share it. When
// node or the npm registry is unavailable the test fails rather than
// skips: these tests are the evidence that the gateway accepts a real
// provider's tokens.
func StartOIDCProvider(tb testing.TB, cfg *OIDCProvider) string {
	tb.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate authn/testdata/oidcprovider")
	}
	dir := filepath.Join(filepath.Dir(self), "..", "testdata", "oidcprovider")
	node, err := exec.LookPath("node")
	if err != nil {
		tb.Fatalf("node is needed for the oidc-provider end-to-end tests: %v", err)
	}
	installProvider(tb, dir)

	// Not tb.Context(): it ends before Cleanup runs, and the provider is
	// first asked to stop by closing its stdin.
	ctx, cancel := context.WithCancel(context.Background()) //nolint:usetesting // see above.
	cmd := exec.CommandContext(ctx, node, "server.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"OIDC_CLIENT_ID="+cfg.ClientID,
		"OIDC_CLIENT_SECRET="+cfg.Secret,
		"OIDC_RESOURCES="+strings.Join(cfg.Resources, " "),
		"OIDC_SCOPES="+strings.Join(cfg.Scopes, " "),
	)
	cmd.Stderr = logWriter{tb}
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		tb.Fatalf("starting oidc-provider: %v", err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close() // server.mjs exits when stdin closes.
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel() // kills it
			<-done
		}
		cancel()
	})

	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if issuer, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				lines <- issuer
				break
			}
		}
		close(lines)
		// Keep draining, so the child never blocks on a full pipe.
		for sc.Scan() {
		}
	}()
	select {
	case issuer, ok := <-lines:
		if !ok {
			tb.Fatal("oidc-provider exited before listening")
		}
		return issuer
	case <-time.After(time.Minute):
		tb.Fatal("oidc-provider did not start within a minute")
		return ""
	}
}

// installProvider runs npm ci in dir unless oidc-provider is installed,
// holding an exclusive lock on dir/.install.lock meanwhile.
func installProvider(tb testing.TB, dir string) {
	tb.Helper()
	t := tb
	installed := func() bool {
		_, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"))
		return err == nil
	}
	if installed() {
		return
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".install.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatalf("locking %s: %v", lock.Name(), err)
	}
	defer func() { _ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN) }()
	if installed() {
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatalf("npm is needed to install oidc-provider for the end-to-end tests: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s failed (is the npm registry reachable?): %v\n%s", dir, err, out)
	}
}

// logWriter sends a child's stderr to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("oidc-provider: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
