package main

import "syscall"

// Linux-only helpers of the tests, so that `go vet` of the tests for
// Windows (make cross) sees none of these calls.

// mountTmpfs mounts a tmpfs of size (mount option size=) on dir,
// read-only with ro.
func mountTmpfs(dir, size string, ro bool) error {
	var flags uintptr
	if ro {
		flags |= syscall.MS_RDONLY
	}
	return syscall.Mount("tmpfs", dir, "tmpfs", flags, "size="+size)
}

// unmount detaches the file system mounted on dir.
func unmount(dir string) error { return syscall.Unmount(dir, syscall.MNT_DETACH) }

// setUmask sets the process umask and returns the old one.
func setUmask(mask int) int { return syscall.Umask(mask) }

// newSession makes a child process the leader of a session of its own,
// without a controlling terminal.
func newSession() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
