package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// defaultKeySetTTL is how long a key set is used before a background
	// refresh when its response carries no Cache-Control max-age.
	defaultKeySetTTL = 5 * time.Minute
	// maxKeySetTTL caps the max-age of a key set, so a key the issuer
	// withdraws stops verifying within a day whatever it announced.
	maxKeySetTTL = 24 * time.Hour
)

// errUnknownKey is the refusal of a token whose key id the issuer's key set
// does not hold even after a fetch that followed the token's arrival.
var errUnknownKey = errors.New("no key in the issuer's key set verifies the token")

// keySet is one issuer's JSON Web Key Set (RFC 7517 section 5), fetched from
// its jwks_uri. It replaces go-oidc's RemoteKeySet, whose only guard
// against forged key ids is to refuse every fetch within an interval of the
// last, so one forged token could hold off the fetch that a real token
// signed with a freshly rotated key needs.
//
// The policy, one fetch scheduler for every reason to fetch:
//
//   - fetches start at least min apart (jwks_refresh_min_interval), whatever
//     asks for them;
//   - a token whose kid is not in the set (OpenID Connect Core section
//     10.1.1: a new kid is how the signer announces a rotation), or that has
//     no kid and no key verifies, waits for the next fetch, bounded by its
//     request's context, and is checked against its result. However many
//     tokens wait, they share that one fetch;
//   - a token whose kid is in the set but whose signature does not verify is
//     refused at once, without a fetch: the key behind a kid does not change;
//   - a set older than its Cache-Control max-age (RFC 9111 section 5.2.2.1;
//     defaultKeySetTTL without one) is refreshed in the background by the
//     first token that finds it stale, which is verified against the set in
//     hand meanwhile;
//   - a failed fetch keeps the previous set.
//
// Times are the real clock's (monotonic), not the Authenticator's Now: the
// interval schedules timers.
type keySet struct {
	issuer string
	url    string
	hc     *http.Client
	algs   []jose.SignatureAlgorithm
	min    time.Duration
	log    logger

	keys atomic.Pointer[keySnapshot] // nil until the first fetch succeeds

	mu        sync.Mutex
	next      *keyFetch // the fetch scheduled or running; nil when none
	lastStart time.Time // when the last fetch started; zero before the first
}

// keySnapshot is a fetched key set. It is never changed once published.
type keySnapshot struct {
	byKID   map[string][]jose.JSONWebKey
	all     []jose.JSONWebKey
	staleAt time.Time
}

// keyFetch is one fetch that tokens may wait for. keys and err are set
// before done is closed; keys is the set after the fetch (the previous one
// when it failed, possibly nil).
type keyFetch struct {
	done chan struct{}
	keys *keySnapshot
	err  error
}

func newKeySet(issuer, url string, hc *http.Client, algs []string, minInterval time.Duration, log logger) *keySet {
	ks := &keySet{issuer: issuer, url: url, hc: hc, min: minInterval, log: log}
	for _, a := range algs {
		ks.algs = append(ks.algs, jose.SignatureAlgorithm(a))
	}
	return ks
}

// sigOutcomeKey carries a *sigOutcome through go-oidc's Verify, which
// flattens the error of VerifySignature into a string, so the caller can
// still tell an unknown key from an unreachable issuer.
type sigOutcomeKey struct{}

type sigOutcome struct{ err error }

// VerifySignature implements oidc.KeySet.
func (ks *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := ks.verify(ctx, jwt)
	if err != nil {
		if o, ok := ctx.Value(sigOutcomeKey{}).(*sigOutcome); ok {
			o.err = err
		}
	}
	return payload, err
}

func (ks *keySet) verify(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, ks.algs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	if len(jws.Signatures) != 1 {
		return nil, ErrMalformedToken
	}
	kid := jws.Signatures[0].Header.KeyID
	snap := ks.keys.Load()
	if snap != nil {
		if time.Now().After(snap.staleAt) {
			ks.schedule()
		}
		payload, known := snap.verify(jws, kid)
		if payload != nil {
			return payload, nil
		}
		if known {
			return nil, fmt.Errorf("%w: the key it names does not verify it", ErrSignature)
		}
	}
	// A fetch may have finished since the set was loaded.
	if cur := ks.keys.Load(); cur != nil && cur != snap {
		if payload, _ := cur.verify(jws, kid); payload != nil {
			return payload, nil
		}
	}
	// The key may be new: wait for the next fetch, which every token
	// waiting now shares.
	f := ks.schedule()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %s: waiting for its key set: %w", ErrIssuerUnavailable, ks.issuer, ctx.Err())
	case <-f.done:
	}
	if f.keys != nil {
		if payload, _ := f.keys.verify(jws, kid); payload != nil {
			return payload, nil
		}
	}
	if f.err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIssuerUnavailable, ks.issuer, f.err)
	}
	return nil, fmt.Errorf("%w: %w", ErrSignature, errUnknownKey)
}

// verify returns the payload if a key of the snapshot verifies jws, and
// whether the snapshot holds a key with that kid.
func (s *keySnapshot) verify(jws *jose.JSONWebSignature, kid string) (payload []byte, known bool) {
	candidates := s.all
	if kid != "" {
		candidates, known = s.byKID[kid]
	}
	for i := range candidates {
		if p, err := jws.Verify(&candidates[i]); err == nil {
			return p, true
		}
	}
	return nil, known
}

// warm fetches the key set when none has been fetched yet, and waits for
// that fetch.
func (ks *keySet) warm(ctx context.Context) error {
	if ks.keys.Load() != nil {
		return nil
	}
	f := ks.schedule()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-f.done:
		return f.err
	}
}

// schedule returns the fetch scheduled or running, or schedules one as soon
// as the interval allows.
func (ks *keySet) schedule() *keyFetch {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if ks.next != nil {
		return ks.next
	}
	f := &keyFetch{done: make(chan struct{})}
	ks.next = f
	wait := time.Duration(0)
	if !ks.lastStart.IsZero() {
		wait = time.Until(ks.lastStart.Add(ks.min))
	}
	if wait <= 0 {
		ks.lastStart = time.Now()
		go ks.run(f)
		return f
	}
	time.AfterFunc(wait, func() {
		ks.mu.Lock()
		ks.lastStart = time.Now()
		ks.mu.Unlock()
		ks.run(f)
	})
	return f
}

// run performs fetch f and publishes its result.
func (ks *keySet) run(f *keyFetch) {
	snap, err := ks.fetch()
	prev := ks.keys.Load()
	ks.mu.Lock()
	if err == nil {
		ks.keys.Store(snap)
	} else {
		snap = prev
	}
	ks.next = nil
	ks.mu.Unlock()
	f.keys, f.err = snap, err
	close(f.done)

	// A background goroutine: no request's context to log with.
	ctx := context.Background()
	switch {
	case err != nil:
		ks.log.WarnContext(ctx, "key set fetch failed", "issuer", ks.issuer, "error", err)
	case prev == nil || !slices.Equal(kids(prev), kids(snap)):
		ks.log.InfoContext(ctx, "key set fetched", "issuer", ks.issuer, "keys", len(snap.all), "refresh_in", time.Until(snap.staleAt).Round(time.Second))
	}
}

// kids returns the sorted key ids of s.
func kids(s *keySnapshot) []string {
	out := make([]string, 0, len(s.all))
	for i := range s.all {
		out = append(out, s.all[i].KeyID)
	}
	slices.Sort(out)
	return out
}

// fetch gets and decodes the key set. A panic is an error, so tokens
// waiting for the fetch are answered.
func (ks *keySet) fetch() (snap *keySnapshot, err error) {
	defer func() {
		if v := recover(); v != nil {
			snap, err = nil, fmt.Errorf("fetching key set: panic: %v", v)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ks.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := ks.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("key set: %s", resp.Status)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, fmt.Errorf("decoding key set: %w", err)
	}
	snap = &keySnapshot{
		byKID:   make(map[string][]jose.JSONWebKey, len(raw.Keys)),
		staleAt: start.Add(keySetTTL(resp.Header, ks.min)),
	}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		// RFC 7517 section 5: keys of types or parameters not understood
		// are ignored, not the whole set.
		if json.Unmarshal(r, &k) != nil || !k.Valid() || !k.IsPublic() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		snap.all = append(snap.all, k)
		if k.KeyID != "" {
			snap.byKID[k.KeyID] = append(snap.byKID[k.KeyID], k)
		}
	}
	if len(snap.all) == 0 {
		// Keeping the previous set beats refusing every token.
		return nil, errors.New("key set has no usable signing key")
	}
	return snap, nil
}

// keySetTTL is how long a key set served with header h is used before a
// background refresh: its Cache-Control max-age less its Age (RFC 9111
// sections 5.2.2.1 and 4.2.3), between minInterval and maxKeySetTTL, or
// defaultKeySetTTL when there is no positive max-age. no-cache and no-store
// get the default too: the set must be kept to verify anything, and
// re-fetching it every minInterval under traffic would only load the
// issuer.
func keySetTTL(h http.Header, minInterval time.Duration) time.Duration {
	maxAge, ok := cacheMaxAge(h.Values("Cache-Control"))
	if !ok {
		return defaultKeySetTTL
	}
	if age, err := strconv.ParseInt(strings.TrimSpace(h.Get("Age")), 10, 64); err == nil && age > 0 {
		maxAge -= min(age, maxAge)
	}
	ttl := time.Duration(min(maxAge, int64(maxKeySetTTL/time.Second))) * time.Second
	return max(ttl, minInterval)
}

// cacheMaxAge returns the positive max-age directive of Cache-Control
// values, if there is one.
func cacheMaxAge(values []string) (int64, bool) {
	for _, v := range values {
		for d := range strings.SplitSeq(v, ",") {
			name, arg, _ := strings.Cut(strings.TrimSpace(d), "=")
			if !strings.EqualFold(strings.TrimSpace(name), "max-age") {
				continue
			}
			n, err := strconv.ParseInt(strings.Trim(strings.TrimSpace(arg), `"`), 10, 64)
			if err != nil || n <= 0 {
				return 0, false
			}
			return n, true
		}
	}
	return 0, false
}
