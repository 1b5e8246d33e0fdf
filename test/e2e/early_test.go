package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHeaderFirstRefusal: a modern tools/call is admitted on its headers.
// A rate-limited one is refused with 429 and Retry-After before its body is
// read (the body here is not even JSON), a mismatching body of an admitted
// one still gets -32020, and every request writes exactly one audit record.
func TestHeaderFirstRefusal(t *testing.T) {
	d := startDemo(t)
	g := startGateway(t, d.config(`
policy:
  rate_limits:
    per_principal_tool: {rate: 0.001, burst: 2}
`), true)
	call := func(name string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":{"id":"o-1001"},%s}}`, name, modernMeta)
	}

	status, r := newRawClient(t, g.url).modern(modernRequest{method: "tools/call", name: "orders__get_order", body: call("orders__get_order")})
	require.Equal(t, http.StatusOK, status)
	require.Nil(t, r.Error)

	// Admitted on the headers, but the body names another tool.
	status, r = newRawClient(t, g.url).modern(modernRequest{method: "tools/call", name: "orders__get_order", body: call("orders__cancel_order")})
	require.Equal(t, http.StatusBadRequest, status)
	require.NotNil(t, r.Error)
	assert.Equal(t, -32020, r.Error.Code)

	c := newRawClient(t, g.url)
	c.header.Set("Mcp-Protocol-Version", era2026)
	c.header.Set("Mcp-Method", "tools/call")
	c.header.Set("Mcp-Name", "orders__get_order")
	resp, body := c.post("this body is never read")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, string(body))
	assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	assert.Contains(t, string(body), `"code":-32061`)
	assert.Contains(t, string(body), `"retryAfterMs"`)

	g.Close()
	data, err := readFile(g.auditPath)
	require.NoError(t, err)
	var lines []string
	for l := range strings.SplitSeq(data, "\n") {
		if strings.Contains(l, `"tool":"orders__get_order"`) {
			lines = append(lines, l)
		}
	}
	require.Len(t, lines, 3, data)
	assert.Contains(t, lines[0], `"decision":"allowed"`)
	assert.Contains(t, lines[0], `"outcome":"ok"`)
	assert.Contains(t, lines[1], `"decision":"allowed"`)
	assert.Contains(t, lines[1], `"error_code":-32600`)
	assert.Contains(t, lines[2], `"decision":"limited"`)
	assert.NotContains(t, lines[2], `"args_sha256"`, "the arguments were never read")
}
