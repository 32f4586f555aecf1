package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
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
