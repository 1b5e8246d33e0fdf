package mcpwire

import (
	"slices"
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
