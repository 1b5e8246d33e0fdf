package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The two servers of the transparency test (transparency_test.go) offer the
// same broad surface, one per library, so that every kind of member an
// upstream can send is seen going through the gateway:
//
//   - tools (more than one page): structured output with an output schema,
//     an isError result, a JSON-RPC error with data, content of every type
//     with annotations and _meta, a tool that logs and reports progress
//     before its result; tools carry titles, annotations, icons and _meta;
//   - resources (a text one with annotations, size and _meta, a blob one),
//     a template, a read of an unknown resource;
//   - prompts with arguments and content of several types, an unknown
//     prompt;
//   - completion of a prompt argument and of a template variable;
//   - logging and resource subscriptions.
//
// Lists are paged by two, so every list takes several pages directly.
const (
	evPageSize   = 2
	evStructIn   = `{"type":"object","properties":{"n":{"type":"integer","description":"A number."}},"required":["n"],"additionalProperties":false}`
	evStructOut  = `{"type":"object","properties":{"n":{"type":"integer"},"doubled":{"type":"integer"},"words":{"type":"array","items":{"type":"string"}}},"required":["n","doubled"]}`
	evEmptyInput = `{"type":"object"}`
	evTextURI    = "ev://static/text"
	evBlobURI    = "ev://static/blob"
	evItemURIs   = "ev://items/{id}"
	// evPNG is a 1×1 transparent PNG; evWAV a short WAV header: content
	// of the image, audio and blob kinds.
	evPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
	evWAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA="
)

// evStyles are the completions of the greet prompt's style argument; the
// items of the template, the completions of its id variable.
var (
	evStyles = []string{"formal", "friendly", "funny", "terse"}
	evItems  = []string{"alpha", "beta", "gamma"}
)

// evComplete filters values by the typed prefix, as both servers' completion
// handlers do.
func evComplete(values []string, prefix string) []string {
	out := []string{}
	for _, v := range values {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}

// evSDKServer is the go-sdk server of the transparency test, stateful
// (sessions, the 2025 era) or stateless (how go-sdk v1.8.0 speaks
// 2026-07-28 over HTTP).
func evSDKServer(stateless bool) http.Handler {
	openWorld := false
	destructive := true
	srv := sdk.NewServer(&sdk.Implementation{Name: "everything-sdk", Title: "Everything (go-sdk)", Version: "0.1.0"}, &sdk.ServerOptions{
		Instructions: "A server with one of everything.",
		PageSize:     evPageSize,
		Capabilities: &sdk.ServerCapabilities{Logging: &sdk.LoggingCapabilities{}}, //nolint:staticcheck // logging is what is relayed; SEP-2577 keeps it in its deprecation window.
		CompletionHandler: func(_ context.Context, req *sdk.CompleteRequest) (*sdk.CompleteResult, error) {
			values := evStyles
			if req.Params.Ref.Type == "ref/resource" {
				values = evItems
			}
			got := evComplete(values, req.Params.Argument.Value)
			return &sdk.CompleteResult{Completion: sdk.CompletionResultDetails{Values: got, Total: len(got)}}, nil
		},
		SubscribeHandler:   func(context.Context, *sdk.SubscribeRequest) error { return nil },
		UnsubscribeHandler: func(context.Context, *sdk.UnsubscribeRequest) error { return nil },
	})
	ann := &sdk.Annotations{Audience: []sdk.Role{"user", "assistant"}, Priority: 0.5, LastModified: "2026-01-02T03:04:05Z"}
	meta := sdk.Meta{"example.com/origin": "everything", "example.com/n": 7}

	srv.AddTool(&sdk.Tool{
		Name: "structured", Title: "Structured", Description: "Doubles n, with structured output.",
		InputSchema: json.RawMessage(evStructIn), OutputSchema: json.RawMessage(evStructOut),
		Annotations: &sdk.ToolAnnotations{Title: "Double", ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: &openWorld},
		Icons:       []sdk.Icon{{Source: "https://example.com/icon.png", MIMEType: "image/png", Sizes: []string{"48x48"}}},
		Meta:        meta,
	}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct {
			N int `json:"n"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil {
			return nil, err
		}
		out := fmt.Sprintf(`{"n":%d,"doubled":%d,"words":["a","b"]}`, in.N, 2*in.N)
		return &sdk.CallToolResult{
			Meta:              sdk.Meta{"example.com/took": "1ms"},
			Content:           []sdk.Content{&sdk.TextContent{Text: out}},
			StructuredContent: json.RawMessage(out),
		}, nil
	})
	srv.AddTool(&sdk.Tool{Name: "contents", Description: "Returns content of every type.", InputSchema: json.RawMessage(evEmptyInput)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			png, _ := base64.StdEncoding.DecodeString(evPNG)
			wav, _ := base64.StdEncoding.DecodeString(evWAV)
			size := int64(5)
			return &sdk.CallToolResult{Content: []sdk.Content{
				&sdk.TextContent{Text: "plain text", Annotations: ann, Meta: meta},
				&sdk.ImageContent{Data: png, MIMEType: "image/png", Annotations: ann},
				&sdk.AudioContent{Data: wav, MIMEType: "audio/wav", Meta: meta},
				&sdk.ResourceLink{URI: evTextURI, Name: "text", Title: "Text", Description: "A link.", MIMEType: "text/plain", Size: &size, Annotations: ann},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: evTextURI, MIMEType: "text/plain", Text: "hello"}, Annotations: ann},
				&sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: evBlobURI, MIMEType: "image/png", Blob: png, Meta: meta}},
			}}, nil
		})
	srv.AddTool(&sdk.Tool{
		Name: "tool_error", Description: "Fails as a tool: isError.", InputSchema: json.RawMessage(evEmptyInput),
		Annotations: &sdk.ToolAnnotations{DestructiveHint: &destructive},
	}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: "it failed: bad input"}}}, nil
	})
	srv.AddTool(&sdk.Tool{Name: "protocol_error", Description: "Fails with a JSON-RPC error with data.", InputSchema: json.RawMessage(evEmptyInput)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return nil, &jsonrpc.Error{Code: 4242, Message: "application failure", Data: json.RawMessage(`{"reason":"quota","retry":[1,2,3],"nested":{"ok":false}}`)}
		})
	srv.AddTool(&sdk.Tool{Name: "notify", Description: "Logs three messages and reports progress twice, then answers.", InputSchema: json.RawMessage(evEmptyInput)},
		func(ctx context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			tok := req.Params.GetProgressToken()
			for i, level := range []sdk.LoggingLevel{"debug", "info", "warning"} { //nolint:staticcheck // as above.
				msg := &sdk.LoggingMessageParams{Level: level, Logger: "ev", Data: map[string]any{"step": i, "msg": "log " + string(level)}} //nolint:staticcheck // as above.
				if err := req.Session.Log(ctx, msg); err != nil {                                                                            //nolint:staticcheck // as above.
					return nil, err
				}
				if tok != nil && i < 2 {
					if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i + 1), Total: 2, Message: fmt.Sprintf("step %d", i+1)}); err != nil {
						return nil, err
					}
				}
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "notified"}}}, nil
		})

	srv.AddResource(&sdk.Resource{
		URI: evTextURI, Name: "text", Title: "Text", Description: "A text resource.", MIMEType: "text/plain",
		Size: 5, Annotations: ann, Meta: meta,
	}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello", Meta: meta}}}, nil
	})
	srv.AddResource(&sdk.Resource{URI: evBlobURI, Name: "blob", MIMEType: "image/png"},
		func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
			png, _ := base64.StdEncoding.DecodeString(evPNG)
			return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "image/png", Blob: png}}}, nil
		})
	srv.AddResourceTemplate(&sdk.ResourceTemplate{
		URITemplate: evItemURIs, Name: "item", Title: "Item", Description: "One item.", MIMEType: "application/json", Annotations: ann, Meta: meta,
	}, func(_ context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
		id := strings.TrimPrefix(req.Params.URI, "ev://items/")
		if !slices.Contains(evItems, id) {
			return nil, sdk.ResourceNotFoundError(req.Params.URI)
		}
		return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: req.Params.URI, MIMEType: "application/json", Text: `{"id":"` + id + `"}`}}}, nil
	})

	srv.AddPrompt(&sdk.Prompt{
		Name: "greet", Title: "Greet", Description: "Greets someone.", Meta: meta,
		Arguments: []*sdk.PromptArgument{{Name: "name", Title: "Name", Description: "Who.", Required: true}, {Name: "style", Description: "How."}},
	}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		png, _ := base64.StdEncoding.DecodeString(evPNG)
		return &sdk.GetPromptResult{
			Description: "A greeting for " + req.Params.Arguments["name"],
			Messages: []*sdk.PromptMessage{
				{Role: "user", Content: &sdk.TextContent{Text: "Greet " + req.Params.Arguments["name"] + " in a " + req.Params.Arguments["style"] + " way.", Annotations: ann}},
				{Role: "assistant", Content: &sdk.ImageContent{Data: png, MIMEType: "image/png"}},
				{Role: "user", Content: &sdk.EmbeddedResource{Resource: &sdk.ResourceContents{URI: evTextURI, MIMEType: "text/plain", Text: "hello"}}},
			},
		}, nil
	})
	srv.AddPrompt(&sdk.Prompt{Name: "plain", Description: "No arguments."}, func(context.Context, *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return &sdk.GetPromptResult{Messages: []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: "plain"}}}}, nil
	})
	srv.AddPrompt(&sdk.Prompt{Name: "broken", Description: "Fails."}, func(context.Context, *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: "broken prompt", Data: json.RawMessage(`{"why":"always"}`)}
	})

	var opts *sdk.StreamableHTTPOptions
	if stateless {
		opts = &sdk.StreamableHTTPOptions{Stateless: true}
	}
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, opts)
}

// evCompletions answers mcp-go's completion providers.
type evCompletions struct{}

func (evCompletions) CompletePromptArgument(_ context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	got := evComplete(evStyles, arg.Value)
	return &mcp.Completion{Values: got, Total: len(got)}, nil
}

func (evCompletions) CompleteResourceArgument(_ context.Context, _ string, arg mcp.CompleteArgument, _ mcp.CompleteContext) (*mcp.Completion, error) {
	got := evComplete(evItems, arg.Value)
	return &mcp.Completion{Values: got, Total: len(got)}, nil
}

// evWritten wraps an mcp-go handler's response writers and reports each
// log message and progress notification written on any of its streams.
type evWritten struct {
	http.ResponseWriter
	written chan<- struct{}
}

func (w evWritten) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	if bytes.Contains(p, []byte(`"method":"notifications/message"`)) || bytes.Contains(p, []byte(`"method":"notifications/progress"`)) {
		w.written <- struct{}{}
	}
	return n, err
}

func (w evWritten) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// evMCPGoServer is the mcp-go server of the transparency test. mcp-go
// v1.2.1 serves both eras on one handler: sessions through initialize, and
// 2026-07-28 statelessly.
//
// Its notify tool waits until each notification is written before it sends
// the next one and before it returns. mcp-go v1.2.1 loses and reorders a
// call's notifications on its own (PITFALLS.md, "Notification delivery"; a
// probe of 40 direct calls lost one in 6 of them): one it sends just before
// the handler returns is dropped, so the direct answer would vary from run
// to run. Written one at a time, every notification reaches the wire, on
// the call's stream or (session era) on whichever stream mcp-go picks.
func evMCPGoServer() http.Handler {
	written := make(chan struct{}, 64)
	srv := mcpserver.NewMCPServer("everything-mcpgo", "0.1.0",
		mcpserver.WithTitle("Everything (mcp-go)"),
		mcpserver.WithInstructions("A server with one of everything."),
		mcpserver.WithToolCapabilities(true),
		mcpserver.WithResourceCapabilities(true, true),
		mcpserver.WithPromptCapabilities(true),
		mcpserver.WithLogging(),
		mcpserver.WithCompletions(),
		mcpserver.WithPromptCompletionProvider(evCompletions{}),
		mcpserver.WithResourceCompletionProvider(evCompletions{}),
		mcpserver.WithPaginationLimit(evPageSize),
	)
	priority := 0.5
	ann := &mcp.Annotations{Audience: []mcp.Role{mcp.RoleUser, mcp.RoleAssistant}, Priority: &priority, LastModified: "2026-01-02T03:04:05Z"}
	meta := func() *mcp.Meta {
		return &mcp.Meta{AdditionalFields: map[string]any{"example.com/origin": "everything", "example.com/n": 7}}
	}
	metaMap := map[string]any{"example.com/origin": "everything", "example.com/n": 7}

	structured := mcp.NewToolWithRawSchema("structured", "Doubles n, with structured output.", json.RawMessage(evStructIn))
	structured.Title = "Structured"
	structured.RawOutputSchema = json.RawMessage(evStructOut)
	structured.Annotations = mcp.ToolAnnotation{Title: "Double", ReadOnlyHint: new(true), IdempotentHint: new(true), OpenWorldHint: new(false)}
	structured.Icons = []mcp.Icon{{Src: "https://example.com/icon.png", MIMEType: "image/png", Sizes: []string{"48x48"}}}
	structured.Meta = meta()
	srv.AddTool(structured, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		n := req.GetInt("n", 0)
		out := fmt.Sprintf(`{"n":%d,"doubled":%d,"words":["a","b"]}`, n, 2*n)
		res := mcp.NewToolResultStructured(json.RawMessage(out), out)
		res.Meta = &mcp.Meta{AdditionalFields: map[string]any{"example.com/took": "1ms"}}
		return res, nil
	})

	srv.AddTool(mcp.NewToolWithRawSchema("contents", "Returns content of every type.", json.RawMessage(evEmptyInput)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			text := mcp.NewTextContent("plain text")
			text.Annotations, text.Meta = ann, meta()
			img := mcp.NewImageContent(evPNG, "image/png")
			img.Annotations = ann
			audio := mcp.NewAudioContent(evWAV, "audio/wav")
			audio.Meta = meta()
			link := mcp.NewResourceLink(evTextURI, "text", "A link.", "text/plain")
			link.Title, link.Annotations = "Text", ann
			embText := mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: evTextURI, MIMEType: "text/plain", Text: "hello"})
			embText.Annotations = ann
			embBlob := mcp.NewEmbeddedResource(mcp.BlobResourceContents{URI: evBlobURI, MIMEType: "image/png", Blob: evPNG, Meta: metaMap})
			return &mcp.CallToolResult{Content: []mcp.Content{text, img, audio, link, embText, embBlob}}, nil
		})

	toolError := mcp.NewToolWithRawSchema("tool_error", "Fails as a tool: isError.", json.RawMessage(evEmptyInput))
	toolError.Annotations = mcp.ToolAnnotation{DestructiveHint: new(true)}
	srv.AddTool(toolError, func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultError("it failed: bad input"), nil
	})

	srv.AddTool(mcp.NewToolWithRawSchema("protocol_error", "Fails with a JSON-RPC error.", json.RawMessage(evEmptyInput)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return nil, fmt.Errorf("application failure")
		})

	srv.AddTool(mcp.NewToolWithRawSchema("notify", "Logs three messages and reports progress twice, then answers.", json.RawMessage(evEmptyInput)),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s := mcpserver.ServerFromContext(ctx)
			var tok mcp.ProgressToken
			if req.Params.Meta != nil {
				tok = req.Params.Meta.ProgressToken
			}
			for i, level := range []mcp.LoggingLevel{mcp.LoggingLevelDebug, mcp.LoggingLevelInfo, mcp.LoggingLevelWarning} {
				if err := s.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(level, "ev", map[string]any{"step": i, "msg": "log " + string(level)})); err != nil {
					return nil, err
				}
				if err := evAwait(ctx, written); err != nil {
					return nil, err
				}
				if tok != nil && i < 2 {
					if err := s.SendNotificationToClient(ctx, "notifications/progress", map[string]any{
						"progressToken": tok, "progress": i + 1, "total": 2, "message": fmt.Sprintf("step %d", i+1),
					}); err != nil {
						return nil, err
					}
					if err := evAwait(ctx, written); err != nil {
						return nil, err
					}
				}
			}
			return mcp.NewToolResultText("notified"), nil
		})

	textRes := mcp.NewResource(evTextURI, "text", mcp.WithResourceDescription("A text resource."), mcp.WithMIMEType("text/plain"))
	textRes.Title, textRes.Annotations, textRes.Meta = "Text", ann, meta()
	srv.AddResource(textRes, func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "hello", Meta: metaMap}}, nil
	})
	srv.AddResource(mcp.NewResource(evBlobURI, "blob", mcp.WithMIMEType("image/png")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{URI: req.Params.URI, MIMEType: "image/png", Blob: evPNG}}, nil
		})
	tmpl := mcp.NewResourceTemplate(evItemURIs, "item", mcp.WithTemplateDescription("One item."), mcp.WithTemplateMIMEType("application/json"))
	tmpl.Title, tmpl.Annotations, tmpl.Meta = "Item", ann, meta()
	srv.AddResourceTemplate(tmpl, func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		id := strings.TrimPrefix(req.Params.URI, "ev://items/")
		if !slices.Contains(evItems, id) {
			return nil, fmt.Errorf("item %q: %w", req.Params.URI, mcpserver.ErrResourceNotFound)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: `{"id":"` + id + `"}`}}, nil
	})

	greet := mcp.NewPrompt("greet", mcp.WithPromptDescription("Greets someone."),
		mcp.WithArgument("name", mcp.RequiredArgument(), mcp.ArgumentDescription("Who.")),
		mcp.WithArgument("style", mcp.ArgumentDescription("How.")))
	greet.Title, greet.Meta = "Greet", meta()
	srv.AddPrompt(greet, func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		text := mcp.NewTextContent("Greet " + req.Params.Arguments["name"] + " in a " + req.Params.Arguments["style"] + " way.")
		text.Annotations = ann
		return mcp.NewGetPromptResult("A greeting for "+req.Params.Arguments["name"], []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, text),
			mcp.NewPromptMessage(mcp.RoleAssistant, mcp.NewImageContent(evPNG, "image/png")),
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewEmbeddedResource(mcp.TextResourceContents{URI: evTextURI, MIMEType: "text/plain", Text: "hello"})),
		}), nil
	})
	srv.AddPrompt(mcp.NewPrompt("plain", mcp.WithPromptDescription("No arguments.")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("plain"))}), nil
	})
	srv.AddPrompt(mcp.NewPrompt("broken", mcp.WithPromptDescription("Fails.")), func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return nil, fmt.Errorf("broken prompt")
	})
	h := mcpserver.NewStreamableHTTPServer(srv)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(evWritten{ResponseWriter: w, written: written}, r)
	})
}

// evAwait waits for one notification to be written.
func evAwait(ctx context.Context, written <-chan struct{}) error {
	select {
	case <-written:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notification never written: %w", ctx.Err())
	}
}
