package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	// DefaultQueueSize is the number of records buffered.
	DefaultQueueSize = 8192
	// DefaultStuckAfter is how long Log waits for room in a full queue.
	DefaultStuckAfter = 2 * time.Second
)

// sinkBufferSize is the bufio buffer of each sink.
const sinkBufferSize = 64 << 10

// maxPooledBuffer keeps unusually large encoded records out of the pool.
const maxPooledBuffer = 64 << 10

// Options configure a Logger.
type Options struct {
	// Writers are sinks the caller owns, such as os.Stdout; Close does not
	// close them.
	Writers []io.Writer
	// Paths are files records are appended to, created with mode 0600 when
	// missing. Open fails when one cannot be opened for writing, so the
	// gateway refuses to start rather than run unaudited. Close closes
	// them.
	Paths []string
	// QueueSize is the number of records buffered between Log and the
	// writer. Default 8192.
	QueueSize int
	// StuckAfter is how long Log waits for room in a full queue before it
	// returns ErrStuck. Default 2s.
	StuckAfter time.Duration
	// Now fills in Record.Time when it is zero, and dates a writer's
	// blocked write. Default time.Now.
	Now func() time.Time
	// ErrorLog receives sink failures (not records), once per transition
	// from working to failing. Default: discard.
	ErrorLog *slog.Logger
}

// Logger writes records as JSON Lines to its sinks. Log encodes the record
// in the caller's goroutine and puts it in a bounded queue; one writer
// goroutine writes the queue to every sink through a buffer, flushing at
// most FlushDelay after a record was written. A record is never dropped silently: Log
// either accepts it, and Close waits until it is written, or returns an
// error (ErrStuck, ErrClosed or the context's).
type Logger struct {
	queue      chan *[]byte
	stuckAfter time.Duration
	now        func() time.Time
	errorLog   *slog.Logger
	sinks      []sink
	files      []*os.File
	pool       sync.Pool

	// mu guards closing the queue against concurrent sends: Log holds it
	// for reading while it sends.
	mu     sync.RWMutex
	closed bool
	done   chan struct{}

	// busySince is when the writer entered its current sink write (Unix
	// nanoseconds of Now), 0 while it is not writing.
	busySince atomic.Int64
	failing   atomic.Bool
	written   atomic.Uint64
	stuck     atomic.Uint64
	failures  atomic.Uint64
}

type sink struct {
	w  io.Writer
	bw *bufio.Writer
	// failing is set by a write error and cleared by a successful flush;
	// only the writer goroutine touches it.
	failing bool
}

// Open opens the files of opts and starts the writer. Close stops it. A nil
// opts is the zero Options, which has no sink and is refused.
func Open(opts *Options) (*Logger, error) {
	if opts == nil {
		opts = &Options{}
	}
	l := &Logger{
		stuckAfter: opts.StuckAfter,
		now:        opts.Now,
		errorLog:   opts.ErrorLog,
		done:       make(chan struct{}),
	}
	if l.stuckAfter <= 0 {
		l.stuckAfter = DefaultStuckAfter
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.errorLog == nil {
		l.errorLog = slog.New(slog.DiscardHandler)
	}
	size := opts.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	for _, p := range opts.Paths {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			for _, f := range l.files {
				_ = f.Close()
			}
			return nil, fmt.Errorf("opening audit file: %w", err)
		}
		l.files = append(l.files, f)
	}
	for _, w := range opts.Writers {
		if w == nil {
			return nil, errors.New("audit: nil writer")
		}
		l.sinks = append(l.sinks, sink{w: w, bw: bufio.NewWriterSize(w, sinkBufferSize)})
	}
	for _, f := range l.files {
		l.sinks = append(l.sinks, sink{w: f, bw: bufio.NewWriterSize(f, sinkBufferSize)})
	}
	if len(l.sinks) == 0 {
		return nil, errors.New("audit: no sink")
	}
	l.pool.New = func() any {
		b := make([]byte, 0, 1024)
		return &b
	}
	l.queue = make(chan *[]byte, size)
	go l.run()
	return l, nil
}

// Log encodes r and queues it for writing. When the queue is full it
// waits up to StuckAfter for room, then returns ErrStuck; when the writer
// has already been blocked in a sink for longer than StuckAfter it returns
// ErrStuck at once. It also stops waiting when ctx is done (callers on a
// request path pass context.WithoutCancel, so a client hanging up does not
// lose its record). An error means the record was not accepted. Log does
// not keep r.
func (l *Logger) Log(ctx context.Context, r *Record) error {
	if err := l.log(ctx.Done(), r); err != errDone { //nolint:errorlint // log's own sentinel, never wrapped.
		return err
	}
	return ctx.Err()
}

// errDone is what log returns when done closed first.
var errDone = errors.New("audit: done")

// LogDetached is Log for a record that must outlive the request it
// describes: only a full queue (StuckAfter) or a closed Logger refuses it,
// never a context ending. It is Log(context.WithoutCancel(ctx), r) without
// that context's allocation on every call.
func (l *Logger) LogDetached(r *Record) error { return l.log(nil, r) }

// log is Log, waiting for room until done is closed (never when nil).
func (l *Logger) log(done <-chan struct{}, r *Record) error {
	if r.Time.IsZero() {
		r.Time = l.now()
	}
	bp := l.pool.Get().(*[]byte) //nolint:errcheck // the pool holds only *[]byte.
	*bp = append(r.AppendJSON((*bp)[:0]), '\n')

	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.release(bp)
		return ErrClosed
	}
	select {
	case l.queue <- bp:
		return nil
	default:
	}
	if l.writerStuck() {
		l.release(bp)
		l.stuck.Add(1)
		return ErrStuck
	}
	t := time.NewTimer(l.stuckAfter)
	defer t.Stop()
	select {
	case l.queue <- bp:
		return nil
	case <-t.C:
		l.release(bp)
		l.stuck.Add(1)
		return ErrStuck
	case <-done:
		l.release(bp)
		return errDone
	}
}

// writerStuck reports whether the writer has been inside one sink write
// for longer than StuckAfter.
func (l *Logger) writerStuck() bool {
	since := l.busySince.Load()
	return since != 0 && l.now().UnixNano()-since > int64(l.stuckAfter)
}

// Healthy returns nil while records flow: ErrStuck while the writer has
// been blocked in a sink for longer than StuckAfter, ErrSinkFailed after a
// sink's last write failed. The gateway checks it before destructive
// tools.
func (l *Logger) Healthy() error {
	switch {
	case l.writerStuck():
		return ErrStuck
	case l.failing.Load():
		return ErrSinkFailed
	default:
		return nil
	}
}

// Written returns the number of records written to every sink's buffer
// without error.
func (l *Logger) Written() uint64 { return l.written.Load() }

// QueueDepth returns the number of records waiting to be written.
func (l *Logger) QueueDepth() int { return len(l.queue) }

// Stuck returns the number of records refused with ErrStuck.
func (l *Logger) Stuck() uint64 { return l.stuck.Load() }

// Failures returns the number of sink write and flush errors. A failed
// flush loses the records buffered for that sink; each failure is also
// logged to ErrorLog when the sink starts failing.
func (l *Logger) Failures() uint64 { return l.failures.Load() }

// Close stops accepting records, waits until every accepted record is
// written and flushed, and closes the files. When ctx ends first it
// returns ctx's error; the writer goes on in the background.
func (l *Logger) Close(ctx context.Context) error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	var errs []error
	for _, f := range l.files {
		if err := f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing audit file: %w", err))
		}
	}
	if l.failing.Load() {
		errs = append(errs, ErrSinkFailed)
	}
	return errors.Join(errs...)
}

func (l *Logger) release(bp *[]byte) {
	if cap(*bp) <= maxPooledBuffer {
		l.pool.Put(bp)
	}
}

// FlushDelay bounds how long a written record waits in a sink's buffer.
// Under load the records of that window share one write system call
// instead of one each; Close (SIGTERM) flushes at once.
const FlushDelay = time.Millisecond

// run is the writer goroutine: it writes records until the queue is
// closed and drained, flushing FlushDelay after the first record of each
// batch, and at the end.
func (l *Logger) run() {
	defer close(l.done)
	timer := time.NewTimer(FlushDelay)
	timer.Stop()
	var due <-chan time.Time // nil while nothing waits for a flush
	for {
		select {
		case bp, open := <-l.queue:
			if !open {
				timer.Stop()
				l.flush()
				return
			}
			ok := true
			for i := range l.sinks {
				if !l.do(&l.sinks[i], *bp, false) {
					ok = false
				}
			}
			if ok {
				l.written.Add(1)
			}
			l.release(bp)
			if due == nil {
				timer.Reset(FlushDelay)
				due = timer.C
			}
		case <-due:
			due = nil
			l.flush()
		}
	}
}

// flush flushes every sink and updates the failing state.
func (l *Logger) flush() {
	failing := false
	for i := range l.sinks {
		l.do(&l.sinks[i], nil, true)
		failing = failing || l.sinks[i].failing
	}
	if !failing && l.failing.CompareAndSwap(true, false) {
		l.errorLog.Info("audit sinks recovered")
	}
}

// do writes p to s (or flushes s) and reports success. A failing sink is
// reset so later records are tried again; a panic in a sink counts as a
// failure.
func (l *Logger) do(s *sink, p []byte, flush bool) (ok bool) {
	l.busySince.Store(l.now().UnixNano())
	defer l.busySince.Store(0)
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("sink panicked: %v\n%s", v, debug.Stack())
			}
		}()
		if flush {
			if s.bw.Buffered() == 0 {
				return // Nothing to prove the sink works again.
			}
			err = s.bw.Flush()
			if err == nil {
				s.failing = false
			}
		} else {
			_, err = s.bw.Write(p)
		}
	}()
	if err == nil {
		return true
	}
	l.failures.Add(1)
	s.bw.Reset(s.w)
	s.failing = true
	if l.failing.CompareAndSwap(false, true) {
		l.errorLog.Error("audit sink failed; records buffered for it are lost", slog.Any("error", err))
	}
	return false
}
