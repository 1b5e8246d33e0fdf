package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/test/upstreams"
)

// logCount counts the process log's lines with message msg.
func (p *proc) logCount(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(p.log.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var entry struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == msg {
			n++
		}
	}
	return n
}

// TestConfigWatchSurvivesRmAndCp: `mcpgw serve` reloads its file when it
// is replaced by rm then cp, as editors and deploy tools do, and keeps
// watching it afterwards: each of three replacements is applied (a call
// under the newest prefix answers), and each trigger and reload is logged.
func TestConfigWatchSurvivesRmAndCp(t *testing.T) {
	customers := startServer(t, func() http.Handler { return upstreams.CustomersHandler(upstreams.NewObserver()) })
	p := startProc(t, fmt.Sprintf("upstreams:\n  - name: customers\n    http: {url: %q}\n", customers.url()), true)
	raw, err := os.ReadFile(p.cfgPath)
	require.NoError(t, err)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}

	for i, prefix := range []string{"c1", "c2", "c3"} {
		next := strings.Replace(string(raw), "  - name: customers\n", "  - name: customers\n    prefix: "+prefix+"\n", 1)
		require.NotEqual(t, string(raw), next)
		require.NoError(t, os.Remove(p.cfgPath))
		require.NoError(t, os.WriteFile(p.cfgPath, []byte(next), 0o600))
		require.Eventually(t, func() bool { return p.logCount("configuration reloaded") >= i+1 }, 30*time.Second, 10*time.Millisecond,
			"replacement %d was not reloaded", i+1)
		status, r, err := modernCall(client, p.url, "", "", prefix+"__lookup_customer", `{"id":"c-001"}`)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		require.Nil(t, r.Error, "replacement %d: the tool under prefix %s", i+1, prefix)
	}
	assert.GreaterOrEqual(t, p.logCount("config file changed; reloading"), 3, "each trigger is logged")
}
