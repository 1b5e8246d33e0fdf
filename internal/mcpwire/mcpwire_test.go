package mcpwire

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"slices"
	"strings"
	"testing"
)

func TestVersions(t *testing.T) {
	all := SupportedVersions()
	for i, v := range all {
		if got := VersionIndex(v); got != i {
			t.Errorf("VersionIndex(%q) = %d, want %d", v, got, i)
		}
		if IsModern(v) != slices.Contains(ModernVersions(), v) {
			t.Errorf("IsModern(%q) disagrees with ModernVersions", v)
		}
	}
	if VersionIndex("2025-01-01") != -1 || VersionIndex("") != -1 {
		t.Error("VersionIndex of an unknown version is not -1")
	}
	if !slices.IsSortedFunc(all, func(a, b string) int { return -compare(a, b) }) {
		t.Errorf("SupportedVersions is not newest first: %v", all)
	}
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	default:
		return 0
	}
}

// TestCodesAreDistinct: every error code this package defines with a
// literal value is defined once. Two engineers adding a code at once both
// take the next free number; this catches the collision at merge time. A
// code that deliberately shares another's value names that constant
// instead of repeating the number.
func TestCodesAreDistinct(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "mcpwire.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok {
			return true
		}
		for i, name := range spec.Names {
			if !strings.HasPrefix(name.Name, "Code") || i >= len(spec.Values) {
				continue
			}
			lit := types.ExprString(spec.Values[i])
			if strings.TrimLeft(lit, "-0123456789") != "" {
				continue // defined by another constant: a deliberate alias
			}
			if other, dup := seen[lit]; dup {
				t.Errorf("%s and %s are both %s", other, name.Name, lit)
			}
			seen[lit] = name.Name
		}
		return true
	})
	if len(seen) < 10 {
		t.Fatalf("found only %d codes: the parse no longer sees the constants", len(seen))
	}
}
