//go:build !windows

package atomicfile

import "io/fs"

// restrictToOwner does nothing outside Windows: the mode bits that Write
// sets with Chmod already keep group and others out.
func restrictToOwner(path string, mode fs.FileMode) error { return nil }
