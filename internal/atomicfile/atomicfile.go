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
	"syscall"
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
		return writeErr(path, err)
	}
	name := tmp.Name()
	defer func() {
		if err != nil {
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return writeErr(path, err)
	}
	// On Windows the mode bits do not keep others out: the temporary file
	// gets a DACL for its owner alone before any data is written to it.
	if err := restrictToOwner(name, mode); err != nil {
		tmp.Close()
		return writeErr(path, err)
	}
	if _, err := writeHook(tmp, data); err != nil {
		tmp.Close()
		return writeErr(path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return writeErr(path, err)
	}
	if err := tmp.Close(); err != nil {
		return writeErr(path, err)
	}
	if overwrite {
		if err := os.Rename(name, path); err != nil {
			return writeErr(path, err)
		}
	} else {
		beforeLinkHook(path)
		if err := os.Link(name, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return existsErr(path)
			}
			return writeErr(path, err)
		}
		os.Remove(name)
	}
	syncDir(dir)
	return nil
}

// writeHook writes the data to the temporary file. Tests replace it to
// make the write fail as on a full disk, which no test machine has at hand.
var writeHook = func(f *os.File, data []byte) (int, error) { return f.Write(data) }

// beforeLinkHook runs between Write's existence check and the hard link
// that gives the file its name when overwrite is false. Tests replace it to
// put a file at path in that window, as another process could, and check
// that the link, not the earlier check, is what refuses to replace it.
var beforeLinkHook = func(path string) {}

// WriteError words a failure to write path as Write does, so that a
// failure found early (CheckWritable, a directory in the way) reads as the
// same failure found late.
func WriteError(path string, err error) error { return writeErr(path, err) }

// CheckWritable tries to create (and removes) a temporary file in the
// directory of path, as Write will, and returns Write's error for path if
// it cannot: a command checks this before its slow or irreversible part.
func CheckWritable(path string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return writeErr(path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// writeErr is the error of a failed write of path: the system's reason,
// without the temporary file's name, and what to do about it. The failed
// write changed nothing: the temporary file is removed, and a file that
// had the name keeps its old content.
func writeErr(path string, err error) error {
	err = unwrapPath(err)
	return fmt.Errorf("cannot write %s: %w: %s", path, err, hint(err))
}

func hint(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return "free some space, or write to another disk; nothing was written"
	case errors.Is(err, syscall.EROFS):
		return "the file system is read-only: write to another directory; nothing was written"
	case errors.Is(err, fs.ErrPermission):
		return "you may not write in that directory: choose another one, or change its permissions; nothing was written"
	case errors.Is(err, syscall.ENOTDIR):
		return "a part of the path is a file, not a directory: check the path"
	case errors.Is(err, fs.ErrNotExist):
		return "the directory does not exist: create it first, or check the path"
	case errors.Is(err, syscall.EISDIR), errors.Is(err, fs.ErrExist):
		return "a directory has that name: choose a file name"
	}
	return "nothing was written: check the path and the disk, then retry"
}

func existsErr(path string) error {
	return fmt.Errorf("%s: %w: choose another name, or add --force to replace it", path, ErrExists)
}

// UnwrapPath drops an *fs.PathError's or *os.LinkError's wrapper, whose
// (temporary) file name would only confuse: the message names the path.
func UnwrapPath(err error) error { return unwrapPath(err) }

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
