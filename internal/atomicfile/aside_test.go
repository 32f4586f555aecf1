package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMoveAside moves a file and a directory aside three times each and
// checks that every older copy is kept under its own number.
func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "dkek.1.pbe")
	d := filepath.Join(dir, "backup")
	for i, content := range []string{"one", "two", "three"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "manifest.json"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{f, d} {
			got, err := MoveAside(p)
			want := p + ".~" + string(rune('1'+i)) + "~"
			if err != nil || got != want {
				t.Fatalf("MoveAside(%s) = %q, %v; want %q", p, got, err, want)
			}
			if _, err := os.Lstat(p); !os.IsNotExist(err) {
				t.Fatalf("%s still exists after MoveAside", p)
			}
		}
	}
	for i, content := range []string{"one", "two", "three"} {
		n := string(rune('1' + i))
		if b, _ := os.ReadFile(f + ".~" + n + "~"); string(b) != content {
			t.Errorf("%s.~%s~ = %q, want %q", f, n, b, content)
		}
		if b, _ := os.ReadFile(filepath.Join(d+".~"+n+"~", "manifest.json")); string(b) != content {
			t.Errorf("%s.~%s~/manifest.json = %q, want %q", d, n, b, content)
		}
	}
}

// TestMoveAsideSkipsTaken keeps an older copy that is not the last of a
// sequence (.~1~ and .~3~ taken: the next is .~2~) and an empty directory
// that happens to carry the next name.
func TestMoveAsideSkipsTaken(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "w.bin")
	os.WriteFile(f+".~1~", []byte("old1"), 0o600)
	os.Mkdir(f+".~2~", 0o700) // an empty directory must not be replaced
	os.WriteFile(f, []byte("new"), 0o600)
	got, err := MoveAside(f)
	if err != nil || got != f+".~3~" {
		t.Fatalf("MoveAside = %q, %v; want %s.~3~", got, err, f)
	}
	if b, _ := os.ReadFile(f + ".~1~"); string(b) != "old1" {
		t.Errorf(".~1~ changed: %q", b)
	}
	d := filepath.Join(dir, "out")
	os.Mkdir(d, 0o700)
	os.WriteFile(filepath.Join(d, "k"), []byte("x"), 0o600)
	os.Mkdir(d+".~1~", 0o700) // empty: rename(2) would replace it
	got, err = MoveAside(d)
	if err != nil || got != d+".~2~" {
		t.Fatalf("MoveAside(dir) = %q, %v; want %s.~2~", got, err, d)
	}
	if ents, _ := os.ReadDir(d + ".~1~"); len(ents) != 0 {
		t.Errorf("the empty %s.~1~ was replaced", d)
	}
}

// TestMoveAsideMissing is a no-op on a path that does not exist.
func TestMoveAsideMissing(t *testing.T) {
	got, err := MoveAside(filepath.Join(t.TempDir(), "none"))
	if got != "" || err != nil {
		t.Fatalf("MoveAside(missing) = %q, %v; want \"\", nil", got, err)
	}
}
