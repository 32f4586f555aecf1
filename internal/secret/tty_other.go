//go:build !linux

package secret

import (
	"os"

	"golang.org/x/term"
)

// readPassword shows prompt on the terminal f and reads one line with
// echo off. x/term turns echo off only once it reads, so on these
// platforms a secret typed before the prompt shows may be echoed; Linux
// (tty_linux.go) turns it off first.
func readPassword(f *os.File, prompt string) ([]byte, error) {
	if _, err := f.WriteString(prompt); err != nil {
		return nil, err
	}
	b, err := term.ReadPassword(int(f.Fd()))
	f.WriteString("\n")
	return b, err
}
