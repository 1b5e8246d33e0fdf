package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpgw/mcpgw/configs"
	"github.com/mcpgw/mcpgw/internal/backoff"
)

// NewRedisClient connects to the Redis of cfg and checks that it answers
// PING within the dial and command timeouts, so a wrong address stops the
// gateway at start with a clear error rather than at the first call. The
// password comes from cfg.Password.Resolved (filled by configs.Load) and
// overrides one in the URL. The error names the address, never the URL,
// which may carry a password.
//
// Commands are not retried by the client: the rate limiter falls back at
// once and the kill-switch loop retries on its own schedule.
func NewRedisClient(ctx context.Context, cfg *configs.Redis) (*redis.Client, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: no redis section", ErrInvalidConfig)
	}
	opts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		// go-redis errors quote the URL; this one does not.
		return nil, fmt.Errorf("%w: redis.url does not parse", ErrInvalidConfig)
	}
	if pw := cfg.Password.Resolved.Reveal(); pw != "" {
		opts.Password = pw
	}
	opts.DialTimeout = orDefault(cfg.DialTimeout, configs.DefaultRedisDialTimeout)
	cmdTimeout := orDefault(cfg.CommandTimeout, configs.DefaultRedisCommandTimeout)
	opts.ReadTimeout = cmdTimeout
	opts.WriteTimeout = cmdTimeout
	opts.PoolTimeout = cmdTimeout
	opts.MaxRetries = -1   // No retries of commands,
	opts.DialerRetries = 1 // nor of dials (default 5, 100ms apart).
	opts.DisableIdentity = true
	client := redis.NewClient(opts)

	pctx, cancel := context.WithTimeout(ctx, opts.DialTimeout+cmdTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("%w: redis at %s does not answer PING: %w", ErrRedisUnavailable, opts.Addr, err)
	}
	return client, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// RedisStore keeps records in Redis so replicas share them:
//
//	<prefix><name>          hash: record ID → record JSON
//	<prefix><name>:changed  pub/sub channel: the ID of each changed record
//	<prefix><name>:seeded   "1" once a record has been written
//
// Every change is one MULTI/EXEC of the write, the seeded marker and the
// PUBLISH, so watchers reload right after it. The marker tells an empty
// hash that was emptied on purpose from a Redis that restarted without
// persistence: Load of an empty hash without the marker returns
// ErrStateLost, and the replicas put back what they know.
type RedisStore struct {
	client  *redis.Client
	hash    string
	channel string
	seeded  string
}

var (
	_ Store   = (*RedisStore)(nil)
	_ Watcher = (*RedisStore)(nil)
)

// Names of the Redis stores the gateway uses.
const (
	RedisStoreKillSwitches = "killswitches"
	RedisStoreDrains       = "drains"
	RedisStoreApprovals    = "approvals"
)

// NewRedisStore returns a store over client with keys starting with
// keyPrefix followed by name (RedisStoreKillSwitches, RedisStoreDrains,
// RedisStoreApprovals).
func NewRedisStore(client *redis.Client, keyPrefix, name string) (*RedisStore, error) {
	if client == nil || name == "" {
		return nil, fmt.Errorf("%w: redis store needs a client and a name", ErrInvalidConfig)
	}
	base := keyPrefix + name
	return &RedisStore{client: client, hash: base, channel: base + ":changed", seeded: base + ":seeded"}, nil
}

// Load reads every record.
func (s *RedisStore) Load(ctx context.Context) ([]Switch, error) {
	var (
		all    *redis.MapStringStringCmd
		seeded *redis.IntCmd
	)
	_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		all = p.HGetAll(ctx, s.hash)
		seeded = p.Exists(ctx, s.seeded)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("loading %s from redis: %w", s.hash, err)
	}
	fields := all.Val()
	if len(fields) == 0 && seeded.Val() == 0 {
		return nil, ErrStateLost
	}
	records := make([]Switch, 0, len(fields))
	for id, raw := range fields {
		var sw Switch
		if err := json.Unmarshal([]byte(raw), &sw); err != nil || sw.ID != id {
			return nil, fmt.Errorf("loading %s from redis: record %q is not valid", s.hash, id)
		}
		records = append(records, sw)
	}
	return records, nil
}

// Put adds or replaces a record and notifies watchers.
func (s *RedisStore) Put(ctx context.Context, sw Switch) error { //nolint:gocritic // hugeParam: the signature is Store's, which takes records by value so a store never shares the caller's.
	data, err := json.Marshal(sw)
	if err != nil {
		return err
	}
	_, err = s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.hash, sw.ID, data)
		p.Set(ctx, s.seeded, "1", 0)
		p.Publish(ctx, s.channel, sw.ID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("writing %s to redis: %w", s.hash, err)
	}
	return nil
}

// Delete removes a record and notifies watchers.
func (s *RedisStore) Delete(ctx context.Context, id string) error {
	var del *redis.IntCmd
	_, err := s.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		del = p.HDel(ctx, s.hash, id)
		p.Publish(ctx, s.channel, id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting from %s in redis: %w", s.hash, err)
	}
	if del.Val() == 0 {
		return ErrNotFound
	}
	return nil
}

// Watch subscribes to the change channel and calls changed for every
// message until ctx is done. The subscription reconnects by itself after
// a Redis failure; messages published meanwhile are lost, which the
// registry's periodic resync makes up for. It also calls changed after
// each reconnection.
func (s *RedisStore) Watch(ctx context.Context, changed func()) {
	ps := s.client.Subscribe(ctx, s.channel)
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()
	defer ps.Close()
	bo := backoff.Exponential{Initial: 10 * time.Millisecond, Max: time.Second}
	for ctx.Err() == nil {
		msg, err := ps.Receive(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			// Receive reconnected (or will on the next call); wait a little
			// so a Redis that is down is not spun on.
			if !backoff.Wait(ctx, bo.Next()) {
				return
			}
			continue
		}
		bo.Reset()
		switch msg.(type) {
		case *redis.Message, *redis.Subscription:
			// A subscription confirmation follows every (re)connection:
			// what was published while disconnected is unknown.
			changed()
		}
	}
}
