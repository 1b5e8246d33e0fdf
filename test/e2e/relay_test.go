package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
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

// notesPair is two Notes upstreams behind one gateway: east served
// stateful by go-sdk (the gateway speaks the session era to it), west
// stateless (2026-07-28).
type notesPair struct {
	east, west *upstreams.Notes
	g          *gw
}

func startNotesPair(t *testing.T, extra string) *notesPair {
	t.Helper()
	p := &notesPair{east: upstreams.NewNotes("east"), west: upstreams.NewNotes("west")}
	east := startServer(t, func() http.Handler { return p.east.Handler(false) })
	west := startServer(t, func() http.Handler { return p.west.Handler(true) })
	p.g = startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
catalog:
  list_changed_debounce: 20ms
upstreams:
  - name: east
    http: {url: %q}
  - name: west
    http: {url: %q}
%s`, east.url(), west.url(), extra), true)
	return p
}

// wantChatter is what the chatty tool sends while it runs, in order.
var wantChatter = []string{
	"log step 1", "progress 1", "log step 2", "progress 2", "log step 3", "progress 3",
}

// noteLog keeps the notifications a client received, in order.
type noteLog struct {
	mu  sync.Mutex
	got []string
}

func (r *noteLog) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *noteLog) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.got
	r.got = nil
	return out
}

func (r *noteLog) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestNotificationsDuringACall calls a tool that logs three messages and
// reports progress, on an upstream of each era, with a real client of each
// era: every notification reaches the client, in order.
func TestNotificationsDuringACall(t *testing.T) {
	p := startNotesPair(t, "")
	ctx := t.Context()

	t.Run("go-sdk 2025-11-25", func(t *testing.T) {
		var rec noteLog
		client := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1"}, &sdk.ClientOptions{
			LoggingMessageHandler: func(_ context.Context, req *sdk.LoggingMessageRequest) {
				rec.add(fmt.Sprintf("log %v", req.Params.Data))
			},
			ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
				rec.add(fmt.Sprintf("progress %v", req.Params.Progress))
			},
		})
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: p.g.url, MaxRetries: -1},
			&sdk.ClientSessionOptions{ProtocolVersion: era2025})
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		require.NoError(t, cs.SetLoggingLevel(ctx, &sdk.SetLoggingLevelParams{Level: "info"})) //nolint:staticcheck // logging is what is tested; SEP-2577 keeps it in its deprecation window.
		for _, up := range []string{"east", "west"} {
			params := &sdk.CallToolParams{Name: up + "__chatty", Arguments: map[string]any{}}
			params.SetProgressToken("tok-" + up)
			res, err := cs.CallTool(ctx, params)
			require.NoError(t, err, up)
			require.False(t, res.IsError, up)
			// The SDK may run handlers after the call returns.
			require.Eventually(t, func() bool { return rec.len() >= len(wantChatter) }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, wantChatter, rec.take(), up)
		}
	})

	t.Run("mcp-go 2026-07-28", func(t *testing.T) {
		var rec noteLog
		trans, err := mcptransport.NewStreamableHTTP(p.g.url)
		require.NoError(t, err)
		c := mcpclient.NewClient(trans, mcpclient.WithProtocolVersion(era2026))
		c.OnNotification(func(n mcpgo.JSONRPCNotification) {
			switch n.Method {
			case "notifications/message":
				rec.add(fmt.Sprintf("log %v", n.Params.AdditionalFields["data"]))
			case "notifications/progress":
				rec.add(fmt.Sprintf("progress %v", n.Params.AdditionalFields["progress"]))
			}
		})
		require.NoError(t, c.Start(ctx))
		_, err = c.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
			ClientInfo: mcpgo.Implementation{Name: "e2e", Version: "1"},
		}})
		require.NoError(t, err)
		require.Equal(t, era2026, c.ProtocolVersion())
		t.Cleanup(func() { _ = c.Close() })
		// In 2026-07-28 the level travels in each request's _meta.
		require.NoError(t, c.SetLevel(ctx, mcpgo.SetLevelRequest{Params: mcpgo.SetLevelParams{Level: mcpgo.LoggingLevelInfo}})) //nolint:staticcheck // as above.
		for _, up := range []string{"east", "west"} {
			req := mcpgo.CallToolRequest{}
			req.Params.Name = up + "__chatty"
			req.Params.Arguments = map[string]any{}
			req.Params.Meta = &mcpgo.Meta{ProgressToken: "tok-" + up}
			res, err := c.CallTool(ctx, req)
			require.NoError(t, err, up)
			require.False(t, res.IsError, up)
			require.Eventually(t, func() bool { return rec.len() >= len(wantChatter) }, 10*time.Second, 5*time.Millisecond)
			assert.Equal(t, wantChatter, rec.take(), up)
		}
	})

	// On the wire: every notification is an event of the call's own
	// response stream, before the result, which ends it.
	for _, era := range []string{era2025, era2026} {
		for _, up := range []string{"east", "west"} {
			t.Run("wire "+era+" "+up, func(t *testing.T) {
				events := chattyOnTheWire(t, p.g.url, era, up)
				var got []string
				for _, ev := range events[:len(events)-1] {
					var n struct {
						Method string `json:"method"`
						Params struct {
							Data     any    `json:"data"`
							Progress any    `json:"progress"`
							Token    string `json:"progressToken"`
						} `json:"params"`
					}
					require.NoError(t, json.Unmarshal(ev, &n), string(ev))
					switch n.Method {
					case "notifications/message":
						got = append(got, fmt.Sprintf("log %v", n.Params.Data))
					case "notifications/progress":
						assert.Equal(t, "wire-token", n.Params.Token, "the client's own progress token")
						got = append(got, fmt.Sprintf("progress %v", n.Params.Progress))
					default:
						t.Errorf("unexpected event %s", ev)
					}
				}
				assert.Equal(t, wantChatter, got)
				assert.Contains(t, string(events[len(events)-1]), `"result":`, "the last event is the result")
			})
		}
	}
}

// chattyOnTheWire calls up's chatty tool with a raw client speaking era,
// the log level set to info, and returns the data of every event of the
// call's response stream.
func chattyOnTheWire(t *testing.T, url, era, up string) [][]byte {
	t.Helper()
	c := newRawClient(t, url)
	meta := `"progressToken":"wire-token"`
	if era == era2025 {
		c.initialize()
		r := c.call("logging/setLevel", `{"level":"info"}`)
		require.Nil(t, r.Error)
	} else {
		c.header.Set("Mcp-Protocol-Version", era2026)
		c.header.Set("Mcp-Method", "tools/call")
		c.header.Set("Mcp-Name", up+"__chatty")
		meta += `,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info"`
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + up + `__chatty","arguments":{},"_meta":{` + meta + `}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	maps.Copy(req.Header, c.header)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(data))
	require.True(t, strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream"), "an SSE response: %s", data)
	events := sseData(data)
	require.NotEmpty(t, events)
	return slices.DeleteFunc(events, func(b []byte) bool { return len(strings.TrimSpace(string(b))) == 0 })
}
