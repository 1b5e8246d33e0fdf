package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// tombstones remember session ids that ended (DELETE, idle expiry), so
// that no replica resumes them.
type tombstones interface {
	// bury remembers id for ttl.
	bury(id string, ttl time.Duration)
	// buried reports whether id ended; when unsure it says yes (the
	// client then starts a new session, which is always safe).
	buried(id string) bool
	// prune forgets expired entries.
	prune()
}

// localGraves are the tombstones of one replica.
type localGraves struct {
	m sync.Map // id → expiry (time.Time)
}

func (l *localGraves) bury(id string, ttl time.Duration) { l.m.Store(id, time.Now().Add(ttl)) }

func (l *localGraves) buried(id string) bool {
	v, ok := l.m.Load(id)
	return ok && time.Now().Before(v.(time.Time)) //nolint:errcheck,forcetypeassert // the map only holds time.Time.
}

func (l *localGraves) prune() {
	now := time.Now()
	l.m.Range(func(k, v any) bool {
		if now.After(v.(time.Time)) { //nolint:errcheck,forcetypeassert // the map only holds time.Time.
			l.m.Delete(k)
		}
		return true
	})
}

// redisGraves share tombstones through Redis, keeping a local copy.
type redisGraves struct {
	local  localGraves
	rc     *redis.Client
	prefix string
	log    *slog.Logger
}

// redisGraveTimeout bounds a tombstone lookup; it runs only when a
// replica resumes a session it does not hold.
const redisGraveTimeout = 500 * time.Millisecond

func (r *redisGraves) key(id string) string { return r.keyOfSum(idSum(id)) }

// keyOfSum is the tombstone key of the session whose id hashes to sum.
func (r *redisGraves) keyOfSum(sum string) string { return r.prefix + "session:ended:" + sum }

func (r *redisGraves) bury(id string, ttl time.Duration) {
	r.local.bury(id, ttl)
	ctx, cancel := context.WithTimeout(context.Background(), redisGraveTimeout)
	defer cancel()
	key := r.key(id)
	_, err := r.rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, "1", ttl)
		p.Publish(ctx, r.channel(), key)
		return nil
	})
	if err != nil {
		r.log.Warn("session tombstone not shared; other replicas may resume the session", slog.String("session", sessionDigest(id)), slog.Any("error", err))
	}
}

func (r *redisGraves) channel() string { return r.prefix + "session:ended" }

// watch removes, on this replica, the sessions other replicas end, until
// stop closes. The message is the tombstone key, never the id.
func (r *redisGraves) watch(stop <-chan struct{}, ss *sessions) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := r.rc.Subscribe(ctx, r.channel())
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-stop:
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			sum, ok := strings.CutPrefix(msg.Payload, r.keyOfSum(""))
			if !ok {
				continue
			}
			ss.m.Range(func(_, v any) bool {
				s := v.(*session) //nolint:errcheck,forcetypeassert // the map only holds *session.
				if s.sum == sum {
					r.local.bury(s.id, ss.maxAge)
					ss.remove(s)
					return false
				}
				return true
			})
		}
	}
}

func (r *redisGraves) buried(id string) bool {
	if r.local.buried(id) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), redisGraveTimeout)
	defer cancel()
	n, err := r.rc.Exists(ctx, r.key(id)).Result()
	if err != nil {
		r.log.Warn("cannot check session tombstone; refusing to resume", slog.String("session", sessionDigest(id)), slog.Any("error", err))
		return true
	}
	return n > 0
}

func (r *redisGraves) prune() { r.local.prune() }
