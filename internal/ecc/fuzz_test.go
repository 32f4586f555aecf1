package ecc

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal checks that Unmarshal never panics, that every rejection
// is an error with a message, and that whatever it accepts is a point on
// the curve that re-encodes to the same bytes. The first input selects the
// curve (index into Curves()).
func FuzzUnmarshal(f *testing.F) {
	for i, c := range Curves() {
		g := c.Marshal(c.Gx, c.Gy)
		f.Add(uint8(i), g)
		f.Add(uint8(i), g[:len(g)-1])
		f.Add(uint8(i), append([]byte{2}, g[1:1+c.ByteLen()]...))
		f.Add(uint8(i), append(append([]byte{4}, c.P.FillBytes(make([]byte, c.ByteLen()))...), g[1+c.ByteLen():]...))
	}
	f.Add(uint8(0), []byte{})
	f.Add(uint8(0), []byte{0})
	f.Add(uint8(0), []byte{4})

	curves := Curves()
	f.Fuzz(func(t *testing.T, idx uint8, data []byte) {
		c := curves[int(idx)%len(curves)]
		x, y, err := c.Unmarshal(data)
		if err != nil {
			if x != nil || y != nil {
				t.Fatal("coordinates returned with an error")
			}
			if err.Error() == "" {
				t.Fatal("rejection without a message")
			}
			return
		}
		if !c.IsOnCurve(x, y) {
			t.Fatalf("accepted a point not on the curve: %x", data)
		}
		if got := c.Marshal(x, y); !bytes.Equal(got, data) {
			t.Fatalf("re-encoding differs: %x vs %x", got, data)
		}
	})
}
