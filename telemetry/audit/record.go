// Package audit is the audit stream of mcpgw: one JSON line per tools/call
// decision (allowed or not) and per kill-switch, drain or reload event,
// written to stdout or files by a Logger that never drops a record
// silently. It also canonicalises and hashes call arguments (RFC 8785) and
// redacts them. It imports nothing else from mcpgw but the stdlib-only
// internal/rawjson (its string encoder), so the gateway maps its
// configuration into Options.
//
// # Record format
//
// A record is a JSON object on one line. time (RFC 3339, UTC, nanoseconds)
// and event are always present; every other field is left out when empty
// or zero. Field names are those of the json tags of Record.
package audit

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/internal/rawjson"
)

// Event is the kind of a record.
type Event string

// Events.
const (
	// EventToolsCall is one tools/call, whatever its decision.
	EventToolsCall Event = mcpwire.MethodToolsCall
	// EventKillSwitch is a kill switch added, removed or expired.
	EventKillSwitch Event = "killswitch"
	// EventDrain is an upstream drained or undrained.
	EventDrain Event = "drain"
	// EventConfigReload is a configuration reload, applied or rejected.
	EventConfigReload Event = "config_reload"
	// EventBreaker is a circuit breaker changing state: Target is the
	// upstream, Scope "upstream" or "tool" (then Tool is the tool's
	// original name), Action the new state (open, half-open, closed) and
	// Detail["from"] the old one.
	EventBreaker Event = "breaker"
	// EventToolContract is a pinned tool contract that changed, or an
	// approval of one: Action is quarantine (enforce), warn, allow (a tool
	// the lock file does not know, let through) or approve; Upstream,
	// UpstreamTool and Tool name the tool, Detail the digests ("pinned",
	// "current") and the changed members ("members", comma-separated).
	EventToolContract Event = "tool_contract"
)

// Decision is what the gateway decided about a call.
type Decision string

// Decisions.
const (
	// DecisionAllowed: the call was sent upstream.
	DecisionAllowed Decision = "allowed"
	// DecisionDenied: authorization refused it (missing scopes).
	DecisionDenied Decision = "denied"
	// DecisionLimited: a rate limit refused it.
	DecisionLimited Decision = "limited"
	// DecisionKilled: a kill switch stopped it.
	DecisionKilled Decision = "killed"
	// DecisionCircuitOpen: the upstream's breaker was open.
	DecisionCircuitOpen Decision = "circuit_open"
	// DecisionInvalid: the call was malformed or named an unknown tool.
	DecisionInvalid Decision = "invalid"
	// DecisionDrained: the upstream was drained.
	DecisionDrained Decision = "drained"
	// DecisionBusy: the upstream's bulkhead was full (every slot taken for
	// the queue timeout, or the queue full).
	DecisionBusy Decision = "busy"
	// DecisionAuditUnavailable: the tool is annotated destructive and the
	// audit stream was stuck or failing, so the call was not run.
	DecisionAuditUnavailable Decision = "audit_unavailable"
	// DecisionUnavailable: the gateway could not take the call: it was
	// shutting down, or the tool's upstream was unavailable. Rule says
	// which.
	DecisionUnavailable Decision = "unavailable"
	// DecisionQuarantined: the tool's contract no longer matches its pin
	// and pinning is enforced (Rule is "pinning:" and the change kind).
	DecisionQuarantined Decision = "quarantined"
)

// Outcome is how an allowed call ended.
type Outcome string

// Outcomes.
const (
	// OutcomeOK: the tool returned a result.
	OutcomeOK Outcome = "ok"
	// OutcomeToolError: the tool returned a result with isError true.
	OutcomeToolError Outcome = "tool_error"
	// OutcomeJSONRPCError: the upstream answered with a JSON-RPC error.
	OutcomeJSONRPCError Outcome = "jsonrpc_error"
	// OutcomeTimeout: the upstream did not answer in time.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeTransportError: the upstream could not be reached or broke
	// the protocol.
	OutcomeTransportError Outcome = "transport_error"
)

// Record is one audit record. The json tags name the fields of the
// encoded form; AppendJSON encodes it without reflection, and a test keeps
// the two in agreement.
type Record struct {
	// Time is when the decision was made; Logger.Log fills it in when zero.
	Time time.Time `json:"time"`
	// Event is the kind of record.
	Event Event `json:"event"`

	// RequestID is the gateway's request id.
	RequestID string `json:"request_id,omitempty"`
	// TraceID is the W3C trace id, when traced.
	TraceID string `json:"trace_id,omitempty"`
	// SessionID is the MCP session id (2025-era sessions).
	SessionID string `json:"session_id,omitempty"`
	// Endpoint is the path of the MCP endpoint the call came in on:
	// server.mcp_path or a virtual endpoint's path.
	Endpoint string `json:"endpoint,omitempty"`
	// Subject is the authenticated principal (the token's sub).
	Subject string `json:"subject,omitempty"`
	// Issuer is the issuer of the principal's token: a subject is unique
	// only within its issuer.
	Issuer string `json:"issuer,omitempty"`
	// ClientID is the OAuth client the token was issued to.
	ClientID string `json:"client_id,omitempty"`

	// Tool is the exposed tool name the caller used.
	Tool string `json:"tool,omitempty"`
	// Upstream is the upstream the tool routes to.
	Upstream string `json:"upstream,omitempty"`
	// UpstreamTool is the tool's original name at the upstream.
	UpstreamTool string `json:"upstream_tool,omitempty"`
	// Decision is what the gateway decided.
	Decision Decision `json:"decision,omitempty"`
	// Rule names what refused the call: a kill-switch ID, a rate-limit
	// rule, the missing scopes.
	Rule string `json:"rule,omitempty"`
	// Outcome is how an allowed call ended.
	Outcome Outcome `json:"outcome,omitempty"`
	// ErrorCode is the JSON-RPC error code returned to the caller, if any.
	ErrorCode int `json:"error_code,omitempty"`
	// LatencyMicros is the time from receiving the call to answering it.
	LatencyMicros int64 `json:"latency_us,omitempty"`
	// ServerName and ServerVersion identify the upstream server
	// (serverInfo of its initialize result).
	ServerName    string `json:"server_name,omitempty"`
	ServerVersion string `json:"server_version,omitempty"`
	// ArgsSHA256 is CanonicalSHA256 of the arguments.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Args are the arguments, redacted or in full, when the upstream's
	// audit setting asks for them. Invalid JSON is left out and marked with
	// "args_invalid": true.
	Args json.RawMessage `json:"args,omitempty"`

	// Action is what happened in a kill-switch, drain, reload or breaker
	// event: add, remove, expire, drain, undrain, applied, rejected, or a
	// breaker's new state.
	Action string `json:"action,omitempty"`
	// SwitchID, Scope and Target identify a kill switch (Target is the
	// upstream of a drain).
	SwitchID string `json:"switch_id,omitempty"`
	Scope    string `json:"scope,omitempty"`
	Target   string `json:"target,omitempty"`
	// Reason, Ticket and Actor say why, under which ticket and by whom.
	Reason string `json:"reason,omitempty"`
	Ticket string `json:"ticket,omitempty"`
	Actor  string `json:"actor,omitempty"`
	// Expires is when a kill switch lifts by itself.
	Expires time.Time `json:"expires,omitzero"`
	// Detail holds further facts of an event, such as a reload's config
	// hash or error. Keys are written sorted.
	Detail map[string]string `json:"detail,omitempty"`
}

// AppendJSON appends r as one line of JSON (without the newline) to dst
// and returns the extended buffer. It allocates only to sort Detail keys.
func (r *Record) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"time":"`...)
	dst = r.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","event":`...)
	dst = rawjson.AppendString(dst, string(r.Event))
	dst = appendField(dst, `,"request_id":`, r.RequestID)
	dst = appendField(dst, `,"trace_id":`, r.TraceID)
	dst = appendField(dst, `,"session_id":`, r.SessionID)
	dst = appendField(dst, `,"endpoint":`, r.Endpoint)
	dst = appendField(dst, `,"subject":`, r.Subject)
	dst = appendField(dst, `,"issuer":`, r.Issuer)
	dst = appendField(dst, `,"client_id":`, r.ClientID)
	dst = appendField(dst, `,"tool":`, r.Tool)
	dst = appendField(dst, `,"upstream":`, r.Upstream)
	dst = appendField(dst, `,"upstream_tool":`, r.UpstreamTool)
	dst = appendField(dst, `,"decision":`, string(r.Decision))
	dst = appendField(dst, `,"rule":`, r.Rule)
	dst = appendField(dst, `,"outcome":`, string(r.Outcome))
	if r.ErrorCode != 0 {
		dst = append(dst, `,"error_code":`...)
		dst = strconv.AppendInt(dst, int64(r.ErrorCode), 10)
	}
	if r.LatencyMicros != 0 {
		dst = append(dst, `,"latency_us":`...)
		dst = strconv.AppendInt(dst, r.LatencyMicros, 10)
	}
	dst = appendField(dst, `,"server_name":`, r.ServerName)
	dst = appendField(dst, `,"server_version":`, r.ServerVersion)
	dst = appendField(dst, `,"args_sha256":`, r.ArgsSHA256)
	if len(r.Args) > 0 {
		if json.Valid(r.Args) {
			dst = append(dst, `,"args":`...)
			dst = appendCompact(dst, r.Args)
		} else {
			dst = append(dst, `,"args_invalid":true`...)
		}
	}
	dst = appendField(dst, `,"action":`, r.Action)
	dst = appendField(dst, `,"switch_id":`, r.SwitchID)
	dst = appendField(dst, `,"scope":`, r.Scope)
	dst = appendField(dst, `,"target":`, r.Target)
	dst = appendField(dst, `,"reason":`, r.Reason)
	dst = appendField(dst, `,"ticket":`, r.Ticket)
	dst = appendField(dst, `,"actor":`, r.Actor)
	if !r.Expires.IsZero() {
		dst = append(dst, `,"expires":"`...)
		dst = r.Expires.UTC().AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	if len(r.Detail) > 0 {
		keys := make([]string, 0, len(r.Detail))
		for k := range r.Detail {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, `,"detail":{`...)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = rawjson.AppendString(dst, k)
			dst = append(dst, ':')
			dst = rawjson.AppendString(dst, r.Detail[k])
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

// appendField appends name (with its leading comma and trailing colon) and
// the quoted value when the value is not empty.
func appendField(dst []byte, name, value string) []byte {
	if value == "" {
		return dst
	}
	dst = append(dst, name...)
	return rawjson.AppendString(dst, value)
}

// appendCompact appends valid JSON src without insignificant whitespace,
// so it fits on one line, with invalid UTF-8 in strings replaced by
// U+FFFD.
func appendCompact(dst, src []byte) []byte {
	inString := false
	for i := 0; i < len(src); {
		c := src[i]
		if inString {
			switch {
			case c == '\\':
				dst = append(dst, src[i:i+2]...) // Valid JSON: an escape is complete.
				i += 2
				continue
			case c == '"':
				inString = false
			case c >= utf8.RuneSelf:
				r, size := utf8.DecodeRune(src[i:])
				if r == utf8.RuneError && size == 1 {
					dst = append(dst, `\ufffd`...)
				} else {
					dst = append(dst, src[i:i+size]...)
				}
				i += size
				continue
			}
			dst = append(dst, c)
			i++
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
		case '"':
			inString = true
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
		i++
	}
	return dst
}
