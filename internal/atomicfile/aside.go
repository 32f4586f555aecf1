package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// maxAside bounds the search for a free FILE.~N~ name.
const maxAside = 10000

// MoveAside renames path, a file or a directory, to the first free
// "path.~N~" (N from 1), GNU cp/mv --backup=numbered style, so that an
// older copy is never overwritten: the name is taken with a hard link for
// a file and with a rename that refuses to replace (renameNoReplace) for a
// directory, so neither replaces what another process put there. It returns the new name, or "" when path does not exist.
func MoveAside(path string) (string, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	for n := 1; n <= maxAside; n++ {
		aside := fmt.Sprintf("%s.~%d~", path, n)
		if _, err := os.Lstat(aside); err == nil || !errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if fi.IsDir() {
			if err := renameNoReplace(path, aside); err != nil {
				if errors.Is(err, fs.ErrExist) {
					continue
				}
				return "", fmt.Errorf("%s: cannot move it aside to %s: %w", path, aside, unwrapPath(err))
			}
		} else {
			if err := os.Link(path, aside); err != nil {
				if errors.Is(err, fs.ErrExist) {
					continue
				}
				return "", fmt.Errorf("%s: cannot move it aside to %s: %w", path, aside, unwrapPath(err))
			}
			if err := os.Remove(path); err != nil {
				os.Remove(aside)
				return "", fmt.Errorf("%s: cannot move it aside to %s: %w", path, aside, unwrapPath(err))
			}
		}
		syncDir(filepath.Dir(path))
		return aside, nil
	}
	return "", fmt.Errorf("%s: %d older copies %s.~N~ exist already: move some away", path, maxAside, path)
}

// renameChecked renames old to new after checking that new does not exist.
func renameChecked(old, new string) error {
	if _, err := os.Lstat(new); err == nil {
		return &os.LinkError{Op: "rename", Old: old, New: new, Err: fs.ErrExist}
	}
	return os.Rename(old, new)
}
