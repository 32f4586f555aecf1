package atomicfile

import (
	"io/fs"
	"path/filepath"
	"testing"
)

// TestOwnerOnly: which modes restrict a file to its owner on Windows.
func TestOwnerOnly(t *testing.T) {
	for mode, want := range map[fs.FileMode]bool{0o600: true, 0o400: true, 0o700: true, 0o644: false, 0o640: false, 0o604: false, 0o660: false} {
		if got := ownerOnly(mode); got != want {
			t.Errorf("ownerOnly(%#o) = %v, want %v", mode, got, want)
		}
	}
}

// TestRestrictToOwnerFile: restrictToOwner succeeds on a file the user
// just created, for private and shared modes (on Windows it replaces the
// DACL; elsewhere the mode bits do the work).
func TestRestrictToOwnerFile(t *testing.T) {
	dir := t.TempDir()
	for _, mode := range []fs.FileMode{0o600, 0o644} {
		p := filepath.Join(dir, "f"+mode.String())
		if err := Write(p, []byte("x"), mode, false); err != nil {
			t.Fatal(err)
		}
		if err := restrictToOwner(p, mode); err != nil {
			t.Errorf("restrictToOwner(%s, %v): %v", p, mode, err)
		}
	}
}
