package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// answer is how failing answers every tools/call: with an HTTP status, a
// content type and a body, or, when reset is set, by dropping the
// connection.
type answer struct {
	status      int
	contentType string
	body        string
	reset       bool
}

// failing wraps an upstream: the rest of the protocol (lists, pings) passes
// through, and each tools/call is answered as the current answer says, or
// passed through too when there is none.
type failing struct {
	next http.Handler
	now  atomic.Pointer[answer]
}

func (f *failing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if a := f.now.Load(); a != nil && bytes.Contains(body, []byte(`"method":"tools/call"`)) {
			if a.reset {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return
			}
			w.Header().Set("Content-Type", a.contentType)
			w.WriteHeader(a.status)
			_, _ = io.WriteString(w, a.body)
			return
		}
	}
	f.next.ServeHTTP(w, r)
}

// TestUpstreamErrorsByCause answers tools/call from a real upstream's
// address in every way an upstream can fail, and checks what the client
// gets and what the breaker makes of it: an upstream's JSON-RPC error body
// is relayed whatever the status; a bare 4xx is -32070 and does not count
// against the breaker; a 5xx and a reset connection do. (A 404 to a
// request with a session id means the session is gone, basic/transports,
// so it is left out here.)
func TestUpstreamErrorsByCause(t *testing.T) {
	f := &failing{}
	orders := startServer(t, func() http.Handler {
		f.next = upstreams.OrdersHandler(nil)
		return f
	})
	g := startGateway(t, fmt.Sprintf(`
server: {listen: 127.0.0.1:0}
upstreams:
  - name: orders
    http: {url: %q}
    breaker: {failures: 2, window: 1h, open_for: 1h, scope: upstream}
    retry: {attempts: 1}
`, orders.url()), true)
	c := initialized(t, g.url)
	call := func() rpcResponse {
		return c.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	}

	rpcBody := `{"jsonrpc":"2.0","id":%s,"error":{"code":-32602,"message":"no such argument","data":{"field":"id"}}}`
	relayed := []struct {
		name   string
		status int
	}{
		{"400 with a JSON-RPC error", http.StatusBadRequest},
		{"409 with a JSON-RPC error", http.StatusConflict},
		{"422 with a JSON-RPC error", http.StatusUnprocessableEntity},
	}
	for _, tt := range relayed {
		t.Run(tt.name, func(t *testing.T) {
			// The id is the gateway's own; a JSON-RPC error without a
			// usable id is still the upstream's answer.
			f.now.Store(&answer{status: tt.status, contentType: "application/json", body: fmt.Sprintf(rpcBody, "null")})
			r := call()
			require.NotNil(t, r.Error)
			assert.Equal(t, -32602, r.Error.Code)
			assert.Equal(t, "no such argument", r.Error.Message)
			assert.JSONEq(t, `{"field":"id"}`, string(r.Error.Data))
		})
	}
	f.now.Store(nil)
	require.Nil(t, call().Error)
	require.Equal(t, "closed", breakerState(t, g, "orders"))

	t.Run("a bare 4xx is its own code and never opens the breaker", func(t *testing.T) {
		for _, status := range []int{http.StatusBadRequest, http.StatusForbidden, http.StatusConflict, http.StatusBadRequest} {
			f.now.Store(&answer{status: status, contentType: "text/plain", body: "nope"})
			r := call()
			require.NotNil(t, r.Error)
			assert.Equal(t, -32070, r.Error.Code, r.Error.Message)
			assert.Contains(t, string(r.Error.Data), fmt.Sprintf(`"status":%d`, status))
			assert.Contains(t, string(r.Error.Data), `"upstream":"orders"`)
		}
		assert.Equal(t, "closed", breakerState(t, g, "orders"))
	})

	t.Run("a reset and a 5xx open it, a 5xx's JSON-RPC error relayed", func(t *testing.T) {
		f.now.Store(&answer{reset: true})
		r := call()
		require.NotNil(t, r.Error)
		assert.Equal(t, -32050, r.Error.Code, r.Error.Message)
		assert.Equal(t, "closed", breakerState(t, g, "orders"), "one failure of two")
		f.now.Store(&answer{status: http.StatusServiceUnavailable, contentType: "application/json", body: fmt.Sprintf(rpcBody, "null")})
		r = call()
		require.NotNil(t, r.Error)
		assert.Equal(t, -32602, r.Error.Code, r.Error.Message)
		assert.Equal(t, "open", breakerState(t, g, "orders"))
	})
}
