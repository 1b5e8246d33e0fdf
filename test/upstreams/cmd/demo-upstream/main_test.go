package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"regexp"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAfter bounds every wait in these tests. It only turns a hang into a
// failure; nothing waits for it to pass.
const failAfter = 10 * time.Second

func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(failAfter):
		require.FailNow(t, "timed out waiting for "+what)
	}
	var zero T
	return zero
}

func TestRunHTTP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		server    string
		extra     []string
		wantTools int
	}{
		{server: "customers", wantTools: 4},
		{server: "orders", wantTools: 6},
		{server: "payments", wantTools: 4},
		{server: "bulk", extra: []string{"-n", "120"}, wantTools: 120},
	}
	urlLine := regexp.MustCompile(`^MCP_URL=(http://127\.0\.0\.1:[0-9]+/mcp)\n$`)
	for _, tt := range tests {
		t.Run(tt.server, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			stdout, stdoutW := io.Pipe()
			done := make(chan error, 1)
			go func() {
				args := append([]string{"-server", tt.server, "-listen", "127.0.0.1:0"}, tt.extra...)
				err := run(ctx, args, nil, stdoutW, io.Discard)
				_ = stdoutW.Close()
				done <- err
			}()

			out := bufio.NewReader(stdout)
			line, err := out.ReadString('\n')
			require.NoError(t, err)
			m := urlLine.FindStringSubmatch(line)
			require.NotNil(t, m, "first stdout line %q", line)

			c := sdk.NewClient(&sdk.Implementation{Name: "cmd-test", Version: "0.0.1"}, nil)
			cs, err := c.Connect(t.Context(), &sdk.StreamableClientTransport{Endpoint: m[1], DisableStandaloneSSE: true}, nil)
			require.NoError(t, err)
			n := 0
			for _, err := range cs.Tools(t.Context(), nil) {
				require.NoError(t, err)
				n++
			}
			assert.Equal(t, tt.wantTools, n)
			require.NoError(t, cs.Close())

			cancel()
			require.NoError(t, receive(t, done, "run to return"))
			rest, err := io.ReadAll(out)
			require.NoError(t, err)
			assert.Empty(t, string(rest), "stdout after the URL line")
		})
	}
}

// lineRecorder passes writes through to w and keeps a copy of them.
type lineRecorder struct {
	w  io.Writer
	mu sync.Mutex
	b  bytes.Buffer
}

func (r *lineRecorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	r.b.Write(p)
	r.mu.Unlock()
	return r.w.Write(p)
}

func (r *lineRecorder) lines() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Split(bytes.TrimSuffix(r.b.Bytes(), []byte("\n")), []byte("\n"))
}

// TestRunStdio is not parallel: mcp-go keeps its stdio session in a
// package-level variable.
func TestRunStdio(t *testing.T) {
	clientIn, stdoutW := io.Pipe()
	stdin, clientOut := io.Pipe()
	stdout := &lineRecorder{w: stdoutW}
	done := make(chan error, 1)
	go func() {
		err := run(t.Context(), []string{"-server", "payments", "-stdio"}, stdin, stdout, io.Discard)
		_ = stdoutW.Close()
		done <- err
	}()

	c := mcpclient.NewClient(mcptransport.NewIO(clientIn, clientOut, nil))
	require.NoError(t, c.Start(t.Context()))
	_, err := c.Initialize(t.Context(), mcp.InitializeRequest{Params: mcp.InitializeParams{
		ClientInfo: mcp.Implementation{Name: "cmd-test", Version: "0.0.1"},
	}})
	require.NoError(t, err)
	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{
		Name: "find_payment", Arguments: map[string]any{"order_id": "o-1012"},
	}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	read, err := c.ReadResource(t.Context(), mcp.ReadResourceRequest{Params: mcp.ReadResourceParams{URI: "payment://p-5008"}})
	require.NoError(t, err)
	require.Len(t, read.Contents, 1)
	contents, ok := read.Contents[0].(mcp.TextResourceContents)
	require.True(t, ok, "contents: %#v", read.Contents[0])
	assert.Contains(t, contents.Text, `"order_id":"o-1012"`)
	prompt, err := c.GetPrompt(t.Context(), mcp.GetPromptRequest{Params: mcp.GetPromptParams{
		Name: "refund_note", Arguments: map[string]string{"payment_id": "p-5008", "reason": "wrong size"},
	}})
	require.NoError(t, err)
	require.Len(t, prompt.Messages, 1)
	assert.Equal(t, "Refund note for payment p-5008", prompt.Description)
	require.NoError(t, c.Close())
	require.NoError(t, receive(t, done, "run to return"))

	lines := stdout.lines()
	require.NotEmpty(t, lines)
	for _, l := range lines {
		assert.True(t, json.Valid(l), "stdout line is not JSON-RPC: %q", l)
	}
}

func TestRunFlagErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "no server", args: nil},
		{name: "unknown server", args: []string{"-server", "inventory"}},
		{name: "stdio for an HTTP-only server", args: []string{"-server", "orders", "-stdio"}},
		{name: "no tools", args: []string{"-server", "bulk", "-n", "0"}},
		{name: "stray argument", args: []string{"-server", "bulk", "extra"}},
		{name: "unknown flag", args: []string{"-port", "80"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout bytes.Buffer
			err := run(t.Context(), tt.args, nil, &stdout, io.Discard)
			require.Error(t, err)
			assert.Empty(t, stdout.String())
		})
	}
}
