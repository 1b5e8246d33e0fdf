package upstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"sync/atomic"

	mcptransport "github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// stdio and legacy HTTP+SSE upstreams use mcp-go's client transports at the
// raw level: SendRequest with json.RawMessage params returns the result as
// json.RawMessage, so nothing is decoded into typed structs. Both speak the
// initialize era (stdio may be pinned to 2026-07-28).

// rawDialer opens sessions over an mcp-go transport.
type rawDialer struct {
	c       *Client
	start   func(ctx, life context.Context, rc *rawConn) (mcptransport.Interface, error)
	closeFn func()
}

func (d *rawDialer) close() { d.closeFn() }

func newStdioDialer(c *Client) *rawDialer {
	cfg := c.cfg.Stdio
	env := make([]string, 0, len(cfg.Env))
	for k, v := range cfg.Env {
		env = append(env, k+"="+secretValue(v))
	}
	sort.Strings(env)
	d := &rawDialer{c: c, closeFn: func() {}}
	d.start = func(_, life context.Context, rc *rawConn) (mcptransport.Interface, error) {
		// The child's stderr goes to a pipe of ours rather than to the
		// transport's drain: its lines are logged at debug level, and its
		// end tells that the child exited, which the transport does not
		// report (it only fails later sends with ErrTransportClosed).
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		t := mcptransport.NewStdioWithOptions(cfg.Command, env, cfg.Args,
			mcptransport.WithCommandLogger(c.log),
			mcptransport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
				cmd := exec.CommandContext(ctx, command, args...)
				cmd.Env = append(os.Environ(), env...)
				cmd.Stderr = pw
				return cmd, nil
			}))
		t.SetNotificationHandler(rc.onNotification)
		t.SetRequestHandler(rc.onRequest)
		// Start ties the child to life: exec.CommandContext kills it when
		// the session ends.
		err = t.Start(life)
		_ = pw.Close()
		if err != nil {
			_ = pr.Close()
			return nil, err
		}
		// Close waits for the client's goroutines before it stops the
		// child, so the stderr reader must not wait for the child.
		stopRead := context.AfterFunc(c.life, func() { _ = pr.Close() })
		if !c.goSafe("stderr", func() { defer stopRead(); rc.readStderr(pr) }) {
			_ = pr.Close()
		}
		return t, nil
	}
	return d
}

func newSSEDialer(c *Client) *rawDialer {
	cfg := c.cfg.SSE
	headers := make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers[http.CanonicalHeaderKey(k)] = secretValue(v)
	}
	rt := newHTTPTransport(defaultMaxIdleConns)
	hc := &http.Client{Transport: rt}
	d := &rawDialer{c: c, closeFn: rt.CloseIdleConnections}
	d.start = func(ctx, life context.Context, rc *rawConn) (mcptransport.Interface, error) {
		t, err := mcptransport.NewSSE(cfg.URL,
			mcptransport.WithHTTPClient(hc),
			mcptransport.WithHeaders(headers),
			mcptransport.WithHeaderFunc(c.sseAuthHeaders),
			mcptransport.WithSSELogger(c.log),
			// Calls are bounded by their contexts; the transport's own
			// 60s response timeout would cut longer ones.
			mcptransport.WithResponseTimeout(24*365*3600e9),
		)
		if err != nil {
			return nil, err
		}
		t.SetNotificationHandler(rc.onNotification)
		t.SetConnectionLostHandler(func(err error) {
			if s := rc.sess.Load(); s != nil {
				c.drop(s, fmt.Errorf("event stream lost: %w", err))
			}
		})
		// Start's context is the stream's lifetime, so it must be life;
		// the handshake deadline is ctx, applied by cancelling life's
		// child if ctx ends first.
		sctx, cancel := context.WithCancel(life)
		stop := context.AfterFunc(ctx, cancel)
		err = t.Start(sctx)
		if !stop() && err == nil {
			err = ctx.Err()
		}
		if err != nil {
			cancel()
			_ = t.Close()
			return nil, err
		}
		rc.stopStream = cancel
		return t, nil
	}
	return d
}

// connect starts the transport and performs the initialize handshake
// through it (or, for a stdio upstream pinned to 2026-07-28, server/discover).
func (d *rawDialer) connect(ctx context.Context) (*session, error) {
	c := d.c
	// The transport's lifetime is the session's, ended by rawConn.close,
	// not the client's: Close ends the client's context first and then
	// closes the session gracefully (stdin closed before any signal).
	life, cancel := context.WithCancel(context.WithoutCancel(c.life))
	rc := &rawConn{c: c}
	t, err := d.start(ctx, life, rc)
	if err != nil {
		cancel()
		return nil, c.transportFail("starting transport", err)
	}
	rc.t = t
	rc.cancelLife = cancel
	s, err := d.handshake(ctx, rc)
	if err != nil {
		rc.close(false)
		return nil, err
	}
	rc.sess.Store(s)
	return s, nil
}

func (d *rawDialer) handshake(ctx context.Context, rc *rawConn) (*session, error) {
	c := d.c
	pinned := c.cfg.PinnedVersion()
	if mcpwire.IsModern(pinned) {
		rc.meta = c.metaFor(pinned)
		res, err := rc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodDiscover, nil, nil, callOpts{})
		if err != nil {
			return nil, c.wrap(mcpwire.MethodDiscover, err)
		}
		dr, err := parseDiscoverResult(res)
		if err != nil {
			return nil, c.fail(ErrBadResponse, mcpwire.MethodDiscover+" result", err)
		}
		if !slices.Contains(dr.supported, pinned) {
			return nil, c.fail(ErrUnavailable, fmt.Sprintf("upstream does not offer pinned protocol version %s (offers %v)", pinned, dr.supported), nil)
		}
		return newSession(c, rc, true, pinned, dr.hs), nil
	}
	version := mcpwire.Version20251125
	if pinned != "" {
		version = pinned
	}
	res, err := rc.roundTrip(ctx, c.nextID.Add(1), mcpwire.MethodInitialize, c.initializeParams(version), nil, callOpts{})
	if err != nil {
		return nil, c.wrap(mcpwire.MethodInitialize, err)
	}
	negotiated, hs, err := parseInitializeResult(res)
	if err != nil {
		return nil, c.fail(ErrBadResponse, mcpwire.MethodInitialize+" result", err)
	}
	if hc, ok := rc.t.(mcptransport.HTTPConnection); ok {
		hc.SetProtocolVersion(negotiated)
	}
	if err := rc.t.SendNotification(ctx, notification(mcpwire.NotifyInitialized, nil)); err != nil {
		return nil, c.transportFail(mcpwire.NotifyInitialized, err)
	}
	return newSession(c, rc, false, negotiated, hs), nil
}

// rawConn is a session over an mcp-go transport.
type rawConn struct {
	c          *Client
	t          mcptransport.Interface
	meta       []byte
	sess       atomic.Pointer[session]
	cancelLife context.CancelFunc
	stopStream context.CancelFunc
}

func (rc *rawConn) roundTrip(ctx context.Context, id int64, method string, params, progressToken []byte, o callOpts) (json.RawMessage, error) { //nolint:gocritic // hugeParam: by value, as callOpts says.
	c := rc.c
	p, _, err := rewriteParams(nil, params, &paramsRewrite{meta: rc.meta, progressToken: progressToken, trace: o.meta})
	if err != nil {
		return nil, c.fail(ErrBadRequest, method, err)
	}
	req := mcptransport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Method: method}
	if p != nil {
		req.Params = json.RawMessage(p)
	}
	if o.requestID != "" || len(o.header) > 0 {
		req.Header = make(http.Header, len(o.header)+1)
		maps.Copy(req.Header, o.header)
		if o.requestID != "" {
			req.Header["X-Request-Id"] = []string{o.requestID}
		}
	}
	if c.auth != nil && c.cfg.SSE != nil {
		// The transport asks sseAuthHeaders for the headers of each POST
		// with this context.
		pairs, err := c.auth.append(ctx, o.call, o.identity, nil)
		if err != nil {
			return nil, c.credentialsFail(err)
		}
		ctx = context.WithValue(ctx, sseAuthKey{}, pairs)
	}
	resp, err := rc.t.SendRequest(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.transportFail("", err)
	}
	if resp.Error != nil {
		e := &RPCError{Code: resp.Error.Code, Message: resp.Error.Message}
		if resp.Error.Data != nil {
			e.Data, _ = json.Marshal(resp.Error.Data)
		}
		return nil, e
	}
	if resp.Result == nil {
		return nil, c.fail(ErrBadResponse, "response has neither result nor error", nil)
	}
	if int64(len(resp.Result)) > c.maxResponse {
		return nil, c.fail(ErrResponseTooLarge, fmt.Sprintf("more than %d bytes", c.maxResponse), nil)
	}
	return resp.Result, nil
}

// cancelled sends notifications/cancelled (2025-11-25
// basic/utilities/cancellation), which stdio keeps in the stateless era too.
func (rc *rawConn) cancelled(id int64, reason string, _ *Identity) {
	n := notification(mcpwire.NotifyCancelled, map[string]any{"requestId": id, "reason": reason})
	rc.c.goSafe("cancel", func() {
		ctx, cancel := context.WithTimeout(rc.c.life, notifyTimeout)
		defer cancel()
		if err := rc.t.SendNotification(ctx, n); err != nil {
			rc.c.log.DebugContext(ctx, "sending notifications/cancelled failed", slog.Any("error", err))
		}
	})
}

// listen does nothing: the transport delivers notifications to
// onNotification from its own reader.
func (rc *rawConn) listen(*session) {}

func (rc *rawConn) close(bool) {
	if rc.t != nil {
		if err := rc.t.Close(); err != nil && !errors.Is(err, mcptransport.ErrTransportClosed) {
			rc.c.log.DebugContext(rc.c.life, "closing upstream transport", slog.Any("error", err))
		}
	}
	if rc.stopStream != nil {
		rc.stopStream()
	}
	if rc.cancelLife != nil {
		rc.cancelLife()
	}
}

func (rc *rawConn) onNotification(n mcp.JSONRPCNotification) {
	params, err := json.Marshal(n.Params)
	if err != nil {
		return
	}
	rc.c.onNotification(n.Method, params)
}

// onRequest answers server requests on stdio: ping succeeds, everything
// else is refused, since the gateway offers no client features.
func (rc *rawConn) onRequest(_ context.Context, req mcptransport.JSONRPCRequest) (*mcptransport.JSONRPCResponse, error) {
	if req.Method == mcpwire.MethodPing {
		return mcptransport.NewJSONRPCResultResponse(req.ID, json.RawMessage("{}")), nil
	}
	return mcptransport.NewJSONRPCErrorResponse(req.ID, mcpwire.CodeMethodNotFound, "method not supported by the gateway", nil), nil
}

// readStderr logs the child's stderr and marks the session down when it
// ends, which happens when the child exits.
func (rc *rawConn) readStderr(r io.ReadCloser) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		rc.c.log.DebugContext(rc.c.life, "upstream stderr", slog.String("line", sc.Text()))
	}
	if sc.Err() != nil {
		_, _ = io.Copy(io.Discard, r)
	}
	if rc.c.life.Err() != nil {
		return
	}
	if s := rc.sess.Load(); s != nil {
		rc.c.drop(s, errors.New("child process exited"))
	}
}

func notification(method string, params map[string]any) mcp.JSONRPCNotification {
	return mcp.JSONRPCNotification{
		JSONRPC:      mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: method, Params: mcp.NotificationParams{AdditionalFields: params}},
	}
}

// sseAuthKey carries the authentication headers of one request to
// sseAuthHeaders.
type sseAuthKey struct{}

// sseAuthHeaders gives the legacy SSE transport the upstream's credential
// and identity assertion for each of its requests: those roundTrip prepared
// for a call, or the gateway's own credential for the event stream and
// notifications. A failure leaves the headers out, and the upstream
// refuses the request.
func (c *Client) sseAuthHeaders(ctx context.Context) map[string]string {
	if c.auth == nil {
		return nil
	}
	pairs, ok := ctx.Value(sseAuthKey{}).([][2]string)
	if !ok {
		var err error
		if pairs, err = c.auth.append(ctx, false, nil, nil); err != nil {
			c.log.WarnContext(ctx, "upstream credential unavailable", slog.Any("error", err))
			return nil
		}
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		m[p[0]] = p[1]
	}
	return m
}
