package backup

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// Report describes a wrapped-key file, without a device.
type Report struct {
	Type    string   `json:"type"`
	Bits    int      `json:"bits,omitempty"`
	Curve   string   `json:"curve,omitempty"`
	KCV     string   `json:"dkek_kcv"`
	Allowed []string `json:"allowed_algorithms"`
	Label   string   `json:"label,omitempty"`
	ID      string   `json:"id,omitempty"`
	// KeyRef is the key reference the description names, -1 if none.
	KeyRef int `json:"key_reference"`
	// Certificate is "CV request, holder H", "CV certificate, holder H",
	// "X.509 certificate" or empty.
	Certificate string `json:"certificate,omitempty"`
	BlobSize    int    `json:"blob_size"`
	// Verified is set when a DKEK was given and the KCV, the CMAC and the
	// key's structure all check out.
	Verified bool `json:"verified"`
}

// algorithmNames names SmartCard-HSM algorithm identifiers (pico-hsm
// sc_hsm.h ALGO_*).
var algorithmNames = map[byte]string{
	0x10: "AES-CBC-encrypt", 0x11: "AES-CBC-decrypt", 0x18: "AES-CMAC", 0x99: "AES-derive",
	0x20: "RSA-raw", 0x21: "RSA-decrypt", 0x30: "RSA-PKCS1", 0x31: "RSA-PKCS1-SHA1",
	0x32: "RSA-PKCS1-SHA224", 0x33: "RSA-PKCS1-SHA256", 0x34: "RSA-PKCS1-SHA384",
	0x35: "RSA-PKCS1-SHA512", 0x40: "RSA-PSS", 0x41: "RSA-PSS-SHA1", 0x42: "RSA-PSS-SHA224",
	0x43: "RSA-PSS-SHA256", 0x44: "RSA-PSS-SHA384", 0x45: "RSA-PSS-SHA512",
	0x70: "ECDSA", 0x71: "ECDSA-SHA1", 0x72: "ECDSA-SHA224", 0x73: "ECDSA-SHA256",
	0x74: "ECDSA-SHA384", 0x75: "ECDSA-SHA512", 0x80: "ECDH", 0x98: "EC-derive",
	0x92: "WRAP", 0x93: "UNWRAP", 0x94: "REPLACE",
}

// Inspect describes a wrapped-key file. With a DKEK it also checks the
// KCV, verifies the CMAC, decrypts the key in memory, checks its
// structure (RSA: (m^e)^d = m mod n and n matches the certificate; EC:
// d·G = Q on the curve), and wipes the plaintext.
func Inspect(file []byte, dkek []byte) (*Report, error) {
	if IsShareFile(file) {
		return nil, ErrShareFile
	}
	f, err := wrap.ParseFile(file)
	if err != nil {
		return nil, err
	}
	bl, err := wrap.ParseBlob(f.Blob)
	if err != nil {
		return nil, err
	}
	r, pub := describe(f, bl)
	if dkek == nil {
		return r, nil
	}
	key, err := bl.Open(dkek)
	if err != nil {
		return r, err
	}
	defer key.Wipe()
	if err := checkStructure(key, pub, r); err != nil {
		return r, err
	}
	r.Verified = true
	return r, nil
}

// describe reports what a wrapped-key file says without the DKEK: the
// blob's type, KCV and allowed algorithms, the description's label, ID,
// key reference and size, and the certificate's holder and public key,
// which it returns too (nil without a CV certificate or request).
func describe(f *wrap.File, bl *wrap.Blob) (*Report, *cvc.PublicKey) {
	r := &Report{Type: bl.Type.String(), KCV: fmt.Sprintf("%X", bl.KCV), KeyRef: -1, BlobSize: len(f.Blob), Allowed: []string{}}
	if len(bl.Allowed) == 0 {
		r.Allowed = append(r.Allowed, "any")
	}
	for _, a := range bl.Allowed {
		name, ok := algorithmNames[a]
		if !ok {
			name = fmt.Sprintf("0x%02X", a)
		}
		r.Allowed = append(r.Allowed, name)
	}
	if len(f.PRKD) > 0 {
		if p, err := pkcs15.Parse(f.PRKD); err == nil {
			r.Label, r.ID, r.KeyRef, r.Bits = p.Label, fmt.Sprintf("%X", p.ID), p.KeyReference, p.Bits
		}
	}
	var pub *cvc.PublicKey
	if len(f.Cert) > 0 {
		if c, err := cvc.Parse(f.Cert); err == nil {
			kind := "CV certificate"
			if c.Authenticated {
				kind = "CV request"
			}
			r.Certificate = fmt.Sprintf("%s, holder %s", kind, c.CHR)
			pub = &c.PublicKey
			describeBits(r, pub)
		} else if f.Cert[0] == 0x30 {
			r.Certificate = "X.509 certificate"
			if xp, err := cvc.X509PublicKey(f.Cert); err == nil {
				pub = xp
				describeBits(r, pub)
			}
		}
	}
	return r, pub
}

// describeBits sets the report's key size, or curve, from a public key.
func describeBits(r *Report, pub *cvc.PublicKey) {
	switch {
	case pub.N != nil:
		r.Bits = pub.N.BitLen()
	case len(pub.Prime) > 0:
		if cv := ecc.ByPrime(pub.Prime); cv != nil {
			r.Curve, r.Bits = cv.Name, cv.BitSize()
		}
	}
}

// ErrDamaged reports key material that decrypts but does not hold together.
var ErrDamaged = errors.New("the key in the backup is damaged")

func checkStructure(k *wrap.Key, pub *cvc.PublicKey, r *Report) error {
	switch k.Type {
	case wrap.TypeRSA, wrap.TypeRSACRT:
		n := new(big.Int).SetBytes(k.N)
		e := new(big.Int).SetBytes(k.E)
		if n.Sign() == 0 || e.Sign() == 0 {
			return fmt.Errorf("%w: empty RSA modulus or exponent", ErrDamaged)
		}
		if k.Type == wrap.TypeRSACRT {
			if new(big.Int).Mul(new(big.Int).SetBytes(k.P), new(big.Int).SetBytes(k.Q)).Cmp(n) != 0 {
				return fmt.Errorf("%w: n is not p·q", ErrDamaged)
			}
		} else {
			d := new(big.Int).SetBytes(k.D)
			for i := 0; i < 4; i++ {
				m, err := rand.Int(rand.Reader, n)
				if err != nil {
					return err
				}
				c := new(big.Int).Exp(m, e, n)
				if new(big.Int).Exp(c, d, n).Cmp(m) != 0 {
					return fmt.Errorf("%w: d does not invert e modulo n", ErrDamaged)
				}
			}
		}
		if pub != nil && pub.N != nil && pub.N.Cmp(n) != 0 {
			return fmt.Errorf("%w: the modulus differs from the certificate's", ErrDamaged)
		}
		r.Bits = n.BitLen()
	case wrap.TypeEC:
		c := ecc.ByPrime(k.ECP)
		if c == nil {
			return fmt.Errorf("%w: unknown curve", ErrDamaged)
		}
		d := new(big.Int).SetBytes(k.D).FillBytes(make([]byte, c.ScalarLen()))
		q, err := c.PublicKey(d)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrDamaged, err)
		}
		if len(k.ECQ) > 0 && !bytes.Equal(q, k.ECQ) {
			return fmt.Errorf("%w: d·G is not the public point Q", ErrDamaged)
		}
		if pub != nil && len(pub.Q) > 0 && !bytes.Equal(q, pub.Q) {
			return fmt.Errorf("%w: the public point differs from the certificate's", ErrDamaged)
		}
		r.Curve, r.Bits = c.Name, c.BitSize()
	case wrap.TypeAES:
		if n := len(k.Secret); n != 16 && n != 24 && n != 32 && n != 64 {
			return fmt.Errorf("%w: AES key of %d bytes", ErrDamaged, n)
		}
		r.Bits = 8 * len(k.Secret)
	}
	return nil
}

// Text renders the report for people.
func (r *Report) Text() string {
	var b strings.Builder
	size := r.Type
	switch {
	case r.Curve != "":
		size += " " + r.Curve
	case r.Bits > 0:
		size += fmt.Sprintf(" %d", r.Bits)
	}
	fmt.Fprintf(&b, "Key                  : %s\n", size)
	fmt.Fprintf(&b, "DKEK key check value : %s\n", r.KCV)
	fmt.Fprintf(&b, "Allowed algorithms   : %s\n", strings.Join(r.Allowed, ", "))
	if r.Label != "" || r.ID != "" {
		fmt.Fprintf(&b, "Label                : %s\nID                   : %s\n", r.Label, r.ID)
	}
	if r.KeyRef >= 0 {
		fmt.Fprintf(&b, "Key reference        : %d\n", r.KeyRef)
	}
	if r.Certificate != "" {
		fmt.Fprintf(&b, "Certificate          : %s\n", r.Certificate)
	}
	if r.Verified {
		fmt.Fprintf(&b, "Verified             : KCV, CMAC and key structure check out\n")
	}
	return b.String()
}
