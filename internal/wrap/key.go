package wrap

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// RSAKey returns the fields dkek_encode_key (pico-hsm src/hsm/kek.c)
// writes for an RSA key: type 5, the key size 8·len(N) in bits
// (mbedtls_rsa_get_len·8), then D, N and E, each at its minimal length
// (mbedtls_mpi_size). The firmware never writes the CRT form (type 6).
// On UNWRAP KEY it refactors N from D and E, so any D that inverts E
// (modulo φ(N) or λ(N)) restores the same key.
func RSAKey(n, e, d *big.Int) (*Key, error) {
	if n.Sign() <= 0 || e.Sign() <= 0 || d.Sign() <= 0 || d.Cmp(n) >= 0 {
		return nil, errors.New("inconsistent RSA key: N, E and D must be positive and D below N")
	}
	nb := n.Bytes()
	return &Key{Type: TypeRSA, Bits: 8 * len(nb), D: d.Bytes(), N: nb, E: e.Bytes()}, nil
}

// ECKey returns the fields dkek_encode_key (kek.c) writes for an EC key on
// curve c with private scalar d: type 12, the key size
// mbedtls_mpi_size(P)·8 (528 for P-521, not 521), then A, B, P and the
// order N at minimal length; A is empty where mbedtls leaves it unset (a =
// -3 on the NIST curves, a = 0 on secp256k1); then G and Q uncompressed
// (mbedtls_ecp_point_write_binary, MBEDTLS_ECP_PF_UNCOMPRESSED) and d at
// minimal length. Q is computed from d.
func ECKey(c *ecc.Curve, d []byte) (*Key, error) {
	if len(d) > c.ScalarLen() {
		return nil, fmt.Errorf("an EC private key on %s is at most %d bytes, not %d", c.Name, c.ScalarLen(), len(d))
	}
	dd := make([]byte, c.ScalarLen())
	copy(dd[len(dd)-len(d):], d)
	defer clear(dd)
	q, err := c.PublicKey(dd)
	if err != nil {
		return nil, err
	}
	var a []byte
	if c.A.Sign() != 0 && new(big.Int).Add(c.A, big.NewInt(3)).Cmp(c.P) != 0 {
		a = c.A.Bytes()
	}
	return &Key{Type: TypeEC, Bits: 8 * c.ByteLen(), A: a, B: c.B.Bytes(), ECP: c.P.Bytes(), ECN: c.N.Bytes(),
		G: c.Marshal(c.Gx, c.Gy), D: bytes.Clone(bytes.TrimLeft(dd, "\x00")), ECQ: q}, nil
}

// AESKey returns the fields dkek_encode_key (kek.c) writes for an AES key:
// type 15, the key length in bytes (16, 24 or 32; the firmware's 64-byte
// keys are AES-XTS and are not made here), then the raw key.
func AESKey(secret []byte) (*Key, error) {
	switch len(secret) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("an AES key is 16, 24 or 32 bytes, not %d", len(secret))
	}
	return &Key{Type: TypeAES, Bits: 8 * len(secret), Secret: bytes.Clone(secret)}, nil
}
