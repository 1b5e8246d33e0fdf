package gateway

import (
	"bytes"
	"errors"

	"github.com/mcpgw/mcpgw/internal/rawjson"
	"github.com/mcpgw/mcpgw/telemetry/audit"
	"github.com/mcpgw/mcpgw/upstream"
)

// anonymous is the principal of an unauthenticated gateway, for rate limits
// and the audit stream.
const anonymous = "anonymous"

// outcomeOf classifies a failed upstream call for the audit stream.
func outcomeOf(err error) audit.Outcome {
	var rpcErr *upstream.RPCError
	var own *rpcError
	switch {
	case errors.As(err, &rpcErr), errors.As(err, &own):
		return audit.OutcomeJSONRPCError
	case errors.Is(err, upstream.ErrTimeout):
		return audit.OutcomeTimeout
	default:
		return audit.OutcomeTransportError
	}
}

// isToolError reports whether a tools/call result has "isError": true.
func isToolError(result []byte) bool {
	if !bytes.Contains(result, []byte(`"isError"`)) {
		return false
	}
	return string(rawjson.Member(result, "isError")) == "true"
}
