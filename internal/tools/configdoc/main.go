// Command configdoc writes docs/configuration.md, the configuration
// reference, from the configs package: the structs reachable from
// configs.Config (found by reflection), their doc comments (read from the
// package source with go/parser and go/doc), their defaults (read from a
// Config that configs.SetDefaults filled in) and configs/example.yaml.
//
// It runs through go generate (configs/generate.go) or make docs:
//
//	go run ./internal/tools/configdoc -configs configs -out docs/configuration.md
//
// The output is deterministic; TestCurrent fails when the checked-in file
// differs from what the generator writes.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	dir := flag.String("configs", ".", "directory of the configs package source")
	example := flag.String("example", "", "annotated example to embed (default: example.yaml in -configs)")
	out := flag.String("out", "", "file to write (default: standard output)")
	flag.Parse()

	if *example == "" {
		*example = filepath.Join(*dir, "example.yaml")
	}
	doc, err := Generate(*dir, *example)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
	if *out == "" {
		_, _ = os.Stdout.Write(doc)
		return
	}
	if err := writeIfChanged(*out, doc); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

// writeIfChanged replaces path with data through a temporary file and a
// rename, and leaves it alone (modification time included) when it already
// holds data.
func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".configdoc-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
