package upstreams

import (
	"net/http"
	"sync"
)

// cancelledBuffer bounds how many cancellation records an Observer keeps
// before it starts dropping them; tests read them far sooner than that.
const cancelledBuffer = 64

// Observer records what an upstream saw, so tests can assert on it.
//
// A nil *Observer is valid: it records nothing, LastHeaders returns nil and
// Cancelled returns a nil channel. All methods are safe for concurrent use.
type Observer struct {
	cancelled chan string

	mu      sync.Mutex
	headers http.Header
}

// NewObserver returns an Observer that has seen nothing yet.
func NewObserver() *Observer {
	return &Observer{cancelled: make(chan string, cancelledBuffer)}
}

// Cancelled returns a channel that receives the tool name each time a tool
// call's context was cancelled while the tool was running.
//
// The channel is buffered and written without blocking, so records beyond
// its capacity are dropped rather than stalling the server.
func (o *Observer) Cancelled() <-chan string {
	if o == nil {
		return nil
	}
	return o.cancelled
}

// LastHeaders returns a copy of the HTTP headers of the most recent request
// the server saw, or nil if it has seen none (or serves stdio).
//
// "Most recent" counts every HTTP request, including a client's standalone
// GET stream and its closing DELETE.
func (o *Observer) LastHeaders() http.Header {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.headers.Clone()
}

// recordCancelled notes that tool's context was cancelled mid-call.
func (o *Observer) recordCancelled(tool string) {
	if o == nil {
		return
	}
	select {
	case o.cancelled <- tool:
	default:
	}
}

// recordHeaders notes the headers of an incoming request.
func (o *Observer) recordHeaders(h http.Header) {
	if o == nil {
		return
	}
	c := h.Clone()
	o.mu.Lock()
	o.headers = c
	o.mu.Unlock()
}

// observe wraps next so that obs records every request's headers before
// next serves it.
func observe(obs *Observer, next http.Handler) http.Handler {
	if obs == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		obs.recordHeaders(r.Header)
		next.ServeHTTP(w, r)
	})
}
