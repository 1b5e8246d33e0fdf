package configs

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden parses every testdata/*.yaml and compares the problems Parse
// reports, one per line, with testdata/*.golden. Run with -update to rewrite
// the golden files after an intended change, and review the diff.
func TestGolden(t *testing.T) {
	t.Setenv("MCPGW_GOLDEN_UNSET", "")
	require.NoError(t, os.Unsetenv("MCPGW_GOLDEN_UNSET"))

	inputs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(in)
			require.NoError(t, err)
			cfg, err := Parse(data)
			require.Error(t, err, "a golden input is a configuration with mistakes")
			assert.Nil(t, cfg)
			got := strings.Join(Problems(err), "\n") + "\n"

			golden := filepath.Join("testdata", name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), got)
		})
	}
}
