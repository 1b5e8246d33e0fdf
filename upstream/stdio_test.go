package upstream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// The stdio upstream is this test binary itself: with stdioChildEnv set,
// TestMain serves an mcp-go stdio server instead of running tests. That
// avoids a slow `go run` per test.
const stdioChildEnv = "MCPGW_UPSTREAM_TEST_STDIO_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(stdioChildEnv) == "1" {
		serveStdioChild()
		os.Exit(0)
	}
	if era := os.Getenv(httpChildEnv); era != "" {
		serveHTTPChild(era)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// serveStdioChild runs an mcp-go stdio server. It reports on stderr what
// the test cannot observe through the protocol (a handler's cancellation).
func serveStdioChild() {
	f := newFixture()
	s := mcpgoServer(f)
	var once sync.Once
	s.AddTool(mcp.NewTool("release"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		once.Do(func() { close(f.release) })
		return mcp.NewToolResultText("released"), nil
	})
	s.AddTool(mcp.NewTool("exit"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		fmt.Fprintln(os.Stderr, "exiting on request")
		os.Exit(3)
		return nil, nil
	})
	s.AddTool(mcp.NewTool("env"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(os.Getenv("MCPGW_TEST_SECRET")), nil
	})
	go func() {
		for tag := range f.started {
			fmt.Fprintln(os.Stderr, "started "+tag)
		}
	}()
	go func() {
		for tag := range f.cancelled {
			fmt.Fprintln(os.Stderr, "cancelled "+tag)
		}
	}()
	if err := mcpserver.ServeStdio(s); err != nil {
		fmt.Fprintln(os.Stderr, "stdio server:", err)
		os.Exit(1)
	}
}

func stdioConfig(tb testing.TB) configs.Upstream {
	tb.Helper()
	exe, err := os.Executable()
	require.NoError(tb, err)
	return configs.Upstream{
		Name: "local",
		Stdio: &configs.StdioTransport{
			Command: exe,
			Args:    []string{"-test.run=^$"},
			Env: map[string]configs.SecretRef{
				stdioChildEnv:       {Value: "1"},
				"MCPGW_TEST_SECRET": {Value: "from-env"},
			},
		},
	}
}

func TestStdio(t *testing.T) {
	logs := newLogCapture()
	c, rec := startClient(t, stdioConfig(t), withLogger(slog.New(logs)))

	cat, ok := c.Catalog()
	require.True(t, ok)
	assert.False(t, cat.Stateless)
	assert.Equal(t, "2025-11-25", cat.ProtocolVersion)
	assert.Contains(t, toolNames(t, cat.Tools), "schema")
	assert.Len(t, cat.Prompts, 1)
	for _, raw := range cat.Tools {
		if strings.Contains(string(raw), `"name":"schema"`) {
			assert.Contains(t, string(raw), `"oneOf"`)
			assert.Contains(t, string(raw), `"$defs"`)
		}
	}

	t.Run("call", func(t *testing.T) {
		res, err := c.Call(t.Context(), call("echo", `{"text":"hi"}`))
		require.NoError(t, err)
		assert.Contains(t, string(res), `hi`)
		res, err = c.Call(t.Context(), call("env", `{}`))
		require.NoError(t, err)
		assert.Contains(t, string(res), "from-env", "env reaches the child")
	})

	t.Run("rpc error", func(t *testing.T) {
		_, err := c.Call(t.Context(), call("no_such_tool", `{}`))
		var rpcErr *upstream.RPCError
		require.ErrorAs(t, err, &rpcErr)
	})

	t.Run("progress", func(t *testing.T) {
		var mu sync.Mutex
		var got []json.RawMessage
		final := make(chan struct{})
		req := call("progress", `{"n":4}`)
		req.Params = json.RawMessage(`{"name":"progress","arguments":{"n":4},"_meta":{"progressToken":77}}`)
		req.ProgressToken = json.RawMessage(`77`)
		req.OnProgress = func(p json.RawMessage) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, append(json.RawMessage(nil), p...))
			if len(got) == 4 {
				close(final)
			}
		}
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(t.Context(), req)
			errc <- err
		}()
		receive(t, final, "4 progress notifications")
		_, err := c.Call(t.Context(), call("release", `{}`))
		require.NoError(t, err)
		require.NoError(t, receive(t, errc, "the progress call"))
		for i, p := range got {
			var n struct {
				ProgressToken json.RawMessage
				Progress      float64
			}
			require.NoError(t, json.Unmarshal(p, &n))
			assert.Equal(t, "77", string(n.ProgressToken))
			assert.InDelta(t, float64(i+1), n.Progress, 0) // exact: whole numbers
		}
	})

	t.Run("cancellation", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Call(ctx, call("slow", `{"tag":"s1"}`))
			errc <- err
		}()
		logs.waitStderr(t, "started s1")
		cancel()
		require.ErrorIs(t, receive(t, errc, "Call to return"), context.Canceled)
		logs.waitStderr(t, "cancelled s1")
	})

	t.Run("child exit", func(t *testing.T) {
		before, _ := c.Catalog()
		_, err := c.Call(t.Context(), call("exit", `{}`))
		require.Error(t, err)
		require.ErrorIs(t, err, upstream.ErrUnavailable)
		// A reconnect publishes a new catalog.
		waitFor(t, c, rec, "the client to restart the child", func(cat *upstream.Catalog, ok bool) bool {
			return ok && cat != before
		})
		res, err := c.Call(t.Context(), call("echo", `{"text":"again"}`))
		require.NoError(t, err)
		assert.Contains(t, string(res), "again")
	})
}

func TestStdioBadCommand(t *testing.T) {
	rec := newRecorder()
	c, err := upstream.New(&configs.Upstream{Name: "nope", Stdio: &configs.StdioTransport{Command: "/nonexistent/mcp-server"}},
		&upstream.Options{OnChange: rec.onChange})
	require.NoError(t, err)
	c.Start()
	defer c.Close()
	_, err = c.Call(t.Context(), call("echo", `{}`))
	require.ErrorIs(t, err, upstream.ErrUnavailable)
	assert.Contains(t, err.Error(), `upstream "nope"`)
}

func TestStdioPinnedStateless(t *testing.T) {
	cfg := stdioConfig(t)
	cfg.ProtocolVersion = "2026-07-28"
	c, _ := startClient(t, cfg)
	cat, ok := c.Catalog()
	require.True(t, ok)
	assert.True(t, cat.Stateless)
	assert.Equal(t, "2026-07-28", cat.ProtocolVersion)
	assert.JSONEq(t, `{"name":"mcpgo-test","version":"1.2.3"}`, string(cat.ServerInfo))
	res, err := c.Call(t.Context(), call("echo", `{"text":"modern"}`))
	require.NoError(t, err)
	assert.Contains(t, string(res), "modern")
	assert.Contains(t, string(res), `"resultType":"complete"`, "a stateless-era result")
}
