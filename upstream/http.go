package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/backoff"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/upstream/internal/h1"
)

// The Streamable HTTP client: one transport per upstream (h1 for plain
// http, a tuned http.Transport otherwise), the headers and URL of a
// session's requests prepared once per session, request bodies built in
// one buffer, and results returned as slices of the body without decoding.

// httpDialer opens Streamable HTTP sessions with one upstream.
type httpDialer struct {
	c      *Client
	url    *url.URL
	rt     pooledTransport
	lean   *h1.Transport // rt, when it is h1's
	static http.Header   // configured headers, values resolved
	// bodies holds request bodies while h1 writes them (*[]byte); a
	// body given to http.Transport is never pooled, as it may still be
	// read after RoundTrip returns.
	bodies sync.Pool
}

// pooledTransport is what an httpDialer needs of its HTTP client.
type pooledTransport interface {
	http.RoundTripper
	CloseIdleConnections()
}

// newLeanTransport returns h1's HTTP/1.1 transport for a plain-http
// upstream reached directly, and nil otherwise (TLS, HTTP/2, or an HTTP
// proxy from the environment), which newHTTPTransport serves.
func newLeanTransport(u *url.URL, maxIdle int) *h1.Transport {
	if u.Scheme != "http" {
		return nil
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	return h1.NewTransport(u.Host, maxIdle)
}

func newHTTPTransport(maxIdle int) *http.Transport {
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          0, // no global cap: the per-host cap is the one that matters
		MaxIdleConnsPerHost:   maxIdle,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

func newHTTPDialer(c *Client) (*httpDialer, error) {
	u, err := url.Parse(c.cfg.HTTP.URL)
	if err != nil {
		return nil, err
	}
	maxIdle := c.cfg.HTTP.MaxIdleConns
	if maxIdle == 0 {
		maxIdle = defaultMaxIdleConns
	}
	d := &httpDialer{c: c, url: u, static: http.Header{}}
	if d.lean = newLeanTransport(u, maxIdle); d.lean != nil {
		d.rt = d.lean
	} else {
		d.rt = newHTTPTransport(maxIdle)
	}
	for k, v := range c.cfg.HTTP.Headers {
		d.static.Set(k, secretValue(v))
	}
	c.pool = newSessionPool(c, d, c.cfg.HTTP.Sessions)
	return d, nil
}

func (d *httpDialer) close() {
	if d.lean != nil {
		d.lean.Close()
		return
	}
	d.rt.CloseIdleConnections()
}

// body returns a buffer for a request body that h1 writes.
func (d *httpDialer) body() *[]byte {
	if b, ok := d.bodies.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 1<<10)
	return &b
}

// putBody returns a body buffer; large ones are left to the collector.
func (d *httpDialer) putBody(b *[]byte) {
	if cap(*b) <= 64<<10 {
		d.bodies.Put(b)
	}
}

// httpConn is one session (2025 era) or one stateless era binding
// (2026-07-28) with a Streamable HTTP upstream.
type httpConn struct {
	d         *httpDialer
	c         *Client
	modern    bool
	version   string // MCP-Protocol-Version; "" before initialize
	sessionID string
	meta      []byte        // _meta members added to every request (stateless era)
	metaPre   []byte        // meta up to the clientCapabilities value
	post      http.Header   // headers of every POST
	tmpl      *http.Request // POST to the MCP endpoint, without context, headers or body
	// head is post and the request line, rendered and checked once, for
	// h1; headErr, reported by every POST, when they cannot be sent.
	head    *h1.Head
	headErr error
	// toolHeaders maps tool names to their x-mcp-header bindings
	// (stateless era only).
	toolHeaders atomic.Pointer[map[string][]headerBinding]
	// listener is a second session of a session-era upstream: the one
	// whose GET stream listen holds open, and that resource subscriptions
	// are made on. Calls go on this session, which has no GET stream, so
	// that an upstream that hands a session's notifications to whichever
	// of its streams reads first (mcp-go v1.2.1, PITFALLS.md) can only
	// hand a call's log messages and progress to the call's own stream.
	// Nil when the upstream keeps no sessions or refused a second one.
	listener *httpConn
	// listsStream records whether the last list request was answered
	// with an event stream (Catalog.Streams).
	listsStream atomic.Bool
	// pooled marks a session of the call pool (pool.go), opened for the
	// caller owner (nil: an anonymous caller). The requests it makes for
	// itself (notifications/initialized, cancellations, answers to server
	// requests, stream resumption, DELETE) carry that caller's
	// credential, not the gateway's: a server that binds a session to the
	// user of the token that opened it (go-sdk) refuses any other.
	pooled bool
	owner  atomic.Pointer[Identity]
}

func (d *httpDialer) newConn(modern bool, version, sessionID string) *httpConn {
	h := &httpConn{d: d, c: d.c, modern: modern, version: version, sessionID: sessionID}
	if modern {
		h.meta = d.c.metaFor(version)
		h.metaPre = d.c.metaPrefix(version)
	}
	h.post = make(http.Header, len(d.static)+4)
	maps.Copy(h.post, d.static)
	h.post["Content-Type"] = []string{"application/json"}
	// Both, on every POST: go-sdk rejects requests that list only one,
	// even when it answers with JSON (PITFALLS.md).
	h.post["Accept"] = []string{"application/json, text/event-stream"}
	if version != "" {
		h.post[mcpwire.HeaderProtocolVersion] = []string{version}
	}
	if sessionID != "" {
		h.post[mcpwire.HeaderSessionID] = []string{sessionID}
	}
	h.tmpl = &http.Request{
		Method:     http.MethodPost,
		URL:        d.url,
		Host:       d.url.Host,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
	}
	if d.lean != nil {
		h.head, h.headErr = h1.NewHead(http.MethodPost, d.url.RequestURI(), d.url.Host, h.post)
	}
	return h
}

// connect detects the upstream's era and opens a session.
//
// Unless protocol_version pins a legacy version, it first asks
// server/discover with 2026-07-28 (the Backward Compatibility section of
// basic/transports/streamable-http: "attempt a modern request first"). A
// recognized modern error (mcpwire.CodeUnsupportedVersion) names the
// versions the server does speak; when only initialize-era versions are
// left, the newest of them is negotiated through initialize. Any other 4xx
// or JSON-RPC error means a legacy server: fall back to initialize. A
// discover result without 2026-07-28 happens too: a stateful go-sdk server
// answers server/discover but omits the version (go-sdk issue #1025).
//
// A result whose supportedVersions contains 2026-07-28 selects the
// stateless era when pinned. Under auto the era that serves calls
// cheapest is chosen (autoEra): a 2025-era session where the upstream
// keeps sessions, the stateless era where it does not.
func (d *httpDialer) connect(ctx context.Context) (*session, error) {
	c := d.c
	pinned := c.cfg.PinnedVersion()
	legacy := mcpwire.Version20251125
	if pinned == "" || mcpwire.IsModern(pinned) {
		v := mcpwire.Version20260728
		if pinned != "" {
			v = pinned
		}
		hc := d.newConn(true, v, "")
		res, err := hc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodDiscover, nil, nil, callOpts{})
		var rpcErr *RPCError
		switch {
		case err == nil:
			dr, perr := parseDiscoverResult(res)
			if perr != nil {
				return nil, c.fail(ErrBadResponse, mcpwire.MethodDiscover+" result", perr)
			}
			if slices.Contains(dr.supported, v) {
				if pinned != "" {
					return newSession(c, hc, true, v, dr.hs), nil
				}
				return d.autoEra(ctx, hc, &dr)
			}
			if pinned != "" {
				return nil, c.fail(ErrUnavailable, fmt.Sprintf("upstream does not offer pinned protocol version %s (offers %v)", v, dr.supported), nil)
			}
			legacy = bestLegacy(dr.supported)
		case pinned != "":
			return nil, c.wrap(mcpwire.MethodDiscover, err)
		case errors.As(err, &rpcErr):
			if rpcErr.Code == mcpwire.CodeUnsupportedVersion {
				legacy = bestLegacy(supportedFromError(rpcErr))
			}
		case isTransportError(err) || ctx.Err() != nil:
			return nil, c.wrap(mcpwire.MethodDiscover, err)
		}
		c.log.DebugContext(ctx, "upstream is not stateless; falling back to initialize", slog.Any("error", err))
	} else {
		legacy = pinned
	}
	return d.initialize(ctx, legacy)
}

// autoEra chooses, under protocol_version auto, between the eras of an
// upstream that offers both. A session-era upstream session is reused by
// call after call, while a stateless request must stand alone: mcp-go
// v1.2.1 bridges each to its session machinery and spends 1.6–2.4× the
// CPU of a call in a reused session (PITFALLS.md). So initialize decides:
// an answer with an Mcp-Session-Id means the upstream keeps sessions, and
// calls go on pooled per-principal sessions (pool.go). An answer without
// one (a stateless server: mcp-go WithStateLess, go-sdk Stateless) would
// make every 2025-era request stand alone as well, and the 2026-07-28 era
// then gives more for the same cost: list changes through
// subscriptions/listen and input requests through MRTR, which a 2025-era
// upstream without a session cannot send. An initialize that fails keeps
// the era discover offered.
func (d *httpDialer) autoEra(ctx context.Context, modern *httpConn, dr *discoverResult) (*session, error) {
	c := d.c
	if !slices.ContainsFunc(dr.supported, func(v string) bool { return !mcpwire.IsModern(v) }) {
		return newSession(c, modern, true, mcpwire.Version20260728, dr.hs), nil
	}
	s, err := d.initialize(ctx, bestLegacy(dr.supported))
	switch {
	case err == nil && s.pooled:
		c.log.DebugContext(ctx, "upstream keeps sessions: calling it in pooled 2025-era sessions", slog.String("protocol_version", s.version))
		return s, nil
	case err == nil:
		s.close(false) // no session id: nothing to end upstream
	case ctx.Err() != nil:
		return nil, c.wrap(mcpwire.MethodInitialize, err)
	default:
		c.log.DebugContext(ctx, "initialize failed; staying stateless", slog.Any("error", err))
	}
	return newSession(c, modern, true, mcpwire.Version20260728, dr.hs), nil
}

// initialize performs the initialize handshake of the session era.
func (d *httpDialer) initialize(ctx context.Context, version string) (*session, error) {
	c := d.c
	hc := d.newConn(false, "", "")
	var sid string
	res, err := hc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodInitialize, c.initializeParams(version), nil, callOpts{sessionID: &sid})
	if err != nil {
		return nil, c.wrap(mcpwire.MethodInitialize, err)
	}
	negotiated, hs, err := parseInitializeResult(res)
	if err != nil {
		return nil, c.fail(ErrBadResponse, mcpwire.MethodInitialize+" result", err)
	}
	conn := d.newConn(false, negotiated, sid)
	if err := conn.notify(ctx, mcpwire.NotifyInitialized); err != nil {
		return nil, c.wrap(mcpwire.NotifyInitialized, err)
	}
	s := newSession(c, conn, false, negotiated, hs)
	if sid != "" {
		conn.listener = d.listenerSession(ctx, negotiated)
		// The upstream keeps sessions: calls go on the pool's, one per
		// principal and call (pool.go); this one is the gateway's own.
		s.pooled = true
	}
	return s, nil
}

// listenerSession opens the second session of a session-era upstream
// (httpConn.listener). It is best effort: without it, the GET stream is
// held on the calls' session, as before.
func (d *httpDialer) listenerSession(ctx context.Context, version string) *httpConn {
	c := d.c
	hc := d.newConn(false, "", "")
	var sid string
	res, err := hc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodInitialize, c.initializeParams(version), nil, callOpts{sessionID: &sid})
	if err == nil && sid == "" {
		err = errors.New("no session id")
	}
	var negotiated string
	if err == nil {
		negotiated, _, err = parseInitializeResult(res)
	}
	if err != nil {
		c.log.DebugContext(ctx, "no second upstream session for the notification stream", slog.Any("error", err))
		return nil
	}
	l := d.newConn(false, negotiated, sid)
	if err := l.notify(ctx, mcpwire.NotifyInitialized); err != nil {
		c.log.DebugContext(ctx, "no second upstream session for the notification stream", slog.Any("error", err))
		l.close(true)
		return nil
	}
	return l
}

// sessionCapabilities is what the gateway declares at initialize to a
// session-era upstream: the client features it can relay to the downstream
// client of a call (2025-11-25 client/elicitation, client/sampling,
// client/roots), and MCP Apps (apps.go). A request the downstream client
// cannot fulfil is answered with an error; requests outside any call are
// answered with mcpwire.CodeMethodNotFound.
const sessionCapabilities = `{"elicitation":{},"sampling":{},"roots":{},` + uiExtensions + `}`

func (c *Client) initializeParams(version string) []byte {
	p := rawjson.AppendString([]byte(`{"protocolVersion":`), version)
	p = append(p, `,"capabilities":`+sessionCapabilities+`,"clientInfo":`...)
	p = append(p, c.clientInfo...)
	return append(p, '}')
}

func newSession(c *Client, cn conn, modern bool, version string, hs handshake) *session {
	s := &session{conn: cn, modern: modern, version: version, info: hs, caps: parseCapabilities(hs.capabilities), relistened: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(c.life)
	return s
}

// bodyReader is a request body over a byte slice.
type bodyReader struct {
	b   []byte
	off int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }

// request prepares a POST of body with headers hdr for http.Transport.
func (h *httpConn) request(ctx context.Context, body []byte, hdr http.Header) *http.Request {
	req := h.tmpl.WithContext(ctx)
	req.Header = hdr
	req.Body = &bodyReader{b: body}
	// GetBody lets the transport resend a request it could not write on a
	// reused keep-alive connection the server had just closed.
	req.GetBody = func() (io.ReadCloser, error) { return &bodyReader{b: body}, nil }
	req.ContentLength = int64(len(body))
	return req
}

// fields lists the headers of one POST beyond the session's (post): its
// own (Mcp-Method and Mcp-Name in the stateless era, X-Request-Id, and
// own: the x-mcp-header bindings and credentials), each replacing the
// session's headers of its name, then the caller's extra headers whose
// names neither has. It is the one description of a POST's headers, for
// both transports: h1 writes it after the session's Head, header turns it
// into a map for http.Transport.
func (h *httpConn) fields(f [][2]string, method, name, requestID string, own [][2]string, extra http.Header) [][2]string {
	if h.modern {
		f = append(f, [2]string{mcpwire.HeaderMethod, method})
		if name != "" {
			f = append(f, [2]string{mcpwire.HeaderName, encodeHeaderValue(name)})
		}
	}
	if requestID != "" {
		f = append(f, [2]string{"X-Request-Id", requestID})
	}
	f = append(f, own...)
	for k, vs := range extra {
		if _, ok := h.post[k]; ok || slices.ContainsFunc(f, func(p [2]string) bool { return p[0] == k }) {
			continue
		}
		for _, v := range vs {
			f = append(f, [2]string{k, v})
		}
	}
	return f
}

// header is the header map of a POST for http.Transport: post, with every
// header that fields names replaced by the values fields gives it.
func (h *httpConn) header(fields [][2]string) http.Header {
	hdr := make(http.Header, len(h.post)+len(fields))
	maps.Copy(hdr, h.post)
	for _, f := range fields {
		delete(hdr, f[0])
	}
	for _, f := range fields {
		hdr[f[0]] = append(hdr[f[0]], f[1])
	}
	return hdr
}

func (h *httpConn) roundTrip(ctx context.Context, id int64, method string, params, progressToken []byte, o callOpts) (json.RawMessage, error) { //nolint:gocritic // hugeParam: by value, as callOpts says.
	if h.listener != nil && (method == mcpwire.MethodSubscribe || method == mcpwire.MethodUnsubscribe) {
		// Resource updates arrive on the listener's GET stream, so the
		// subscription is that session's.
		return h.listener.roundTrip(ctx, id, method, params, progressToken, o)
	}
	c := h.c
	rw := paramsRewrite{meta: h.meta, progressToken: progressToken, trace: o.meta}
	if h.modern {
		rw.nameKey = nameKeyFor(method)
		if len(o.caps) > 0 {
			rw.meta = append(h.metaPre[:len(h.metaPre):len(h.metaPre)], o.caps...) //nolint:gocritic // a copy of the shared prefix, never written to it.
		}
	}
	size := len(params) + len(h.meta) + len(progressToken) + len(o.meta) + 96
	var body []byte
	if h.d.lean != nil {
		// h1 has written body when Do returns: its buffer is reused.
		pooled := h.d.body()
		body = slices.Grow((*pooled)[:0], size)
		defer func() {
			*pooled = body[:0]
			h.d.putBody(pooled)
		}()
	} else {
		body = make([]byte, 0, size)
	}
	body = append(body, `{"jsonrpc":"2.0","id":`...)
	body = strconv.AppendInt(body, id, 10)
	body = append(body, `,"method":`...)
	body = rawjson.AppendString(body, method)
	mark := len(body)
	body = append(body, `,"params":`...)
	start := len(body)
	body, name, err := rewriteParams(body, params, &rw)
	if err != nil {
		return nil, c.fail(ErrBadRequest, method, err)
	}
	if len(body) == start {
		body = body[:mark]
	}
	body = append(body, '}')

	own, err := h.ownHeaders(ctx, method, name, params, &o)
	if err != nil {
		return nil, err
	}
	var fb [8][2]string
	resp, err := h.do(ctx, body, h.fields(fb[:0], method, name, o.requestID, own, o.header), o.sessionID != nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.transportFail("", err)
	}
	return h.response(ctx, &resp, id, method, &o)
}

// ownHeaders returns the headers a request carries for itself beyond the
// protocol's: the x-mcp-header bindings of a stateless tools/call, the
// upstream's credential and the identity assertion; never the caller's own
// token (MCP security best practices, "Token Passthrough").
func (h *httpConn) ownHeaders(ctx context.Context, method, name string, params []byte, o *callOpts) ([][2]string, error) {
	c := h.c
	var own [][2]string
	var err error
	if h.modern && method == mcpwire.MethodToolsCall && name != "" {
		if m := h.toolHeaders.Load(); m != nil && *m != nil {
			if b := (*m)[name]; len(b) > 0 {
				if own, err = paramHeaders(params, b); err != nil {
					return nil, c.fail(ErrBadRequest, method, err)
				}
			}
		}
	}
	if own, err = c.auth.append(ctx, o.call, o.identity, own); err != nil {
		return nil, c.credentialsFail(err)
	}
	return own, nil
}

// do sends a POST of body with the session's headers and fields, on h1
// or on http.Transport; wantSession asks for the Mcp-Session-Id header.
func (h *httpConn) do(ctx context.Context, body []byte, fields [][2]string, wantSession bool) (upResponse, error) {
	lean := h.d.lean
	if lean == nil {
		r, err := h.d.rt.RoundTrip(h.request(ctx, body, h.header(fields))) //nolint:bodyclose // h.response closes it.
		if err != nil {
			return upResponse{}, err
		}
		return fromHTTP(r), nil
	}
	if h.headErr != nil {
		return upResponse{}, h.headErr
	}
	r, err := lean.Do(ctx, &h1.Request{Head: h.head, Fields: fields, Body: body, WantHeader: wantSession})
	if err != nil {
		return upResponse{}, err
	}
	resp := upResponse{status: r.StatusCode, contentType: r.ContentType, length: r.ContentLength, body: r.Body}
	if wantSession {
		resp.sessionID = r.Header.Get(mcpwire.HeaderSessionID)
	}
	return resp, nil
}

// upResponse is what a call reads of an upstream's HTTP answer.
type upResponse struct {
	status      int
	contentType string
	sessionID   string // Mcp-Session-Id
	length      int64  // Content-Length; -1 when not given
	body        io.ReadCloser
}

func fromHTTP(r *http.Response) upResponse {
	return upResponse{
		status:      r.StatusCode,
		contentType: r.Header.Get("Content-Type"),
		sessionID:   r.Header.Get(mcpwire.HeaderSessionID),
		length:      r.ContentLength,
		body:        r.Body,
	}
}

// response reads the answer to request id.
func (h *httpConn) response(ctx context.Context, resp *upResponse, id int64, method string, o *callOpts) (json.RawMessage, error) {
	c := h.c
	if resp.status/100 != 2 {
		return nil, h.statusError(ctx, resp)
	}
	if resp.status == http.StatusAccepted || resp.status == http.StatusNoContent {
		_ = resp.body.Close()
		return nil, c.fail(ErrBadResponse, fmt.Sprintf("%s: HTTP %d without a response", method, resp.status), nil)
	}
	if o.sessionID != nil {
		*o.sessionID = resp.sessionID
	}
	switch mediaType(resp.contentType) {
	case "application/json":
		if isList(method) {
			h.listsStream.Store(false)
		}
		return h.jsonResponse(ctx, resp, id)
	case "text/event-stream":
		if isList(method) {
			h.listsStream.Store(true)
		}
		return h.streamResponse(ctx, resp, id, o)
	default:
		_ = resp.body.Close()
		return nil, c.fail(ErrBadResponse, fmt.Sprintf("unexpected content type %q", resp.contentType), nil)
	}
}

func mediaType(ct string) string {
	if ct == "application/json" {
		return ct
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// statusError turns a non-2xx answer into an error and closes the body.
func (h *httpConn) statusError(ctx context.Context, resp *upResponse) error {
	c := h.c
	defer resp.body.Close()
	if resp.status == http.StatusNotFound && h.sessionID != "" {
		// 2025-11-25 basic/transports, Session Management: a 404 to a
		// request with a session id means the session is gone; the client
		// MUST start a new one.
		return c.fail(ErrUnavailable, "", errSessionExpired)
	}
	se := &statusError{code: resp.status, text: http.StatusText(resp.status)}
	if mediaType(resp.contentType) == "application/json" {
		// Stateless-era servers answer protocol errors with 4xx and a
		// JSON-RPC error body (400 for invalid params, 404 for method not
		// found), and a failing server may put one in a 5xx: those are
		// the upstream's answers, passed through. The status goes with
		// them, so a 5xx still counts against the breaker.
		body, err := readBody(resp.body, resp.length, 64<<10)
		if err == nil && json.Valid(body) {
			if env, perr := parseEnvelope(body); perr == nil && len(env.error) > 0 {
				e := rpcErrorFrom(env.error)
				e.Status = resp.status
				return e
			}
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	e := c.fail(ErrUnavailable, "", se)
	e.Status = resp.status
	return e
}

// readBody reads all of r, which announced length cl (-1 unknown), failing
// with errBodyTooLarge beyond limit bytes. It reads until io.EOF so that the
// transport can reuse the connection.
func readBody(r io.Reader, cl, limit int64) ([]byte, error) {
	if cl > limit {
		return nil, errBodyTooLarge
	}
	size := int64(512)
	if cl >= 0 {
		size = cl + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return nil, errBodyTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

var errBodyTooLarge = errors.New("body too large")

// jsonResponse reads an application/json answer.
func (h *httpConn) jsonResponse(ctx context.Context, resp *upResponse, id int64) (json.RawMessage, error) {
	c := h.c
	body, err := readBody(resp.body, resp.length, c.maxResponse)
	// Closing before EOF (too large, read error) discards the connection
	// instead of returning it half-read to the pool.
	_ = resp.body.Close()
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nil, c.fail(ErrResponseTooLarge, fmt.Sprintf("more than %d bytes", c.maxResponse), nil)
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.transportFail("reading response", err)
	}
	if !json.Valid(body) {
		return nil, c.fail(ErrBadResponse, "response is not JSON", nil)
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return nil, c.fail(ErrBadResponse, "response is not a JSON object", nil)
	}
	return h.result(&env, id)
}

// result extracts the result of the response env to request id.
func (h *httpConn) result(env *envelope, id int64) (json.RawMessage, error) {
	c := h.c
	if len(env.method) > 0 {
		return nil, c.fail(ErrBadResponse, "expected a response, got a request or notification", nil)
	}
	if !env.idIs(id) {
		return nil, c.fail(ErrBadResponse, fmt.Sprintf("response id %s does not match request id %d", truncate(env.id), id), nil)
	}
	if len(env.error) > 0 && !rawjson.IsNull(env.error) {
		return nil, rpcErrorFrom(env.error)
	}
	if env.result == nil {
		return nil, c.fail(ErrBadResponse, "response has neither result nor error", nil)
	}
	return env.result, nil
}

// truncate quotes at most the first 40 bytes of b in an error message.
func truncate(b []byte) string {
	const n = 40
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// streamResponse reads a text/event-stream answer: notifications and server
// requests before the response are handled, the response is returned.
func (h *httpConn) streamResponse(ctx context.Context, resp *upResponse, id int64, o *callOpts) (json.RawMessage, error) {
	c := h.c
	sr := newSSEReader(&c.readers, resp.body, c.maxResponse)
	var rs *resumption
	for {
		data, err := sr.next()
		if err != nil && ctx.Err() == nil && h.resumable(sr, err) {
			// The server closed the stream before the response (SSE
			// polling) or the connection broke: resume it (resume.go).
			_ = resp.body.Close()
			if rs == nil {
				r := newResumption()
				rs = &r
			}
			body, rerr := h.resume(ctx, sr, rs)
			if rerr == nil {
				resp.body = body
				sr.restart(body)
				continue
			}
			sr.release()
			switch {
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(rerr, errNotResumed) && !errors.Is(err, io.EOF):
				// A broken connection stays a transport failure.
				return nil, c.transportFail("reading event stream", errors.Join(err, rerr))
			case errors.Is(rerr, errNotResumed):
				return nil, c.fail(ErrBadResponse, "event stream ended without a response, and resuming it failed", rerr)
			default:
				return nil, rerr // the upstream refused the resumption
			}
		}
		if err != nil {
			_ = resp.body.Close()
			sr.release()
			switch {
			case errors.Is(err, errEventTooLarge):
				return nil, c.fail(ErrResponseTooLarge, fmt.Sprintf("event of more than %d bytes", c.maxResponse), nil)
			case ctx.Err() != nil:
				return nil, ctx.Err()
			case errors.Is(err, io.EOF):
				return nil, c.fail(ErrBadResponse, "event stream ended without a response", nil)
			default:
				return nil, c.transportFail("reading event stream", err)
			}
		}
		env, ok := h.message(ctx, data, o.onRequest, o.notify)
		if !ok || env.method != nil {
			continue
		}
		if !env.idIs(id) {
			c.log.DebugContext(ctx, "response for another request on the stream ignored")
			continue
		}
		// The data buffer is reused; the result outlives it.
		out, err := h.result(&env, id)
		if out != nil {
			out = append(json.RawMessage(nil), out...)
		}
		h.finishStream(resp.body, sr)
		return out, err
	}
}

// message parses one event of a stream and handles it when it is a
// notification or a request. It reports false for events that are not
// JSON-RPC messages.
//
// A request on a call's response stream relates to that call (2025-11-25
// basic/transports: the server MAY send requests on the POST's stream
// before the response); onRequest, when set, answers it. Requests on the
// standalone stream belong to no call and get mcpwire.CodeMethodNotFound.
// Likewise a notification on a call's stream relates to that call
// (2025-11-25 basic/transports: "These messages SHOULD relate to the
// originating client request"): notify, when set, gets it in order, except
// those the client acts on itself (onNotification).
func (h *httpConn) message(ctx context.Context, data []byte, onRequest serverRequestFunc, notify Notifier) (envelope, bool) {
	if !json.Valid(data) {
		h.c.log.DebugContext(h.c.life, "non-JSON event on upstream stream ignored")
		return envelope{}, false
	}
	env, err := parseEnvelope(data)
	if err != nil {
		return env, false
	}
	switch {
	case env.isNotification():
		method, _ := rawjson.DecodeString(env.method)
		if notify != nil && relayed(method) {
			notify.Notify(method, env.params)
		} else {
			h.c.onNotification(method, env.params)
		}
	case env.isRequest():
		if onRequest != nil && !h.modern {
			h.relayRequest(ctx, &env, onRequest)
		} else {
			h.serverRequest(&env)
		}
	}
	return env, true
}

// finishStream lets the server end the stream after its response: the
// spec says the response SHOULD terminate it (2026-07-28 Streamable HTTP,
// Receiving Messages), and a stream read to its end returns the connection
// to the pool. A server that keeps it open gets the connection closed. The
// body is detached from the call's context first: the call returns now
// and its context ends, which would otherwise abort the drain and close a
// connection the server was about to end cleanly (go-sdk answers with
// such streams; measured, about one call in three then dialled anew).
func (h *httpConn) finishStream(body io.ReadCloser, sr *sseReader) {
	h1.Detach(body)
	drain := func() {
		timer := time.AfterFunc(time.Second, func() { _ = body.Close() })
		for {
			if _, err := sr.next(); err != nil {
				break
			}
		}
		timer.Stop()
		_ = body.Close()
		sr.release()
	}
	if !h.c.goSafe("drain", drain) {
		_ = body.Close()
		sr.release()
	}
}

// serverRequest answers a request the server sent on a stream. The gateway
// offers no client features, so only ping is answered with success. In the
// stateless era servers must not send requests at all.
func (h *httpConn) serverRequest(env *envelope) {
	method, _ := rawjson.DecodeString(env.method)
	if h.modern {
		h.c.log.DebugContext(h.c.life, "server request on a stateless stream ignored", slog.String("method", method))
		return
	}
	msg := append([]byte(`{"jsonrpc":"2.0","id":`), env.id...)
	if method == mcpwire.MethodPing {
		msg = append(msg, `,"result":{}}`...)
	} else {
		msg = append(msg, `,"error":{"code":`...)
		msg = strconv.AppendInt(msg, mcpwire.CodeMethodNotFound, 10)
		msg = append(msg, `,"message":"method not supported by the gateway"}}`...)
	}
	h.c.log.DebugContext(h.c.life, "answering server request", slog.String("method", method))
	h.c.goSafe("respond", func() {
		ctx, cancel := context.WithTimeout(h.c.life, notifyTimeout)
		defer cancel()
		_ = h.send(ctx, msg)
	})
}

// send POSTs a message that expects no response (notification, response):
// the gateway's own traffic on its own session, the principal's on a
// pooled one.
func (h *httpConn) send(ctx context.Context, msg []byte) error {
	return h.sendAs(ctx, msg, h.pooled, h.owner.Load())
}

// sessionHeader returns hdr with the credential of what the connection sends
// for itself added (outbound.header): the gateway's own on its own
// session, the principal's on a pooled one.
func (h *httpConn) sessionHeader(ctx context.Context, hdr http.Header) (http.Header, error) {
	return h.c.auth.header(ctx, h.pooled, h.owner.Load(), hdr)
}

// sendAs is send with the credentials of a call made for who when call is
// set (outbound.append).
func (h *httpConn) sendAs(ctx context.Context, msg []byte, call bool, who *Identity) error {
	hdr, err := h.c.auth.header(ctx, call, who, h.post)
	if err != nil {
		return h.c.credentialsFail(err)
	}
	resp, err := h.d.rt.RoundTrip(h.request(ctx, msg, hdr))
	if err != nil {
		return h.c.transportFail("", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		if resp.StatusCode == http.StatusNotFound && h.sessionID != "" {
			return h.c.fail(ErrUnavailable, "", errSessionExpired)
		}
		e := h.c.fail(ErrUnavailable, "", &statusError{code: resp.StatusCode, text: http.StatusText(resp.StatusCode)})
		e.Status = resp.StatusCode
		return e
	}
	return nil
}

// notify sends a notification without params.
func (h *httpConn) notify(ctx context.Context, method string) error {
	msg := rawjson.AppendString([]byte(`{"jsonrpc":"2.0","method":`), method)
	return h.send(ctx, append(msg, '}'))
}

// cancelled tells a session-era upstream that a request was abandoned
// (2025-11-25 basic/utilities/cancellation); mcp-go's own client never sends
// this over HTTP. In the stateless era closing the response stream is the
// cancellation and no notification is expected (2026-07-28
// basic/transports/streamable-http, Cancellation); the transport closed it
// when the call's context ended.
//
// The notification is part of the caller's call, not the gateway's own
// traffic: it carries the call's credential (for token_exchange, the token
// exchanged for who), so an upstream that authorizes per request sees the
// caller cancel the caller's own request.
func (h *httpConn) cancelled(id int64, reason string, who *Identity) {
	if h.modern {
		return
	}
	msg := []byte(`{"jsonrpc":"2.0","method":"` + mcpwire.NotifyCancelled + `","params":{"requestId":`)
	msg = strconv.AppendInt(msg, id, 10)
	msg = append(msg, `,"reason":`...)
	msg = rawjson.AppendString(msg, reason)
	msg = append(msg, "}}"...)
	h.c.goSafe("cancel", func() {
		ctx, cancel := context.WithTimeout(h.c.life, notifyTimeout)
		defer cancel()
		if err := h.sendAs(ctx, msg, true, who); err != nil {
			h.c.log.DebugContext(ctx, "sending notifications/cancelled failed", slog.Any("error", err))
		}
	})
}

// close ends the connection. A graceful close of a session ends it on the
// server with DELETE (2025-11-25 basic/transports, Session Management).
func (h *httpConn) close(graceful bool) {
	if h.listener != nil {
		h.listener.close(graceful)
	}
	if !graceful || h.modern || h.sessionID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
	defer cancel()
	req := h.tmpl.WithContext(ctx)
	req.Method = http.MethodDelete
	req.Header = http.Header{}
	for k, v := range h.post {
		if k != "Content-Type" && k != "Accept" {
			req.Header[k] = v
		}
	}
	var err error
	if req.Header, err = h.sessionHeader(ctx, req.Header); err != nil {
		h.c.log.DebugContext(ctx, "ending upstream session failed", slog.Any("error", err))
		return
	}
	resp, err := h.d.rt.RoundTrip(req)
	if err != nil {
		h.c.log.DebugContext(ctx, "ending upstream session failed", slog.Any("error", err))
		return
	}
	_ = resp.Body.Close()
}

// listen receives the server's notifications outside calls: the standalone
// GET stream in the session era, a subscriptions/listen stream in the
// stateless era. It re-opens a dropped stream with backoff, asks for a
// probe when one drops (a dead server drops it first) and for a refresh
// when one re-opens (changes may have been missed meanwhile).
func (h *httpConn) listen(s *session) { //nolint:gocognit,gocyclo // one loop over a stream's whole life (open, refuse, re-open, resume, listen again); split, its states would scatter.
	var open func(context.Context) (*http.Response, error)
	var id int64
	// resumeID is the last event id of the session-era GET stream that
	// ended, with which the next one resumes it (resume.go); "" opens a
	// new stream.
	var resumeID string
	if h.modern {
		open = func(ctx context.Context) (*http.Response, error) {
			filter := h.subscriptionFilter(s.caps)
			if filter == nil {
				// Nothing to listen for until a resource is subscribed.
				select {
				case <-s.relistened:
					return nil, errRelisten
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			id = h.c.nextID.Add(1)
			body := []byte(`{"jsonrpc":"2.0","id":`)
			body = strconv.AppendInt(body, id, 10)
			body = append(body, `,"method":"`+mcpwire.MethodListen+`","params":{"notifications":`...)
			body = append(body, filter...)
			body = append(body, `,"_meta":{`...)
			body = append(body, h.meta...)
			body = append(body, "}}}"...)
			own, err := h.c.auth.append(ctx, false, nil, nil)
			if err != nil {
				return nil, h.c.credentialsFail(err)
			}
			return h.d.rt.RoundTrip(h.request(ctx, body, h.header(h.fields(nil, mcpwire.MethodListen, "", "", own, nil))))
		}
	} else {
		hl := h
		if h.listener != nil {
			hl = h.listener
		}
		open = func(ctx context.Context) (*http.Response, error) {
			return hl.get(ctx, resumeID)
		}
	}
	bo := reconnectBackoff()
	opened := false
	for s.ctx.Err() == nil {
		sctx, cancel := context.WithCancel(s.ctx)
		resp, err := h.openStream(sctx, cancel, s, open)
		if errors.Is(err, errRelisten) {
			continue
		}
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			h.c.kick(evProbe)
			backoff.Wait(s.ctx, bo.Next())
			continue
		}
		ok := resp.StatusCode == http.StatusOK && mediaType(resp.Header.Get("Content-Type")) == "text/event-stream"
		if !ok {
			cancel()
		}
		resumed := resumeID != ""
		switch {
		case ok:
		case resumed && resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusNotFound:
			// The server cannot replay the stream (it kept no events, or
			// no longer has them): open a new one, and refresh, as
			// changes may have been missed.
			_ = resp.Body.Close()
			resumeID = ""
			continue
		case resp.StatusCode == http.StatusNotFound && h.sessionID != "":
			_ = resp.Body.Close()
			h.c.kick(evRedetect)
			return
		case resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode/100 == 4 || resp.StatusCode == http.StatusOK:
			// No stream offered: 405 to GET (2025-11-25: the server
			// does not offer one), or a JSON answer/4xx to
			// subscriptions/listen (not supported).
			_ = resp.Body.Close()
			h.c.log.DebugContext(s.ctx, "upstream offers no notification stream", slog.Int("status", resp.StatusCode))
			return
		default:
			_ = resp.Body.Close()
			backoff.Wait(s.ctx, bo.Next())
			continue
		}
		if opened && !resumed {
			h.c.kick(evRefresh)
		}
		opened = true
		bo.Reset()
		sr := h.readStream(resp.Body, id)
		relisten := sctx.Err() != nil
		cancel()
		if s.ctx.Err() != nil {
			sr.release()
			return
		}
		if relisten {
			sr.release()
			continue // reopened with the new subscriptions
		}
		if !h.modern && sr.lastID != "" {
			// A stream with event ids is resumed, after the server's retry
			// time: a server that closes it to poll (SEP-1699) is not down,
			// and the replay brings what was sent meanwhile.
			resumeID = sr.lastID
			d := resumeWait(sr, &bo)
			sr.release()
			backoff.Wait(s.ctx, d)
			continue
		}
		sr.release()
		resumeID = ""
		h.c.kick(evProbe)
		backoff.Wait(s.ctx, bo.Next())
	}
}

// errRelisten ends the wait of a listen loop that had nothing to listen
// for: a subscription was made.
var errRelisten = errors.New("listen again")

// openStream opens one notification stream on sctx. In the stateless era
// a change of the client's resource subscriptions (session.relisten)
// cancels sctx, which ends the stream so that it is opened again with the
// new set; the session-era GET stream carries every subscription as is.
func (h *httpConn) openStream(sctx context.Context, cancel context.CancelFunc, s *session, open func(context.Context) (*http.Response, error)) (*http.Response, error) {
	resp, err := open(sctx)
	if err != nil {
		cancel()
		return nil, err
	}
	if h.modern {
		go func() {
			select {
			case <-s.relistened:
				cancel()
			case <-sctx.Done():
			}
		}()
	}
	return resp, nil
}

// readStream handles the events of a notification stream until it ends,
// and returns its reader, which knows the stream's last event id and retry
// time; the caller releases it.
func (h *httpConn) readStream(body io.ReadCloser, id int64) *sseReader {
	sr := newSSEReader(&h.c.readers, body, h.c.maxResponse)
	defer func() { _ = body.Close() }()
	for {
		data, err := sr.next()
		if err != nil {
			return sr
		}
		env, ok := h.message(h.c.life, data, nil, nil)
		if ok && env.method == nil && id != 0 && env.idIs(id) {
			return sr // the server ended the subscription
		}
	}
}

// subscriptionFilter is the notifications member of subscriptions/listen:
// the list changes the server can announce (2026-07-28
// basic/patterns/subscriptions). Nil when it announces none.
func (h *httpConn) subscriptionFilter(caps capabilities) []byte {
	var parts []string
	if caps.toolsListChanged {
		parts = append(parts, `"toolsListChanged":true`)
	}
	if caps.resourcesListChanged {
		parts = append(parts, `"resourcesListChanged":true`)
	}
	if caps.promptsListChanged {
		parts = append(parts, `"promptsListChanged":true`)
	}
	if uris := h.c.subscribed(); caps.resourcesSubscribe && len(uris) > 0 {
		list, _ := json.Marshal(uris)
		parts = append(parts, `"resourceSubscriptions":`+string(list))
	}
	if len(parts) == 0 {
		return nil
	}
	return []byte("{" + strings.Join(parts, ",") + "}")
}

// isList reports whether method lists part of the catalog.
func isList(method string) bool {
	switch method {
	case mcpwire.MethodToolsList, mcpwire.MethodResourcesList, mcpwire.MethodTemplatesList, mcpwire.MethodPromptsList:
		return true
	default:
		return false
	}
}
