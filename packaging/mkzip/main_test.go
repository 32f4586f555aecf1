package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWriteReproducible archives the same files created in two
// directories at different times, in different orders: the archives are
// byte for byte equal, sorted, dated mtime, with the .exe executable.
func TestWriteReproducible(t *testing.T) {
	mtime := time.Unix(1796302210, 0).UTC()
	var zips [2][]byte
	for i, order := range [][]string{{"pico-hsm-tool.exe", "README.md", "doc/a.txt"}, {"doc/a.txt", "README.md", "pico-hsm-tool.exe"}} {
		dir := filepath.Join(t.TempDir(), "pico-hsm-tool_1.0.0_windows_amd64")
		for _, n := range order {
			p := filepath.Join(dir, filepath.FromSlash(n))
			os.MkdirAll(filepath.Dir(p), 0o700)
			if err := os.WriteFile(p, []byte("content of "+n), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chtimes(p, time.Now(), time.Now().Add(time.Duration(i)*time.Hour))
		}
		var b bytes.Buffer
		if err := write(&b, dir, mtime); err != nil {
			t.Fatal(err)
		}
		zips[i] = b.Bytes()
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Fatalf("two archives of the same files differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(zips[0]), int64(len(zips[0])))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"pico-hsm-tool_1.0.0_windows_amd64/", "pico-hsm-tool_1.0.0_windows_amd64/README.md",
		"pico-hsm-tool_1.0.0_windows_amd64/doc/", "pico-hsm-tool_1.0.0_windows_amd64/doc/a.txt",
		"pico-hsm-tool_1.0.0_windows_amd64/pico-hsm-tool.exe"}
	if len(zr.File) != len(want) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(want))
	}
	for i, f := range zr.File {
		if f.Name != want[i] {
			t.Errorf("entry %d = %s, want %s", i, f.Name, want[i])
		}
		if !f.Modified.Equal(mtime) {
			t.Errorf("%s dated %v, want %v", f.Name, f.Modified, mtime)
		}
	}
	if m := zr.File[4].Mode(); m.Perm() != 0o755 {
		t.Errorf("the .exe has mode %v, want 0755", m)
	}
}
