package e2e

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBreakGlassDuringOutage sets a kill switch on a tool of an upstream
// that is down, so that the catalog does not know the tool: the switch is
// accepted with a warning. When the upstream comes back, the tool is
// hidden from its first listing on and calls to it are refused by the
// switch, while the upstream's other tools are served.
func TestBreakGlassDuringOutage(t *testing.T) {
	d := startDemo(t)
	d.orders.stop()
	g := startGateway(t, d.config(""), false)
	c := initialized(t, g.url)
	names := func() []string {
		var out []string
		for _, raw := range rawList(t, c, "tools/list", "tools") {
			n, err := toolName(raw)
			require.NoError(t, err)
			out = append(out, n)
		}
		return out
	}
	require.Eventually(t, func() bool { return slices.Contains(names(), "customers__lookup_customer") }, 30*time.Second, 20*time.Millisecond)
	require.NotContains(t, names(), "orders__list_orders", "orders is down")

	status, sw := adminDo(t, g.base, "", http.MethodPost, "/admin/v1/killswitches",
		`{"scope":"tool","target":"orders__get_order","reason":"bad data during the outage"}`)
	require.Equal(t, http.StatusCreated, status, sw)
	assert.Contains(t, sw["warning"], `no tool in the catalog matches "orders__get_order"`)

	d.orders.start()
	require.Eventually(t, func() bool {
		listed := names()
		require.NotContains(t, listed, "orders__get_order", "the killed tool is never listed")
		return slices.Contains(listed, "orders__list_orders")
	}, 30*time.Second, 5*time.Millisecond, "orders never came back")

	r := c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	require.NotNil(t, r.Error)
	assert.Equal(t, codeKilled, r.Error.Code, r.Error.Message)
	assert.Contains(t, r.Error.Message, "bad data during the outage")
	r = c.call("tools/call", `{"name":"orders__list_orders","arguments":{}}`)
	assert.Nil(t, r.Error, "the upstream's other tools are served")
}
