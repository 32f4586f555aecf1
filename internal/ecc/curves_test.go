package ecc

import (
	"crypto/elliptic"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
)

// expected metadata per curve, independent of the parameter table.
var curveMeta = []struct {
	name    string
	oid     asn1.ObjectIdentifier
	bits    int // bit length of p
	nBits   int // bit length of n
	byteLen int
	aZero   bool // a = 0 (Koblitz curves)
	aMinus3 bool // a = -3 (NIST curves)
}{
	{"secp256r1", asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}, 256, 256, 32, false, true},
	{"secp384r1", asn1.ObjectIdentifier{1, 3, 132, 0, 34}, 384, 384, 48, false, true},
	{"secp521r1", asn1.ObjectIdentifier{1, 3, 132, 0, 35}, 521, 521, 66, false, true},
	{"secp256k1", asn1.ObjectIdentifier{1, 3, 132, 0, 10}, 256, 256, 32, true, false},
	{"brainpoolP256r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 7}, 256, 256, 32, false, false},
	{"brainpoolP384r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 11}, 384, 384, 48, false, false},
	{"brainpoolP512r1", asn1.ObjectIdentifier{1, 3, 36, 3, 3, 2, 8, 1, 1, 13}, 512, 512, 64, false, false},
	{"secp192r1", asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 1}, 192, 192, 24, false, true},
	{"secp192k1", asn1.ObjectIdentifier{1, 3, 132, 0, 31}, 192, 192, 24, true, false},
}

func TestCurvesList(t *testing.T) {
	cs := Curves()
	if len(cs) != len(curveMeta) {
		t.Fatalf("Curves() has %d entries, want %d", len(cs), len(curveMeta))
	}
	for i, m := range curveMeta {
		if cs[i].Name != m.name {
			t.Errorf("Curves()[%d] = %s, want %s", i, cs[i].Name, m.name)
		}
	}
	// The returned slice is a copy.
	cs[0] = nil
	if Curves()[0] == nil {
		t.Error("Curves() returned the internal slice")
	}
}

func TestDomainParameters(t *testing.T) {
	for _, m := range curveMeta {
		t.Run(m.name, func(t *testing.T) {
			c := ByName(m.name)
			if c == nil {
				t.Fatal("ByName returned nil")
			}
			if !c.OID.Equal(m.oid) {
				t.Errorf("OID = %v, want %v", c.OID, m.oid)
			}
			if c.BitSize() != m.bits || c.N.BitLen() != m.nBits {
				t.Errorf("BitSize = %d, n bits = %d; want %d, %d", c.BitSize(), c.N.BitLen(), m.bits, m.nBits)
			}
			if c.ByteLen() != m.byteLen || c.ScalarLen() != m.byteLen {
				t.Errorf("ByteLen = %d, ScalarLen = %d; want %d", c.ByteLen(), c.ScalarLen(), m.byteLen)
			}
			if c.H != 1 {
				t.Errorf("H = %d, want 1", c.H)
			}
			if got := c.A.Sign() == 0; got != m.aZero {
				t.Errorf("a == 0: %v, want %v", got, m.aZero)
			}
			if got := new(big.Int).Add(c.A, big.NewInt(3)).Cmp(c.P) == 0; got != m.aMinus3 {
				t.Errorf("a == -3: %v, want %v", got, m.aMinus3)
			}
			// p and n prime.
			if !c.P.ProbablyPrime(64) {
				t.Error("p is not prime")
			}
			if !c.N.ProbablyPrime(64) {
				t.Error("n is not prime")
			}
			// G on the curve, explicitly: Gy² = Gx³ + a·Gx + b (mod p).
			lhs := new(big.Int).Exp(c.Gy, big.NewInt(2), c.P)
			rhs := new(big.Int).Exp(c.Gx, big.NewInt(3), c.P)
			rhs.Add(rhs, new(big.Int).Mul(c.A, c.Gx)).Add(rhs, c.B).Mod(rhs, c.P)
			if lhs.Cmp(rhs) != 0 {
				t.Error("G does not satisfy the curve equation")
			}
			if !c.IsOnCurve(c.Gx, c.Gy) {
				t.Error("IsOnCurve(G) = false")
			}
			// n·G = O, (n-1)·G = -G, (n+1)·G = G.
			if x, y := c.ScalarBaseMult(c.N.Bytes()); x != nil || y != nil {
				t.Error("n*G is not the point at infinity")
			}
			nm1 := new(big.Int).Sub(c.N, big.NewInt(1))
			x, y := c.ScalarBaseMult(nm1.Bytes())
			if x == nil || x.Cmp(c.Gx) != 0 || y.Cmp(new(big.Int).Sub(c.P, c.Gy)) != 0 {
				t.Error("(n-1)*G != -G")
			}
			np1 := new(big.Int).Add(c.N, big.NewInt(1))
			x, y = c.ScalarBaseMult(np1.Bytes())
			if x == nil || x.Cmp(c.Gx) != 0 || y.Cmp(c.Gy) != 0 {
				t.Error("(n+1)*G != G")
			}
			// The full SEC 1 3.1.1.2.1 validation.
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

// The NIST curves must agree with the parameters in crypto/elliptic.
func TestNISTParametersMatchStdlib(t *testing.T) {
	for _, tc := range []struct {
		name string
		std  elliptic.Curve
	}{
		{"P-256", elliptic.P256()},
		{"P-384", elliptic.P384()},
		{"P-521", elliptic.P521()},
	} {
		c := ByName(tc.name)
		p := tc.std.Params()
		if c.P.Cmp(p.P) != 0 || c.N.Cmp(p.N) != 0 || c.B.Cmp(p.B) != 0 ||
			c.Gx.Cmp(p.Gx) != 0 || c.Gy.Cmp(p.Gy) != 0 || c.BitSize() != p.BitSize {
			t.Errorf("%s: parameters differ from crypto/elliptic", tc.name)
		}
		if new(big.Int).Sub(p.P, c.A).Int64() != 3 {
			t.Errorf("%s: a != -3", tc.name)
		}
	}
}

func TestValidateRejectsBrokenParameters(t *testing.T) {
	base := *ByName("brainpoolP256r1")
	tests := []struct {
		name   string
		mutate func(c *Curve)
	}{
		{"nil field", func(c *Curve) { c.B = nil }},
		{"composite p", func(c *Curve) { c.P = new(big.Int).Mul(big.NewInt(1000003), big.NewInt(1000033)) }},
		{"G off curve", func(c *Curve) { c.Gy = new(big.Int).Add(c.Gy, big.NewInt(1)) }},
		{"wrong b", func(c *Curve) { c.B = new(big.Int).Add(c.B, big.NewInt(1)) }},
		{"wrong n", func(c *Curve) { c.N = new(big.Int).Add(c.N, big.NewInt(2)) }},
		{"n not order of G", func(c *Curve) { c.N = big.NewInt(1000003) }},
		{"zero cofactor", func(c *Curve) { c.H = 0 }},
		{"wrong cofactor", func(c *Curve) { c.H = 2 }},
		{"a out of range", func(c *Curve) { c.A = new(big.Int).Add(c.A, c.P) }},
		{"singular", func(c *Curve) { c.A, c.B = big.NewInt(0), big.NewInt(0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.mutate(&c)
			if err := c.Validate(); err == nil {
				t.Error("Validate accepted broken parameters")
			}
		})
	}
	var nilCurve *Curve
	if nilCurve.Validate() == nil {
		t.Error("Validate accepted a nil curve")
	}
}

func TestByName(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"secp256r1", "secp256r1"},
		{"P-256", "secp256r1"},
		{"p256", "secp256r1"},
		{"prime256v1", "secp256r1"},
		{"PRIME256V1", "secp256r1"},
		{"nistp256", "secp256r1"},
		{"secp384r1", "secp384r1"},
		{"P-384", "secp384r1"},
		{"nistp384", "secp384r1"},
		{"secp521r1", "secp521r1"},
		{"p-521", "secp521r1"},
		{"nistp521", "secp521r1"},
		{"secp256k1", "secp256k1"},
		{"SECP256K1", "secp256k1"},
		{"brainpoolP256r1", "brainpoolP256r1"},
		{"brainpoolp256r1", "brainpoolP256r1"},
		{"brainpool256r1", "brainpoolP256r1"},
		{"brainpoolP384r1", "brainpoolP384r1"},
		{"brainpoolP512r1", "brainpoolP512r1"},
		{"secp192r1", "secp192r1"},
		{"prime192v1", "secp192r1"},
		{"P-192", "secp192r1"},
		{"secp192k1", "secp192k1"},
		{"", ""},
		{"P-224", ""},
		{"secp256r2", ""},
		{"brainpoolP256t1", ""},
		{"curve25519", ""},
	}
	for _, tc := range tests {
		c := ByName(tc.in)
		got := ""
		if c != nil {
			got = c.Name
		}
		if got != tc.want {
			t.Errorf("ByName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestByOID(t *testing.T) {
	for _, m := range curveMeta {
		c := ByOID(m.oid)
		if c == nil || c.Name != m.name {
			t.Errorf("ByOID(%v) = %v, want %s", m.oid, c, m.name)
		}
	}
	for _, oid := range []asn1.ObjectIdentifier{
		nil,
		{},
		{1, 2, 840, 10045, 3, 1},
		{1, 2, 840, 10045, 3, 1, 7, 1},
		{1, 3, 132, 0, 33}, // secp224r1, unsupported
		{1, 3, 36, 3, 3, 2, 8, 1, 1, 8},
	} {
		if c := ByOID(oid); c != nil {
			t.Errorf("ByOID(%v) = %s, want nil", oid, c.Name)
		}
	}
}

func TestByPrime(t *testing.T) {
	for _, c := range Curves() {
		p := c.P.FillBytes(make([]byte, c.ByteLen()))
		if got := ByPrime(p); got != c {
			t.Errorf("ByPrime(%s.P) = %v", c.Name, got)
		}
		// Leading zero bytes are tolerated.
		if got := ByPrime(append([]byte{0, 0}, p...)); got != c {
			t.Errorf("ByPrime(00 00 || %s.P) = %v", c.Name, got)
		}
		// Neighbouring values do not match.
		pp := new(big.Int).Add(c.P, big.NewInt(2)).Bytes()
		if got := ByPrime(pp); got != nil {
			t.Errorf("ByPrime(%s.P + 2) = %s", c.Name, got.Name)
		}
	}
	for _, in := range [][]byte{nil, {}, {0}, {0xff}, make([]byte, 32)} {
		if got := ByPrime(in); got != nil {
			t.Errorf("ByPrime(%x) = %s, want nil", in, got.Name)
		}
	}
}

// Names, aliases, OIDs and primes must identify curves unambiguously.
func TestIdentifiersUnique(t *testing.T) {
	names := map[string]string{}
	oids := map[string]string{}
	primes := map[string]string{}
	for _, c := range Curves() {
		for _, n := range append([]string{c.Name}, c.Aliases...) {
			k := strings.ToLower(n)
			if prev, ok := names[k]; ok {
				t.Errorf("name %q used by %s and %s", n, prev, c.Name)
			}
			names[k] = c.Name
		}
		if prev, ok := oids[c.OID.String()]; ok {
			t.Errorf("OID %v used by %s and %s", c.OID, prev, c.Name)
		}
		oids[c.OID.String()] = c.Name
		if prev, ok := primes[c.P.String()]; ok {
			t.Errorf("prime of %s equals that of %s", c.Name, prev)
		}
		primes[c.P.String()] = c.Name
		if c.String() != c.Name {
			t.Errorf("String() = %q", c.String())
		}
	}
}
