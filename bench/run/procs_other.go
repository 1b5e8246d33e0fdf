//go:build !linux

package main

import "os/exec"

// dieWithParent is a no-op where Pdeathsig does not exist; the runner
// still stops its children on a normal exit.
func dieWithParent(*exec.Cmd) {}
