//go:build !linux

package main

import (
	"errors"
	"syscall"
)

// The Linux-only test helpers of sys_linux_test.go: elsewhere no tmpfs can
// be mounted (the scripts that need one skip), the umask stays, and a
// child keeps its session.

func mountTmpfs(dir, size string, ro bool) error { return errors.New("no tmpfs on this system") }

func unmount(dir string) error { return nil }

func setUmask(mask int) int { return 0 }

func newSession() *syscall.SysProcAttr { return nil }
