//go:build !race

package gateway

// raceEnabled reports whether the test binary has the race detector, whose
// instrumentation adds allocations of its own.
const raceEnabled = false
