package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

// eliciter answers elicitations with a reason and counts them.
type eliciter struct {
	reason string
	n      atomic.Int64
}

func (e *eliciter) Elicit(_ context.Context, _ mcpgo.ElicitationRequest) (*mcpgo.ElicitationResult, error) { //nolint:gocritic // hugeParam: the signature is mcp-go's ElicitationHandler
	e.n.Add(1)
	return &mcpgo.ElicitationResult{ElicitationResponse: mcpgo.ElicitationResponse{
		Action: mcpgo.ElicitationResponseActionAccept, Content: map[string]any{"reason": e.reason},
	}}, nil
}

// newElicitingGoClient is an mcp-go client with an elicitation handler. In
// 2026-07-28 mode it drives MRTR itself (input_required, retry).
func newElicitingGoClient(t *testing.T, url, version string, e *eliciter) *mcpclient.Client {
	t.Helper()
	trans, err := mcptransport.NewStreamableHTTP(url)
	require.NoError(t, err)
	c := mcpclient.NewClient(trans, mcpclient.WithProtocolVersion(version), mcpclient.WithElicitationHandler(e))
	require.NoError(t, c.Start(t.Context()))
	_, err = c.Initialize(t.Context(), mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ClientInfo: mcpgo.Implementation{Name: "e2e-mcp-go", Version: "1"},
	}})
	require.NoError(t, err)
	require.Equal(t, version, c.ProtocolVersion(), "negotiated version")
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newElicitingSDKClient is a go-sdk client with an elicitation handler
// (session era: go-sdk v1.8.0 has no client-side MRTR).
func newElicitingSDKClient(t *testing.T, url, version string, e *eliciter) *sdk.ClientSession {
	t.Helper()
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e-go-sdk", Version: "1"}, &sdk.ClientOptions{
		ElicitationHandler: func(_ context.Context, _ *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
			e.n.Add(1)
			return &sdk.ElicitResult{Action: "accept", Content: map[string]any{"reason": e.reason}}, nil
		},
	})
	cs, err := client.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: url, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	require.Equal(t, version, cs.InitializeResult().ProtocolVersion, "negotiated version")
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func goCallText(t *testing.T, c *mcpclient.Client, tool string, args map[string]any) string {
	t.Helper()
	res, err := c.CallTool(t.Context(), mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: tool, Arguments: args}})
	require.NoError(t, err, tool)
	require.NotEmpty(t, res.Content)
	text, ok := res.Content[0].(mcpgo.TextContent)
	require.True(t, ok, "%T", res.Content[0])
	require.False(t, res.IsError, text.Text)
	return text.Text
}

func sdkCallText(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tool, Arguments: args})
	require.NoError(t, err, tool)
	require.NotEmpty(t, res.Content)
	text, ok := res.Content[0].(*sdk.TextContent)
	require.True(t, ok, "%T", res.Content[0])
	require.False(t, res.IsError, text.Text)
	return text.Text
}

// elicitFleet is a go-sdk session-era upstream whose confirm_delete elicits
// by a server-to-client request, and an mcp-go upstream speaking 2026-07-28
// whose approve_refund asks by MRTR.
type elicitFleet struct {
	legacy, modern *server
	legacyObs      *upstreams.Observer
}

func startElicitFleet(t *testing.T) *elicitFleet {
	t.Helper()
	f := &elicitFleet{legacyObs: upstreams.NewObserver()}
	f.legacy = startServer(t, func() http.Handler { return upstreams.CustomersHandler(f.legacyObs) })
	f.modern = startServer(t, func() http.Handler { return upstreams.PaymentsHandler(nil) })
	return f
}

const testSessionKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func (f *elicitFleet) config(server string) string {
	return fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  session_key: {value: %q}
%s
upstreams:
  - {name: c25, http: {url: %q}}       # go-sdk, sessions
  - {name: payments, http: {url: %q}, protocol_version: "2026-07-28"}  # mcp-go; auto would keep a session
`, testSessionKey, server, f.legacy.url(), f.modern.url())
}

// TestElicitationAcrossEras: an upstream tool asks for an elicitation and
// the answer arrives whichever way the eras are mixed.
func TestElicitationAcrossEras(t *testing.T) {
	f := startElicitFleet(t)
	g := startGateway(t, f.config(""), true)
	legacyTool := func(id string) (string, map[string]any) {
		return "c25__confirm_delete", map[string]any{"id": id}
	}
	modernTool := func(id string) (string, map[string]any) {
		return "payments__approve_refund", map[string]any{"payment_id": id}
	}
	tests := []struct {
		name   string
		tool   func(string) (string, map[string]any)
		id     string
		client func(t *testing.T, e *eliciter, tool string, args map[string]any) string
		want   string
	}{
		{"legacy go-sdk client, modern upstream", modernTool, "p-5001", func(t *testing.T, e *eliciter, tool string, args map[string]any) string {
			t.Helper()
			return sdkCallText(t, newElicitingSDKClient(t, g.url, era2025, e), tool, args)
		}, "refund of p-5001 approved (reason: sdk-legacy)"},
		{"legacy mcp-go client, modern upstream", modernTool, "p-5002", func(t *testing.T, e *eliciter, tool string, args map[string]any) string {
			t.Helper()
			return goCallText(t, newElicitingGoClient(t, g.url, era2025, e), tool, args)
		}, "refund of p-5002 approved (reason: go-legacy)"},
		{"modern mcp-go client, legacy upstream", legacyTool, "c-001", func(t *testing.T, e *eliciter, tool string, args map[string]any) string {
			t.Helper()
			return goCallText(t, newElicitingGoClient(t, g.url, era2026, e), tool, args)
		}, "deletion of c-001 confirmed (reason: go-modern)"},
		{"modern mcp-go client, modern upstream", modernTool, "p-5003", func(t *testing.T, e *eliciter, tool string, args map[string]any) string {
			t.Helper()
			return goCallText(t, newElicitingGoClient(t, g.url, era2026, e), tool, args)
		}, "refund of p-5003 approved (reason: go-modern)"},
		{"legacy go-sdk client, legacy upstream", legacyTool, "c-002", func(t *testing.T, e *eliciter, tool string, args map[string]any) string {
			t.Helper()
			return sdkCallText(t, newElicitingSDKClient(t, g.url, era2025, e), tool, args)
		}, "deletion of c-002 confirmed (reason: sdk-legacy)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason := "go-legacy"
			switch {
			case strings.Contains(tt.name, "go-sdk"):
				reason = "sdk-legacy"
			case strings.HasPrefix(tt.name, "modern"):
				reason = "go-modern"
			}
			e := &eliciter{reason: reason}
			tool, args := tt.tool(tt.id)
			assert.Equal(t, tt.want, tt.client(t, e, tool, args)[:len(tt.want)])
			assert.Equal(t, int64(1), e.n.Load(), "elicitations answered")
		})
	}

	t.Run("legacy client without the capability gets a clear error", func(t *testing.T) {
		c := newRawClient(t, g.url)
		c.initialize()
		r := c.call("tools/call", `{"name":"payments__approve_refund","arguments":{"payment_id":"p-5004"}}`)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32021, r.Error.Code, r.Error.Message)
		assert.Contains(t, r.Error.Message, "elicitation")
	})
}

// TestMRTRRetryOnOtherGateway: two gateway processes behind one port; a
// modern client's MRTR retry lands on the other process and succeeds, since
// the requestState is sealed with a key both derive from session_key.
func TestMRTRRetryOnOtherGateway(t *testing.T) {
	f := startElicitFleet(t)
	a := startGateway(t, f.config(""), true)
	b := startGateway(t, f.config(""), true)
	var n atomic.Int64
	var mu sync.Mutex
	var calls []int64 // backend of each tools/call
	targets := []*url.URL{mustParse(t, a.base), mustParse(t, b.base)}
	lb := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := n.Add(1) % 2
			if r.In.Header.Get("Mcp-Method") == "tools/call" {
				mu.Lock()
				calls = append(calls, i)
				mu.Unlock()
			}
			r.SetURL(targets[i])
		},
	})
	t.Cleanup(lb.Close)

	e := &eliciter{reason: "two-gateways"}
	c := newElicitingGoClient(t, lb.URL+"/mcp", era2026, e)
	for _, id := range []string{"p-5001", "p-5002", "p-5003"} {
		text := goCallText(t, c, "payments__approve_refund", map[string]any{"payment_id": id})
		assert.Contains(t, text, "refund of "+id+" approved (reason: two-gateways)")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, calls, 6, "each call is an initial request and one retry")
	for i := 0; i < len(calls); i += 2 {
		assert.NotEqual(t, calls[i], calls[i+1], "call %d: the retry went to the other gateway", i/2)
	}
}

// mrtrRequest is a raw 2026-07-28 tools/call with elicitation declared.
func mrtrRequest(tool, args, extra string) modernRequest {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s%s,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}}`, tool, args, extra)
	return modernRequest{method: "tools/call", name: tool, body: body}
}

type inputRequired struct {
	ResultType    string                     `json:"resultType"`
	InputRequests map[string]json.RawMessage `json:"inputRequests"`
	RequestState  string                     `json:"requestState"`
}

// TestMRTRBadState sends retries with states the gateway must refuse.
func TestMRTRBadState(t *testing.T) {
	f := startElicitFleet(t)
	g := startGateway(t, f.config("  mrtr_hold_timeout: 2s"), true)
	first := func(t *testing.T, tool, args string) inputRequired {
		t.Helper()
		status, r := newRawClient(t, g.url).modern(mrtrRequest(tool, args, ""))
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error)
		var ir inputRequired
		require.NoError(t, json.Unmarshal(r.Result, &ir))
		require.Equal(t, "input_required", ir.ResultType, string(r.Result))
		require.Len(t, ir.InputRequests, 1)
		require.True(t, strings.HasPrefix(ir.RequestState, "g1."), ir.RequestState)
		return ir
	}
	retry := func(t *testing.T, tool, args, state string) (int, rpcResponse) {
		t.Helper()
		var key string
		extra := fmt.Sprintf(`,"requestState":%q,"inputResponses":{"r1":{"action":"accept","content":{"reason":"raw"}},"approval":{"action":"accept","content":{"reason":"raw"}}}`, state)
		_ = key
		return newRawClient(t, g.url).modern(mrtrRequest(tool, args, extra))
	}

	t.Run("modern upstream state is sealed and restored", func(t *testing.T) {
		ir := first(t, "payments__approve_refund", `{"payment_id":"p-5001"}`)
		assert.NotContains(t, ir.RequestState, "approve:", "the upstream's state is not readable")
		status, r := retry(t, "payments__approve_refund", `{"payment_id":"p-5001"}`, ir.RequestState)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error)
		assert.Contains(t, string(r.Result), "refund of p-5001 approved (reason: raw)")
	})

	ir := first(t, "payments__approve_refund", `{"payment_id":"p-5002"}`)
	enc := strings.TrimPrefix(ir.RequestState, "g1.")
	tampered := "g1." + flipBit(t, enc, len(enc)*3/8)
	tests := []struct {
		name, tool, args, state string
		wantCode                int
		wantStatus              int
	}{
		{"forged", "payments__approve_refund", `{"payment_id":"p-5002"}`, "g1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", -32602, 400},
		{"tampered", "payments__approve_refund", `{"payment_id":"p-5002"}`, tampered, -32602, 400},
		{"not the gateway's", "payments__approve_refund", `{"payment_id":"p-5002"}`, "approve:p-5002", -32602, 400},
		{"for another tool", "payments__get_payment", `{"payment_id":"p-5002"}`, ir.RequestState, -32602, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.False(t, tt.tool == "payments__approve_refund" && tt.state == ir.RequestState, "the case differs from the genuine retry")
			status, r := retry(t, tt.tool, tt.args, tt.state)
			require.Equal(t, tt.wantStatus, status)
			require.NotNil(t, r.Error)
			assert.Equal(t, tt.wantCode, r.Error.Code, r.Error.Message)
			assert.Contains(t, r.Error.Message, "requestState")
		})
	}

	t.Run("held legacy call is single-use", func(t *testing.T) {
		ir := first(t, "c25__confirm_delete", `{"id":"c-003"}`)
		status, r := retry(t, "c25__confirm_delete", `{"id":"c-003"}`, ir.RequestState)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error)
		assert.Contains(t, string(r.Result), "deletion of c-003 confirmed (reason: raw)")
		status, r = retry(t, "c25__confirm_delete", `{"id":"c-003"}`, ir.RequestState)
		require.Equal(t, http.StatusOK, status)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32067, r.Error.Code, r.Error.Message)
	})

	t.Run("retry after the held call was dropped", func(t *testing.T) {
		ir := first(t, "c25__confirm_delete", `{"id":"c-004"}`)
		// The hold timeout releases the call: the upstream sees it cancelled.
		select {
		case tool := <-f.legacyObs.Cancelled():
			require.Equal(t, "confirm_delete", tool)
		case <-time.After(30 * time.Second):
			t.Fatal("the held call was never released")
		}
		_, r := retry(t, "c25__confirm_delete", `{"id":"c-004"}`, ir.RequestState)
		require.NotNil(t, r.Error)
		assert.Equal(t, -32067, r.Error.Code, r.Error.Message)
	})
}
