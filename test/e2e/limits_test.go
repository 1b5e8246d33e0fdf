package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// gauge reads one unlabelled gauge from an mcpgw process's /metrics.
func gauge(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	fam, ok := scrape(t, p.base+"/metrics")[name]
	require.True(t, ok, "no %s in /metrics", name)
	require.NotEmpty(t, fam.GetMetric())
	return fam.GetMetric()[0].GetGauge().GetValue()
}

// stalledBody opens a connection to addr and sends a POST to /mcp whose
// headers announce a 1000-byte body, then only part of it, and nothing
// more; it calls sent once that is written. It returns when the gateway
// closes the connection, with the time that took, or with an error when it
// could not send.
func stalledBody(ctx context.Context, addr string, sent func()) (time.Duration, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	start := time.Now()
	_, err = io.WriteString(conn, "POST /mcp HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n"+`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"pad":"`)
	sent()
	if err != nil {
		return 0, err
	}
	// Whatever the gateway answers, read until it closes the connection.
	_, err = io.Copy(io.Discard, conn)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset by peer") {
		return 0, err
	}
	return time.Since(start), nil
}

// TestStalledBodiesDoNotHoldTheGateway opens 2,000 connections to an mcpgw
// process that each send headers and part of a body, then stall, while a
// real MCP client keeps calling a tool. Every call succeeds; every stalled
// connection is closed by the gateway once server.read_body_timeout has
// passed; and the gateway's goroutines and open file descriptors come back
// to what they were before.
func TestStalledBodiesDoNotHoldTheGateway(t *testing.T) {
	const (
		stalls      = 2000
		bodyTimeout = 2 * time.Second
	)
	customers := startDemoUpstreamProc(t, "customers")
	p := startProc(t, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  read_body_timeout: %s
upstreams:
  - {name: customers, http: {url: %q}}
`, bodyTimeout, customers), true)
	addr := strings.TrimPrefix(p.base, "http://")

	client := newGoClient(t, p.url)
	call := func() error {
		text, isErr, err := client.callText(t.Context(), "customers__lookup_customer", map[string]any{"id": "c-001"}, nil)
		if err == nil && (isErr || !strings.Contains(text, "Ada Lovelace")) {
			err = fmt.Errorf("unexpected result %q (isError %v)", text, isErr)
		}
		return err
	}
	require.NoError(t, call())
	baseGoroutines, baseFDs := gauge(t, p, "go_goroutines"), gauge(t, p, "process_open_fds")

	// The attack: 2,000 stalled bodies, all held at once (dialled at most
	// 100 at a time).
	var sent, done sync.WaitGroup
	sent.Add(stalls)
	held := make([]time.Duration, stalls)
	errs := make([]error, stalls)
	dialing := make(chan struct{}, 100)
	for i := range stalls {
		done.Go(func() {
			dialing <- struct{}{}
			var once sync.Once
			release := func() { once.Do(func() { <-dialing; sent.Done() }) }
			held[i], errs[i] = stalledBody(t.Context(), addr, release)
			release()
		})
	}
	allSent := make(chan struct{})
	go func() { sent.Wait(); close(allSent) }()

	// Meanwhile the client's calls keep succeeding.
	var calls, failures int
	var firstFailure error
	peakGoroutines, peakFDs := baseGoroutines, baseFDs
	closed := make(chan struct{})
	go func() { done.Wait(); close(closed) }()
	giveUp := time.After(bodyTimeout + time.Minute)
	for running := true; running; {
		select {
		case <-closed:
			running = false
		case <-giveUp:
			t.Fatalf("the gateway still holds stalled connections a minute after read_body_timeout")
		default:
		}
		if err := call(); err != nil {
			failures++
			if firstFailure == nil {
				firstFailure = err
			}
		}
		calls++
		peakGoroutines = max(peakGoroutines, gauge(t, p, "go_goroutines"))
		peakFDs = max(peakFDs, gauge(t, p, "process_open_fds"))
	}
	<-allSent
	for i, err := range errs {
		require.NoError(t, err, "stalled connection %d", i)
	}
	assert.Zero(t, failures, "the client's calls failed %d of %d times during the attack; first: %v", failures, calls, firstFailure)
	for i, d := range held {
		assert.GreaterOrEqual(t, d, bodyTimeout, "stalled connection %d was closed before read_body_timeout", i)
	}
	assert.Greater(t, peakGoroutines, baseGoroutines+stalls/2, "the stalled connections were held while their body was awaited")

	// The gateway lets go of everything the attack held.
	var goroutines, fds float64
	require.Eventually(t, func() bool {
		goroutines, fds = gauge(t, p, "go_goroutines"), gauge(t, p, "process_open_fds")
		return goroutines <= baseGoroutines+5 && fds <= baseFDs+5
	}, 30*time.Second, 50*time.Millisecond, "goroutines %v (before %v), fds %v (before %v)", goroutines, baseGoroutines, fds, baseFDs)
	require.NoError(t, call())
	t.Logf("%d stalled bodies; %d calls, all answered; goroutines %v → peak %v → %v; fds %v → peak %v → %v",
		stalls, calls, baseGoroutines, peakGoroutines, goroutines, baseFDs, peakFDs, fds)
}

// TestHeaderLimits sends requests over the header limits to a gateway
// process: more fields than server.max_header_count, more bytes than
// server.max_header_bytes (within net/http's read limit and far beyond
// it). Each gets HTTP 431; requests at the limits are served.
func TestHeaderLimits(t *testing.T) {
	customers := startDemoUpstreamProc(t, "customers")
	p := startProc(t, fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  max_header_bytes: 8192
  max_header_count: 40
upstreams:
  - {name: customers, http: {url: %q}}
`, customers), true)

	// The request below has 10 fields: Host, Content-Length, User-Agent,
	// Accept-Encoding and the six it sets.
	const base = 10
	fields := func(n int) http.Header {
		h := http.Header{}
		for i := range n {
			h.Set(fmt.Sprintf("X-Pad-%d", i), "x")
		}
		return h
	}
	big := func(n int) http.Header {
		h := http.Header{}
		h.Set("X-Pad", strings.Repeat("x", n))
		return h
	}
	tests := []struct {
		name   string
		header http.Header
		want   int
	}{
		{name: "at the field count", header: fields(40 - base), want: http.StatusOK},
		{name: "one field more", header: fields(40 - base + 1), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "5,000 fields", header: fields(5000), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "within the bytes", header: big(6 << 10), want: http.StatusOK},
		{name: "over the bytes", header: big(9 << 10), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "1 MiB", header: big(1 << 20), want: http.StatusRequestHeaderFieldsTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
			defer hc.CloseIdleConnections()
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"customers__lookup_customer","arguments":{"id":"c-001"},%s}}`, modernMeta)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.url, strings.NewReader(body))
			require.NoError(t, err)
			maps.Copy(req.Header, tt.header)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Mcp-Protocol-Version", era2026)
			req.Header.Set("Mcp-Method", "tools/call")
			req.Header.Set("Mcp-Name", "customers__lookup_customer")
			req.Header.Set("X-Request-ID", "limits-1")
			resp, err := hc.Do(req)
			require.NoError(t, err)
			data, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode, string(data))
		})
	}
}

// TestUnauthenticatedCap fills server.max_unauthenticated with requests
// whose tokens name an issuer that does not answer (they wait on its
// discovery), while a client that has authenticated keeps calling over its
// connection. The client's calls succeed; more unauthenticated requests
// get 503 at once; once the issuer answers, the slots are free again.
func TestUnauthenticatedCap(t *testing.T) {
	const slots = 8
	good := authntest.NewIssuer(t, authntest.WithAudience(resource))
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(stuck.Close)
	t.Cleanup(unblock)
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  max_unauthenticated: %d
auth:
  resource: %q
  issuers: [{issuer: %q}, {issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
`, slots, resource, good.URL(), stuck.URL, d.customers.url()), true)

	// The client authenticates once; its connection is then known.
	alice := good.Mint(map[string]any{"sub": "alice", "scope": "mcp"})
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	t.Cleanup(hc.CloseIdleConnections)
	callOK := func() {
		t.Helper()
		status, r, err := modernCall(hc, g.url, alice, "", "customers__lookup_customer", `{"id":"c-001"}`)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error)
	}
	callOK()

	// A token that names the stuck issuer: its request waits on discovery.
	enc := base64.RawURLEncoding.EncodeToString
	forged := enc([]byte(`{"alg":"RS256","typ":"JWT","kid":"k"}`)) + "." +
		enc(fmt.Appendf(nil, `{"iss":%q,"sub":"mallory","aud":%q,"exp":%d}`, stuck.URL, resource, time.Now().Add(time.Hour).Unix())) + "." + enc([]byte("sig"))
	var waiting sync.WaitGroup
	for range slots {
		waiting.Go(func() {
			c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{}}
			defer c.CloseIdleConnections()
			status, _, _ := modernCall(c, g.url, forged, "", "customers__lookup_customer", `{"id":"c-001"}`)
			assert.NotEqual(t, http.StatusOK, status)
		})
	}
	// Once they hold every slot, a request without a token gets 503 at
	// once instead of its 401.
	fresh := func(token string) int {
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		defer c.CloseIdleConnections()
		status, _, err := modernCall(c, g.url, token, "", "customers__lookup_customer", `{"id":"c-001"}`)
		require.NoError(t, err)
		return status
	}
	require.Eventually(t, func() bool { return fresh("") == http.StatusServiceUnavailable }, 30*time.Second, 20*time.Millisecond)
	assert.Positive(t, g.UnauthenticatedRefused())

	// The authenticated connection is not held up.
	for range 20 {
		callOK()
	}
	// A new connection has not authenticated yet, whatever its token.
	assert.Equal(t, http.StatusServiceUnavailable, fresh(alice))

	unblock()
	waiting.Wait()
	assert.Equal(t, http.StatusUnauthorized, fresh(""), "the slots are free again")
	assert.Equal(t, http.StatusOK, fresh(alice))
}
