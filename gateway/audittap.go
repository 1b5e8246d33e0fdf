package gateway

import (
	"bytes"
	"sync"
)

// tapRecent is how many audit records the tap keeps for a console that
// opens its tail.
const tapRecent = 100

// tapBuffer is how many records a console's tail may fall behind before
// it misses some.
const tapBuffer = 256

// auditTap is an audit sink that hands each record (a JSON line) to the
// console's live tails. It never blocks and never fails, so the audit
// stream's delivery to its real sinks does not depend on a browser: a
// subscriber that falls behind misses records (its tail says so), the
// sinks do not.
type auditTap struct {
	mu      sync.Mutex
	partial []byte // a record the buffered writer split across writes
	recent  [][]byte
	subs    map[*tapSub]struct{}
}

// tapSub is one live tail.
type tapSub struct {
	ch     chan []byte
	missed bool // guarded by the tap's mu
}

var _ interface{ Write([]byte) (int, error) } = (*auditTap)(nil)

func newAuditTap() *auditTap { return &auditTap{subs: map[*tapSub]struct{}{}} }

// Write takes whole and partial JSON lines from the audit stream's
// buffered writer.
func (t *auditTap) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	data := p
	if len(t.partial) > 0 {
		t.partial = append(t.partial, p...)
		data, t.partial = t.partial, nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		t.publishLocked(bytes.Clone(data[:i]))
		data = data[i+1:]
	}
	if len(data) > 0 {
		t.partial = bytes.Clone(data)
	}
	return len(p), nil
}

func (t *auditTap) publishLocked(line []byte) {
	if len(line) == 0 {
		return
	}
	if len(t.recent) == tapRecent {
		t.recent = append(t.recent[:0], t.recent[1:]...)
	}
	t.recent = append(t.recent, line)
	for s := range t.subs {
		select {
		case s.ch <- line:
		default:
			s.missed = true
		}
	}
}

// subscribe returns the recent records and a subscription to the next
// ones; cancel ends it.
func (t *auditTap) subscribe() (recent [][]byte, s *tapSub, cancel func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s = &tapSub{ch: make(chan []byte, tapBuffer)}
	t.subs[s] = struct{}{}
	return append([][]byte(nil), t.recent...), s, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.subs, s)
	}
}

// takeMissed reports whether s missed records since the last call.
func (t *auditTap) takeMissed(s *tapSub) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := s.missed
	s.missed = false
	return m
}
