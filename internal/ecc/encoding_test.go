package ecc

import (
	"bytes"
	"errors"
	"math/big"
	"testing"
)

func TestMarshalRoundTrip(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				x, y := c.ScalarBaseMult(randScalar(t, c))
				enc := c.Marshal(x, y)
				if len(enc) != 1+2*c.ByteLen() || enc[0] != 4 {
					t.Fatalf("Marshal: len %d prefix %x", len(enc), enc[:1])
				}
				x2, y2, err := c.Unmarshal(enc)
				if err != nil {
					t.Fatal(err)
				}
				if x.Cmp(x2) != 0 || y.Cmp(y2) != 0 {
					t.Fatal("round trip changed the point")
				}
			}
			// Fixed length even when a coordinate has leading zero bytes:
			// find a small multiple of G whose x has a zero top byte.
			found := false
			px, py := c.Gx, c.Gy
			for k := 1; k < 5000 && !found; k++ {
				if len(px.Bytes()) < c.ByteLen() {
					enc := c.Marshal(px, py)
					if len(enc) != 1+2*c.ByteLen() || enc[1] != 0 {
						t.Fatalf("short x not padded: %x", enc)
					}
					if x2, _, err := c.Unmarshal(enc); err != nil || x2.Cmp(px) != 0 {
						t.Fatalf("Unmarshal of padded point: %v", err)
					}
					found = true
				}
				px, py = c.Add(px, py, c.Gx, c.Gy)
			}
			if !found {
				t.Error("no point with a short x-coordinate found")
			}
			if c.Marshal(nil, nil) != nil {
				t.Error("Marshal(O) != nil")
			}
		})
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			n := c.ByteLen()
			good := c.Marshal(c.Gx, c.Gy)
			with := func(f func(b []byte)) []byte {
				b := append([]byte(nil), good...)
				f(b)
				return b
			}
			pBytes := c.P.FillBytes(make([]byte, n))
			tests := []struct {
				name string
				in   []byte
			}{
				{"nil", nil},
				{"empty", []byte{}},
				{"infinity 00", []byte{0}},
				{"prefix only", []byte{4}},
				{"one byte short", good[:len(good)-1]},
				{"one byte long", append(append([]byte(nil), good...), 0)},
				{"compressed length", append([]byte{2}, good[1:1+n]...)},
				{"prefix 02", with(func(b []byte) { b[0] = 2 })},
				{"prefix 03", with(func(b []byte) { b[0] = 3 })},
				{"prefix 06 (hybrid)", with(func(b []byte) { b[0] = 6 })},
				{"prefix 00", with(func(b []byte) { b[0] = 0 })},
				{"x = p", with(func(b []byte) { copy(b[1:1+n], pBytes) })},
				{"y = p", with(func(b []byte) { copy(b[1+n:], pBytes) })},
				{"x = 0xff..", with(func(b []byte) { copy(b[1:1+n], bytes.Repeat([]byte{0xff}, n)) })},
				{"not on curve", with(func(b []byte) { b[len(b)-1] ^= 1 })},
				{"all zero", append([]byte{4}, make([]byte, 2*n)...)},
				{"other curve's G", otherCurveG(c)},
			}
			for _, tc := range tests {
				x, y, err := c.Unmarshal(tc.in)
				if err == nil {
					t.Errorf("%s: Unmarshal accepted %x", tc.name, tc.in)
					continue
				}
				if !errors.Is(err, ErrInvalidPoint) {
					t.Errorf("%s: error %v does not wrap ErrInvalidPoint", tc.name, err)
				}
				if x != nil || y != nil {
					t.Errorf("%s: non-nil coordinates with error", tc.name)
				}
			}
			// y and p - y are both valid (the negation of G).
			neg := with(func(b []byte) { new(big.Int).Sub(c.P, c.Gy).FillBytes(b[1+n:]) })
			if _, _, err := c.Unmarshal(neg); err != nil {
				t.Errorf("Unmarshal(-G): %v", err)
			}
		})
	}
}

// otherCurveG returns the base point of a different curve with the same
// encoded length as c (or a wrong-length one if there is none).
func otherCurveG(c *Curve) []byte {
	for _, o := range Curves() {
		if o != c && o.ByteLen() == c.ByteLen() {
			return o.Marshal(o.Gx, o.Gy)
		}
	}
	return []byte{4, 1, 2}
}
