package ecc

import (
	"errors"
	"fmt"
	"math/big"
)

// ErrInvalidPoint is returned (wrapped, with details) by [Curve.Unmarshal]
// and by functions that parse public keys when an encoding is not a valid
// uncompressed point of the curve.
var ErrInvalidPoint = errors.New("ecc: invalid point encoding")

// Marshal encodes a finite point of the curve in the uncompressed form of
// SEC 1 section 2.3.3 (Elliptic-Curve-Point-to-Octet-String without point
// compression): 0x04 || X || Y, each coordinate left-padded to
// [Curve.ByteLen] bytes (SEC 1 section 2.3.5), so the output is always
// 1 + 2·ByteLen bytes long.
//
// Marshal returns nil for the point at infinity (whose SEC 1 encoding 0x00
// is deliberately not produced, as no HSM public key can be O) and for points
// that are not on the curve.
func (c *Curve) Marshal(x, y *big.Int) []byte {
	if !c.IsOnCurve(x, y) {
		return nil
	}
	n := c.ByteLen()
	out := make([]byte, 1+2*n)
	out[0] = 4
	x.FillBytes(out[1 : 1+n])
	y.FillBytes(out[1+n:])
	return out
}

// Unmarshal decodes an uncompressed point 0x04 || X || Y following the
// Octet-String-to-Elliptic-Curve-Point conversion of SEC 1 section 2.3.4 and
// the public key validation of SEC 1 section 3.2.2.1. It rejects (with an
// error wrapping [ErrInvalidPoint]) any input whose length is not
// 1 + 2·[Curve.ByteLen], whose first byte is not 0x04 (compressed points and
// the infinity encoding 0x00 are not accepted), whose coordinates are not
// below p, or which does not satisfy the curve equation. For a curve with a
// cofactor h != 1 it also checks that n·Q = O.
func (c *Curve) Unmarshal(data []byte) (x, y *big.Int, err error) {
	n := c.ByteLen()
	if len(data) != 1+2*n {
		return nil, nil, fmt.Errorf("%w: %s: length %d, want %d", ErrInvalidPoint, c.Name, len(data), 1+2*n)
	}
	if data[0] != 4 {
		return nil, nil, fmt.Errorf("%w: %s: prefix 0x%02x, want 0x04 (uncompressed)", ErrInvalidPoint, c.Name, data[0])
	}
	x = new(big.Int).SetBytes(data[1 : 1+n])
	y = new(big.Int).SetBytes(data[1+n:])
	if x.Cmp(c.P) >= 0 || y.Cmp(c.P) >= 0 {
		return nil, nil, fmt.Errorf("%w: %s: coordinate not below p", ErrInvalidPoint, c.Name)
	}
	if !c.IsOnCurve(x, y) {
		return nil, nil, fmt.Errorf("%w: %s: point not on curve", ErrInvalidPoint, c.Name)
	}
	if c.H != 1 {
		if qx, _ := c.ScalarMult(x, y, c.N.Bytes()); qx != nil {
			return nil, nil, fmt.Errorf("%w: %s: point not in the subgroup of order n", ErrInvalidPoint, c.Name)
		}
	}
	return x, y, nil
}
