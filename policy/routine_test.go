package policy

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRoutinesRecoverPanics(t *testing.T) {
	t.Parallel()

	r := &routines{logger: slog.New(slog.DiscardHandler)}
	var runs atomic.Int32
	r.start(t.Context(), "test", func(context.Context) {
		if runs.Add(1) == 1 {
			panic("boom")
		}
	})
	r.wait()
	assert.Equal(t, int32(2), runs.Load(), "restarted once after the panic, not after the normal return")

	ctx, cancel := context.WithCancel(t.Context())
	r.start(ctx, "blocking", func(ctx context.Context) { <-ctx.Done() })
	cancel()
	r.wait()
}
