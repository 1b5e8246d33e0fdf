package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/upstream"
)

// dispatch answers one request on a session. List methods are served from
// the pre-encoded catalog; calls go through forward.
func (g *Gateway) dispatch(w http.ResponseWriter, r *http.Request, s *session, m *message, ep *mcpEndpoint) {
	rt := g.rt.Load()
	ep = rt.endpointIn(ep)
	switch m.Method {
	case mcpwire.MethodPing:
		writeJSON(w, http.StatusOK, appendResult(nil, m.ID, json.RawMessage(emptyObject)))
	case mcpwire.MethodSetLevel:
		g.setLevel(w, r, s, m)
	case mcpwire.MethodSubscribe, mcpwire.MethodUnsubscribe:
		g.serveSubscribe(w, r, s, m)
	case mcpwire.MethodToolsList, mcpwire.MethodResourcesList, mcpwire.MethodTemplatesList, mcpwire.MethodPromptsList:
		g.list(w, r, s, rt, g.visible(r.Context(), rt, ep, s.views), listKind(m.Method), m)
	case mcpwire.MethodToolsCall, mcpwire.MethodResourcesRead, mcpwire.MethodPromptsGet, mcpwire.MethodComplete:
		g.forward(w, r, s, m, nil, ep)
	default:
		writeJSON(w, http.StatusOK, appendError(nil, m.ID,
			newRPCError(mcpwire.CodeMethodNotFound, "method not found: "+strconv.Quote(m.Method), nil)))
	}
}

// emptyObject is the result of ping and logging/setLevel.
const emptyObject = `{}`

// list writes one pre-encoded page of the merged catalog.
func (g *Gateway) list(w http.ResponseWriter, r *http.Request, s *session, rt *runtime, snap *catalog.Snapshot, k catalog.Kind, m *message) {
	page, rerr := pageFor(snap, k, m)
	if rerr != nil {
		writeJSON(w, http.StatusOK, appendError(nil, m.ID, rerr))
		return
	}
	writeAnswer(w, r, s, rt.anyStreams(), appendResult(make([]byte, 0, len(page)+64), m.ID, page))
}

// pageFor returns the page a list request's cursor names.
func pageFor(snap *catalog.Snapshot, k catalog.Kind, m *message) ([]byte, *rpcError) {
	var cursor string
	if c := rawjson.Member(m.Params, "cursor"); len(c) > 0 {
		if err := json.Unmarshal(c, &cursor); err != nil {
			return nil, newRPCError(mcpwire.CodeInvalidParams, "invalid cursor", nil)
		}
	}
	page, err := snap.Page(k, cursor)
	if err != nil {
		return nil, newRPCError(mcpwire.CodeInvalidParams, "invalid cursor", nil)
	}
	return page, nil
}

// target is where one call goes, resolved from the route table.
type target struct {
	upstream string
	original string          // the upstream's own name or URI
	params   json.RawMessage // rewritten for the upstream
	name     string          // exposed name or URI, for logs
	hints    catalog.Hints   // a tool's annotations
}

// resolve maps a call to its upstream and rewrites its params (the
// namespaced name back to the original, a gateway resource URI back to the
// upstream's). Arguments are never decoded.
func resolve(snap *catalog.Snapshot, m *message) (target, *rpcError) {
	switch m.Method {
	case mcpwire.MethodToolsCall:
		return resolveName(snap.Tool, snap, m.Params, "name", "tool")
	case mcpwire.MethodPromptsGet:
		return resolveName(snap.Prompt, snap, m.Params, "name", "prompt")
	case mcpwire.MethodResourcesRead:
		return resolveURI(snap, m.Params, "uri")
	case mcpwire.MethodComplete:
		ref := rawjson.Member(m.Params, "ref")
		var kind struct {
			Type string `json:"type"`
		}
		if len(ref) == 0 || json.Unmarshal(ref, &kind) != nil {
			return target{}, newRPCError(mcpwire.CodeInvalidParams, "completion/complete needs params.ref", nil)
		}
		var t target
		var e *rpcError
		switch kind.Type {
		case mcpwire.RefPrompt:
			t, e = resolveName(snap.Prompt, snap, ref, "name", "prompt")
		case mcpwire.RefResource:
			t, e = resolveURI(snap, ref, "uri")
		default:
			return target{}, newRPCError(mcpwire.CodeInvalidParams, "unknown completion ref type "+strconv.Quote(kind.Type), nil)
		}
		if e != nil {
			return t, e
		}
		params, ok := rawjson.ReplaceMember(m.Params, "ref", t.params)
		if !ok {
			return target{}, newRPCError(mcpwire.CodeInvalidParams, "completion/complete needs params.ref", nil)
		}
		t.params = params
		return t, nil
	default:
		return target{}, newRPCError(mcpwire.CodeMethodNotFound, "method not found: "+strconv.Quote(m.Method), nil)
	}
}

func resolveName(lookup func(string) (catalog.Route, bool), snap *catalog.Snapshot, obj json.RawMessage, key, what string) (target, *rpcError) {
	name, ok := rawjson.DecodeString(rawjson.Member(obj, key))
	if !ok || name == "" {
		return target{}, newRPCError(mcpwire.CodeInvalidParams, what+" "+key+" is missing or not a string", nil)
	}
	route, ok := lookup(name)
	if !ok && what == "tool" {
		var exposed string
		if route, exposed, ok = viewTool(snap, name); ok {
			name = exposed // the policies, the audit and the logs see the exposed name
		}
	}
	if !ok {
		if up, owned := snap.Owner(name); owned {
			return target{}, unavailable(up, what+" "+strconv.Quote(name))
		}
		if what == "tool" {
			if exposed := snap.ViewTool(name); len(exposed) > 1 {
				return target{}, ambiguousViewTool(name, exposed)
			}
		}
		return target{}, newRPCError(mcpwire.CodeInvalidParams, "unknown "+what+": "+strconv.Quote(name), map[string]any{what: name})
	}
	if !route.Available {
		return target{}, unavailable(route.Upstream, what+" "+strconv.Quote(name))
	}
	var qb [128]byte
	params, _ := rawjson.ReplaceMember(obj, key, appendQuoted(qb[:0], route.Name))
	return target{upstream: route.Upstream, original: route.Name, params: params, name: name, hints: route.Hints}, nil
}

// viewTool routes the bare name an MCP Apps view calls its own server's
// tool by (MCP Apps, "Visibility": "app" is "callable by the app from the
// same server connection only"). A view's tools/call reaches the gateway
// through the host as an ordinary tools/call, with the name its server
// gave the tool, which is not the exposed name once the upstream has a
// prefix. catalog.Snapshot.ViewTool names the candidates: the app-visible
// tools of upstreams that serve views. Exactly one routes the call as if
// the host had named its exposed name, so every step of the call path
// (kill switch, scopes, rules, rate limit, audit) sees and checks that
// name, and the bare name reaches nothing the exposed one does not;
// several are refused (ambiguousViewTool) rather than guessed.
func viewTool(snap *catalog.Snapshot, name string) (catalog.Route, string, bool) {
	exposed := snap.ViewTool(name)
	if len(exposed) != 1 {
		return catalog.Route{}, "", false
	}
	route, ok := snap.Tool(exposed[0])
	return route, exposed[0], ok
}

// ambiguousViewTool refuses a bare tool name that several upstreams
// serving MCP Apps give an app-visible tool: the gateway cannot tell whose
// view called, and does not guess.
func ambiguousViewTool(name string, exposed []string) *rpcError {
	return newRPCError(mcpwire.CodeInvalidParams,
		"tool name "+strconv.Quote(name)+" is ambiguous: several upstreams serving MCP Apps views have an app tool of that name; call it by its exposed name, one of "+strings.Join(exposed, ", "),
		map[string]any{"tool": name, "candidates": exposed})
}

func resolveURI(snap *catalog.Snapshot, obj json.RawMessage, key string) (target, *rpcError) {
	raw := rawjson.Member(obj, key)
	var uri string
	if len(raw) == 0 || json.Unmarshal(raw, &uri) != nil || uri == "" {
		return target{}, newRPCError(mcpwire.CodeInvalidParams, "resource "+key+" is missing or not a string", nil)
	}
	route, ok := snap.Resource(uri)
	if !ok {
		return target{}, newRPCError(mcpwire.CodeResourceNotFound, "resource not found: "+strconv.Quote(uri), map[string]any{"uri": uri})
	}
	if !route.Available {
		return target{}, unavailable(route.Upstream, "resource "+strconv.Quote(uri))
	}
	params := obj
	if route.Name != uri {
		params, _ = rawjson.ReplaceMember(obj, key, quoteJSON(route.Name))
	}
	return target{upstream: route.Upstream, original: route.Name, params: params, name: uri}, nil
}

// appendQuoted appends s as a JSON string: between quotes as it is when it
// needs no escaping (tool and prompt names), through encoding/json otherwise.
func appendQuoted(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			return append(dst, quoteJSON(s)...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func quoteJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

func unavailable(up, what string) *rpcError {
	return newRPCError(mcpwire.CodeUpstreamUnavailable, "upstream "+strconv.Quote(up)+" is unavailable; cannot serve "+what,
		map[string]any{"upstream": up})
}

// upstreamError maps an upstream failure to the wire, once: JSON-RPC errors
// from the upstream pass through; the gateway's own failures get codes from
// its documented range and name the upstream.
func (g *Gateway) upstreamError(ctx context.Context, t *target, err error) *rpcError {
	if own := (*rpcError)(nil); errors.As(err, &own) {
		return own
	}
	var rpcErr *upstream.RPCError
	if errors.As(err, &rpcErr) {
		// Relayed as the upstream sent it: the whole object when the
		// transport kept it, else its members with data as raw JSON (a
		// []byte in an any would marshal as base64).
		e := &rpcError{Code: rpcErr.Code, Message: rpcErr.Message, raw: rpcErr.Raw}
		if len(rpcErr.Data) > 0 {
			e.Data = json.RawMessage(rpcErr.Data)
		}
		return e
	}
	if e := resilienceError(t, err); e != nil {
		return e
	}
	data := map[string]any{"upstream": t.upstream}
	g.log.WarnContext(ctx, "upstream call failed", slog.String("upstream", t.upstream), slog.String("target", t.name),
		slog.String("request_id", requestIDFrom(ctx)), slog.Any("error", err))
	switch {
	case errors.Is(err, upstream.ErrTimeout):
		return newRPCError(mcpwire.CodeUpstreamTimeout, err.Error(), withTimeout(data, err))
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return newRPCError(mcpwire.CodeRequestCancelled, "request cancelled", data)
	case errors.Is(err, upstream.ErrResponseTooLarge), errors.Is(err, upstream.ErrBadResponse):
		return newRPCError(mcpwire.CodeUpstreamBadResponse, err.Error(), data)
	case rejected(err) != 0:
		data["status"] = rejected(err)
		return newRPCError(mcpwire.CodeUpstreamRejected, err.Error(), data)
	case errors.Is(err, upstream.ErrUnavailable):
		return newRPCError(mcpwire.CodeUpstreamUnavailable, err.Error(), data)
	default:
		return newRPCError(mcpwire.CodeUpstreamUnavailable, "upstream "+strconv.Quote(t.upstream)+": "+err.Error(), data)
	}
}

// rejected is the HTTP 4xx status an upstream refused a call with (no
// JSON-RPC error in the body: such an error is relayed), 0 for any other
// failure.
func rejected(err error) int {
	var ue *upstream.Error
	if errors.As(err, &ue) && ue.Status/100 == 4 {
		return ue.Status
	}
	return 0
}
