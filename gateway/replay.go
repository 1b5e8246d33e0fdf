package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/configs"
)

// Resumable event streams of 2025-era sessions (MCP 2025-11-25
// basic/transports, "Resumability and Redelivery"): every SSE stream the
// gateway opens on a session gets a number, and every event on it an id
// "<replica>-<stream>-<seq>", unique across the session's streams. A
// stream starts with a priming event (its id, the retry field, no data),
// as the spec's SSE polling asks ("The server SHOULD immediately send an
// SSE event consisting of an event ID and an empty data field in order to
// prime the client to reconnect"). The events are kept, within
// server.sse's bounds, so that a client that reconnects with GET and
// Last-Event-ID gets the events of that stream it missed ("The server
// MUST NOT replay messages that would have been delivered on a different
// stream"), and then the rest of the stream when it is still open.
//
// The events live in the memory of the replica that sent them; the
// replica part of an id tells a resumption that reached another replica
// from one whose events expired. 2026-07-28 removed resumption; its
// streams carry no ids.

// replayBudget holds the bounds of server.sse and the bytes that every
// session of this replica keeps for replay.
type replayBudget struct {
	tag    string // this replica's part of an event id
	retry  []byte // the retry field of a priming event, with its newline
	ttl    time.Duration
	per    int64 // bytes one session may keep
	limit  int64 // bytes all sessions may keep
	total  atomic.Int64
	now    func() time.Time
	frames atomic.Int64 // events written; for tests
}

func newReplayBudget(cfg configs.SSE, now func() time.Time) *replayBudget {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails (Go 1.24).
	return &replayBudget{
		tag:   strings.ToLower(base32.StdEncoding.EncodeToString(b[:])),
		retry: []byte("retry: " + strconv.FormatInt(cfg.Retry.Milliseconds(), 10) + "\n"),
		ttl:   cfg.ReplayTTL, per: cfg.ReplaySessionBytes, limit: cfg.ReplayTotalBytes, now: now,
	}
}

// defaultReplayBudget is the budget of sessions made without one (tests).
func defaultReplayBudget() *replayBudget {
	return newReplayBudget(configs.SSE{
		Retry: configs.DefaultSSERetry, ReplayTTL: configs.DefaultSSEReplayTTL,
		ReplaySessionBytes: configs.DefaultSSEReplaySessionBytes, ReplayTotalBytes: configs.DefaultSSEReplayTotalBytes,
	}, time.Now)
}

// streams are the event streams of one session and the events kept of
// them, oldest first.
type streams struct {
	b       *replayBudget
	mu      sync.Mutex
	next    uint64
	open    map[uint64]*sseStream
	kept    []keptEvent
	bytes   int64
	gets    []uint64 // the GET streams in open, oldest first
	stopped bool     // the session ended: nothing more is kept
}

// keptEvent is one replayable event.
type keptEvent struct {
	st    *sseStream
	seq   uint64
	frame []byte
	at    time.Time
}

// sseStream is one event stream of a session: a POST response stream or
// the GET stream.
type sseStream struct {
	ss  *streams
	num uint64
	// mu orders the stream's events and guards w: one event is numbered,
	// kept and written at a time.
	mu  sync.Mutex
	seq uint64
	// lost is the highest seq that can no longer be replayed (expired,
	// evicted or never kept).
	lost atomic.Uint64
	// get marks the session's standalone GET stream, which a resumption
	// continues after the replay; a POST stream ends with its response.
	get bool
	// w is the connection the stream writes to now: the one that opened
	// it, or the last that resumed it; nil while none is attached.
	w    http.ResponseWriter
	done bool          // the stream's last event is written
	end  chan struct{} // closed when done
}

func newStreams(b *replayBudget) *streams {
	if b == nil {
		b = defaultReplayBudget()
	}
	return &streams{b: b, open: map[uint64]*sseStream{}}
}

// maxGetStreams bounds the GET streams a session keeps resumable: a
// client that opens a new one without Last-Event-ID lets go of the
// oldest.
const maxGetStreams = 4

// start opens a stream writing to w: it writes the SSE headers and the
// priming event, which carries the retry field. get marks the standalone
// GET stream.
func (ss *streams) start(w http.ResponseWriter, get bool) *sseStream {
	ss.mu.Lock()
	ss.next++
	st := &sseStream{ss: ss, num: ss.next, w: w, get: get, end: make(chan struct{})}
	ss.open[st.num] = st
	if get {
		ss.gets = append(ss.gets, st.num)
		if len(ss.gets) > maxGetStreams {
			delete(ss.open, ss.gets[0])
			ss.gets = ss.gets[1:]
		}
	}
	ss.mu.Unlock()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	st.mu.Lock()
	defer st.mu.Unlock()
	st.write(st.frame(nil, true))
	return st
}

// frame numbers the next event and keeps it; msg nil is the priming
// event.
func (st *sseStream) frame(msg []byte, prime bool) []byte {
	seq := st.seq
	if !prime {
		st.seq++
		seq = st.seq
	}
	b := st.ss.b
	f := make([]byte, 0, len(b.tag)+len(msg)+len(eventPrefix)+len(b.retry)+48)
	f = append(f, "id: "...)
	f = st.appendID(f, seq)
	f = append(f, '\n')
	if prime {
		f = append(f, b.retry...)
		return append(f, "data: \n\n"...)
	}
	f = append(f, eventPrefix...)
	f = append(f, msg...)
	f = append(f, eventSuffix...)
	if !st.ss.keep(st, seq, f) {
		setMax(&st.lost, seq)
	}
	return f
}

func (st *sseStream) appendID(dst []byte, seq uint64) []byte {
	dst = append(dst, st.ss.b.tag...)
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, st.num, 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, seq, 10)
}

// write sends a frame to the attached connection, if any; a connection
// that fails is detached. Called with st.mu held.
func (st *sseStream) write(f []byte) {
	if st.w == nil {
		return
	}
	if _, err := st.w.Write(f); err != nil {
		st.w = nil
		return
	}
	st.ss.b.frames.Add(1)
	_ = http.NewResponseController(st.w).Flush()
}

// send writes one JSON-RPC message as the stream's next event; last
// ends the stream (a response).
func (st *sseStream) send(msg []byte, last bool) {
	msg = compactEvent(msg)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done {
		return
	}
	st.write(st.frame(msg, false))
	if last {
		st.finish()
	}
}

// comment writes an SSE comment (a keep-alive) to w when w is the
// stream's connection, so that it never interleaves with an event.
func (st *sseStream) comment(w io.Writer, c string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	_, err := io.WriteString(w, c)
	if err == nil {
		if rw, ok := w.(http.ResponseWriter); ok {
			_ = http.NewResponseController(rw).Flush()
		}
	}
	return err
}

// detach lets go of w when it is still the stream's connection (its
// handler returns).
func (st *sseStream) detach(w http.ResponseWriter) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.w == w {
		st.w = nil
	}
}

// finish marks the stream done; st.mu is held. A done stream stays
// resumable while its events are kept.
func (st *sseStream) finish() {
	if st.done {
		return
	}
	st.w = nil
	close(st.end)
	ss := st.ss
	ss.mu.Lock()
	// done is written under both locks: drop reads it holding ss.mu only.
	st.done = true
	if !ss.holds(st) {
		delete(ss.open, st.num)
	}
	ss.mu.Unlock()
}

// holds reports whether any kept event is st's; ss.mu is held.
func (ss *streams) holds(st *sseStream) bool {
	for i := range ss.kept {
		if ss.kept[i].st == st {
			return true
		}
	}
	return false
}

// keep stores a sent event for replay, forgetting expired events and, past
// the session's bound, the oldest. It reports false when the event could
// not be kept (the replica's bound).
func (ss *streams) keep(st *sseStream, seq uint64, f []byte) bool {
	b := ss.b
	now := b.now()
	n := int64(len(f))
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.stopped || n > b.per {
		return false
	}
	ss.expire(now)
	for len(ss.kept) > 0 && (ss.bytes+n > b.per || b.total.Load()+n > b.limit) {
		ss.drop()
	}
	if b.total.Add(n) > b.limit {
		b.total.Add(-n)
		return false
	}
	ss.bytes += n
	ss.kept = append(ss.kept, keptEvent{st: st, seq: seq, frame: f, at: now})
	return true
}

// expire forgets the events older than the TTL; ss.mu is held.
func (ss *streams) expire(now time.Time) {
	cut := now.Add(-ss.b.ttl)
	for len(ss.kept) > 0 && ss.kept[0].at.Before(cut) {
		ss.drop()
	}
}

// drop forgets the oldest kept event; ss.mu is held. The stream's lost
// mark is raised when the stream is not writing (its own mu is then free
// or held by the caller of keep, which is another stream or this one
// numbering a later event: either way lost only grows).
func (ss *streams) drop() {
	e := ss.kept[0]
	ss.kept[0] = keptEvent{}
	ss.kept = ss.kept[1:]
	n := int64(len(e.frame))
	ss.bytes -= n
	ss.b.total.Add(-n)
	setMax(&e.st.lost, e.seq)
	if e.st.done && !ss.holds(e.st) {
		delete(ss.open, e.st.num)
	}
}

// sweep forgets expired events (the sessions' periodic sweep).
func (ss *streams) sweep() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expire(ss.b.now())
}

// stop forgets every event: the session ended.
func (ss *streams) stop() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.stopped = true
	for len(ss.kept) > 0 {
		ss.drop()
	}
}

// errNotResumable is why a Last-Event-ID cannot be resumed.
var errNotResumable = errors.New("the events after it are not kept by this replica: expired, evicted, or sent by another replica")

// resume attaches w to the stream that event id belongs to and writes the
// events of that stream after it. It returns the stream; the caller then
// waits for st.end (a POST stream) or goes on serving it (the GET stream).
func (ss *streams) resume(w http.ResponseWriter, id string) (*sseStream, error) {
	tag, rest, ok1 := strings.Cut(id, "-")
	num, seq, ok2 := strings.Cut(rest, "-")
	n, err1 := strconv.ParseUint(num, 10, 64)
	q, err2 := strconv.ParseUint(seq, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil {
		return nil, errors.New("malformed event id")
	}
	if tag != ss.b.tag {
		return nil, errNotResumable
	}
	ss.mu.Lock()
	st := ss.open[n]
	ss.mu.Unlock()
	if st == nil {
		return nil, errNotResumable
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if q > st.seq || q < st.lost.Load() {
		return nil, errNotResumable
	}
	ss.mu.Lock()
	var frames [][]byte
	for i := range ss.kept {
		if e := &ss.kept[i]; e.st == st && e.seq > q {
			frames = append(frames, e.frame)
		}
	}
	ss.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if !st.done {
		st.w = w
	}
	for _, f := range frames {
		if _, err := w.Write(f); err != nil {
			st.detachLocked(w)
			break
		}
	}
	_ = http.NewResponseController(w).Flush()
	return st, nil
}

func (st *sseStream) detachLocked(w http.ResponseWriter) {
	if st.w == w {
		st.w = nil
	}
}

// setMax raises v to n.
func setMax(v *atomic.Uint64, n uint64) {
	for {
		o := v.Load()
		if o >= n || v.CompareAndSwap(o, n) {
			return
		}
	}
}

// compactEvent returns msg without raw newlines, which would end an SSE
// data line early; upstream JSON is relayed byte for byte and may hold
// them between tokens.
func compactEvent(msg []byte) []byte {
	if !bytes.ContainsAny(msg, "\r\n") {
		return msg
	}
	var c bytes.Buffer
	if err := json.Compact(&c, msg); err != nil {
		return msg
	}
	return c.Bytes()
}
