package wrap

import (
	"crypto/aes"
	"crypto/subtle"
)

// cmac computes AES-CMAC (NIST SP 800-38B; RFC 4493 section 2.4) of msg
// under key (16, 24 or 32 bytes).
func cmac(key, msg []byte) ([16]byte, error) {
	var out [16]byte
	blk, err := aes.NewCipher(key)
	if err != nil {
		return out, err
	}
	var l, k1, k2 [16]byte
	blk.Encrypt(l[:], l[:])
	dbl := func(dst, src *[16]byte) {
		carry := src[0] >> 7
		for i := 0; i < 15; i++ {
			dst[i] = src[i]<<1 | src[i+1]>>7
		}
		dst[15] = src[15] << 1
		if carry != 0 {
			dst[15] ^= 0x87
		}
	}
	dbl(&k1, &l)
	dbl(&k2, &k1)

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	if complete {
		copy(last[:], msg[16*(n-1):])
		subtle.XORBytes(last[:], last[:], k1[:])
	} else {
		rest := msg[16*(n-1):]
		copy(last[:], rest)
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}
	var x [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[16*i:16*i+16])
		blk.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	blk.Encrypt(out[:], x[:])
	return out, nil
}
