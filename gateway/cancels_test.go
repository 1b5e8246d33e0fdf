package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/redistest"
	"github.com/mcpgw/mcpgw/policy"
	"github.com/mcpgw/mcpgw/upstream"
)

// memBus is an in-memory cancelBus shared by the replicas of a test: a
// publish delivers to every listener before it returns, so what a relayed
// cancellation did is visible as soon as the notification's POST answered.
type memBus struct {
	mu        sync.Mutex
	listeners []func(string)
	published []string
}

var _ cancelBus = (*memBus)(nil)

func (b *memBus) publish(_ context.Context, msg string) error {
	b.mu.Lock()
	b.published = append(b.published, msg)
	ls := slices.Clone(b.listeners)
	b.mu.Unlock()
	for _, l := range ls {
		l(msg)
	}
	return nil
}

func (b *memBus) listen(stop <-chan struct{}, ready func(error), deliver func(string)) {
	b.mu.Lock()
	b.listeners = append(b.listeners, deliver)
	b.mu.Unlock()
	ready(nil)
	<-stop
}

func (b *memBus) messages() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.published)
}

// newReplica is a test gateway that shares session key and bus with the
// other replicas of a test, over the same fake upstreams.
func newReplica(tb testing.TB, bus cancelBus, fakes ...*fakeUpstream) *testGateway {
	tb.Helper()
	names := make([]string, len(fakes))
	for i, f := range fakes {
		names[i] = f.name
	}
	yaml := strings.Replace(fakesYAML(names...), "server:\n",
		"server:\n  session_key: {value: \"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\"}\n", 1)
	cfg, err := configs.Parse([]byte(yaml))
	require.NoError(tb, err)
	tg := &testGateway{audit: &auditBuffer{}, ups: make(map[string]*fakeUpstream, len(fakes))}
	for _, f := range fakes {
		tg.ups[f.name] = f
	}
	g, err := New(cfg, &Options{
		auditTo: tg.audit,
		cancels: bus,
		dial: func(u *configs.Upstream, _ *upstream.Options) (Upstream, error) {
			return tg.ups[u.Name], nil
		},
	})
	require.NoError(tb, err)
	tg.Gateway = g
	g.Start()
	tb.Cleanup(g.Close)
	require.True(tb, g.Ready())
	return tg
}

// TestRelayedCancelReachesTheCall: a call runs on replica A; its client's
// notifications/cancelled reaches replica B, which has no such call and
// relays it; A cancels the call, which the upstream sees as its context
// ending, and the client gets -32800 and one audit record. Cancellations
// that do not name that call in that session, for that principal, leave
// it running.
func TestRelayedCancelReachesTheCall(t *testing.T) {
	alice := &authn.Principal{Issuer: "https://idp.invalid", Subject: "alice"}
	bob := &authn.Principal{Issuer: "https://idp.invalid", Subject: "bob"}
	otherAlice := &authn.Principal{Issuer: "https://other-idp.invalid", Subject: "alice"}

	orders := newFake("orders", `{"name":"waits","inputSchema":{"type":"object"}}`)
	running := make(chan context.Context, 1)
	orders.handle = func(ctx context.Context, _ *upstream.Request) (json.RawMessage, error) {
		running <- ctx
		<-ctx.Done()
		return nil, ctx.Err()
	}
	bus := &memBus{}
	a := newReplica(t, bus, orders)
	b := newReplica(t, bus, orders)

	sid := a.session(t, alice)
	bobSID := a.session(t, bob)
	otherSID := a.session(t, otherAlice)
	aliceSecond := a.session(t, alice)

	rq := legacyCall(sid, 9, "orders__waits", `{}`)
	w, done := a.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), alice)
	var upCtx context.Context
	select {
	case upCtx = <-running:
	case <-time.After(guard):
		require.FailNow(t, "the call did not reach the upstream")
	}

	cancelNote := func(id string) string {
		return `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":` + id + `,"reason":"user"}}`
	}
	onB := func(p *authn.Principal, session, body string) int {
		nw, _ := b.post(t, request{principal: p, header: map[string]string{"Mcp-Session-Id": session}, body: body})
		return nw.Code
	}

	// Bob presenting Alice's session id is not served at all.
	assert.Equal(t, http.StatusNotFound, onB(bob, sid, cancelNote("9")))
	// The same request id in another session (Bob's, Alice's second one,
	// the same subject from another issuer) names another request.
	assert.Equal(t, http.StatusAccepted, onB(bob, bobSID, cancelNote("9")))
	assert.Equal(t, http.StatusAccepted, onB(alice, aliceSecond, cancelNote("9")))
	assert.Equal(t, http.StatusAccepted, onB(otherAlice, otherSID, cancelNote("9")))
	// Another request of Alice's session; the same id as a string.
	assert.Equal(t, http.StatusAccepted, onB(alice, sid, cancelNote("10")))
	assert.Equal(t, http.StatusAccepted, onB(alice, sid, cancelNote(`"9"`)))
	// A relayed message naming Alice's session but Bob as its owner, as
	// someone who could write to the channel would forge it.
	forged := cancelOf(&session{sum: idSum(sid), owner: bob.Key()}, json.RawMessage("9"))
	require.NoError(t, bus.publish(t.Context(), forged.encode()))
	require.Len(t, bus.messages(), 6, "each cancellation B found no call for was relayed")
	require.NoError(t, upCtx.Err(), "a cancellation that does not name the call ended it")

	assert.Equal(t, http.StatusAccepted, onB(alice, sid, cancelNote("9")))
	require.Error(t, upCtx.Err(), "the relayed cancellation did not reach the call")
	wait(t, done)
	require.Equal(t, http.StatusOK, w.statusOf(t))
	var ans map[string]any
	require.NoError(t, json.Unmarshal(<-w.writes, &ans))
	assert.InDelta(t, -32800, at(t, ans, "error", "code"), 0)
	for _, m := range bus.messages() {
		assert.NotContains(t, m, sid, "a session id is a credential and never leaves its replica")
	}

	recs := a.auditEvents(t, "tools/call")
	require.Len(t, recs, 1)
	assert.Equal(t, "allowed", recs[0]["decision"])
	assert.Equal(t, "transport_error", recs[0]["outcome"])
	assert.Empty(t, b.auditEvents(t, "tools/call"), "the replica that relayed it ran no call")
}

// TestCancelFoundHereIsNotRelayed: a cancellation whose call runs on the
// replica that took it is not published.
func TestCancelFoundHereIsNotRelayed(t *testing.T) {
	orders := newFake("orders", `{"name":"waits","inputSchema":{"type":"object"}}`)
	entered := make(chan struct{})
	orders.handle = func(ctx context.Context, _ *upstream.Request) (json.RawMessage, error) {
		close(entered)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	bus := &memBus{}
	a := newReplica(t, bus, orders)
	sid := a.session(t, nil)
	rq := legacyCall(sid, 3, "orders__waits", `{}`)
	_, done := a.serveAsync(mcpRequest(t.Context(), http.MethodPost, rq.body, rq.header), nil)
	select {
	case <-entered:
	case <-time.After(guard):
		require.FailNow(t, "the call did not reach the upstream")
	}
	nw, _ := a.post(t, request{header: rq.header, body: `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`})
	assert.Equal(t, http.StatusAccepted, nw.Code)
	wait(t, done)
	assert.Empty(t, bus.messages())
}

func TestDecodeCancel(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	owner := strings.Repeat("cd", 16)
	tests := []struct {
		name string
		msg  string
		ok   bool
		id   string
	}{
		{"number id", "c1 " + sum + " " + owner + " 9", true, "9"},
		{"string id with spaces", "c1 " + sum + " " + owner + ` "a b"`, true, `"a b"`},
		{"unknown version", "c2 " + sum + " " + owner + " 9", false, ""},
		{"short sum", "c1 abcd " + owner + " 9", false, ""},
		{"short owner", "c1 " + sum + " cd 9", false, ""},
		{"no id", "c1 " + sum + " " + owner + " ", false, ""},
		{"empty", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ok := decodeCancel(tt.msg)
			require.Equal(t, tt.ok, ok)
			if ok {
				assert.Equal(t, tt.id, string(c.id))
				assert.Equal(t, tt.msg, c.encode(), "encode and decode agree")
			}
		})
	}
}

// TestRedisCancels: over a real redis-server, a listener that reported
// ready gets every message published after that, its own replica's
// included, in the order they were published.
func TestRedisCancels(t *testing.T) {
	rs := redistest.Start(t)
	rc, err := policy.NewRedisClient(t.Context(), &configs.Redis{URL: rs.URL()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	a, b := newRedisCancels(rc, "t:"), newRedisCancels(rc, "t:")

	stop := make(chan struct{})
	got := make(chan string, 16)
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.listen(stop, func(err error) { ready <- err }, func(m string) { got <- m })
	}()
	select {
	case err := <-ready:
		require.NoError(t, err)
	case <-time.After(guard):
		require.FailNow(t, "the subscription never became ready")
	}
	want := []string{"one", "two", "three"}
	for i, m := range want {
		bus := []*redisCancels{a, b}[i%2]
		require.NoError(t, bus.publish(t.Context(), m))
	}
	for _, w := range want {
		select {
		case m := <-got:
			assert.Equal(t, w, m)
		case <-time.After(guard):
			require.FailNow(t, "a published cancellation was not delivered")
		}
	}
	close(stop)
	wait(t, done)
}
