package transcript

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// format writes exchanges in the transcript layout Parse reads.
func format(ex []Exchange) string {
	var b strings.Builder
	for _, e := range ex {
		fmt.Fprintf(&b, "[%d] %s\n", e.N, e.Title)
		for _, part := range []struct {
			label string
			data  []byte
		}{{"C:", e.Command}, {"R:", e.Response}} {
			if part.data == nil {
				continue
			}
			fmt.Fprintf(&b, "  %s (%d bytes)\n", part.label, len(part.data))
			for i := 0; i < len(part.data); i += 16 {
				fmt.Fprintf(&b, "    % X\n", part.data[i:min(i+16, len(part.data))])
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// FuzzParse checks that Parse never panics or hangs, that every rejection
// has a message, and that accepted exchanges round-trip: written back in
// the transcript layout (format) they parse to the same exchanges. Seeds:
// every recorded transcript and testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, pat := range []string{"*.txt", "*/*.txt"} {
		files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "pico-hsm", "transcripts", pat))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ex, err := Parse(bytes.NewReader(b))
		if err != nil {
			if ex != nil || err.Error() == "" {
				t.Fatalf("rejection %#v with %d exchanges", err, len(ex))
			}
			return
		}
		text := format(ex)
		back, err := Parse(strings.NewReader(text))
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, text)
		}
		if len(back) != len(ex) {
			t.Fatalf("re-parse: %d exchanges, want %d\n%s", len(back), len(ex), text)
		}
		for i := range ex {
			a, b := ex[i], back[i]
			if a.N != b.N || a.Title != b.Title || !bytes.Equal(a.Command, b.Command) || !bytes.Equal(a.Response, b.Response) {
				t.Fatalf("exchange %d differs:\n%+v\n%+v\n%s", i, b, a, text)
			}
		}
	})
}
