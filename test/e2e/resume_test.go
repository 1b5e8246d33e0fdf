package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sseEvent is one event of a stream as an SSE client dispatches it, with
// its id and the retry field it carried.
type sseEvent struct {
	id, retry, data string
}

// sseReader reads the events of a text/event-stream body, priming events
// (an id and no data) included, since they carry the id and retry.
type sseReader struct{ sc *bufio.Scanner }

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	return &sseReader{sc: sc}
}

// next returns the next event, or false at the end of the stream.
func (r *sseReader) next() (sseEvent, bool) {
	var ev sseEvent
	seen := false
	for r.sc.Scan() {
		line := r.sc.Text()
		if line == "" {
			if seen {
				return ev, true
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "id":
			ev.id, seen = value, true
		case "retry":
			ev.retry, seen = value, true
		case "data":
			ev.data, seen = ev.data+value, true
		}
	}
	return ev, false
}

// slowServer is a go-sdk server (it answers with event streams) whose
// "slow" tool reports progress, then waits for release before it answers.
func slowServer(release <-chan struct{}) http.Handler {
	srv := sdk.NewServer(&sdk.Implementation{Name: "slow", Version: "1.0.0"}, nil)
	srv.AddTool(&sdk.Tool{Name: "slow", InputSchema: map[string]any{"type": "object"}},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			if tok := req.Params.GetProgressToken(); tok != nil {
				if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: 1, Total: 2}); err != nil {
					return nil, err
				}
			}
			select {
			case <-release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "finally"}}}, nil
		})
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
}

// open sends a request on the client's session and returns the response
// without reading its body.
func (c *rawClient) open(ctx context.Context, method, body string, header http.Header) *http.Response {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, c.url, strings.NewReader(body))
	require.NoError(c.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Session-Id", c.session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	maps.Copy(req.Header, header)
	client := &http.Client{Transport: &http.Transport{}}
	resp, err := client.Do(req)
	require.NoError(c.t, err)
	return resp
}

// TestResumeAfterLostConnection: a 2025-era client loses the connection of
// a call's stream after the progress event. The call is not cancelled, and
// a GET with Last-Event-ID gets the rest of that stream: the result. The
// stream starts with a priming event (an id, the configured retry, no
// data), every event has an id, and the whole stream can be replayed from
// the priming id while it is kept. An id the replica does not hold is
// refused, not answered with a stream that silently lacks events.
func TestResumeAfterLostConnection(t *testing.T) {
	release := make(chan struct{})
	up := startServer(t, func() http.Handler { return slowServer(release) })
	g := startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
  sse: {retry: 1500ms}
upstreams:
  - name: slow
    prefix: ""
    http: {url: %q}
`, up.url()), true)
	c := newRawClient(t, g.url)
	c.initialize()

	ctx, lose := context.WithCancel(t.Context())
	resp := c.open(ctx, http.MethodPost, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"slow","arguments":{},"_meta":{"progressToken":"p"}}}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"), "a go-sdk upstream streams, so the gateway does")
	events := newSSEReader(resp.Body)
	prime, ok := events.next()
	require.True(t, ok, "the priming event")
	assert.Equal(t, "1500", prime.retry, "the retry field of server.sse.retry")
	assert.Empty(t, prime.data, "a priming event has no data")
	require.NotEmpty(t, prime.id)
	progress, ok := events.next()
	require.True(t, ok, "the progress event")
	assert.Contains(t, progress.data, `"method":"notifications/progress"`)
	assert.Contains(t, progress.data, `"progressToken":"p"`)
	require.NotEmpty(t, progress.id)
	assert.NotEqual(t, prime.id, progress.id)

	// The connection is lost; then the tool answers.
	lose()
	_ = resp.Body.Close()
	close(release)

	resumed := c.open(t.Context(), http.MethodGet, "", http.Header{"Last-Event-Id": {progress.id}})
	defer resumed.Body.Close()
	require.Equal(t, http.StatusOK, resumed.StatusCode)
	rest := newSSEReader(resumed.Body)
	result, ok := rest.next()
	require.True(t, ok, "the result after resumption")
	assert.Contains(t, result.data, `"id":7`)
	assert.Contains(t, result.data, `finally`)
	assert.NotEqual(t, progress.id, result.id)
	_, more := rest.next()
	assert.False(t, more, "the stream ends with its response")

	// From the priming id, the whole stream is replayed.
	again := c.open(t.Context(), http.MethodGet, "", http.Header{"Last-Event-Id": {prime.id}})
	defer again.Body.Close()
	require.Equal(t, http.StatusOK, again.StatusCode)
	replay := newSSEReader(again.Body)
	var ids []string
	for ev, ok := replay.next(); ok; ev, ok = replay.next() {
		ids = append(ids, ev.id)
	}
	assert.Equal(t, []string{progress.id, result.id}, ids)

	// Ids the replica does not hold are refused.
	for _, id := range []string{"zzzzzzzz-1-0", "garbage", prime.id[:strings.LastIndexByte(prime.id, '-')] + "-99"} {
		refused := c.open(t.Context(), http.MethodGet, "", http.Header{"Last-Event-Id": {id}})
		body, _ := io.ReadAll(refused.Body)
		_ = refused.Body.Close()
		assert.Equal(t, http.StatusBadRequest, refused.StatusCode, "%s: %s", id, body)
	}
}

// TestResumeTheGetStream: the standalone GET stream is resumable too. A
// client that got a list_changed and lost the connection reconnects with
// the priming event's id: the list_changed is replayed with its own id, and
// the stream goes on carrying the next one.
func TestResumeTheGetStream(t *testing.T) {
	p := startNotesPair(t, "")
	c := newRawClient(t, p.g.url)
	c.initialize()
	kill := func(tool string) {
		status, body := adminDo(t, p.g.base, "", http.MethodPost, "/admin/v1/killswitches",
			`{"scope":"tool","target":"`+tool+`","reason":"resume test"}`)
		require.Equal(t, http.StatusCreated, status, body)
	}
	// next reads one event, or fails after a while (a list_changed goes
	// out after the catalog's debounce).
	next := func(r *sseReader) sseEvent {
		got := make(chan sseEvent, 1)
		go func() {
			ev, _ := r.next()
			got <- ev
		}()
		select {
		case ev := <-got:
			return ev
		case <-time.After(20 * time.Second):
			require.FailNow(t, "no event on the GET stream")
			return sseEvent{}
		}
	}

	ctx, lose := context.WithCancel(t.Context())
	resp := c.open(ctx, http.MethodGet, "", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	first := newSSEReader(resp.Body)
	prime := next(first)
	require.NotEmpty(t, prime.id)
	assert.Equal(t, "1000", prime.retry, "the default retry")
	kill("east__chatty")
	changed := next(first)
	assert.Contains(t, changed.data, `"method":"notifications/tools/list_changed"`)
	require.NotEmpty(t, changed.id)
	lose()
	_ = resp.Body.Close()

	resumed := c.open(t.Context(), http.MethodGet, "", http.Header{"Last-Event-Id": {prime.id}})
	defer resumed.Body.Close()
	require.Equal(t, http.StatusOK, resumed.StatusCode)
	events := newSSEReader(resumed.Body)
	again := next(events)
	assert.Equal(t, changed, again, "the missed event, replayed as it was sent")
	kill("west__chatty")
	later := next(events)
	assert.Contains(t, later.data, `"method":"notifications/tools/list_changed"`)
	assert.NotEqual(t, changed.id, later.id, "the stream goes on")
}

// TestUpstreamListChangedRelayedWhenListsAreTheSame: an upstream that
// re-registers a tool announces tools/list_changed although its list
// comes back the same. A client connected directly hears it; through
// mcpgw, an open 2026-07-28 subscriptions/listen stream that asked for
// tool list changes hears it too, once the gateway has re-listed.
func TestUpstreamListChangedRelayedWhenListsAreTheSame(t *testing.T) {
	srv := sdk.NewServer(&sdk.Implementation{Name: "same", Version: "1.0.0"}, nil)
	tool := &sdk.Tool{Name: "again", InputSchema: map[string]any{"type": "object"}}
	handler := func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{}, nil
	}
	srv.AddTool(tool, handler)
	up := startServer(t, func() http.Handler {
		return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, nil)
	})
	g := startGateway(t, fmt.Sprintf(`
server:
  listen: 127.0.0.1:0
catalog:
  list_changed_debounce: 20ms
upstreams:
  - name: same
    http: {url: %q}
`, up.url()), true)

	body := `{"jsonrpc":"2.0","id":5,"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, g.url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", era2026)
	req.Header.Set("Mcp-Method", "subscriptions/listen")
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req) //nolint:bodyclose // closed below.
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	events := make(chan sseEvent, 8)
	go func() {
		defer close(events)
		r := newSSEReader(resp.Body)
		for ev, ok := r.next(); ok; ev, ok = r.next() {
			events <- ev
		}
	}()
	next := func() sseEvent {
		select {
		case ev := <-events:
			return ev
		case <-time.After(20 * time.Second):
			require.FailNow(t, "no event on the listen stream")
			return sseEvent{}
		}
	}
	assert.Contains(t, next().data, `"method":"notifications/subscriptions/acknowledged"`)

	srv.AddTool(tool, handler) // the same tool again: go-sdk announces a change
	changed := next()
	assert.Contains(t, changed.data, `"method":"notifications/tools/list_changed"`)
	assert.Contains(t, changed.data, `"io.modelcontextprotocol/subscriptionId":5`)
}
