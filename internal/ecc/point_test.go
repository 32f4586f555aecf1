package ecc

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"testing"
)

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func hexInt(t testing.TB, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		t.Fatalf("bad hex %q", s)
	}
	return v
}

// randScalar returns a uniformly random scalar in [1, n-1] as ScalarLen bytes.
func randScalar(t testing.TB, c *Curve) []byte {
	t.Helper()
	k, err := c.randomScalar(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.FillBytes(make([]byte, c.ScalarLen()))
}

var nistCurves = []struct {
	name string
	ecdh ecdh.Curve
	std  elliptic.Curve
}{
	{"secp256r1", ecdh.P256(), elliptic.P256()},
	{"secp384r1", ecdh.P384(), elliptic.P384()},
	{"secp521r1", ecdh.P521(), elliptic.P521()},
}

// ScalarBaseMult and ScalarMult must agree with crypto/ecdh on the NIST
// curves for random scalars.
func TestScalarMultMatchesStdlib(t *testing.T) {
	for _, nc := range nistCurves {
		t.Run(nc.name, func(t *testing.T) {
			c := ByName(nc.name)
			for i := 0; i < 10; i++ {
				a := randScalar(t, c)
				privA, err := nc.ecdh.NewPrivateKey(a)
				if err != nil {
					t.Fatal(err)
				}
				want := privA.PublicKey().Bytes()
				pub, err := c.PublicKey(a)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pub, want) {
					t.Fatalf("d*G mismatch for d=%x:\n got %x\nwant %x", a, pub, want)
				}
				if got := c.Marshal(c.ScalarBaseMult(a)); !bytes.Equal(got, want) {
					t.Fatalf("ScalarBaseMult mismatch for d=%x", a)
				}

				// ECDH: x(b * (a*G)) equals crypto/ecdh's shared secret.
				b := randScalar(t, c)
				privB, err := nc.ecdh.NewPrivateKey(b)
				if err != nil {
					t.Fatal(err)
				}
				secret, err := privB.ECDH(privA.PublicKey())
				if err != nil {
					t.Fatal(err)
				}
				ax, ay, err := c.Unmarshal(want)
				if err != nil {
					t.Fatal(err)
				}
				sx, _ := c.ScalarMult(ax, ay, b)
				if sx == nil || !bytes.Equal(sx.FillBytes(make([]byte, c.ByteLen())), secret) {
					t.Fatalf("ScalarMult/ECDH mismatch for a=%x b=%x", a, b)
				}
			}
			// Small and edge scalars, compared with crypto/ecdsa's view of
			// the same key.
			for _, k := range []*big.Int{
				big.NewInt(1), big.NewInt(2), big.NewInt(3), big.NewInt(15), big.NewInt(16), big.NewInt(255),
				new(big.Int).Sub(c.N, big.NewInt(1)), new(big.Int).Sub(c.N, big.NewInt(2)),
				new(big.Int).Rsh(c.N, 1),
			} {
				d := k.FillBytes(make([]byte, c.ScalarLen()))
				priv, err := ecdsa.ParseRawPrivateKey(nc.std, d)
				if err != nil {
					t.Fatal(err)
				}
				want, err := priv.PublicKey.Bytes()
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.PublicKey(d)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("PublicKey(%x) = %x, %v; want %x", d, got, err, want)
				}
			}
		})
	}
}

// Known-answer tests for the non-NIST curves.
func TestKnownAnswers(t *testing.T) {
	// secp256k1 small multiples of G (well-known values).
	k1 := ByName("secp256k1")
	for _, tc := range []struct {
		k    int64
		x, y string
	}{
		{1, "79BE667EF9DCBBAC55A06295CE870B07029BFCDB2DCE28D959F2815B16F81798",
			"483ADA7726A3C4655DA4FBFC0E1108A8FD17B448A68554199C47D08FFB10D4B8"},
		{2, "C6047F9441ED7D6D3045406E95C07CD85C778E4B8CEF3CA7ABAC09B95C709EE5",
			"1AE168FEA63DC339A3C58419466CEAEEF7F632653266D0E1236431A950CFE52A"},
		{3, "F9308A019258C31049344F85F89D5229B531C845836F99B08601F113BCE036F9",
			"388F7B0F632DE8140FE337E62A37F3566500A99934C2231B6CB9FD7584B8E672"},
	} {
		x, y := k1.ScalarBaseMult(big.NewInt(tc.k).Bytes())
		if x == nil || x.Cmp(hexInt(t, tc.x)) != 0 || y.Cmp(hexInt(t, tc.y)) != 0 {
			t.Errorf("secp256k1 %d*G = (%x, %x)", tc.k, x, y)
		}
	}

	// Brainpool ECDH test vectors of RFC 7027 appendix A (also RFC 8734):
	// QA = dA*G, QB = dB*G, Z = dA*QB = dB*QA.
	for _, tc := range []struct {
		curve                      string
		dA, xA, yA, dB, xB, yB, xZ string
		yZ                         string
	}{
		{
			curve: "brainpoolP256r1",
			dA:    "81DB1EE100150FF2EA338D708271BE38300CB54241D79950F77B063039804F1D",
			xA:    "44106E913F92BC02A1705D9953A8414DB95E1AAA49E81D9E85F929A8E3100BE5",
			yA:    "8AB4846F11CACCB73CE49CBDD120F5A900A69FD32C272223F789EF10EB089BDC",
			dB:    "55E40BC41E37E3E2AD25C3C6654511FFA8474A91A0032087593852D3E7D76BD3",
			xB:    "8D2D688C6CF93E1160AD04CC4429117DC2C41825E1E9FCA0ADDD34E6F1B39F7B",
			yB:    "990C57520812BE512641E47034832106BC7D3E8DD0E4C7F1136D7006547CEC6A",
			xZ:    "89AFC39D41D3B327814B80940B042590F96556EC91E6AE7939BCE31F3A18BF2B",
			yZ:    "49C27868F4ECA2179BFD7D59B1E3BF34C1DBDE61AE12931648F43E59632504DE",
		},
		{
			curve: "brainpoolP384r1",
			dA:    "1E20F5E048A5886F1F157C74E91BDE2B98C8B52D58E5003D57053FC4B0BD65D6F15EB5D1EE1610DF870795143627D042",
			xA:    "68B665DD91C195800650CDD363C625F4E742E8134667B767B1B476793588F885AB698C852D4A6E77A252D6380FCAF068",
			yA:    "55BC91A39C9EC01DEE36017B7D673A931236D2F1F5C83942D049E3FA20607493E0D038FF2FD30C2AB67D15C85F7FAA59",
			dB:    "032640BC6003C59260F7250C3DB58CE647F98E1260ACCE4ACDA3DD869F74E01F8BA5E0324309DB6A9831497ABAC96670",
			xB:    "4D44326F269A597A5B58BBA565DA5556ED7FD9A8A9EB76C25F46DB69D19DC8CE6AD18E404B15738B2086DF37E71D1EB4",
			yB:    "62D692136DE56CBE93BF5FA3188EF58BC8A3A0EC6C1E151A21038A42E9185329B5B275903D192F8D4E1F32FE9CC78C48",
			xZ:    "0BD9D3A7EA0B3D519D09D8E48D0785FB744A6B355E6304BC51C229FBBCE239BBADF6403715C35D4FB2A5444F575D4F42",
			yZ:    "0DF213417EBE4D8E40A5F76F66C56470C489A3478D146DECF6DF0D94BAE9E598157290F8756066975F1DB34B2324B7BD",
		},
		{
			curve: "brainpoolP512r1",
			dA: "16302FF0DBBB5A8D733DAB7141C1B45ACBC8715939677F6A56850A38BD87BD59" +
				"B09E80279609FF333EB9D4C061231FB26F92EEB04982A5F1D1764CAD57665422",
			xA: "0A420517E406AAC0ACDCE90FCD71487718D3B953EFD7FBEC5F7F27E28C614999" +
				"9397E91E029E06457DB2D3E640668B392C2A7E737A7F0BF04436D11640FD09FD",
			yA: "72E6882E8DB28AAD36237CD25D580DB23783961C8DC52DFA2EC138AD472A0FCE" +
				"F3887CF62B623B2A87DE5C588301EA3E5FC269B373B60724F5E82A6AD147FDE7",
			dB: "230E18E1BCC88A362FA54E4EA3902009292F7F8033624FD471B5D8ACE49D12CF" +
				"ABBC19963DAB8E2F1EBA00BFFB29E4D72D13F2224562F405CB80503666B25429",
			xB: "9D45F66DE5D67E2E6DB6E93A59CE0BB48106097FF78A081DE781CDB31FCE8CCB" +
				"AAEA8DD4320C4119F1E9CD437A2EAB3731FA9668AB268D871DEDA55A5473199F",
			yB: "2FDC313095BCDD5FB3A91636F07A959C8E86B5636A1E930E8396049CB481961D" +
				"365CC11453A06C719835475B12CB52FC3C383BCE35E27EF194512B71876285FA",
			xZ: "A7927098655F1F9976FA50A9D566865DC530331846381C87256BAF3226244B76" +
				"D36403C024D7BBF0AA0803EAFF405D3D24F11A9B5C0BEF679FE1454B21C4CD1F",
			yZ: "7DB71C3DEF63212841C463E881BDCF055523BD368240E6C3143BD8DEF8B3B322" +
				"3B95E0F53082FF5E412F4222537A43DF1C6D25729DDB51620A832BE6A26680A2",
		},
	} {
		t.Run(tc.curve, func(t *testing.T) {
			c := ByName(tc.curve)
			dA, dB := hexBytes(t, tc.dA), hexBytes(t, tc.dB)
			qa := append(append([]byte{4}, hexBytes(t, tc.xA)...), hexBytes(t, tc.yA)...)
			qb := append(append([]byte{4}, hexBytes(t, tc.xB)...), hexBytes(t, tc.yB)...)
			if got, err := c.PublicKey(dA); err != nil || !bytes.Equal(got, qa) {
				t.Errorf("dA*G = %x, %v; want %x", got, err, qa)
			}
			if got, err := c.PublicKey(dB); err != nil || !bytes.Equal(got, qb) {
				t.Errorf("dB*G = %x, %v; want %x", got, err, qb)
			}
			wantZ := append(append([]byte{4}, hexBytes(t, tc.xZ)...), hexBytes(t, tc.yZ)...)
			bx, by, err := c.Unmarshal(qb)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Marshal(c.ScalarMult(bx, by, dA)); !bytes.Equal(got, wantZ) {
				t.Errorf("dA*QB = %x, want %x", got, wantZ)
			}
			ax, ay, err := c.Unmarshal(qa)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Marshal(c.ScalarMult(ax, ay, dB)); !bytes.Equal(got, wantZ) {
				t.Errorf("dB*QA = %x, want %x", got, wantZ)
			}
		})
	}
}

// naiveMult computes k*P by repeated affine addition through the public API.
func naiveMult(c *Curve, x, y *big.Int, k int) (*big.Int, *big.Int) {
	var rx, ry *big.Int
	for range k {
		rx, ry = c.Add(rx, ry, x, y)
	}
	return rx, ry
}

func samePoint(x1, y1, x2, y2 *big.Int) bool {
	if x1 == nil || y1 == nil || x2 == nil || y2 == nil {
		return (x1 == nil || y1 == nil) && (x2 == nil || y2 == nil)
	}
	return x1.Cmp(x2) == 0 && y1.Cmp(y2) == 0
}

// Group-law properties on every curve.
func TestGroupLaw(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			gx, gy := c.Gx, c.Gy

			// Small multiples: windowed ScalarBaseMult vs repeated addition,
			// including the multiples used by the precomputed table.
			for _, k := range []int{0, 1, 2, 3, 4, 7, 15, 16, 17, 31, 33} {
				wx, wy := naiveMult(c, gx, gy, k)
				x, y := c.ScalarBaseMult(big.NewInt(int64(k)).Bytes())
				if !samePoint(x, y, wx, wy) {
					t.Errorf("%d*G differs from repeated addition", k)
				}
			}

			// Double(P) = Add(P, P); results on the curve.
			px, py := c.ScalarBaseMult(randScalar(t, c))
			dx, dy := c.Double(px, py)
			ax, ay := c.Add(px, py, px, py)
			if !samePoint(dx, dy, ax, ay) || !c.IsOnCurve(dx, dy) {
				t.Error("Double(P) != Add(P, P)")
			}

			// P + (-P) = O; O + P = P; P + O = P; O + O = O.
			negY := new(big.Int).Sub(c.P, py)
			if x, y := c.Add(px, py, px, negY); x != nil || y != nil {
				t.Error("P + (-P) != O")
			}
			if x, y := c.Add(nil, nil, px, py); !samePoint(x, y, px, py) {
				t.Error("O + P != P")
			}
			if x, y := c.Add(px, py, nil, nil); !samePoint(x, y, px, py) {
				t.Error("P + O != P")
			}
			if x, y := c.Add(nil, nil, nil, nil); x != nil || y != nil {
				t.Error("O + O != O")
			}
			if x, y := c.Double(nil, nil); x != nil || y != nil {
				t.Error("2*O != O")
			}
			if x, y := c.ScalarMult(nil, nil, []byte{5}); x != nil || y != nil {
				t.Error("5*O != O")
			}

			// Results must not alias the inputs or the curve's base point.
			x, _ := c.Add(nil, nil, c.Gx, c.Gy)
			x.SetInt64(0)
			if c.Gx.Sign() == 0 {
				t.Fatal("Add aliased the base point")
			}

			// Distributivity and associativity with random scalars:
			// (a+b)*G = a*G + b*G and a*(b*G) = (a*b mod n)*G.
			for range 3 {
				a := new(big.Int).SetBytes(randScalar(t, c))
				b := new(big.Int).SetBytes(randScalar(t, c))
				sum := new(big.Int).Add(a, b)
				ax, ay := c.ScalarBaseMult(a.Bytes())
				bx, by := c.ScalarBaseMult(b.Bytes())
				sx, sy := c.ScalarBaseMult(sum.Bytes())
				tx, ty := c.Add(ax, ay, bx, by)
				if !samePoint(sx, sy, tx, ty) {
					t.Errorf("(a+b)G != aG + bG for a=%x b=%x", a, b)
				}
				prod := new(big.Int).Mul(a, b)
				prod.Mod(prod, c.N)
				px, py := c.ScalarBaseMult(prod.Bytes())
				qx, qy := c.ScalarMult(bx, by, a.Bytes())
				if !samePoint(px, py, qx, qy) {
					t.Errorf("a(bG) != (ab)G for a=%x b=%x", a, b)
				}
			}

			// Scalars: empty and all-zero mean 0; leading zeros are ignored.
			if x, y := c.ScalarBaseMult(nil); x != nil || y != nil {
				t.Error("ScalarBaseMult(nil) != O")
			}
			if x, y := c.ScalarBaseMult(make([]byte, 80)); x != nil || y != nil {
				t.Error("ScalarBaseMult(0...0) != O")
			}
			if x, y := c.ScalarBaseMult([]byte{0, 0, 0, 1}); !samePoint(x, y, c.Gx, c.Gy) {
				t.Error("ScalarBaseMult(00000001) != G")
			}
		})
	}
}

func TestInvalidPointsDoNotPanic(t *testing.T) {
	for _, c := range Curves() {
		t.Run(c.Name, func(t *testing.T) {
			gy1 := new(big.Int).Add(c.Gy, big.NewInt(1))
			gxP := new(big.Int).Add(c.Gx, c.P) // congruent to Gx but not reduced
			neg := new(big.Int).Neg(c.Gx)
			bad := []struct {
				name string
				x, y *big.Int
			}{
				{"off curve", c.Gx, gy1},
				{"x >= p", gxP, c.Gy},
				{"negative x", neg, c.Gy},
				{"p, p", c.P, c.P},
				{"zero", big.NewInt(0), big.NewInt(0)},
			}
			for _, b := range bad {
				if c.IsOnCurve(b.x, b.y) {
					t.Errorf("%s: IsOnCurve = true", b.name)
				}
				if x, y := c.Add(b.x, b.y, c.Gx, c.Gy); x != nil || y != nil {
					t.Errorf("%s: Add returned a point", b.name)
				}
				if x, y := c.Add(c.Gx, c.Gy, b.x, b.y); x != nil || y != nil {
					t.Errorf("%s: Add returned a point", b.name)
				}
				if x, y := c.Double(b.x, b.y); x != nil || y != nil {
					t.Errorf("%s: Double returned a point", b.name)
				}
				if x, y := c.ScalarMult(b.x, b.y, []byte{2}); x != nil || y != nil {
					t.Errorf("%s: ScalarMult returned a point", b.name)
				}
				if m := c.Marshal(b.x, b.y); m != nil {
					t.Errorf("%s: Marshal = %x", b.name, m)
				}
			}
			if c.IsOnCurve(nil, c.Gy) || c.IsOnCurve(c.Gx, nil) {
				t.Error("IsOnCurve accepted a nil coordinate")
			}
		})
	}
}

func BenchmarkScalarBaseMult(b *testing.B) {
	for _, c := range Curves() {
		b.Run(c.Name, func(b *testing.B) {
			k := randScalar(b, c)
			for b.Loop() {
				c.ScalarBaseMult(k)
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	for _, name := range []string{"secp256r1", "brainpoolP512r1", "secp521r1"} {
		c := ByName(name)
		b.Run(name, func(b *testing.B) {
			d := randScalar(b, c)
			h := make([]byte, 64)
			for b.Loop() {
				if _, _, err := c.Sign(nil, d, h); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
