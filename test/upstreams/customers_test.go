package upstreams

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The customers server is the official go-sdk; these tests drive it with
// the mcp-go client so that each server is checked by an independent
// implementation.

// connectMCPGo connects an mcp-go client to the customers server. The
// version is pinned to the session era: left at its 2026-07-28 default,
// mcp-go's client fails every call against a stateful go-sdk server.
//
// The client gets a transport of its own. mcp-go's default http.Client
// uses http.DefaultTransport, whose idle connections every
// httptest.Server.Close closes: a parallel test ending its server could
// break this client's next request ("CloseIdleConnections called").
func connectMCPGo(t *testing.T, url string, headers map[string]string) *mcpclient.Client {
	t.Helper()
	own := &http.Transport{}
	t.Cleanup(own.CloseIdleConnections)
	tr, err := mcptransport.NewStreamableHTTP(url, mcptransport.WithHTTPHeaders(headers),
		mcptransport.WithHTTPBasicClient(&http.Client{Transport: own}))
	require.NoError(t, err)
	c := mcpclient.NewClient(tr, mcpclient.WithProtocolVersion(mcp.LATEST_LEGACY_PROTOCOL_VERSION))
	require.NoError(t, c.Start(t.Context()))
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Initialize(t.Context(), mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "upstreams-test", Version: "0.0.1"},
	}})
	require.NoError(t, err)
	return c
}

// mcpGoText returns the concatenated text content of an mcp-go tool result.
func mcpGoText(t *testing.T, res *mcp.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		tc, ok := c.(mcp.TextContent)
		require.True(t, ok, "content %T is not text", c)
		b.WriteString(tc.Text)
	}
	return b.String()
}

func TestCustomersListTools(t *testing.T) {
	t.Parallel()
	obs := NewObserver()
	url, _ := serve(t, CustomersHandler(obs))
	c := connectMCPGo(t, url, map[string]string{"X-Request-Tenant": "acme"})

	assert.NotEmpty(t, c.GetSessionId(), "stateful server should mint a session id")
	res, err := c.ListTools(t.Context(), mcp.ListToolsRequest{})
	require.NoError(t, err)
	var names []string
	for i := range res.Tools {
		tool := &res.Tools[i]
		names = append(names, tool.Name)
		if tool.Name == "lookup_customer" {
			require.NotNil(t, tool.Annotations.ReadOnlyHint)
			assert.True(t, *tool.Annotations.ReadOnlyHint)
		}
	}
	assert.ElementsMatch(t, []string{"lookup_customer", "search_customers", "update_customer", "confirm_delete"}, names)

	h := obs.LastHeaders()
	assert.Equal(t, "acme", h.Get("X-Request-Tenant"))
	assert.Equal(t, c.GetSessionId(), h.Get("Mcp-Session-Id"))
}

func TestCustomersCallTool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		tool      string
		args      map[string]any
		wantError bool
		want      map[string]any // Top-level fields of the structured result.
		wantIDs   []string       // Ids in the result's "customers" list.
	}{
		{
			name: "lookup_customer",
			tool: "lookup_customer",
			args: map[string]any{"id": "c-001"},
			want: map[string]any{"name": "Ada Lovelace", "tier": "enterprise"},
		},
		{name: "lookup_customer unknown id", tool: "lookup_customer", args: map[string]any{"id": "c-404"}, wantError: true},
		{name: "lookup_customer unknown argument", tool: "lookup_customer", args: map[string]any{"id": "c-001", "x": 1}, wantError: true},
		{
			name:    "search_customers with limit",
			tool:    "search_customers",
			args:    map[string]any{"query": "EXAMPLE.COM", "limit": 2},
			want:    map[string]any{"total": 6},
			wantIDs: []string{"c-001", "c-002"},
		},
		{
			name:    "search_customers default limit",
			tool:    "search_customers",
			args:    map[string]any{"query": "example"},
			want:    map[string]any{"total": 10},
			wantIDs: []string{"c-001", "c-002", "c-003", "c-004", "c-005"},
		},
		{
			name:    "search_customers no match",
			tool:    "search_customers",
			args:    map[string]any{"query": "zzz"},
			want:    map[string]any{"total": 0},
			wantIDs: []string{},
		},
		{
			name: "update_customer",
			tool: "update_customer",
			args: map[string]any{"id": "c-003", "fields": map[string]any{"tier": "pro", "email": "turing@example.org"}},
			want: map[string]any{"tier": "pro", "email": "turing@example.org", "name": "Alan Turing"},
		},
		{name: "update_customer bad tier", tool: "update_customer", args: map[string]any{"id": "c-003", "fields": map[string]any{"tier": "gold"}}, wantError: true},
		{name: "update_customer no fields", tool: "update_customer", args: map[string]any{"id": "c-003", "fields": map[string]any{}}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, _ := serve(t, CustomersHandler(nil))
			c := connectMCPGo(t, url, nil)
			res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: tt.tool, Arguments: tt.args}})
			require.NoError(t, err)
			require.Equal(t, tt.wantError, res.IsError, "result: %s", mcpGoText(t, res))
			if tt.wantError {
				return
			}
			assertStructured(t, res.StructuredContent, tt.want, "customers", tt.wantIDs)
		})
	}
}

func TestCustomersResources(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, CustomersHandler(nil))
	c := connectMCPGo(t, url, nil)

	templates, err := c.ListResourceTemplates(t.Context(), mcp.ListResourceTemplatesRequest{})
	require.NoError(t, err)
	require.Len(t, templates.ResourceTemplates, 1)
	assert.Equal(t, "customer://{id}", templates.ResourceTemplates[0].URITemplate.Raw())

	tests := []struct {
		uri      string
		wantJSON string
		wantErr  bool
	}{
		{uri: "customer://c-001", wantJSON: `{"id":"c-001","name":"Ada Lovelace","email":"ada@example.com","tier":"enterprise","country":"GB","since":"2021-03-14"}`},
		{uri: "customer://index", wantJSON: `{"ids":["c-001","c-002","c-003","c-004","c-005","c-006","c-007","c-008","c-009","c-010"]}`},
		{uri: "customer://c-404", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			t.Parallel()
			res, err := c.ReadResource(t.Context(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: tt.uri}})
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Len(t, res.Contents, 1)
			text, ok := res.Contents[0].(mcp.TextResourceContents)
			require.True(t, ok, "contents %T", res.Contents[0])
			assert.Equal(t, "application/json", text.MIMEType)
			assert.JSONEq(t, tt.wantJSON, text.Text)
		})
	}
}

func TestCustomersPrompt(t *testing.T) {
	t.Parallel()
	url, _ := serve(t, CustomersHandler(nil))
	c := connectMCPGo(t, url, nil)

	prompts, err := c.ListPrompts(t.Context(), mcp.ListPromptsRequest{})
	require.NoError(t, err)
	require.Len(t, prompts.Prompts, 1)
	assert.Equal(t, "customer_brief", prompts.Prompts[0].Name)

	res, err := c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{
		Name: "customer_brief", Arguments: map[string]string{"id": "c-002"},
	}})
	require.NoError(t, err)
	require.Len(t, res.Messages, 1)
	text, ok := res.Messages[0].Content.(mcp.TextContent)
	require.True(t, ok)
	assert.Contains(t, text.Text, "Grace Hopper")

	_, err = c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{
		Name: "customer_brief", Arguments: map[string]string{"id": "c-404"},
	}})
	require.Error(t, err)
}

// TestCustomersRawStructuredContent checks the wire form with no client
// library in between: structured content and its JSON text agree.
func TestCustomersRawStructuredContent(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, CustomersHandler(nil))
	raw := newRawSession(t, url, hc)
	require.NotEmpty(t, raw.sessionID)

	var resp struct {
		Result struct {
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
			StructuredContent json.RawMessage `json:"structuredContent"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(raw.call(1, "tools/call", map[string]any{
		"name": "lookup_customer", "arguments": map[string]any{"id": "c-010"},
	}), &resp))
	require.Len(t, resp.Result.Content, 1)
	assert.Equal(t, "text", resp.Result.Content[0].Type)
	assert.JSONEq(t, resp.Result.Content[0].Text, string(resp.Result.StructuredContent))
	assert.Contains(t, resp.Result.Content[0].Text, `"id":"c-010"`)
}
