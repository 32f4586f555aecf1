package cvc

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// Object identifiers of TR-03110 part 3, appendix A.2.1.1 (id-TA, terminal
// authentication) that name the public key algorithm in 7F49.
var (
	oidTA      = asn1.ObjectIdentifier{0, 4, 0, 127, 0, 7, 2, 2, 2}
	oidTARSA   = append(oidTA[:len(oidTA):len(oidTA)], 1)
	oidTAECDSA = append(oidTA[:len(oidTA):len(oidTA)], 2)

	// OIDRSAv15SHA256 is id-TA-RSA-v1-5-SHA-256, the key OID of every RSA
	// request OpenSC sends and the firmware answers.
	OIDRSAv15SHA256 = asn1.ObjectIdentifier{0, 4, 0, 127, 0, 7, 2, 2, 2, 1, 2}
	// OIDECDSASHA256 is id-TA-ECDSA-SHA-256, the key OID of every EC request
	// and of the device key.
	OIDECDSASHA256 = asn1.ObjectIdentifier{0, 4, 0, 127, 0, 7, 2, 2, 2, 2, 3}
	// OIDRIECDHSHA256 is id-RI-ECDH-SHA-256 (TR-03110 part 3, A.7,
	// restricted identification). The firmware reuses it as the key OID of
	// curve25519/curve448 keys, Montgomery or Edwards (oid_ri in
	// asn1_cvc_public_key_ecdsa), with a different field layout; see
	// PublicKey.
	OIDRIECDHSHA256 = asn1.ObjectIdentifier{0, 4, 0, 127, 0, 7, 2, 2, 5, 2, 3}
)

// Algorithm is the family of a CV public key.
type Algorithm int

const (
	AlgorithmUnknown Algorithm = iota
	// AlgorithmRSA: id-TA-RSA-* keys, 81 modulus, 82 exponent.
	AlgorithmRSA
	// AlgorithmECDSA: id-TA-ECDSA-* keys on short Weierstrass curves.
	AlgorithmECDSA
	// AlgorithmRI: the firmware's curve25519/curve448 layout under
	// id-RI-ECDH-SHA-256.
	AlgorithmRI
)

func (a Algorithm) String() string {
	switch a {
	case AlgorithmRSA:
		return "RSA"
	case AlgorithmECDSA:
		return "ECDSA"
	case AlgorithmRI:
		return "RI"
	}
	return "unknown"
}

// PublicKey is a CV public key data object (7F49, TR-03110 part 3, D.3).
// The meaning of the context tags depends on OID:
//
//	RSA (D.3.2):        81 modulus n, 82 public exponent e
//	ECDSA (D.3.3):      81 prime p, 82 coefficient a, 83 coefficient b, 84 base point G,
//	                    85 order r, 86 public point Y, 87 cofactor f
//	RI (firmware only): 81 prime p, 82 order, 83 base point G, 84 public point
//
// In a GENERATE ASYMMETRIC KEY PAIR request OpenSC adds a universal INTEGER
// 02 with the RSA key size (modulusSize of c_asn1_cvc_pubkey in
// src/libopensc/pkcs15-sc-hsm.c) and leaves out the public parts. Every
// element is optional here: a request has no public value, and TR-03110
// lets certificates inherit domain parameters.
type PublicKey struct {
	OID asn1.ObjectIdentifier
	// N and E are the RSA modulus and public exponent, nil when absent.
	N, E *big.Int
	// Prime, A, B, G, Order and Q are the EC fields as encoded (big-endian;
	// G and Q uncompressed points), nil when absent. The firmware writes A
	// full length from a table when mbedtls leaves it unset (P-256) and as
	// 82 01 00 when it is zero (secp256k1).
	Prime, A, B, G, Order, Q []byte
	// Cofactor is the EC cofactor (87), 0 when absent.
	Cofactor int
	// KeySize is OpenSC's requested RSA key size in bits (02), 0 when
	// absent.
	KeySize int
	// Raw is the 7F49 TLV as parsed.
	Raw []byte
}

// Algorithm returns the key family named by OID.
func (p *PublicKey) Algorithm() Algorithm {
	switch {
	case len(p.OID) == len(oidTARSA)+1 && p.OID[:len(oidTARSA)].Equal(oidTARSA):
		return AlgorithmRSA
	case len(p.OID) == len(oidTAECDSA)+1 && p.OID[:len(oidTAECDSA)].Equal(oidTAECDSA):
		return AlgorithmECDSA
	case p.OID.Equal(OIDRIECDHSHA256):
		return AlgorithmRI
	}
	return AlgorithmUnknown
}

func parsePublicKey(e tlv) (*PublicKey, error) {
	els, err := readAll(e.val)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	if len(els) == 0 || els[0].tag != 0x06 {
		return nil, errors.New("public key: missing object identifier")
	}
	p := &PublicKey{Raw: bytes.Clone(e.full)}
	if p.OID, err = parseOID(els[0].full); err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	alg := p.Algorithm()
	if alg == AlgorithmUnknown {
		return nil, fmt.Errorf("public key: unsupported algorithm %v", p.OID)
	}
	seen := map[uint32]bool{}
	for _, f := range els[1:] {
		if seen[f.tag] {
			return nil, fmt.Errorf("public key: duplicate tag 0x%x", f.tag)
		}
		seen[f.tag] = true
		v := bytes.Clone(f.val)
		switch {
		case f.tag == 0x02 && alg == AlgorithmRSA:
			n, err := smallUint(f.val, 0x7fffffff)
			if err != nil || n == 0 {
				return nil, errors.New("public key: invalid key size")
			}
			p.KeySize = n
		case alg == AlgorithmRSA && f.tag == 0x81:
			p.N = new(big.Int).SetBytes(v)
		case alg == AlgorithmRSA && f.tag == 0x82:
			p.E = new(big.Int).SetBytes(v)
		case alg == AlgorithmECDSA && f.tag >= 0x81 && f.tag <= 0x87:
			switch f.tag {
			case 0x81:
				p.Prime = v
			case 0x82:
				p.A = v
			case 0x83:
				p.B = v
			case 0x84:
				p.G = v
			case 0x85:
				p.Order = v
			case 0x86:
				p.Q = v
			case 0x87:
				c, err := smallUint(f.val, 0xffff)
				if err != nil || c == 0 {
					return nil, errors.New("public key: invalid cofactor")
				}
				p.Cofactor = c
			}
		case alg == AlgorithmRI && f.tag >= 0x81 && f.tag <= 0x84:
			switch f.tag {
			case 0x81:
				p.Prime = v
			case 0x82:
				p.Order = v
			case 0x83:
				p.G = v
			case 0x84:
				p.Q = v
			}
		default:
			return nil, fmt.Errorf("public key: unexpected tag 0x%x", f.tag)
		}
	}
	return p, nil
}

// smallUint decodes a big-endian unsigned value no larger than max.
func smallUint(b []byte, max int) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("empty")
	}
	v := 0
	for _, c := range b {
		if v > max>>8 {
			return 0, errors.New("too large")
		}
		v = v<<8 | int(c)
	}
	if v > max {
		return 0, errors.New("too large")
	}
	return v, nil
}

// Marshal encodes the 7F49 TLV from the fields in the order of TR-03110
// part 3, D.3 (the firmware's asn1_cvc_public_key_rsa and
// asn1_cvc_public_key_ecdsa; OpenSC's c_asn1_cvc_pubkey), writing only the
// elements that are set. N and E are written without leading zeros.
func (p *PublicKey) Marshal() []byte {
	oid, _ := asn1.Marshal(p.OID)
	b := oid
	switch p.Algorithm() {
	case AlgorithmRI:
		b = appendOpt(b, 0x81, p.Prime)
		b = appendOpt(b, 0x82, p.Order)
		b = appendOpt(b, 0x83, p.G)
		b = appendOpt(b, 0x84, p.Q)
	default:
		if p.N != nil {
			b = appendTLV(b, 0x81, p.N.Bytes())
		} else {
			b = appendOpt(b, 0x81, p.Prime)
		}
		if p.E != nil {
			b = appendTLV(b, 0x82, p.E.Bytes())
		} else {
			b = appendOpt(b, 0x82, p.A)
		}
		b = appendOpt(b, 0x83, p.B)
		b = appendOpt(b, 0x84, p.G)
		b = appendOpt(b, 0x85, p.Order)
		b = appendOpt(b, 0x86, p.Q)
		if p.Cofactor > 0 {
			b = appendTLV(b, 0x87, minimalInt(uint64(p.Cofactor)))
		}
		if p.KeySize > 0 {
			b = appendTLV(b, 0x02, derInt(p.KeySize))
		}
	}
	return appendTLV(nil, TagPublicKey, b)
}

func appendOpt(dst []byte, tag uint32, v []byte) []byte {
	if v == nil {
		return dst
	}
	return appendTLV(dst, tag, v)
}

// ErrUnsupportedCurve is returned by CryptoPublicKey and the verification
// helpers for EC keys on curves crypto/ecdsa does not implement
// (secp256k1, which the device key uses, the Brainpool curves, the
// curve25519/curve448 keys). Q holds the raw public point for those.
var ErrUnsupportedCurve = errors.New("curve not supported by crypto/ecdsa")

// nistCurves are the curves crypto/ecdsa implements, recognised by prime
// as the firmware does (ec_get_curve_from_prime).
var nistCurves = []elliptic.Curve{elliptic.P224(), elliptic.P256(), elliptic.P384(), elliptic.P521()}

// Curve returns the crypto/elliptic curve whose prime is Prime, or nil.
func (p *PublicKey) Curve() elliptic.Curve {
	if p.Algorithm() != AlgorithmECDSA || p.Prime == nil {
		return nil
	}
	prime := new(big.Int).SetBytes(p.Prime)
	for _, c := range nistCurves {
		if c.Params().P.Cmp(prime) == 0 {
			return c
		}
	}
	return nil
}

// CryptoPublicKey returns the key as *rsa.PublicKey, or as *ecdsa.PublicKey
// for the NIST curves P-224, P-256, P-384 and P-521. The domain parameters
// present must be those of the curve. Other curves give ErrUnsupportedCurve
// (use Q with the curve's own arithmetic).
func (p *PublicKey) CryptoPublicKey() (crypto.PublicKey, error) {
	switch p.Algorithm() {
	case AlgorithmRSA:
		if p.N == nil || p.E == nil || p.N.Sign() <= 0 {
			return nil, errors.New("rsa public key: missing modulus or exponent")
		}
		if !p.E.IsInt64() || p.E.Int64() < 3 || p.E.Int64() > 1<<31-1 || p.E.Bit(0) == 0 {
			return nil, errors.New("rsa public key: unsupported exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).Set(p.N), E: int(p.E.Int64())}, nil
	case AlgorithmECDSA:
		if p.Prime == nil {
			return nil, errors.New("ec public key: missing domain parameters")
		}
		if p.Q == nil {
			return nil, errors.New("ec public key: missing public point")
		}
		curve := p.Curve()
		if curve == nil {
			return nil, ErrUnsupportedCurve
		}
		if err := p.checkDomain(curve.Params()); err != nil {
			return nil, err
		}
		k, err := ecdsa.ParseUncompressedPublicKey(curve, p.Q)
		if err != nil {
			return nil, fmt.Errorf("ec public key: %w", err)
		}
		return k, nil
	case AlgorithmRI:
		return nil, ErrUnsupportedCurve
	}
	return nil, fmt.Errorf("unsupported public key algorithm %v", p.OID)
}

// checkDomain compares the encoded domain parameters with the curve's.
func (p *PublicKey) checkDomain(cp *elliptic.CurveParams) error {
	eq := func(enc []byte, want *big.Int) bool {
		return enc == nil || new(big.Int).SetBytes(enc).Cmp(want) == 0
	}
	a := new(big.Int).Sub(cp.P, big.NewInt(3)) // a = -3 on every NIST curve
	size := (cp.BitSize + 7) / 8
	g := make([]byte, 1+2*size)
	g[0] = 0x04
	cp.Gx.FillBytes(g[1 : 1+size])
	cp.Gy.FillBytes(g[1+size:])
	switch {
	case !eq(p.A, a), !eq(p.B, cp.B), !eq(p.Order, cp.N),
		p.G != nil && !bytes.Equal(p.G, g),
		p.Cofactor != 0 && p.Cofactor != 1:
		return fmt.Errorf("ec public key: domain parameters are not those of %s", cp.Name)
	}
	return nil
}
