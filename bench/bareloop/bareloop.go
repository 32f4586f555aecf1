// Package bareloop is the "bare loop" baseline of the KDF benchmark: N
// chained MD5 digests of 16-byte messages computed with a plain, general MD5
// compression function and nothing else.
//
// Chain keeps one 64-byte block that already holds the MD5 padding of a
// 16-byte message (RFC 1321 sections 3.1 and 3.2: byte 16 = 0x80, bytes 56-63
// = the bit length 128) and per round writes the current digest into bytes
// 0-15, sets the state to the initial values (section 3.3), calls Block once
// and takes the new state as the digest (section 3.5). There is no hashing
// API, buffering or padding work per round: this is the least an MD5 of a
// 16-byte message costs with a general compression function.
//
// Block is a general compression: it loads all 16 message words from the
// block in memory and assumes nothing about them. Its 64 steps are written
// exactly like those of the general compression in internal/dkekshare
// (unrolled, the same operation forms and order, T[i] read from a table,
// which is what keeps the Go compiler from lengthening the critical path, see
// internal/dkekshare/md5.go). So the only differences from the
// internal/dkekshare re-hash are what that one specialises: the constant
// padding words folded into the step constants, the zero words left out, and
// the state kept in registers from round to round instead of going through a
// block in memory and a function call.
package bareloop

import (
	"encoding/binary"
	"math/bits"
)

// md5T holds T[1..64] of RFC 1321 section 3.4, in step order.
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

// md5IV is the initial state of RFC 1321 section 3.3.
var md5IV = [4]uint32{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}

// Block applies the MD5 compression function (RFC 1321 section 3.4: round
// functions F, G, H, I, the shifts and the constants T[1..64]) to state s for
// the 64-byte block p. It is too large to be inlined, so each round of Chain
// is a real call.
func Block(s *[4]uint32, p *[64]byte) {
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

// Chain returns MD5^n(digest): the 16-byte digest hashed n times, each time
// as one call of Block on the prepared one-block message.
func Chain(digest [16]byte, n int) [16]byte {
	var block [64]byte
	copy(block[:16], digest[:])
	block[16] = 0x80                                // the 1 bit after the message
	binary.LittleEndian.PutUint64(block[56:], 16*8) // message length in bits
	for range n {
		s := md5IV
		Block(&s, &block)
		binary.LittleEndian.PutUint32(block[0:], s[0])
		binary.LittleEndian.PutUint32(block[4:], s[1])
		binary.LittleEndian.PutUint32(block[8:], s[2])
		binary.LittleEndian.PutUint32(block[12:], s[3])
	}
	return [16]byte(block[:16])
}
