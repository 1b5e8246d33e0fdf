package upstreams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"
)

// bulkPageSize is how many tools one tools/list page of the bulk server
// holds.
const bulkPageSize = 50

// BulkHandler returns the bulk server (mcp-go) over Streamable HTTP, serving
// at any path. It has n tools named tool_000, tool_001, … (zero-padded to at
// least three digits, so names sort in index order), each with a small
// schema of its own, and pages tools/list 50 tools at a time, so a client
// must follow nextCursor to see them all. n below 1 gives no tools.
//
// When n is a multiple of 50 the last full page still carries a nextCursor,
// and the page after it is empty.
func BulkHandler(n int) http.Handler {
	srv := mcpserver.NewMCPServer("bulk", "1.0.0",
		mcpserver.WithToolCapabilities(false),
		mcpserver.WithPaginationLimit(bulkPageSize),
		mcpserver.WithInputSchemaValidation(),
		mcpserver.WithRecovery(),
	)
	width := max(3, len(strconv.Itoa(n-1)))
	for i := range n {
		name := fmt.Sprintf("tool_%0*d", width, i)
		param := fmt.Sprintf("value_%0*d", width, i)
		schema := fmt.Sprintf(`{"type":"object","properties":{%q:{"type":"integer","description":"Input number %d."}},"required":[%q],"additionalProperties":false}`,
			param, i, param)
		tool := mcp.NewToolWithRawSchema(name, fmt.Sprintf("Bulk tool number %d; echoes its input.", i), json.RawMessage(schema))
		tool.Annotations = readOnlyAnnotations("")
		srv.AddTool(tool, func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(fmt.Sprintf("%s: %s=%d", name, param, req.GetInt(param, 0))), nil
		})
	}
	return mcpserver.NewStreamableHTTPServer(srv)
}
