package e2e

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd get SIGTERM when the test process dies (a timeout,
// an interrupt), so a helper server is never left behind without its test.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
