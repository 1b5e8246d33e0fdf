package e2e

import (
	"bytes"
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
)

// talker is an mcp-go upstream whose tool talk waits until the test lets
// it go (so the calls of a round are in flight together), then sends
// talkLogs log messages naming its argument and answers.
type talker struct {
	arrived chan string
	proceed chan struct{}
}

const talkLogs = 5

func (tk *talker) handler() http.Handler {
	srv := mcpserver.NewMCPServer("talker", "1.0.0", mcpserver.WithToolCapabilities(false), mcpserver.WithLogging())
	srv.AddTool(mcpgo.NewTool("talk", mcpgo.WithDescription("Logs its secret, then answers."),
		mcpgo.WithString("secret", mcpgo.Required())),
		func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			secret := req.GetString("secret", "")
			tk.arrived <- secret
			select {
			case <-tk.proceed:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			s := mcpserver.ServerFromContext(ctx)
			for i := range talkLogs {
				n := mcpgo.NewLoggingMessageNotification(mcpgo.LoggingLevelInfo, "talk", map[string]any{"step": i, "secret": secret})
				if err := s.SendLogMessageToClient(ctx, n); err != nil {
					return nil, err
				}
			}
			return mcpgo.NewToolResultText("said " + secret), nil
		})
	return mcpserver.NewStreamableHTTPServer(srv, mcpserver.WithStateful(true))
}

// streamAll posts body on c's session and returns every JSON-RPC message
// of the answer (each SSE event, or the one JSON body).
func streamAll(ctx context.Context, c *rawClient, body string) ([][]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = c.header.Clone()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return sseData(data), nil
	}
	return [][]byte{data}, nil
}

// TestLogsStayWithTheirPrincipal: one mcpgw in front of an mcp-go upstream
// that offers both eras. Alice and Bob, each in a 2025-era session of their
// own with logging/setLevel debug, call talk together round after round;
// each call logs its caller's secret. Neither may ever receive a log
// message naming the other's secret (mcp-go v1.2.1 forwards a session's
// notifications to whichever in-flight POST reads them first).
//
// Under auto (the upstream keeps sessions, so the 2025 era) and pinned to
// 2025-11-25, each principal's calls go on upstream sessions of its own,
// one call at a time per session (upstream/pool.go). With one session
// shared by both, 103–139 of the 500 log messages crossed in each run.
// Pinned to 2026-07-28, every call is a request of its own upstream, with
// nothing shared.
func TestLogsStayWithTheirPrincipal(t *testing.T) {
	for _, version := range []string{"auto", era2025, era2026} {
		t.Run(version, func(t *testing.T) { logsStayWithTheirPrincipal(t, version) })
	}
}

// logsStayWithTheirPrincipal is one subtest of TestLogsStayWithTheirPrincipal.
func logsStayWithTheirPrincipal(t *testing.T, version string) { //nolint:thelper // a subtest body, not a helper: failures should point here.
	const rounds = 50
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	tk := &talker{arrived: make(chan string, 2), proceed: make(chan struct{})}
	up := startServer(t, tk.handler)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
  scopes_supported: [mcp]
upstreams:
  - name: up
    protocol_version: %q
    http: {url: %q}
`, resource, iss.URL(), version, up.url()), true)

	client := func(sub string) *rawClient {
		c := newRawClient(t, g.url)
		c.header.Set("Authorization", "Bearer "+iss.Mint(map[string]any{"sub": sub, "scope": "mcp"}))
		c.initialize()
		r := c.call("logging/setLevel", `{"level":"debug"}`)
		require.Nil(t, r.Error)
		return c
	}
	principals := map[string]*rawClient{"alice": client("alice"), "bob": client("bob")}
	secretOf := func(p string) string { return "secret-of-" + p }

	leaks := map[string]int{}
	own := map[string]int{}
	leakyRounds := 0
	for round := range rounds {
		type answer struct {
			msgs [][]byte
			err  error
		}
		answers := map[string]*answer{}
		var wg sync.WaitGroup
		for p, c := range principals {
			a := &answer{}
			answers[p] = a
			body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"up__talk","arguments":{"secret":%q}}}`,
				1000+round, secretOf(p))
			wg.Go(func() { a.msgs, a.err = streamAll(t.Context(), c, body) })
		}
		for range principals {
			receiveLabel(t, tk.arrived, "both calls to reach the upstream")
		}
		for range principals {
			select {
			case tk.proceed <- struct{}{}:
			case <-time.After(20 * time.Second):
				require.FailNow(t, "a call left the upstream early")
			}
		}
		wg.Wait()
		leaked := false
		for p, a := range answers {
			require.NoError(t, a.err, p)
			for _, m := range a.msgs {
				var msg struct {
					Method string `json:"method"`
				}
				require.NoError(t, json.Unmarshal(m, &msg), string(m))
				if msg.Method != string(mcpgo.MethodNotificationMessage) {
					continue
				}
				for q := range principals {
					if !bytes.Contains(m, []byte(secretOf(q))) {
						continue
					}
					if q == p {
						own[p]++
						continue
					}
					leaks[p]++
					leaked = true
					if leaks[p] == 1 {
						t.Logf("round %d: %s received %s", round, p, m)
					}
				}
			}
		}
		if leaked {
			leakyRounds++
		}
	}
	t.Logf("own log messages received: %v; leaked: %v in %d of %d rounds", own, leaks, leakyRounds, rounds)
	assert.Empty(t, leaks, "log messages of one principal relayed to the other")
	assert.NotZero(t, own["alice"]+own["bob"], "no log message reached its own caller: the test measures nothing")
}
