package policy

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// routines runs background loops. A loop that panics is logged and
// started again until the context ends; wait returns when every loop has.
type routines struct {
	wg     sync.WaitGroup
	logger *slog.Logger
}

// restartDelay keeps a loop that panics at once from spinning.
const restartDelay = 100 * time.Millisecond

// start runs fn in a goroutine, restarting it after a panic (not after a
// normal return) while ctx is not done.
func (r *routines) start(ctx context.Context, name string, fn func(ctx context.Context)) {
	r.wg.Go(func() {
		for ctx.Err() == nil {
			if !r.runOnce(ctx, name, fn) {
				return
			}
			t := time.NewTimer(restartDelay)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	})
}

// runOnce runs fn and reports whether it panicked.
func (r *routines) runOnce(ctx context.Context, name string, fn func(ctx context.Context)) (panicked bool) {
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			r.logger.ErrorContext(ctx, "background loop panicked", "loop", name, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	fn(ctx)
	return false
}

func (r *routines) wait() { r.wg.Wait() }
