package configs

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// logBuffer is a log destination the test reads while the watch writes.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// watched is a running watch whose onChange reads the file, as a reload
// does, and reports what it read.
type watched struct {
	reads chan string
	logs  *logBuffer
}

func startWatch(t *testing.T, path string, debounce, retry time.Duration) *watched {
	t.Helper()
	w := &watched{reads: make(chan string, 64), logs: &logBuffer{}}
	log := slog.New(slog.NewTextHandler(w.logs, nil))
	watch(t.Context(), path, debounce, retry, log, func() {
		raw, err := os.ReadFile(path)
		if err != nil {
			raw = []byte("error: " + err.Error())
		}
		select {
		case w.reads <- string(raw):
		default:
		}
	})
	return w
}

// waitRead waits for a reload that reads want; reloads that read anything
// else (the file missing between an rm and a cp, an earlier version) are
// skipped.
func (w *watched) waitRead(t *testing.T, want, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case got := <-w.reads:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("no reload reading %q after %s; log:\n%s", want, what, w.logs.String())
		}
	}
}

func TestWatchFileWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a: 1\n"), 0o600))
	w := startWatch(t, path, 20*time.Millisecond, time.Hour)
	require.NoError(t, os.WriteFile(path, []byte("a: 2\n"), 0o600))
	w.waitRead(t, "a: 2\n", "a write")
	// An editor's rename-over save.
	require.NoError(t, os.WriteFile(path+".tmp", []byte("a: 3\n"), 0o600))
	require.NoError(t, os.Rename(path+".tmp", path))
	w.waitRead(t, "a: 3\n", "a rename over the file")
	// The watch survives the rename: a later write is seen.
	require.NoError(t, os.WriteFile(path, []byte("a: 4\n"), 0o600))
	w.waitRead(t, "a: 4\n", "a write after a rename")
	assert.Contains(t, w.logs.String(), "config file changed; reloading")
}

// TestWatchRemoveAndCopy replaces the file the way `rm` then `cp` (and some
// editors and deploy tools) do: the file is gone for a moment, then a new
// inode appears under the same name. The watch must see the new file, and
// keep watching it.
func TestWatchRemoveAndCopy(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a: 1\n"), 0o600))
	w := startWatch(t, path, 20*time.Millisecond, time.Hour)
	for i, content := range []string{"a: 2\n", "a: 3\n", "a: 4\n"} {
		require.NoError(t, os.Remove(path))
		// cp writes a new file under the name.
		require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
		w.waitRead(t, content, "rm + cp #"+string(rune('1'+i)))
	}
	// And an rm that stays a while: the reload that follows finds no
	// file (the gateway keeps its runtime), and the cp after it is seen.
	require.NoError(t, os.Remove(path))
	w.waitRead(t, "error: open "+path+": no such file or directory", "an rm")
	require.NoError(t, os.WriteFile(path, []byte("a: 5\n"), 0o600))
	w.waitRead(t, "a: 5\n", "a cp after an rm")
	require.NoError(t, os.WriteFile(path, []byte("a: 6\n"), 0o600))
	w.waitRead(t, "a: 6\n", "a write after rm + cp")
	assert.Contains(t, w.logs.String(), "config file changed; reloading")
}

// TestWatchConfigMapSwap mounts the file the way kubelet mounts a
// ConfigMap: mcpgw.yaml → ..data/mcpgw.yaml, ..data → ..<timestamp>; an
// update writes a new timestamped directory and swaps the ..data link,
// then removes the old directory.
func TestWatchConfigMapSwap(t *testing.T) {
	dir := t.TempDir()
	version := func(name, content string) {
		t.Helper()
		require.NoError(t, os.Mkdir(filepath.Join(dir, name), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name, "mcpgw.yaml"), []byte(content), 0o600))
	}
	swap := func(from, to string) {
		t.Helper()
		require.NoError(t, os.Symlink(to, filepath.Join(dir, "..data_tmp")))
		require.NoError(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
		require.NoError(t, os.RemoveAll(filepath.Join(dir, from)))
	}
	version("..2026_11_23_01", "a: 1\n")
	require.NoError(t, os.Symlink("..2026_11_23_01", filepath.Join(dir, "..data")))
	require.NoError(t, os.Symlink(filepath.Join("..data", "mcpgw.yaml"), filepath.Join(dir, "mcpgw.yaml")))
	w := startWatch(t, filepath.Join(dir, "mcpgw.yaml"), 20*time.Millisecond, time.Hour)

	version("..2026_11_23_02", "a: 2\n")
	swap("..2026_11_23_01", "..2026_11_23_02")
	w.waitRead(t, "a: 2\n", "a ConfigMap swap")
	// The second update proves the watch followed the swap.
	version("..2026_11_23_03", "a: 3\n")
	swap("..2026_11_23_02", "..2026_11_23_03")
	w.waitRead(t, "a: 3\n", "a second ConfigMap swap")
}

// TestWatchSymlinkElsewhere: the path is a symlink to a file in another
// directory; writes to that file and a retarget of the link are both seen.
func TestWatchSymlinkElsewhere(t *testing.T) {
	confDir, dataDir := t.TempDir(), t.TempDir()
	v1, v2 := filepath.Join(dataDir, "v1.yaml"), filepath.Join(dataDir, "v2.yaml")
	require.NoError(t, os.WriteFile(v1, []byte("a: 1\n"), 0o600))
	path := filepath.Join(confDir, "mcpgw.yaml")
	require.NoError(t, os.Symlink(v1, path))
	w := startWatch(t, path, 20*time.Millisecond, time.Hour)

	require.NoError(t, os.WriteFile(v1, []byte("a: 2\n"), 0o600))
	w.waitRead(t, "a: 2\n", "a write to the link's target")

	require.NoError(t, os.WriteFile(v2, []byte("a: 3\n"), 0o600))
	require.NoError(t, os.Symlink(v2, path+".tmp"))
	require.NoError(t, os.Rename(path+".tmp", path))
	w.waitRead(t, "a: 3\n", "a retargeted link")
	require.NoError(t, os.WriteFile(v2, []byte("a: 4\n"), 0o600))
	w.waitRead(t, "a: 4\n", "a write to the new target")
}

// TestWatchMissingDirectory: a directory that cannot be watched is logged
// as a failure, retried, logged again when the watch is restored, and the
// file that appears meanwhile is loaded.
func TestWatchMissingDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	path := filepath.Join(dir, "mcpgw.yaml")
	w := startWatch(t, path, 20*time.Millisecond, 10*time.Millisecond)
	// The first attempt runs before watch returns.
	require.Contains(t, w.logs.String(), "config watch failed")

	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(path, []byte("a: 1\n"), 0o600))
	w.waitRead(t, "a: 1\n", "the directory and file appearing")
	assert.Contains(t, w.logs.String(), "config watch restored")
	require.NoError(t, os.WriteFile(path, []byte("a: 2\n"), 0o600))
	w.waitRead(t, "a: 2\n", "a write after the watch was restored")

	// The directory goes away and comes back: the loss is logged and the
	// watch comes back with it.
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.WriteFile(path, []byte("a: 3\n"), 0o600))
	w.waitRead(t, "a: 3\n", "the directory recreated")
	require.NoError(t, os.WriteFile(path, []byte("a: 4\n"), 0o600))
	w.waitRead(t, "a: 4\n", "a write in the recreated directory")
}

// TestWatchDebounces: a burst of writes is one reload.
func TestWatchDebounces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mcpgw.yaml")
	require.NoError(t, os.WriteFile(path, []byte("a: 0\n"), 0o600))
	w := startWatch(t, path, 300*time.Millisecond, time.Hour)
	for i := range 5 {
		require.NoError(t, os.WriteFile(path, []byte{'a', ':', ' ', byte('1' + i), '\n'}, 0o600))
	}
	w.waitRead(t, "a: 5\n", "a burst of writes")
	// A second reload would need another event; none comes, so the
	// channel stays empty once the debounce timer has fired.
	require.Empty(t, w.reads)
}
