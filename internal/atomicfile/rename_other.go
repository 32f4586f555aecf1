//go:build !linux

package atomicfile

// renameNoReplace renames old to new unless new exists. Without Linux's
// renameat2 the check and the rename are two steps.
func renameNoReplace(old, new string) error { return renameChecked(old, new) }
