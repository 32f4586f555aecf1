//go:build !linux

package testbed

import "os/exec"

// setPdeathsig does nothing: Start skips before starting anything on
// systems other than Linux.
func setPdeathsig(cmd *exec.Cmd) {}
