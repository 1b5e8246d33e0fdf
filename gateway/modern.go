package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// MCP 2026-07-28 is stateless: no initialize, no session, every request
// carries its protocol version and client capabilities in params._meta and
// mirrors its routing fields in headers (specification/2026-07-28:
// changelog, basic/transports, basic/versioning). A modern client's
// consecutive requests may land on different gateway replicas; nothing on
// this path depends on replica-local state.

// removed reports whether method was dropped in 2026-07-28; a modern
// request for one gets 404 with mcpwire.CodeMethodNotFound.
func removed(method string) bool {
	switch method {
	case mcpwire.MethodInitialize, mcpwire.MethodPing, mcpwire.MethodSetLevel, mcpwire.MethodSubscribe,
		mcpwire.MethodUnsubscribe, mcpwire.NotifyInitialized, mcpwire.NotifyRootsChanged, mcpwire.NotifyMessage,
		mcpwire.NotifyResourceUpdated, mcpwire.NotifyToolsChanged, mcpwire.NotifyPromptsChanged, mcpwire.NotifyResourcesChanged:
		return true
	default:
		return false
	}
}

// nameKey is the params member that Mcp-Name mirrors for method; false
// for a method without one.
func nameKey(method string) (string, bool) {
	switch method {
	case mcpwire.MethodToolsCall, mcpwire.MethodPromptsGet:
		return "name", true
	case mcpwire.MethodResourcesRead:
		return "uri", true
	default:
		return "", false
	}
}

// modernStatus is the HTTP status 2026-07-28 prescribes for a JSON-RPC error
// code (basic/transports): protocol errors are 4xx, application errors 200.
func modernStatus(code int) int {
	switch code {
	case mcpwire.CodeMethodNotFound:
		return http.StatusNotFound
	case mcpwire.CodeHeaderMismatch, mcpwire.CodeMissingCapability, mcpwire.CodeUnsupportedVersion, mcpwire.CodeInvalidRequest, mcpwire.CodeInvalidParams, mcpwire.CodeParseError:
		return http.StatusBadRequest
	default:
		return http.StatusOK
	}
}

// decodeHeaderValue undoes the `=?base64?…?=` form a client uses for values
// that are not plain visible ASCII (2026-07-28, basic/transports).
func decodeHeaderValue(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, true
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// serveModern answers one 2026-07-28 request.
func (g *Gateway) serveModern(w http.ResponseWriter, r *http.Request, m *message, headerVersion string, c *call, ep *mcpEndpoint) {
	fail := func(code int, msg string, data any) {
		rerr := newRPCError(code, msg, data)
		if c == nil && g.refused(w, r, m, modernStatus(code), rerr) {
			return
		}
		writeJSON(w, modernStatus(code), appendError(nil, m.ID, rerr))
	}
	if headerVersion == "" {
		fail(mcpwire.CodeHeaderMismatch, "MCP-Protocol-Version header is required with "+mcpwire.MetaProtocolVersion, nil)
		return
	}
	if !slices.Contains(mcpwire.ModernVersions(), headerVersion) {
		fail(mcpwire.CodeUnsupportedVersion, "unsupported protocol version "+headerVersion,
			map[string]any{"supported": mcpwire.SupportedVersions(), "requested": headerVersion})
		return
	}
	if r.Header.Get(mcpwire.HeaderSessionID) != "" {
		fail(mcpwire.CodeInvalidRequest, "Mcp-Session-Id is not used in protocol "+headerVersion+": requests are stateless", nil)
		return
	}
	if r.Header.Get(mcpwire.HeaderLastEventID) != "" {
		fail(mcpwire.CodeHeaderMismatch, "Last-Event-ID is not supported in protocol "+headerVersion+": streams are not resumable", nil)
		return
	}
	if removed(m.Method) {
		fail(mcpwire.CodeMethodNotFound, "method "+strconv.Quote(m.Method)+" was removed in protocol "+headerVersion, nil)
		return
	}
	if m.isNotification() {
		// Cancellation in the stateless era is closing the request's
		// stream; other notifications carry nothing for the gateway.
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if !m.isRequest() {
		fail(mcpwire.CodeInvalidRequest, "protocol "+headerVersion+" has no server-to-client requests to answer", nil)
		return
	}
	if rerr := checkModernEnvelope(r, m, headerVersion); rerr != nil {
		fail(rerr.Code, rerr.Message, rerr.Data)
		return
	}
	rt := g.rt.Load()
	ep = rt.endpointIn(ep)
	switch m.Method {
	case mcpwire.MethodDiscover:
		writeJSON(w, http.StatusOK, appendResult(nil, m.ID, g.discoverResult(rt, ep)))
	case mcpwire.MethodToolsList, mcpwire.MethodResourcesList, mcpwire.MethodTemplatesList, mcpwire.MethodPromptsList:
		g.modernList(w, r, rt, g.visible(r.Context(), rt, ep, rendersViews(rawjson.Member(rawjson.Member(m.Params, "_meta"), mcpwire.MetaClientCapabilities))), listKind(m.Method), m)
	case mcpwire.MethodToolsCall, mcpwire.MethodResourcesRead, mcpwire.MethodPromptsGet, mcpwire.MethodComplete:
		g.forward(w, r, nil, m, c, ep)
	case mcpwire.MethodListen:
		g.listen(w, r, m)
	default:
		fail(mcpwire.CodeMethodNotFound, "method not found: "+strconv.Quote(m.Method), nil)
	}
}

// checkModernEnvelope applies the per-request rules of 2026-07-28: the
// _meta protocol keys are present and agree with the header, and Mcp-Method
// and Mcp-Name mirror the body.
func checkModernEnvelope(r *http.Request, m *message, headerVersion string) *rpcError {
	meta := rawjson.Member(m.Params, "_meta")
	rawVersion := rawjson.Member(meta, mcpwire.MetaProtocolVersion)
	if headerVersion == "" || !rawjson.StringIs(rawVersion, headerVersion) {
		metaVersion, ok := rawjson.DecodeString(rawVersion)
		if !ok || metaVersion == "" {
			return newRPCError(mcpwire.CodeInvalidParams, "missing or invalid _meta "+mcpwire.MetaProtocolVersion, nil)
		}
		if metaVersion != headerVersion {
			return newRPCError(mcpwire.CodeHeaderMismatch, "MCP-Protocol-Version header "+headerVersion+" does not match _meta "+mcpwire.MetaProtocolVersion+" "+metaVersion, nil)
		}
	}
	if caps := rawjson.Member(meta, mcpwire.MetaClientCapabilities); len(caps) == 0 || caps[0] != '{' {
		return newRPCError(mcpwire.CodeInvalidParams, "missing or invalid _meta "+mcpwire.MetaClientCapabilities, nil)
	}
	method, ok := decodeHeaderValue(r.Header.Get(mcpwire.HeaderMethod))
	switch {
	case !ok:
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Method header is malformed", nil)
	case method == "":
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Method header is required", nil)
	case method != m.Method:
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Method header "+strconv.Quote(method)+" does not match the body's method "+strconv.Quote(m.Method), nil)
	}
	key, named := nameKey(m.Method)
	if !named {
		return nil
	}
	name, ok := decodeHeaderValue(r.Header.Get(mcpwire.HeaderName))
	if !ok {
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Name header is malformed", nil)
	}
	if name == "" {
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Name header is required for "+m.Method, nil)
	}
	rawName := rawjson.Member(m.Params, key)
	if rawjson.StringIs(rawName, name) {
		return nil
	}
	bodyName, ok := rawjson.DecodeString(rawName)
	if !ok {
		return newRPCError(mcpwire.CodeInvalidParams, m.Method+" needs params."+key, nil)
	}
	if name != bodyName {
		return newRPCError(mcpwire.CodeHeaderMismatch, "Mcp-Name header "+strconv.Quote(name)+" does not match params."+key+" "+strconv.Quote(bodyName), nil)
	}
	return nil
}

// discoverResult answers server/discover. serverInfo stays in the body
// for clients of the drafts before it moved to _meta (SEP-2575).
func (g *Gateway) discoverResult(rt *runtime, ep *mcpEndpoint) []byte {
	res, _ := json.Marshal(map[string]any{
		mcpwire.ResultTypeKey: mcpwire.ResultComplete,
		"_meta":               map[string]any{mcpwire.MetaServerInfo: g.serverInfo()},
		"supportedVersions":   mcpwire.SupportedVersions(),
		"capabilities":        gatewayCapabilities(rt),
		"serverInfo":          g.serverInfo(),
		"instructions":        g.instructionsAt(ep),
		"ttlMs":               rt.listTTL().Milliseconds(),
		"cacheScope":          "private",
	})
	return res
}

// modernList writes a list page with the 2026-07-28 cache hints. The scope
// is private: with authentication the merged catalog is filtered per
// principal, so no shared cache may reuse it.
func (g *Gateway) modernList(w http.ResponseWriter, r *http.Request, rt *runtime, snap *catalog.Snapshot, k catalog.Kind, m *message) {
	page, rerr := pageFor(snap, k, m)
	if rerr != nil {
		writeJSON(w, modernStatus(rerr.Code), appendError(nil, m.ID, rerr))
		return
	}
	out := make([]byte, 0, len(page)+len(g.modernHead)+96)
	out = append(out, respPrefix...)
	out = append(out, m.ID...)
	out = append(out, respResult...)
	out = appendCacheHints(out, g.modernHead, page, rt.listTTL())
	writeAnswer(w, r, nil, rt.anyStreams(), append(out, '}'))
}

// appendCacheHints appends the object obj with the members of head (an
// object's opening without its closing brace: resultType and _meta) first
// and ttlMs and cacheScope last.
func appendCacheHints(dst, head, obj []byte, ttl time.Duration) []byte {
	end := len(obj) - 1
	for end > 0 && obj[end] != '}' {
		end--
	}
	dst = append(dst, head...)
	dst = append(dst, ',')
	if i := rawjson.SkipSpace(obj, 1); i < end {
		dst = append(dst, obj[1:end]...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"ttlMs":`...)
	dst = strconv.AppendInt(dst, ttl.Milliseconds(), 10)
	dst = append(dst, `,"cacheScope":"private"}`...)
	return dst
}

// listTTL is the cache hint for lists: the configured TTL, or 0 while an
// upstream is unavailable so that hosts re-fetch once it returns.
func (rt *runtime) listTTL() time.Duration {
	for _, u := range rt.snapshot().Upstreams() {
		if !u.Available {
			return 0
		}
	}
	return rt.cfg.Catalog.ListTTL
}

// listener is one subscriptions/listen stream.
type listener struct {
	notes  chan []byte     // notifications, their params without _meta
	filter map[string]bool // notification methods the client opted in to
	// meta is the _meta member every notification on the stream carries:
	// the subscription id, which is the id of the listen request
	// (2026-07-28 basic/utilities/subscriptions, "Receiving Notifications").
	meta []byte
}

// listeners holds the open subscriptions/listen streams of this replica.
type listeners struct{ m sync.Map }

func (ls *listeners) broadcast(method string, note []byte) {
	ls.m.Range(func(k, _ any) bool {
		l := k.(*listener) //nolint:errcheck,forcetypeassert // the map only holds *listener.
		if l.filter[method] {
			l.send(note)
		}
		return true
	})
}

// send queues a notification; a full queue drops it (list changes are
// idempotent, and a client that falls this far behind re-lists anyway).
func (l *listener) send(note []byte) {
	select {
	case l.notes <- note:
	default:
	}
}

// stamp returns note, a notification the gateway built, with the
// stream's _meta added to its params.
func (l *listener) stamp(note []byte) []byte {
	out := make([]byte, 0, len(note)+len(l.meta)+16)
	params := rawjson.Member(note, "params")
	if len(params) < 2 {
		out = append(out, note[:len(note)-1]...)
		out = append(out, `,"params":{`...)
		out = append(out, l.meta...)
		return append(out, "}}"...)
	}
	// appendNotification puts params last: its closing brace is the
	// last but one byte's last '}'.
	end := bytes.LastIndexByte(note[:len(note)-1], '}')
	out = append(out, note[:end]...)
	if rawjson.SkipSpace(params, 1) < len(params)-1 {
		out = append(out, ',')
	}
	out = append(out, l.meta...)
	return append(out, note[end:]...)
}

// listen serves subscriptions/listen: an SSE stream that first acknowledges
// the subscriptions the gateway can honour, then delivers list_changed of
// the merged catalog until the client goes away or the gateway drains.
// Every notification on it carries the subscription id, the listen
// request's id, in _meta.
func (g *Gateway) listen(w http.ResponseWriter, r *http.Request, m *message) {
	var p struct {
		Notifications struct {
			Tools     bool     `json:"toolsListChanged"`
			Prompts   bool     `json:"promptsListChanged"`
			Resources bool     `json:"resourcesListChanged"`
			URIs      []string `json:"resourceSubscriptions"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil {
		writeJSON(w, http.StatusBadRequest, appendError(nil, m.ID, newRPCError(mcpwire.CodeInvalidParams, "invalid subscriptions/listen params: "+err.Error(), nil)))
		return
	}
	n := p.Notifications
	subID := m.ID
	meta := append(rawjson.AppendString([]byte(`"_meta":{`), mcpwire.MetaSubscriptionID), ':')
	meta = append(append(meta, subID...), '}')
	l := &listener{notes: make(chan []byte, 16), meta: meta, filter: map[string]bool{
		mcpwire.NotifyToolsChanged:     n.Tools,
		mcpwire.NotifyPromptsChanged:   n.Prompts,
		mcpwire.NotifyResourcesChanged: n.Resources,
	}}
	g.listeners.m.Store(l, struct{}{})
	defer g.listeners.m.Delete(l)
	// Resource subscriptions are acknowledged for the URIs the client may
	// see on an upstream that offers them; the others are left out of the
	// acknowledgement, which is how the stream refuses them.
	honored := make([]string, 0, len(n.URIs))
	for _, uri := range n.URIs {
		if rerr := g.subscribe(r.Context(), l, uri); rerr != nil {
			g.log.DebugContext(r.Context(), "resource subscription refused", slog.String("uri", uri), slog.String("reason", rerr.Message))
			continue
		}
		honored = append(honored, uri)
	}
	defer g.unsubscribeAll(l)
	agreed := map[string]any{"toolsListChanged": n.Tools, "promptsListChanged": n.Prompts, "resourcesListChanged": n.Resources}
	if len(honored) > 0 {
		agreed["resourceSubscriptions"] = honored
	}
	ack, _ := json.Marshal(map[string]any{
		"notifications": agreed,
		"_meta":         map[string]any{mcpwire.MetaSubscriptionID: subID},
	})

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	if writeEvent(w, appendNotification(nil, mcpwire.NotifySubscriptionsAcknowledged, ack)) != nil {
		return
	}
	_ = rc.Flush()
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case note := <-l.notes:
			if writeEvent(w, l.stamp(note)) != nil {
				return
			}
			_ = rc.Flush()
		case <-keepAlive.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case <-g.drained:
			// The stream ends with the listen request's result.
			res, _ := json.Marshal(map[string]any{"_meta": map[string]any{mcpwire.MetaSubscriptionID: subID}})
			_ = writeEvent(w, appendResult(nil, m.ID, res))
			_ = rc.Flush()
			return
		case <-r.Context().Done():
			g.log.DebugContext(r.Context(), "subscription closed by client", slog.String("subscription_id", string(subID)))
			return
		}
	}
}
