package gateway

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/gateway/catalog"
	"github.com/mcpgw/mcpgw/internal/mcpwire"
	"github.com/mcpgw/mcpgw/telemetry/audit"
)

// blockingWriter blocks every Write until released, announcing that it is
// blocked.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	return len(p), nil
}

func TestAuditGateRefusesDestructiveCallsWhileStuck(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Unix(1_800_000_000, 0).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	w := &blockingWriter{entered: make(chan struct{}), release: make(chan struct{})}
	l, err := audit.Open(&audit.Options{Writers: []io.Writer{w}, StuckAfter: time.Second, Now: clock})
	require.NoError(t, err)
	g := &Gateway{controls: &controls{audit: l}}
	destructive := target{upstream: "orders", original: "cancel_order", name: "orders__cancel_order", hints: catalog.Hints{Destructive: true}}
	harmless := target{upstream: "orders", original: "get_order", name: "orders__get_order", hints: catalog.Hints{ReadOnly: true}}

	r := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	gate := func(tg target, rec *audit.Record) *rpcError {
		return (&call{g: g, r: r, t: tg, rec: rec}).auditGate()
	}
	rec := &audit.Record{}
	require.Nil(t, gate(destructive, rec), "a healthy audit stream lets destructive calls through")

	// The sink blocks; once it has been blocked longer than stuck_after,
	// destructive calls are refused and counted, others pass.
	require.NoError(t, l.Log(t.Context(), &audit.Record{Event: audit.EventToolsCall}))
	<-w.entered
	now.Add(int64(2 * time.Second))
	rerr := gate(destructive, rec)
	require.NotNil(t, rerr)
	assert.Equal(t, mcpwire.CodeAuditUnavailable, rerr.Code)
	assert.Equal(t, audit.DecisionAuditUnavailable, rec.Decision)
	assert.Equal(t, uint64(1), g.AuditRefused())
	assert.Nil(t, gate(harmless, &audit.Record{}), "tools not annotated destructive are not refused")
	assert.Equal(t, uint64(1), g.AuditRefused())

	close(w.release)
	require.NoError(t, l.Close(context.WithoutCancel(t.Context())))
}
