package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

var wantTools = []string{
	"customers__confirm_delete", "customers__lookup_customer", "customers__search_customers", "customers__update_customer",
	"orders__cancel_order", "orders__create_order", "orders__export_orders", "orders__get_order",
	"orders__label_preview", "orders__list_orders",
	"payments__approve_refund", "payments__find_payment", "payments__get_payment", "payments__refund",
}

// mcpClient is what the tests need from either SDK's client.
type mcpClient interface {
	listTools(ctx context.Context) []string
	callText(ctx context.Context, tool string, args map[string]any, progress func(float64)) (string, bool, error)
	readResource(ctx context.Context, uri string) string
	getPrompt(ctx context.Context, name string, args map[string]string) string
}

// sdkClient is the official go-sdk client.
type sdkClient struct {
	t  *testing.T
	cs *sdk.ClientSession

	mu       sync.Mutex
	progress map[any]func(float64)
}

// Protocol eras the clients are pinned to.
const (
	era2025 = "2025-11-25"
	era2026 = "2026-07-28"
)

func newSDKClient(t *testing.T, url string) *sdkClient {
	t.Helper()
	return newSDKClientAt(t, url, era2025)
}

// newSDKClientAt connects a go-sdk client speaking the given version.
func newSDKClientAt(t *testing.T, url, version string) *sdkClient {
	t.Helper()
	c := &sdkClient{t: t, progress: map[any]func(float64){}}
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e-go-sdk", Version: "1"}, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			c.mu.Lock()
			f := c.progress[req.Params.ProgressToken]
			c.mu.Unlock()
			if f != nil {
				f(req.Params.Progress)
			}
		},
	})
	cs, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	require.Equal(t, version, cs.InitializeResult().ProtocolVersion, "negotiated version")
	t.Cleanup(func() { _ = cs.Close() })
	c.cs = cs
	return c
}

func (c *sdkClient) listTools(ctx context.Context) []string {
	var names []string
	for tool, err := range c.cs.Tools(ctx, nil) {
		require.NoError(c.t, err)
		names = append(names, tool.Name)
	}
	return names
}

func (c *sdkClient) callText(ctx context.Context, tool string, args map[string]any, progress func(float64)) (string, bool, error) {
	params := &sdk.CallToolParams{Name: tool, Arguments: args}
	if progress != nil {
		token := "sdk-" + tool
		params.SetProgressToken(token)
		c.mu.Lock()
		c.progress[token] = progress
		c.mu.Unlock()
	}
	res, err := c.cs.CallTool(ctx, params)
	if err != nil {
		return "", false, err
	}
	return resultText(c.t, res), res.IsError, nil
}

func resultText(t *testing.T, res any) string {
	t.Helper()
	b, err := json.Marshal(res)
	require.NoError(t, err)
	return string(b)
}

func (c *sdkClient) readResource(ctx context.Context, uri string) string {
	res, err := c.cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
	require.NoError(c.t, err)
	require.NotEmpty(c.t, res.Contents)
	return res.Contents[0].Text
}

func (c *sdkClient) getPrompt(ctx context.Context, name string, args map[string]string) string {
	res, err := c.cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: name, Arguments: args})
	require.NoError(c.t, err)
	return resultText(c.t, res)
}

// goClient is mark3labs/mcp-go's client.
type goClient struct {
	t *testing.T
	c *mcpclient.Client

	mu       sync.Mutex
	progress map[any]func(float64)
}

func newGoClient(t *testing.T, url string) *goClient {
	t.Helper()
	return newGoClientAt(t, url, era2025)
}

// newGoClientAt connects an mcp-go client speaking the given version.
func newGoClientAt(t *testing.T, url, version string) *goClient {
	t.Helper()
	trans, err := mcptransport.NewStreamableHTTP(url)
	require.NoError(t, err)
	c := mcpclient.NewClient(trans, mcpclient.WithProtocolVersion(version))
	g := &goClient{t: t, c: c, progress: map[any]func(float64){}}
	c.OnNotification(func(n mcpgo.JSONRPCNotification) {
		if n.Method != "notifications/progress" {
			return
		}
		g.mu.Lock()
		f := g.progress[n.Params.AdditionalFields["progressToken"]]
		g.mu.Unlock()
		if p, ok := n.Params.AdditionalFields["progress"].(float64); ok && f != nil {
			f(p)
		}
	})
	require.NoError(t, c.Start(t.Context()))
	_, err = c.Initialize(t.Context(), mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ClientInfo: mcpgo.Implementation{Name: "e2e-mcp-go", Version: "1"},
	}})
	require.NoError(t, err)
	require.Equal(t, version, c.ProtocolVersion(), "negotiated version")
	t.Cleanup(func() { _ = c.Close() })
	return g
}

func (g *goClient) listTools(ctx context.Context) []string {
	var names []string
	req := mcpgo.ListToolsRequest{}
	for {
		res, err := g.c.ListTools(ctx, req)
		require.NoError(g.t, err)
		for i := range res.Tools {
			names = append(names, res.Tools[i].Name)
		}
		if res.NextCursor == "" {
			return names
		}
		req.Params.Cursor = res.NextCursor
	}
}

func (g *goClient) callText(ctx context.Context, tool string, args map[string]any, progress func(float64)) (string, bool, error) {
	req := mcpgo.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	if progress != nil {
		token := "go-" + tool
		req.Params.Meta = &mcpgo.Meta{ProgressToken: token}
		g.mu.Lock()
		g.progress[token] = progress
		g.mu.Unlock()
	}
	res, err := g.c.CallTool(ctx, req)
	if err != nil {
		return "", false, err
	}
	return resultText(g.t, res), res.IsError, nil
}

func (g *goClient) readResource(ctx context.Context, uri string) string {
	req := mcpgo.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := g.c.ReadResource(ctx, req)
	require.NoError(g.t, err)
	require.NotEmpty(g.t, res.Contents)
	text, ok := res.Contents[0].(mcpgo.TextResourceContents)
	require.True(g.t, ok, "contents: %#v", res.Contents[0])
	return text.Text
}

func (g *goClient) getPrompt(ctx context.Context, name string, args map[string]string) string {
	req := mcpgo.GetPromptRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := g.c.GetPrompt(ctx, req)
	require.NoError(g.t, err)
	return resultText(g.t, res)
}

// clients returns a client of each SDK in each protocol era, connected to
// url: sessions (2025-11-25) and stateless (2026-07-28).
func clients(t *testing.T, url string) map[string]func(t *testing.T) mcpClient {
	t.Helper()
	out := map[string]func(t *testing.T) mcpClient{}
	for _, v := range []string{era2025, era2026} {
		out["go-sdk "+v] = func(t *testing.T) mcpClient { t.Helper(); return newSDKClientAt(t, url, v) }
		out["mcp-go "+v] = func(t *testing.T) mcpClient { t.Helper(); return newGoClientAt(t, url, v) }
	}
	return out
}

// TestDemoThroughGateway runs the whole demo (customers over HTTP with the
// go-sdk, orders over HTTP with mcp-go, payments over stdio with mcp-go)
// behind the gateway, with a client of each SDK.
func TestDemoThroughGateway(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)

	t.Run("tool objects are byte-identical apart from the name", func(t *testing.T) {
		gwTools := rawList(t, initialized(t, g.url), "tools/list", "tools")
		// Payments runs over stdio behind the gateway; the same server over
		// HTTP gives its raw list.
		payments := httptest.NewServer(upstreams.PaymentsHandler(nil))
		defer payments.Close()
		upstreamTools := map[string][]json.RawMessage{
			"customers": rawList(t, initialized(t, d.customers.url()), "tools/list", "tools"),
			"orders":    rawList(t, initialized(t, d.orders.url()), "tools/list", "tools"),
			"payments":  rawList(t, initialized(t, payments.URL), "tools/list", "tools"),
		}
		byName := map[string]json.RawMessage{}
		for _, tool := range gwTools {
			name, err := toolName(tool)
			require.NoError(t, err)
			byName[name] = tool
		}
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		require.Equal(t, wantTools, names)
		for up, tools := range upstreamTools {
			for _, raw := range tools {
				orig, err := toolName(raw)
				require.NoError(t, err)
				exposed := up + "__" + orig
				want := bytes.Replace(raw, []byte(`"name":"`+orig+`"`), []byte(`"name":"`+exposed+`"`), 1)
				assert.Equal(t, string(want), string(byName[exposed]), "tool %s", exposed)
			}
		}
	})

	for name, connect := range clients(t, g.url) {
		t.Run(name, func(t *testing.T) {
			c := connect(t)
			ctx := t.Context()

			names := c.listTools(ctx)
			sort.Strings(names)
			assert.Equal(t, wantTools, names)

			calls := []struct {
				tool string
				args map[string]any
				want string
			}{
				{"customers__lookup_customer", map[string]any{"id": "c-001"}, "Ada Lovelace"},
				{"orders__get_order", map[string]any{"id": "o-1001"}, "o-1001"},
				{"payments__get_payment", map[string]any{"payment_id": "p-5001"}, "p-5001"},
				{"payments__find_payment", map[string]any{"payment_id": "p-5001"}, "p-5001"},
			}
			for _, call := range calls {
				text, isErr, err := c.callText(ctx, call.tool, call.args, nil)
				require.NoError(t, err, call.tool)
				assert.False(t, isErr, "%s: %s", call.tool, text)
				assert.Contains(t, text, call.want, call.tool)
			}

			assert.Contains(t, c.readResource(ctx, "customer://c-002"), "Grace Hopper")
			assert.Contains(t, c.getPrompt(ctx, "customers__customer_brief", map[string]string{"id": "c-003"}), "Alan Turing")
			assert.Contains(t, c.readResource(ctx, "orders://o-1003"), `"customer_id":"c-003"`)
			assert.Contains(t, c.getPrompt(ctx, "orders__order_summary", map[string]string{"order_id": "o-1004"}), "Summary of order o-1004")
			// Payments is served over stdio.
			assert.Contains(t, c.readResource(ctx, "payment://p-5006"), `"order_id":"o-1006"`)
			assert.Contains(t, c.getPrompt(ctx, "payments__refund_note", map[string]string{"payment_id": "p-5006"}), "payment p-5006 for order o-1006")

			var mu sync.Mutex
			var got []float64
			text, isErr, err := c.callText(ctx, "orders__export_orders", map[string]any{"steps": 6, "delay_ms": 10}, func(p float64) {
				mu.Lock()
				got = append(got, p)
				mu.Unlock()
			})
			require.NoError(t, err)
			require.False(t, isErr, text)
			// SDK clients may run notification handlers after the call
			// returns, so wait for the last one to be handled.
			received := func() []float64 {
				mu.Lock()
				defer mu.Unlock()
				return slices.Clone(got)
			}
			require.Eventually(t, func() bool { return len(received()) >= 6 }, 10*time.Second, 5*time.Millisecond,
				"progress notifications received: %v", received())
			assert.Equal(t, []float64{1, 2, 3, 4, 5, 6}, received(), "progress notifications, in order")
		})
	}

	for name, connect := range clients(t, g.url) {
		t.Run(name+" cancels a slow call", func(t *testing.T) {
			cancel, done := startSlowExport(t, connect(t), 600, 50)
			cancel()
			select {
			case tool := <-d.ordersObs.Cancelled():
				assert.Equal(t, "export_orders", tool)
			case <-time.After(20 * time.Second):
				t.Fatal("the upstream never saw the cancellation")
			}
			require.Error(t, <-done)
		})
	}
}

// startSlowExport starts orders__export_orders on c and returns once its
// first progress notification arrived, so the call is running upstream. The
// call's error arrives on done after cancel.
func startSlowExport(t *testing.T, c mcpClient, steps, delayMs int) (cancel context.CancelFunc, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		_, _, err := c.callText(ctx, "orders__export_orders", map[string]any{"steps": steps, "delay_ms": delayMs}, func(float64) {
			once.Do(func() { close(started) })
		})
		errc <- err
	}()
	select {
	case <-started:
	case err := <-errc:
		cancel()
		t.Fatalf("the slow call ended before it started: %v", err)
	}
	return cancel, errc
}

// initialized returns a raw client with an open session on url.
func initialized(t *testing.T, url string) *rawClient {
	t.Helper()
	c := newRawClient(t, url)
	c.initialize()
	return c
}

// TestPaginationAcrossUpstreamPages drains an upstream with 300 tools served
// in pages, and serves them in gateway pages that a client follows.
func TestPaginationAcrossUpstreamPages(t *testing.T) {
	bulk := startServer(t, func() http.Handler { return upstreams.BulkHandler(300) })
	g := startGateway(t, fmt.Sprintf(`
catalog: {page_size: 70}
upstreams:
  - name: bulk
    http: {url: %q}
`, bulk.url()), true)

	for name, list := range map[string]func() []string{
		"raw": func() []string {
			var names []string
			for _, raw := range rawList(t, initialized(t, g.url), "tools/list", "tools") {
				n, err := toolName(raw)
				require.NoError(t, err)
				names = append(names, n)
			}
			return names
		},
		"mcp-go": func() []string { return newGoClient(t, g.url).listTools(t.Context()) },
		"go-sdk": func() []string { return newSDKClient(t, g.url).listTools(t.Context()) },
	} {
		t.Run(name, func(t *testing.T) {
			names := list()
			require.Len(t, names, 300)
			seen := map[string]bool{}
			for _, n := range names {
				require.False(t, seen[n], "%s listed twice", n)
				seen[n] = true
			}
			for i := range 300 {
				assert.True(t, seen[fmt.Sprintf("bulk__tool_%03d", i)], "tool_%03d missing", i)
			}
		})
	}
}

// TestUpstreamDiesAndReturns stops the orders upstream mid-run: calls to the
// others keep working, calls to orders fail naming it, its tools are
// withdrawn, and everything comes back when it restarts.
func TestUpstreamDiesAndReturns(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	c := initialized(t, g.url)
	listed := func() []string {
		var names []string
		for _, raw := range rawList(t, c, "tools/list", "tools") {
			n, err := toolName(raw)
			require.NoError(t, err)
			names = append(names, n)
		}
		return names
	}
	call := func(tool, args string) rpcResponse {
		return c.call("tools/call", fmt.Sprintf(`{"name":%q,"arguments":%s}`, tool, args))
	}
	require.Nil(t, call("orders__get_order", `{"id":"o-1001"}`).Error)

	d.orders.stop()

	r := call("orders__get_order", `{"id":"o-1001"}`)
	require.NotNil(t, r.Error, "a call to a stopped upstream must fail")
	assert.Contains(t, r.Error.Message, `"orders"`)
	assert.JSONEq(t, `{"upstream":"orders"}`, string(r.Error.Data))

	require.Eventually(t, func() bool { return !slices.Contains(listed(), "orders__get_order") }, 20*time.Second, 20*time.Millisecond,
		"orders tools were never withdrawn")
	r = call("orders__get_order", `{"id":"o-1001"}`)
	require.NotNil(t, r.Error)
	assert.Equal(t, -32050, r.Error.Code)
	assert.Contains(t, r.Error.Message, `"orders"`)

	for range 5 {
		r := call("customers__lookup_customer", `{"id":"c-001"}`)
		require.Nil(t, r.Error, "other upstreams keep working")
		r = call("payments__get_payment", `{"payment_id":"p-5001"}`)
		require.Nil(t, r.Error, "other upstreams keep working")
	}

	d.orders.start()
	require.Eventually(t, func() bool { return slices.Contains(listed(), "orders__get_order") }, 30*time.Second, 20*time.Millisecond,
		"orders tools never came back")
	r = call("orders__get_order", `{"id":"o-1001"}`)
	require.Nil(t, r.Error, "orders works again after its restart")
	assert.Contains(t, string(r.Result), "o-1001")
}

// TestSlowUpstreamDoesNotSlowOthers keeps a call that never ends on its own
// running on orders while calls to every upstream complete.
func TestSlowUpstreamDoesNotSlowOthers(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	cancel, done := startSlowExport(t, newSDKClient(t, g.url), 1000, 1000)
	c := initialized(t, g.url)
	for range 20 {
		for _, call := range []string{
			`{"name":"customers__lookup_customer","arguments":{"id":"c-004"}}`,
			`{"name":"orders__get_order","arguments":{"id":"o-1002"}}`,
			`{"name":"payments__get_payment","arguments":{"payment_id":"p-5002"}}`,
		} {
			r := c.call("tools/call", call)
			require.Nil(t, r.Error, call)
		}
	}
	select {
	case err := <-done:
		t.Fatalf("the slow call ended early: %v", err)
	default:
	}
	cancel()
	require.Error(t, <-done)
}

// TestShutdownFinishesCallsInFlight stops the gateway the way SIGTERM does
// while a call is running: the call completes with its result, and the
// gateway then exits cleanly.
func TestShutdownFinishesCallsInFlight(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	c := newSDKClientAt(t, g.url, era2026)
	started := make(chan struct{})
	var once sync.Once
	type result struct {
		text  string
		isErr bool
		err   error
	}
	done := make(chan result, 1)
	go func() {
		text, isErr, err := c.callText(t.Context(), "orders__export_orders", map[string]any{"steps": 20, "delay_ms": 50}, func(float64) {
			once.Do(func() { close(started) })
		})
		done <- result{text, isErr, err}
	}()
	select {
	case <-started:
	case r := <-done:
		t.Fatalf("the call ended before it started: %+v", r)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- g.stop() }()
	r := <-done
	require.NoError(t, r.err, "the call in flight completes during shutdown")
	assert.False(t, r.isErr, r.text)
	assert.Contains(t, r.text, "export")
	require.NoError(t, <-stopped)
}
