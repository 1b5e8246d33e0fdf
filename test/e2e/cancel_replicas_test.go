package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/internal/redistest"
)

// holder is an mcp-go upstream whose tool hold blocks until its context
// ends (it reports the label on cancelled) or release closes.
type holder struct {
	started, cancelled chan string
	release            chan struct{}
	once               sync.Once
}

func newHolder(t *testing.T) *holder {
	t.Helper()
	h := &holder{started: make(chan string, 8), cancelled: make(chan string, 8), release: make(chan struct{})}
	t.Cleanup(h.free)
	return h
}

func (h *holder) free() { h.once.Do(func() { close(h.release) }) }

func (h *holder) handler() http.Handler {
	srv := mcpserver.NewMCPServer("slow", "1.0.0", mcpserver.WithToolCapabilities(false))
	srv.AddTool(mcpgo.NewTool("hold", mcpgo.WithDescription("Blocks until cancelled or released."),
		mcpgo.WithString("label", mcpgo.Required())),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			label := req.GetString("label", "")
			h.started <- label
			select {
			case <-ctx.Done():
				h.cancelled <- label
				return nil, ctx.Err()
			case <-h.release:
				return mcpgo.NewToolResultText(label + " released"), nil
			}
		})
	return mcpserver.NewStreamableHTTPServer(srv, mcpserver.WithStateful(true),
		mcpserver.WithStreamableHTTPProtocolVersions(mcpgo.LegacyProtocolVersions()...))
}

// pending is a POST whose answer comes later.
type pending struct {
	done   chan struct{}
	status int
	answer rpcResponse
	err    error
}

// postAsync sends body on c's session and header from its own goroutine.
func postAsync(ctx context.Context, c *rawClient, body string) *pending {
	p := &pending{done: make(chan struct{})}
	hc := &http.Client{Transport: &http.Transport{}}
	go func() {
		defer close(p.done)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
		if err != nil {
			p.err = err
			return
		}
		req.Header = c.header.Clone()
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", c.session)
		resp, err := hc.Do(req)
		if err != nil {
			p.err = err
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			p.err = err
			return
		}
		p.status = resp.StatusCode
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			events := sseData(data)
			if len(events) == 0 {
				p.err = fmt.Errorf("empty event stream")
				return
			}
			data = events[len(events)-1]
		}
		p.err = json.Unmarshal(data, &p.answer)
	}()
	return p
}

func (p *pending) wait(t *testing.T) rpcResponse {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		require.FailNow(t, "no answer")
	}
	require.NoError(t, p.err)
	require.Equal(t, http.StatusOK, p.status)
	return p.answer
}

func receiveLabel(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(20 * time.Second):
		require.FailNow(t, "timed out waiting for "+what)
		return ""
	}
}

// TestCancelAcrossReplicas runs two replicas sharing a redis-server and a
// session key, with OAuth. Alice's 2025-era session starts two slow calls
// on replica A; her notifications/cancelled for one of them, sent to
// replica B, reaches the call on A: the upstream sees it cancelled, Alice
// gets -32800 and A audits the call once. Cancellations sent to B first
// by Bob (with her session id, or with the same request id in his own
// session) and by Alice in another session do not end the other call,
// which is then released and succeeds.
func TestCancelAcrossReplicas(t *testing.T) {
	rs := redistest.Start(t)
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	h := newHolder(t)
	up := startServer(t, h.handler)
	cfg := fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  session_key: {value: "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"}
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp]
redis:
  url: %q
  key_prefix: "cancel-%s:"
upstreams:
  - name: slow
    http: {url: %q}
`, resource, iss.URL(), rs.URL(), t.Name(), up.url())
	a := startGateway(t, cfg, true)
	b := startGateway(t, cfg, true)

	aliceTok := iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"})
	bobTok := iss.Mint(map[string]any{"sub": "bob", "scope": "mcp"})
	client := func(url, tok string) *rawClient {
		c := newRawClient(t, url)
		c.header.Set("Authorization", "Bearer "+tok)
		return c
	}
	alice := client(a.url, aliceTok)
	alice.initialize()
	aliceSecond := client(a.url, aliceTok)
	aliceSecond.initialize()
	bob := client(a.url, bobTok)
	bob.initialize()

	call := func(id int, label string) *pending {
		return postAsync(t.Context(), alice, fmt.Sprintf(
			`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"slow__hold","arguments":{"label":%q}}}`, id, label))
	}
	kept, cancelled := call(7, "kept"), call(8, "cancelled")
	started := map[string]bool{}
	for range 2 {
		started[receiveLabel(t, h.started, "the calls to reach the upstream")] = true
	}
	require.Equal(t, map[string]bool{"kept": true, "cancelled": true}, started)

	// on sends a notifications/cancelled for requestId to replica B as c.
	on := func(c *rawClient, requestID int) int {
		onB := *c
		onB.url = b.url
		resp, _ := onB.post(fmt.Sprintf(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":%d,"reason":"e2e"}}`, requestID))
		return resp.StatusCode
	}
	// Bob with Alice's session id: not served.
	forger := *bob
	forger.session = alice.session
	assert.Equal(t, http.StatusNotFound, on(&forger, 7))
	// The same request id in Bob's session and in Alice's other one names
	// another request: accepted, relayed, and no call of theirs matches.
	assert.Equal(t, http.StatusAccepted, on(bob, 7))
	assert.Equal(t, http.StatusAccepted, on(aliceSecond, 7))

	// Alice cancels call 8 through B. Relayed cancellations reach A in the
	// order B published them, so the ones above were handled first.
	assert.Equal(t, http.StatusAccepted, on(alice, 8))
	assert.Equal(t, "cancelled", receiveLabel(t, h.cancelled, "the upstream to see the cancellation"))
	r := cancelled.wait(t)
	require.NotNil(t, r.Error, "a cancelled call answers an error")
	assert.Equal(t, -32800, r.Error.Code)

	h.free()
	r = kept.wait(t)
	require.Nil(t, r.Error, "a cancellation that did not name this call ended it")
	assert.Contains(t, string(r.Result), "kept released")
	select {
	case l := <-h.cancelled:
		t.Fatalf("the upstream saw %q cancelled too", l)
	default:
	}

	require.NoError(t, a.stop())
	require.NoError(t, b.stop())
	var outcomes []string
	for _, rec := range auditLines(t, a.auditPath) {
		if rec["event"] == "tools/call" {
			assert.Equal(t, "alice", rec["subject"])
			outcomes = append(outcomes, fmt.Sprintf("%v %v", rec["outcome"], rec["error_code"]))
		}
	}
	// One record per call, on the replica that ran it.
	assert.ElementsMatch(t, []string{"ok <nil>", "transport_error -32800"}, outcomes)
	for _, rec := range auditLines(t, b.auditPath) {
		assert.NotEqual(t, "tools/call", rec["event"], "replica B ran no call: %v", rec)
	}
}
