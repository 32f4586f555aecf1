//go:build linux

package secret

import (
	"os"

	"golang.org/x/sys/unix"
)

// readPassword reads one line from the terminal f with echo off, as
// x/term's ReadPassword does (same terminal flags), but through readLine,
// which wipes every copy of the secret it leaves behind; x/term grows its
// buffer with append and leaves the old copies in memory.
func readPassword(f *os.File) ([]byte, error) {
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
	return readLine(f)
}
