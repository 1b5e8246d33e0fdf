package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/upstream"
)

// serveMCP is the MCP endpoint (basic/transports, "Streamable HTTP").
func (g *Gateway) serveMCP(w http.ResponseWriter, r *http.Request) { g.serveAt(w, r, nil) }

// serveAt is the MCP endpoint at ep: a virtual endpoint, or the MCP
// endpoint itself when nil.
func (g *Gateway) serveAt(w http.ResponseWriter, r *http.Request, ep *mcpEndpoint) {
	switch r.Method {
	case http.MethodPost:
		g.servePost(w, r, ep)
	case http.MethodGet:
		g.serveStream(w, r, ep)
	case http.MethodDelete:
		g.serveDelete(w, r, ep)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// readBody reads the request body; an oversized body is reported as 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	var buf []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= 1<<20 {
		// The announced length, in one allocation: net/http ends the body
		// there (and sees its end on the read that fills the buffer).
		buf = make([]byte, n)
		_, err = io.ReadFull(r.Body, buf)
	} else {
		buf, err = io.ReadAll(r.Body)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeTooLarge(w, tooBig.Limit)
			return nil, false
		}
		http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return buf, true
}

// writeTooLarge answers a body over server.max_body_bytes: HTTP 413 with
// an invalid-request error that names the limit, distinct from the parse
// error of a body that is not JSON.
func writeTooLarge(w http.ResponseWriter, limit int64) {
	writeJSON(w, http.StatusRequestEntityTooLarge, appendError(nil, nil,
		newRPCError(mcpwire.CodeInvalidRequest, "invalid request: body too large: more than "+strconv.FormatInt(limit, 10)+" bytes",
			map[string]any{"limit": limit})))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// jsonContentType is the Content-Type value of JSON answers; header values
// are never written after they are set, so one slice serves every answer.
var jsonContentType = []string{"application/json"} //nolint:gochecknoglobals // set on every answer without allocating; never written.

// msgBufs hold answers while they are written; nothing keeps an answer
// after the write, so the buffer is reused. A pool serves the whole
// process, like net/http's own buffer pools.
var msgBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2<<10); return &b }} //nolint:gochecknoglobals // process-wide by nature.

func getMsgBuf() *[]byte { return msgBufs.Get().(*[]byte) } //nolint:errcheck // msgBufs holds only *[]byte.

func putMsgBuf(b *[]byte) {
	if cap(*b) <= 64<<10 {
		*b = (*b)[:0]
		msgBufs.Put(b)
	}
}

func (g *Gateway) servePost(w http.ResponseWriter, r *http.Request, ep *mcpEndpoint) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	// Header-first: a modern tools/call is routed and admitted before its
	// body is read (callpath.go).
	c := g.headerCall(w, r, ep)
	if c != nil {
		defer c.finish()
		if c.rerr != nil {
			return
		}
	}
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	m, perr := parseMessage(body)
	if perr != nil {
		var id json.RawMessage
		if m != nil && len(m.ID) > 0 && validID(m.ID) {
			id = m.ID
		}
		if c == nil && g.refused(w, r, m, http.StatusBadRequest, perr) {
			return
		}
		writeJSON(w, http.StatusBadRequest, appendError(nil, id, perr))
		return
	}
	// The era is chosen per request, header first (2026-07-28 requests must
	// send MCP-Protocol-Version); a body that declares 2026-07-28 without
	// the header is a modern request with a missing header.
	pv := r.Header.Get(mcpwire.HeaderProtocolVersion)
	if mcpwire.IsModern(pv) || (pv == "" && mcpwire.IsModern(declaredVersion(m))) {
		g.serveModern(w, r, m, pv, c, ep)
		return
	}
	if pv != "" && !slices.Contains(mcpwire.LegacyVersions(), pv) {
		rerr := newRPCError(mcpwire.CodeUnsupportedVersion, "unsupported protocol version "+pv,
			map[string]any{"supported": mcpwire.SupportedVersions(), "requested": pv})
		if !g.refused(w, r, m, http.StatusBadRequest, rerr) {
			writeJSON(w, http.StatusBadRequest, appendError(nil, m.ID, rerr))
		}
		return
	}
	if m.Method == mcpwire.MethodInitialize {
		g.initialize(w, r, m, ep)
		return
	}
	sid := r.Header.Get(mcpwire.HeaderSessionID)
	if sid == "" {
		rerr := newRPCError(mcpwire.CodeInvalidRequest, "missing Mcp-Session-Id header: send initialize first", nil)
		if !g.refused(w, r, m, http.StatusBadRequest, rerr) {
			writeJSON(w, http.StatusBadRequest, appendError(nil, m.ID, rerr))
		}
		return
	}
	s, ok := g.sessions.get(sid, ownerAt(r, ep))
	if !ok {
		rerr := newRPCError(mcpwire.CodeSessionNotFound, "session not found", nil)
		if !g.refused(w, r, m, http.StatusNotFound, rerr) {
			writeJSON(w, http.StatusNotFound, appendError(nil, m.ID, rerr))
		}
		return
	}
	if m.Method == "" {
		// A response to one of the gateway's server-to-client requests
		// (mrtr.go, askClient).
		if !s.deliver(m) {
			g.log.DebugContext(r.Context(), "response to no pending request ignored", slog.String("session", s.digest))
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	if !m.isRequest() {
		g.clientNotification(r, s, m)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	g.dispatch(w, r, s, m, ep)
}

// ownerOf names the principal of a request for session binding: issuer and
// subject (a refreshed token keeps its session), or "" without auth.
func ownerOf(r *http.Request) string {
	if p, ok := authn.PrincipalFrom(r.Context()); ok {
		return p.Key()
	}
	return ""
}

// declaredVersion returns the protocol version a request declares in
// params._meta, or "".
func declaredVersion(m *message) string {
	raw := rawjson.Member(rawjson.Member(m.Params, "_meta"), mcpwire.MetaProtocolVersion)
	var v string
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

// initialize opens a 2025-era session.
func (g *Gateway) initialize(w http.ResponseWriter, r *http.Request, m *message, ep *mcpEndpoint) {
	if !m.isRequest() {
		writeJSON(w, http.StatusBadRequest, appendError(nil, nil, newRPCError(mcpwire.CodeInvalidRequest, "initialize must be a request with an id", nil)))
		return
	}
	if r.Header.Get(mcpwire.HeaderSessionID) != "" {
		writeJSON(w, http.StatusBadRequest, appendError(nil, m.ID, newRPCError(mcpwire.CodeInvalidRequest, "initialize must not carry Mcp-Session-Id", nil)))
		return
	}
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
	}
	if len(m.Params) > 0 {
		if err := json.Unmarshal(m.Params, &p); err != nil {
			writeJSON(w, http.StatusOK, appendError(nil, m.ID, newRPCError(mcpwire.CodeInvalidParams, "invalid initialize params: "+err.Error(), nil)))
			return
		}
	}
	version := mcpwire.LegacyVersions()[0]
	if slices.Contains(mcpwire.LegacyVersions(), p.ProtocolVersion) {
		version = p.ProtocolVersion
	}
	var caps json.RawMessage
	if len(p.Capabilities) > 0 && p.Capabilities[0] == '{' {
		caps = p.Capabilities
	}
	s, err := g.sessions.create(version, ownerAt(r, ep), caps)
	if err != nil {
		g.log.ErrorContext(r.Context(), "creating session", slog.Any("error", err))
		writeJSON(w, http.StatusInternalServerError, appendError(nil, m.ID, newRPCError(mcpwire.CodeInternalError, "cannot create session", nil)))
		return
	}
	result, _ := json.Marshal(map[string]any{
		"protocolVersion": version,
		"capabilities":    gatewayCapabilities(g.rt.Load()),
		"serverInfo":      g.serverInfo(),
		"instructions":    g.instructionsAt(ep),
	})
	w.Header().Set(mcpwire.HeaderSessionID, s.id)
	// The id is a bearer credential for the session: log only its digest.
	g.log.DebugContext(r.Context(), "session opened", slog.String("session", s.digest),
		slog.String("protocol_version", version), slog.String("request_id", requestIDFrom(r.Context())))
	writeJSON(w, http.StatusOK, appendResult(nil, m.ID, result))
}

// gatewayCapabilities are what the gateway offers hosts: list_changed of
// the merged catalog, completions and logging are served (or forwarded) by
// the gateway itself, whatever the upstreams offer; resource subscriptions
// when some upstream offers them (subscribe.go); MCP Apps when some
// upstream declares the extension (apps.go).
func gatewayCapabilities(rt *runtime) map[string]any {
	resources := map[string]any{"listChanged": true}
	if rt.anySubscribe() {
		resources["subscribe"] = true
	}
	caps := map[string]any{
		"tools":       map[string]any{"listChanged": true},
		"resources":   resources,
		"prompts":     map[string]any{"listChanged": true},
		"completions": map[string]any{},
		"logging":     map[string]any{},
	}
	if ui := rt.uiExtension(); ui != nil {
		caps[mcpwire.CapabilityExtensions] = map[string]any{mcpwire.ExtensionUI: ui}
	}
	return caps
}

func (g *Gateway) serverInfo() map[string]any {
	return map[string]any{"name": "mcpgw", "title": "mcpgw MCP gateway", "version": g.version}
}

// instructions describes the catalog as configured: which servers it
// merges and how each one's tool and prompt names are exposed.
func (g *Gateway) instructions() string {
	cfg := g.rt.Load().cfg
	var servers, prefixed, own []string
	for i := range cfg.Upstreams {
		u := &cfg.Upstreams[i]
		servers = append(servers, u.Name)
		if p := u.ExposedPrefix(); p != "" {
			prefixed = append(prefixed, u.Name+" as "+p+cfg.Catalog.Separator+"<name>")
		} else {
			own = append(own, u.Name)
		}
	}
	var b strings.Builder
	b.WriteString("mcpgw merges the MCP servers " + strings.Join(servers, ", ") + " into one catalog.")
	if len(prefixed) > 0 {
		b.WriteString(" Tool and prompt names are namespaced: " + strings.Join(prefixed, ", ") + ".")
	}
	if len(own) > 0 {
		b.WriteString(" " + strings.Join(own, ", ") + " keep their own tool and prompt names.")
	}
	return b.String()
}

// clientNotification handles notifications (and responses) from the client.
func (g *Gateway) clientNotification(r *http.Request, s *session, m *message) {
	if m.Method != mcpwire.NotifyCancelled {
		return
	}
	var p struct {
		RequestID json.RawMessage `json:"requestId"`
	}
	if err := json.Unmarshal(m.Params, &p); err != nil || len(p.RequestID) == 0 {
		return
	}
	if s.cancel(p.RequestID) {
		g.log.InfoContext(r.Context(), "request cancelled by client", slog.String("session", s.digest),
			slog.String("jsonrpc_request_id", string(p.RequestID)))
		return
	}
	// The call may run on another replica of the session (cancels.go).
	g.relayCancel(r.Context(), s, p.RequestID)
}

// serveStream is the standalone GET SSE stream of a session: it carries
// the gateway's list_changed notifications. With Last-Event-ID it resumes
// the stream that event was sent on (replay.go): the events after it are
// replayed, then a GET stream goes on, and a POST stream runs to its
// response.
func (g *Gateway) serveStream(w http.ResponseWriter, r *http.Request, ep *mcpEndpoint) {
	if !acceptsSSE(r) {
		http.Error(w, "Accept must include text/event-stream", http.StatusNotAcceptable)
		return
	}
	sid := r.Header.Get(mcpwire.HeaderSessionID)
	if sid == "" {
		http.Error(w, "missing Mcp-Session-Id header", http.StatusBadRequest)
		return
	}
	s, ok := g.sessions.get(sid, ownerAt(r, ep))
	if !ok {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	var st *sseStream
	if last := r.Header.Get(mcpwire.HeaderLastEventID); last != "" {
		var err error
		if st, err = s.streams.resume(w, last); err != nil {
			// The spec lets a server decline to replay; saying so beats
			// a fresh stream that silently lacks what the client missed.
			g.log.DebugContext(r.Context(), "stream not resumed", slog.String("session", s.digest), slog.Any("error", err))
			http.Error(w, "cannot resume from Last-Event-ID "+strconv.Quote(last)+": "+err.Error(), http.StatusBadRequest)
			return
		}
	} else {
		st = s.streams.start(w, true)
	}
	defer st.detach(w)
	if !st.get {
		select {
		case <-st.end:
		case <-s.closed:
		case <-g.drained:
		case <-r.Context().Done():
		}
		return
	}
	keepAlive := time.NewTicker(25 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case note := <-s.notes:
			st.send(note, false)
		case <-keepAlive.C:
			// A comment keeps proxies from closing an idle stream, and an
			// open stream keeps its session alive.
			s.touch(g.now())
			if st.comment(w, ": keep-alive\n\n") != nil {
				return
			}
		case <-s.closed:
			return
		case <-g.drained:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// serveDelete ends a session at the client's request.
func (g *Gateway) serveDelete(w http.ResponseWriter, r *http.Request, ep *mcpEndpoint) {
	s, ok := g.sessions.get(r.Header.Get(mcpwire.HeaderSessionID), ownerAt(r, ep))
	if !ok {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	g.sessions.end(s)
	w.WriteHeader(http.StatusOK)
}

// The frame of one SSE event carrying a JSON-RPC message.
const (
	eventPrefix = "event: message\ndata: "
	eventSuffix = "\n\n"
)

// writeEvent writes one SSE event carrying msg. Upstream JSON is relayed
// byte for byte and may hold raw newlines between tokens, which would end an
// SSE data line early; such a message is compacted first.
func writeEvent(w io.Writer, msg []byte) error {
	if bytes.ContainsAny(msg, "\r\n") {
		var c bytes.Buffer
		if err := json.Compact(&c, msg); err == nil {
			msg = c.Bytes()
		}
	}
	buf := make([]byte, 0, len(eventPrefix)+len(msg)+len(eventSuffix))
	buf = append(buf, eventPrefix...)
	buf = append(buf, msg...)
	buf = append(buf, eventSuffix...)
	_, err := w.Write(buf)
	return err
}

// replier writes the answer to one request. It starts as a plain JSON
// response and switches to an SSE stream when a notification (progress)
// must go out before the result, or from the start when the upstream
// answers its own clients with streams (eager), so that the client gets
// the framing it would get directly. On a 2025-era session the stream is
// resumable (replay.go): its events have ids and are kept for a client
// that reconnects with Last-Event-ID.
type replier struct {
	w      http.ResponseWriter
	sseOK  bool
	modern bool // 2026-07-28: protocol errors carry 4xx statuses
	status int  // the HTTP status of an error answer when not 0 (refused)
	// minLog is the rank of the least severe log message the client wants
	// (mcpwire.LogLevelRank); -1 relays every one.
	minLog int
	// streams are the session's streams (nil in 2026-07-28, which has no
	// resumption); st is this answer's once it streams.
	streams *streams
	st      *sseStream
	// eager streams the answer even without notifications.
	eager     bool
	mu        sync.Mutex
	streaming bool
	finished  bool
}

func newReplier(w http.ResponseWriter, r *http.Request, modern bool) *replier {
	rp := new(replier)
	rp.init(w, r, modern)
	return rp
}

// init readies a replier that has not been used.
func (rp *replier) init(w http.ResponseWriter, r *http.Request, modern bool) {
	rp.w, rp.sseOK, rp.modern, rp.minLog = w, acceptsSSE(r), modern, -1
}

// acceptsSSE reports whether a request accepts an event stream answer.
func acceptsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

var _ upstream.Notifier = (*replier)(nil)

// Notify relays a notification the upstream sent while serving the
// request, on the request's stream (upstream.Notifier). A log message
// below the level the client asked for is left out: upstream sessions are
// shared, and their level is the most verbose any client asked
// (upstream.Client.SetLogLevel).
func (rp *replier) Notify(method string, params json.RawMessage) {
	if !rp.sseOK {
		return
	}
	if rp.minLog > 0 && method == mcpwire.NotifyMessage {
		level, _ := rawjson.DecodeString(rawjson.Member(params, "level"))
		if r := mcpwire.LogLevelRank(level); r >= 0 && r < rp.minLog {
			return
		}
	}
	rp.notify(appendNotification(make([]byte, 0, len(method)+len(params)+48), method, params))
}

// notify sends a notification related to the request, switching to SSE.
func (rp *replier) notify(msg []byte) {
	if !rp.sseOK {
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.finished {
		return
	}
	rp.begin()
	rp.event(msg, false)
}

// open starts the stream of an eager answer before the upstream is asked,
// so that its priming event reaches the client at once. It reports
// whether the answer is a resumable stream.
//
// Only a session's answer opens early: a 2026-07-28 error answer carries
// a 4xx status (basic/transports), which a stream already begun could no
// longer give, so that era's answers stream from the first notification
// or the result.
func (rp *replier) open() bool {
	if !rp.sseOK || !rp.eager || rp.streams == nil {
		return false
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if !rp.finished {
		rp.begin()
	}
	return rp.st != nil
}

// begin switches the answer to an event stream; rp.mu is held.
func (rp *replier) begin() {
	if rp.streaming {
		return
	}
	rp.streaming = true
	if rp.streams != nil {
		rp.st = rp.streams.start(rp.w, false)
		return
	}
	h := rp.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	rp.w.WriteHeader(http.StatusOK)
}

// event writes one message on the stream; rp.mu is held.
func (rp *replier) event(msg []byte, last bool) {
	if rp.st != nil {
		rp.st.send(msg, last)
		return
	}
	if writeEvent(rp.w, msg) == nil {
		_ = http.NewResponseController(rp.w).Flush()
	}
}

// fail writes an error response with the status the request's era uses.
func (rp *replier) fail(id json.RawMessage, e *rpcError) {
	rp.finish(appendError(nil, id, e), rp.errorStatus(e.Code))
}

// send writes the final (successful or passed-through) response.
func (rp *replier) send(msg []byte) { rp.finish(msg, http.StatusOK) }

func (rp *replier) finish(msg []byte, status int) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.finished {
		return
	}
	rp.finished = true
	if !rp.streaming && rp.eager && rp.sseOK && status == http.StatusOK {
		rp.begin()
	}
	if rp.streaming {
		rp.event(msg, true)
		return
	}
	writeJSON(rp.w, status, msg)
}

// writeAnswer writes an answer the gateway makes itself (a list page): as
// an event stream when the client accepts one and the upstreams answer
// theirs that way (stream), else as JSON. On a session the stream is
// resumable.
func writeAnswer(w http.ResponseWriter, r *http.Request, s *session, stream bool, msg []byte) {
	if !stream || !acceptsSSE(r) {
		writeJSON(w, http.StatusOK, msg)
		return
	}
	rp := &replier{w: w, sseOK: true, eager: true, minLog: -1}
	if s != nil {
		rp.streams = s.streams
	}
	rp.send(msg)
}
