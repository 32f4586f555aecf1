//go:build !windows && !darwin

package version

// pcscLibrary is the PC/SC library github.com/ebfe/scard links elsewhere
// (cgo, pkg-config libpcsclite): pcsc-lite's client library, which talks
// to pcscd.
const pcscLibrary = "libpcsclite.so.1 (pcsc-lite)"
