package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAfter bounds every wait in these tests. It only turns a hang into a
// failure; nothing waits for it to pass.
const failAfter = 10 * time.Second

// serve starts h on an httptest server bound to 127.0.0.1:0 and returns the
// MCP endpoint URL and the server's HTTP client.
func serve(t *testing.T, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		// SSE streams a client left open would hold Close up.
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv.URL + "/mcp", srv.Client()
}

// receive returns the next value from ch, failing the test if none arrives
// within failAfter or ch is closed.
func receive[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v, ok := <-ch:
		require.True(t, ok, "%s: channel closed", what)
		return v
	case <-time.After(failAfter):
		require.FailNow(t, "timed out waiting for "+what)
	}
	var zero T
	return zero
}

// connectSDK connects an official go-sdk client to url. The standalone GET
// stream is disabled so that every notification about a call arrives on
// that call's own POST stream (see the package tests' notes on mcp-go).
func connectSDK(t *testing.T, url string, hc *http.Client, opts *sdk.ClientOptions, version string) *sdk.ClientSession {
	t.Helper()
	c := sdk.NewClient(&sdk.Implementation{Name: "upstreams-test", Version: "0.0.1"}, opts)
	var sessOpts *sdk.ClientSessionOptions
	if version != "" {
		sessOpts = &sdk.ClientSessionOptions{ProtocolVersion: version}
	}
	cs, err := c.Connect(t.Context(), &sdk.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           hc,
		DisableStandaloneSSE: true,
		MaxRetries:           -1,
	}, sessOpts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// sdkText returns the concatenated text content of a go-sdk tool result.
func sdkText(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	var b strings.Builder
	for _, c := range res.Content {
		tc, ok := c.(*sdk.TextContent)
		require.True(t, ok, "content %T is not text", c)
		b.WriteString(tc.Text)
	}
	return b.String()
}

// assertStructured checks a tool result's structured content: each field in
// want (numbers compared by value), and, when wantIDs is not nil, the "id"
// of each element of the list under listKey.
func assertStructured(t *testing.T, structured any, want map[string]any, listKey string, wantIDs []string) {
	t.Helper()
	s, ok := structured.(map[string]any)
	require.True(t, ok, "structured content is %T", structured)
	for k, v := range want {
		assert.EqualValues(t, v, s[k], "field %s", k)
	}
	if wantIDs == nil {
		return
	}
	list, ok := s[listKey].([]any)
	require.True(t, ok, "%s is %T", listKey, s[listKey])
	ids := []string{}
	for _, item := range list {
		m, ok := item.(map[string]any)
		require.True(t, ok, "%s item is %T", listKey, item)
		id, _ := m["id"].(string)
		ids = append(ids, id)
	}
	assert.Equal(t, wantIDs, ids)
}

// rawSession is a hand-rolled session-era Streamable HTTP client, for
// exchanges the SDK clients cannot express: sending notifications/cancelled
// with a chosen request id, or reading content types they reject.
type rawSession struct {
	t         *testing.T
	url       string
	hc        *http.Client
	sessionID string
	version   string
}

// newRawSession initializes a session (initialize, then
// notifications/initialized) at protocol version 2025-11-25.
func newRawSession(t *testing.T, url string, hc *http.Client) *rawSession {
	t.Helper()
	s := &rawSession{t: t, url: url, hc: hc}
	resp := s.post(t.Context(), map[string]any{
		"jsonrpc": "2.0", "id": 0, "method": "initialize",
		"params": map[string]any{
			"protocolVersion": "2025-11-25",
			"capabilities":    map[string]any{},
			"clientInfo":      map[string]any{"name": "raw-test", "version": "0.0.1"},
		},
	})
	defer resp.Body.Close() // response closes it too; this covers a failure before that
	s.sessionID = resp.Header.Get("Mcp-Session-Id")
	var init struct {
		Result struct {
			ProtocolVersion string `json:"protocolVersion"`
		} `json:"result"`
	}
	require.NoError(t, json.Unmarshal(s.response(resp, 0), &init))
	require.Equal(t, "2025-11-25", init.Result.ProtocolVersion)
	s.version = init.Result.ProtocolVersion

	resp = s.post(t.Context(), map[string]any{"jsonrpc": "2.0", "method": "notifications/initialized"})
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	return s
}

// post sends one JSON-RPC message and returns the 2xx response.
func (s *rawSession) post(ctx context.Context, msg any) *http.Response {
	s.t.Helper()
	body, err := json.Marshal(msg)
	require.NoError(s.t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if s.sessionID != "" {
		req.Header.Set("Mcp-Session-Id", s.sessionID)
	}
	if s.version != "" {
		req.Header.Set("Mcp-Protocol-Version", s.version)
	}
	resp, err := s.hc.Do(req)
	require.NoError(s.t, err)
	require.Less(s.t, resp.StatusCode, 300, "POST %s answered %s", body, resp.Status)
	return resp
}

// call sends a request and returns the full JSON-RPC response to it.
func (s *rawSession) call(id int, method string, params any) json.RawMessage {
	s.t.Helper()
	resp := s.post(s.t.Context(), map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	defer resp.Body.Close() // response closes it too; this covers a failure before that
	return s.response(resp, id)
}

// response reads resp until the JSON-RPC response with the given id.
func (s *rawSession) response(resp *http.Response, id int) json.RawMessage {
	s.t.Helper()
	var found json.RawMessage
	require.NoError(s.t, readMessages(resp, func(m rawMessage) bool {
		if m.Method == "" && string(m.ID) == fmt.Sprint(id) {
			found = m.Raw
			return false
		}
		return true
	}))
	require.NotNil(s.t, found, "no response with id %d", id)
	return found
}

// rawMessage is a JSON-RPC message with its envelope fields decoded.
type rawMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Error  json.RawMessage `json:"error"`
	Raw    json.RawMessage `json:"-"`
}

// readMessages calls fn with each JSON-RPC message in resp's body, a single
// JSON document or an SSE stream, until fn returns false or the body ends.
// It closes the body.
func readMessages(resp *http.Response, fn func(rawMessage) bool) error {
	defer resp.Body.Close()
	emit := func(data []byte) (bool, error) {
		m := rawMessage{Raw: bytes.Clone(data)}
		if err := json.Unmarshal(data, &m); err != nil {
			return false, fmt.Errorf("decoding message %q: %w", data, err)
		}
		return fn(m), nil
	}
	mediaType, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mediaType != "text/event-stream" {
		var data json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&data); err != nil {
			return fmt.Errorf("decoding JSON body: %w", err)
		}
		_, err := emit(data)
		return err
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	var data []byte
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "data:"):
			data = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")...)
		case line == "" && len(data) > 0:
			more, err := emit(data)
			if err != nil || !more {
				return err
			}
			data = data[:0]
		}
	}
	return sc.Err()
}
