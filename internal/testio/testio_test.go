package testio_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mcpgw/mcpgw/internal/testio"
)

// TestLockedBufferConcurrent: writes from several goroutines while String
// is read all land, whole (run with -race).
func TestLockedBufferConcurrent(t *testing.T) {
	var b testio.LockedBuffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if _, err := fmt.Fprintf(&b, "w%d-%d\n", i, j); err != nil {
					t.Error(err)
				}
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	require.Len(t, lines, 8*50)
	assert.Contains(t, lines, "w7-49")
}
