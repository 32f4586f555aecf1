package ecc

import "math/big"

// jacobian is a point in Jacobian projective coordinates: (X, Y, Z)
// represents the affine point (X/Z², Y/Z³). Z == 0 is the point at infinity.
// All coordinates are kept reduced to [0, p-1].
type jacobian struct {
	x, y, z *big.Int
}

func (c *Curve) infinity() *jacobian {
	return &jacobian{new(big.Int), new(big.Int), new(big.Int)}
}

// IsOnCurve reports whether (x, y) is a finite point of the curve, that is
// both coordinates are field elements in [0, p-1] and y² = x³ + a·x + b
// (mod p) (SEC 1 sections 2.2.1 and 3.2.2.1).
// The point at infinity (nil coordinates) is not "on the curve" in this
// sense.
func (c *Curve) IsOnCurve(x, y *big.Int) bool {
	if x == nil || y == nil {
		return false
	}
	if x.Sign() < 0 || x.Cmp(c.P) >= 0 || y.Sign() < 0 || y.Cmp(c.P) >= 0 {
		return false
	}
	return c.rhs(x).Cmp(new(big.Int).Exp(y, big.NewInt(2), c.P)) == 0
}

// rhs returns x³ + a·x + b mod p.
func (c *Curve) rhs(x *big.Int) *big.Int {
	r := new(big.Int).Mul(x, x)
	r.Add(r, c.A)
	r.Mul(r, x)
	r.Add(r, c.B)
	return r.Mod(r, c.P)
}

// isInf reports whether the affine pair denotes the point at infinity.
func isInf(x, y *big.Int) bool { return x == nil || y == nil }

// toJacobian converts a finite affine point (assumed valid) to Jacobian
// coordinates with Z = 1, copying the inputs.
func (c *Curve) toJacobian(x, y *big.Int) *jacobian {
	return &jacobian{new(big.Int).Set(x), new(big.Int).Set(y), big.NewInt(1)}
}

// toAffine converts back to affine coordinates; infinity yields (nil, nil).
func (c *Curve) toAffine(p *jacobian) (x, y *big.Int) {
	if p.z.Sign() == 0 {
		return nil, nil
	}
	zinv := new(big.Int).ModInverse(p.z, c.P)
	if zinv == nil { // cannot happen for prime p and 0 < z < p
		return nil, nil
	}
	zinv2 := new(big.Int).Mul(zinv, zinv)
	zinv2.Mod(zinv2, c.P)
	x = new(big.Int).Mul(p.x, zinv2)
	x.Mod(x, c.P)
	zinv2.Mul(zinv2, zinv)
	y = new(big.Int).Mul(p.y, zinv2)
	y.Mod(y, c.P)
	return x, y
}

// double returns 2·P using the general-a Jacobian doubling formulas
// ("dbl-1998-cmo-2", Cohen–Miyaji–Ono):
//
//	S = 4·X·Y², M = 3·X² + a·Z⁴, X' = M² - 2S,
//	Y' = M·(S - X') - 8·Y⁴, Z' = 2·Y·Z.
func (c *Curve) double(p *jacobian) *jacobian {
	if p.z.Sign() == 0 || p.y.Sign() == 0 {
		// O + O = O; a point with y = 0 has order 2.
		return c.infinity()
	}
	P := c.P
	yy := new(big.Int).Mul(p.y, p.y)
	yy.Mod(yy, P)
	s := new(big.Int).Mul(p.x, yy)
	s.Lsh(s, 2).Mod(s, P)
	m := new(big.Int).Mul(p.x, p.x)
	m.Mul(m, big.NewInt(3))
	if c.A.Sign() != 0 {
		zz := new(big.Int).Mul(p.z, p.z)
		zz.Mod(zz, P)
		zz.Mul(zz, zz).Mod(zz, P)
		zz.Mul(zz, c.A)
		m.Add(m, zz)
	}
	m.Mod(m, P)

	x3 := new(big.Int).Mul(m, m)
	x3.Sub(x3, s).Sub(x3, s).Mod(x3, P)

	yyyy := yy.Mul(yy, yy) // reuse yy: Y⁴
	yyyy.Lsh(yyyy, 3)
	y3 := new(big.Int).Sub(s, x3)
	y3.Mul(y3, m).Sub(y3, yyyy).Mod(y3, P)

	z3 := new(big.Int).Mul(p.y, p.z)
	z3.Lsh(z3, 1).Mod(z3, P)
	return &jacobian{x3, y3, z3}
}

// add returns P + Q using the Jacobian addition formulas ("add-1998-cmo-2"):
//
//	U1 = X1·Z2², U2 = X2·Z1², S1 = Y1·Z2³, S2 = Y2·Z1³,
//	H = U2 - U1, R = S2 - S1,
//	X3 = R² - H³ - 2·U1·H², Y3 = R·(U1·H² - X3) - S1·H³, Z3 = Z1·Z2·H,
//
// falling back to doubling when P = Q and returning O when P = -Q.
func (c *Curve) add(p, q *jacobian) *jacobian {
	if p.z.Sign() == 0 {
		return &jacobian{new(big.Int).Set(q.x), new(big.Int).Set(q.y), new(big.Int).Set(q.z)}
	}
	if q.z.Sign() == 0 {
		return &jacobian{new(big.Int).Set(p.x), new(big.Int).Set(p.y), new(big.Int).Set(p.z)}
	}
	P := c.P
	z1z1 := new(big.Int).Mul(p.z, p.z)
	z1z1.Mod(z1z1, P)
	z2z2 := new(big.Int).Mul(q.z, q.z)
	z2z2.Mod(z2z2, P)

	u1 := new(big.Int).Mul(p.x, z2z2)
	u1.Mod(u1, P)
	u2 := new(big.Int).Mul(q.x, z1z1)
	u2.Mod(u2, P)

	s1 := new(big.Int).Mul(p.y, q.z)
	s1.Mul(s1, z2z2).Mod(s1, P)
	s2 := new(big.Int).Mul(q.y, p.z)
	s2.Mul(s2, z1z1).Mod(s2, P)

	h := new(big.Int).Sub(u2, u1)
	h.Mod(h, P)
	r := new(big.Int).Sub(s2, s1)
	r.Mod(r, P)
	if h.Sign() == 0 {
		if r.Sign() == 0 {
			return c.double(p)
		}
		return c.infinity()
	}

	hh := new(big.Int).Mul(h, h)
	hh.Mod(hh, P)
	hhh := new(big.Int).Mul(h, hh)
	hhh.Mod(hhh, P)
	v := new(big.Int).Mul(u1, hh)
	v.Mod(v, P)

	x3 := new(big.Int).Mul(r, r)
	x3.Sub(x3, hhh).Sub(x3, v).Sub(x3, v).Mod(x3, P)

	y3 := new(big.Int).Sub(v, x3)
	y3.Mul(y3, r)
	s1.Mul(s1, hhh)
	y3.Sub(y3, s1).Mod(y3, P)

	z3 := new(big.Int).Mul(p.z, q.z)
	z3.Mul(z3, h).Mod(z3, P)
	return &jacobian{x3, y3, z3}
}

// scalarMult returns k·P for a big-endian scalar k using a left-to-right
// fixed 4-bit window. It is not constant time.
func (c *Curve) scalarMult(p *jacobian, k []byte) *jacobian {
	var table [16]*jacobian
	table[0] = c.infinity()
	table[1] = p
	for i := 2; i < 16; i++ {
		if i%2 == 0 {
			table[i] = c.double(table[i/2])
		} else {
			table[i] = c.add(table[i-1], p)
		}
	}
	acc := c.infinity()
	for _, b := range k {
		for _, nib := range [2]byte{b >> 4, b & 0x0f} {
			for range 4 {
				acc = c.double(acc)
			}
			if nib != 0 {
				acc = c.add(acc, table[nib])
			}
		}
	}
	return acc
}

// Add returns the sum of the points (x1, y1) and (x2, y2) (the group law of
// SEC 1 section 2.2.1). A nil coordinate denotes the point at infinity O, so
// O + Q = Q; the result is (nil, nil) when it is O.
//
// An input that is neither O nor a point on the curve (see
// [Curve.IsOnCurve]) is invalid and also yields (nil, nil); callers that must
// distinguish that from a genuine O should validate inputs first.
func (c *Curve) Add(x1, y1, x2, y2 *big.Int) (x, y *big.Int) {
	inf1, inf2 := isInf(x1, y1), isInf(x2, y2)
	if (!inf1 && !c.IsOnCurve(x1, y1)) || (!inf2 && !c.IsOnCurve(x2, y2)) {
		return nil, nil
	}
	switch {
	case inf1 && inf2:
		return nil, nil
	case inf1:
		return new(big.Int).Set(x2), new(big.Int).Set(y2)
	case inf2:
		return new(big.Int).Set(x1), new(big.Int).Set(y1)
	}
	return c.toAffine(c.add(c.toJacobian(x1, y1), c.toJacobian(x2, y2)))
}

// Double returns 2·(x1, y1) (SEC 1 section 2.2.1). The point at infinity and
// invalid points yield (nil, nil), as for [Curve.Add].
func (c *Curve) Double(x1, y1 *big.Int) (x, y *big.Int) {
	if !c.IsOnCurve(x1, y1) {
		return nil, nil
	}
	return c.toAffine(c.double(c.toJacobian(x1, y1)))
}

// ScalarMult returns k·(x1, y1), where k is a big-endian unsigned integer of
// any length (it is not reduced modulo n; for the curves of this package,
// whose cofactor is 1, k and k mod n give the same result). The result is
// (nil, nil) when it is the point at infinity (k ≡ 0 mod n, or the input is
// O) and when (x1, y1) is not on the curve.
//
// The computation uses math/big and is not constant time.
func (c *Curve) ScalarMult(x1, y1 *big.Int, k []byte) (x, y *big.Int) {
	if !c.IsOnCurve(x1, y1) {
		return nil, nil
	}
	return c.toAffine(c.scalarMult(c.toJacobian(x1, y1), k))
}

// ScalarBaseMult returns k·G for the curve's base point G, where k is a
// big-endian unsigned integer of any length. The result is (nil, nil) when it
// is the point at infinity (k ≡ 0 mod n). This is the public-key computation
// Q = d·G of SEC 1 section 3.2.1.
func (c *Curve) ScalarBaseMult(k []byte) (x, y *big.Int) {
	return c.toAffine(c.scalarMult(c.toJacobian(c.Gx, c.Gy), k))
}
