package upstream

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// bulkhead bounds the calls in flight to one upstream. Its slots are a
// buffered channel, so the fast path (a free slot) is one channel send and
// takes no lock; only a call that finds every slot taken starts a timer and
// waits, at most timeout, in a queue of at most maxQueued calls.
type bulkhead struct {
	slots     chan struct{}
	maxQueued int64
	queued    atomic.Int64
	timeout   time.Duration
}

func newBulkhead(maxConcurrent, maxQueued int, timeout time.Duration) *bulkhead {
	return &bulkhead{slots: make(chan struct{}, max(maxConcurrent, 1)), maxQueued: int64(maxQueued), timeout: timeout}
}

// acquire takes a slot. It returns errQueueFull or errQueueTimeout when the
// call is refused, ctx's error when the caller gave up first.
func (b *bulkhead) acquire(ctx context.Context) error {
	select {
	case b.slots <- struct{}{}:
		return nil
	default:
	}
	if b.queued.Add(1) > b.maxQueued {
		b.queued.Add(-1)
		return errQueueFull
	}
	defer b.queued.Add(-1)
	t := time.NewTimer(b.timeout)
	defer t.Stop()
	select {
	case b.slots <- struct{}{}:
		return nil
	case <-t.C:
		return errQueueTimeout
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives a slot back.
func (b *bulkhead) release() { <-b.slots }

// inFlight is the number of slots taken.
func (b *bulkhead) inFlight() int { return len(b.slots) }

// waiting is the number of calls queued for a slot.
func (b *bulkhead) waiting() int { return int(max(b.queued.Load(), 0)) }

var (
	errQueueFull    = busyReasonError("the queue of calls waiting for a slot is full")
	errQueueTimeout = busyReasonError("no slot freed up within the queue timeout")
)

type busyReasonError string

func (e busyReasonError) Error() string { return string(e) }

// busy is the error of a call the bulkhead refused, or of a caller that
// gave up while queued.
func (c *Client) busy(err error) error {
	switch {
	case errors.Is(err, errQueueFull), errors.Is(err, errQueueTimeout):
		e := c.fail(ErrBusy, "", err)
		e.RetryAfter = c.bulk.timeout
		return e
	default:
		return &Error{Upstream: c.name, Detail: "call cancelled while waiting for a slot", Err: err}
	}
}

// Load is what is in flight to an upstream.
type Load struct {
	// InFlight is the number of calls holding a bulkhead slot.
	InFlight int `json:"in_flight"`
	// Queued is the number of calls waiting for one.
	Queued int `json:"queued"`
	// MaxConcurrent is the bulkhead's limit.
	MaxConcurrent int `json:"max_concurrent"`
	// PoolStats counts the pooled 2025-era sessions carrying calls
	// (pool.go); zero when the upstream is not called in sessions.
	PoolStats
}

// Load returns the calls in flight and queued. It takes no lock.
func (c *Client) Load() Load {
	return Load{InFlight: c.bulk.inFlight(), Queued: c.bulk.waiting(), MaxConcurrent: cap(c.bulk.slots), PoolStats: c.pool.stats()}
}
