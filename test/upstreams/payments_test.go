package upstreams

import (
	"encoding/json"
	"io"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The payments server is mcp-go: over HTTP it is driven by the go-sdk
// client, in both protocol eras; over stdio by mcp-go's own client, which
// is what the gateway's stdio transport uses.

func TestPaymentsHTTP(t *testing.T) {
	t.Parallel()
	eras := []struct {
		name    string
		version string // Empty lets the client negotiate; it prefers 2026-07-28.
		want    string
	}{
		{name: "stateless era", version: "", want: "2026-07-28"},
		{name: "session era", version: "2025-11-25", want: "2025-11-25"},
	}
	for _, era := range eras {
		t.Run(era.name, func(t *testing.T) {
			t.Parallel()
			obs := NewObserver()
			url, hc := serve(t, PaymentsHandler(obs))
			cs := connectSDK(t, url, hc, nil, era.version)
			require.Equal(t, era.want, cs.InitializeResult().ProtocolVersion)

			res, err := cs.ListTools(t.Context(), nil)
			require.NoError(t, err)
			tools := map[string]*sdk.Tool{}
			for _, tool := range res.Tools {
				tools[tool.Name] = tool
			}
			require.Len(t, tools, 4)
			require.Contains(t, tools, "find_payment")
			schema, err := json.Marshal(tools["find_payment"].InputSchema)
			require.NoError(t, err)
			assert.Contains(t, string(schema), `"oneOf"`)
			require.NotNil(t, tools["refund"].Annotations)
			require.NotNil(t, tools["refund"].Annotations.DestructiveHint)
			assert.True(t, *tools["refund"].Annotations.DestructiveHint)

			// The calls run in order against one server: the refunds build
			// on each other.
			calls := []struct {
				name      string
				tool      string
				args      map[string]any
				wantError bool
				wantJSON  map[string]any
			}{
				{
					name: "get_payment", tool: "get_payment", args: map[string]any{"payment_id": "p-5002"},
					wantJSON: map[string]any{"order_id": "o-1002", "amount_cents": 49800, "status": "captured"},
				},
				{
					name: "find_payment by order", tool: "find_payment", args: map[string]any{"order_id": "o-1005"},
					wantJSON: map[string]any{"payment_id": "p-5005", "customer_id": "c-004"},
				},
				{
					name: "find_payment with both ids breaks oneOf", tool: "find_payment",
					args: map[string]any{"payment_id": "p-5001", "order_id": "o-1001"}, wantError: true,
				},
				{name: "find_payment unpaid order", tool: "find_payment", args: map[string]any{"order_id": "o-1007"}, wantError: true},
				{
					name: "partial refund", tool: "refund", args: map[string]any{"payment_id": "p-5002", "amount": 800, "reason": "damaged"},
					wantJSON: map[string]any{"refunded_cents": 800, "status": "partially_refunded"},
				},
				{name: "refund more than is left", tool: "refund", args: map[string]any{"payment_id": "p-5002", "amount": 49001, "reason": "oops"}, wantError: true},
				{
					name: "refund the rest", tool: "refund", args: map[string]any{"payment_id": "p-5002", "amount": 49000, "reason": "returned"},
					wantJSON: map[string]any{"refunded_cents": 49800, "status": "refunded"},
				},
			}
			for _, tt := range calls {
				res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tt.tool, Arguments: tt.args})
				require.NoError(t, err, tt.name)
				require.Equal(t, tt.wantError, res.IsError, "%s: %s", tt.name, sdkText(t, res))
				if !tt.wantError {
					assertStructured(t, res.StructuredContent, tt.wantJSON, "", nil)
				}
			}
			assertPaymentsReadAndGet(t, cs)
			assert.NotEmpty(t, obs.LastHeaders().Get("Mcp-Protocol-Version"))
		})
	}
}

// assertPaymentsReadAndGet lists, reads and gets the payments server's
// resource template and prompt. It runs after the refunds of p-5002 in
// TestPaymentsHTTP, so the resource shows them.
func assertPaymentsReadAndGet(t *testing.T, cs *sdk.ClientSession) {
	t.Helper()
	templates, err := cs.ListResourceTemplates(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, templates.ResourceTemplates, 1)
	assert.Equal(t, "payment://{id}", templates.ResourceTemplates[0].URITemplate)
	assert.Equal(t, "application/json", templates.ResourceTemplates[0].MIMEType)

	res, err := cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: "payment://p-5002"})
	require.NoError(t, err)
	require.Len(t, res.Contents, 1)
	assert.Equal(t, "payment://p-5002", res.Contents[0].URI)
	assert.Equal(t, "application/json", res.Contents[0].MIMEType)
	var p payment
	require.NoError(t, json.Unmarshal([]byte(res.Contents[0].Text), &p))
	assert.Equal(t, "o-1002", p.OrderID)
	assert.Equal(t, "refunded", p.Status)
	assert.Equal(t, []refundRecord{{800, "damaged"}, {49000, "returned"}}, p.Refunds)

	_, err = cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: "payment://p-9999"})
	require.Error(t, err, "unknown payment")

	prompts, err := cs.ListPrompts(t.Context(), nil)
	require.NoError(t, err)
	require.Len(t, prompts.Prompts, 1)
	assert.Equal(t, "refund_note", prompts.Prompts[0].Name)
	require.Len(t, prompts.Prompts[0].Arguments, 2)
	assert.True(t, prompts.Prompts[0].Arguments[0].Required)
	assert.False(t, prompts.Prompts[0].Arguments[1].Required)

	prompt, err := cs.GetPrompt(t.Context(), &sdk.GetPromptParams{Name: "refund_note", Arguments: map[string]string{"payment_id": "p-5002", "reason": "damaged in transit"}})
	require.NoError(t, err)
	require.Len(t, prompt.Messages, 1)
	assert.Equal(t, sdk.Role("user"), prompt.Messages[0].Role)
	text, ok := prompt.Messages[0].Content.(*sdk.TextContent)
	require.True(t, ok, "content: %#v", prompt.Messages[0].Content)
	assert.Equal(t, "Write a short, polite note to customer c-002: payment p-5002 for order o-1002 (498.00 EUR) is being refunded. Reason: damaged in transit.", text.Text)

	_, err = cs.GetPrompt(t.Context(), &sdk.GetPromptParams{Name: "refund_note", Arguments: map[string]string{"payment_id": "p-9999"}})
	assert.Error(t, err, "unknown payment")
}

// TestPaymentsStdio runs ServePaymentsStdio over pipes with mcp-go's client
// on the other end. It is not parallel: mcp-go keeps its stdio session in a
// package-level variable.
func TestPaymentsStdio(t *testing.T) {
	clientIn, serverOut := io.Pipe()
	serverIn, clientOut := io.Pipe()
	served := make(chan error, 1)
	go func() {
		err := ServePaymentsStdio(t.Context(), serverIn, serverOut)
		_ = serverOut.Close()
		served <- err
	}()

	c := mcpclient.NewClient(mcptransport.NewIO(clientIn, clientOut, nil))
	require.NoError(t, c.Start(t.Context()))
	_, err := c.Initialize(t.Context(), mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "upstreams-test", Version: "0.0.1"},
	}})
	require.NoError(t, err)

	tools, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for i := range tools.Tools {
		names = append(names, tools.Tools[i].Name)
	}
	assert.ElementsMatch(t, []string{"get_payment", "find_payment", "refund", "approve_refund"}, names)

	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "get_payment", Arguments: map[string]any{"payment_id": "p-5001"},
	}})
	require.NoError(t, err)
	require.False(t, res.IsError, mcpGoText(t, res))
	assert.Contains(t, mcpGoText(t, res), `"order_id":"o-1001"`)

	read, err := c.ReadResource(t.Context(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "payment://p-5003"}})
	require.NoError(t, err)
	require.Len(t, read.Contents, 1)
	contents, ok := read.Contents[0].(mcp.TextResourceContents)
	require.True(t, ok, "contents: %#v", read.Contents[0])
	assert.Contains(t, contents.Text, `"order_id":"o-1003"`)

	prompt, err := c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{
		Name: "refund_note", Arguments: map[string]string{"payment_id": "p-5003"},
	}})
	require.NoError(t, err)
	require.Len(t, prompt.Messages, 1)
	note, ok := prompt.Messages[0].Content.(mcp.TextContent)
	require.True(t, ok, "content: %#v", prompt.Messages[0].Content)
	assert.Contains(t, note.Text, "payment p-5003 for order o-1003")
	assert.Contains(t, note.Text, "Reason: not given.")

	// Closing the client closes the server's stdin; it then returns cleanly.
	require.NoError(t, c.Close())
	require.NoError(t, receive(t, served, "ServePaymentsStdio to return"))
}
