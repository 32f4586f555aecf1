package cvc

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
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

// FuzzParse checks that Parse and ParseAll never panic or change their
// input, that every rejection is an error with a message, and that accepted
// objects round-trip: an object marshals to bytes that parse back and
// marshal the same, and the objects ParseAll accepted, marshalled one after
// the other, parse back to as many objects with the same encodings. The
// seed corpus is every vector in testdata plus testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		all, err := ParseAll(b)
		if err != nil {
			checkRejection(t, err, all == nil)
		} else {
			var cat []byte
			for _, c := range all {
				_ = c.OuterSignedData()
				_, _ = c.PublicKey.CryptoPublicKey()
				cat = append(cat, c.Marshal()...)
			}
			back, err := ParseAll(cat)
			if err != nil {
				t.Fatalf("ParseAll of the re-encoded % X: %v", cat, err)
			}
			if len(back) != len(all) {
				t.Fatalf("ParseAll round trip: %d objects, want %d", len(back), len(all))
			}
			for i := range back {
				if m, want := back[i].Marshal(), all[i].Marshal(); !bytes.Equal(m, want) {
					t.Fatalf("object %d marshal not stable\n% X\n% X", i+1, m, want)
				}
			}
		}
		c, err := Parse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse or ParseAll modified the input")
		}
		if err != nil {
			checkRejection(t, err, c == nil)
			return
		}
		if len(all) != 1 {
			t.Fatalf("Parse accepted what ParseAll read as %d objects", len(all))
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

// checkRejection fails unless err has a message and nothing was returned
// with it.
func checkRejection(t *testing.T, err error, nothing bool) {
	t.Helper()
	if err.Error() == "" {
		t.Fatalf("rejection without a message: %#v", err)
	}
	if !nothing {
		t.Fatalf("a result returned with the error %v", err)
	}
}

// marshalGAKP encodes r the way OpenSC orders the command data (5F29, 42,
// 7F49, 5F20), followed by the metadata tags in ascending order. Absent
// fields (profile -1, empty references) are left out.
func marshalGAKP(r *GAKPRequest) []byte {
	var b []byte
	if r.Profile >= 0 {
		b = appendTLV(b, TagProfile, []byte{byte(r.Profile)})
	}
	if r.CAR != "" {
		b = appendTLV(b, TagCAR, []byte(r.CAR))
	}
	b = append(b, r.PublicKey.Marshal()...)
	if r.CHR != "" {
		b = appendTLV(b, TagCHR, []byte(r.CHR))
	}
	for _, tag := range []byte{0x90, 0x91, 0x92, 0x93} {
		if v, ok := r.Meta[tag]; ok {
			b = appendTLV(b, uint32(tag), v)
		}
	}
	return b
}

// FuzzParseGAKPRequest checks that ParseGAKPRequest never panics, that
// every rejection is an error with a message, and that an accepted request
// round-trips: re-encoded (marshalGAKP) it parses to the same profile,
// references, metadata and public key.
func FuzzParseGAKPRequest(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseGAKPRequest(b)
		if err != nil {
			checkRejection(t, err, r == nil)
			return
		}
		pk := r.PublicKey.Marshal()
		if _, err := ParseGAKPRequest(pk); err != nil {
			t.Fatalf("re-parse of % X: %v", pk, err)
		}
		m := marshalGAKP(r)
		r2, err := ParseGAKPRequest(m)
		if err != nil {
			t.Fatalf("re-parse of % X: %v", m, err)
		}
		if r2.Profile != r.Profile || r2.CAR != r.CAR || r2.CHR != r.CHR || !reflect.DeepEqual(r2.Meta, r.Meta) {
			t.Fatalf("round trip: %+v, want %+v", r2, r)
		}
		if pk2 := r2.PublicKey.Marshal(); !bytes.Equal(pk2, pk) {
			t.Fatalf("public key round trip:\n% X\n% X", pk2, pk)
		}
		if m2 := marshalGAKP(r2); !bytes.Equal(m2, m) {
			t.Fatalf("marshal not stable\n% X\n% X", m2, m)
		}
	})
}
