package cvc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzParse checks that Parse and ParseAll never panic, and that an
// accepted object marshals to bytes that parse back and marshal the same.
// The seed corpus is every vector in testdata plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if all, err := ParseAll(b); err == nil {
			for _, c := range all {
				_ = c.OuterSignedData()
				_, _ = c.PublicKey.CryptoPublicKey()
			}
		}
		c, err := Parse(b)
		if err != nil {
			return
		}
		m := c.Marshal()
		c2, err := Parse(m)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", m, err)
		}
		if m2 := c2.Marshal(); !bytes.Equal(m, m2) {
			t.Fatalf("marshal not stable\n% X\n% X", m, m2)
		}
		if bytes.Equal(m, b) && !bytes.Equal(c2.OuterSignedData(), c.OuterSignedData()) {
			t.Fatal("outer signed data differs between parse and marshal")
		}
	})
}

// FuzzParseGAKPRequest checks that ParseGAKPRequest never panics and that
// the public key it accepts re-encodes to something it accepts again.
func FuzzParseGAKPRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseGAKPRequest(b)
		if err != nil {
			return
		}
		pk := r.PublicKey.Marshal()
		if _, err := ParseGAKPRequest(pk); err != nil {
			t.Fatalf("re-parse of % X: %v", pk, err)
		}
	})
}
