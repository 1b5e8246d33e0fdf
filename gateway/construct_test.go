package gateway

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/upstream"
)

// keyYAML is a one-upstream configuration with the given session key.
func keyYAML(key string) string {
	return "server:\n  listen: 127.0.0.1:0\n  session_key: {value: \"" + key + "\"}\nupstreams:\n  - name: orders\n    http:\n      url: http://orders.invalid/mcp\n"
}

// TestNewRefuses: New refuses a configuration that does not validate and
// an upstream it cannot dial.
func TestNewRefuses(t *testing.T) {
	invalid := parseConfig(t, fakesYAML("orders"))
	invalid.Catalog.PageSize = 0
	dial := func(u *configs.Upstream, _ *upstream.Options) (Upstream, error) {
		return nil, errors.New("no route to " + u.Name)
	}
	tests := []struct {
		name string
		cfg  *configs.Config
		dial dialer
		want string
	}{
		{"invalid", invalid, nil, "invalid configuration"},
		{"upstream not dialled", parseConfig(t, fakesYAML("orders")), dial, "no route to orders"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.dial
			if d == nil {
				d = func(u *configs.Upstream, _ *upstream.Options) (Upstream, error) { return newFake(u.Name), nil }
			}
			g, err := New(tt.cfg, &Options{dial: d, auditTo: &auditBuffer{}})
			require.Error(t, err)
			assert.Nil(t, g)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestSessionKeyEncodings: the same 32-byte key, hex or base64 encoded,
// lets one replica resume another's sessions.
func TestSessionKeyEncodings(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i * 7)
	}
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
	origin := newTestGateway(t, keyYAML(hex.EncodeToString(key)), orders)
	sid := origin.session(t, nil)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(key),
		base64.RawStdEncoding.EncodeToString(key),
		base64.URLEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key),
	} {
		replica := newTestGateway(t, keyYAML(enc), orders)
		w, _ := replica.post(t, legacyRequest(sid, 1, "tools/list", `{}`))
		assert.Equal(t, http.StatusOK, w.Code, "key %s", enc)
	}
	other := newTestGateway(t, keyYAML(hex.EncodeToString(make([]byte, 32))), orders)
	w, _ := other.post(t, legacyRequest(sid, 1, "tools/list", `{}`))
	assert.Equal(t, http.StatusNotFound, w.Code, "another key")
}

// idleListener is a net.Listener without a socket: Accept waits until it
// is closed, or fails at once with err.
type idleListener struct {
	err    error
	closed chan struct{}
	once   sync.Once
}

func (l *idleListener) Accept() (net.Conn, error) {
	if l.err != nil {
		return nil, l.err
	}
	<-l.closed
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// TestServeShutsDown: Serve returns when its context ends, after draining
// (new calls refused) and closing the upstreams; a listener that fails
// ends Serve with its error.
func TestServeShutsDown(t *testing.T) {
	orders := newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
	tg := buildGateway(t, fakesYAML("orders"), nil, orders)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- tg.Serve(ctx, &idleListener{closed: make(chan struct{})}) }()
	cancel()
	var err error
	select {
	case err = <-errc:
	case <-time.After(guard):
		require.FailNow(t, "Serve did not return")
	}
	require.NoError(t, err)
	assert.True(t, tg.draining.Load())
	assert.Equal(t, int32(1), orders.closed.Load(), "the upstreams are closed")
	w, _ := tg.post(t, modernCall(1, "orders__get_order", `{}`))
	assert.Equal(t, -32053, errorCode(t, w))

	boom := errors.New("accept failed")
	failing := newLiveFake("orders", toolsCatalog(`{"name":"get_order","inputSchema":{"type":"object"}}`))
	tg2 := buildGateway(t, fakesYAML("orders"), nil, failing)
	err = tg2.Serve(t.Context(), &idleListener{err: boom, closed: make(chan struct{})})
	require.ErrorIs(t, err, boom)
	assert.Equal(t, int32(1), failing.closed.Load())
}

// TestKillSwitchesSurviveARestart: with policy.kill_switches.state_file,
// kill switches and drains set on one gateway hold on the next one.
func TestKillSwitchesSurviveARestart(t *testing.T) {
	state := filepath.Join(t.TempDir(), "killswitches.json")
	yaml := fakesYAML("orders", "payments") + "policy:\n  kill_switches:\n    state_file: " + state + "\n"
	fakes := func() []Upstream {
		return []Upstream{
			newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`),
			newFake("payments", `{"name":"refund","inputSchema":{"type":"object"}}`),
		}
	}
	first := buildGateway(t, yaml, nil, fakes()...)
	w := first.do(t, http.MethodPost, "/admin/v1/killswitches", `{"scope":"upstream","target":"payments","reason":"fraud"}`, nil)
	require.Equal(t, http.StatusCreated, w.Code, w.Body.String())
	w = first.do(t, http.MethodPost, "/admin/v1/upstreams/orders/drain", `{"reason":"migration"}`, nil)
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	first.Close()

	second := buildGateway(t, yaml, nil, fakes()...)
	w, _ = second.post(t, modernCall(1, "payments__refund", `{}`))
	assert.Equal(t, -32060, errorCode(t, w))
	assert.Equal(t, "fraud", errorData(t, w)["reason"])
	w, _ = second.post(t, modernCall(2, "orders__get_order", `{}`))
	assert.Equal(t, -32062, errorCode(t, w))
}

// TestAuditArguments: a tools/call record carries the arguments' hash,
// and the arguments themselves as the upstream's audit_arguments says:
// in full, redacted, or not at all.
func TestAuditArguments(t *testing.T) {
	yaml := `server:
  listen: 127.0.0.1:0
upstreams:
  - name: full
    audit_arguments: full
    http:
      url: http://full.invalid/mcp
  - name: redacted
    audit_arguments: redacted
    http:
      url: http://redacted.invalid/mcp
  - name: none
    http:
      url: http://none.invalid/mcp
`
	tool := `{"name":"t","inputSchema":{"type":"object"}}`
	tg := newTestGateway(t, yaml, newFake("full", tool), newFake("redacted", tool), newFake("none", tool))
	args := `{"card":"4111","amount":12}`
	for _, name := range []string{"full__t", "redacted__t", "none__t"} {
		w, _ := tg.post(t, modernCall(1, name, args))
		require.Zero(t, errorCode(t, w), w.Body.String())
	}
	w, _ := tg.post(t, modernCall(1, "unknown__t", args))
	require.Equal(t, -32602, errorCode(t, w))

	recs := tg.auditEvents(t, "tools/call")
	require.Len(t, recs, 4)
	byTool := map[string]map[string]any{}
	for _, r := range recs {
		tool, _ := r["tool"].(string)
		byTool[tool] = r
	}
	for _, r := range recs {
		assert.Len(t, r["args_sha256"], 64, "%v", r["tool"])
		assert.Equal(t, recs[0]["args_sha256"], r["args_sha256"], "the same arguments hash the same")
	}
	assert.Equal(t, map[string]any{"card": "4111", "amount": 12.0}, byTool["full__t"]["args"])
	assert.Equal(t, map[string]any{"card": "<string>", "amount": "<number>"}, byTool["redacted__t"]["args"])
	assert.NotContains(t, byTool["none__t"], "args")
	assert.NotContains(t, byTool["unknown__t"], "args", "no route: only the hash")
	assert.Equal(t, "invalid", byTool["unknown__t"]["decision"])
}

// TestParamHeadersForwarded: a 2026-07-28 call's Mcp-Param-* headers are
// forwarded to the upstream; a session's call has none to forward.
func TestParamHeadersForwarded(t *testing.T) {
	orders := newFake("orders", `{"name":"get_order","inputSchema":{"type":"object"}}`)
	tg := newTestGateway(t, fakesYAML("orders"), orders)
	rq := modernCall(1, "orders__get_order", `{"region":"eu"}`)
	rq.header["Mcp-Param-Region"] = "eu"
	w, _ := tg.post(t, rq)
	require.Zero(t, errorCode(t, w), w.Body.String())
	req := lastRequest(t, orders)
	assert.Equal(t, "eu", req.Header.Get("Mcp-Param-Region"))
	assert.Empty(t, req.Header.Get("Mcp-Method"), "only Mcp-Param-* headers are forwarded")
	assert.Equal(t, "get_order", req.Tool)
	assert.NotEmpty(t, req.RequestID)

	sid := tg.session(t, nil)
	rq = legacyCall(sid, 2, "orders__get_order", `{}`)
	rq.header["Mcp-Param-Region"] = "eu"
	w, _ = tg.post(t, rq)
	require.Zero(t, errorCode(t, w), w.Body.String())
	assert.Nil(t, lastRequest(t, orders).Header)
}
