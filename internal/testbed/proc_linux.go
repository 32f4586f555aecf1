package testbed

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill the child if the test binary dies
// without running its cleanups (prctl PR_SET_PDEATHSIG, kept across
// execve), rather than leave a stray pcscd or bridge behind.
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
