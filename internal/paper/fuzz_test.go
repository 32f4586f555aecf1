package paper

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse feeds from-paper's reader (text pages, typed lines, QR text)
// arbitrary input: it must never panic, and whatever it accepts must be a
// 64-byte share file whose own page reads back to it.
func FuzzParse(f *testing.F) {
	file := bytes.Repeat([]byte{0xA5}, 64)
	copy(file, "Salted__")
	var page strings.Builder
	for _, l := range FileLines(file) {
		page.WriteString(l.String() + "\n")
	}
	page.WriteString("File check value : " + FileCheck(file) + "\n")
	f.Add(page.String())
	f.Add(QRPayload(file))
	f.Add("1: 0000 - 00\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Parse(strings.NewReader(in), "page")
		if err != nil {
			return
		}
		if len(got) != 64 {
			t.Fatalf("accepted %d bytes", len(got))
		}
		back, err := ParseQRPayload(QRPayload(got))
		if err != nil || !bytes.Equal(back, got) {
			t.Fatalf("round trip of an accepted file: %v", err)
		}
	})
}
