//go:build race

package main

// raceDetector reports whether the test binary has the race detector.
const raceDetector = true
