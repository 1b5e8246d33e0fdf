package configs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// waitFired waits for one onChange call.
func waitFired(t *testing.T, fired <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(10 * time.Second):
		t.Fatalf("no reload after %s", what)
	}
}

func watchDir(t *testing.T, path string) <-chan struct{} {
	t.Helper()
	fired := make(chan struct{}, 16)
	Watch(t.Context(), path, 20*time.Millisecond, func() { fired <- struct{}{} })
	return fired
}

func TestWatchFileWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a: 1\n"), 0o600))
	fired := watchDir(t, path)
	require.NoError(t, os.WriteFile(path, []byte("a: 2\n"), 0o600))
	waitFired(t, fired, "a write")
	// An editor's rename-over save.
	require.NoError(t, os.WriteFile(path+".tmp", []byte("a: 3\n"), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
	waitFired(t, fired, "a rename over the file")
}

// TestWatchConfigMapSwap mounts the file the way kubelet mounts a
// ConfigMap: mcpgw.yaml → ..data/mcpgw.yaml, ..data → ..<timestamp>; an
// update writes a new timestamped directory and swaps the ..data link.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "mcpgw.yaml"), []byte(content), 0o600))
	}
	version("..2026_11_23_01", "a: 1\n")
	require.NoError(t, os.Symlink("..2026_11_23_01", filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "mcpgw.yaml"), filepath.Join(dir, "mcpgw.yaml")))
	fired := watchDir(t, filepath.Join(dir, "mcpgw.yaml"))

	version("..2026_11_23_02", "a: 2\n")
	require.NoError(t, os.Symlink("..2026_11_23_02", filepath.Join(dir, "..data_tmp")))
	require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	require.NoError(t, os.RemoveAll(filepath.Join(dir, "..2026_11_23_01")))
	waitFired(t, fired, "a ConfigMap swap")
}

// TestWatchDebounces: a burst of writes is one reload.
func TestWatchDebounces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a: 0\n"), 0o600))
	fired := make(chan struct{}, 16)
	Watch(t.Context(), path, 300*time.Millisecond, func() { fired <- struct{}{} })
	for i := range 5 {
		require.NoError(t, os.WriteFile(path, []byte{'a', ':', ' ', byte('1' + i), '\n'}, 0o600))
	}
	waitFired(t, fired, "a burst of writes")
	// A second reload would need another event; none comes, so the
	// channel stays empty once the debounce timer has fired.
	require.Empty(t, fired)
}
