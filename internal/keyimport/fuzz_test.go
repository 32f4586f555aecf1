package keyimport

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse: any input gives a key or an error, never a panic, and a key
// that Parse returns seals. The password is the one of the encrypted
// files in testdata, so that mutations of them reach the decryption.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil && len(b) < 4000 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := ParseWithPassword(b, func() ([]byte, error) { return []byte("import-test-pw"), nil })
		if err != nil {
			return
		}
		if _, err := Seal(k, dkek, Options{Label: "f", Rand: zeroReader{}}); err != nil {
			t.Fatalf("%s parsed but does not seal: %v", k, err)
		}
	})
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
