// Package e2e holds black-box tests of mcpgw over real sockets: real
// upstream MCP servers (go-sdk and mcp-go, HTTP and stdio), the gateway on a
// loopback port, and real MCP clients of both SDKs.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/gateway"
	"github.com/mcpgw/mcpgw/test/upstreams"
)

// demoUpstreamBin is the demo-upstream binary, built once in TestMain, used
// to serve payments over stdio.
var demoUpstreamBin string

// goBuild returns the go build of pkg into out, built as the Dockerfile
// builds mcpgw (CGO_ENABLED=0 -trimpath). make test's binaries phase compiles
// every package of these binaries with those settings (SHIPENV), so on a
// fresh machine this only links; the defaults would compile every
// dependency once more.
func goBuild(ctx context.Context, out, pkg string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	return cmd
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcpgw-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	demoUpstreamBin = filepath.Join(dir, "demo-upstream")
	cmd := goBuild(context.Background(), demoUpstreamBin, "github.com/mcpgw/mcpgw/test/upstreams/cmd/demo-upstream")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building demo-upstream:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// server is an HTTP upstream on a loopback port that can be stopped and
// started again on the same address, to simulate an upstream dying and
// coming back.
type server struct {
	t       *testing.T
	handler func() http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func startServer(t *testing.T, handler func() http.Handler) *server {
	t.Helper()
	s := &server{t: t, handler: handler, addr: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) url() string { return "http://" + s.addr + "/mcp" }

// start (re)starts the server on its address with a fresh handler, so that
// state such as sessions is lost as in a real restart.
func (s *server) start() {
	s.t.Helper()
	var lc net.ListenConfig
	var l net.Listener
	var err error
	// The port was ours a moment ago; the kernel can take a moment to free it.
	require.Eventually(s.t, func() bool {
		l, err = lc.Listen(context.Background(), "tcp", s.addr)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "listening on %s: %v", s.addr, err)
	s.addr = l.Addr().String()
	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.wg.Go(func() {
		_ = srv.Serve(l)
	})
}

// stop closes the listener and every connection at once, like a crash.
func (s *server) stop() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
		s.wg.Wait()
	}
}

// gw is a running gateway.
type gw struct {
	*gateway.Gateway
	base      string // http://127.0.0.1:PORT
	url       string // base + /mcp
	auditPath string // the audit stream, JSON Lines
	// stop shuts the gateway down as SIGTERM does and returns Serve's error.
	stop func() error
}

// startGateway parses a YAML config, starts the gateway on a loopback port
// and waits until it is ready (every required upstream listed).
func startGateway(t *testing.T, yaml string, waitReady bool) *gw {
	t.Helper()
	return startGatewayWith(t, yaml, waitReady, 200*time.Millisecond)
}

// startGatewayWith is startGateway with a chosen upstream health-check
// interval (tests that inspect what an upstream saw last want no pings).
func startGatewayWith(t *testing.T, yaml string, waitReady bool, health time.Duration) *gw {
	t.Helper()
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	if !strings.Contains(yaml, "\naudit:") {
		yaml += fmt.Sprintf("\naudit:\n  sinks: [{type: file, path: %q}]\n", auditPath)
	}
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(t, err, "config:\n%s", yaml)
	return serveGateway(t, cfg, auditPath, waitReady, health)
}

// serveGateway starts a gateway of cfg on a loopback port.
func serveGateway(t *testing.T, cfg *configs.Config, auditPath string, waitReady bool, health time.Duration) *gw {
	t.Helper()
	return serveGatewayOpts(t, cfg, auditPath, waitReady, &gateway.Options{HealthInterval: health})
}

// serveGatewayOpts is serveGateway with chosen gateway options (the
// version is the harness's, and so is the logger unless opts has one); it
// sets both in opts.
func serveGatewayOpts(t *testing.T, cfg *configs.Config, auditPath string, waitReady bool, opts *gateway.Options) *gw {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	opts.Version = "e2e"
	g, err := gateway.New(cfg, opts)
	require.NoError(t, err)
	var lc net.ListenConfig
	l, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	// The gateway serves until stop runs in a cleanup, after t.Context is
	// cancelled: other cleanups may still talk to it.
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	g.Start()
	go func() { done <- g.Serve(ctx, l) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			serveErr = <-done
		})
		return serveErr
	}
	t.Cleanup(func() { require.NoError(t, stop()) })
	if waitReady {
		require.Eventually(t, g.Ready, 30*time.Second, 10*time.Millisecond, "gateway never became ready")
	}
	base := "http://" + l.Addr().String()
	return &gw{Gateway: g, base: base, url: base + cfg.Server.MCPPath, auditPath: auditPath, stop: stop}
}

// testWriter sends log output to t.Log, so it shows only for failed
// tests. A gateway's goroutines may still log after the test's last
// cleanup (an unsubscribe while a session closes, say), and t.Log then
// panics: the writer's own cleanup, registered first and so run last,
// ends its logging under the lock that every Write holds.
type testWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func newTestWriter(t *testing.T) *testWriter {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// demo is the three demo upstreams: customers (go-sdk, HTTP), orders
// (mcp-go, HTTP, restartable) and payments (mcp-go, stdio).
type demo struct {
	customers, orders *server
	customersObs      *upstreams.Observer
	ordersObs         *upstreams.Observer
}

func startDemo(t *testing.T) *demo {
	t.Helper()
	d := &demo{customersObs: upstreams.NewObserver(), ordersObs: upstreams.NewObserver()}
	d.customers = startServer(t, func() http.Handler { return upstreams.CustomersHandler(d.customersObs) })
	d.orders = startServer(t, func() http.Handler { return upstreams.OrdersHandler(d.ordersObs) })
	return d
}

func (d *demo) config(extra string) string {
	return fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  max_body_bytes: 65536
catalog:
  list_changed_debounce: 50ms
upstreams:
  - name: customers
    http: {url: %q}
  - name: orders
    http: {url: %q}
    timeout: 20s
  - name: payments
    stdio:
      command: %q
      args: ["-server", "payments", "-stdio"]
%s`, d.customers.url(), d.orders.url(), demoUpstreamBin, extra)
}

// rawClient speaks MCP over plain HTTP, to check bytes and error codes that
// SDK clients hide.
type rawClient struct {
	t       *testing.T
	url     string
	session string
	header  http.Header
	nextID  int
}

func newRawClient(t *testing.T, url string) *rawClient {
	t.Helper()
	return &rawClient{t: t, url: url, header: http.Header{}}
}

// initialize opens a session.
func (c *rawClient) initialize() {
	c.t.Helper()
	resp, body := c.post(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, string(body))
	c.session = resp.Header.Get("Mcp-Session-Id")
	require.NotEmpty(c.t, c.session)
	resp, body = c.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	require.Equal(c.t, http.StatusAccepted, resp.StatusCode, string(body))
}

// rawReply is what post keeps of a response: its body is read and closed
// before post returns.
type rawReply struct {
	StatusCode int
	Header     http.Header
}

// post sends one body and returns the response's status and header and its
// body (for an SSE response, the data of the last event).
func (c *rawClient) post(body string) (*rawReply, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), http.MethodPost, c.url, strings.NewReader(body))
	require.NoError(c.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	maps.Copy(req.Header, c.header)
	resp, err := http.DefaultClient.Do(req) //nolint:forbidigo // a plain client is the point here.
	require.NoError(c.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		events := sseData(data)
		require.NotEmpty(c.t, events, "empty SSE response")
		data = events[len(events)-1]
	}
	return &rawReply{StatusCode: resp.StatusCode, Header: resp.Header}, data
}

// call sends a request with a fresh id and returns the decoded response.
func (c *rawClient) call(method, params string) rpcResponse {
	c.t.Helper()
	c.nextID++
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, c.nextID, method, params)
	resp, data := c.post(body)
	require.Equal(c.t, http.StatusOK, resp.StatusCode, string(data))
	var r rpcResponse
	require.NoError(c.t, json.Unmarshal(data, &r), string(data))
	require.JSONEq(c.t, fmt.Sprint(c.nextID), string(r.ID))
	return r
}

type rpcResponse struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	} `json:"error"`
}

// sseData returns the data of every event in an SSE body.
func sseData(body []byte) [][]byte {
	var out [][]byte
	eachSSEData(bytes.NewReader(body), func(data []byte) bool {
		out = append(out, data)
		return true
	})
	return out
}

// eachSSEData calls fn with the data of each event of an SSE stream as it
// is read, until fn returns false or the stream ends. An event the stream
// ends inside, before its blank line, is not passed (the HTML standard's
// event stream interpretation: "the incomplete event is not dispatched"),
// so a request closed mid-event yields no half message.
func eachSSEData(r io.Reader, fn func(data []byte) bool) {
	br := bufio.NewReader(r)
	var data []byte
	for {
		line, err := br.ReadBytes('\n')
		if err != nil {
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		if d, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			data = append(data, bytes.TrimPrefix(d, []byte(" "))...)
		}
		if len(line) == 0 && len(data) > 0 {
			if !fn(data) {
				return
			}
			data = nil
		}
	}
}

// rawList returns every item of a list method, following cursors, straight
// from an MCP endpoint (gateway or upstream).
func rawList(t *testing.T, c *rawClient, method, key string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	cursor := ""
	for page := 0; ; page++ {
		require.Less(t, page, 1000, "too many pages")
		params := `{}`
		if cursor != "" {
			params = fmt.Sprintf(`{"cursor":%q}`, cursor)
		}
		r := c.call(method, params)
		require.Nil(t, r.Error, "%s: %+v", method, r.Error)
		var res map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(r.Result, &res))
		var items []json.RawMessage
		require.NoError(t, json.Unmarshal(res[key], &items))
		all = append(all, items...)
		next, ok := res["nextCursor"]
		if !ok {
			return all
		}
		require.NoError(t, json.Unmarshal(next, &cursor))
		if cursor == "" {
			return all
		}
	}
}

var errNoName = errors.New("no name")

func toolName(raw json.RawMessage) (string, error) {
	var v struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", err
	}
	if v.Name == "" {
		return "", errNoName
	}
	return v.Name, nil
}

// flipBit returns the unpadded base64url string enc with bit 0 of its
// decoded byte i flipped. The result always differs from enc and still
// decodes, so a check that refuses it tests the seal or signature, not the
// parser.
func flipBit(t *testing.T, enc string, i int) string {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	require.NoError(t, err)
	require.Less(t, i, len(b))
	b[i] ^= 0x01
	flipped := base64.RawURLEncoding.EncodeToString(b)
	require.NotEqual(t, enc, flipped)
	return flipped
}
