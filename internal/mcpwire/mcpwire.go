// Package mcpwire holds the facts of the Model Context Protocol wire that
// every mcpgw package shares, each defined once: protocol versions, method
// and notification names, HTTP header names, reserved _meta keys, and the
// JSON-RPC, MCP and gateway error codes. It imports only the standard
// library, so any package may import it.
//
// The references are to the MCP specification at
// https://modelcontextprotocol.io/specification/<version>/..., and to
// JSON-RPC 2.0 at https://www.jsonrpc.org/specification.
package mcpwire

// Protocol versions. Versions are dates and order as strings.
const (
	// Version20260728 is the stateless revision: no initialize and no
	// session; every request carries its version and client capabilities
	// in params._meta and mirrors its routing fields in headers
	// (2026-07-28: changelog, basic/transports).
	Version20260728 = "2026-07-28"
	// Version20251125 is the newest session-era revision, and the newest
	// version initialize can negotiate.
	Version20251125 = "2025-11-25"
	Version20250618 = "2025-06-18"
	Version20250326 = "2025-03-26"
	Version20241105 = "2024-11-05"
)

// ModernVersions are the stateless protocol versions, newest first.
func ModernVersions() []string { return []string{Version20260728} }

// LegacyVersions are the session-era versions, newest first: initialize
// negotiates the client's version when it is one of these, and the newest
// otherwise (basic/lifecycle, "Version Negotiation").
func LegacyVersions() []string {
	return []string{Version20251125, Version20250618, Version20250326, Version20241105}
}

// SupportedVersions is every version, newest first: what an
// unsupported-version error and server/discover advertise.
func SupportedVersions() []string { return append(ModernVersions(), LegacyVersions()...) }

// VersionIndex is v's index in SupportedVersions, or -1, without
// allocating: metrics keep per-version label sets in arrays.
func VersionIndex(v string) int {
	switch v {
	case Version20260728:
		return 0
	case Version20251125:
		return 1
	case Version20250618:
		return 2
	case Version20250326:
		return 3
	case Version20241105:
		return 4
	default:
		return -1
	}
}

// IsModern reports whether v names the stateless era.
func IsModern(v string) bool { return v >= Version20260728 }

// Methods (server/*, client/*, basic/*).
const (
	MethodInitialize      = "initialize"
	MethodPing            = "ping"
	MethodDiscover        = "server/discover" // 2026-07-28, basic/lifecycle
	MethodToolsList       = "tools/list"
	MethodToolsCall       = "tools/call"
	MethodResourcesList   = "resources/list"
	MethodResourcesRead   = "resources/read"
	MethodTemplatesList   = "resources/templates/list"
	MethodSubscribe       = "resources/subscribe"
	MethodUnsubscribe     = "resources/unsubscribe"
	MethodPromptsList     = "prompts/list"
	MethodPromptsGet      = "prompts/get"
	MethodComplete        = "completion/complete"
	MethodSetLevel        = "logging/setLevel"
	MethodListen          = "subscriptions/listen" // 2026-07-28, basic/utilities/subscriptions
	MethodElicit          = "elicitation/create"
	MethodCreateMessage   = "sampling/createMessage"
	MethodRootsList       = "roots/list"
	RefPrompt             = "ref/prompt"   // completion/complete params.ref.type
	RefResource           = "ref/resource" // completion/complete params.ref.type
	ResultInputRequired   = "input_required"
	ResultTypeKey         = "resultType"
	CapabilityElicitation = "elicitation"
	CapabilitySampling    = "sampling"
	CapabilityRoots       = "roots"
)

// MCP Apps, the io.modelcontextprotocol/ui extension (SEP-1865; ext-apps
// specification/2026-01-26/apps.mdx): servers link tools to ui:// HTML
// resources that hosts render as interactive views. Extensions are
// negotiated under "extensions" in ClientCapabilities and
// ServerCapabilities (SEP-2133).
const (
	// CapabilityExtensions is the member of ClientCapabilities and
	// ServerCapabilities that maps extension identifiers to settings.
	CapabilityExtensions = "extensions"
	// ExtensionUI identifies MCP Apps.
	ExtensionUI = "io.modelcontextprotocol/ui"
	// MimeTypeMCPApp is the MIME type of an MCP Apps HTML view; a host
	// declares it in its extension settings' mimeTypes.
	MimeTypeMCPApp = "text/html;profile=mcp-app"
	// UIScheme starts the URI of every UI resource ("URI MUST start with
	// ui:// scheme").
	UIScheme = "ui://"
	// MetaUI is the tool's _meta member holding McpUiToolMeta
	// (resourceUri, visibility).
	MetaUI = "ui"
	// MetaUIResourceURI is McpUiToolMeta's member naming the view's
	// ui:// resource.
	MetaUIResourceURI = "resourceUri"
	// MetaUIVisibility is McpUiToolMeta's member listing who may call
	// the tool: VisibilityModel, VisibilityApp; both when absent.
	MetaUIVisibility = "visibility"
	// MetaUIResourceURIFlat is the deprecated flat _meta key of the
	// same URI ("Use ui.resourceUri instead").
	MetaUIResourceURIFlat = "ui/resourceUri"
	// VisibilityModel: the agent sees and may call the tool.
	VisibilityModel = "model"
	// VisibilityApp: views of the tool's own server may call it.
	VisibilityApp = "app"
)

// Notifications.
const (
	NotifyInitialized               = "notifications/initialized"
	NotifyCancelled                 = "notifications/cancelled"
	NotifyProgress                  = "notifications/progress"
	NotifyMessage                   = "notifications/message"
	NotifyResourceUpdated           = "notifications/resources/updated"
	NotifyToolsChanged              = "notifications/tools/list_changed"
	NotifyPromptsChanged            = "notifications/prompts/list_changed"
	NotifyResourcesChanged          = "notifications/resources/list_changed"
	NotifyRootsChanged              = "notifications/roots/list_changed"
	NotifySubscriptionsAcknowledged = "notifications/subscriptions/acknowledged"
)

// HTTP headers of the Streamable HTTP transport (basic/transports).
const (
	HeaderProtocolVersion = "Mcp-Protocol-Version"
	HeaderSessionID       = "Mcp-Session-Id"
	// HeaderMethod and HeaderName mirror the body's method and its
	// params.name or params.uri in 2026-07-28, "so that intermediaries can
	// route and inspect requests without parsing the body" ("Request
	// Metadata"); a mismatch is CodeHeaderMismatch.
	HeaderMethod = "Mcp-Method"
	HeaderName   = "Mcp-Name"
	// HeaderParamPrefix starts the headers that mirror tool arguments a
	// tool's x-mcp-header binds (SEP-2243).
	HeaderParamPrefix = "Mcp-Param-"
	HeaderLastEventID = "Last-Event-Id"
)

// Reserved params._meta keys.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	// MetaServerInfo carries the server's Implementation in a result's
	// _meta (2026-07-28, SEP-2575).
	MetaServerInfo     = "io.modelcontextprotocol/serverInfo"
	MetaSubscriptionID = "io.modelcontextprotocol/subscriptionId"
	MetaProgressToken  = "progressToken"
	// MetaLogLevel carries, in each 2026-07-28 request's _meta, the
	// minimum level of the log messages the client wants: that revision
	// has no session for logging/setLevel to set (SEP-2575; go-sdk's and
	// mcp-go's MetaKeyLogLevel).
	MetaLogLevel = "io.modelcontextprotocol/logLevel"
)

// LogLevelRank ranks a logging level of notifications/message and
// logging/setLevel, the RFC 5424 severities from "debug" (0) to
// "emergency" (7) (2025-11-25 server/utilities/logging, "Log Levels"); -1
// for a name that is not one.
func LogLevelRank(level string) int {
	switch level {
	case "debug":
		return 0
	case "info":
		return 1
	case "notice":
		return 2
	case "warning":
		return 3
	case "error":
		return 4
	case "critical":
		return 5
	case "alert":
		return 6
	case "emergency":
		return 7
	default:
		return -1
	}
}

// JSON-RPC 2.0 error codes (JSON-RPC 2.0, "Error object").
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// MCP error codes.
const (
	// CodeSessionNotFound answers an unknown or expired Mcp-Session-Id
	// (with HTTP 404), as the reference SDKs do.
	CodeSessionNotFound = -32001
	// CodeResourceNotFound is the code of an unknown resource URI
	// (server/resources, "Error Handling").
	CodeResourceNotFound = -32002
	// CodeHeaderMismatch: a header mirrored from the body is missing,
	// malformed, or disagrees with the body (2026-07-28, basic/transports).
	CodeHeaderMismatch = -32020
	// CodeMissingCapability: the request needs a client capability the
	// client did not declare (2026-07-28, basic/patterns/mrtr).
	CodeMissingCapability = -32021
	// CodeUnsupportedVersion: MCP-Protocol-Version names a version the
	// endpoint does not serve; data.supported lists those it does
	// (2026-07-28, basic/versioning).
	CodeUnsupportedVersion = -32022
	// CodeRequestCancelled: the client cancelled the request.
	CodeRequestCancelled = -32800
)

// The gateway's own error codes. Gateway refusals use -32050 … -32099, so
// that hosts can tell them from upstream application errors; the README
// and docs/operations.md document each one.
const (
	// CodeUpstreamUnavailable: the upstream owning the target is down, or
	// its transport failed.
	CodeUpstreamUnavailable = -32050
	// CodeUpstreamBadResponse: the upstream answered with something that
	// is not a valid JSON-RPC response, or one over the size limit.
	CodeUpstreamBadResponse = -32051
	// CodeUpstreamTimeout: the upstream did not answer within its timeout.
	CodeUpstreamTimeout = -32052
	// CodeShuttingDown: the gateway is draining and takes no new calls.
	CodeShuttingDown = -32053
	// CodeKilled: a kill switch stops the call; data carries its reason,
	// ticket and id.
	CodeKilled = -32060
	// CodeRateLimited: a rate limit refused the call; data.retryAfterMs.
	CodeRateLimited = -32061
	// CodeDrained: the upstream is drained for maintenance.
	CodeDrained = -32062
	// CodeInsufficientScope marks a refusal answered with HTTP 403 and a
	// step-up challenge rather than a JSON-RPC error.
	CodeInsufficientScope = -32063
	// CodeCircuitOpen: the upstream's circuit breaker is open (or
	// half-open with its probes in flight); the call was not sent. data:
	// upstream, state, retryAfterMs.
	CodeCircuitOpen = -32064
	// CodeUpstreamBusy: the upstream's bulkhead is full; the call was not
	// sent. data: upstream, retryAfterMs.
	CodeUpstreamBusy = -32065
	// CodeAuditUnavailable: the tool is annotated destructiveHint and the
	// audit stream is stuck or failing, so the call is not run unaudited.
	// data: tool, reason.
	CodeAuditUnavailable = -32066
	// CodeInputGone: a retry's requestState names a held upstream request
	// that is no longer held (it timed out, was answered, or is held by
	// another replica). data.reason says which applies when known.
	CodeInputGone = -32067
	// CodePolicyDenied: a policy rule (policy.rules, CEL) refuses the
	// call. data: rule, tool, upstream, and error when the rule failed to
	// evaluate.
	CodePolicyDenied = -32068
	// CodeQuarantined: the tool's contract no longer matches the one
	// pinned in the lock file and pinning is enforced, so the tool is
	// held until an operator approves it. data: tool, upstream, change,
	// pinned and current digests.
	CodeQuarantined = -32069
	// CodeUpstreamRejected: the upstream refused the request with an HTTP
	// 4xx status and no JSON-RPC error in its body (an upstream's own
	// JSON-RPC error is relayed as it is). The upstream is alive and judged
	// the request, so this does not count against its circuit breaker.
	// data: upstream, status.
	CodeUpstreamRejected = -32070
)

// ResultComplete is the resultType of a final result. Every 2026-07-28
// result carries resultType, and a client treats one without it as
// complete (SEP-2322); ResultInputRequired is the other core value.
const ResultComplete = "complete"
