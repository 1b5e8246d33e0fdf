package h1

import (
	"encoding/json"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeCounter counts the Write calls on a connection: each is one write
// system call to a socket with room for it.
type writeCounter struct {
	net.Conn
	writes atomic.Int32
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestOneWritePerRequest pins the upstream side of a proxied call: the
// request line, the Head's fields, the request's own fields,
// Content-Length and the body go out in one Write, whatever the body's
// size (the gateway's side is bench/upstream TestWritesPerCall).
func TestOneWritePerRequest(t *testing.T) {
	r, conns := newEchoRig(t, 1)
	_, _, err := r.post(t.Context(), t, `{}`)
	require.NoError(t, err)
	idle := r.idle()
	require.Len(t, idle, 1)
	wc := &writeCounter{Conn: idle[0].nc}
	idle[0].nc = wc

	bodies := []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, strings.Repeat("x", 20<<10), strings.Repeat("y", 200<<10)}
	for _, body := range bodies {
		resp, err := r.do(t.Context(), body, [2]string{"Authorization", "Bearer t"}, [2]string{"X-Request-Id", "r-1"})
		require.NoError(t, err)
		var got echoed
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&got))
		_, _ = io.Copy(io.Discard, resp.Body)
		require.NoError(t, resp.Body.Close())
		assert.Equal(t, body, got.Body)
	}
	assert.Equal(t, int32(len(bodies)), wc.writes.Load(), "one write per request")
	assert.Equal(t, int32(1), conns.Load(), "every request on the one connection")
}
