//go:build linux

package secret

import (
	"os"

	"golang.org/x/sys/unix"
)

// readPassword turns echo off, then shows prompt on the terminal f and
// reads one line: a secret typed ahead, as soon as the prompt shows, is
// never echoed. Echo is off as
// x/term's ReadPassword does (same terminal flags), but through readLine,
// which wipes every copy of the secret it leaves behind; x/term grows its
// buffer with append and leaves the old copies in memory.
func readPassword(f *os.File, prompt string) ([]byte, error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	noEcho := *old
	noEcho.Lflag &^= unix.ECHO
	noEcho.Lflag |= unix.ICANON | unix.ISIG
	noEcho.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return nil, err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	if err := showPrompt(f, prompt); err != nil {
		return nil, err
	}
	b, err := readLine(f)
	f.WriteString("\n") // the Enter typed was not echoed
	return b, err
}

// showPrompt writes the prompt. Tests replace it to look at the terminal's
// state at the moment the prompt shows.
var showPrompt = func(f *os.File, prompt string) error {
	_, err := f.WriteString(prompt)
	return err
}
