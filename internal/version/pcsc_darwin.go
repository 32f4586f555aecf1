package version

// pcscLibrary is the PC/SC library github.com/ebfe/scard links on macOS.
const pcscLibrary = "PCSC.framework"
