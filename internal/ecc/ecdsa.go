package ecc

import (
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/big"
)

// ErrInvalidPrivateKey is returned when a private key d is not an integer in
// [1, n-1] (SEC 1 section 3.2.1).
var ErrInvalidPrivateKey = errors.New("ecc: private key out of range [1, n-1]")

// maxRandomTries bounds rejection sampling of random scalars. For the curves
// of this package at most about 45% of candidates are rejected, so a correct
// random source essentially never needs more than a handful of tries; a
// broken one (e.g. returning only zeros) gets an error instead of a hang.
const maxRandomTries = 100

// randomScalar returns k uniformly distributed in [1, n-1], by rejection
// sampling ScalarLen-byte strings masked to the bit length of n (the
// "testing candidates" method, cf. SEC 1 section 3.2.1 step 1).
func (c *Curve) randomScalar(rand io.Reader) (*big.Int, error) {
	if rand == nil {
		rand = cryptorand.Reader
	}
	bits := c.N.BitLen()
	buf := make([]byte, (bits+7)/8)
	for range maxRandomTries {
		if _, err := io.ReadFull(rand, buf); err != nil {
			return nil, fmt.Errorf("ecc: reading random bytes: %w", err)
		}
		if excess := len(buf)*8 - bits; excess > 0 {
			buf[0] &= 0xff >> excess
		}
		k := new(big.Int).SetBytes(buf)
		if k.Sign() > 0 && k.Cmp(c.N) < 0 {
			return k, nil
		}
	}
	return nil, errors.New("ecc: random source produced no scalar in [1, n-1]")
}

// parsePrivate decodes a big-endian private key and checks 1 <= d <= n-1.
func (c *Curve) parsePrivate(d []byte) (*big.Int, error) {
	k := new(big.Int).SetBytes(d)
	if k.Sign() == 0 || k.Cmp(c.N) >= 0 {
		return nil, fmt.Errorf("%w (curve %s)", ErrInvalidPrivateKey, c.Name)
	}
	return k, nil
}

// GenerateKey generates a key pair following the elliptic curve key pair
// generation primitive of SEC 1 section 3.2.1: d is chosen uniformly at
// random in [1, n-1] and Q = d·G. The private key is returned as a
// big-endian integer of exactly [Curve.ScalarLen] bytes (66 for secp521r1),
// the public key in the uncompressed encoding of [Curve.Marshal].
//
// A nil rand means crypto/rand.Reader. Errors from rand are returned.
func (c *Curve) GenerateKey(rand io.Reader) (d []byte, pub []byte, err error) {
	k, err := c.randomScalar(rand)
	if err != nil {
		return nil, nil, err
	}
	d = k.FillBytes(make([]byte, c.ScalarLen()))
	pub = c.Marshal(c.ScalarBaseMult(d))
	if pub == nil { // unreachable for valid domain parameters
		return nil, nil, errors.New("ecc: key generation produced the point at infinity")
	}
	return d, pub, nil
}

// PublicKey returns the uncompressed encoding of Q = d·G (SEC 1 section
// 3.2.1 step 2, encoded per section 2.3.3). d is a big-endian integer of any
// length (leading zeros are allowed); d = 0 and d >= n are rejected with an
// error wrapping [ErrInvalidPrivateKey].
//
// This is the check an HSM performs on unwrap, and an offline tool on a
// decrypted key blob: compare PublicKey(d) with the stored Q.
func (c *Curve) PublicKey(d []byte) ([]byte, error) {
	if _, err := c.parsePrivate(d); err != nil {
		return nil, err
	}
	pub := c.Marshal(c.ScalarBaseMult(d))
	if pub == nil { // unreachable for valid domain parameters
		return nil, errors.New("ecc: public key is the point at infinity")
	}
	return pub, nil
}

// hashToInt converts a message digest to the integer e of SEC 1 section 4.1.3
// step 5 (and 4.1.4 step 3): if 8·len(hash) exceeds ceil(log2(n)), only the
// leftmost ceil(log2(n)) bits of the digest are used.
func (c *Curve) hashToInt(hash []byte) *big.Int {
	bits := c.N.BitLen()
	size := (bits + 7) / 8
	if len(hash) > size {
		hash = hash[:size]
	}
	e := new(big.Int).SetBytes(hash)
	if excess := len(hash)*8 - bits; excess > 0 {
		e.Rsh(e, uint(excess))
	}
	return e
}

// Sign computes an ECDSA signature (r, s) over the message digest hash with
// the private key d (a big-endian integer in [1, n-1]), following the
// signing operation of SEC 1 section 4.1.3:
//
//  1. pick an ephemeral key pair (k, R = k·G) with k uniform in [1, n-1]
//     (section 3.2.1);
//  2. r = x_R mod n, retrying if r = 0;
//  3. e = the digest truncated to the bit length of n (step 5);
//  4. s = k⁻¹·(e + r·d) mod n, retrying if s = 0.
//
// hash is the output of the message's hash function; it is not hashed again.
// A nil rand means crypto/rand.Reader. The signature is not normalized to
// "low s". The computation is not constant time.
func (c *Curve) Sign(rand io.Reader, d []byte, hash []byte) (r, s *big.Int, err error) {
	priv, err := c.parsePrivate(d)
	if err != nil {
		return nil, nil, err
	}
	e := c.hashToInt(hash)
	for range maxRandomTries {
		k, err := c.randomScalar(rand)
		if err != nil {
			return nil, nil, err
		}
		rx, _ := c.ScalarBaseMult(k.Bytes())
		if rx == nil { // unreachable: 0 < k < n
			continue
		}
		r = rx.Mod(rx, c.N)
		if r.Sign() == 0 {
			continue
		}
		kinv := new(big.Int).ModInverse(k, c.N)
		if kinv == nil { // unreachable for prime n
			continue
		}
		s = new(big.Int).Mul(r, priv)
		s.Add(s, e)
		s.Mul(s, kinv)
		s.Mod(s, c.N)
		if s.Sign() == 0 {
			continue
		}
		return r, s, nil
	}
	return nil, nil, errors.New("ecc: failed to produce a signature (broken random source?)")
}

// Verify reports whether (r, s) is a valid ECDSA signature over the message
// digest hash for the public key pub (an uncompressed point, see
// [Curve.Unmarshal]), following the verifying operation of SEC 1 section
// 4.1.4:
//
//  1. r and s must be integers in [1, n-1];
//  2. e = the digest truncated to the bit length of n;
//  3. u1 = e·s⁻¹ mod n, u2 = r·s⁻¹ mod n;
//  4. R = u1·G + u2·Q, rejecting R = O;
//  5. accept iff x_R mod n = r.
//
// Malformed public keys and out-of-range values make Verify return false.
func (c *Curve) Verify(pub []byte, hash []byte, r, s *big.Int) bool {
	if r == nil || s == nil {
		return false
	}
	if r.Sign() <= 0 || r.Cmp(c.N) >= 0 || s.Sign() <= 0 || s.Cmp(c.N) >= 0 {
		return false
	}
	qx, qy, err := c.Unmarshal(pub)
	if err != nil {
		return false
	}
	e := c.hashToInt(hash)
	w := new(big.Int).ModInverse(s, c.N)
	if w == nil {
		return false
	}
	u1 := new(big.Int).Mul(e, w)
	u1.Mod(u1, c.N)
	u2 := new(big.Int).Mul(r, w)
	u2.Mod(u2, c.N)

	p1 := c.scalarMult(c.toJacobian(c.Gx, c.Gy), u1.Bytes())
	p2 := c.scalarMult(c.toJacobian(qx, qy), u2.Bytes())
	rx, _ := c.toAffine(c.add(p1, p2))
	if rx == nil {
		return false
	}
	return rx.Mod(rx, c.N).Cmp(r) == 0
}
