package authn_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn"
	"github.com/mcpgw/mcpgw/authn/authntest"
	"github.com/mcpgw/mcpgw/configs"
)

// fetchBound is the most key-set fetches that fetches at least interval
// apart can make within elapsed: the first, then one per whole interval.
func fetchBound(elapsed, interval time.Duration) int64 {
	return 1 + int64(elapsed/interval)
}

// TestKeyRotationUnderFlood is the rotation the issue describes: while
// tokens with forged key ids arrive without pause, the issuer rotates its
// keys, and the first token signed with the new key is accepted on its
// first try (it waits for the next fetch instead of being refused because a
// forged token used the last one). Fetches stay at most one per interval.
func TestKeyRotationUnderFlood(t *testing.T) {
	t.Parallel()

	start := time.Now()
	f := setup(t, nil) // the default interval
	interval := configs.DefaultJWKSRefreshMinInterval
	old := f.iss.Mint(map[string]any{"sub": "alice"})
	_, err := f.auth.Authenticate(t.Context(), bearer(old))
	require.NoError(t, err)
	require.EqualValues(t, 1, f.iss.Counts().JWKS)

	// The flood: 64 clients sending tokens with a new forged kid each time.
	var (
		stop    atomic.Bool
		refused atomic.Int64
		wrong   atomic.Value
		wg      sync.WaitGroup
	)
	for g := range 64 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				kid := fmt.Sprintf("forged-%d-%d", g, i)
				_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "mallory"}, authntest.WithKID(kid))))
				if !errors.Is(err, authn.ErrSignature) {
					wrong.Store(fmt.Sprint(err))
				}
				refused.Add(1)
			}
		})
	}
	stopFlood := func() {
		stop.Store(true)
		wg.Wait()
	}
	t.Cleanup(stopFlood)
	require.Eventually(t, func() bool { return f.iss.Counts().JWKS >= 2 }, 10*time.Second, 5*time.Millisecond,
		"the flood triggers a re-fetch")

	f.iss.Rotate()
	rotated := time.Now()
	fresh := f.iss.Mint(map[string]any{"sub": "bob"})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	p, err := f.auth.Authenticate(ctx, bearer(fresh))
	accepted := time.Since(rotated)
	require.NoError(t, err, "a token of the rotated key is accepted on its first try, within 5s")
	assert.Equal(t, "bob", p.Subject)

	// Let the flood run a few more intervals, then count.
	require.Eventually(t, func() bool { return f.iss.Counts().JWKS >= 5 }, 20*time.Second, 5*time.Millisecond)
	stopFlood()
	elapsed := time.Since(start)
	fetches := f.iss.Counts().JWKS
	assert.LessOrEqual(t, fetches, fetchBound(elapsed, interval), "fetches at least %s apart", interval)
	assert.Nil(t, wrong.Load(), "every forged token is refused as a bad signature")
	t.Logf("rotated key accepted after %s; %d forged tokens refused, %d fetches in %s",
		accepted.Round(time.Millisecond), refused.Load(), fetches, elapsed.Round(time.Millisecond))
}

// TestKeyRotationIsFollowed: a token signed with a key the gateway has not
// fetched yet waits for the next fetch and is accepted; tokens of the
// retired key still verify, cached or not.
func TestKeyRotationIsFollowed(t *testing.T) {
	t.Parallel()

	f := setup(t, nil)
	old := f.iss.Mint(map[string]any{"sub": "alice"})
	_, err := f.auth.Authenticate(t.Context(), bearer(old))
	require.NoError(t, err)

	f.iss.Rotate()
	p, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "bob"})))
	require.NoError(t, err, "the rotated key is fetched")
	assert.Equal(t, "bob", p.Subject)
	assert.EqualValues(t, 2, f.iss.Counts().JWKS)

	_, err = f.auth.Authenticate(t.Context(), bearer(old))
	require.NoError(t, err)
	fresh, err := authn.New(f.cfg, authn.Options{Now: f.clock.Now})
	require.NoError(t, err)
	_, err = fresh.Authenticate(t.Context(), bearer(old))
	require.NoError(t, err)
}

// TestUnknownKidRefetchIsRateLimited: tokens with unknown key ids share
// the next fetch, and fetches stay at least an interval apart. A token
// whose kid is known but whose signature is bad costs no fetch.
func TestUnknownKidRefetchIsRateLimited(t *testing.T) {
	t.Parallel()

	start := time.Now()
	f := setup(t, func(c *configs.Auth) { c.JWKSRefreshMinInterval = 200 * time.Millisecond })
	_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"})))
	require.NoError(t, err)
	require.EqualValues(t, 1, f.iss.Counts().JWKS, "the first token fetches the key set")

	for _, tamper := range []authntest.MintOption{authntest.WithTamperedSignature(), authntest.WithTamperedPayload()} {
		_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"}, tamper)))
		require.ErrorIs(t, err, authn.ErrSignature)
	}
	assert.EqualValues(t, 1, f.iss.Counts().JWKS, "a known kid with a bad signature is refused without a fetch")

	var wg sync.WaitGroup
	for i := range 40 {
		kid := fmt.Sprint("forged", i)
		requireUnknownKID(t, f.iss, kid)
		tok := f.iss.Mint(map[string]any{"sub": "alice"}, authntest.WithKID(kid))
		wg.Go(func() {
			_, err := f.auth.Authenticate(t.Context(), bearer(tok))
			assert.ErrorIs(t, err, authn.ErrSignature)
		})
	}
	wg.Wait()
	fetches := f.iss.Counts().JWKS
	assert.Greater(t, fetches, int64(1), "unknown kids are looked up")
	assert.LessOrEqual(t, fetches, fetchBound(time.Since(start), 200*time.Millisecond))

	// Known keys verify new tokens without a fetch.
	_, err = f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "bob"}, authntest.WithAlg("ES256"))))
	require.NoError(t, err)
	assert.Equal(t, fetches, f.iss.Counts().JWKS)
}

// TestUnknownKidWaitIsBounded: the wait for the next fetch ends with the
// request's context, and a fetch that fails answers 503 (the issuer is
// unreachable), not 401; tokens of known keys keep verifying.
func TestUnknownKidWaitIsBounded(t *testing.T) {
	t.Parallel()

	f := setup(t, func(c *configs.Auth) { c.JWKSRefreshMinInterval = time.Minute })
	_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"})))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = f.auth.Authenticate(ctx, bearer(f.iss.Mint(map[string]any{"sub": "alice"}, authntest.WithKID("forged"))))
	require.ErrorIs(t, err, authn.ErrIssuerUnavailable)
	require.ErrorIs(t, err, context.Canceled)

	g := setup(t, func(c *configs.Auth) { c.JWKSRefreshMinInterval = 100 * time.Millisecond })
	_, err = g.auth.Authenticate(t.Context(), bearer(g.iss.Mint(map[string]any{"sub": "alice"})))
	require.NoError(t, err)
	forged := g.iss.Mint(map[string]any{"sub": "alice"}, authntest.WithKID("forged"))
	known := g.iss.Mint(map[string]any{"sub": "bob"})
	g.iss.Close()
	_, err = g.auth.Authenticate(t.Context(), bearer(forged))
	require.ErrorIs(t, err, authn.ErrIssuerUnavailable)
	rec := newRecorder()
	g.auth.Middleware(okHandler()).ServeHTTP(rec, bearer(forged))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	_, err = g.auth.Authenticate(t.Context(), bearer(known))
	require.NoError(t, err, "the keys in hand still verify")
}

// TestKeySetRefreshHonoursMaxAge: a key set past its Cache-Control max-age
// is fetched again in the background, with no unknown kid to ask for it,
// while the tokens that find it stale are verified with the keys in hand;
// and no sooner, though the interval would allow it.
func TestKeySetRefreshHonoursMaxAge(t *testing.T) {
	t.Parallel()

	start := time.Now()
	f := setup(t, func(c *configs.Auth) { c.JWKSRefreshMinInterval = 50 * time.Millisecond },
		authntest.WithJWKSCacheControl("public, max-age=1"))
	_, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"})))
	require.NoError(t, err)
	require.EqualValues(t, 1, f.iss.Counts().JWKS)

	var failed atomic.Value
	require.Eventually(t, func() bool {
		// A new token each time, so none comes from the cache.
		if _, err := f.auth.Authenticate(t.Context(), bearer(f.iss.Mint(map[string]any{"sub": "alice"}))); err != nil {
			failed.Store(err.Error())
		}
		return f.iss.Counts().JWKS >= 3
	}, 20*time.Second, 10*time.Millisecond, "the stale key set is refreshed")
	assert.Nil(t, failed.Load(), "tokens are verified while the set is refreshed")
	assert.LessOrEqual(t, f.iss.Counts().JWKS, fetchBound(time.Since(start), time.Second), "refreshed after max-age, not after the interval")
}
