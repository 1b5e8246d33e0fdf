package backoff_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/mcpgw/mcpgw/internal/backoff"
)

func TestExponential(t *testing.T) {
	t.Parallel()

	lowest := func(int64) int64 { return 0 }
	highest := func(n int64) int64 { return n - 1 }
	tests := []struct {
		name string
		b    backoff.Exponential
		want []time.Duration
	}{
		{
			name: "doubles up to the cap",
			b:    backoff.Exponential{Initial: 100 * time.Millisecond, Max: time.Second},
			want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, time.Second, time.Second},
		},
		{
			name: "a cap below the first delay wins",
			b:    backoff.Exponential{Initial: time.Minute, Max: time.Second},
			want: []time.Duration{time.Second, time.Second},
		},
		{
			name: "jitter at its lowest is half the delay",
			b:    backoff.Exponential{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: true, Rand: lowest},
			want: []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 150 * time.Millisecond},
		},
		{
			name: "jitter at its highest is the whole delay",
			b:    backoff.Exponential{Initial: 100 * time.Millisecond, Max: 300 * time.Millisecond, Jitter: true, Rand: highest},
			want: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond},
		},
		{
			name: "without a cap it stops growing before it overflows",
			b:    backoff.Exponential{Initial: math.MaxInt64 / 3},
			want: []time.Duration{math.MaxInt64 / 3, math.MaxInt64 / 3 * 2, math.MaxInt64, math.MaxInt64},
		},
		{
			name: "the zero value waits nothing",
			want: []time.Duration{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := tt.b
			got := make([]time.Duration, 0, len(tt.want))
			for range tt.want {
				got = append(got, b.Next())
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestExponentialReset(t *testing.T) {
	t.Parallel()

	b := backoff.Exponential{Initial: time.Second, Max: time.Minute}
	b.Next()
	b.Next()
	b.Reset()
	assert.Equal(t, time.Second, b.Next())
}

func TestJitterStaysInRange(t *testing.T) {
	t.Parallel()

	b := backoff.Exponential{Initial: 10 * time.Millisecond, Max: 80 * time.Millisecond, Jitter: true}
	for i := range 100 {
		d := b.Next()
		hi := min(10*time.Millisecond<<min(i, 3), 80*time.Millisecond)
		assert.GreaterOrEqual(t, d, hi/2)
		assert.LessOrEqual(t, d, hi)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()

	assert.True(t, backoff.Wait(t.Context(), time.Nanosecond))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	assert.False(t, backoff.Wait(ctx, time.Hour), "an ended context stops the wait")
}
