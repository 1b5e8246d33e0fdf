package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"time"
)

// errEventTooLarge is returned by sseReader when one event exceeds the limit.
var errEventTooLarge = errors.New("event exceeds max_response_bytes")

// sseReader reads the message events of a text/event-stream body
// (https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream).
// Lines end with LF or CRLF. Events whose type is neither empty nor
// "message" are skipped, and so are events without data (a priming event).
// The id and retry fields are kept, whatever the event's type, so that a
// stream the server closes can be resumed (resume.go).
type sseReader struct {
	pool *sync.Pool // of *bufio.Reader; may be nil
	br   *bufio.Reader
	max  int64
	data []byte
	line []byte
	// lastID is the last event ID seen on the stream ("" before any);
	// retry is the reconnection time the server last asked for, and
	// hasRetry whether it asked.
	lastID   string
	retry    time.Duration
	hasRetry bool
}

func newSSEReader(pool *sync.Pool, r io.Reader, limit int64) *sseReader {
	var br *bufio.Reader
	if pool != nil {
		br, _ = pool.Get().(*bufio.Reader)
	}
	if br == nil {
		br = bufio.NewReaderSize(r, 8<<10)
	} else {
		br.Reset(r)
	}
	return &sseReader{pool: pool, br: br, max: limit}
}

// release returns the buffered reader to the pool; the reader is unusable
// afterwards.
func (s *sseReader) release() {
	if s.br != nil && s.pool != nil {
		s.br.Reset(nil)
		s.pool.Put(s.br)
	}
	s.br = nil
}

// next returns the data of the next message event. The slice is valid until
// the following call. At the end of the stream it returns io.EOF.
func (s *sseReader) next() ([]byte, error) {
	s.data = s.data[:0]
	hasData := false
	message := true
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData && message && len(s.data) > 0 { //nolint:errorlint // readLine returns bufio's io.EOF unwrapped.
				// A final event without its blank line: the writer closed
				// the stream right after it; deliver it rather than lose
				// a response.
				return s.data, nil
			}
			return nil, err
		}
		if len(line) == 0 {
			// An empty data buffer dispatches nothing (WHATWG, "dispatch
			// the event"): a priming event only sets the last event ID.
			if hasData && message && len(s.data) > 0 {
				return s.data, nil
			}
			s.data = s.data[:0]
			hasData = false
			message = true
			continue
		}
		if line[0] == ':' {
			continue // comment, such as a keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data = append(s.data, '\n')
			}
			s.data = append(s.data, value...)
			hasData = true
			if int64(len(s.data)) > s.max {
				return nil, errEventTooLarge
			}
		case "event":
			message = len(value) == 0 || string(value) == "message"
		default:
			s.cursor(field, value)
		}
	}
}

// cursor keeps the id and retry fields, which say where and when a stream
// can be resumed.
func (s *sseReader) cursor(field, value []byte) {
	switch string(field) {
	case "id":
		// An id with NUL is ignored (WHATWG). An empty one resets the
		// last event ID: the stream can no longer be resumed.
		if bytes.IndexByte(value, 0) < 0 && string(value) != s.lastID {
			s.lastID = string(value)
		}
	case "retry":
		if ms, ok := parseRetry(value); ok {
			s.retry, s.hasRetry = ms, true
		}
	}
}

// parseRetry reads a retry field: ASCII digits only, in milliseconds.
func parseRetry(v []byte) (time.Duration, bool) {
	if len(v) == 0 || len(v) > 9 {
		return 0, false // over 9 digits is more than 11 days: not a retry
	}
	var ms int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		ms = ms*10 + int64(c-'0')
	}
	return time.Duration(ms) * time.Millisecond, true
}

// readLine returns the next line without its terminator.
func (s *sseReader) readLine() ([]byte, error) {
	line, err := s.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull { //nolint:errorlint // bufio returns its sentinels unwrapped; == keeps the read path cheap.
		s.line = append(s.line[:0], line...)
		for err == bufio.ErrBufferFull { //nolint:errorlint // as above.
			if int64(len(s.line)) > s.max+2 {
				return nil, errEventTooLarge
			}
			line, err = s.br.ReadSlice('\n')
			s.line = append(s.line, line...)
		}
		line = s.line
	}
	if err != nil {
		if err == io.EOF && len(line) > 0 {
			return trimEOL(line), nil
		}
		return nil, err
	}
	return trimEOL(line), nil
}

func trimEOL(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}
