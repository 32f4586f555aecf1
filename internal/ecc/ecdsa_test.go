package ecc

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"io"
	"math/big"
	"testing"
	"testing/iotest"
)

func digests(msg []byte) map[string][]byte {
	s1 := sha1.Sum(msg)
	s224 := sha256.Sum224(msg)
	s256 := sha256.Sum256(msg)
	s384 := sha512.Sum384(msg)
	s512 := sha512.Sum512(msg)
	return map[string][]byte{
		"empty":   {},
		"sha1":    s1[:],
		"sha224":  s224[:],
		"sha256":  s256[:],
		"sha384":  s384[:],
		"sha512":  s512[:],
		"long100": bytes.Repeat(s512[:50], 2),
	}
}

func TestGenerateKey(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			for i := 0; i < 5; i++ {
				d, pub, err := c.GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				if len(d) != c.ScalarLen() {
					t.Fatalf("len(d) = %d, want %d", len(d), c.ScalarLen())
				}
				k := new(big.Int).SetBytes(d)
				if k.Sign() <= 0 || k.Cmp(c.N) >= 0 {
					t.Fatalf("d out of range: %x", d)
				}
				if _, _, err := c.Unmarshal(pub); err != nil {
					t.Fatalf("generated public key invalid: %v", err)
				}
				if want, err := c.PublicKey(d); err != nil || !bytes.Equal(pub, want) {
					t.Fatalf("pub != PublicKey(d)")
				}
			}
			// nil reader means crypto/rand.
			if _, _, err := c.GenerateKey(nil); err != nil {
				t.Errorf("GenerateKey(nil): %v", err)
			}
		})
	}
}

// GenerateKey must draw uniformly from [1, n-1]: with masking to the bit
// length of n, a candidate is accepted or rejected, never reduced.
func TestGenerateKeyRejectionSampling(t *testing.T) {
	c := ByName("secp521r1")
	// First candidate: all ones (masked to 2^521-1 >= n, rejected); second:
	// zero (rejected); third: 7 (accepted).
	l := c.ScalarLen()
	third := make([]byte, l)
	third[l-1] = 7
	src := bytes.NewReader(append(append(bytes.Repeat([]byte{0xff}, l), make([]byte, l)...), third...))
	d, _, err := c.GenerateKey(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d, third) {
		t.Errorf("d = %x, want %x", d, third)
	}
	// 0x01FF..FF masked candidate n-1 is accepted as is.
	nm1 := new(big.Int).Sub(c.N, big.NewInt(1)).FillBytes(make([]byte, l))
	withJunk := append([]byte(nil), nm1...)
	withJunk[0] |= 0xfe // bits above 521 are masked off
	d, _, err = c.GenerateKey(bytes.NewReader(withJunk))
	if err != nil || !bytes.Equal(d, nm1) {
		t.Errorf("d = %x, %v; want n-1", d, err)
	}
}

func TestRandomSourceFailures(t *testing.T) {
	c := ByName("brainpoolP256r1")
	d := randScalar(t, c)
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		r    io.Reader
	}{
		{"error", iotest.ErrReader(boom)},
		{"short", bytes.NewReader([]byte{1, 2, 3})},
		{"zeros", zeroReader{}},
		{"ones", onesReader{}},
	} {
		if _, _, err := c.GenerateKey(tc.r); err == nil {
			t.Errorf("%s: GenerateKey succeeded", tc.name)
		}
		if _, _, err := c.Sign(tc.r, d, make([]byte, 32)); err == nil {
			t.Errorf("%s: Sign succeeded", tc.name)
		}
	}
	if _, _, err := c.GenerateKey(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("reader error not wrapped: %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type onesReader struct{}

func (onesReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0xff
	}
	return len(p), nil
}

func TestPublicKeyRejectsOutOfRange(t *testing.T) {
	for _, c := range Curves() {
		n := c.N
		for _, tc := range []struct {
			name string
			d    []byte
		}{
			{"nil", nil},
			{"empty", []byte{}},
			{"zero", make([]byte, c.ScalarLen())},
			{"n", n.Bytes()},
			{"n+1", new(big.Int).Add(n, big.NewInt(1)).Bytes()},
			{"2^k-1", bytes.Repeat([]byte{0xff}, c.ScalarLen()+1)},
		} {
			if pub, err := c.PublicKey(tc.d); err == nil || !errors.Is(err, ErrInvalidPrivateKey) || pub != nil {
				t.Errorf("%s: PublicKey(%s) = %x, %v", c.Name, tc.name, pub, err)
			}
			if _, _, err := c.Sign(nil, tc.d, []byte{1}); !errors.Is(err, ErrInvalidPrivateKey) {
				t.Errorf("%s: Sign with d=%s: %v", c.Name, tc.name, err)
			}
		}
		// d = 1 gives G, and leading zeros are accepted.
		pub, err := c.PublicKey([]byte{0, 0, 0, 1})
		if err != nil || !bytes.Equal(pub, c.Marshal(c.Gx, c.Gy)) {
			t.Errorf("%s: PublicKey(1) = %x, %v", c.Name, pub, err)
		}
		nm1 := new(big.Int).Sub(n, big.NewInt(1)).Bytes()
		if _, err := c.PublicKey(nm1); err != nil {
			t.Errorf("%s: PublicKey(n-1): %v", c.Name, err)
		}
	}
}

func TestSignVerifyRoundTrip(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			d, pub, err := c.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			_, otherPub, err := c.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for name, h := range digests([]byte("pico-hsm " + c.Name)) {
				r, s, err := c.Sign(rand.Reader, d, h)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if r.Sign() <= 0 || r.Cmp(c.N) >= 0 || s.Sign() <= 0 || s.Cmp(c.N) >= 0 {
					t.Fatalf("%s: r or s out of range", name)
				}
				if !c.Verify(pub, h, r, s) {
					t.Fatalf("%s: Verify rejected a fresh signature", name)
				}
				if c.Verify(otherPub, h, r, s) {
					t.Errorf("%s: Verify accepted the wrong key", name)
				}
				if len(h) > 0 {
					h2 := append([]byte(nil), h...)
					h2[0] ^= 0x80
					if c.Verify(pub, h2, r, s) {
						t.Errorf("%s: Verify accepted a modified digest", name)
					}
				}
				one := big.NewInt(1)
				nMinusS := new(big.Int).Sub(c.N, s)
				// (r, n-s) is also valid (ECDSA malleability): sanity check of
				// the verification equation, not a bug.
				if !c.Verify(pub, h, r, nMinusS) {
					t.Errorf("%s: Verify rejected (r, n-s)", name)
				}
				bad := []struct {
					name string
					r, s *big.Int
				}{
					{"r+1", new(big.Int).Add(r, one), s},
					{"s+1", r, new(big.Int).Add(s, one)},
					{"r=0", big.NewInt(0), s},
					{"s=0", r, big.NewInt(0)},
					{"r=n", c.N, s},
					{"s=n", r, c.N},
					{"r+n", new(big.Int).Add(r, c.N), s},
					{"s+n", r, new(big.Int).Add(s, c.N)},
					{"r<0", new(big.Int).Neg(r), s},
					{"nil r", nil, s},
					{"nil s", r, nil},
					{"swapped", s, r},
				}
				for _, b := range bad {
					if c.Verify(pub, h, b.r, b.s) {
						t.Errorf("%s: Verify accepted %s", name, b.name)
					}
				}
			}
			// Malformed public keys make Verify return false.
			h := make([]byte, 32)
			r, s, err := c.Sign(nil, d, h)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range [][]byte{nil, {}, {4}, pub[:len(pub)-1], append([]byte{2}, pub[1:]...)} {
				if c.Verify(p, h, r, s) {
					t.Errorf("Verify accepted public key %x", p)
				}
			}
		})
	}
}

// Digests longer than n are truncated to the leftmost bits (SEC 1 4.1.3
// step 5): only the first ceil(log2 n) bits matter.
func TestHashTruncation(t *testing.T) {
	for _, c := range Curves() {
		d, pub, err := c.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		bits := c.N.BitLen()
		long := make([]byte, (bits+7)/8+8)
		if _, err := rand.Read(long); err != nil {
			t.Fatal(err)
		}
		r, s, err := c.Sign(nil, d, long)
		if err != nil {
			t.Fatal(err)
		}
		// Changing bits beyond the leftmost `bits` must not matter...
		tail := append([]byte(nil), long...)
		for i := (bits + 7) / 8; i < len(tail); i++ {
			tail[i] ^= 0xff
		}
		if bits%8 != 0 {
			tail[bits/8] ^= byte(0xff >> (bits % 8)) // low bits of the last partial byte
		}
		if !c.Verify(pub, tail, r, s) {
			t.Errorf("%s: bits beyond the order length changed the result", c.Name)
		}
		// ...but the last retained bit does.
		last := append([]byte(nil), long...)
		last[(bits-1)/8] ^= byte(0x80 >> ((bits - 1) % 8))
		if c.Verify(pub, last, r, s) {
			t.Errorf("%s: last retained bit ignored", c.Name)
		}
		// A digest shorter than n is used as is: leading zero bytes matter
		// only through its value.
		short := []byte{0x12, 0x34}
		r, s, err = c.Sign(nil, d, short)
		if err != nil {
			t.Fatal(err)
		}
		if !c.Verify(pub, []byte{0, 0, 0x12, 0x34}, r, s) {
			t.Errorf("%s: zero-extended short digest rejected", c.Name)
		}
	}
}

// Our ECDSA must interoperate with crypto/ecdsa on the NIST curves, in both
// directions, including digests that need truncation.
func TestECDSAInteropWithStdlib(t *testing.T) {
	for _, nc := range nistCurves {
		t.Run(nc.name, func(t *testing.T) {
			c := ByName(nc.name)
			for i := 0; i < 5; i++ {
				d, pub, err := c.GenerateKey(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				priv, err := ecdsa.ParseRawPrivateKey(nc.std, d)
				if err != nil {
					t.Fatal(err)
				}
				stdPub, err := priv.PublicKey.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(stdPub, pub) {
					t.Fatalf("public keys differ:\n got %x\nwant %x", pub, stdPub)
				}
				for name, h := range digests([]byte{byte(i)}) {
					// Ours -> crypto/ecdsa.
					r, s, err := c.Sign(rand.Reader, d, h)
					if err != nil {
						t.Fatal(err)
					}
					if !ecdsa.Verify(&priv.PublicKey, h, r, s) {
						t.Errorf("%s: crypto/ecdsa rejected our signature", name)
					}
					// crypto/ecdsa -> ours.
					r2, s2, err := ecdsa.Sign(rand.Reader, priv, h)
					if err != nil {
						t.Fatal(err)
					}
					if !c.Verify(pub, h, r2, s2) {
						t.Errorf("%s: rejected a crypto/ecdsa signature", name)
					}
					// And both reject a tampered signature.
					r3 := new(big.Int).Add(r2, big.NewInt(1))
					if c.Verify(pub, h, r3, s2) || ecdsa.Verify(&priv.PublicKey, h, r3, s2) {
						t.Errorf("%s: tampered signature accepted", name)
					}
				}
			}
		})
	}
}
