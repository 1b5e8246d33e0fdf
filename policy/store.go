package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// MemoryStore keeps records in memory: they are lost on restart. The zero
// value is ready to use.
type MemoryStore struct {
	mu      sync.Mutex
	records map[string]Switch
}

var _ Store = (*MemoryStore)(nil)

// Load returns every record.
func (m *MemoryStore) Load(context.Context) ([]Switch, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.records)), nil
}

// Put adds or replaces a record.
func (m *MemoryStore) Put(_ context.Context, s Switch) error { //nolint:gocritic // hugeParam: the signature is Store's, which takes records by value so a store never shares the caller's.
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.records == nil {
		m.records = make(map[string]Switch)
	}
	m.records[s.ID] = s
	return nil
}

// Delete removes a record.
func (m *MemoryStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[id]; !ok {
		return ErrNotFound
	}
	delete(m.records, id)
	return nil
}

// FileStore keeps records in a JSON file, so they survive a restart of a
// single replica. Every change rewrites the file atomically (a temporary
// file in the same directory, synced, then renamed over it), so a crash
// leaves the old or the new state, never a torn one. A missing file is an
// empty state; a file that does not parse is an error, which makes
// Switches fail closed rather than forget the switches it held.
//
// The file is owned by one process: two gateways sharing it would
// overwrite each other's changes. Replicas share state through Redis.
type FileStore struct {
	path string
	mu   sync.Mutex
}

var _ Store = (*FileStore)(nil)

// fileState is the JSON document of a FileStore.
type fileState struct {
	// Switches are the records, sorted by creation time then ID.
	Switches []Switch `json:"switches"`
}

// NewFileStore returns a store at path. The directory must exist; the file
// is created on the first change.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: state file path is empty", ErrInvalidConfig)
	}
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("state file directory: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("state file directory %s is not a directory", dir)
	}
	return &FileStore{path: path}, nil
}

// Load reads the file.
func (f *FileStore) Load(context.Context) ([]Switch, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.read()
}

// Put adds or replaces a record and rewrites the file.
func (f *FileStore) Put(_ context.Context, s Switch) error { //nolint:gocritic // hugeParam: the signature is Store's, which takes records by value so a store never shares the caller's.
	f.mu.Lock()
	defer f.mu.Unlock()
	records, err := f.read()
	if err != nil {
		return err
	}
	records = slices.DeleteFunc(records, func(o Switch) bool { return o.ID == s.ID })
	return f.write(append(records, s))
}

// Delete removes a record and rewrites the file.
func (f *FileStore) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	records, err := f.read()
	if err != nil {
		return err
	}
	n := len(records)
	records = slices.DeleteFunc(records, func(o Switch) bool { return o.ID == id })
	if len(records) == n {
		return ErrNotFound
	}
	return f.write(records)
}

func (f *FileStore) read() ([]Switch, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading state file: %w", err)
	}
	var st fileState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("parsing state file %s: %w", f.path, err)
	}
	return st.Switches, nil
}

func (f *FileStore) write(records []Switch) (err error) {
	sortRecords(records)
	data, err := json.MarshalIndent(fileState{Switches: records}, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')

	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing state file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("writing state file: %w", err)
	}
	// Sync the directory so the rename itself survives a crash.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
