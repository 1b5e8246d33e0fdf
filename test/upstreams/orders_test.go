package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The orders server is mcp-go; these tests drive it with the official go-sdk
// client so that each server is checked by an independent implementation.

func TestOrdersListTools(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, OrdersHandler(nil))
	cs := connectSDK(t, url, hc, nil, "")

	// The server only serves session-era versions, so the go-sdk client,
	// which prefers 2026-07-28, must have negotiated down.
	assert.Equal(t, "2025-11-25", cs.InitializeResult().ProtocolVersion)
	assert.NotEmpty(t, cs.ID(), "stateful server should mint a session id")

	res, err := cs.ListTools(t.Context(), nil)
	require.NoError(t, err)
	var names []string
	tools := map[string]*sdk.Tool{}
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		tools[tool.Name] = tool
	}
	assert.ElementsMatch(t, []string{"get_order", "list_orders", "create_order", "cancel_order", "export_orders", "label_preview"}, names)

	getOrder := tools["get_order"]
	require.NotNil(t, getOrder)
	require.NotNil(t, getOrder.Annotations)
	assert.True(t, getOrder.Annotations.ReadOnlyHint)
	assert.NotNil(t, getOrder.OutputSchema)
	require.NotNil(t, tools["cancel_order"].Annotations)
	require.NotNil(t, tools["cancel_order"].Annotations.DestructiveHint)
	assert.True(t, *tools["cancel_order"].Annotations.DestructiveHint)
}

func TestOrdersSchemasAreByteExact(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, OrdersHandler(nil))
	raw := newRawSession(t, url, hc)

	var list struct {
		Result struct {
			Tools []struct {
				Name         string          `json:"name"`
				InputSchema  json.RawMessage `json:"inputSchema"`
				OutputSchema json.RawMessage `json:"outputSchema"`
			} `json:"tools"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(raw.call(1, "tools/list", map[string]any{}), &list))
	byName := map[string]json.RawMessage{}
	for _, tool := range list.Result.Tools {
		byName[tool.Name+".in"] = tool.InputSchema
		byName[tool.Name+".out"] = tool.OutputSchema
	}

	tests := []struct {
		name   string
		key    string
		schema string
	}{
		{name: "get_order input", key: "get_order.in", schema: getOrderInput},
		{name: "get_order output", key: "get_order.out", schema: orderSchema},
		{name: "create_order input", key: "create_order.in", schema: createOrderInput},
		{name: "export_orders input", key: "export_orders.in", schema: exportOrdersInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var want bytes.Buffer
			require.NoError(t, json.Compact(&want, []byte(tt.schema)))
			got := byName[tt.key]
			assert.True(t, bytes.Equal(want.Bytes(), got), "on the wire:\n%s\nwant:\n%s", got, want.Bytes())
		})
	}
}

func TestOrdersCallTool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tool      string
		args      map[string]any
		wantError bool
		want      map[string]any // Top-level fields of the structured result.
		wantIDs   []string       // Ids in the result's "orders" list.
	}{
		{
			name: "get_order",
			tool: "get_order",
			args: map[string]any{"id": "o-1002"},
			want: map[string]any{"id": "o-1002", "customer_id": "c-002", "total_cents": 49800},
		},
		{name: "get_order unknown id", tool: "get_order", args: map[string]any{"id": "o-9999"}, wantError: true},
		{name: "get_order bad id fails schema validation", tool: "get_order", args: map[string]any{"id": "nope"}, wantError: true},
		{
			name:    "list_orders by status and customer",
			tool:    "list_orders",
			args:    map[string]any{"status": "shipped", "customer_id": "c-001"},
			want:    map[string]any{"total": 1},
			wantIDs: []string{"o-1004"},
		},
		{
			name:    "list_orders with limit",
			tool:    "list_orders",
			args:    map[string]any{"status": "pending", "limit": 2},
			want:    map[string]any{"total": 3},
			wantIDs: []string{"o-1011", "o-1009"},
		},
		{
			name: "create_order with nested input",
			tool: "create_order",
			args: map[string]any{
				"customer_id": "c-003",
				"items":       []any{map[string]any{"sku": "sku-mouse", "quantity": 2}, map[string]any{"sku": "sku-cable", "quantity": 1}},
				"shipping":    map[string]any{"address": map[string]any{"line1": "1 Bletchley Park", "city": "Milton Keynes", "postal_code": "MK3 6EB", "country": "GB"}},
				"priority":    "express",
			},
			want: map[string]any{"id": "o-1013", "status": "pending", "priority": "express", "total_cents": 2*2900 + 900},
		},
		{
			name:      "create_order missing shipping fails schema validation",
			tool:      "create_order",
			args:      map[string]any{"customer_id": "c-003", "items": []any{map[string]any{"sku": "sku-mouse", "quantity": 1}}},
			wantError: true,
		},
		{
			name: "cancel_order pending order",
			tool: "cancel_order",
			args: map[string]any{"id": "o-1007", "reason": "duplicate"},
			want: map[string]any{"status": "cancelled", "cancel_reason": "duplicate"},
		},
		{name: "cancel_order shipped order", tool: "cancel_order", args: map[string]any{"id": "o-1003", "reason": "late"}, wantError: true},
		{
			name: "export_orders without progress token",
			tool: "export_orders",
			args: map[string]any{"steps": 2, "delay_ms": 0},
			want: map[string]any{"orders_exported": 12, "steps": 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// A server per case keeps the mutating cases independent.
			url, hc := serve(t, OrdersHandler(nil))
			cs := connectSDK(t, url, hc, nil, "")
			res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tt.tool, Arguments: tt.args})
			require.NoError(t, err)
			require.Equal(t, tt.wantError, res.IsError, "result: %s", sdkText(t, res))
			if tt.wantError {
				return
			}
			assertStructured(t, res.StructuredContent, tt.want, "orders", tt.wantIDs)
		})
	}
}

func TestOrdersExportProgress(t *testing.T) {
	t.Parallel()
	const steps = 6
	progress := make(chan *sdk.ProgressNotificationParams, steps+1)
	url, hc := serve(t, OrdersHandler(nil))
	cs := connectSDK(t, url, hc, &sdk.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
			progress <- req.Params
		},
	}, "")

	params := &sdk.CallToolParams{Name: "export_orders", Arguments: map[string]any{"steps": steps, "delay_ms": 1}}
	params.SetProgressToken("export-1")
	res, err := cs.CallTool(t.Context(), params)
	require.NoError(t, err)
	require.False(t, res.IsError, sdkText(t, res))

	// The client may still be dispatching notifications when the result
	// arrives, so read exactly steps of them.
	for i := 1; i <= steps; i++ {
		p := receive(t, progress, "progress notification")
		assert.Equal(t, "export-1", p.ProgressToken)
		assert.Equal(t, i, int(p.Progress), "progress out of order")
		assert.Equal(t, steps, int(p.Total))
		assert.NotEmpty(t, p.Message)
	}
}

func TestOrdersExportCancelledByClient(t *testing.T) {
	t.Parallel()
	obs := NewObserver()
	progress := make(chan struct{}, 64)
	url, hc := serve(t, OrdersHandler(obs))
	cs := connectSDK(t, url, hc, &sdk.ClientOptions{
		ProgressNotificationHandler: func(context.Context, *sdk.ProgressNotificationClientRequest) {
			select {
			case progress <- struct{}{}:
			default:
			}
		},
	}, "")

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		params := &sdk.CallToolParams{Name: "export_orders", Arguments: map[string]any{"steps": 50, "delay_ms": 100}}
		params.SetProgressToken("cancel-me")
		_, err := cs.CallTool(ctx, params)
		done <- err
	}()

	// The first progress notification proves the handler is running.
	receive(t, progress, "first progress notification")
	cancel()
	require.ErrorIs(t, receive(t, done, "CallTool to return"), context.Canceled)
	assert.Equal(t, "export_orders", receive(t, obs.Cancelled(), "cancellation record"))
}

// TestOrdersCancelledNotification checks what the gateway relies on: a
// notifications/cancelled posted on the session, naming the request id,
// cancels the running export while its POST stays open.
func TestOrdersCancelledNotification(t *testing.T) {
	t.Parallel()
	obs := NewObserver()
	url, hc := serve(t, OrdersHandler(obs))
	raw := newRawSession(t, url, hc)

	resp := raw.post(t.Context(), map[string]any{ //nolint:bodyclose // readMessages closes it in the reader goroutine; the defer below covers an early failure
		"jsonrpc": "2.0", "id": 42, "method": "tools/call",
		"params": map[string]any{
			"name":      "export_orders",
			"arguments": map[string]any{"steps": 50, "delay_ms": 100},
			"_meta":     map[string]any{"progressToken": "raw-1"},
		},
	})
	defer resp.Body.Close() // readMessages closes it too; this covers a failure before that
	messages := make(chan rawMessage, 64)
	go func() {
		defer close(messages)
		_ = readMessages(resp, func(m rawMessage) bool {
			messages <- m
			return true
		})
	}()

	first := receive(t, messages, "first progress notification")
	require.Equal(t, "notifications/progress", first.Method)

	cancelResp := raw.post(t.Context(), map[string]any{
		"jsonrpc": "2.0", "method": "notifications/cancelled",
		"params": map[string]any{"requestId": 42, "reason": "gateway test"},
	})
	require.NoError(t, cancelResp.Body.Close())
	assert.Equal(t, 202, cancelResp.StatusCode)

	assert.Equal(t, "export_orders", receive(t, obs.Cancelled(), "cancellation record"))

	// mcp-go still answers the cancelled request; the answer is an error,
	// not the export's result.
	var last rawMessage
	for m := range messages {
		last = m
	}
	assert.JSONEq(t, "42", string(last.ID))
	assert.NotEmpty(t, last.Error, "cancelled export should not succeed: %s", last.Raw)
}

func TestOrdersUnknownContentType(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, OrdersHandler(nil))
	raw := newRawSession(t, url, hc)

	var resp struct {
		Result struct {
			Content []map[string]any `json:"content"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(raw.call(1, "tools/call", map[string]any{
		"name": "label_preview", "arguments": map[string]any{"id": "o-1001"},
	}), &resp))
	require.Len(t, resp.Result.Content, 2)
	assert.Equal(t, "text", resp.Result.Content[0]["type"])
	assert.Equal(t, map[string]any{"type": "x-label", "format": "zpl", "data": "^XA^FO50,50^FDo-1001 c-001 GB^FS^XZ"}, resp.Result.Content[1])
}

func TestOrdersPromptAndResources(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, OrdersHandler(nil))
	cs := connectSDK(t, url, hc, nil, "")

	prompt, err := cs.GetPrompt(t.Context(), &sdk.GetPromptParams{Name: "order_summary", Arguments: map[string]string{"order_id": "o-1005"}})
	require.NoError(t, err)
	require.Len(t, prompt.Messages, 1)
	assert.Contains(t, prompt.Messages[0].Content.(*sdk.TextContent).Text, `"id":"o-1005"`)

	tests := []struct {
		uri     string
		wantIDs []string
	}{
		{uri: "orders://recent", wantIDs: []string{"o-1012", "o-1011", "o-1010", "o-1009", "o-1008"}},
		{uri: "orders://o-1003", wantIDs: []string{"o-1003"}},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			res, err := cs.ReadResource(t.Context(), &sdk.ReadResourceParams{URI: tt.uri})
			require.NoError(t, err)
			require.Len(t, res.Contents, 1)
			assert.Equal(t, "application/json", res.Contents[0].MIMEType)
			var got []struct {
				ID string `json:"id"`
			}
			text := []byte(res.Contents[0].Text)
			if !bytes.HasPrefix(text, []byte("[")) {
				text = slices.Concat([]byte("["), text, []byte("]"))
			}
			require.NoError(t, json.Unmarshal(text, &got))
			var ids []string
			for _, o := range got {
				ids = append(ids, o.ID)
			}
			assert.Equal(t, tt.wantIDs, ids)
		})
	}
}
