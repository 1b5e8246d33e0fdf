package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcpgw/mcpgw/internal/mcpwire"
)

// Session ids are sealed with AES-256-GCM: "s2." + base64url(nonce ‖
// ciphertext) over the creation time, 16 random bytes, a digest of the
// owning principal and the negotiated protocol version. The random part
// makes an id unguessable; the seal lets the gateway reject a forged id
// without a lookup; and since the id carries everything a session needs,
// a replica sharing server.session_key resumes a session another replica
// created (after that one stopped, or behind a load balancer without
// affinity) for as long as server.session_max_age. The live state (idle
// timer, in-flight calls, the GET stream) is per replica; a cancellation
// of a call another replica runs is relayed to it (cancels.go). A terminated or
// idle-expired session is remembered as a tombstone (in Redis when
// configured, so that the whole fleet refuses it) and never resumed.
const sessionIDPrefix = "s2."

// sessionPlain is the layout of a sealed session id's plaintext.
const (
	plainCreated = 0  // 8 bytes, unix seconds
	plainRandom  = 8  // 16 random bytes
	plainOwner   = 24 // 16 bytes of SHA-256(owner)
	plainVersion = 40 // 1 byte: the length, and flagViews; then the protocol version
	// then the client's capabilities from initialize, to the end (when
	// they fit maxSealedCaps), so that a resumed session still knows
	// what it may ask the client (elicitation, sampling, roots).
)

// The byte at plainVersion holds the version's length in its low bits and
// flags in its high ones, which a length (a date) never reaches.
const (
	// flagViews: the client declared MCP Apps (session.views). It is
	// sealed apart from the capabilities, so that a session resumed on
	// another replica keeps it when its capabilities did not fit.
	flagViews   = 0x80
	versionMask = 0x3f
)

// maxSealedCaps bounds the capabilities a session id carries.
const maxSealedCaps = 1024

// session is one 2025-era client session.
type session struct {
	id string
	// sum is the hex SHA-256 of id: its prefix is the digest that names
	// the session in logs and audit, the whole its tombstone's key.
	sum             string
	digest          string // sessionDigest(id)
	protocolVersion string
	// owner is the principal the session is bound to (issuer and subject),
	// "" when the gateway is unauthenticated. Another principal presenting
	// the id gets the same 404 as for an unknown id.
	owner    string
	lastSeen atomic.Int64 // unix nanoseconds
	// clientCaps is the ClientCapabilities object the client declared at
	// initialize: what server-to-client requests it may be sent.
	clientCaps json.RawMessage
	// views is whether clientCaps declare MCP Apps (apps.go).
	views bool
	// logLevel is the level the client set with logging/setLevel; nil
	// until it does (the upstreams then decide what they send).
	logLevel atomic.Pointer[string]

	mu       sync.Mutex
	inflight map[string]context.CancelFunc // by raw JSON-RPC id
	// asks are the gateway's server-to-client requests awaiting the
	// client's response, by raw JSON-RPC id (mrtr.go).
	asks map[string]chan *message
	// notes carries notifications to the session's GET stream. It is
	// buffered; list_changed notifications are idempotent, so a full buffer
	// drops rather than blocks.
	notes  chan []byte
	closed chan struct{}
	once   sync.Once
	// closing runs when the session ends (its resource subscriptions
	// are released); set once, by onClose.
	closing atomic.Pointer[func()]
	// streams are the session's event streams and the events kept for
	// their resumption (replay.go).
	streams *streams
}

// onClose sets what runs when the session ends; only the first call
// counts.
func (s *session) onClose(f func()) {
	s.closing.CompareAndSwap(nil, &f)
}

func newSession(id, version, owner string, caps json.RawMessage) *session {
	sum := idSum(id)
	return &session{
		id: id, sum: sum, digest: sum[:sessionDigestLen], protocolVersion: version, owner: owner, clientCaps: caps, views: rendersViews(caps),
		notes: make(chan []byte, 16), closed: make(chan struct{}),
	}
}

// sessionDigest names a session in logs without revealing its id, which
// works as a credential.
func sessionDigest(id string) string { return idSum(id)[:sessionDigestLen] }

// sessionDigestLen is the length of a session digest: 6 bytes, in hex.
const sessionDigestLen = 12

// idSum is the hex SHA-256 of a session id.
func idSum(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func (s *session) touch(now time.Time) { s.lastSeen.Store(now.UnixNano()) }

// track registers an in-flight request so a notifications/cancelled can
// reach it. It returns the key that untrack unregisters it by (a method
// pair rather than a returned closure: one allocation less per call).
func (s *session) track(id json.RawMessage, cancel context.CancelFunc) string {
	key := string(id)
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = make(map[string]context.CancelFunc)
	}
	s.inflight[key] = cancel
	s.mu.Unlock()
	return key
}

// untrack unregisters the in-flight request track registered as key.
func (s *session) untrack(key string) {
	s.mu.Lock()
	delete(s.inflight, key)
	s.mu.Unlock()
}

// cancel cancels the in-flight request with the given raw id, if any.
func (s *session) cancel(id json.RawMessage) bool {
	s.mu.Lock()
	c, ok := s.inflight[string(id)]
	s.mu.Unlock()
	if ok {
		c()
	}
	return ok
}

// notify queues a notification for the session's GET stream.
func (s *session) notify(b []byte) {
	select {
	case s.notes <- b:
	default:
	}
}

func (s *session) close() {
	s.once.Do(func() {
		if f := s.closing.Load(); f != nil {
			go (*f)()
		}
		close(s.closed)
		if s.streams != nil {
			s.streams.stop()
		}
		s.mu.Lock()
		for _, c := range s.inflight {
			c()
		}
		s.mu.Unlock()
	})
}

// sessions holds the live sessions of this replica.
type sessions struct {
	aead   cipher.AEAD
	ttl    time.Duration
	maxAge time.Duration
	now    func() time.Time
	m      sync.Map // id → *session
	// sums indexes the same sessions by session.sum, for the
	// cancellations other replicas relay (cancels.go).
	sums sync.Map // sum → *session
	n    atomic.Int64
	// graves remembers ended sessions so they are not resumed; shared
	// through Redis when configured.
	graves tombstones
	// onResume is told of a session resumed from its id (for the log).
	onResume func(s *session)
	// replay bounds the events the sessions keep for resumption; nil
	// takes the defaults.
	replay *replayBudget
}

func newSessions(key []byte, ttl, maxAge time.Duration, graves tombstones, now func() time.Time) (*sessions, error) {
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generating session key: %w", err)
		}
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("session key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session key: %w", err)
	}
	if graves == nil {
		graves = &localGraves{}
	}
	return &sessions{aead: aead, ttl: ttl, maxAge: maxAge, graves: graves, now: now}, nil
}

// ownerDigest is what a session id carries of its owner.
func ownerDigest(owner string) [16]byte {
	sum := sha256.Sum256([]byte("mcpgw session owner\x00" + owner))
	var d [16]byte
	copy(d[:], sum[:16])
	return d
}

// create starts a session and returns it.
func (ss *sessions) create(protocolVersion, owner string, caps json.RawMessage) (*session, error) {
	// The live session keeps every capability; only the id is bounded, so
	// a session resumed on another replica knows none of them when they
	// did not fit.
	sealCaps := caps
	if len(sealCaps) > maxSealedCaps {
		sealCaps = nil
	}
	now := ss.now()
	plain := make([]byte, plainVersion+1+len(protocolVersion)+len(sealCaps))
	binary.BigEndian.PutUint64(plain[plainCreated:], uint64(now.Unix())) //nolint:gosec // a clock after 1970; the bits are kept either way.
	if _, err := rand.Read(plain[plainRandom:plainOwner]); err != nil {
		return nil, fmt.Errorf("generating session id: %w", err)
	}
	od := ownerDigest(owner)
	copy(plain[plainOwner:], od[:])
	plain[plainVersion] = byte(len(protocolVersion)) & versionMask
	if rendersViews(caps) {
		plain[plainVersion] |= flagViews
	}
	copy(plain[plainVersion+1:], protocolVersion)
	copy(plain[plainVersion+1+len(protocolVersion):], sealCaps)
	nonce := make([]byte, ss.aead.NonceSize(), ss.aead.NonceSize()+len(plain)+ss.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generating session id: %w", err)
	}
	sealed := ss.aead.Seal(nonce, nonce, plain, []byte(sessionIDPrefix))
	s := newSession(sessionIDPrefix+base64.RawURLEncoding.EncodeToString(sealed), protocolVersion, owner, caps)
	s.streams = newStreams(ss.replay)
	s.touch(now)
	ss.m.Store(s.id, s)
	ss.sums.Store(s.sum, s)
	ss.n.Add(1)
	return s, nil
}

// get returns the live session with the given id, if owner holds it. A
// forged, unknown, terminated, idle-expired or someone else's id reports
// false.
func (ss *sessions) get(id, owner string) (*session, bool) {
	v, ok := ss.m.Load(id)
	if !ok {
		return ss.resume(id, owner)
	}
	s := v.(*session) //nolint:errcheck,forcetypeassert // the map only holds *session.
	if s.owner != owner {
		return nil, false
	}
	now := ss.now()
	if now.UnixNano()-s.lastSeen.Load() > int64(ss.ttl) {
		ss.end(s)
		return nil, false
	}
	s.touch(now)
	return s, true
}

// resume takes over a session this replica does not hold: one another
// replica created, or this one before a restart. The id must unseal, name
// owner, be younger than maxAge and not have ended.
func (ss *sessions) resume(id, owner string) (*session, bool) {
	enc, ok := strings.CutPrefix(id, sessionIDPrefix)
	if !ok {
		return nil, false
	}
	// Strict: a lenient decoder ignores the padding bits of the last
	// character, so one id would have several spellings, each missing the
	// tombstone of the others (an ended session resumed by its owner).
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	ns := ss.aead.NonceSize()
	if err != nil || len(sealed) < ns+ss.aead.Overhead() {
		return nil, false
	}
	plain, err := ss.aead.Open(nil, sealed[:ns], sealed[ns:], []byte(sessionIDPrefix))
	if err != nil || len(plain) < plainVersion+1 || len(plain) < plainVersion+1+int(plain[plainVersion]&versionMask) {
		return nil, false
	}
	od := ownerDigest(owner)
	if subtle.ConstantTimeCompare(plain[plainOwner:plainVersion], od[:]) != 1 {
		return nil, false
	}
	now := ss.now()
	created := time.Unix(int64(binary.BigEndian.Uint64(plain[plainCreated:])), 0) //nolint:gosec // our own sealed value.
	if now.Sub(created) > ss.maxAge {
		return nil, false
	}
	vEnd := plainVersion + 1 + int(plain[plainVersion]&versionMask)
	version := string(plain[plainVersion+1 : vEnd])
	if !slices.Contains(mcpwire.LegacyVersions(), version) || ss.graves.buried(id) {
		return nil, false
	}
	var caps json.RawMessage
	if rest := plain[vEnd:]; len(rest) > 0 {
		caps = json.RawMessage(rest)
	}
	s := newSession(id, version, owner, caps)
	s.views = s.views || plain[plainVersion]&flagViews != 0
	s.streams = newStreams(ss.replay)
	s.touch(now)
	if v, loaded := ss.m.LoadOrStore(id, s); loaded {
		return v.(*session), true //nolint:errcheck,forcetypeassert // the map only holds *session.
	}
	ss.sums.Store(s.sum, s)
	ss.n.Add(1)
	if ss.onResume != nil {
		ss.onResume(s)
	}
	return s, true
}

// end ends a session for good (DELETE, idle expiry): it is removed and
// never resumed.
func (ss *sessions) end(s *session) {
	ss.graves.bury(s.id, ss.maxAge)
	ss.remove(s)
}

// remove drops a session from this replica; its id stays resumable
// (shutdown).
func (ss *sessions) remove(s *session) {
	if _, loaded := ss.m.LoadAndDelete(s.id); loaded {
		ss.sums.CompareAndDelete(s.sum, s)
		ss.n.Add(-1)
	}
	s.close()
}

// bySum returns the live session whose id hashes to sum (session.sum).
func (ss *sessions) bySum(sum string) (*session, bool) {
	v, ok := ss.sums.Load(sum)
	if !ok {
		return nil, false
	}
	return v.(*session), true //nolint:errcheck,forcetypeassert // the map only holds *session.
}

// sweep removes idle sessions; it runs periodically.
func (ss *sessions) sweep() {
	limit := ss.now().UnixNano() - int64(ss.ttl)
	ss.m.Range(func(_, v any) bool {
		s := v.(*session) //nolint:errcheck,forcetypeassert // the map only holds *session.
		if s.lastSeen.Load() < limit {
			ss.end(s)
		} else if s.streams != nil {
			s.streams.sweep()
		}
		return true
	})
	ss.graves.prune()
}

// broadcast queues a notification on every session.
func (ss *sessions) broadcast(b []byte) {
	ss.m.Range(func(_, v any) bool {
		v.(*session).notify(b) //nolint:errcheck,forcetypeassert // the map only holds *session.
		return true
	})
}

// closeAll ends every session (shutdown).
func (ss *sessions) closeAll() {
	ss.m.Range(func(_, v any) bool {
		ss.remove(v.(*session)) //nolint:errcheck,forcetypeassert // the map only holds *session.
		return true
	})
}

func (ss *sessions) count() int64 { return ss.n.Load() }
