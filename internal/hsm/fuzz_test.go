package hsm_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// fciSeeds are SELECT answers: the recorded one
// (transcripts/00-status-factory.txt [3]) and the shapes of TestParseFCI.
var fciSeeds = []string{
	"62228102000082010183020000840B2B0601040181C31F0201008A0105 8505 0000FF0606",
	"62058503FF0401",
	"6F00",
	"62",
	"6203820101",
	"62FF8505",
	"628200058503000601",
	"6283000005850206068A",
}

func seedBytes(f *testing.F, s string) []byte {
	f.Helper()
	b, err := hex.DecodeString(string(bytes.ReplaceAll([]byte(s), []byte(" "), nil)))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzParseFCI checks that ParseFCI never panics or reads past its input,
// that every rejection has a message, and that an accepted answer
// round-trips: the version and options, written back as the firmware
// writes them (62 { 85 { options, FF, major, minor } }), parse to the same
// Info. Seeds: fciSeeds and testdata/fuzz/FuzzParseFCI.
func FuzzParseFCI(f *testing.F) {
	for _, s := range fciSeeds {
		f.Add(seedBytes(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		info, err := hsm.ParseFCI(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseFCI modified its input")
		}
		if !bytes.Equal(info.FCP, b) {
			t.Fatalf("Info.FCP = % X, want the input", info.FCP)
		}
		if err != nil {
			if err.Error() == "" {
				t.Fatal("rejection without a message")
			}
			return
		}
		p := []byte{byte(info.Options >> 8), byte(info.Options), 0xFF, info.Major, info.Minor}
		again, err := hsm.ParseFCI(hsm.BERTLV(0x62, hsm.BERTLV(0x85, p)))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if again.Major != info.Major || again.Minor != info.Minor || again.Options != info.Options {
			t.Fatalf("round trip: %+v, want %+v", again, info)
		}
	})
}

// FuzzFindTLV drives the BER-TLV reader behind ParseFCI and SelectFile
// directly: it never panics or reads past its input, what it finds is a
// part of the input that the writer encodes back to a TLV it finds again,
// and a length it decodes is re-read the same from the writer's encoding.
// The first byte of the input is the tag searched for.
func FuzzFindTLV(f *testing.F) {
	for _, s := range fciSeeds {
		b := seedBytes(f, s)
		f.Add(append([]byte{0x62}, b...))
		f.Add(append([]byte{0x85}, b...))
	}
	f.Add([]byte{0x85, 0x85, 0x83, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x85, 0x85, 0x84, 0, 0, 0, 1, 0})
	f.Add([]byte{0x85, 0x85, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		tag, b := in[0], in[1:]
		orig := bytes.Clone(b)
		if n, size, ok := hsm.BERLength(b); ok {
			if size < 1 || size > 4 || size > len(b) || n < 0 || n >= 1<<24 {
				t.Fatalf("BERLength(% X) = %d, %d", b, n, size)
			}
			m, size2, ok := hsm.BERLength(hsm.BERTLV(0, make([]byte, n))[1:])
			if !ok || m != n || size2 > size {
				t.Fatalf("length %d re-read as %d (%d bytes, ok %v)", n, m, size2, ok)
			}
		} else if len(b) > 0 && b[0] < 0x80 {
			t.Fatalf("BERLength rejected the short form %02X", b[0])
		}
		v, ok := hsm.FindTLV(b, tag)
		if !bytes.Equal(orig, b) {
			t.Fatal("FindTLV modified its input")
		}
		if !ok {
			if v != nil {
				t.Fatalf("not found, but value % X", v)
			}
			return
		}
		if !bytes.Contains(b, v) || len(v)+2 > len(b) {
			t.Fatalf("value of %d bytes is not inside the %d-byte input", len(v), len(b))
		}
		enc := hsm.BERTLV(tag, v)
		back, ok := hsm.FindTLV(enc, tag)
		if !ok || !bytes.Equal(back, v) {
			t.Fatalf("round trip of % X: % X, %v", enc, back, ok)
		}
	})
}
