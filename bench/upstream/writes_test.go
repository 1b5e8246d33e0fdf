package main

import (
	"net"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/bench/loadgen"
	"github.com/mcpgw/mcpgw/configs"
)

// writeCountingListener counts the Write calls on every connection it accepts:
// each one is a write system call (net.Conn writes the whole buffer in one
// call to a socket that takes it, as a loopback socket with room does).
type writeCountingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *writeCountingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &writeCountingConn{Conn: c, writes: &l.writes}, nil
}

type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *writeCountingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestWritesPerCall pins what mcpgw writes to the client per tools/call:
// one Write, the status line, the header fields and the JSON body
// together, and no flush of its own, in each scenario of BenchmarkCallPath.
// (What it writes to the upstream per call, one Write per request, is
// pinned in upstream/internal/h1, TestOneWritePerRequest.) The counts are
// deterministic: this is the behaviour, not a timing.
func TestWritesPerCall(t *testing.T) {
	t.Parallel()
	upURL := serveBenchUpstream(t)
	tests := []struct {
		name  string
		era   string
		full  bool
		calls int
	}{
		{name: "routing 2025", era: loadgen.Era2025, calls: 40},
		{name: "routing 2026", era: loadgen.Era2026, calls: 40},
		{name: "everything on 2025", era: loadgen.Era2025, full: true, calls: 40},
		{name: "everything on 2026", era: loadgen.Era2026, full: true, calls: 40},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var lc net.ListenConfig
			inner, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
			require.NoError(t, err)
			l := &writeCountingListener{Listener: inner}
			yaml, authz := routingConfig(t, upURL), ""
			var edits []func(*configs.Config)
			if tt.full {
				yaml, authz = fullConfig(t, upURL)
				edits = append(edits, withScope("bench:call"))
			}
			url := serveGatewayOn(t, l, yaml, edits...)

			tr := loadgen.NewTransport(1, nil)
			defer tr.CloseIdleConnections()
			c, err := loadgen.NewClient(url, tt.era, tr)
			require.NoError(t, err)
			if authz != "" {
				c.SetHeader(http.Header{"Authorization": {authz}})
			}
			args := []byte(`{"text":"` + string(make200()) + `"}`)
			require.NoError(t, c.Open(t.Context()))
			_, _, err = c.Call(t.Context(), "bench__echo", args)
			require.NoError(t, err)

			before := l.writes.Load()
			for range tt.calls {
				_, _, err := c.Call(t.Context(), "bench__echo", args)
				require.NoError(t, err)
			}
			assert.Equal(t, int64(tt.calls), l.writes.Load()-before, "downstream writes for %d calls", tt.calls)
		})
	}
}
