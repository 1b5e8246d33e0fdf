// Package testio holds small I/O helpers for tests: writers that tests
// read while the code under test writes. It imports the standard library
// only, and no production package may import it (test/deps).
package testio

import (
	"bytes"
	"sync"
)

// LockedBuffer is a bytes.Buffer safe for one writer and concurrent
// readers: a log destination a test reads while a gateway or a child
// process writes to it. The zero value is ready to use.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
