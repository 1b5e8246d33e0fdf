package upstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// This file holds the JSON-RPC handling of the hot path, on rawjson's
// trusting functions: request params and response envelopes are walked at
// their top level only, and values are carried as byte slices of the
// original input. Nothing here decodes a tool result or tool arguments.

// isReservedMetaKey reports whether k is a reserved _meta key that carries
// the protocol era of a request (2026-07-28, basic/index#meta), or its log
// level. They describe the gateway's own request to the upstream, so any
// copies that travelled in from the downstream request are dropped: a
// leaked modern protocolVersion would make a dual-era upstream (mcp-go's
// detectRequestEra) treat a session request as stateless. The caller's
// log level comes back from Request.LogLevel, once, in the era the
// upstream is spoken to.
func isReservedMetaKey(k []byte) bool {
	return rawjson.StringIs(k, mcpwire.MetaProtocolVersion) || rawjson.StringIs(k, mcpwire.MetaClientInfo) ||
		rawjson.StringIs(k, mcpwire.MetaClientCapabilities) || rawjson.StringIs(k, mcpwire.MetaLogLevel)
}

// paramsRewrite says how request params must change on the way upstream.
type paramsRewrite struct {
	// meta is a fragment of _meta members (no braces) to add, such as the
	// per-request protocol keys of the stateless era. Empty adds nothing.
	meta []byte
	// progressToken, when not empty, replaces _meta.progressToken (a JSON
	// value, already encoded).
	progressToken []byte
	// nameKey, when not empty, names the top-level string member whose value
	// is returned (params.name or params.uri for Mcp-Name).
	nameKey string
	// trace is a fragment of _meta members carrying the W3C trace context
	// of the upstream call ("traceparent":…[,"tracestate":…]); when set, the
	// downstream's traceparent and tracestate are replaced (SEP-414).
	trace []byte
}

// adds reports whether the rewrite adds anything to _meta.
func (r *paramsRewrite) adds() bool {
	return len(r.meta) > 0 || len(r.progressToken) > 0 || len(r.trace) > 0
}

// replaced reports whether a member of the downstream _meta gives way to
// one the rewrite adds.
func (r *paramsRewrite) replaced(k []byte) bool {
	if len(r.progressToken) > 0 && rawjson.StringIs(k, "progressToken") {
		return true
	}
	return len(r.trace) > 0 && (rawjson.StringIs(k, "traceparent") || rawjson.StringIs(k, "tracestate"))
}

// rewriteParams appends params, rewritten as r says, to dst. It returns the
// new buffer and the value of r.nameKey. params may be empty (no params).
// Only the top level of params and of params._meta is parsed.
func rewriteParams(dst, params []byte, r *paramsRewrite) (out []byte, name string, err error) {
	params = bytes.TrimSpace(params)
	if rawjson.IsNull(params) {
		if !r.adds() {
			return dst, "", nil
		}
		dst = append(dst, `{"_meta":{`...)
		dst = appendMetaAdditions(dst, false, r)
		return append(dst, "}}"...), "", nil
	}
	if params[0] != '{' || params[len(params)-1] != '}' {
		return dst, "", errors.New("params must be a JSON object")
	}
	// A key spelled with escapes ("\u005fmeta") misses this check; the
	// appended _meta then comes last, which is the one JSON decoders keep.
	hasMeta := bytes.Contains(params, []byte(`"_meta"`))
	if !hasMeta && r.nameKey == "" {
		// Fast path: no _meta to merge, nothing to look up.
		if !r.adds() {
			return append(dst, params...), "", nil
		}
		body := params[:len(params)-1]
		dst = append(dst, body...)
		if !emptyObjectPrefix(body) {
			dst = append(dst, ',')
		}
		dst = append(dst, `"_meta":{`...)
		dst = appendMetaAdditions(dst, false, r)
		return append(dst, "}}"...), "", nil
	}

	start := len(dst)
	dst = append(dst, '{')
	first := true
	sawMeta := false
	var inner error
	err = rawjson.EachMember(params, func(k, v []byte) bool {
		if r.nameKey != "" && name == "" && rawjson.StringIs(k, r.nameKey) {
			name, _ = rawjson.DecodeString(v)
		}
		if rawjson.StringIs(k, "_meta") {
			if sawMeta {
				return true // duplicate key: keep the first
			}
			sawMeta = true
			var ok bool
			dst, ok = appendMergedMeta(dst, &first, k, v, r)
			if !ok {
				inner = errors.New("params._meta must be a JSON object")
				return false
			}
			return true
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, k...)
		dst = append(dst, ':')
		dst = append(dst, v...)
		return true
	})
	if err == nil {
		err = inner
	}
	if err != nil {
		return dst[:start], "", err
	}
	if !sawMeta && r.adds() {
		if !first {
			dst = append(dst, ',')
		}
		dst = append(dst, `"_meta":{`...)
		dst = appendMetaAdditions(dst, false, r)
		dst = append(dst, '}')
	}
	return append(dst, '}'), name, nil
}

// emptyObjectPrefix reports whether b is "{" followed only by whitespace.
func emptyObjectPrefix(b []byte) bool {
	return rawjson.SkipSpace(b, 1) == len(b)
}

// appendMetaAdditions appends the members the rewrite adds to _meta.
func appendMetaAdditions(dst []byte, comma bool, r *paramsRewrite) []byte {
	if len(r.progressToken) > 0 {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, `"progressToken":`...)
		dst = append(dst, r.progressToken...)
		comma = true
	}
	if len(r.meta) > 0 {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, r.meta...)
		comma = true
	}
	if len(r.trace) > 0 {
		if comma {
			dst = append(dst, ',')
		}
		dst = append(dst, r.trace...)
	}
	return dst
}

// appendMergedMeta appends the _meta member rewritten: the progress token
// replaced when the rewrite carries one, reserved protocol keys dropped, the
// rewrite's additions appended. It omits _meta when nothing remains.
func appendMergedMeta(dst []byte, first *bool, key, meta []byte, r *paramsRewrite) ([]byte, bool) {
	if rawjson.IsNull(meta) {
		if !r.adds() {
			return dst, true
		}
		meta = []byte("{}")
	}
	if meta[0] != '{' {
		return dst, false
	}
	mark := len(dst)
	if !*first {
		dst = append(dst, ',')
	}
	dst = append(dst, key...)
	dst = append(dst, ":{"...)
	count := 0
	err := rawjson.EachMember(meta, func(k, v []byte) bool {
		if isReservedMetaKey(k) || r.replaced(k) {
			return true
		}
		if count > 0 {
			dst = append(dst, ',')
		}
		count++
		dst = append(dst, k...)
		dst = append(dst, ':')
		dst = append(dst, v...)
		return true
	})
	if err != nil {
		return dst[:mark], false
	}
	if count == 0 && !r.adds() {
		return dst[:mark], true
	}
	dst = appendMetaAdditions(dst, count > 0, r)
	*first = false
	return append(dst, '}'), true
}

// envelope is a JSON-RPC message, its members as slices of the input.
type envelope struct {
	id     []byte
	method []byte
	result []byte
	error  []byte
	params []byte
}

// parseEnvelope splits a JSON-RPC message. msg must be valid JSON.
func parseEnvelope(msg []byte) (envelope, error) {
	var e envelope
	err := rawjson.EachMember(msg, func(k, v []byte) bool {
		switch {
		case rawjson.StringIs(k, "id"):
			e.id = v
		case rawjson.StringIs(k, "method"):
			e.method = v
		case rawjson.StringIs(k, "result"):
			e.result = v
		case rawjson.StringIs(k, "error"):
			e.error = v
		case rawjson.StringIs(k, "params"):
			e.params = v
		}
		return true
	})
	return e, err
}

// isNotification reports whether the message is a notification.
func (e *envelope) isNotification() bool { return len(e.method) > 0 && rawjson.IsNull(e.id) }

// isRequest reports whether the message is a request from the server.
func (e *envelope) isRequest() bool { return len(e.method) > 0 && !rawjson.IsNull(e.id) }

// idIs reports whether the message's id is the integer id. Servers echo the
// number; a string holding the same digits is accepted as well.
func (e *envelope) idIs(id int64) bool {
	var buf [24]byte
	want := strconv.AppendInt(buf[:0], id, 10)
	got := e.id
	if len(got) >= 2 && got[0] == '"' {
		got = got[1 : len(got)-1]
	}
	return bytes.Equal(got, want)
}

// rpcError decodes the error member of a response.
func rpcErrorFrom(raw []byte) *RPCError {
	var w struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return &RPCError{Code: mcpwire.CodeInternalError, Message: "malformed error object from upstream"}
	}
	e := &RPCError{Code: w.Code, Message: w.Message, Raw: bytes.Clone(raw)}
	if !rawjson.IsNull(w.Data) {
		e.Data = []byte(w.Data)
	}
	return e
}
