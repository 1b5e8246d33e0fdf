package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// message is the envelope of one JSON-RPC message. Params, Result and Error
// stay raw: the gateway forwards them without decoding.
type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method,omitempty"`
	Params  json.RawMessage `json:"params,omitempty"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
}

// rpcError is a JSON-RPC error object the gateway produces, or relays.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
	// raw, when set, is the error object as an upstream sent it: it is
	// written instead of the members above, byte for byte.
	raw json.RawMessage
}

func (e *rpcError) Error() string { return e.Message }

func newRPCError(code int, msg string, data any) *rpcError {
	return &rpcError{Code: code, Message: msg, Data: data}
}

var (
	errBatch    = errors.New("batch requests are not supported (removed in MCP 2025-06-18)")
	errNoObject = errors.New("body must be a JSON-RPC object")
)

// parseMessage decodes one JSON-RPC message and checks its shape. The error
// it returns is an *rpcError with the code the spec names: a parse error
// for a body that is not JSON; an invalid request for one too deep, with a
// duplicate member (bodyError), or that is not a request. The message's
// raw members may alias body, which the caller must not change afterwards.
func parseMessage(body []byte) (*message, *rpcError) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, newRPCError(mcpwire.CodeParseError, "parse error: empty body", nil)
	}
	if trimmed[0] != '{' {
		if rerr := bodyError(trimmed); rerr != nil {
			return nil, rerr
		}
		if trimmed[0] == '[' {
			return nil, newRPCError(mcpwire.CodeInvalidRequest, "invalid request: "+errBatch.Error(), nil)
		}
		return nil, newRPCError(mcpwire.CodeInvalidRequest, "invalid request: "+errNoObject.Error(), nil)
	}
	m, fast := scanEnvelope(trimmed)
	if !fast {
		if rerr := bodyError(trimmed); rerr != nil {
			return nil, rerr
		}
		m = new(message)
		if err := json.Unmarshal(trimmed, m); err != nil {
			return nil, newRPCError(mcpwire.CodeInvalidRequest, "invalid request: "+err.Error(), nil)
		}
	}
	if m.JSONRPC != "2.0" {
		return m, newRPCError(mcpwire.CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`, nil)
	}
	if len(m.ID) > 0 && !validID(m.ID) {
		return m, newRPCError(mcpwire.CodeInvalidRequest, "invalid request: id must be a string or an integer", nil)
	}
	switch {
	case m.Method != "":
		if len(m.Params) > 0 && m.Params[0] != '{' {
			return m, newRPCError(mcpwire.CodeInvalidRequest, "invalid request: params must be an object", nil)
		}
	case len(m.ID) > 0 && (m.Result != nil || m.Error != nil):
		// A response from the client to a server→client request.
	default:
		return m, newRPCError(mcpwire.CodeInvalidRequest, `invalid request: "method" is missing`, nil)
	}
	return m, nil
}

// validID reports whether raw is a JSON string or integer (MCP forbids null
// ids and the gateway refuses fractional ones).
func validID(raw json.RawMessage) bool {
	switch raw[0] {
	case '"':
		return true
	case 'n':
		return false
	default:
		_, err := strconv.ParseInt(string(raw), 10, 64)
		return err == nil
	}
}

// isRequest reports whether m expects a response.
func (m *message) isRequest() bool { return m.Method != "" && len(m.ID) > 0 }

// isNotification reports whether m is a notification.
func (m *message) isNotification() bool { return m.Method != "" && len(m.ID) == 0 }

// The fixed parts of a JSON-RPC response.
const (
	respPrefix = `{"jsonrpc":"2.0","id":`
	respResult = `,"result":`
	respError  = `,"error":`
	nullID     = "null"
)

// appendResult appends a JSON-RPC response carrying raw result bytes.
func appendResult(dst []byte, id, result json.RawMessage) []byte {
	if len(id) == 0 {
		id = json.RawMessage(nullID)
	}
	dst = append(dst, respPrefix...)
	dst = append(dst, id...)
	dst = append(dst, respResult...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// appendError appends a JSON-RPC error response.
func appendError(dst []byte, id json.RawMessage, e *rpcError) []byte { //nolint:unparam // append-style, like appendResult.
	if len(id) == 0 {
		id = json.RawMessage(nullID)
	}
	if len(e.raw) > 0 {
		return appendRawError(dst, id, e.raw)
	}
	enc, err := json.Marshal(e)
	if err != nil {
		enc = fmt.Appendf(nil, `{"code":%d,"message":"internal error"}`, mcpwire.CodeInternalError)
	}
	return appendRawError(dst, id, enc)
}

// appendRawError appends a JSON-RPC error response with a raw error object,
// as an upstream returned it.
func appendRawError(dst []byte, id, errObj json.RawMessage) []byte {
	if len(id) == 0 {
		id = json.RawMessage(nullID)
	}
	dst = append(dst, respPrefix...)
	dst = append(dst, id...)
	dst = append(dst, respError...)
	dst = append(dst, errObj...)
	return append(dst, '}')
}

// appendNotification appends a JSON-RPC notification with raw params.
func appendNotification(dst []byte, method string, params json.RawMessage) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = strconv.AppendQuote(dst, method)
	if len(params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}
