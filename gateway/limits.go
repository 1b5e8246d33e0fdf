package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// The edge limits: what a client may cost the gateway before it has been
// authenticated and before its request has been read. net/http bounds the
// header read (server.read_header_timeout, and MaxHeaderBytes with 4 KiB
// of slack) and idle keep-alive connections (server.idle_timeout); the
// chain bounds the rest:
//
//   - limitRequest: the header fields by count and size (431), the body by
//     size (413) and by time (server.read_body_timeout);
//   - authenticate: the requests being authenticated at once on
//     connections that have not authenticated yet
//     (server.max_unauthenticated).

// limitRequest refuses a request whose header fields exceed
// server.max_header_count or server.max_header_bytes with HTTP 431, and one
// whose body is announced larger than server.max_body_bytes with 413; it
// caps a body of unknown length at that size, and gives reading it server.read_body_timeout
// from now, so that a client that stalls its body holds its connection and
// goroutine no longer than that.
//
// net/http clears the read deadline itself once the body has been read to
// its end, before it starts watching the connection for the client going
// away: a call whose answer takes longer is not cut. A handler that answers
// without reading the body (a refusal) leaves the deadline on, so
// net/http's read of the rest of the body, before it reuses the
// connection, is bounded too.
func (g *Gateway) limitRequest(next http.Handler) http.Handler {
	s := &g.cfg.Server
	limit, bodyTimeout := s.MaxBodyBytes, s.ReadBodyTimeout
	maxBytes, maxCount := s.MaxHeaderBytes, s.MaxHeaderCount
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rerr := headerExcess(r, maxBytes, maxCount); rerr != nil {
			w.Header().Set("Connection", "close")
			writeJSON(w, http.StatusRequestHeaderFieldsTooLarge, appendError(nil, nil, rerr))
			return
		}
		if r.ContentLength > limit {
			w.Header().Set("Connection", "close")
			writeTooLarge(w, limit)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			if d, ok := w.(readDeadliner); ok {
				_ = d.SetReadDeadline(time.Now().Add(bodyTimeout)) // Only a hijacked connection refuses.
			}
			if r.ContentLength < 0 {
				// A body of announced length (within the limit, checked
				// above) ends there: net/http reads no further over
				// HTTP/1.1, and fails an HTTP/2 stream that sends more than
				// it declared. Only one of unknown length (chunked) needs
				// the cap.
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// readDeadliner is the net/http ResponseWriter's access to its connection's
// read deadline (what http.ResponseController uses, without its
// allocation).
type readDeadliner interface {
	SetReadDeadline(deadline time.Time) error
}

// headerExcess returns the error of a request with more header fields than
// maxCount or more header bytes than maxBytes, or nil. Fields count as
// sent: each value of a repeated name is one field, and Host (which
// net/http moves out of the map) is one. A field's size is its name, its
// value, ": " and the line end, as in RFC 9110's field-line.
func headerExcess(r *http.Request, maxBytes, maxCount int) *rpcError {
	n, size := 0, 0
	if r.Host != "" {
		n, size = 1, len("Host: \r\n")+len(r.Host)
	}
	for k, vs := range r.Header {
		n += len(vs)
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	switch {
	case n > maxCount:
		return newRPCError(mcpwire.CodeInvalidRequest, "invalid request: too many header fields: "+strconv.Itoa(n)+", more than "+strconv.Itoa(maxCount),
			map[string]any{"limit": maxCount})
	case size > maxBytes:
		return newRPCError(mcpwire.CodeInvalidRequest, "invalid request: header fields too large: "+strconv.Itoa(size)+" bytes, more than "+strconv.Itoa(maxBytes),
			map[string]any{"limit": maxBytes})
	default:
		return nil
	}
}

// connState is what the gateway knows of one client connection; Serve
// puts it in the context of every request on it (http.Server.ConnContext).
type connState struct {
	// authenticated is set once a request on the connection has
	// authenticated.
	authenticated atomic.Bool
}

type connKey struct{}

// withConnState is http.Server.ConnContext: one connState per connection.
func withConnState(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, &connState{})
}

// authenticate is the authentication step of /mcp (authn.Authenticator's
// Middleware, with the cap of server.max_unauthenticated): a request on a
// connection that has not yet carried an authenticated request holds one
// of that many slots while its token is verified. With none free it gets
// 503 with Retry-After and its connection closed, without its token being
// looked at. A request on a connection that has authenticated skips the
// slots, so unauthenticated traffic, however much of it waits on a slow
// issuer or sends tokens to verify, never delays established clients.
//
// Without connection state (a handler served outside Serve) every
// request counts as unauthenticated.
//
// a is the endpoint's protected resource (the Authenticator itself for
// the MCP endpoint) and required the scopes it requires.
func (g *Gateway) authenticate(next http.Handler, a resourceGuard, required []string) http.Handler {
	slots := g.authSlots
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		cs, _ := ctx.Value(connKey{}).(*connState)
		known := cs != nil && cs.authenticated.Load()
		if !known {
			select {
			case slots <- struct{}{}:
			default:
				g.unauthenticatedRefused.Add(1)
				g.log.DebugContext(ctx, "unauthenticated request refused: server.max_unauthenticated reached",
					slog.String("request_id", requestIDFrom(ctx)))
				h := w.Header()
				h.Set("Retry-After", "1")
				h.Set("Connection", "close")
				writeJSON(w, http.StatusServiceUnavailable, appendError(nil, nil, newRPCError(mcpwire.CodeInvalidRequest,
					"too many unauthenticated requests; retry later", map[string]any{"limit": cap(slots)})))
				return
			}
		}
		p, err := a.Authenticate(ctx, r)
		if !known {
			<-slots
		}
		if err != nil {
			a.WriteError(w, r, err)
			return
		}
		if !p.HasScopes(required...) {
			a.Challenge(w, r, nil)
			return
		}
		if cs != nil && !known {
			cs.authenticated.Store(true)
		}
		next.ServeHTTP(w, r.WithContext(authn.WithPrincipal(ctx, p)))
	})
}

// resourceGuard is what authenticate needs of a protected resource:
// *authn.Authenticator for the MCP endpoint, *authn.Resource for a
// virtual endpoint.
type resourceGuard interface {
	Authenticate(ctx context.Context, r *http.Request) (*authn.Principal, error)
	WriteError(w http.ResponseWriter, r *http.Request, err error)
	Challenge(w http.ResponseWriter, r *http.Request, requiredScopes []string)
}

var (
	_ resourceGuard = (*authn.Authenticator)(nil)
	_ resourceGuard = (*authn.Resource)(nil)
)

// UnauthenticatedRefused reports how many requests were refused because
// server.max_unauthenticated requests were being authenticated.
func (g *Gateway) UnauthenticatedRefused() uint64 { return g.unauthenticatedRefused.Load() }
