//go:build !linux

package secret

import (
	"os"

	"golang.org/x/term"
)

// readPassword reads one line from the terminal f with echo off.
func readPassword(f *os.File) ([]byte, error) {
	return term.ReadPassword(int(f.Fd()))
}
