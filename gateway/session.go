package gateway

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Session ids are sealed with AES-256-GCM: "s1." + base64url(nonce ‖
// ciphertext) over the creation time and 16 random bytes. The random part
// makes an id unguessable; the seal lets the gateway reject a forged id
// without a lookup, and (with a shared key) lets replicas recognise each
// other's ids. The session's live state (idle timer, in-flight calls, its
// notification stream) is held by the replica that created it.
const sessionIDPrefix = "s1."

// session is one 2025-era client session.
type session struct {
	id              string
	protocolVersion string
	// owner is the principal the session is bound to (issuer and subject),
	// "" when the gateway is unauthenticated. Another principal presenting
	// the id gets the same 404 as for an unknown id.
	owner    string
	lastSeen atomic.Int64 // unix nanoseconds
	// clientCaps is the ClientCapabilities object the client declared at
	// initialize: what server-to-client requests it may be sent.
	clientCaps json.RawMessage

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
}

// sessionDigest names a session in logs without revealing its id, which
// works as a credential.
func sessionDigest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

func (s *session) touch(now time.Time) { s.lastSeen.Store(now.UnixNano()) }

// track registers an in-flight request so a notifications/cancelled can
// reach it. It returns a function that unregisters it.
func (s *session) track(id json.RawMessage, cancel context.CancelFunc) func() {
	key := string(id)
	s.mu.Lock()
	if s.inflight == nil {
		s.inflight = make(map[string]context.CancelFunc)
	}
	s.inflight[key] = cancel
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.inflight, key)
		s.mu.Unlock()
	}
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
		close(s.closed)
		s.mu.Lock()
		for _, c := range s.inflight {
			c()
		}
		s.mu.Unlock()
	})
}

// sessions holds the live sessions of this replica.
type sessions struct {
	aead cipher.AEAD
	ttl  time.Duration
	now  func() time.Time
	m    sync.Map // id → *session
	n    atomic.Int64
}

func newSessions(key []byte, ttl time.Duration, now func() time.Time) (*sessions, error) {
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
	return &sessions{aead: aead, ttl: ttl, now: now}, nil
}

// create starts a session and returns it.
func (ss *sessions) create(protocolVersion, owner string) (*session, error) {
	now := ss.now()
	plain := make([]byte, 8+16)
	binary.BigEndian.PutUint64(plain, uint64(now.Unix()))
	if _, err := rand.Read(plain[8:]); err != nil {
		return nil, fmt.Errorf("generating session id: %w", err)
	}
	nonce := make([]byte, ss.aead.NonceSize(), ss.aead.NonceSize()+len(plain)+ss.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("generating session id: %w", err)
	}
	sealed := ss.aead.Seal(nonce, nonce, plain, []byte(sessionIDPrefix))
	s := &session{
		id:              sessionIDPrefix + base64.RawURLEncoding.EncodeToString(sealed),
		protocolVersion: protocolVersion,
		owner:           owner,
		notes:           make(chan []byte, 16),
		closed:          make(chan struct{}),
	}
	s.touch(now)
	ss.m.Store(s.id, s)
	ss.n.Add(1)
	return s, nil
}

// get returns the live session with the given id, if owner holds it. A
// forged, unknown, terminated, idle-expired or someone else's id reports
// false.
func (ss *sessions) get(id, owner string) (*session, bool) {
	v, ok := ss.m.Load(id)
	if !ok {
		return nil, false
	}
	s := v.(*session) //nolint:errcheck,forcetypeassert // the map only holds *session.
	if s.owner != owner {
		return nil, false
	}
	now := ss.now()
	if now.UnixNano()-s.lastSeen.Load() > int64(ss.ttl) {
		ss.remove(s)
		return nil, false
	}
	s.touch(now)
	return s, true
}

// remove ends a session.
func (ss *sessions) remove(s *session) {
	if _, loaded := ss.m.LoadAndDelete(s.id); loaded {
		ss.n.Add(-1)
	}
	s.close()
}

// sweep removes idle sessions; it runs periodically.
func (ss *sessions) sweep() {
	limit := ss.now().UnixNano() - int64(ss.ttl)
	ss.m.Range(func(_, v any) bool {
		s := v.(*session) //nolint:errcheck,forcetypeassert // the map only holds *session.
		if s.lastSeen.Load() < limit {
			ss.remove(s)
		}
		return true
	})
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
