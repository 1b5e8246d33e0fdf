package gateway

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// scanEnvelope is the fast path of parseMessage for the messages hosts
// actually send: one JSON object whose members are among jsonrpc, id,
// method, params, result and error, each at most once, with jsonrpc and
// method plain strings (no escapes, valid UTF-8). It validates the whole
// body with rawjson.ValidateObject (syntax, depth, no duplicate member at
// any depth) and returns the message with its raw members aliasing body,
// which the caller hands over: it must not change body afterwards (the one
// caller, servePost, reads each body into its own buffer). A copy here was
// a body-sized allocation per call.
//
// For anything else — another member, a name with an escape or in another
// case, invalid JSON — it returns false, and parseMessage checks the body
// with bodyError and decodes it with encoding/json. So both paths agree on
// every input: FuzzScanEnvelope checks that what it accepts, encoding/json
// decodes to the same message. The profile of the call path showed
// json.Unmarshal of the envelope as the gateway's largest item of its own.
func scanEnvelope(body []byte) (*message, bool) {
	var fb [envMembers]rawjson.Field
	fields, err := rawjson.ValidateObject(body, rawjson.Limits{}, fb[:0])
	if err != nil {
		return nil, false
	}
	var spans [envMembers]rawjson.Span
	for _, f := range fields {
		k := envMember(body[f.Key.Start+1 : f.Key.End-1])
		if k < 0 || spans[k].End != 0 {
			return nil, false // Unknown, escaped or case-folded; or twice.
		}
		spans[k] = f.Value
	}
	buf := body
	m := &message{}
	for k, sp := range spans {
		if sp.End == 0 {
			continue // Absent.
		}
		raw := buf[sp.Start:sp.End:sp.End]
		switch k {
		case envJSONRPC, envMethod:
			str, ok := plainStringValue(raw)
			if !ok {
				return nil, false
			}
			if k == envJSONRPC {
				m.JSONRPC = str
			} else {
				m.Method = str
			}
		case envID:
			m.ID = raw
		case envParams:
			m.Params = raw
		case envResult:
			m.Result = raw
		case envError:
			m.Error = raw
		}
	}
	return m, true
}

// bodyError checks a body that scanEnvelope left to encoding/json and says
// why it is refused, or returns nil. Invalid JSON is a parse error, with
// what and where. Well-formed JSON is an invalid request when it nests
// deeper than encoding/json follows, has an object with two members of
// the same name at any depth (encoding/json would keep the last, another
// parser the first), or spells an envelope member twice up to case
// ("method" and "Method": encoding/json matches both to the same field).
func bodyError(body []byte) *rpcError {
	var fb [2 * envMembers]rawjson.Field
	fields, err := rawjson.ValidateObject(body, rawjson.Limits{}, fb[:0])
	switch {
	case errors.Is(err, rawjson.ErrNotObject):
		return nil // parseMessage words what a batch or a scalar is.
	case errors.Is(err, rawjson.ErrSyntax):
		return newRPCError(mcpwire.CodeParseError, "parse error: "+err.Error(), nil)
	case err != nil:
		return newRPCError(mcpwire.CodeInvalidRequest, "invalid request: "+err.Error(), nil)
	}
	names := [envMembers]string{envJSONRPC: "jsonrpc", envID: "id", envMethod: "method", envParams: "params", envResult: "result", envError: "error"}
	var seen [envMembers]bool
	for _, f := range fields {
		name, _ := rawjson.DecodeString(body[f.Key.Start:f.Key.End])
		for k := range names {
			if !strings.EqualFold(name, names[k]) {
				continue
			}
			if seen[k] {
				return newRPCError(mcpwire.CodeInvalidRequest, "invalid request: member "+strconv.Quote(name)+" repeats another up to case", nil)
			}
			seen[k] = true
		}
	}
	return nil
}

// The members scanEnvelope knows, in message's order.
const (
	envJSONRPC = iota
	envID
	envMethod
	envParams
	envResult
	envError
	envMembers
)

// envMember returns the member a key (without quotes) names, or -1. Only
// exact matches count: encoding/json also matches keys case-insensitively,
// so any other key sends the message to the slow path.
func envMember(key []byte) int {
	switch string(key) {
	case "jsonrpc":
		return envJSONRPC
	case "id":
		return envID
	case "method":
		return envMethod
	case "params":
		return envParams
	case "result":
		return envResult
	case "error":
		return envError
	default:
		return -1
	}
}

// intern returns the jsonrpc version and the method names of the call
// path as constants, so the common messages allocate no string for them.
func intern(b []byte) (string, bool) {
	switch string(b) {
	case "2.0":
		return "2.0", true
	case mcpwire.MethodToolsCall:
		return mcpwire.MethodToolsCall, true
	case mcpwire.MethodToolsList:
		return mcpwire.MethodToolsList, true
	case mcpwire.MethodResourcesRead:
		return mcpwire.MethodResourcesRead, true
	case mcpwire.MethodPromptsGet:
		return mcpwire.MethodPromptsGet, true
	case mcpwire.MethodPing:
		return mcpwire.MethodPing, true
	case mcpwire.NotifyInitialized:
		return mcpwire.NotifyInitialized, true
	case mcpwire.NotifyCancelled:
		return mcpwire.NotifyCancelled, true
	default:
		return "", false
	}
}

// plainStringValue returns the content of a JSON string without escapes
// whose bytes are valid UTF-8 (encoding/json would replace invalid bytes).
func plainStringValue(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	if bytes.IndexByte(inner, '\\') >= 0 || !utf8.Valid(inner) {
		return "", false
	}
	if s, ok := intern(inner); ok {
		return s, true
	}
	return string(inner), true
}
