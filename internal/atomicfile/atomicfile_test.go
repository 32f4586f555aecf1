package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "share.pbe")
	if err := Write(p, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", fi.Mode(), err)
	}
	err = Write(p, []byte("two"), 0o600, false)
	if !errors.Is(err, ErrExists) || err.Error() != p+": file exists: choose another name, or add --force to replace it" {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("existing file changed: %q", b)
	}
	if err := Write(p, []byte("two"), 0o600, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("overwrite: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// A failing write leaves the old files whole and no temporary behind: here
// the final rename fails because the destination is a directory.
func TestWriteFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "backup")
	os.WriteFile(p, []byte("old"), 0o600)
	bad := filepath.Join(dir, "isdir")
	os.MkdirAll(filepath.Join(bad, "x"), 0o700)
	for _, overwrite := range []bool{false, true} {
		if err := Write(bad, []byte("new"), 0o600, overwrite); err == nil {
			t.Fatalf("overwrite=%v: writing over a directory succeeded", overwrite)
		}
	}
	if b, _ := os.ReadFile(p); string(b) != "old" {
		t.Fatalf("old file changed: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// A write that fails half-way, as on a full disk, leaves the old file
// whole and no temporary file behind, with or without overwrite, and the
// error says what happened and what to do.
func TestWriteDiskFull(t *testing.T) {
	defer func(h func(*os.File, []byte) (int, error)) { writeHook = h }(writeHook)
	writeHook = func(f *os.File, data []byte) (int, error) {
		n, _ := f.Write(data[:len(data)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "share.pbe")
	old := []byte("the old share file, 64 bytes in real life")
	os.WriteFile(p, old, 0o600)
	for _, overwrite := range []bool{true, false} {
		err := Write(p, []byte("a new share file that must not half-replace the old one"), 0o600, overwrite)
		if overwrite {
			want := "cannot write " + p + ": no space left on device: free some space, or write to another disk; nothing was written"
			if err == nil || err.Error() != want || !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("overwrite: %v\nwant %s", err, want)
			}
		} else if !errors.Is(err, ErrExists) {
			t.Fatalf("no overwrite: %v", err)
		}
		if b, _ := os.ReadFile(p); string(b) != string(old) {
			t.Fatalf("overwrite=%v: old file changed: %q", overwrite, b)
		}
	}
	// A new name: nothing appears.
	n := filepath.Join(dir, "new.pbe")
	if err := Write(n, []byte("data"), 0o600, false); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("new file: %v", err)
	}
	if _, err := os.Lstat(n); err == nil {
		t.Fatal("a failed write left the new file")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

// Every failure names the file and says what to do next; none shows the
// temporary file's name.
func TestWriteErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	os.Mkdir(filepath.Join(dir, "isdir"), 0o700)
	tests := []struct {
		path string
		want string
	}{
		{filepath.Join(dir, "missing", "x.pbe"), ": no such file or directory: the directory does not exist: create it first, or check the path"},
		{filepath.Join(file, "x.pbe"), ": not a directory: a part of the path is a file, not a directory: check the path"},
		{filepath.Join(dir, "isdir"), ": a directory has that name: choose a file name"},
	}
	for _, tt := range tests {
		err := Write(tt.path, []byte("x"), 0o600, true)
		if err == nil || !strings.HasPrefix(err.Error(), "cannot write "+tt.path+": ") || !strings.HasSuffix(err.Error(), tt.want) || strings.Contains(err.Error(), ".tmp") {
			t.Errorf("%s: %v\nwant suffix %s", tt.path, err, tt.want)
		}
	}
	if os.Geteuid() != 0 { // root writes anywhere; the CLI scripts test it without CAP_DAC_OVERRIDE
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		err := Write(filepath.Join(ro, "x"), []byte("x"), 0o600, false)
		if !errors.Is(err, fs.ErrPermission) || !strings.HasSuffix(err.Error(), "permission denied: you may not write in that directory: choose another one, or change its permissions; nothing was written") {
			t.Errorf("read-only directory: %v", err)
		}
	}
	for _, e := range []error{syscall.EROFS, syscall.EDQUOT, syscall.EIO} {
		if h := hint(e); h == "" || strings.HasSuffix(h, ".") {
			t.Errorf("%v: hint %q", e, h)
		}
	}
}

// A file that appears at the destination after Write's existence check but
// before its final step is neither replaced nor changed: Write returns
// ErrExists and leaves no temporary file. Guards against the final no-overwrite
// step being a rename (which silently replaces) instead of a hard link (which
// refuses an existing name); without this window nothing else tests it.
func TestWriteRaceKeepsOtherFile(t *testing.T) {
	defer func(h func(string)) { beforeLinkHook = h }(beforeLinkHook)
	dir := t.TempDir()
	p := filepath.Join(dir, "share.pbe")
	other := []byte("another process's share file, written after the check")
	called := false
	beforeLinkHook = func(path string) {
		called = true
		if path != p {
			t.Errorf("hook path %q, want %q", path, p)
		}
		if err := os.WriteFile(path, other, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := Write(p, []byte("our share file, which must not replace the other"), 0o600, false)
	if !called {
		t.Fatal("the hook did not run: nothing was put at the target")
	}
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Write over a file that appeared after the check: %v, want ErrExists", err)
	}
	if b, _ := os.ReadFile(p); string(b) != string(other) {
		t.Fatalf("the other file changed: %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
