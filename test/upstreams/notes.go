package upstreams

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Notes is a small go-sdk server that talks back: its "chatty" tool logs
// three messages and reports progress while it runs, and its resources
// (notes://<name>/a and notes://<name>/b) can be subscribed to and changed
// by the test (Touch), which notifies their subscribers. It records how
// many subscriptions each resource has, so a test can see a gateway
// subscribe and release upstream.
type Notes struct {
	name string
	srv  *sdk.Server

	mu   sync.Mutex
	subs map[string]int // subscriptions by URI, as the server saw them
	rev  map[string]int // revision of each resource, bumped by Touch

	events *sdk.MemoryEventStore // NewPollingNotes only
	closed int                   // response streams the polled tool closed
}

// NotesURIs are the resources of the Notes server named name.
func NotesURIs(name string) []string {
	return []string{"notes://" + name + "/a", "notes://" + name + "/b"}
}

// NewNotes builds a Notes server named name.
func NewNotes(name string) *Notes {
	n := &Notes{name: name, subs: map[string]int{}, rev: map[string]int{}}
	n.srv = sdk.NewServer(&sdk.Implementation{Name: name, Version: "1.0.0"}, &sdk.ServerOptions{
		Capabilities: &sdk.ServerCapabilities{Logging: &sdk.LoggingCapabilities{}}, //nolint:staticcheck // logging is what it is for; SEP-2577 keeps it in its deprecation window.
		SubscribeHandler: func(_ context.Context, req *sdk.SubscribeRequest) error {
			n.mu.Lock()
			n.subs[req.Params.URI]++
			n.mu.Unlock()
			return nil
		},
		UnsubscribeHandler: func(_ context.Context, req *sdk.UnsubscribeRequest) error {
			n.mu.Lock()
			n.subs[req.Params.URI]--
			n.mu.Unlock()
			return nil
		},
	})
	n.Redescribe(ChattyDescription)
	for _, uri := range NotesURIs(name) {
		n.srv.AddResource(&sdk.Resource{URI: uri, Name: uri, MIMEType: "text/plain"}, n.read)
	}
	return n
}

// ChattyDescription is the chatty tool's description until Redescribe.
const ChattyDescription = "Logs three messages and reports progress while it runs."

// Redescribe replaces the chatty tool's description at run time, as a
// server that changes a tool after it was approved (a rug pull, for the
// pinning tests); the go-sdk server sends notifications/tools/list_changed
// to its sessions.
func (n *Notes) Redescribe(description string) {
	n.srv.AddTool(&sdk.Tool{
		Name:        "chatty",
		Description: description,
		InputSchema: map[string]any{"type": "object"},
	}, n.chatty)
}

// chatty interleaves three log messages with three progress reports, then
// answers.
func (n *Notes) chatty(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
	token := req.Params.GetProgressToken()
	for i := 1; i <= 3; i++ {
		if err := req.Session.Log(ctx, //nolint:staticcheck // as above.
			&sdk.LoggingMessageParams{ //nolint:staticcheck // as above.
				Level: "info", Logger: n.name, Data: "step " + strconv.Itoa(i)}); err != nil {
			return nil, err
		}
		if token != nil {
			if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: token, Progress: float64(i), Total: 3}); err != nil {
				return nil, err
			}
		}
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "done"}}}, nil
}

func (n *Notes) read(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	n.mu.Lock()
	rev := n.rev[req.Params.URI]
	n.mu.Unlock()
	return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{
		{URI: req.Params.URI, MIMEType: "text/plain", Text: fmt.Sprintf("%s revision %d", req.Params.URI, rev)},
	}}, nil
}

// Handler serves the server over Streamable HTTP: stateful (the session
// era, up to 2025-11-25) or stateless (how go-sdk v1.8.0 speaks
// 2026-07-28).
func (n *Notes) Handler(stateless bool) http.Handler {
	var opts *sdk.StreamableHTTPOptions
	if stateless {
		opts = &sdk.StreamableHTTPOptions{Stateless: true}
	}
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return n.srv }, opts)
}

// Touch changes a resource and notifies its subscribers.
func (n *Notes) Touch(ctx context.Context, uri string) error {
	n.mu.Lock()
	n.rev[uri]++
	n.mu.Unlock()
	return n.srv.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: uri})
}

// Subscribers is how many subscriptions to uri the server holds.
func (n *Notes) Subscribers(uri string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.subs[uri]
}
