// Package backoff is the one place that computes how long to wait before
// trying again: a delay that doubles from a floor up to a cap, optionally
// jittered. It imports only the standard library, so every package may use
// it.
//
// Exponential only computes delays; it never reads the clock. A caller
// waits with Wait, its own timer, or by comparing an injected clock with a
// deadline it computed, so tests control time without sleeping.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Exponential yields the delays of successive retries: Initial, then twice
// the previous delay, capped at Max. With Jitter each delay d is drawn
// uniformly from [d/2, d], so clients that failed together do not retry
// together. Reset starts over after a success. The zero value yields zero
// delays; set Initial. An Exponential is not safe for concurrent use.
type Exponential struct {
	// Initial is the first delay, before jitter.
	Initial time.Duration
	// Max caps a delay before jitter; zero means no cap (a delay still
	// stops growing before it overflows).
	Max time.Duration
	// Jitter draws each delay from [d/2, d] rather than using d.
	Jitter bool
	// Rand returns a uniform random integer in [0, n); nil means
	// math/rand/v2's Int64N. Tests set it to make jitter predictable.
	Rand func(n int64) int64

	cur time.Duration
}

// Next returns the delay before the next try and advances the sequence.
func (b *Exponential) Next() time.Duration {
	switch {
	case b.cur <= 0:
		b.cur = b.Initial
	case b.cur > math.MaxInt64/2:
		b.cur = math.MaxInt64
	default:
		b.cur *= 2
	}
	if b.Max > 0 && b.cur > b.Max {
		b.cur = b.Max
	}
	d := b.cur
	if !b.Jitter || d < 2 {
		return d
	}
	randN := b.Rand
	if randN == nil {
		randN = rand.Int64N
	}
	half := d / 2
	return half + time.Duration(randN(int64(d-half)+1))
}

// Reset makes the next delay Initial again.
func (b *Exponential) Reset() { b.cur = 0 }

// Wait waits d, or less when ctx ends first; it reports whether it waited
// the whole delay.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
