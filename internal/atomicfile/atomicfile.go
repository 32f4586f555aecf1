// Package atomicfile writes files so that a reader never sees half of one
// and an existing file is never lost: the data goes to a temporary file in
// the same directory, is synced, and only then takes the final name. A
// failure at any step leaves the old file, if any, untouched.
package atomicfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrExists is returned when the destination exists and overwriting was
// not asked for.
var ErrExists = errors.New("file exists")

// Write stores data in path with the given mode. Without overwrite an
// existing path is an error that wraps ErrExists; the check and the
// creation are one atomic step (a hard link), so two writers cannot both
// succeed.
func Write(path string, data []byte, mode fs.FileMode, overwrite bool) (err error) {
	dir := filepath.Dir(path)
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return existsErr(path)
		}
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
	}
	if overwrite {
		if err := os.Rename(name, path); err != nil {
			return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
		}
	} else {
		if err := os.Link(name, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return existsErr(path)
			}
			return fmt.Errorf("cannot write %s: %w", path, unwrapPath(err))
		}
		os.Remove(name)
	}
	syncDir(dir)
	return nil
}

func existsErr(path string) error {
	return fmt.Errorf("%s: %w: choose another name, or add --force to replace it", path, ErrExists)
}

// unwrapPath drops the *PathError wrapper, whose temporary file name
// would only confuse.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// syncDir makes the rename durable (POSIX leaves that to a directory
// fsync). Errors are ignored: some file systems cannot sync directories,
// and the data itself is already synced.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// CheckAbsent returns the ErrExists error Write would give for path, so
// that a command can refuse before it does any work.
func CheckAbsent(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return existsErr(path)
	}
	return nil
}
