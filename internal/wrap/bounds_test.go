package wrap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// A boundary is a crafted input for one length-prefixed reader of this
// package whose length is exactly what is left after it (named "+0"), one
// byte past ("+1") or two bytes past ("+2"). want is part of the error
// message the input must give ("" when it must be accepted). The inputs
// have no spare capacity, so that a reader that slices past a loosened
// bound panics instead of reading bytes that are not its own.
type boundary struct {
	name string
	in   []byte
	want string
}

func exact(b []byte) []byte { return b[:len(b):len(b)] }

// blobBoundaries covers ParseBlob's four 2-byte length fields: the fields
// before the one under test hold one byte each, and 32 bytes follow its
// length before the 16-byte MAC.
func blobBoundaries() []boundary {
	names := []string{"algorithm OID", "allowed algorithms", "access conditions", "key OID"}
	var out []boundary
	for i, name := range names {
		for over := range 3 {
			b := append(make([]byte, 8), byte(TypeRSA))
			for range i {
				b = append(b, 0, 1, 0xAA)
			}
			const left = 32
			b = binary.BigEndian.AppendUint16(b, uint16(left+over))
			b = append(b, bytes.Repeat([]byte{0x5A}, left)...)
			b = append(b, bytes.Repeat([]byte{0xC3}, 16)...)
			want := fmt.Sprintf("%s length %d exceeds the %d bytes left", name, left+over, left)
			if over == 0 {
				if i+1 < len(names) {
					want = "truncated before the " + names[i+1]
				} else {
					want = "encrypted part of 0 bytes"
				}
			}
			out = append(out, boundary{fmt.Sprintf("blob %s +%d", name, over), exact(b), want})
		}
	}
	return out
}

// plainFields are the length-prefixed key fields parsePlain reads, per
// type, in order.
var plainFields = []struct {
	typ   KeyType
	names []string
}{
	{TypeRSA, []string{"D", "N", "E"}},
	{TypeRSACRT, []string{"DP", "DQ", "P", "PQ", "Q", "N", "E"}},
	{TypeEC, []string{"A", "B", "P", "order", "G", "D", "Q"}},
}

// plainBoundaries covers parsePlain, the key fields of a decrypted blob:
// every 2-byte field length of every type, the fields before it holding
// one byte each and 20 bytes following it, and the AES key, whose length
// is the key size field (16 and 64 bytes, the smallest and the largest).
// A last field that takes exactly what is left is a whole key without
// padding, which the firmware writes when the key ends on a block boundary.
func plainBoundaries() []boundary {
	var out []boundary
	for _, pf := range plainFields {
		for j, name := range pf.names {
			for over := range 3 {
				p := append(bytes.Repeat([]byte{'R'}, 8), 0x01, 0x00)
				for range j {
					p = append(p, 0, 1, 0x01)
				}
				const left = 20
				p = binary.BigEndian.AppendUint16(p, uint16(left+over))
				p = append(p, bytes.Repeat([]byte{0x5A}, left)...)
				want := fmt.Sprintf("%s length %d exceeds the %d bytes left", name, left+over, left)
				if over == 0 {
					want = ""
					if j+1 < len(pf.names) {
						want = "truncated before " + pf.names[j+1]
					}
				}
				out = append(out, boundary{fmt.Sprintf("%v %s +%d", pf.typ, name, over), exact(append([]byte{byte(pf.typ)}, p...)), want})
			}
		}
	}
	for _, n := range []int{16, 64} {
		for over := range 3 {
			p := append(bytes.Repeat([]byte{'R'}, 8), 0, byte(n))
			p = append(p, bytes.Repeat([]byte{0x5A}, n-over)...)
			want := ""
			if over > 0 {
				want = "AES key truncated"
			}
			out = append(out, boundary{fmt.Sprintf("AES-%d key +%d", 8*n, over), exact(append([]byte{byte(TypeAES)}, p...)), want})
		}
	}
	return out
}

// fileBoundaries covers ParseFile's BER-TLVs (read by internal/tlv): the
// outer SEQUENCE, the OCTET STRING with the blob, the PRKD and the
// certificate. At over 0 the element under test swallows the ones after
// it, which ParseFile accepts: it does not look inside them.
func fileBoundaries() []boundary {
	blob := bytes.Repeat([]byte{0xB1}, 40)
	prkd := tlv(0xA0, bytes.Repeat([]byte{0xD2}, 10))
	cert := tlv(0x67, bytes.Repeat([]byte{0xC3}, 12))
	// build encodes the file with the length of the element at (0 outer,
	// 1 blob, 2 PRKD, 3 certificate) set to what is left after its header
	// plus over; the outer length counts the bytes that are there. It
	// returns the file and what is left.
	build := func(at, over int) ([]byte, int) {
		elems := [][]byte{tlv(0x04, blob), bytes.Clone(prkd), bytes.Clone(cert)}
		left := 0
		if at > 0 {
			// The element under test takes the rest of the SEQUENCE.
			rest := bytes.Join(elems[at-1:], nil)
			left = len(rest) - 2
			elems = append(elems[:at-1], append([]byte{rest[0], byte(left + over)}, rest[2:]...))
		}
		body := bytes.Join(elems, nil)
		n := len(body)
		if at == 0 {
			left = n
			n += over
		}
		return append([]byte{0x30, byte(n)}, body...), left
	}
	var out []boundary
	for at, name := range []string{"SEQUENCE", "key blob", "PRKD", "certificate"} {
		for over := range 3 {
			b, left := build(at, over)
			want := ""
			if over > 0 {
				want = fmt.Sprintf("length %d exceeds the %d bytes left", left+over, left)
			}
			out = append(out, boundary{fmt.Sprintf("file %s +%d", name, over), exact(b), want})
		}
	}
	return out
}

// checkBoundary runs parse on bd.in and checks the outcome: an error that
// wraps want and whose message contains bd.want, or acceptance when
// bd.want is empty; a panic is a failure, not a crash of the test binary.
func checkBoundary(t *testing.T, bd boundary, want error, parse func([]byte) error) {
	t.Helper()
	var err error
	panicked := func() (p any) {
		defer func() { p = recover() }()
		err = parse(bd.in)
		return nil
	}()
	switch {
	case panicked != nil:
		t.Errorf("%s: panic on % X: %v", bd.name, bd.in, panicked)
	case bd.want == "" && err != nil:
		t.Errorf("%s: %v, want it accepted", bd.name, err)
	case bd.want != "" && (err == nil || !errors.Is(err, want) || !strings.Contains(err.Error(), bd.want)):
		t.Errorf("%s: %v, want an error with %q", bd.name, err, bd.want)
	}
}

// TestLengthBoundaries gives every length-prefixed reader of the package a
// length that is exactly what is left, one past it and two past it. It
// guards against a bound loosened by one or two bytes (the mutant accepts
// the field, then slices past the input and panics, which only fuzzing
// found) and against a bound tightened so that a field that fills what is
// left is refused. The same inputs seed FuzzParseBlob, FuzzParseFile and
// FuzzParsePlain.
func TestLengthBoundaries(t *testing.T) {
	for _, bd := range blobBoundaries() {
		checkBoundary(t, bd, ErrBlob, func(b []byte) error {
			bl, err := ParseBlob(b)
			if err == nil && bl == nil {
				return errors.New("no blob and no error")
			}
			return err
		})
	}
	for _, bd := range plainBoundaries() {
		checkBoundary(t, bd, ErrBlob, func(b []byte) error {
			key, err := parsePlain(KeyType(b[0]), b[1:])
			if err == nil && key == nil {
				return errors.New("no key and no error")
			}
			return err
		})
	}
	for _, bd := range fileBoundaries() {
		checkBoundary(t, bd, ErrFile, func(b []byte) error {
			_, err := ParseFile(b)
			return err
		})
	}
}
