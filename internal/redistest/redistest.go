// Package redistest runs a real redis-server for tests: on a free loopback
// port, without persistence, stopped when the test ends. Tests can stop it
// to simulate Redis dying and restart it on the same port (empty, as a
// Redis without persistence comes back).
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing" //nolint:depguard // a test helper package, imported only by tests.
	"time"
)

// startTimeout bounds how long a redis-server may take to be ready. It is
// a failure bound, not a synchronisation: readiness is read from the
// server's log and confirmed with PING.
const startTimeout = 30 * time.Second

// Server is one redis-server process.
type Server struct {
	t    testing.TB
	bin  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start runs a redis-server on a free port of 127.0.0.1 and returns when
// it answers PING. It fails the test when redis-server is not on PATH.
// The server is stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Fatal("redis-server is not on PATH: run scripts/ensure-redis.sh (make test does)")
	}
	s := &Server{t: tb, bin: bin}
	tb.Cleanup(s.Stop)

	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("finding a free port: %v", err)
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		// Another process took the port between probing and binding: try
		// another one.
	}
	tb.Fatalf("starting redis-server: %v", lastErr)
	return nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns redis://host:port/0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Stop kills the server (SIGKILL, as a crash) and waits for it to exit.
// Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port, empty. It stops it
// first when it is running.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("restarting redis-server: %v", err)
	}
}

// start runs redis-server on s.port and waits until it is ready.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmd := exec.CommandContext(context.Background(), s.bin, //nolint:gosec // s.bin is redis-server found on PATH; the arguments are fixed.
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--protected-mode", "no",
		"--loglevel", "notice",
		"--logfile", "",
		"--daemonize", "no",
	)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	ready := make(chan struct{})
	var logTail strings.Builder
	go func() {
		sc := bufio.NewScanner(out)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			if !signalled {
				logTail.WriteString(line + "\n")
				if strings.Contains(line, "Ready to accept connections") {
					signalled = true
					close(ready)
				}
			}
		}
		_, _ = io.Copy(io.Discard, out)
		_ = cmd.Wait()
		close(done)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-ready:
	case <-done:
		return fmt.Errorf("redis-server exited before it was ready:\n%s", logTail.String())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-done
		return errors.New("redis-server was not ready in time")
	}
	if err := ping(s.Addr()); err != nil {
		_ = cmd.Process.Kill()
		<-done
		return err
	}
	s.cmd, s.done = cmd, done
	return nil
}

// ping sends PING and expects +PONG.
func ping(addr string) error {
	d := net.Dialer{Timeout: startTimeout}
	conn, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		return fmt.Errorf("connecting to redis-server: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(startTimeout))
	if _, err := io.WriteString(conn, "PING\r\n"); err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("PING: %w", err)
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(line))
	}
	return nil
}

// freePort returns a port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil //nolint:errcheck // a tcp listener's address is a *net.TCPAddr.
}
