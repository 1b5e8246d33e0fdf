package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// JSON-RPC 2.0 error codes (https://www.jsonrpc.org/specification#error_object)
// and the gateway's own range. Gateway refusals use -32050 … -32099 so that
// hosts can tell them from upstream application errors; the range is
// documented in the README.
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternalError  = -32603

	// codeResourceNotFound is MCP's code for an unknown resource URI
	// (server/resources, "Error Handling").
	codeResourceNotFound = -32002

	// codeSessionNotFound answers an unknown or expired Mcp-Session-Id
	// (with HTTP 404), as the reference SDKs do.
	codeSessionNotFound = -32001
	// codeUnsupportedVersion: MCP-Protocol-Version names a version this
	// endpoint does not serve (MCP 2026-07-28, basic/versioning).
	codeUnsupportedVersion = -32022
	// codeMissingCapability: the request needs a client capability the
	// client did not declare (MCP 2026-07-28).
	codeMissingCapability = -32021
	// codeRequestCancelled: the client cancelled the request.
	codeRequestCancelled = -32800

	// codeUpstreamUnavailable: the upstream owning the target is down,
	// or its transport failed.
	codeUpstreamUnavailable = -32050
	// codeUpstreamBadResponse: the upstream answered with something that is
	// not a valid JSON-RPC response, or one over the size limit.
	codeUpstreamBadResponse = -32051
	// codeUpstreamTimeout: the upstream did not answer within its timeout.
	codeUpstreamTimeout = -32052
	// codeShuttingDown: the gateway is draining and takes no new calls.
	codeShuttingDown = -32053
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

// rpcError is a JSON-RPC error object the gateway produces.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
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
// it returns is an *rpcError with the code the spec names: -32700 for a
// body that is not JSON, -32600 for one too deep, with a duplicate member
// (bodyError), or not a request.
func parseMessage(body []byte) (*message, *rpcError) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, newRPCError(codeParseError, "parse error: empty body", nil)
	}
	if trimmed[0] != '{' {
		if rerr := bodyError(trimmed); rerr != nil {
			return nil, rerr
		}
		if trimmed[0] == '[' {
			return nil, newRPCError(codeInvalidRequest, "invalid request: "+errBatch.Error(), nil)
		}
		return nil, newRPCError(codeInvalidRequest, "invalid request: "+errNoObject.Error(), nil)
	}
	m, fast := scanEnvelope(trimmed)
	if !fast {
		if rerr := bodyError(trimmed); rerr != nil {
			return nil, rerr
		}
		m = new(message)
		if err := json.Unmarshal(trimmed, m); err != nil {
			return nil, newRPCError(codeInvalidRequest, "invalid request: "+err.Error(), nil)
		}
	}
	if m.JSONRPC != "2.0" {
		return m, newRPCError(codeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`, nil)
	}
	if len(m.ID) > 0 && !validID(m.ID) {
		return m, newRPCError(codeInvalidRequest, "invalid request: id must be a string or an integer", nil)
	}
	switch {
	case m.Method != "":
		if len(m.Params) > 0 && m.Params[0] != '{' {
			return m, newRPCError(codeInvalidRequest, "invalid request: params must be an object", nil)
		}
	case len(m.ID) > 0 && (m.Result != nil || m.Error != nil):
		// A response from the client to a server→client request.
	default:
		return m, newRPCError(codeInvalidRequest, `invalid request: "method" is missing`, nil)
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

var (
	respPrefix = []byte(`{"jsonrpc":"2.0","id":`)
	respResult = []byte(`,"result":`)
	respError  = []byte(`,"error":`)
	nullID     = json.RawMessage("null")
)

// appendResult appends a JSON-RPC response carrying raw result bytes.
func appendResult(dst []byte, id, result json.RawMessage) []byte {
	if len(id) == 0 {
		id = nullID
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
		id = nullID
	}
	enc, err := json.Marshal(e)
	if err != nil {
		enc = []byte(`{"code":-32603,"message":"internal error"}`)
	}
	return appendRawError(dst, id, enc)
}

// appendRawError appends a JSON-RPC error response with a raw error object,
// as an upstream returned it.
func appendRawError(dst []byte, id, errObj json.RawMessage) []byte {
	if len(id) == 0 {
		id = nullID
	}
	dst = append(dst, respPrefix...)
	dst = append(dst, id...)
	dst = append(dst, respError...)
	dst = append(dst, errObj...)
	return append(dst, '}')
}

// appendNotification appends a JSON-RPC notification with raw params.
func appendNotification(dst []byte, method string, params json.RawMessage) []byte { //nolint:unparam // append-style, like appendResult.
	dst = append(dst, `{"jsonrpc":"2.0","method":`...)
	dst = strconv.AppendQuote(dst, method)
	if len(params) > 0 {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}
