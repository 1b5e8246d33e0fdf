package configs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchRetry is how often Watch tries again to watch a directory it could
// not watch (it was missing, or inotify ran out of watches).
const watchRetry = 5 * time.Second

// Watch calls onChange after the file at path changes, debounced: a burst
// of events (an editor's save, a deploy tool's rm then cp, a Kubernetes
// ConfigMap update, which swaps the ..data symlink of the mounted
// directory) produces one call, debounce after the last event. The watch
// is only the trigger: onChange is expected to load the file itself
// (Load), so that a reload validates exactly as `mcpgw validate` does, and
// to log its outcome. Watch returns at once; it stops when ctx ends.
//
// Watch watches directories, never the file itself, so that it survives
// the file being renamed over, removed and recreated, or reached through
// a symlink that is swapped: it watches the directory of path and the
// directory of the file path resolves to, and re-resolves the symlinks on
// every event. A file event is one whose name is path or the resolved
// file, or one after which path resolves elsewhere. A directory that
// cannot be watched (missing, or out of inotify watches) is logged and
// retried every few seconds; meanwhile SIGHUP still reloads. log receives
// one line per triggered reload and one per failure to watch.
func Watch(ctx context.Context, path string, debounce time.Duration, log *slog.Logger, onChange func()) {
	watch(ctx, path, debounce, watchRetry, log, onChange)
}

func watch(ctx context.Context, path string, debounce, retry time.Duration, log *slog.Logger, onChange func()) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		log.ErrorContext(ctx, "config watch failed; SIGHUP still reloads", slog.String("path", path), slog.Any("error", err))
		return
	}
	fw := &fileWatch{path: path, log: log, w: w}
	fw.target = fw.resolve()
	fw.sync(ctx)
	go func() {
		defer func() {
			_ = w.Close()
			if r := recover(); r != nil {
				log.ErrorContext(ctx, "config watch panicked; SIGHUP still reloads", slog.String("path", path), slog.Any("panic", r))
			}
		}()
		fw.run(ctx, debounce, retry, onChange)
	}()
}

// fileWatch is the state of one Watch; only its goroutine touches it.
type fileWatch struct {
	path   string // absolute
	log    *slog.Logger
	w      *fsnotify.Watcher
	target string // path with its symlinks resolved at the last event, or "" if it did not resolve
	// failing holds the directories that could not be watched, so that a
	// failure is logged once, not on every retry, and its recovery too.
	failing []string
	// wanted holds the directories the last sync meant to watch.
	wanted []string
}

func (fw *fileWatch) run(ctx context.Context, debounce, retry time.Duration, onChange func()) {
	var (
		fire  <-chan time.Time
		timer *time.Timer
		last  fsnotify.Op
	)
	retryTick := time.NewTicker(retry)
	defer retryTick.Stop()
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	trigger := func(op fsnotify.Op) {
		last |= op
		if timer == nil {
			timer = time.NewTimer(debounce)
		} else {
			timer.Reset(debounce)
		}
		fire = timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			relevant, moved := fw.event(ev)
			if relevant {
				trigger(ev.Op)
			}
			if moved && fw.sync(ctx) {
				trigger(0)
			}
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			fw.log.WarnContext(ctx, "config watch error", slog.String("path", fw.path), slog.Any("error", err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				// Events were lost; one of them may have been ours.
				trigger(0)
			}
		case <-retryTick.C:
			// Also catches a watch the kernel dropped with its directory.
			prev := fw.target
			fw.target = fw.resolve()
			if fw.sync(ctx) || fw.target != prev {
				trigger(0)
			}
		case <-fire:
			fire = nil
			fw.log.InfoContext(ctx, "config file changed; reloading", slog.String("path", fw.path), slog.String("events", last.String()))
			last = 0
			onChange()
		}
	}
}

// event reports whether ev changes the configuration file, and whether it
// may have moved it (a create, remove or rename: a symlink swap, a
// directory removed), after which the watched directories are synced. A
// chmod alone changes nothing (fsnotify's advice: editors and indexers
// touch modes freely), and a write to another file in the directory (an
// audit file kept beside the configuration) costs only a comparison.
func (fw *fileWatch) event(ev fsnotify.Event) (relevant, moved bool) {
	if ev.Op == fsnotify.Chmod {
		return false, false
	}
	ours := ev.Name == fw.path || (fw.target != "" && ev.Name == fw.target)
	if !ev.Has(fsnotify.Create) && !ev.Has(fsnotify.Remove) && !ev.Has(fsnotify.Rename) {
		return ours, false
	}
	prev := fw.target
	fw.target = fw.resolve()
	return ours || fw.target != prev, true
}

// resolve returns path with its symlinks resolved, or "" when it does not
// resolve (the file is missing between an rm and a cp).
func (fw *fileWatch) resolve() string {
	target, err := filepath.EvalSymlinks(fw.path)
	if err != nil {
		return ""
	}
	return target
}

// sync watches the directories of path and of the file it resolves to,
// and stops watching any other. A directory that cannot be watched is
// logged when it starts failing and when it recovers. sync reports whether
// a directory was restored: the file may have changed while unwatched.
func (fw *fileWatch) sync(ctx context.Context) (restored bool) {
	want := []string{filepath.Dir(fw.path)}
	if fw.target != "" {
		if d := filepath.Dir(fw.target); d != want[0] {
			want = append(want, d)
		}
	}
	have := fw.w.WatchList()
	for _, d := range have {
		if !slices.Contains(want, d) {
			// The directory may be gone already, which removed the watch.
			_ = fw.w.Remove(d)
		}
	}
	var failing []string
	for _, d := range want {
		if slices.Contains(have, d) {
			continue
		}
		if err := fw.w.Add(d); err != nil {
			failing = append(failing, d)
			if !slices.Contains(fw.failing, d) {
				fw.log.ErrorContext(ctx, "config watch failed; retrying, SIGHUP still reloads", slog.String("path", fw.path),
					slog.String("dir", d), slog.Bool("dir_missing", errors.Is(err, os.ErrNotExist)), slog.Any("error", err))
			}
			continue
		}
		// A directory watched before (or failing) and not watched now was
		// lost: removed, or replaced, and its watch went with it.
		if slices.Contains(fw.failing, d) || slices.Contains(fw.wanted, d) {
			fw.log.InfoContext(ctx, "config watch restored", slog.String("path", fw.path), slog.String("dir", d))
			restored = true
		}
	}
	fw.failing, fw.wanted = failing, want
	return restored
}
