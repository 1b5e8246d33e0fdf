package configs

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/spf13/viper"
)

// Watch calls onChange after the file at path changes, debounced: a burst
// of writes (an editor's save, a Kubernetes ConfigMap update, which swaps
// the ..data symlink of the mounted directory) produces one call, debounce
// after the last event. viper's watcher is only the trigger: onChange is
// expected to load the file itself (Load), so that a reload validates
// exactly as `mcpgw validate` does. Watch returns at once; it stops calling
// onChange when ctx ends.
//
// viper's watcher cannot be stopped and ends when the file itself is
// removed (an editor that deletes and recreates); SIGHUP still reloads.
func Watch(ctx context.Context, path string, debounce time.Duration, onChange func()) {
	events := make(chan struct{}, 1)
	v := viper.NewWithOptions(viper.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	v.SetConfigFile(path)
	v.SetConfigType("yaml")
	v.OnConfigChange(func(fsnotify.Event) {
		select {
		case events <- struct{}{}:
		default:
		}
	})
	v.WatchConfig()
	go func() {
		var fire <-chan time.Time
		var timer *time.Timer
		for {
			select {
			case <-ctx.Done():
				if timer != nil {
					timer.Stop()
				}
				return
			case <-events:
				if timer == nil {
					timer = time.NewTimer(debounce)
				} else {
					timer.Reset(debounce)
				}
				fire = timer.C
			case <-fire:
				fire = nil
				onChange()
			}
		}
	}()
}
