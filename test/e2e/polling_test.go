package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// Upstreams that poll (2025-11-25 basic/transports, "Resumability and
// Redelivery"; SEP-1699): they close an SSE stream before they are done
// with it, and the gateway resumes it with GET and Last-Event-ID.

// TestResumeAPollingUpstreamsCall: a go-sdk upstream that keeps its events
// closes a call's response stream after the first of three log messages
// and progress reports. Through mcpgw, a client of each era gets all six
// notifications, in order, once each, and then the result, on its call's
// stream.
func TestResumeAPollingUpstreamsCall(t *testing.T) {
	east := upstreams.NewPollingNotes("east")
	srv := startServer(t, east.PollingHandler)
	g := startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
upstreams:
  - name: east
    http: {url: %q}
`, srv.url()), true)

	for _, era := range []string{era2025, era2026} {
		t.Run(era, func(t *testing.T) {
			closed := east.StreamsClosed()
			events := toolOnTheWire(t, g.url, era, "east__"+upstreams.PolledTool)
			assert.Equal(t, closed+1, east.StreamsClosed(), "the upstream closed the call's stream mid-call")
			require.NotEmpty(t, events)
			var got []string
			for _, ev := range events[:len(events)-1] {
				var n struct {
					Method string `json:"method"`
					Params struct {
						Data     any `json:"data"`
						Progress any `json:"progress"`
					} `json:"params"`
				}
				require.NoError(t, json.Unmarshal(ev, &n), string(ev))
				switch n.Method {
				case "notifications/message":
					got = append(got, fmt.Sprintf("log %v", n.Params.Data))
				case "notifications/progress":
					got = append(got, fmt.Sprintf("progress %v", n.Params.Progress))
				default:
					t.Errorf("unexpected event %s", ev)
				}
			}
			assert.Equal(t, wantChatter, got, "every notification once, in order")
			last := string(events[len(events)-1])
			assert.Contains(t, last, `"result":`, "the last event is the result")
			assert.Contains(t, last, `"done"`)
		})
	}
}

// TestResumeAPollingUpstreamsGetStream: the upstream's standalone GET
// stream ends after each event (StreamCutter), and resource changes made
// while the gateway is away reach the subscriber when the gateway resumes
// the stream: each once, none lost.
func TestResumeAPollingUpstreamsGetStream(t *testing.T) {
	east := upstreams.NewPollingNotes("east")
	cutter := upstreams.NewStreamCutter(east.PollingHandler())
	srv := startServer(t, func() http.Handler { return cutter })
	g := startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
upstreams:
  - name: east
    http: {url: %q}
`, srv.url()), true)
	ctx := t.Context()
	a, b := upstreams.NotesURIs("east")[0], upstreams.NotesURIs("east")[1]

	var got updates
	client := sdk.NewClient(&sdk.Implementation{Name: "e2e", Version: "1"}, &sdk.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			got.add(req.Params.URI)
		},
	})
	cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: g.url, MaxRetries: -1},
		&sdk.ClientSessionOptions{ProtocolVersion: era2025})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	for _, uri := range []string{a, b} {
		require.NoError(t, cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}), uri)
	}

	// The first change arrives on the open stream, which the upstream then
	// ends; the gateway comes back with the id of that event.
	require.NoError(t, east.Touch(ctx, a))
	require.Eventually(t, func() bool { return got.count(a) == 1 }, 10*time.Second, 5*time.Millisecond)
	prev := receiveLabel(t, cutter.Resumed, "the gateway resuming the GET stream")
	for round := 2; round <= 3; round++ {
		// While the gateway is away: a change, and another to b that
		// marks the end of the round (the stream keeps their order). The
		// upstream ends the stream after each event, so the round takes
		// two resumptions.
		require.NoError(t, east.Touch(ctx, a))
		require.NoError(t, east.Touch(ctx, b))
		for range 2 {
			cutter.Release()
			next := receiveLabel(t, cutter.Resumed, "the gateway resuming the GET stream again")
			assert.NotEqual(t, prev, next, "each resumption starts after the last event received")
			prev = next
		}
		require.Eventually(t, func() bool { return got.count(b) == round-1 }, 10*time.Second, 5*time.Millisecond, "round %d", round)
		assert.Equal(t, round, got.count(a), "round %d: each change of a once", round)
	}

	// Let go of the upstream subscriptions while the upstream is up, not
	// in the clean-up after the test.
	cutter.Release()
	for _, uri := range []string{a, b} {
		require.NoError(t, cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: uri}), uri)
		require.Eventually(t, func() bool { return east.Subscribers(uri) == 0 }, 10*time.Second, 5*time.Millisecond, uri)
	}
}
