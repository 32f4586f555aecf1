package version

// pcscLibrary is the PC/SC library github.com/ebfe/scard loads on Windows.
const pcscLibrary = "winscard.dll"
