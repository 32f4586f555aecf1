package atomicfile

import "io/fs"

// ownerOnly says whether mode keeps group and others out (0600, 0400,
// 0700): such files are restricted to the current user on Windows too
// (restrictToOwner).
func ownerOnly(mode fs.FileMode) bool { return mode.Perm()&0o077 == 0 }
