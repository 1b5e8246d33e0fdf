package upstreams

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Servers that poll: they end an SSE stream before they are done with it
// and expect the client to resume it with GET and Last-Event-ID
// (2025-11-25 basic/transports, "Resumability and Redelivery"; SEP-1699).

// PolledTool is the tool of a polling Notes server that closes its own
// response stream mid-call.
const PolledTool = "polled"

// NewPollingNotes is a Notes server that keeps its events (go-sdk's memory
// event store, which primes every response stream with an event id) and has
// one more tool, "polled": it logs and reports progress as chatty does, but
// closes its response stream after the first step, asking the client to
// come back after 10 ms, and sends the rest while the client is away.
// Serve it with its PollingHandler.
func NewPollingNotes(name string) *Notes {
	n := NewNotes(name)
	n.events = sdk.NewMemoryEventStore(nil)
	n.srv.AddTool(&sdk.Tool{
		Name:        PolledTool,
		Description: "Logs three messages and reports progress, closing its stream after the first.",
		InputSchema: map[string]any{"type": "object"},
	}, n.polled)
	return n
}

// PollingHandler serves a Notes server made by NewPollingNotes over
// stateful Streamable HTTP, with its event store.
func (n *Notes) PollingHandler() http.Handler {
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return n.srv },
		&sdk.StreamableHTTPOptions{EventStore: n.events})
}

func (n *Notes) polled(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	token := req.Params.GetProgressToken()
	for i := 1; i <= 3; i++ {
		if err := req.Session.Log(ctx, //nolint:staticcheck // logging is what it is for; SEP-2577 keeps it in its deprecation window.
			&sdk.LoggingMessageParams{ //nolint:staticcheck // as above.
				Level: "info", Logger: n.name, Data: "step " + strconv.Itoa(i)}); err != nil {
			return nil, err
		}
		if token != nil {
			if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: token, Progress: float64(i), Total: 3}); err != nil {
				return nil, err
			}
		}
		if i == 1 && req.Extra != nil && req.Extra.CloseSSEStream != nil {
			// The rest goes to the event store, to be replayed when the
			// client resumes.
			req.Extra.CloseSSEStream(sdk.CloseSSEStreamArgs{RetryAfter: retryAfter})
			n.mu.Lock()
			n.closed++
			n.mu.Unlock()
		}
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "done"}}}, nil
}

// retryAfter is the retry time a polling server sends before it closes a
// stream.
const retryAfter = 10 * time.Millisecond

// StreamsClosed is how many response streams the polled tool closed.
func (n *Notes) StreamsClosed() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// StreamCutter makes a server poll on its standalone GET stream too, which
// go-sdk never closes by itself: it ends every GET stream right after its
// first event with an id, with a retry field of 10 ms, as a polling server
// does. The server behind it keeps its events, so a GET that resumes with
// Last-Event-ID gets what was sent meanwhile. Every such GET is held until
// the test lets it through (Release), after its Last-Event-ID was sent on
// Resumed: the test can change things while the client is away.
type StreamCutter struct {
	next    http.Handler
	Resumed chan string
	release chan struct{}
}

// NewStreamCutter wraps next.
func NewStreamCutter(next http.Handler) *StreamCutter {
	return &StreamCutter{next: next, Resumed: make(chan string, 16), release: make(chan struct{}, 16)}
}

// Release lets one held GET through.
func (s *StreamCutter) Release() { s.release <- struct{}{} }

func (s *StreamCutter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.next.ServeHTTP(w, r)
		return
	}
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		s.Resumed <- last
		select {
		case <-s.release:
		case <-r.Context().Done():
			return
		}
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	cw := &cuttingWriter{w: w, cut: cancel}
	s.next.ServeHTTP(cw, r.WithContext(ctx))
}

// cuttingWriter passes a stream's events through until one with an id,
// then ends the stream: it writes a retry field, stops passing writes, and
// cancels the request's context so that the server lets go of the stream.
type cuttingWriter struct {
	w   http.ResponseWriter
	cut context.CancelFunc

	mu   sync.Mutex
	buf  []byte
	done bool
}

func (c *cuttingWriter) Header() http.Header { return c.w.Header() }

func (c *cuttingWriter) WriteHeader(code int) { c.w.WriteHeader(code) }

func (c *cuttingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return len(p), nil // the server thinks it wrote; its store has it
	}
	c.buf = append(c.buf, p...)
	for {
		i := bytes.Index(c.buf, []byte("\n\n"))
		if i < 0 {
			return len(p), nil
		}
		event := c.buf[:i+2]
		if _, err := c.w.Write(event); err != nil {
			return 0, err
		}
		hasID := bytes.HasPrefix(event, []byte("id:")) || bytes.Contains(event, []byte("\nid:"))
		c.buf = c.buf[i+2:]
		if hasID {
			_, _ = c.w.Write([]byte("retry: 10\n\n"))
			c.flush()
			c.done = true
			c.cut()
			return len(p), nil
		}
	}
}

func (c *cuttingWriter) flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Flush passes the server's flushes on while the stream lasts.
func (c *cuttingWriter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.done {
		c.flush()
	}
}
