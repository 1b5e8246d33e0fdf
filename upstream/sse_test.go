package upstream_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

func TestLegacySSE(t *testing.T) {
	f := newFixture()
	inner := mcpserver.NewSSEServer(mcpgoServer(f))
	requestIDs := make(chan string, 64)
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if id := r.Header.Get("X-Request-Id"); id != "" {
				requestIDs <- id
			}
		}
		inner.ServeHTTP(w, r)
	}))
	cfg := configs.Upstream{Name: "legacy", SSE: &configs.SSETransport{
		URL:     ts.url("/sse"),
		Headers: map[string]configs.SecretRef{"X-Api-Key": {Value: "k"}},
	}}
	c, rec := startClient(t, cfg, withHealth(50*time.Millisecond))

	cat, ok := c.Catalog()
	require.True(t, ok)
	assert.False(t, cat.Stateless)
	assert.Equal(t, "2025-11-25", cat.ProtocolVersion)
	assert.Len(t, cat.Resources, 1)
	assert.Len(t, cat.ResourceTemplates, 1)
	assert.Len(t, cat.Prompts, 1)
	want := newRawSession(t, serve(t, mcpgoModern(mcpgoServer(newFixture()))).url("/mcp"), true).list("tools/list", "tools")
	assert.Equal(t, want, cat.Tools, "the same server's tools, byte for byte")

	t.Run("call", func(t *testing.T) {
		req := call("echo", `{"text":"sse"}`)
		req.RequestID = "rid-7"
		res, err := c.Call(t.Context(), req)
		require.NoError(t, err)
		assert.Contains(t, string(res), "sse")
		assert.Equal(t, "rid-7", receive(t, requestIDs, "the X-Request-ID header"))
	})

	t.Run("progress", func(t *testing.T) {
		var mu sync.Mutex
		var got []string
		final := make(chan struct{})
		req := call("progress", `{"n":3}`)
		req.Params = json.RawMessage(`{"name":"progress","arguments":{"n":3},"_meta":{"progressToken":"p"}}`)
		req.ProgressToken = json.RawMessage(`"p"`)
		req.OnProgress = func(p json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			var n struct {
				ProgressToken string
				Progress      float64
			}
			_ = json.Unmarshal(p, &n)
			got = append(got, n.ProgressToken)
			if n.Progress == 3 {
				close(final)
			}
		}
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(t.Context(), req)
			errc <- err
		}()
		receive(t, final, "the last progress")
		close(f.release)
		require.NoError(t, receive(t, errc, "the call"))
		assert.Equal(t, []string{"p", "p", "p"}, got)
	})

	t.Run("cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, call("slow", `{"tag":"x"}`))
			errc <- err
		}()
		receive(t, f.started, "the tool to start")
		cancel()
		require.ErrorIs(t, receive(t, errc, "Call to return"), context.Canceled)
		assert.Equal(t, "x", receive(t, f.cancelled, "the handler to be cancelled"))
	})

	t.Run("down and up", func(t *testing.T) {
		ts.stop()
		waitFor(t, c, rec, "the upstream to be marked down", unavailable)
		_, err := c.Call(t.Context(), call("echo", `{}`))
		require.ErrorIs(t, err, upstream.ErrUnavailable)
		ts.restart(t)
		waitFor(t, c, rec, "the upstream to come back", available)
		_, err = c.Call(t.Context(), call("echo", `{}`))
		require.NoError(t, err)
	})
}
