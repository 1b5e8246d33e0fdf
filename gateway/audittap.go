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
//
// The tap is on every audit stream, console open or not, so a record costs
// it no allocation while nobody subscribes: the recent records live in a
// ring of buffers the tap owns and overwrites, and only a line handed to a
// subscriber (or returned by subscribe) is a copy of its own.
type auditTap struct {
	mu      sync.Mutex
	partial []byte // a record the buffered writer split across writes
	// ring holds the last n records, the oldest at ring[head] once full.
	ring    [tapRecent][]byte
	head, n int
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
		data = t.partial
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		t.publishLocked(data[:i])
		data = data[i+1:]
	}
	// The rest is the start of a record the next write ends. It may be
	// the tail of partial itself: copy it down, reusing partial's array.
	t.partial = append(t.partial[:0], data...)
	return len(p), nil
}

// publishLocked keeps line (which the tap does not own) among the recent
// records and sends a copy to each subscriber.
func (t *auditTap) publishLocked(line []byte) {
	if len(line) == 0 {
		return
	}
	slot := (t.head + t.n) % tapRecent
	if t.n == tapRecent {
		t.head = (t.head + 1) % tapRecent
	} else {
		t.n++
	}
	t.ring[slot] = append(t.ring[slot][:0], line...)
	if len(t.subs) == 0 {
		return
	}
	own := bytes.Clone(line)
	for s := range t.subs {
		select {
		case s.ch <- own:
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
	recent = make([][]byte, t.n)
	for i := range recent {
		recent[i] = bytes.Clone(t.ring[(t.head+i)%tapRecent])
	}
	return recent, s, func() {
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
