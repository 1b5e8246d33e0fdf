package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Kill-switch propagation: two mcpgw replicas share one redis-server; a
// kill switch set through replica A's admin API must stop the tool on
// replica B. The runner polls B with back-to-back tools/call requests from
// the moment it sends the POST to A, and records when B first refuses
// (mcpwire.CodeKilled); then it revives the tool on A and records when B serves it
// again.

// propagationTimeout bounds one kill or revive; far beyond the gateway's
// resync interval, so reaching it is a failure, not a slow result.
const propagationTimeout = 10 * time.Second

// propagation is the kill-switch measurement.
type propagation struct {
	// skipped says why it was not measured (no redis-server).
	skipped string
	err     string
	trials  int
	// kill is the time from sending POST /admin/v1/killswitches to A until
	// B first refuses the call; post is A's answer time; revive is the time
	// from sending DELETE to A until B serves the call again. Microseconds.
	kill, post, revive []float64
	// poll is the latency of one poll of B (one tools/call), which bounds
	// the resolution of kill and revive.
	poll []float64
}

// killSwitchPropagation runs trials kills and revives across two replicas.
func (b *bencher) killSwitchPropagation(ctx context.Context, trials int) *propagation {
	res := &propagation{}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		res.skipped = "redis-server is not on PATH (scripts/ensure-redis.sh installs it)"
		return res
	}
	b.logf("kill-switch propagation: starting redis-server and two mcpgw replicas")
	redis, addr, err := b.startRedis(ctx, bin)
	if err != nil {
		res.err = err.Error()
		return res
	}
	defer redis.stop()

	cfg := func(name string) string {
		return gatewayConfig(b.upURL, b.auditPath(name)) +
			fmt.Sprintf("redis: {url: %q}\n", "redis://"+addr+"/0")
	}
	a, urlA, err := b.startGateway(ctx, "mcpgw-replica-a", cfg("mcpgw-replica-a"))
	if err != nil {
		res.err = "replica A: " + err.Error()
		return res
	}
	defer a.stop()
	rb, urlB, err := b.startGateway(ctx, "mcpgw-replica-b", cfg("mcpgw-replica-b"))
	if err != nil {
		res.err = "replica B: " + err.Error()
		return res
	}
	defer rb.stop()

	tr := loadgen.NewTransport(2, nil)
	defer tr.CloseIdleConnections()
	admin := &http.Client{Transport: tr, Timeout: propagationTimeout}
	adminA := strings.TrimSuffix(urlA, "/mcp") + "/admin/v1/killswitches"
	tool := upstreamName + "__echo"
	poller, err := newPoller(ctx, urlB, tool, tr)
	if err != nil {
		res.err = "replica B does not serve the tool: " + err.Error()
		return res
	}

	warmPolls := 0
	// Trial 0 is a warm-up, not recorded: the first kill switch opens
	// connections (the admin client's, A's to Redis for writing).
	for i := range trials + 1 {
		if err := ctx.Err(); err != nil {
			res.err = err.Error()
			return res
		}
		// Kill on A while polling B.
		type added struct {
			id   string
			took time.Duration
			err  error
		}
		done := make(chan added, 1)
		t0 := time.Now()
		go func() {
			id, err := addSwitch(ctx, admin, adminA, tool)
			done <- added{id, time.Since(t0), err}
		}()
		killAt, err := poller.until(ctx, t0, true)
		ad := <-done
		if ad.err != nil {
			res.err = fmt.Sprintf("trial %d: setting the kill switch on A: %v", i, ad.err)
			return res
		}
		if err != nil {
			res.err = fmt.Sprintf("trial %d: B never refused the call: %v", i, err)
			return res
		}
		// Revive on A while polling B.
		t1 := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- removeSwitch(ctx, admin, adminA+"/"+ad.id) }()
		reviveAt, err := poller.until(ctx, t1, false)
		if derr := <-errc; derr != nil {
			res.err = fmt.Sprintf("trial %d: removing the kill switch on A: %v", i, derr)
			return res
		}
		if err != nil {
			res.err = fmt.Sprintf("trial %d: B never served the call again: %v", i, err)
			return res
		}
		if i == 0 {
			warmPolls = len(poller.latencies)
			continue
		}
		res.trials++
		res.kill = append(res.kill, micros(killAt))
		res.post = append(res.post, micros(ad.took))
		res.revive = append(res.revive, micros(reviveAt))
		b.logf("kill-switch propagation: trial %d: refused on B after %s (A answered in %s), served again %s after revive",
			i, killAt.Round(time.Microsecond), ad.took.Round(time.Microsecond), reviveAt.Round(time.Microsecond))
	}
	res.poll = poller.latencies[warmPolls:]
	return res
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// startRedis runs redis-server without persistence on a free loopback port.
func (b *bencher) startRedis(ctx context.Context, bin string) (*proc, string, error) {
	var lastErr error
	for range 3 {
		port, err := freePort(ctx)
		if err != nil {
			return nil, "", err
		}
		argv := []string{
			bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--protected-mode", "no", "--logfile", "", "--daemonize", "no",
		}
		p, _, err := startProc(ctx, "redis", b.dir, argv, false, func(line string) (string, bool) {
			return "ready", strings.Contains(line, "Ready to accept connections")
		})
		if err == nil {
			return p, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), nil
		}
		lastErr = err // Another process may have taken the port.
	}
	return nil, "", fmt.Errorf("redis-server did not start: %w", lastErr)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		_ = l.Close()
		return 0, fmt.Errorf("unexpected listener address %v", l.Addr())
	}
	return addr.Port, l.Close()
}

func addSwitch(ctx context.Context, hc *http.Client, url, tool string) (string, error) {
	body, _ := json.Marshal(map[string]string{"scope": "tool", "target": tool, "reason": "bench", "ttl": "1m"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	var sw struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &sw); err != nil || sw.ID == "" {
		return "", fmt.Errorf("no kill-switch id in %s", bytes.TrimSpace(data))
	}
	return sw.ID, nil
}

func removeSwitch(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return nil
}

// poller calls one tool on replica B, back to back.
type poller struct {
	c         *loadgen.Client
	tool      string
	args      []byte
	latencies []float64 // µs, of every poll
}

// newPoller opens a client of B (stateless when B speaks 2026-07-28, a
// session otherwise) and checks the tool answers.
func newPoller(ctx context.Context, url, tool string, rt http.RoundTripper) (*poller, error) {
	p := &poller{tool: tool, args: []byte(`{"text":"kill-switch probe"}`)}
	var errs []error
	for _, era := range []string{loadgen.Era2026, loadgen.Era2025} {
		c, err := loadgen.NewClient(url, era, rt)
		if err == nil {
			err = c.Open(ctx)
		}
		if err == nil {
			_, _, err = c.Call(ctx, tool, p.args)
		}
		if err == nil {
			p.c = c
			return p, nil
		}
		errs = append(errs, fmt.Errorf("era %s: %w", era, err))
	}
	return nil, errors.Join(errs...)
}

// until polls until the call is refused by a kill switch (killed) or
// served (!killed), and returns the time since t0 when it first was.
func (p *poller) until(ctx context.Context, t0 time.Time, killed bool) (time.Duration, error) {
	want := strconv.Itoa(mcpwire.CodeKilled)
	for {
		_, d, err := p.c.Call(ctx, p.tool, p.args)
		p.latencies = append(p.latencies, micros(d))
		refused := err != nil && strings.Contains(err.Error(), `"code":`+want)
		if err != nil && !refused {
			return 0, fmt.Errorf("unexpected answer: %w", err)
		}
		if refused == killed {
			return time.Since(t0), nil
		}
		if since := time.Since(t0); since > propagationTimeout {
			return since, fmt.Errorf("no change within %s", propagationTimeout)
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
	}
}
