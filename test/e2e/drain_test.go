package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDrainLetsCallsInFlightFinish drains an upstream with `mcpgw drain`
// while a slow call to it runs: the call completes with its result, new
// calls to that upstream are refused with the drain error, other upstreams
// are unaffected, and `mcpgw undrain` reverses it. Each refusal and change
// is audited.
func TestDrainLetsCallsInFlightFinish(t *testing.T) {
	mcpgwBinary(t) // Built before the clock starts.
	d := startDemo(t)
	g := startGateway(t, d.config(""), true)
	hc := &http.Client{Timeout: 30 * time.Second}
	call := func(tool, args string) rpcResponse {
		t.Helper()
		status, r, err := modernCall(hc, g.url, "", "", tool, args)
		require.NoError(t, err)
		requireAnswer(t, status, r)
		return r
	}

	// 100 steps of 30ms: the call runs for about 3s, well past the drain.
	cancel, done := startSlowExport(t, newSDKClient(t, g.url), 100, 30)
	defer cancel()

	code, out, errOut := mcpgwCLI(t, nil, "drain", "orders", "--reason", "maintenance", "-addr", g.base)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, "upstream orders: drained")

	r := call("orders__get_order", `{"id":"o-1001"}`)
	require.Equal(t, codeDrained, errCode(r), "a new call to a drained upstream is refused")
	assert.Contains(t, r.Error.Message, `"orders" is drained`)
	assert.Equal(t, "orders", errData(t, r)["upstream"])
	require.Nil(t, call("customers__lookup_customer", `{"id":"c-001"}`).Error, "other upstreams are not drained")
	select {
	case err := <-done:
		t.Fatalf("the slow call ended before the drain took effect (%v): nothing was in flight", err)
	default:
	}

	select {
	case err := <-done:
		require.NoError(t, err, "the call in flight completes")
	case <-time.After(60 * time.Second):
		t.Fatal("the call in flight never completed")
	}

	code, out, errOut = mcpgwCLI(t, nil, "drain", "-o", "json", "-addr", g.base, "nope", "--reason", "x")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, errOut, "unknown upstream")
	code, _, errOut = mcpgwCLI(t, nil, "drain", "customers", "-addr", g.base)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "a reason is required")

	code, _, errOut = mcpgwCLI(t, nil, "undrain", "orders", "-addr", g.base)
	require.Equal(t, 0, code, errOut)
	require.Nil(t, call("orders__get_order", `{"id":"o-1001"}`).Error, "undrain puts the upstream back")

	require.NoError(t, g.stop())
	var drained, allowedExport, changes int
	for _, rec := range auditLines(t, g.auditPath) {
		switch {
		case rec["event"] == "drain":
			changes++
			assert.Equal(t, "orders", rec["target"])
			assert.Equal(t, "local-operator", rec["actor"])
		case rec["tool"] == "orders__get_order" && rec["decision"] == "drained":
			drained++
			assert.Equal(t, "drain:orders", rec["rule"])
			assert.InDelta(t, codeDrained, rec["error_code"], 0)
		case rec["tool"] == "orders__export_orders":
			allowedExport++
			assert.Equal(t, "allowed", rec["decision"])
			assert.Equal(t, "ok", rec["outcome"])
		}
	}
	assert.Equal(t, 1, drained)
	assert.Equal(t, 1, allowedExport)
	assert.Equal(t, 2, changes, "drain and undrain")
}
