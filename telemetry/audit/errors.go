package audit

import "errors"

// Sentinel errors. Callers test for them with errors.Is.
var (
	// ErrStuck means the record was not accepted: the queue stayed full for
	// StuckAfter, or the writer has been blocked in a sink for longer than
	// that. The gateway refuses destructive tools rather than run them
	// unaudited.
	ErrStuck = errors.New("audit sink stuck")
	// ErrClosed means the record was not accepted because the Logger is
	// closed.
	ErrClosed = errors.New("audit logger closed")
	// ErrSinkFailed is reported by Healthy after a sink returned a write
	// error.
	ErrSinkFailed = errors.New("audit sink failed")
	// ErrInvalidJSON is returned by Canonicalize and Redact for input they
	// cannot process.
	ErrInvalidJSON = errors.New("invalid JSON")
)
