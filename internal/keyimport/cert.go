package keyimport

import (
	"bytes"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// ErrCertMismatch is a certificate whose public key is not the key's.
var ErrCertMismatch = errors.New("the certificate is not the key's")

// Certificate is an X.509 certificate read for a key. It is read with
// cvc.ParseX509 rather than crypto/x509, which refuses certificates on the
// curves crypto/ecdsa lacks (secp256k1, brainpool) that the device holds.
type Certificate struct {
	// DER is the certificate as the device stores it in EF CExx.
	DER []byte
	// Subject and Issuer are the names in RFC 2253 form.
	Subject, Issuer string
	// pub is the subject public key, nil when the device cannot hold it.
	pub *cvc.PublicKey
}

// ParseCertificates reads the X.509 certificates of a PEM file (its
// CERTIFICATE blocks) or one DER certificate.
func ParseCertificates(data []byte) ([]*Certificate, error) {
	if !bytes.Contains(data, []byte("-----BEGIN ")) {
		c, err := parseCert(data)
		if err != nil {
			return nil, err
		}
		return []*Certificate{c}, nil
	}
	var out []*Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := parseCert(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no CERTIFICATE in the PEM file: give an X.509 certificate, PEM or DER")
	}
	return out, nil
}

func parseCert(der []byte) (*Certificate, error) {
	x, err := cvc.ParseX509(der)
	if err != nil {
		return nil, fmt.Errorf("%v: give an X.509 certificate, PEM or DER", err)
	}
	out := &Certificate{DER: bytes.Clone(der), Subject: dn(x.Subject), Issuer: dn(x.Issuer)}
	out.pub, _ = x.PublicKey()
	return out, nil
}

func dn(der []byte) string {
	var rdn pkix.RDNSequence
	if _, err := asn1.Unmarshal(der, &rdn); err != nil {
		return "?"
	}
	var n pkix.Name
	n.FillFromRDNSequence(&rdn)
	return n.String()
}

// matches tells whether c's subject public key is k's.
func (c *Certificate) matches(k *Key) bool {
	p := c.pub
	switch {
	case p == nil:
		return false
	case k.Wrap.Type == wrap.TypeRSA:
		return p.N != nil && p.N.Cmp(new(big.Int).SetBytes(k.Wrap.N)) == 0 && p.E.Cmp(new(big.Int).SetBytes(k.Wrap.E)) == 0
	case k.Wrap.Type == wrap.TypeEC:
		cc := ecc.ByPrime(p.Prime)
		return cc != nil && cc.Name == k.Curve.Name && bytes.Equal(p.Q, k.Wrap.ECQ)
	}
	return false
}

// SetCertificate gives k the certificate among certs whose public key is
// k's, to be stored with the key; ErrCertMismatch when none is. An AES
// key has no certificate.
func (k *Key) SetCertificate(certs []*Certificate) error {
	if k.Wrap.Type == wrap.TypeAES {
		return fmt.Errorf("%w: an AES key has no certificate", ErrCertMismatch)
	}
	for _, c := range certs {
		if c.matches(k) {
			k.Cert = c
			return nil
		}
	}
	if len(certs) == 1 {
		return fmt.Errorf("%w: the certificate of %s holds another public key than the %s key", ErrCertMismatch, certs[0].Subject, k)
	}
	return fmt.Errorf("%w: none of the %d certificates holds the %s key's public key", ErrCertMismatch, len(certs), k)
}

// pickCert gives k the certificate among ders (found in the same file)
// whose public key is k's, if any, and counts the others.
func (k *Key) pickCert(ders [][]byte) {
	var certs []*Certificate
	for _, d := range ders {
		if c, err := parseCert(d); err == nil {
			certs = append(certs, c)
		}
	}
	if k.Wrap.Type != wrap.TypeAES && k.SetCertificate(certs) == nil {
		k.OtherCerts = len(ders) - 1
	} else {
		k.OtherCerts = len(ders)
	}
}
