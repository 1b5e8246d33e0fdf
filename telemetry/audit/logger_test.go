package audit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failAfter bounds waits for something that should happen promptly. It is
// a failure timeout, never a synchronisation.
const failAfter = 10 * time.Second

// parseLines splits JSON Lines output and parses every line.
func parseLines(t *testing.T, data []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		out = append(out, decode(t, sc.Bytes()))
	}
	require.NoError(t, sc.Err())
	return out
}

func closeLogger(t *testing.T, l *Logger) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	require.NoError(t, l.Close(ctx))
}

func TestLoggerExactlyOnce(t *testing.T) {
	t.Parallel()

	const (
		records     = 10_000
		concurrency = 32
	)
	var out bytes.Buffer // Only the writer goroutine writes to it.
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := Open(&Options{Writers: []io.Writer{&out}, Paths: []string{path}, QueueSize: 64})
	require.NoError(t, err)

	var wg sync.WaitGroup
	errs := make(chan error, records)
	for w := range concurrency {
		wg.Go(func() {
			for i := w; i < records; i += concurrency {
				r := &Record{Event: EventToolsCall, RequestID: strconv.Itoa(i), Subject: "alice", Decision: DecisionAllowed}
				if err := l.Log(t.Context(), r); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	closeLogger(t, l)
	assert.Equal(t, uint64(records), l.Written())
	assert.Zero(t, l.Stuck())

	fileData, err := os.ReadFile(path)
	require.NoError(t, err)
	for name, data := range map[string][]byte{"writer": out.Bytes(), "file": fileData} {
		seen := make(map[string]bool, records)
		for _, rec := range parseLines(t, data) {
			id, _ := rec["request_id"].(string)
			require.False(t, seen[id], "%s: record %s written twice", name, id)
			seen[id] = true
			assert.Equal(t, "tools/call", rec["event"])
			assert.NotEmpty(t, rec["time"], "Log fills in the time")
		}
		assert.Len(t, seen, records, "%s: every record written once", name)
	}
}

func TestLoggerCloseDrains(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	w := &blockingWriter{entered: make(chan struct{}), release: release}
	l, err := Open(&Options{Writers: []io.Writer{w}, QueueSize: 100})
	require.NoError(t, err)
	// The first record blocks the writer; the others wait in the queue.
	for i := range 50 {
		require.NoError(t, l.Log(t.Context(), &Record{Event: EventToolsCall, RequestID: strconv.Itoa(i)}))
	}
	waitClosed(t, w.entered)

	closed := make(chan error, 1)
	go func() { closed <- l.Close(context.WithoutCancel(t.Context())) }()
	close(release)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(failAfter):
		t.Fatal("Close did not return")
	}
	require.ErrorIs(t, l.Log(t.Context(), &Record{Event: EventToolsCall}), ErrClosed, "a closed logger accepts nothing")
	assert.Len(t, parseLines(t, w.Bytes()), 50, "Close wrote every accepted record")
}

func TestLoggerStuck(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	w := &blockingWriter{entered: make(chan struct{}), release: release}
	l, err := Open(&Options{Writers: []io.Writer{w}, QueueSize: 1, StuckAfter: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx := t.Context()

	require.NoError(t, l.Log(ctx, &Record{Event: EventToolsCall, RequestID: "0"}))
	waitClosed(t, w.entered) // The writer is blocked in the sink.

	accepted := 1
	var stuckErr error
	for i := 1; i <= 3 && stuckErr == nil; i++ {
		switch err := l.Log(ctx, &Record{Event: EventToolsCall, RequestID: strconv.Itoa(i)}); err {
		case nil:
			accepted++
		default:
			stuckErr = err
		}
	}
	require.ErrorIs(t, stuckErr, ErrStuck, "a full queue behind a blocked sink refuses records")
	assert.Positive(t, l.Stuck())

	close(release)
	closeLogger(t, l)
	assert.Len(t, parseLines(t, w.Bytes()), accepted, "every accepted record, and only those, is written")
	assert.NoError(t, l.Healthy())
}

func TestLoggerLogHonoursContext(t *testing.T) {
	t.Parallel()

	release := make(chan struct{})
	w := &blockingWriter{entered: make(chan struct{}), release: release}
	l, err := Open(&Options{Writers: []io.Writer{w}, QueueSize: 1, StuckAfter: time.Hour})
	require.NoError(t, err)
	defer func() {
		close(release)
		closeLogger(t, l)
	}()
	require.NoError(t, l.Log(t.Context(), &Record{Event: EventToolsCall}))
	waitClosed(t, w.entered)
	require.NoError(t, l.Log(t.Context(), &Record{Event: EventToolsCall})) // Fills the queue.

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, l.Log(ctx, &Record{Event: EventToolsCall}), context.Canceled)
}

func TestOpenRefusesUnwritablePaths(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	tests := []struct{ name, path string }{
		{"missing directory", filepath.Join(dir, "missing", "audit.jsonl")},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			good := filepath.Join(t.TempDir(), "ok.jsonl")
			_, err := Open(&Options{Paths: []string{good, tt.path}})
			require.Error(t, err)
		})
	}
	_, err := Open(&Options{})
	require.Error(t, err, "no sink")
}

func TestLoggerFileMode(t *testing.T) {
	t.Parallel()

	path := filepath.Join(t.TempDir(), "audit.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"event":"earlier"}`+"\n"), 0o600))
	l, err := Open(&Options{Paths: []string{path}})
	require.NoError(t, err)
	require.NoError(t, l.Log(t.Context(), &Record{Event: EventDrain, Action: "drain", Target: "orders"}))
	closeLogger(t, l)

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	recs := parseLines(t, data)
	require.Len(t, recs, 2, "records are appended")
	assert.Equal(t, "drain", recs[1]["event"])
	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestLoggerSinkFailure(t *testing.T) {
	t.Parallel()

	w := &failingWriter{}
	l, err := Open(&Options{Writers: []io.Writer{w}})
	require.NoError(t, err)
	require.NoError(t, l.Log(t.Context(), &Record{Event: EventToolsCall}))
	ctx, cancel := context.WithTimeout(t.Context(), failAfter)
	defer cancel()
	require.ErrorIs(t, l.Close(ctx), ErrSinkFailed)
	assert.Positive(t, l.Failures())
	require.ErrorIs(t, l.Healthy(), ErrSinkFailed)
}

// blockingWriter blocks its first Write until release is closed, after
// closing entered.
type blockingWriter struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
}

func (w *blockingWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.entered) })
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *blockingWriter) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(failAfter):
		t.Fatal("timed out")
	}
}
