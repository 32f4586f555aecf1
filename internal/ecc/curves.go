// Package ecc provides elliptic-curve domain parameters and arithmetic for
// the short Weierstrass curves y² = x³ + a·x + b over a prime field F_p that a
// SmartCard-HSM / Pico HSM supports.
//
// Go's crypto/elliptic only implements the NIST curves (a = -3); this package
// works with a general a (Brainpool, secp*k1) using math/big, which makes it
// suitable for a simulated HSM and for offline tooling, but NOT for handling
// secrets on a live system: math/big is not constant time.
//
// References used throughout:
//
//   - SEC 1: Standards for Efficient Cryptography 1, "Elliptic Curve
//     Cryptography", Version 2.0 (Certicom Research, 2009).
//   - SEC 2: Standards for Efficient Cryptography 2, "Recommended Elliptic
//     Curve Domain Parameters", Version 2.0 (Certicom Research, 2010).
//   - RFC 5639: "Elliptic Curve Cryptography (ECC) Brainpool Standard Curves
//     and Curve Generation" (March 2010).
//
// # Points
//
// Points are passed as affine coordinate pairs (x, y *big.Int). The point at
// infinity O (the group identity, SEC 1 section 2.2.1) is represented by
// x == nil || y == nil; functions that produce O return (nil, nil). Valid
// finite points have 0 <= x, y < p and satisfy the curve equation (see
// [Curve.IsOnCurve]). Internally, arithmetic uses Jacobian projective
// coordinates.
//
// Scalars and private keys are big-endian byte strings (SEC 1 section 2.3.7,
// Integer-to-Octet-String). Public keys are uncompressed SEC 1 point
// encodings 04 || X || Y (SEC 1 section 2.3.3).
package ecc

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// Curve holds the elliptic curve domain parameters T = (p, a, b, G, n, h) of a
// curve over F_p as defined in SEC 1 section 3.1.1: the prime p, the
// coefficients a and b of y² = x³ + a·x + b (mod p), the base point
// G = (Gx, Gy), its prime order n and the cofactor h = #E(F_p)/n.
//
// The *Curve values returned by this package are shared and must be treated
// as read-only. A Curve built by the caller can be checked with
// [Curve.Validate] before use; the methods assume valid, non-nil parameters.
type Curve struct {
	// Name is the canonical name: the SEC 2 name (e.g. "secp256r1") or the
	// RFC 5639 Curve-ID (e.g. "brainpoolP256r1").
	Name string
	// Aliases are other names accepted by [ByName] (e.g. "P-256",
	// "prime256v1").
	Aliases []string
	// OID is the named-curve object identifier (SEC 2 appendix A.2,
	// RFC 5639 section 4.1).
	OID asn1.ObjectIdentifier

	P  *big.Int // field prime p
	A  *big.Int // curve coefficient a, 0 <= a < p
	B  *big.Int // curve coefficient b, 0 <= b < p
	N  *big.Int // prime order n of the base point (RFC 5639 calls it q)
	Gx *big.Int // x-coordinate of the base point G
	Gy *big.Int // y-coordinate of the base point G
	H  int      // cofactor h
}

// String returns the curve's canonical name.
func (c *Curve) String() string { return c.Name }

// BitSize returns the bit length of the field prime p (e.g. 521 for
// secp521r1).
func (c *Curve) BitSize() int { return c.P.BitLen() }

// ByteLen returns the length in bytes of an encoded field element,
// ceil(log2(p)/8) (SEC 1 section 2.3.5). An uncompressed point is
// 1 + 2·ByteLen bytes long.
func (c *Curve) ByteLen() int { return (c.P.BitLen() + 7) / 8 }

// ScalarLen returns the length in bytes of an encoded scalar or private key,
// ceil(log2(n)/8) (SEC 1 section 2.3.7 with mlen = ceil(log2(n)/8), as used
// for private keys in SEC 1 section C.4). For every curve in this package it
// equals [Curve.ByteLen] (66 bytes for secp521r1, where n has 521 bits).
func (c *Curve) ScalarLen() int { return (c.N.BitLen() + 7) / 8 }

// Validate checks the domain parameters following the elliptic curve domain
// parameters over F_p validation primitive of SEC 1 section 3.1.1.2.1: p is an
// odd prime, a, b, Gx, Gy lie in [0, p-1], 4a³ + 27b² != 0 (mod p), G is on
// the curve, n is prime and differs from p, n·G = O, the cofactor is
// consistent with the Hasse bound |p + 1 - h·n| <= 2·sqrt(p), and the MOV
// condition p^B != 1 (mod n) holds for 1 <= B < 100. Primality is
// probabilistic (big.Int.ProbablyPrime).
func (c *Curve) Validate() error {
	if c == nil {
		return errors.New("ecc: nil curve")
	}
	if c.P == nil || c.A == nil || c.B == nil || c.N == nil || c.Gx == nil || c.Gy == nil {
		return fmt.Errorf("ecc: curve %q: missing domain parameter", c.Name)
	}
	p := c.P
	if p.Cmp(big.NewInt(3)) <= 0 || p.Bit(0) == 0 || !p.ProbablyPrime(32) {
		return fmt.Errorf("ecc: curve %q: p is not an odd prime > 3", c.Name)
	}
	for _, v := range []struct {
		name string
		v    *big.Int
	}{{"a", c.A}, {"b", c.B}, {"Gx", c.Gx}, {"Gy", c.Gy}} {
		if v.v.Sign() < 0 || v.v.Cmp(p) >= 0 {
			return fmt.Errorf("ecc: curve %q: %s not in [0, p-1]", c.Name, v.name)
		}
	}
	// 4a³ + 27b² != 0 (mod p): the curve is non-singular.
	disc := new(big.Int).Exp(c.A, big.NewInt(3), p)
	disc.Mul(disc, big.NewInt(4))
	b2 := new(big.Int).Mul(c.B, c.B)
	b2.Mul(b2, big.NewInt(27))
	disc.Add(disc, b2).Mod(disc, p)
	if disc.Sign() == 0 {
		return fmt.Errorf("ecc: curve %q: singular curve (4a^3 + 27b^2 = 0 mod p)", c.Name)
	}
	if !c.IsOnCurve(c.Gx, c.Gy) {
		return fmt.Errorf("ecc: curve %q: base point G is not on the curve", c.Name)
	}
	n := c.N
	if n.Cmp(big.NewInt(1)) <= 0 || !n.ProbablyPrime(32) {
		return fmt.Errorf("ecc: curve %q: n is not prime", c.Name)
	}
	if n.Cmp(p) == 0 {
		return fmt.Errorf("ecc: curve %q: n = p (anomalous curve)", c.Name)
	}
	if c.H < 1 {
		return fmt.Errorf("ecc: curve %q: cofactor %d < 1", c.Name, c.H)
	}
	// Hasse: #E = h·n satisfies (p + 1 - h·n)² <= 4p.
	t := new(big.Int).Mul(big.NewInt(int64(c.H)), n)
	t.Sub(new(big.Int).Add(p, big.NewInt(1)), t)
	t.Mul(t, t)
	if t.Cmp(new(big.Int).Lsh(p, 2)) > 0 {
		return fmt.Errorf("ecc: curve %q: h*n violates the Hasse bound", c.Name)
	}
	if x, _ := c.ScalarMult(c.Gx, c.Gy, n.Bytes()); x != nil {
		return fmt.Errorf("ecc: curve %q: n*G is not the point at infinity", c.Name)
	}
	// MOV / Frey-Rück condition.
	pb := new(big.Int).Mod(p, n)
	acc := new(big.Int).Set(pb)
	for B := 1; B < 100; B++ {
		if acc.Cmp(big.NewInt(1)) == 0 {
			return fmt.Errorf("ecc: curve %q: p^%d = 1 mod n (MOV condition)", c.Name, B)
		}
		acc.Mul(acc, pb).Mod(acc, n)
	}
	return nil
}

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("ecc: bad hex constant " + s)
	}
	return v
}

// pMinus3 returns p - 3, the value of a = -3 for the NIST curves.
func pMinus3(p *big.Int) *big.Int { return new(big.Int).Sub(p, big.NewInt(3)) }

var (
	// secp192r1: SEC 2 section 2.2.2 (also NIST P-192, X9.62 prime192v1).
	secp192r1 = func() *Curve {
		p := mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF")
		return &Curve{
			Name:    "secp192r1",
			Aliases: []string{"P-192", "P192", "prime192v1", "nistp192"},
			OID:     asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1},
			P:       p,
			A:       pMinus3(p),
			B:       mustHex("64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1"),
			Gx:      mustHex("188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012"),
			Gy:      mustHex("07192B95FFC8DA78631011ED6B24CDD573F977A11E794811"),
			N:       mustHex("FFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831"),
			H:       1,
		}
	}()

	// secp192k1: SEC 2 section 2.2.1 (Koblitz curve, a = 0, b = 3).
	secp192k1 = &Curve{
		Name: "secp192k1",
		OID:  asn1.ObjectIdentifier{1, 3, 132, 0, 31},
		P:    mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFEE37"),
		A:    big.NewInt(0),
		B:    big.NewInt(3),
		Gx:   mustHex("DB4FF10EC057E9AE26B07D0280B7F4341DA5D1B1EAE06C7D"),
		Gy:   mustHex("9B2F2F6D9C5628A7844163D015BE86344082AA88D95E2F9D"),
		N:    mustHex("FFFFFFFFFFFFFFFFFFFFFFFE26F2FC170F69466A74DEFD8D"),
		H:    1,
	}

	// secp256r1: SEC 2 section 2.4.2 (also NIST P-256, X9.62 prime256v1).
	secp256r1 = func() *Curve {
		p := mustHex("FFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF")
		return &Curve{
			Name:    "secp256r1",
			Aliases: []string{"P-256", "P256", "prime256v1", "nistp256"},
			OID:     asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7},
			P:       p,
			A:       pMinus3(p),
			B:       mustHex("5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B"),
			Gx:      mustHex("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"),
			Gy:      mustHex("4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5"),
			N:       mustHex("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551"),
			H:       1,
		}
	}()

	// secp256k1: SEC 2 section 2.4.1 (Koblitz curve, a = 0, b = 7).
	secp256k1 = &Curve{
		Name: "secp256k1",
		OID:  asn1.ObjectIdentifier{1, 3, 132, 0, 10},
		P:    mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F"),
		A:    big.NewInt(0),
		B:    big.NewInt(7),
		Gx:   mustHex("79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798"),
		Gy:   mustHex("483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"),
		N:    mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141"),
		H:    1,
	}

	// secp384r1: SEC 2 section 2.5.1 (also NIST P-384).
	secp384r1 = func() *Curve {
		p := mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFE" +
			"FFFFFFFF0000000000000000FFFFFFFF")
		return &Curve{
			Name:    "secp384r1",
			Aliases: []string{"P-384", "P384", "nistp384"},
			OID:     asn1.ObjectIdentifier{1, 3, 132, 0, 34},
			P:       p,
			A:       pMinus3(p),
			B: mustHex("B3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875A" +
				"C656398D8A2ED19D2A85C8EDD3EC2AEF"),
			Gx: mustHex("AA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A38" +
				"5502F25DBF55296C3A545E3872760AB7"),
			Gy: mustHex("3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C0" +
				"0A60B1CE1D7E819D7A431D7C90EA0E5F"),
			N: mustHex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF" +
				"581A0DB248B0A77AECEC196ACCC52973"),
			H: 1,
		}
	}()

	// secp521r1: SEC 2 section 2.6.1 (also NIST P-521).
	secp521r1 = func() *Curve {
		p := mustHex("01FF" +
			"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF" +
			"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
		return &Curve{
			Name:    "secp521r1",
			Aliases: []string{"P-521", "P521", "nistp521"},
			OID:     asn1.ObjectIdentifier{1, 3, 132, 0, 35},
			P:       p,
			A:       pMinus3(p),
			B: mustHex("0051" +
				"953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E1" +
				"56193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00"),
			Gx: mustHex("00C6" +
				"858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBA" +
				"A14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66"),
			Gy: mustHex("0118" +
				"39296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C" +
				"97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650"),
			N: mustHex("01FF" +
				"FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA" +
				"51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409"),
			H: 1,
		}
	}()

	// brainpoolP256r1: RFC 5639 section 3.4, OID section 4.1.
	brainpoolP256r1 = &Curve{
		Name:    "brainpoolP256r1",
		Aliases: []string{"brainpool256r1", "bp256r1"},
		OID:     asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7},
		P:       mustHex("A9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377"),
		A:       mustHex("7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9"),
		B:       mustHex("26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6"),
		Gx:      mustHex("8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262"),
		Gy:      mustHex("547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997"),
		N:       mustHex("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7"),
		H:       1,
	}

	// brainpoolP384r1: RFC 5639 section 3.6, OID section 4.1.
	brainpoolP384r1 = &Curve{
		Name:    "brainpoolP384r1",
		Aliases: []string{"brainpool384r1", "bp384r1"},
		OID:     asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 11},
		P: mustHex("8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB711" +
			"23ACD3A729901D1A71874700133107EC53"),
		A: mustHex("7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F9" +
			"0F8AA5814A503AD4EB04A8C7DD22CE2826"),
		B: mustHex("04A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62" +
			"D57CB4390295DBC9943AB78696FA504C11"),
		Gx: mustHex("1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10" +
			"E8E826E03436D646AAEF87B2E247D4AF1E"),
		Gy: mustHex("8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF99129" +
			"280E4646217791811142820341263C5315"),
		N: mustHex("8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425" +
			"A7CF3AB6AF6B7FC3103B883202E9046565"),
		H: 1,
	}

	// brainpoolP512r1: RFC 5639 section 3.7, OID section 4.1.
	brainpoolP512r1 = &Curve{
		Name:    "brainpoolP512r1",
		Aliases: []string{"brainpool512r1", "bp512r1"},
		OID:     asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 13},
		P: mustHex("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308" +
			"717D4D9B009BC66842AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3"),
		A: mustHex("7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863" +
			"BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA"),
		B: mustHex("3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117" +
			"A72BF2C7B9E7C1AC4D77FC94CADC083E67984050B75EBAE5DD2809BD638016F723"),
		Gx: mustHex("81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D009" +
			"8EFF3B1F78E2D0D48D50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822"),
		Gy: mustHex("7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F81" +
			"11B2DCDE494A5F485E5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892"),
		N: mustHex("AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308" +
			"70553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069"),
		H: 1,
	}

	allCurves = []*Curve{
		secp256r1, secp384r1, secp521r1, secp256k1,
		brainpoolP256r1, brainpoolP384r1, brainpoolP512r1,
		secp192r1, secp192k1,
	}
)

// Curves returns the supported curves: secp256r1, secp384r1, secp521r1,
// secp256k1 (SEC 2 sections 2.4.2, 2.5.1, 2.6.1, 2.4.1), brainpoolP256r1,
// brainpoolP384r1, brainpoolP512r1 (RFC 5639 sections 3.4, 3.6, 3.7),
// secp192r1 and secp192k1 (SEC 2 sections 2.2.2, 2.2.1). The slice is a fresh
// copy; the curves it points to are shared and read-only.
func Curves() []*Curve {
	return append([]*Curve(nil), allCurves...)
}

// ByName returns the curve whose canonical name or one of whose aliases
// equals name, ignoring case (e.g. "secp256r1", "P-256", "prime256v1",
// "nistp256", "brainpoolP256r1", "secp256k1"), or nil if there is none.
func ByName(name string) *Curve {
	for _, c := range allCurves {
		if strings.EqualFold(c.Name, name) {
			return c
		}
		for _, a := range c.Aliases {
			if strings.EqualFold(a, name) {
				return c
			}
		}
	}
	return nil
}

// ByOID returns the curve with the given named-curve object identifier
// (SEC 2 appendix A.2, RFC 5639 section 4.1), or nil if there is none.
func ByOID(oid asn1.ObjectIdentifier) *Curve {
	for _, c := range allCurves {
		if c.OID.Equal(oid) {
			return c
		}
	}
	return nil
}

// ByPrime returns the curve whose field prime p equals the big-endian
// unsigned integer p (leading zero bytes are allowed), or nil if there is
// none. The Pico HSM identifies a curve by its prime alone; the primes of the
// supported curves are pairwise distinct.
func ByPrime(p []byte) *Curve {
	if len(p) == 0 {
		return nil
	}
	v := new(big.Int).SetBytes(p)
	for _, c := range allCurves {
		if c.P.Cmp(v) == 0 {
			return c
		}
	}
	return nil
}
