package dkekshare

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"testing"
)

// digestBytes encodes MD5 state words as the digest bytes (RFC 1321
// section 3.5: A, B, C, D, each low byte first).
func digestBytes(a, b, c, d uint32) [16]byte {
	var out [16]byte
	binary.LittleEndian.PutUint32(out[0:], a)
	binary.LittleEndian.PutUint32(out[4:], b)
	binary.LittleEndian.PutUint32(out[8:], c)
	binary.LittleEndian.PutUint32(out[12:], d)
	return out
}

// TestMD5Constants checks T[i] = floor(2^32 * abs(sin(i))) (RFC 1321
// section 3.4) and the padding folded into chainT.
func TestMD5Constants(t *testing.T) {
	for i, got := range md5T {
		if want := uint32(math.Floor(4294967296 * math.Abs(math.Sin(float64(i+1))))); got != want {
			t.Errorf("T[%d] = %#08x, want %#08x", i+1, got, want)
		}
	}
	tests := []struct {
		step int
		want uint32
	}{
		{0, md5T[0]},          // x0, a digest word
		{4, md5T[4] + 0x80},   // x4, the 1 bit
		{5, md5T[5]},          // x5, zero
		{14, md5T[14] + 128},  // x14, the bit length
		{25, md5T[25] + 128},  // round 2, step 10: x14
		{23, md5T[23] + 0x80}, // round 2, step 8: x4
		{35, md5T[35] + 128},  // round 3, step 4: x14
		{48, md5T[48]},        // round 4, step 1: x0
		{50, md5T[50] + 128},  // round 4, step 3: x14
		{63, md5T[63]},        // round 4, step 16: x9
	}
	for _, tt := range tests {
		if got := chainT[tt.step]; got != tt.want {
			t.Errorf("chainT[%d] = %#08x, want %#08x", tt.step, got, tt.want)
		}
	}
}

// TestMD5HashMatchesCryptoMD5 checks the streaming MD5 against crypto/md5
// for every message length around the 56- and 64-byte padding boundaries,
// written in one piece and in uneven pieces.
func TestMD5HashMatchesCryptoMD5(t *testing.T) {
	msg := make([]byte, 300)
	for i := range msg {
		msg[i] = byte(i*7 + 3)
	}
	for n := 0; n <= len(msg); n++ {
		want := md5.Sum(msg[:n])
		for _, piece := range []int{n + 1, 1, 5, 63, 64, 65} {
			h := newMD5()
			for p := msg[:n]; len(p) > 0; {
				k := min(piece, len(p))
				h.write(p[:k])
				p = p[k:]
			}
			if got := digestBytes(h.sum()); got != want {
				t.Fatalf("length %d, pieces of %d: got %x, want %x", n, piece, got, want)
			}
		}
	}
}

// TestMD5ChainMatchesCryptoMD5 checks the specialised 16-byte re-hash against
// crypto/md5 applied the same number of times.
func TestMD5ChainMatchesCryptoMD5(t *testing.T) {
	tests := []struct {
		name string
		seed [16]byte
		n    int
	}{
		{"zero rounds", [16]byte{1, 2, 3}, 0},
		{"one round of zeros", [16]byte{}, 1},
		{"one round of ones", [16]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1},
		{"two rounds", md5.Sum([]byte("abc")), 2},
		{"1000 rounds", md5.Sum(nil), 1000},
		{"100000 rounds", md5.Sum([]byte("password")), 100000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.seed
			for range tt.n {
				want = md5.Sum(want[:])
			}
			s := tt.seed
			got := digestBytes(md5Chain(binary.LittleEndian.Uint32(s[0:]), binary.LittleEndian.Uint32(s[4:]),
				binary.LittleEndian.Uint32(s[8:]), binary.LittleEndian.Uint32(s[12:]), tt.n))
			if got != want {
				t.Fatalf("got %x, want %x", got, want)
			}
		})
	}
}

func BenchmarkMD5Chain(b *testing.B) {
	var x0, x1, x2, x3 uint32
	for b.Loop() {
		x0, x1, x2, x3 = md5Chain(x0, x1, x2, x3, 1)
	}
}
