package shamir

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseSet checks that ParseSet never panics, that every rejection is
// an error with a message, that whatever it accepts is a valid set that
// Combine handles, and that Format writes it back in a form ParseSet reads
// to the same set. The seed corpus is the vectors of testdata/sets and
// testdata/bad, a few edge cases and testdata/fuzz/FuzzParseSet.
func FuzzParseSet(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.txt")
	for _, name := range files {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"",
		"\n#\n",
		"e1:65:e9:72:0d:51:95:1f/1/b3:1f:8f:49:57:67:30:83\ne1:65:e9:72:0d:51:95:1f/2/00",
		"Prime:05\nShare ID:1\nShare value:01\nShare ID:2\nShare value:04",
		"Share ID : 1\nShare ID : 1",
		"Prime : \nShare value : :",
		"//\n///",
		"0b/10/0a\n0b/010/00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := ParseSet(bytes.NewReader(data))
		if err != nil {
			if set != nil {
				t.Fatal("set returned with an error")
			}
			if err.Error() == "" {
				t.Fatal("rejection without a message")
			}
			return
		}
		if err := set.Validate(); err != nil {
			t.Fatalf("ParseSet accepted an invalid set: %v", err)
		}
		secret, err := Combine(set)
		if err != nil || len(secret) != SecretSize {
			t.Fatalf("Combine = %x, %v", secret, err)
		}
		var buf bytes.Buffer
		if err := set.Format(&buf); err != nil {
			t.Fatal(err)
		}
		back, err := ParseSet(&buf)
		if err != nil {
			t.Fatalf("ParseSet(Format(set)): %v\n%s", err, buf.String())
		}
		if !setsEqual(set, back) {
			t.Fatalf("round trip differs:\n%s", buf.String())
		}
	})
}
