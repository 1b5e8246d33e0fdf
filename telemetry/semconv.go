package telemetry

import "go.opentelemetry.io/otel/attribute"

// Attribute keys of the OpenTelemetry semantic conventions for MCP
// (semantic-conventions docs/gen-ai/mcp.md, status Development) and of the
// mcpgw metrics contract. Span attributes and metric labels use the same
// keys; the Prometheus exporter turns dots into underscores.
const (
	// MethodName is the JSON-RPC method: tools/call, resources/read, ...
	MethodName = attribute.Key("mcp.method.name")
	// ToolName is the tool of a tools/call, as exposed by the gateway on
	// the server side and as the upstream knows it on the client side.
	ToolName = attribute.Key("gen_ai.tool.name")
	// PromptName is the prompt of a prompts/get.
	PromptName = attribute.Key("gen_ai.prompt.name")
	// OperationName is execute_tool on tools/call spans, unset otherwise.
	OperationName = attribute.Key("gen_ai.operation.name")
	// SessionID names the 2025-era session. mcpgw records a digest: the
	// session id is a bearer credential.
	SessionID = attribute.Key("mcp.session.id")
	// ProtocolVersion is the MCP version of the exchange.
	ProtocolVersion = attribute.Key("mcp.protocol.version")
	// RequestID is the JSON-RPC id, as its JSON text.
	RequestID = attribute.Key("jsonrpc.request.id")
	// ResourceURI is the resource of a resources/read (spans only: it is
	// not low-cardinality).
	ResourceURI = attribute.Key("mcp.resource.uri")
	// ErrorType is the JSON-RPC error code as a string, tool_error when a
	// tool result has isError, or a class of transport failure.
	ErrorType = attribute.Key("error.type")
	// ResponseStatusCode is the JSON-RPC error code of a failed response.
	ResponseStatusCode = attribute.Key("rpc.response.status_code")
	// ServerAddress and ServerPort name the upstream of a client span.
	ServerAddress = attribute.Key("server.address")
	ServerPort    = attribute.Key("server.port")
	// NetworkTransport is tcp for HTTP upstreams, pipe for stdio.
	NetworkTransport = attribute.Key("network.transport")

	// Upstream is the configured upstream name (mcpgw label).
	Upstream = attribute.Key("upstream")
	// Decision is the outcome of the policy steps of a tools/call (mcpgw
	// label): allowed, denied, limited, killed, circuit_open, drained,
	// invalid.
	Decision = attribute.Key("decision")
	// ContractTool is the exposed tool name of mcpgw.tool_contract.changes
	// (mcpgw label); PinningMode its upstream's pinning mode (warn,
	// enforce).
	ContractTool = attribute.Key("tool")
	PinningMode  = attribute.Key("mode")
)

// Values of gen_ai.operation.name and error.type used by mcpgw.
const (
	OperationExecuteTool = "execute_tool"
	ErrorTool            = "tool_error"
)

// Decisions counted by mcpgw.decisions.
const (
	DecisionAllowed     = "allowed"
	DecisionDenied      = "denied"
	DecisionLimited     = "limited"
	DecisionKilled      = "killed"
	DecisionCircuitOpen = "circuit_open"
	DecisionDrained     = "drained"
	DecisionInvalid     = "invalid"
	// DecisionBusy: the upstream's bulkhead was full.
	DecisionBusy = "busy"
	// DecisionAuditUnavailable: a destructive tool refused while the
	// audit stream was stuck.
	DecisionAuditUnavailable = "audit_unavailable"
	// DecisionUnavailable: the upstream was unavailable (or the gateway
	// shutting down).
	DecisionUnavailable = "unavailable"
	// DecisionQuarantined: the tool's pinned contract changed and pinning
	// is enforced.
	DecisionQuarantined = "quarantined"
)

// Breaker states reported by mcpgw.breaker.state.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half_open"
	BreakerOpen     = "open"
)

// DurationBuckets returns the explicit bucket boundaries, in seconds, of the
// MCP operation duration histograms (semconv advice for
// mcp.server.operation.duration and mcp.client.operation.duration).
func DurationBuckets() []float64 {
	return []float64{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300}
}

// ServerAttributes is the label set of one mcp.server.operation.duration
// series. tool must come from the catalog ("" otherwise), never from raw
// input.
func ServerAttributes(method, tool, protocolVersion, errorType string) attribute.Set {
	return attribute.NewSet(MethodName.String(method), ToolName.String(tool),
		ProtocolVersion.String(protocolVersion), ErrorType.String(errorType))
}

// ClientAttributes is the label set of one mcp.client.operation.duration
// series.
func ClientAttributes(method, upstream, errorType string) attribute.Set {
	return attribute.NewSet(MethodName.String(method), Upstream.String(upstream), ErrorType.String(errorType))
}

// DecisionAttributes is the label set of one mcpgw.decisions series.
func DecisionAttributes(decision, upstream string) attribute.Set {
	return attribute.NewSet(Decision.String(decision), Upstream.String(upstream))
}
