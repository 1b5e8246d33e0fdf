package gateway

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// console is a request to the console of an unauthenticated gateway,
// addressed to its loopback host.
func (tg *testGateway) console(t *testing.T, method, path, form string, header map[string]string) (int, string) {
	t.Helper()
	h := map[string]string{"Host": "127.0.0.1:8080"}
	if form != "" {
		h["Content-Type"] = "application/x-www-form-urlencoded"
	}
	maps.Copy(h, header)
	w := tg.doHost(t, method, path, form, h)
	return w.Code, w.Body.String()
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// TestConsolePage: the page renders every section, with a CSRF token;
// a kill posted from it takes effect and is audited as the admin API's
// are; posts without the token, or from another site, are refused; the
// console of an unauthenticated gateway answers only loopback hosts.
func TestConsolePage(t *testing.T) {
	tg := adminGateway(t, nil)
	code, page := tg.console(t, http.MethodGet, "/admin/ui/", "", nil)
	require.Equal(t, http.StatusOK, code, page)
	for _, want := range []string{`id="kill-form"`, `data-upstream="orders"`, `data-tool="orders__get_order"`, `id="no-switches"`, `id="audit"`} {
		assert.Contains(t, page, want)
	}
	m := csrfMeta.FindStringSubmatch(page)
	require.Len(t, m, 2)
	csrf := m[1]

	kill := url.Values{"scope": {"tool"}, "target": {"orders__get_order"}, "reason": {"incident 7"}, "ttl": {"5m"}}.Encode()
	code, body := tg.console(t, http.MethodPost, "/admin/ui/actions/kill", kill, map[string]string{"X-Requested-With": "t"})
	assert.Equal(t, http.StatusForbidden, code, "no CSRF token: %s", body)
	code, body = tg.console(t, http.MethodPost, "/admin/ui/actions/kill", kill, map[string]string{"X-CSRF-Token": csrf, "Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusForbidden, code, "another site: %s", body)
	code, body = tg.console(t, http.MethodPost, "/admin/ui/actions/kill", kill, map[string]string{"X-CSRF-Token": csrf, "X-Requested-With": "t", "Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusOK, code, body)

	code, frag := tg.console(t, http.MethodGet, "/admin/ui/fragments/switches", "", nil)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, frag, `data-target="orders__get_order"`)
	assert.Contains(t, frag, "incident 7")
	assert.Contains(t, frag, `id="history"`, "the change is in the recent changes")
	_, frag = tg.console(t, http.MethodGet, "/admin/ui/fragments/catalog?q=GET_ord", "", nil)
	assert.Contains(t, frag, `class="killed"`)
	assert.NotContains(t, frag, "orders__cancel_order", "the search filters")

	code, _ = tg.console(t, http.MethodGet, "/admin/ui/", "", map[string]string{"Host": "evil.example:8080"})
	assert.Equal(t, http.StatusMisdirectedRequest, code, "a rebound name is refused")

	recs := tg.auditEvents(t, "killswitch")
	require.Len(t, recs, 1)
	assert.Equal(t, "add", recs[0]["action"])
	assert.Equal(t, "local-operator", recs[0]["actor"])
	assert.Equal(t, "incident 7", recs[0]["reason"])
}

// doHost is do with the Host header honoured.
func (tg *testGateway) doHost(t *testing.T, method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
	for k, v := range header {
		if k == "Host" {
			r.Host = v
			continue
		}
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	tg.Handler().ServeHTTP(w, r)
	return w
}

// TestAuditTap: the tap hands on whole records however the buffered
// writer splits them, keeps the recent ones, and never blocks on a
// subscriber that does not read: it marks it as having missed records.
func TestAuditTap(t *testing.T) {
	tap := newAuditTap()
	_, sub, cancel := tap.subscribe()
	defer cancel()
	for _, chunk := range []string{`{"a":1}` + "\n" + `{"b":`, `2}`, "\n", `{"c":3}` + "\n"} {
		n, err := tap.Write([]byte(chunk))
		require.NoError(t, err)
		require.Equal(t, len(chunk), n)
	}
	var got []string
	for range 3 {
		got = append(got, string(<-sub.ch))
	}
	assert.Equal(t, []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}, got)
	recent, _, cancel2 := tap.subscribe()
	cancel2()
	assert.Len(t, recent, 3)

	for range tapBuffer + 1 {
		_, _ = tap.Write([]byte("{}\n"))
	}
	assert.True(t, tap.takeMissed(sub), "a full subscriber misses records")
	assert.False(t, tap.takeMissed(sub), "reported once")
}

// TestAuditTapOwnsItsCopies: the tap reuses its buffers for the records it
// keeps, so what it hands out must be copies: a line a subscriber received
// and the recent lines subscribe returned stay as they were while the ring
// is overwritten many times. Without a subscriber a record costs the tap no
// allocation (it is on every audit stream, console open or not).
func TestAuditTapOwnsItsCopies(t *testing.T) {
	tap := newAuditTap()
	for i := range tapRecent {
		_, _ = tap.Write([]byte(`{"n":` + strconv.Itoa(i) + "}\n"))
	}
	recent, sub, cancel := tap.subscribe()
	defer cancel()
	require.Len(t, recent, tapRecent)
	_, _ = tap.Write([]byte(`{"live":1}` + "\n"))
	live := <-sub.ch
	cancel()
	for range 3 * tapRecent {
		_, _ = tap.Write([]byte(`{"overwritten":"xxxxxxxxxxxxxxxxxxxxxxxx"}` + "\n"))
	}
	assert.Equal(t, `{"n":0}`, string(recent[0]))
	assert.Equal(t, `{"n":99}`, string(recent[tapRecent-1]))
	assert.Equal(t, `{"live":1}`, string(live))
	again, _, cancel3 := tap.subscribe()
	cancel3()
	require.Len(t, again, tapRecent, "the ring keeps the last records, oldest first")
	assert.JSONEq(t, `{"overwritten":"xxxxxxxxxxxxxxxxxxxxxxxx"}`, string(again[0]))

	line := []byte(`{"time":"2026-12-07T06:00:00Z","event":"tool_call","decision":"allowed"}` + "\n")
	half := len(line) / 2
	allocs := testing.AllocsPerRun(200, func() {
		_, _ = tap.Write(line[:half]) // a record split by the buffered writer
		_, _ = tap.Write(line[half:])
	})
	assert.Zero(t, allocs, "allocations per record with no console open")
}
