package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strconv"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// serverRequestFunc answers one server-to-client request (Request.OnServerRequest).
type serverRequestFunc = func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)

// relayRequest answers a request a session-era upstream sent on a call's
// response stream with onRequest, on its own goroutine, and POSTs the
// answer on the session (2025-11-25 basic/transports, "Sending Messages":
// the client's response is a new POST). ctx is the call's: when the call
// ends, a request still waiting is abandoned.
func (h *httpConn) relayRequest(ctx context.Context, env *envelope, onRequest serverRequestFunc) {
	method, _ := rawjson.DecodeString(env.method)
	id := append(json.RawMessage(nil), env.id...)
	params := append(json.RawMessage(nil), env.params...)
	h.c.log.DebugContext(ctx, "relaying server request", slog.String("method", method))
	h.c.goSafe("relay", func() {
		res, err := onRequest(ctx, method, params)
		if ctx.Err() != nil {
			// The call was abandoned; notifications/cancelled ends the
			// upstream's handler, and with it this request.
			return
		}
		msg := append([]byte(`{"jsonrpc":"2.0","id":`), id...)
		var rpcErr *RPCError
		switch {
		case err == nil && json.Valid(res):
			msg = append(msg, `,"result":`...)
			msg = append(msg, res...)
		case errors.As(err, &rpcErr):
			msg = append(msg, `,"error":{"code":`...)
			msg = strconv.AppendInt(msg, int64(rpcErr.Code), 10)
			msg = append(msg, `,"message":`...)
			msg = rawjson.AppendString(msg, rpcErr.Message)
			if len(rpcErr.Data) > 0 {
				msg = append(msg, `,"data":`...)
				msg = append(msg, rpcErr.Data...)
			}
			msg = append(msg, '}')
		default:
			text := "no answer from the client"
			if err != nil {
				text = err.Error()
			}
			msg = append(msg, `,"error":{"code":`...)
			msg = strconv.AppendInt(msg, mcpwire.CodeInternalError, 10)
			msg = append(msg, `,"message":`...)
			msg = rawjson.AppendString(msg, text)
			msg = append(msg, '}')
		}
		msg = append(msg, '}')
		sctx, cancel := context.WithTimeout(h.c.life, notifyTimeout)
		defer cancel()
		if err := h.send(sctx, msg); err != nil {
			h.c.log.DebugContext(sctx, "answering server request failed", slog.String("method", method), slog.Any("error", err))
		}
	})
}
