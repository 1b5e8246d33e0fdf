package upstreams

import (
	"fmt"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBulkPagination(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		n    int
	}{
		{name: "one tool", n: 1},
		{name: "exactly one page", n: 50},
		{name: "partial last page", n: 120},
		{name: "300 tools", n: 300},
		{name: "four digit names", n: 1001},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, hc := serve(t, BulkHandler(tt.n))
			cs := connectSDK(t, url, hc, nil, "")

			seen := map[string]int{}
			var order []string
			pages := 0
			cursor := ""
			for {
				res, err := cs.ListTools(t.Context(), &sdk.ListToolsParams{Cursor: cursor})
				require.NoError(t, err)
				pages++
				require.LessOrEqual(t, len(res.Tools), bulkPageSize, "page %d", pages)
				for _, tool := range res.Tools {
					seen[tool.Name]++
					order = append(order, tool.Name)
				}
				if res.NextCursor == "" {
					break
				}
				require.LessOrEqual(t, pages, tt.n/bulkPageSize+1, "cursor never ends")
				cursor = res.NextCursor
			}

			require.Len(t, seen, tt.n)
			for name, count := range seen {
				assert.Equal(t, 1, count, "%s listed %d times", name, count)
			}
			width := max(3, len(fmt.Sprint(tt.n-1)))
			assert.Equal(t, fmt.Sprintf("tool_%0*d", width, 0), order[0])
			assert.Equal(t, fmt.Sprintf("tool_%0*d", width, tt.n-1), order[len(order)-1])
			if tt.n > bulkPageSize {
				assert.Greater(t, pages, 1, "a client must have had to follow nextCursor")
			}
		})
	}
}

func TestBulkCallTool(t *testing.T) {
	t.Parallel()
	url, hc := serve(t, BulkHandler(300))
	cs := connectSDK(t, url, hc, nil, "")

	tests := []struct {
		name      string
		tool      string
		args      map[string]any
		want      string
		wantError bool
	}{
		{name: "first", tool: "tool_000", args: map[string]any{"value_000": 1}, want: "tool_000: value_000=1"},
		{name: "last", tool: "tool_299", args: map[string]any{"value_299": 42}, want: "tool_299: value_299=42"},
		{name: "another tool's argument", tool: "tool_007", args: map[string]any{"value_008": 1}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: tt.tool, Arguments: tt.args})
			require.NoError(t, err)
			require.Equal(t, tt.wantError, res.IsError, sdkText(t, res))
			if !tt.wantError {
				assert.Equal(t, tt.want, sdkText(t, res))
			}
		})
	}
}
