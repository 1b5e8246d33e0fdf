package gateway

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cancellation across replicas. A 2025-era session may be served by any
// replica that shares server.session_key, so a client's
// notifications/cancelled (2025-11-25 basic/utilities/cancellation: it
// names the request by its id, within the session) can land on another
// replica than the one running the call. The in-flight calls stay in the
// memory of the replica that runs them (session.track: no Redis round trip
// per call); only a cancellation that finds no call here is published, to
// every replica, and the one that holds the call cancels it.
//
// A relayed cancellation names the session by the SHA-256 of its id (the
// id is a bearer credential and never leaves the replica) and its owner by
// ownerDigest, both as the replica that took the notification resolved
// them: it had already unsealed the id and checked that the caller is the
// session's owner. The replica running the call cancels it only when both
// match the live session and the request id names a call in flight there,
// so a principal can cancel only its own calls, in its own session.
//
// The stateless 2026-07-28 era has nothing to relay: over Streamable HTTP
// a client cancels by closing the request's stream, which ends on the
// replica running the call (2026-07-28 basic/patterns/cancellation,
// "Transport-Specific Cancellation").

// cancelBus carries cancellations between the replicas of a fleet.
type cancelBus interface {
	// publish sends msg to every replica, this one included.
	publish(ctx context.Context, msg string) error
	// listen hands every message published to deliver, one at a time and
	// in order, until stop closes. It calls ready once, when the
	// subscription is active or the first attempt failed (then it keeps
	// trying).
	listen(stop <-chan struct{}, ready func(error), deliver func(msg string))
}

// cancelMsgVersion starts every relayed cancellation, so a replica of
// another version can tell a layout it does not know.
const cancelMsgVersion = "c1"

// remoteCancel is one relayed notifications/cancelled.
type remoteCancel struct {
	sum   string          // hex SHA-256 of the session id (session.sum)
	owner string          // hex ownerDigest of the session's owner
	id    json.RawMessage // the JSON-RPC id of the request, as the client sent it
}

// encode is "c1 <sum> <owner> <id>"; the id, raw JSON, comes last.
func (c *remoteCancel) encode() string {
	return cancelMsgVersion + " " + c.sum + " " + c.owner + " " + string(c.id)
}

// decodeCancel parses what encode wrote; anything else reports false.
func decodeCancel(msg string) (remoteCancel, bool) {
	v, rest, ok := strings.Cut(msg, " ")
	if !ok || v != cancelMsgVersion {
		return remoteCancel{}, false
	}
	sum, rest, ok := strings.Cut(rest, " ")
	if !ok || len(sum) != 2*32 {
		return remoteCancel{}, false
	}
	owner, id, ok := strings.Cut(rest, " ")
	if !ok || len(owner) != 2*len(ownerDigest("")) || id == "" {
		return remoteCancel{}, false
	}
	return remoteCancel{sum: sum, owner: owner, id: json.RawMessage(id)}, true
}

// cancelOf is the relayed form of a cancellation of request id on s.
func cancelOf(s *session, id json.RawMessage) remoteCancel {
	od := ownerDigest(s.owner)
	return remoteCancel{sum: s.sum, owner: hex.EncodeToString(od[:]), id: id}
}

// relayCancel publishes a cancellation that found no call on this replica.
func (g *Gateway) relayCancel(ctx context.Context, s *session, id json.RawMessage) {
	if g.cancels == nil {
		return
	}
	c := cancelOf(s, id)
	if err := g.cancels.publish(ctx, c.encode()); err != nil {
		g.log.WarnContext(ctx, "cancellation not relayed to other replicas", slog.String("session", s.digest),
			slog.String("jsonrpc_request_id", string(id)), slog.Any("error", err))
		return
	}
	g.log.DebugContext(ctx, "cancellation relayed to other replicas", slog.String("session", s.digest),
		slog.String("jsonrpc_request_id", string(id)))
}

// remoteCancel cancels the call a relayed cancellation names, if it runs
// on this replica, in the session and for the owner the message names.
func (g *Gateway) remoteCancel(msg string) {
	c, ok := decodeCancel(msg)
	if !ok {
		return
	}
	s, ok := g.sessions.bySum(c.sum)
	if !ok {
		return
	}
	od := ownerDigest(s.owner)
	if subtle.ConstantTimeCompare([]byte(hex.EncodeToString(od[:])), []byte(c.owner)) != 1 {
		return
	}
	if s.cancel(c.id) {
		g.log.Info("request cancelled by client", slog.String("session", s.digest),
			slog.String("jsonrpc_request_id", string(c.id)), slog.Bool("relayed", true))
	}
}

// startCancels subscribes this replica to relayed cancellations. It waits
// for the subscription (at most one Redis command timeout), so that a
// replica that reports ready also takes the cancellations of its calls.
func (g *Gateway) startCancels() {
	if g.cancels == nil {
		return
	}
	ready := make(chan error, 1)
	g.wg.Go(func() {
		defer func() {
			if r := recover(); r != nil {
				g.log.Error("cancellation listener panicked", slog.Any("panic", r))
			}
		}()
		g.cancels.listen(g.stop, func(err error) { ready <- err }, g.remoteCancel)
	})
	select {
	case err := <-ready:
		if err != nil {
			g.log.Warn("not subscribed to relayed cancellations yet; retrying", slog.Any("error", err))
		}
	case <-g.stop:
	}
}

// redisCancels relay cancellations through a Redis pub/sub channel.
type redisCancels struct {
	rc      *redis.Client
	channel string
	// timeout bounds the subscription's first confirmation.
	timeout time.Duration
}

var _ cancelBus = (*redisCancels)(nil)

func newRedisCancels(rc *redis.Client, prefix string) *redisCancels {
	return &redisCancels{rc: rc, channel: prefix + "session:cancel", timeout: rc.Options().ReadTimeout + rc.Options().DialTimeout}
}

func (r *redisCancels) publish(ctx context.Context, msg string) error {
	return r.rc.Publish(ctx, r.channel, msg).Err()
}

func (r *redisCancels) listen(stop <-chan struct{}, ready func(error), deliver func(string)) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ps := r.rc.Subscribe(ctx, r.channel)
	defer ps.Close()
	// The confirmation says the subscription is active; go-redis's channel
	// then resubscribes by itself after a lost connection (messages
	// published meanwhile are lost, as a cancellation racing a call's end
	// may be).
	_, err := ps.ReceiveTimeout(ctx, r.timeout)
	ready(err)
	ch := ps.Channel()
	for {
		select {
		case <-stop:
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			deliver(m.Payload)
		}
	}
}
