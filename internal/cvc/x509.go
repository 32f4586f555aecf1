package cvc

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// OIDs of the subject public key algorithms (RFC 8017 appendix A.1,
// RFC 5480 section 2.1.1).
var (
	oidX509RSA = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidX509EC  = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
)

// x509Cert is RFC 5280 section 4.1 down to the subject public key;
// encoding/asn1 leaves the rest alone. crypto/x509 is not used: it refuses
// the curves crypto/ecdsa lacks (secp256k1, brainpool), which the device
// holds and OpenSC stores certificates for in EF CExx.
type x509Cert struct {
	TBS struct {
		Version   int `asn1:"optional,explicit,default:0,tag:0"`
		Serial    asn1.RawValue
		Signature asn1.RawValue
		Issuer    asn1.RawValue
		Validity  asn1.RawValue
		Subject   asn1.RawValue
		SPKI      struct {
			Algorithm pkix.AlgorithmIdentifier
			PublicKey asn1.BitString
		}
	}
}

// X509 is an X.509 certificate as far as the device's keys need it: the
// names and the subject public key.
type X509 struct {
	// Subject and Issuer are the names as encoded (DER Name).
	Subject, Issuer []byte
	spki            struct {
		Algorithm pkix.AlgorithmIdentifier
		PublicKey asn1.BitString
	}
}

// ParseX509 reads an X.509 certificate (RFC 5280 section 4.1) down to its
// subject public key; bytes after the certificate are refused.
func ParseX509(der []byte) (*X509, error) {
	var c x509Cert
	rest, err := asn1.Unmarshal(der, &c)
	if err != nil {
		return nil, errors.New("not an X.509 certificate: " + err.Error())
	}
	if len(rest) > 0 {
		return nil, errors.New("not an X.509 certificate: data after it")
	}
	x := &X509{Subject: c.TBS.Subject.FullBytes, Issuer: c.TBS.Issuer.FullBytes}
	x.spki.Algorithm, x.spki.PublicKey = c.TBS.SPKI.Algorithm, c.TBS.SPKI.PublicKey
	return x, nil
}

// X509PublicKey reads the subject public key of an X.509 certificate as
// a PublicKey (see (*X509).PublicKey).
func X509PublicKey(der []byte) (*PublicKey, error) {
	x, err := ParseX509(der)
	if err != nil {
		return nil, err
	}
	return x.PublicKey()
}

// PublicKey is the certificate's subject public key as a PublicKey: N
// and E for RSA (RFC 8017 A.1.1), the curve's prime and the uncompressed
// point Q for EC on a named curve the device supports (RFC 5480; a
// compressed point is expanded), so that it compares with the public key
// of a CV request.
func (x *X509) PublicKey() (*PublicKey, error) {
	spki := x.spki
	bits := spki.PublicKey.RightAlign()
	switch {
	case spki.Algorithm.Algorithm.Equal(oidX509RSA):
		var k struct{ N, E *big.Int }
		if rest, err := asn1.Unmarshal(bits, &k); err != nil || len(rest) > 0 || k.N == nil || k.E == nil {
			return nil, errors.New("X.509 certificate: malformed RSA public key")
		}
		return &PublicKey{OID: spki.Algorithm.Algorithm, N: k.N, E: k.E}, nil
	case spki.Algorithm.Algorithm.Equal(oidX509EC):
		var curve asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil || len(rest) > 0 {
			return nil, errors.New("X.509 certificate: EC key without a named curve")
		}
		cv := ecc.ByOID(curve)
		if cv == nil {
			return nil, errors.New("X.509 certificate: EC key on a curve the device does not hold")
		}
		x, y, err := cv.Unmarshal(bits)
		if err != nil {
			return nil, errors.New("X.509 certificate: malformed EC point")
		}
		return &PublicKey{OID: spki.Algorithm.Algorithm, Prime: cv.P.FillBytes(make([]byte, cv.ByteLen())), Q: cv.Marshal(x, y)}, nil
	}
	return nil, errors.New("X.509 certificate: neither an RSA nor an EC key")
}

// CertPublicKey is the public key of what EF CExx or a wrapped-key file
// holds for a key: a CV request or certificate, or an X.509 certificate
// (what import-key and OpenSC store for a key with a certificate).
func CertPublicKey(b []byte) (*PublicKey, error) {
	if c, err := Parse(b); err == nil {
		return &c.PublicKey, nil
	}
	if len(b) > 0 && b[0] == 0x30 {
		return X509PublicKey(b)
	}
	return nil, errors.New("neither a CV request or certificate nor an X.509 certificate")
}
