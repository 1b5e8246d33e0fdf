// Package loadgen is the benchmark's load generator for MCP over Streamable
// HTTP. Each worker is its own MCP client (its own session in the 2025 era,
// stateless requests in the 2026-07-28 era); all share one http.Transport
// with enough idle connections that no request waits for a dial. Every
// response is validated, latencies go into a log-linear histogram per
// worker, and the generator reports its own CPU time so a reader can check
// it was not the bottleneck.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Methods accepted by Config.Method.
const (
	MethodCall = "call" // tools/call
	MethodList = "list" // tools/list, following cursors to the end
)

// Config describes one load run. Zero values take the defaults noted.
type Config struct {
	// URL is the MCP endpoint, such as http://127.0.0.1:9190/mcp.
	URL string
	// Era is Era2025 (sessions; the default) or Era2026 (stateless).
	Era string
	// Method is MethodCall (the default) or MethodList.
	Method string
	// Tool is the tool called by MethodCall. Default "echo".
	Tool string
	// Concurrency is the number of workers, each its own client. Default 16.
	Concurrency int
	// Duration bounds the measured window. Default 5s; ignored when Count
	// is set.
	Duration time.Duration
	// Count, when positive, runs exactly this many operations instead.
	Count int64
	// TextSize is the length of the echo text argument. Default 200.
	TextSize int
	// Arguments, when set, are the raw JSON arguments of every call instead
	// of {"text": <TextSize bytes>}; the result is then not checked against
	// the text.
	Arguments []byte
	// Header holds extra headers sent on every request, such as
	// Authorization: Bearer …; they never replace the MCP headers the
	// client sets itself.
	Header http.Header
	// Transport is shared by the workers; nil means NewTransport(Concurrency).
	Transport http.RoundTripper
	// OnStart and OnStop, when set, are called just before the measured
	// window opens and just after it closes (after every worker stopped),
	// so a caller can sample other processes over exactly that window.
	OnStart, OnStop func()
}

// Result is what one run measured. Latencies are in microseconds; an
// operation is one tools/call, or one complete tools/list (every page).
type Result struct {
	URL         string  `json:"url"`
	Era         string  `json:"era"`
	Method      string  `json:"method"`
	Tool        string  `json:"tool,omitempty"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	// Calls counts the operations that succeeded.
	Calls       int64    `json:"calls"`
	Errors      int64    `json:"errors"`
	ErrorSample []string `json:"error_sample,omitempty"`
	CallsPerSec float64  `json:"calls_per_sec"`
	P50us       float64  `json:"p50_us"`
	P90us       float64  `json:"p90_us"`
	P99us       float64  `json:"p99_us"`
	P999us      float64  `json:"p999_us"`
	MaxUs       float64  `json:"max_us"`
	MeanUs      float64  `json:"mean_us"`
	// Pages and Tools describe the last tools/list (MethodList only).
	Pages int `json:"pages,omitempty"`
	Tools int `json:"tools,omitempty"`
	// Dials counts the TCP connections the generator opened during the
	// measured window (only with the default transport).
	Dials int64 `json:"dials"`
	// CPUSeconds is the generator's own user+system CPU time during the
	// measured window; CPUCores is that divided by the wall time.
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUCores     float64 `json:"cpu_cores"`
	CPUPerCallUs float64 `json:"cpu_per_call_us"`
	GOMAXPROCS   int     `json:"gomaxprocs"`
	// Error is set when the run could not start (by the CLI's JSON output).
	Error string `json:"error,omitempty"`
}

// NewTransport returns the transport the workers share: HTTP/1.1 keep-alive
// with room for every worker's idle connection, no compression. dials, when
// not nil, counts the connections it opens.
func NewTransport(concurrency int, dials *atomic.Int64) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil && dials != nil {
				dials.Add(1)
			}
			return c, err
		},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   max(2*concurrency, 4),
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		DisableCompression:    true,
	}
}

func (c *Config) setDefaults() error {
	if c.URL == "" {
		return errors.New("loadgen: URL is required")
	}
	if c.Era == "" {
		c.Era = Era2025
	}
	if c.Era != Era2025 && c.Era != Era2026 {
		return fmt.Errorf("loadgen: era must be %s or %s, not %q", Era2025, Era2026, c.Era)
	}
	if c.Method == "" {
		c.Method = MethodCall
	}
	if c.Method != MethodCall && c.Method != MethodList {
		return fmt.Errorf("loadgen: method must be %s or %s, not %q", MethodCall, MethodList, c.Method)
	}
	if c.Tool == "" {
		c.Tool = "echo"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.Duration <= 0 {
		c.Duration = 5 * time.Second
	}
	if c.TextSize <= 0 {
		c.TextSize = 200
	}
	return nil
}

// echoArgs returns the arguments of the echo call and the JSON string the
// result must contain.
func echoArgs(size int) (args, text []byte) {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
	b := make([]byte, size)
	for i := range b {
		b[i] = alphabet[i%len(alphabet)]
	}
	text = strconv.AppendQuote(nil, string(b))
	args = append([]byte(`{"text":`), text...)
	return append(args, '}'), text
}

// worker is one client and its private tallies.
type worker struct {
	c           *Client
	hist        Histogram
	calls, errs int64
	tools       int
	pages       int
}

// Run performs one load run. Every worker first opens its client and makes
// one unmeasured request; if any of that fails, Run returns the error
// before measuring (so "this endpoint does not speak this era" is an error,
// not a row of failures). Errors during the measured window are counted.
// cfg itself is not modified: the defaults go on a copy.
func Run(ctx context.Context, config *Config) (*Result, error) {
	cfg := *config
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	var dials atomic.Int64
	rt := cfg.Transport
	if rt == nil {
		tr := NewTransport(cfg.Concurrency, &dials)
		defer tr.CloseIdleConnections()
		rt = tr
	}
	r := newRun(&cfg)
	if err := r.open(ctx, rt); err != nil {
		return nil, err
	}

	start := make(chan struct{})
	r.startWorkers(ctx, start)
	if cfg.OnStart != nil {
		cfg.OnStart()
	}
	dials.Store(0)
	cpu0 := cpuTime()
	t0 := time.Now()
	close(start)
	if cfg.Count <= 0 {
		timer := time.AfterFunc(cfg.Duration, func() { r.stop.Store(true) })
		defer timer.Stop()
	}
	r.running.Wait()
	wall := time.Since(t0)
	cpu := cpuTime() - cpu0
	if cfg.OnStop != nil {
		cfg.OnStop()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res := r.result(wall, cpu)
	res.Dials = dials.Load()
	return res, nil
}

// loadRun is one load run in progress.
type loadRun struct {
	cfg       *Config
	args      []byte // of every call
	text      []byte // the JSON string an echo result must contain
	checkEcho bool
	workers   []*worker

	stop      atomic.Bool
	remaining atomic.Int64 // operations left when cfg.Count is set
	samples   errSamples
	running   sync.WaitGroup
}

func newRun(cfg *Config) *loadRun {
	r := &loadRun{cfg: cfg, checkEcho: strings.HasSuffix(cfg.Tool, "echo")}
	r.args, r.text = echoArgs(cfg.TextSize)
	if cfg.Arguments != nil {
		r.args, r.checkEcho = cfg.Arguments, false
	}
	r.remaining.Store(cfg.Count)
	return r
}

// op performs one operation of worker w and returns its latency.
func (r *loadRun) op(ctx context.Context, w *worker) (time.Duration, error) {
	if r.cfg.Method == MethodList {
		tools, pages, d, err := w.c.ListTools(ctx)
		w.tools, w.pages = tools, pages
		return d, err
	}
	res, d, err := w.c.Call(ctx, r.cfg.Tool, r.args)
	if err == nil && r.checkEcho && !bytes.Contains(res, r.text) {
		err = fmt.Errorf("echo result does not contain the text sent: %s", clip(res))
	}
	return d, err
}

// open creates the workers, each with its client opened and one
// unmeasured operation done, and returns the first error of any.
func (r *loadRun) open(ctx context.Context, rt http.RoundTripper) error {
	cfg := r.cfg
	r.workers = make([]*worker, cfg.Concurrency)
	setupErrs := make([]error, cfg.Concurrency)
	var setup sync.WaitGroup
	for i := range r.workers {
		c, err := NewClient(cfg.URL, cfg.Era, rt)
		if err != nil {
			return err
		}
		c.SetHeader(cfg.Header)
		w := &worker{c: c}
		r.workers[i] = w
		setup.Go(func() {
			if err := c.Open(ctx); err != nil {
				setupErrs[i] = err
				return
			}
			if _, err := r.op(ctx, w); err != nil {
				setupErrs[i] = fmt.Errorf("first request: %w", err)
			}
		})
	}
	setup.Wait()
	return firstError(setupErrs)
}

// startWorkers starts every worker's loop; each waits for start to close,
// then runs operations until the run stops, the count is spent or ctx
// ends.
func (r *loadRun) startWorkers(ctx context.Context, start <-chan struct{}) {
	for _, w := range r.workers {
		r.running.Go(func() {
			<-start
			r.work(ctx, w)
		})
	}
}

// work is the loop of worker w.
func (r *loadRun) work(ctx context.Context, w *worker) {
	for !r.stop.Load() && ctx.Err() == nil {
		if r.cfg.Count > 0 && r.remaining.Add(-1) < 0 {
			return
		}
		d, err := r.op(ctx, w)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.errs++
			r.samples.add(err)
			continue
		}
		w.calls++
		w.hist.Record(d)
	}
}

// result merges the workers' tallies over a window of wall time in which
// the generator used cpu.
func (r *loadRun) result(wall, cpu time.Duration) *Result {
	cfg := r.cfg
	var h Histogram
	res := &Result{
		URL: cfg.URL, Era: cfg.Era, Method: cfg.Method, Concurrency: cfg.Concurrency,
		Seconds: wall.Seconds(), ErrorSample: r.samples.list(),
		CPUSeconds: cpu.Seconds(), CPUCores: cpu.Seconds() / wall.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0),
	}
	if cfg.Method == MethodCall {
		res.Tool = cfg.Tool
	}
	for _, w := range r.workers {
		h.Merge(&w.hist)
		res.Calls += w.calls
		res.Errors += w.errs
		if w.pages > 0 {
			res.Pages, res.Tools = w.pages, w.tools
		}
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	res.CallsPerSec = float64(res.Calls) / wall.Seconds()
	res.P50us, res.P90us = us(h.Quantile(0.50)), us(h.Quantile(0.90))
	res.P99us, res.P999us = us(h.Quantile(0.99)), us(h.Quantile(0.999))
	res.MaxUs, res.MeanUs = us(h.Max()), us(h.Mean())
	if n := res.Calls + res.Errors; n > 0 {
		res.CPUPerCallUs = us(cpu) / float64(n)
	}
	return res
}

// OpenSessions opens n 2025-era sessions (initialize and
// notifications/initialized) at the given concurrency and returns their
// clients, which keep the session ids. The sessions are left open.
func OpenSessions(ctx context.Context, url string, n, concurrency int, rt http.RoundTripper) ([]*Client, error) {
	clients := make([]*Client, n)
	var next atomic.Int64
	errs := make([]error, concurrency)
	var wg sync.WaitGroup
	for i := range concurrency {
		wg.Go(func() {
			for {
				j := int(next.Add(1) - 1)
				if j >= n || ctx.Err() != nil {
					return
				}
				c, err := NewClient(url, Era2025, rt)
				if err == nil {
					err = c.Open(ctx)
				}
				if err != nil {
					errs[i] = fmt.Errorf("session %d: %w", j, err)
					return
				}
				clients[j] = c
			}
		})
	}
	wg.Wait()
	if err := firstError(errs); err != nil {
		return nil, err
	}
	return clients, ctx.Err()
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// errSamples keeps the first few distinct error messages.
type errSamples struct {
	mu   sync.Mutex
	msgs []string
}

func (s *errSamples) add(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) >= 5 {
		return
	}
	msg := err.Error()
	if slices.Contains(s.msgs, msg) {
		return
	}
	s.msgs = append(s.msgs, msg)
}

func (s *errSamples) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs
}

// cpuTime returns this process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
