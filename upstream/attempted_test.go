package upstream_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream"
)

// startUnwaited starts a client for url without waiting for it to become
// available.
func startUnwaited(t *testing.T, url string) (*upstream.Client, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg := httpConfig("orders", url)
	c, err := upstream.New(&cfg, &upstream.Options{OnChange: rec.onChange, ClientName: "mcpgw-test", ClientVersion: "0.0.1", HealthInterval: time.Hour})
	require.NoError(t, err)
	c.Start()
	t.Cleanup(func() { _ = c.Close() })
	return c, rec
}

func attempted(c *upstream.Client) func(*upstream.Catalog, bool) bool {
	return func(*upstream.Catalog, bool) bool { return c.Attempted() }
}

// TestAttemptedWaitsForASlowFirstListing: while the first tools/list of a
// real mcp-go upstream is held, the first attempt has not finished; once
// it answers, the catalog is there and Attempted is true.
func TestAttemptedWaitsForASlowFirstListing(t *testing.T) {
	listing := make(chan struct{}, 1)
	release := make(chan struct{})
	inner := mcpgoModern(mcpgoServer(newFixture()))
	ts := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, _ := readAll(r)
			if strings.Contains(body, `"method":"tools/list"`) {
				select {
				case listing <- struct{}{}:
				default:
				}
				select {
				case <-release:
				case <-r.Context().Done():
					return
				}
			}
		}
		inner.ServeHTTP(w, r)
	}))
	c, rec := startUnwaited(t, ts.url("/mcp"))
	receive(t, listing, "the first tools/list")
	assert.False(t, c.Attempted(), "the first listing is under way")
	cat, _ := c.Catalog()
	assert.Nil(t, cat)

	close(release)
	waitFor(t, c, rec, "the first listing to answer", available)
	assert.True(t, c.Attempted())
}

// TestAttemptedAfterAFailedFirstListing: an upstream that is down (its
// port refuses connections) finishes its first attempt by failing, and
// says so through OnChange, so that readiness does not wait for it
// forever. It stays without a catalog and unavailable.
func TestAttemptedAfterAFailedFirstListing(t *testing.T) {
	ts := serve(t, http.NotFoundHandler())
	ts.stop() // the port now refuses connections
	c, rec := startUnwaited(t, ts.url("/mcp"))
	waitFor(t, c, rec, "the first attempt to fail", attempted(c))
	cat, ok := c.Catalog()
	assert.Nil(t, cat)
	assert.False(t, ok)
}
