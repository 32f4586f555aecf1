package dkekshare

import (
	"encoding/binary"
	"math/bits"
)

// This file holds the MD5 (RFC 1321) code behind the key derivation: a
// general compression function with a streaming front end for the first hash
// of every EVP_BytesToKey block, and a compression specialised for 16-byte
// messages for the millions of re-hashes that follow it. crypto/md5 is not
// used because its internal buffers (which see the password) cannot be wiped
// and because hashing 16 bytes through its API costs much more than one
// compression.
//
// The round functions F, G, H and I, the shift amounts, the message word
// order and the 64 constants T[1..64] are those of RFC 1321 section 3.4; the
// initial state words A, B, C, D those of section 3.3. The round functions are
// written in equivalent forms that use the most recently computed state word
// last, so that the rest of each step is computed off the critical path:
//
//	F(x, y, z) = (x AND y) OR (NOT x AND z)  = z XOR (x AND (y XOR z))
//	G(x, y, z) = (x AND z) OR (y AND NOT z)  = (y AND NOT z) + (z AND x)
//	H(x, y, z) = x XOR y XOR z               = (y XOR z) XOR x
//	I(x, y, z) = y XOR (x OR NOT z)
//
// (the two halves of G never have a bit set in common, so OR equals +).
//
// The step constants and the initial state are read from the variables md5T,
// chainT and md5IV instead of being written as literals: the Go compiler
// moves constant addends outwards ((x+c)+y becomes (x+y)+c), which put the
// addition of T[i] (and of the initial state words, which it carried through
// every step) after the round function, on the critical path. Loaded values
// are not moved; on the development machine (AMD EPYC, GOAMD64=v1) this took
// the 16-byte re-hash from about 133 to about 105 ns, close to the latency of
// its 64 dependent steps.

// Initial MD5 state, RFC 1321 section 3.3 (word A is the bytes 01 23 45 67,
// low byte first, and so on).
const (
	initA = 0x67452301
	initB = 0xefcdab89
	initC = 0x98badcfe
	initD = 0x10325476
)

// md5IV is the initial state as a variable, see above.
var md5IV = [4]uint32{initA, initB, initC, initD}

// md5T holds T[1..64] of RFC 1321 section 3.4 (T[i] = the integer part of
// 4294967296 * abs(sin(i))), in step order.
var md5T = [64]uint32{
	0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
	0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
	0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
	0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
	0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
	0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
	0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
	0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
}

// Padding words of a one-block MD5 message of exactly 16 bytes (RFC 1321
// sections 3.1 and 3.2): the message fills words 0-3, word 4 holds the 1 bit
// appended after it (byte 0x80, little-endian), words 5-13 are zero and words
// 14-15 hold the bit length 128 as a 64-bit little-endian integer.
var chainPad = [16]uint32{4: 0x80, 14: 16 * 8}

// md5MessageIndex is the message word used by step i (0-63) of RFC 1321
// section 3.4: k in [abcd k s i] of round 1 is i, of round 2 (1+5i) mod 16,
// of round 3 (5+3i) mod 16 and of round 4 7i mod 16 (i counted within the
// round from 0).
func md5MessageIndex(i int) int {
	j := i % 16
	switch i / 16 {
	case 0:
		return j
	case 1:
		return (1 + 5*j) % 16
	case 2:
		return (5 + 3*j) % 16
	default:
		return (7 * j) % 16
	}
}

// chainT is md5T with the constant padding words of a 16-byte message added
// in (T[i] + X[k] for the words k >= 4; for the digest words 0-3 just T[i]):
// the constant folding of md5Chain.
var chainT = func() (t [64]uint32) {
	for i := range t {
		t[i] = md5T[i]
		if k := md5MessageIndex(i); k >= 4 {
			t[i] += chainPad[k]
		}
	}
	return t
}()

// md5Block applies the MD5 compression function (RFC 1321 section 3.4) to
// state s for the 64-byte block p: a general, unspecialised compression, used
// by md5Hash.
func md5Block(s *[4]uint32, p *[64]byte) {
	x0 := binary.LittleEndian.Uint32(p[0:])
	x1 := binary.LittleEndian.Uint32(p[4:])
	x2 := binary.LittleEndian.Uint32(p[8:])
	x3 := binary.LittleEndian.Uint32(p[12:])
	x4 := binary.LittleEndian.Uint32(p[16:])
	x5 := binary.LittleEndian.Uint32(p[20:])
	x6 := binary.LittleEndian.Uint32(p[24:])
	x7 := binary.LittleEndian.Uint32(p[28:])
	x8 := binary.LittleEndian.Uint32(p[32:])
	x9 := binary.LittleEndian.Uint32(p[36:])
	x10 := binary.LittleEndian.Uint32(p[40:])
	x11 := binary.LittleEndian.Uint32(p[44:])
	x12 := binary.LittleEndian.Uint32(p[48:])
	x13 := binary.LittleEndian.Uint32(p[52:])
	x14 := binary.LittleEndian.Uint32(p[56:])
	x15 := binary.LittleEndian.Uint32(p[60:])
	t := &md5T
	a, b, c, d := s[0], s[1], s[2], s[3]

	// Round 1: F.
	a = b + bits.RotateLeft32(a+x0+t[0]+(d^(b&(c^d))), 7)
	d = a + bits.RotateLeft32(d+x1+t[1]+(c^(a&(b^c))), 12)
	c = d + bits.RotateLeft32(c+x2+t[2]+(b^(d&(a^b))), 17)
	b = c + bits.RotateLeft32(b+x3+t[3]+(a^(c&(d^a))), 22)
	a = b + bits.RotateLeft32(a+x4+t[4]+(d^(b&(c^d))), 7)
	d = a + bits.RotateLeft32(d+x5+t[5]+(c^(a&(b^c))), 12)
	c = d + bits.RotateLeft32(c+x6+t[6]+(b^(d&(a^b))), 17)
	b = c + bits.RotateLeft32(b+x7+t[7]+(a^(c&(d^a))), 22)
	a = b + bits.RotateLeft32(a+x8+t[8]+(d^(b&(c^d))), 7)
	d = a + bits.RotateLeft32(d+x9+t[9]+(c^(a&(b^c))), 12)
	c = d + bits.RotateLeft32(c+x10+t[10]+(b^(d&(a^b))), 17)
	b = c + bits.RotateLeft32(b+x11+t[11]+(a^(c&(d^a))), 22)
	a = b + bits.RotateLeft32(a+x12+t[12]+(d^(b&(c^d))), 7)
	d = a + bits.RotateLeft32(d+x13+t[13]+(c^(a&(b^c))), 12)
	c = d + bits.RotateLeft32(c+x14+t[14]+(b^(d&(a^b))), 17)
	b = c + bits.RotateLeft32(b+x15+t[15]+(a^(c&(d^a))), 22)

	// Round 2: G.
	a = b + bits.RotateLeft32(a+x1+t[16]+(c&^d)+(d&b), 5)
	d = a + bits.RotateLeft32(d+x6+t[17]+(b&^c)+(c&a), 9)
	c = d + bits.RotateLeft32(c+x11+t[18]+(a&^b)+(b&d), 14)
	b = c + bits.RotateLeft32(b+x0+t[19]+(d&^a)+(a&c), 20)
	a = b + bits.RotateLeft32(a+x5+t[20]+(c&^d)+(d&b), 5)
	d = a + bits.RotateLeft32(d+x10+t[21]+(b&^c)+(c&a), 9)
	c = d + bits.RotateLeft32(c+x15+t[22]+(a&^b)+(b&d), 14)
	b = c + bits.RotateLeft32(b+x4+t[23]+(d&^a)+(a&c), 20)
	a = b + bits.RotateLeft32(a+x9+t[24]+(c&^d)+(d&b), 5)
	d = a + bits.RotateLeft32(d+x14+t[25]+(b&^c)+(c&a), 9)
	c = d + bits.RotateLeft32(c+x3+t[26]+(a&^b)+(b&d), 14)
	b = c + bits.RotateLeft32(b+x8+t[27]+(d&^a)+(a&c), 20)
	a = b + bits.RotateLeft32(a+x13+t[28]+(c&^d)+(d&b), 5)
	d = a + bits.RotateLeft32(d+x2+t[29]+(b&^c)+(c&a), 9)
	c = d + bits.RotateLeft32(c+x7+t[30]+(a&^b)+(b&d), 14)
	b = c + bits.RotateLeft32(b+x12+t[31]+(d&^a)+(a&c), 20)

	// Round 3: H.
	a = b + bits.RotateLeft32(a+x5+t[32]+((c^d)^b), 4)
	d = a + bits.RotateLeft32(d+x8+t[33]+((b^c)^a), 11)
	c = d + bits.RotateLeft32(c+x11+t[34]+((a^b)^d), 16)
	b = c + bits.RotateLeft32(b+x14+t[35]+((d^a)^c), 23)
	a = b + bits.RotateLeft32(a+x1+t[36]+((c^d)^b), 4)
	d = a + bits.RotateLeft32(d+x4+t[37]+((b^c)^a), 11)
	c = d + bits.RotateLeft32(c+x7+t[38]+((a^b)^d), 16)
	b = c + bits.RotateLeft32(b+x10+t[39]+((d^a)^c), 23)
	a = b + bits.RotateLeft32(a+x13+t[40]+((c^d)^b), 4)
	d = a + bits.RotateLeft32(d+x0+t[41]+((b^c)^a), 11)
	c = d + bits.RotateLeft32(c+x3+t[42]+((a^b)^d), 16)
	b = c + bits.RotateLeft32(b+x6+t[43]+((d^a)^c), 23)
	a = b + bits.RotateLeft32(a+x9+t[44]+((c^d)^b), 4)
	d = a + bits.RotateLeft32(d+x12+t[45]+((b^c)^a), 11)
	c = d + bits.RotateLeft32(c+x15+t[46]+((a^b)^d), 16)
	b = c + bits.RotateLeft32(b+x2+t[47]+((d^a)^c), 23)

	// Round 4: I.
	a = b + bits.RotateLeft32(a+x0+t[48]+(c^(b|^d)), 6)
	d = a + bits.RotateLeft32(d+x7+t[49]+(b^(a|^c)), 10)
	c = d + bits.RotateLeft32(c+x14+t[50]+(a^(d|^b)), 15)
	b = c + bits.RotateLeft32(b+x5+t[51]+(d^(c|^a)), 21)
	a = b + bits.RotateLeft32(a+x12+t[52]+(c^(b|^d)), 6)
	d = a + bits.RotateLeft32(d+x3+t[53]+(b^(a|^c)), 10)
	c = d + bits.RotateLeft32(c+x10+t[54]+(a^(d|^b)), 15)
	b = c + bits.RotateLeft32(b+x1+t[55]+(d^(c|^a)), 21)
	a = b + bits.RotateLeft32(a+x8+t[56]+(c^(b|^d)), 6)
	d = a + bits.RotateLeft32(d+x15+t[57]+(b^(a|^c)), 10)
	c = d + bits.RotateLeft32(c+x6+t[58]+(a^(d|^b)), 15)
	b = c + bits.RotateLeft32(b+x13+t[59]+(d^(c|^a)), 21)
	a = b + bits.RotateLeft32(a+x4+t[60]+(c^(b|^d)), 6)
	d = a + bits.RotateLeft32(d+x11+t[61]+(b^(a|^c)), 10)
	c = d + bits.RotateLeft32(c+x2+t[62]+(a^(d|^b)), 15)
	b = c + bits.RotateLeft32(b+x9+t[63]+(d^(c|^a)), 21)

	s[0] += a
	s[1] += b
	s[2] += c
	s[3] += d
}

// md5Chain re-hashes a 16-byte MD5 digest n times: each of the n rounds
// replaces the digest by the MD5 of its 16 bytes, which is exactly one
// compression of the initial state (RFC 1321 section 3.3) of the one block
// digest || chainPad. The digest travels as its four little-endian words
// x0-x3, which are also the state words A, B, C, D of the hash that produced
// it (RFC 1321 section 3.5), so no bytes are handled between rounds. The
// padding words are constant: the zero ones are left out and the others are
// folded into the step constants (chainT). The state stays in registers for
// the whole loop. t and iv are local copies of chainT and md5IV: loaded
// values rather than constants (see the top of this file), and local so that
// the race detector does not instrument their 68 loads per round (which made
// a derivation take half a minute under -race).
func md5Chain(x0, x1, x2, x3 uint32, n int) (uint32, uint32, uint32, uint32) {
	t := chainT
	iv := md5IV
	for ; n > 0; n-- {
		a, b, c, d := iv[0], iv[1], iv[2], iv[3]

		// Round 1: F.
		a = b + bits.RotateLeft32(a+x0+t[0]+(d^(b&(c^d))), 7)
		d = a + bits.RotateLeft32(d+x1+t[1]+(c^(a&(b^c))), 12)
		c = d + bits.RotateLeft32(c+x2+t[2]+(b^(d&(a^b))), 17)
		b = c + bits.RotateLeft32(b+x3+t[3]+(a^(c&(d^a))), 22)
		a = b + bits.RotateLeft32(a+t[4]+(d^(b&(c^d))), 7)
		d = a + bits.RotateLeft32(d+t[5]+(c^(a&(b^c))), 12)
		c = d + bits.RotateLeft32(c+t[6]+(b^(d&(a^b))), 17)
		b = c + bits.RotateLeft32(b+t[7]+(a^(c&(d^a))), 22)
		a = b + bits.RotateLeft32(a+t[8]+(d^(b&(c^d))), 7)
		d = a + bits.RotateLeft32(d+t[9]+(c^(a&(b^c))), 12)
		c = d + bits.RotateLeft32(c+t[10]+(b^(d&(a^b))), 17)
		b = c + bits.RotateLeft32(b+t[11]+(a^(c&(d^a))), 22)
		a = b + bits.RotateLeft32(a+t[12]+(d^(b&(c^d))), 7)
		d = a + bits.RotateLeft32(d+t[13]+(c^(a&(b^c))), 12)
		c = d + bits.RotateLeft32(c+t[14]+(b^(d&(a^b))), 17)
		b = c + bits.RotateLeft32(b+t[15]+(a^(c&(d^a))), 22)

		// Round 2: G.
		a = b + bits.RotateLeft32(a+x1+t[16]+(c&^d)+(d&b), 5)
		d = a + bits.RotateLeft32(d+t[17]+(b&^c)+(c&a), 9)
		c = d + bits.RotateLeft32(c+t[18]+(a&^b)+(b&d), 14)
		b = c + bits.RotateLeft32(b+x0+t[19]+(d&^a)+(a&c), 20)
		a = b + bits.RotateLeft32(a+t[20]+(c&^d)+(d&b), 5)
		d = a + bits.RotateLeft32(d+t[21]+(b&^c)+(c&a), 9)
		c = d + bits.RotateLeft32(c+t[22]+(a&^b)+(b&d), 14)
		b = c + bits.RotateLeft32(b+t[23]+(d&^a)+(a&c), 20)
		a = b + bits.RotateLeft32(a+t[24]+(c&^d)+(d&b), 5)
		d = a + bits.RotateLeft32(d+t[25]+(b&^c)+(c&a), 9)
		c = d + bits.RotateLeft32(c+x3+t[26]+(a&^b)+(b&d), 14)
		b = c + bits.RotateLeft32(b+t[27]+(d&^a)+(a&c), 20)
		a = b + bits.RotateLeft32(a+t[28]+(c&^d)+(d&b), 5)
		d = a + bits.RotateLeft32(d+x2+t[29]+(b&^c)+(c&a), 9)
		c = d + bits.RotateLeft32(c+t[30]+(a&^b)+(b&d), 14)
		b = c + bits.RotateLeft32(b+t[31]+(d&^a)+(a&c), 20)

		// Round 3: H.
		a = b + bits.RotateLeft32(a+t[32]+((c^d)^b), 4)
		d = a + bits.RotateLeft32(d+t[33]+((b^c)^a), 11)
		c = d + bits.RotateLeft32(c+t[34]+((a^b)^d), 16)
		b = c + bits.RotateLeft32(b+t[35]+((d^a)^c), 23)
		a = b + bits.RotateLeft32(a+x1+t[36]+((c^d)^b), 4)
		d = a + bits.RotateLeft32(d+t[37]+((b^c)^a), 11)
		c = d + bits.RotateLeft32(c+t[38]+((a^b)^d), 16)
		b = c + bits.RotateLeft32(b+t[39]+((d^a)^c), 23)
		a = b + bits.RotateLeft32(a+t[40]+((c^d)^b), 4)
		d = a + bits.RotateLeft32(d+x0+t[41]+((b^c)^a), 11)
		c = d + bits.RotateLeft32(c+x3+t[42]+((a^b)^d), 16)
		b = c + bits.RotateLeft32(b+t[43]+((d^a)^c), 23)
		a = b + bits.RotateLeft32(a+t[44]+((c^d)^b), 4)
		d = a + bits.RotateLeft32(d+t[45]+((b^c)^a), 11)
		c = d + bits.RotateLeft32(c+t[46]+((a^b)^d), 16)
		b = c + bits.RotateLeft32(b+x2+t[47]+((d^a)^c), 23)

		// Round 4: I.
		a = b + bits.RotateLeft32(a+x0+t[48]+(c^(b|^d)), 6)
		d = a + bits.RotateLeft32(d+t[49]+(b^(a|^c)), 10)
		c = d + bits.RotateLeft32(c+t[50]+(a^(d|^b)), 15)
		b = c + bits.RotateLeft32(b+t[51]+(d^(c|^a)), 21)
		a = b + bits.RotateLeft32(a+t[52]+(c^(b|^d)), 6)
		d = a + bits.RotateLeft32(d+x3+t[53]+(b^(a|^c)), 10)
		c = d + bits.RotateLeft32(c+t[54]+(a^(d|^b)), 15)
		b = c + bits.RotateLeft32(b+x1+t[55]+(d^(c|^a)), 21)
		a = b + bits.RotateLeft32(a+t[56]+(c^(b|^d)), 6)
		d = a + bits.RotateLeft32(d+t[57]+(b^(a|^c)), 10)
		c = d + bits.RotateLeft32(c+t[58]+(a^(d|^b)), 15)
		b = c + bits.RotateLeft32(b+t[59]+(d^(c|^a)), 21)
		a = b + bits.RotateLeft32(a+t[60]+(c^(b|^d)), 6)
		d = a + bits.RotateLeft32(d+t[61]+(b^(a|^c)), 10)
		c = d + bits.RotateLeft32(c+x2+t[62]+(a^(d|^b)), 15)
		b = c + bits.RotateLeft32(b+t[63]+(d^(c|^a)), 21)

		x0, x1, x2, x3 = a+iv[0], b+iv[1], c+iv[2], d+iv[3]
	}
	return x0, x1, x2, x3
}

// md5Hash is a streaming MD5 (RFC 1321 section 3) over md5Block whose buffers
// belong to this package, so that wipe can clear everything that saw the
// password.
type md5Hash struct {
	s   [4]uint32
	buf [64]byte
	nb  int    // bytes in buf
	len uint64 // message length in bytes
}

func newMD5() md5Hash {
	return md5Hash{s: md5IV}
}

func (h *md5Hash) write(p []byte) {
	h.len += uint64(len(p))
	for len(p) > 0 {
		n := copy(h.buf[h.nb:], p)
		h.nb += n
		p = p[n:]
		if h.nb == len(h.buf) {
			md5Block(&h.s, &h.buf)
			h.nb = 0
		}
	}
}

// sum finishes the hash (RFC 1321 sections 3.1 and 3.2: a 1 bit, zero bits up
// to 56 mod 64 bytes, then the bit length as 64-bit little-endian) and returns
// the digest as its four little-endian words (section 3.5). Only wipe may be
// called afterwards.
func (h *md5Hash) sum() (uint32, uint32, uint32, uint32) {
	bitLen := h.len * 8
	h.buf[h.nb] = 0x80
	clear(h.buf[h.nb+1:])
	if h.nb >= 56 {
		md5Block(&h.s, &h.buf)
		clear(h.buf[:])
	}
	binary.LittleEndian.PutUint64(h.buf[56:], bitLen)
	md5Block(&h.s, &h.buf)
	return h.s[0], h.s[1], h.s[2], h.s[3]
}

func (h *md5Hash) wipe() {
	*h = md5Hash{}
}
