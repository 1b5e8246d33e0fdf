package upstreams

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestObserverNil(t *testing.T) {
	t.Parallel()
	var obs *Observer
	assert.Nil(t, obs.Cancelled())
	assert.Nil(t, obs.LastHeaders())
	obs.recordCancelled("export_orders")
	obs.recordHeaders(http.Header{"X": {"1"}})

	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	rec := httptest.NewRecorder()
	observe(obs, h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/mcp", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
}

func TestObserverLastHeaders(t *testing.T) {
	t.Parallel()
	obs := NewObserver()
	assert.Nil(t, obs.LastHeaders(), "before any request")

	h := observe(obs, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	// Sequential on purpose: each request replaces the previous record.
	for _, tenant := range []string{"acme", "globex"} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		req.Header.Set("X-Tenant", tenant)
		h.ServeHTTP(httptest.NewRecorder(), req)

		got := obs.LastHeaders()
		require.Equal(t, tenant, got.Get("X-Tenant"))
		got.Set("X-Tenant", "mutated")
		assert.Equal(t, tenant, obs.LastHeaders().Get("X-Tenant"), "LastHeaders must return a copy")
	}
}

func TestObserverCancelledNeverBlocks(t *testing.T) {
	t.Parallel()
	obs := NewObserver()
	for range cancelledBuffer + 10 {
		obs.recordCancelled("export_orders")
	}
	assert.Len(t, obs.Cancelled(), cancelledBuffer)
	assert.Equal(t, "export_orders", <-obs.Cancelled())
}
