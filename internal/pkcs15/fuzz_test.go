package pkcs15

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics or changes its input, that every
// rejection is an error with a message, and that whatever it accepts
// marshals to bytes it parses back to the same fields. The seed corpus is
// every vector in testdata plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.bin")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		k, err := Parse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse modified its input")
		}
		if err != nil {
			if k != nil || err.Error() == "" {
				t.Fatalf("rejection %#v with key %v", err, k)
			}
			return
		}
		m := k.Marshal()
		k2, err := Parse(m)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", m, err)
		}
		if !reflect.DeepEqual(fieldsOf(k), fieldsOf(k2)) {
			t.Fatalf("fields changed\n%+v\n%+v", fieldsOf(k), fieldsOf(k2))
		}
		if m2 := k2.Marshal(); !bytes.Equal(m, m2) {
			t.Fatalf("marshal not stable\n% X\n% X", m, m2)
		}
	})
}
