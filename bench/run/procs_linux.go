package main

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the child die with the runner, even when the runner
// is killed.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
