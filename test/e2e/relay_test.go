package e2e

import (
	"bytes"
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
	east, west       *upstreams.Notes
	eastSrv, westSrv *server
	g                *gw
}

func startNotesPair(t *testing.T, extra string) *notesPair {
	t.Helper()
	p := &notesPair{east: upstreams.NewNotes("east"), west: upstreams.NewNotes("west")}
	east := startServer(t, func() http.Handler { return p.east.Handler(false) })
	west := startServer(t, func() http.Handler { return p.west.Handler(true) })
	p.eastSrv, p.westSrv = east, west
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
	return toolOnTheWire(t, url, era, up+"__chatty")
}

// toolOnTheWire is chattyOnTheWire for the tool exposed as name.
func toolOnTheWire(t *testing.T, url, era, name string) [][]byte {
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
		c.header.Set("Mcp-Name", name)
		meta += `,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"info"`
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + name + `","arguments":{},"_meta":{` + meta + `}}}`
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

// updates counts the notifications/resources/updated a client received,
// by URI.
type updates struct {
	mu sync.Mutex
	n  map[string]int
}

func (u *updates) add(uri string) {
	u.mu.Lock()
	if u.n == nil {
		u.n = map[string]int{}
	}
	u.n[uri]++
	u.mu.Unlock()
}

func (u *updates) count(uri string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.n[uri]
}

// TestResourceSubscriptionsFederated: two upstreams (one per era) and two
// clients (one per era) subscribe through the gateway to resources each
// upstream owns. A change on the upstream reaches each subscriber exactly
// once; the upstream subscription is one, released with the last
// subscriber; after unsubscribing nothing arrives; a URI outside the
// catalog is refused.
func TestResourceSubscriptionsFederated(t *testing.T) {
	p := startNotesPair(t, "")
	ctx := t.Context()
	eastA, eastB := upstreams.NotesURIs("east")[0], upstreams.NotesURIs("east")[1]
	westA, westB := upstreams.NotesURIs("west")[0], upstreams.NotesURIs("west")[1]
	subscribed := map[string]*upstreams.Notes{eastA: p.east, eastB: p.east, westA: p.west, westB: p.west}

	connect := func(version string, got *updates) *sdk.ClientSession {
		client := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1"}, &sdk.ClientOptions{
			ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
				got.add(req.Params.URI)
			},
		})
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: p.g.url, MaxRetries: -1},
			&sdk.ClientSessionOptions{ProtocolVersion: version})
		require.NoError(t, err)
		t.Cleanup(func() { _ = cs.Close() })
		return cs
	}
	var old, modern updates
	oldCS := connect(era2025, &old)
	modernCS := connect(era2026, &modern)

	caps := oldCS.InitializeResult().Capabilities
	require.NotNil(t, caps.Resources)
	assert.True(t, caps.Resources.Subscribe, "the gateway advertises resources.subscribe")

	// The 2026-07-28 client's Subscribe holds a subscriptions/listen
	// stream open until Unsubscribe.
	for uri, up := range subscribed {
		go func() { _ = modernCS.Subscribe(context.WithoutCancel(ctx), &sdk.SubscribeParams{URI: uri}) }()
		require.Eventually(t, func() bool { return up.Subscribers(uri) == 1 }, 10*time.Second, 5*time.Millisecond, uri)
	}
	for uri, up := range subscribed {
		require.NoError(t, oldCS.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}), uri)
		assert.Equal(t, 1, up.Subscribers(uri), "one upstream subscription for both clients: %s", uri)
	}

	for _, uri := range []string{eastA, westA} {
		require.NoError(t, subscribed[uri].Touch(ctx, uri))
	}
	for _, c := range []*updates{&old, &modern} {
		for _, uri := range []string{eastA, westA} {
			require.Eventually(t, func() bool { return c.count(uri) >= 1 }, 10*time.Second, 5*time.Millisecond, uri)
		}
	}

	// Unsubscribed from the a resources, both clients keep the b ones.
	for _, uri := range []string{eastA, westA} {
		require.NoError(t, oldCS.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: uri}))
		assert.Equal(t, 1, subscribed[uri].Subscribers(uri), "still held for the other client: %s", uri)
		require.NoError(t, modernCS.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: uri}))
		require.Eventually(t, func() bool { return subscribed[uri].Subscribers(uri) == 0 }, 10*time.Second, 5*time.Millisecond,
			"released upstream with the last subscriber: %s", uri)
	}
	// A 2026-07-28 upstream gets the remaining subscription on a listen
	// stream opened anew, which the old one's end may precede.
	require.Eventually(t, func() bool { return p.west.Subscribers(westB) == 1 }, 10*time.Second, 5*time.Millisecond)
	// Each upstream sends the a change before the b one, so once the b
	// update arrived, an a update would have too.
	for _, uri := range []string{eastA, eastB, westA, westB} {
		require.NoError(t, subscribed[uri].Touch(ctx, uri))
	}
	for _, c := range []*updates{&old, &modern} {
		for _, uri := range []string{eastB, westB} {
			require.Eventually(t, func() bool { return c.count(uri) >= 1 }, 10*time.Second, 5*time.Millisecond, uri)
		}
	}
	for name, c := range map[string]*updates{"2025-11-25": &old, "2026-07-28": &modern} {
		for _, uri := range []string{eastA, westA, eastB, westB} {
			assert.Equal(t, 1, c.count(uri), "%s client, %s: exactly one update", name, uri)
		}
	}

	// The east upstream restarts: its sessions are gone, and the gateway
	// subscribes again on its new one (the dead session's subscription
	// stays counted upstream, so two).
	p.eastSrv.stop()
	p.eastSrv.start()
	require.Eventually(t, func() bool { return p.east.Subscribers(eastB) == 2 }, 20*time.Second, 10*time.Millisecond,
		"re-established on the new upstream session")
	require.NoError(t, p.east.Touch(ctx, eastB))
	for _, c := range []*updates{&old, &modern} {
		require.Eventually(t, func() bool { return c.count(eastB) == 2 }, 10*time.Second, 5*time.Millisecond)
	}

	// A URI outside what the client is shown is refused, in either era.
	err := oldCS.Subscribe(ctx, &sdk.SubscribeParams{URI: "notes://east/secret"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "resource not found")
	ack := listenAck(t, p.g.url, `["notes://east/secret","`+eastB+`"]`)
	assert.JSONEq(t, `{"toolsListChanged":false,"promptsListChanged":false,"resourcesListChanged":false,"resourceSubscriptions":["`+eastB+`"]}`, string(ack),
		"only the visible resource is acknowledged")
}

// listenAck opens a raw subscriptions/listen stream for uris and returns
// the notifications member of its acknowledgement.
func listenAck(t *testing.T, url, uris string) json.RawMessage {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":"l1","method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":` + uris + `},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", era2026)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	buf := make([]byte, 0, 4096)
	for !strings.Contains(string(buf), "\n\n") {
		chunk := make([]byte, 1024)
		n, err := resp.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		require.NoError(t, err)
	}
	events := sseData(buf)
	require.NotEmpty(t, events)
	var ackMsg struct {
		Method string `json:"method"`
		Params struct {
			Notifications json.RawMessage `json:"notifications"`
			Meta          map[string]any  `json:"_meta"`
		} `json:"params"`
	}
	require.NoError(t, json.Unmarshal(events[0], &ackMsg), string(events[0]))
	require.Equal(t, "notifications/subscriptions/acknowledged", ackMsg.Method)
	assert.Equal(t, "l1", ackMsg.Params.Meta["io.modelcontextprotocol/subscriptionId"])
	return ackMsg.Params.Notifications
}

// TestListChangedOnListenStream: a kill switch that hides a tool changes
// the catalog, and an open 2026-07-28 subscriptions/listen stream that
// asked for tool list changes gets notifications/tools/list_changed,
// carrying its subscription id.
func TestListChangedOnListenStream(t *testing.T) {
	p := startNotesPair(t, "")
	body := `{"jsonrpc":"2.0","id":42,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.g.url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", era2026)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req) //nolint:bodyclose // closed by the deferred Close below.
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan []byte, 8)
	go func() {
		defer close(events)
		var buf []byte
		chunk := make([]byte, 1024)
		for {
			n, err := resp.Body.Read(chunk)
			buf = append(buf, chunk[:n]...)
			for {
				i := bytes.Index(buf, []byte("\n\n"))
				if i < 0 {
					break
				}
				for _, d := range sseData(buf[:i+2]) {
					events <- d
				}
				buf = buf[i+2:]
			}
			if err != nil {
				return
			}
		}
	}()
	next := func() map[string]any {
		select {
		case ev := <-events:
			var m map[string]any
			require.NoError(t, json.Unmarshal(ev, &m), string(ev))
			return m
		case <-time.After(20 * time.Second):
			t.Fatal("no event on the listen stream")
			return nil
		}
	}
	assert.Equal(t, "notifications/subscriptions/acknowledged", next()["method"])

	status, sw := adminDo(t, p.g.base, "", http.MethodPost, "/admin/v1/killswitches",
		`{"scope":"tool","target":"east__chatty","reason":"list change test"}`)
	require.Equal(t, http.StatusCreated, status, sw)
	changed := next()
	assert.Equal(t, "notifications/tools/list_changed", changed["method"])
	params, _ := changed["params"].(map[string]any)
	meta, _ := params["_meta"].(map[string]any)
	assert.InDelta(t, 42, meta["io.modelcontextprotocol/subscriptionId"], 0, "the stream's subscription id: %v", changed)
}
