package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/authn/authntest"
)

// skipBrowserEnv, set to 1, lets a local run without Chromium skip the
// browser tests. CI installs Chromium (make deps, scripts/ensure-chromium.sh)
// and leaves it unset, so a missing browser fails there.
const skipBrowserEnv = "MCPGW_SKIP_BROWSER"

// chromium returns the path of the browser: $MCPGW_CHROMIUM, else Debian's
// /usr/bin/chromium.
func chromium(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("MCPGW_CHROMIUM")
	if bin == "" {
		bin = "/usr/bin/chromium"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(skipBrowserEnv) == "1" {
			t.Skipf("no browser at %s and %s=1", bin, skipBrowserEnv)
		}
		t.Fatalf("no browser at %s: run make deps (scripts/ensure-chromium.sh), set MCPGW_CHROMIUM, or set %s=1 to skip locally", bin, skipBrowserEnv)
	}
	return bin
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context, bounded by a deadline.
func browser(t *testing.T) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	tctx, tcancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(tcancel)
	require.NoError(t, chromedp.Do(tctx), "starting %s", chromium(t))
	return tctx
}

// css is a CSS selector.
type css = chromedp.CSS

// bearerOnEveryRequest makes the tab send the token on every request it
// makes: the page, its fragments, its posts and its event stream.
func bearerOnEveryRequest(token string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{
			Headers: network.Headers{"Authorization": "Bearer " + token},
		})
		return err
	})
}

// run runs one action that returns a value.
func run[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T { //nolint:revive // t first, as test helpers go.
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	require.NoError(t, err)
	return v
}

// TestConsoleInBrowser drives the SRE console in headless Chromium against
// a real gateway and real upstreams: kill a tool from the page, see the
// switch appear and a real MCP call refused, revive it from the page, see
// the call succeed. Both changes are audited with the admin's subject, and
// the page's audit tail shows them. A person signs in by pasting a token.
func TestConsoleInBrowser(t *testing.T) {
	iss := authntest.NewIssuer(t, authntest.WithAudience(resource))
	d := startDemo(t)
	g := startGateway(t, fmt.Sprintf(`
auth:
  resource: %q
  issuers: [{issuer: %q}]
upstreams:
  - {name: customers, http: {url: %q}}
  - {name: orders, http: {url: %q}}
`, resource, iss.URL(), d.customers.url(), d.orders.url()), true)
	admin := iss.Mint(map[string]any{"sub": "sre-jo", "scope": "mcpgw:admin"})
	caller := newRawClient(t, g.url)
	caller.header.Set("Authorization", "Bearer "+iss.Mint(map[string]any{"sub": "alice", "scope": "mcp"}))
	caller.initialize()
	call := func() rpcResponse {
		return caller.call("tools/call", `{"name":"orders__get_order","arguments":{"id":"o-1001"}}`)
	}
	require.Nil(t, call().Error, "the tool works before the kill")

	ctx := browser(t)
	const row = css(`#switches tr[data-target="orders__get_order"]`)
	require.NoError(t, chromedp.Do(ctx,
		bearerOnEveryRequest(admin),
		chromedp.Navigate(g.base+"/admin/ui/"),
		chromedp.WaitVisible(css(`#kill-form`)),
		chromedp.WaitVisible(css(`#upstreams tr[data-upstream="orders"]`)),
		chromedp.Click(css(`button[data-kill="orders__get_order"]`)),
		chromedp.SendKeys(css(`#kill-reason`), "incident 42: bad orders data"),
		chromedp.SendKeys(css(`#kill-ttl`), "10m"),
		chromedp.Click(css(`#kill-submit`)),
		chromedp.WaitVisible(row),
	))
	id := run(t, ctx, chromedp.AttributeValue(row, "data-id")).Value
	require.NotEmpty(t, id)

	refused := call()
	require.NotNil(t, refused.Error, "the killed tool is refused")
	assert.Equal(t, -32060, refused.Error.Code)
	assert.Contains(t, refused.Error.Message, "incident 42")

	who := run(t, ctx, chromedp.Text(row+` td:nth-child(4)`))
	assert.Equal(t, "sre-jo", who)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.WaitVisible(css(`#audit tr[data-event="killswitch"][data-action="add"]`)),
		chromedp.WaitVisible(css(`#audit tr[data-event="tools/call"][data-action="killed"]`)),
	))
	assert.Contains(t, run(t, ctx, chromedp.Text(css(`#audit tbody`))), "orders__get_order")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(css(`button[data-revive="`+id+`"]`)),
		chromedp.WaitNotPresent(row),
		chromedp.WaitVisible(css(`#audit tr[data-event="killswitch"][data-action="remove"]`)),
	))
	assert.Nil(t, call().Error, "revived: the call succeeds")

	changes := auditChanges(t, g.auditPath)
	require.Len(t, changes, 2)
	assert.Equal(t, []string{"add", "remove"}, []string{changes[0]["action"].(string), changes[1]["action"].(string)})
	for _, c := range changes {
		assert.Equal(t, "sre-jo", c["actor"])
		assert.Equal(t, id, c["switch_id"])
	}

	t.Run("a person signs in with a token", func(t *testing.T) {
		ctx := browser(t)
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Navigate(g.base+"/admin/ui/"),
			chromedp.WaitVisible(css(`#token`)),
		))
		signinURL := run(t, ctx, chromedp.Location())
		require.NoError(t, chromedp.Do(ctx,
			chromedp.SetValue(css(`#token`), admin),
			chromedp.Click(css(`#signin-submit`)),
			chromedp.WaitVisible(css(`#kill-form`)),
		))
		actor := run(t, ctx, chromedp.Text(css(`#actor`)))
		require.NoError(t, chromedp.Do(ctx,
			chromedp.Click(css(`#signout`)),
			chromedp.WaitVisible(css(`#token`)),
		))
		assert.Equal(t, g.base+"/admin/ui/signin", signinURL)
		assert.Equal(t, "sre-jo", actor)
	})
}

// auditChanges returns the killswitch records of an audit file, once the
// gateway has flushed them.
func auditChanges(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	require.Eventually(t, func() bool {
		out = nil
		f, err := os.Open(path)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["event"] == "killswitch" {
				out = append(out, rec)
			}
		}
		return len(out) >= 2 && strings.Contains(fmt.Sprint(out), "remove")
	}, 10*time.Second, 20*time.Millisecond)
	return out
}
