package upstream_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/upstream"
)

// pollingCall is a session-era go-sdk server whose "echo" calls are
// answered by a raw stream that primes (an id and a retry of 1 ms) and
// closes at once, as a server that polls does (SEP-1699); GETs that resume
// it (Last-Event-ID) are answered by resumed, and their Last-Event-IDs
// recorded. Everything else, the handshake included, is the real server.
type pollingCall struct {
	id      atomic.Value // json.RawMessage: the id of the last call
	mu      sync.Mutex
	resumes []string
}

func (p *pollingCall) handler(resumed func(w http.ResponseWriter, last string, id json.RawMessage)) http.Handler {
	inner := interceptTool(gosdkHandler(gosdkServer(newFixture()), false), "echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var env struct{ ID json.RawMessage }
		_ = json.Unmarshal(body, &env)
		p.id.Store(env.ID)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "id: p-0\nretry: 1\ndata:\n\n")
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		last := r.Header.Get("Last-Event-ID")
		if r.Method != http.MethodGet || last == "" {
			inner.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.resumes = append(p.resumes, last)
		p.mu.Unlock()
		id, _ := p.id.Load().(json.RawMessage)
		resumed(w, last, id)
	})
}

func (p *pollingCall) lastEventIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.resumes...)
}

// notes keeps the notifications of a call, in order.
type notes struct {
	mu  sync.Mutex
	got []string
}

func (n *notes) Notify(method string, params json.RawMessage) {
	n.mu.Lock()
	n.got = append(n.got, method+" "+string(params))
	n.mu.Unlock()
}

func sse(w http.ResponseWriter, events ...string) {
	w.Header().Set("Content-Type", "text/event-stream")
	var b bytes.Buffer
	for _, e := range events {
		b.WriteString(e + "\n\n")
	}
	_, _ = w.Write(b.Bytes())
}

// TestResumeACallStream: a call whose response stream the upstream closes
// before the response is resumed with GET and Last-Event-ID, as often as it
// brings something new; what arrives meanwhile is delivered once, in
// order; a server that brings nothing, or refuses, ends the call.
func TestResumeACallStream(t *testing.T) {
	t.Run("resumed twice, then answered", func(t *testing.T) {
		var p pollingCall
		ts := serve(t, p.handler(func(w http.ResponseWriter, last string, id json.RawMessage) {
			switch last {
			case "p-0":
				sse(w, `id: p-1`+"\n"+`data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"one"}}`)
			case "p-1":
				sse(w, `id: p-2`+"\n"+`data: {"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"two"}}`,
					`id: p-3`+"\n"+`data: {"jsonrpc":"2.0","id":`+string(id)+`,"result":{"content":[{"type":"text","text":"resumed"}]}}`)
			default:
				http.Error(w, "unknown event id", http.StatusBadRequest)
			}
		}))
		c, _ := startClient(t, httpConfig("polling", ts.url("/mcp")))
		var got notes
		req := call("echo", `{}`)
		req.Notify = &got
		res, err := c.Call(t.Context(), req)
		require.NoError(t, err)
		assert.Contains(t, string(res), "resumed")
		assert.Equal(t, []string{"p-0", "p-1"}, p.lastEventIDs(), "each resumption from the last event received")
		got.mu.Lock()
		defer got.mu.Unlock()
		assert.Equal(t, []string{
			`notifications/message {"level":"info","data":"one"}`,
			`notifications/message {"level":"info","data":"two"}`,
		}, got.got)
	})

	t.Run("nothing new: a bounded number of attempts", func(t *testing.T) {
		var p pollingCall
		ts := serve(t, p.handler(func(w http.ResponseWriter, _ string, _ json.RawMessage) {
			sse(w, "retry: 1")
		}))
		c, _ := startClient(t, httpConfig("polling", ts.url("/mcp")))
		_, err := c.Call(t.Context(), call("echo", `{}`))
		require.ErrorIs(t, err, upstream.ErrBadResponse)
		assert.Contains(t, err.Error(), "resuming it failed")
		resumes := p.lastEventIDs()
		assert.Len(t, resumes, 5, "maxResumeFailures attempts: %v", resumes)
		for _, last := range resumes {
			assert.Equal(t, "p-0", last)
		}
	})

	t.Run("refused", func(t *testing.T) {
		var p pollingCall
		ts := serve(t, p.handler(func(w http.ResponseWriter, _ string, _ json.RawMessage) {
			http.Error(w, "stream replay unsupported", http.StatusBadRequest)
		}))
		c, _ := startClient(t, httpConfig("polling", ts.url("/mcp")))
		_, err := c.Call(t.Context(), call("echo", `{}`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), fmt.Sprint(http.StatusBadRequest))
		assert.Equal(t, []string{"p-0"}, p.lastEventIDs(), "a refusal is not tried again")
	})
}
