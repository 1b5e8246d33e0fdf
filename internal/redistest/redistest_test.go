package redistest

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStartStopRestart(t *testing.T) {
	t.Parallel()

	s := Start(t)
	require.NoError(t, ping(s.Addr()))
	assert.Equal(t, "redis://"+s.Addr()+"/0", s.URL())

	s.Stop()
	var d net.Dialer
	_, err := d.DialContext(t.Context(), "tcp", s.Addr())
	require.Error(t, err, "a stopped server refuses connections")
	s.Stop() // Idempotent.

	s.Restart()
	require.NoError(t, ping(s.Addr()))
}
