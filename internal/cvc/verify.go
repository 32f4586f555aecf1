package cvc

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	_ "crypto/sha1" // hashes named by the id-TA OIDs
	_ "crypto/sha256"
	_ "crypto/sha512"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// signatureScheme is what a TR-03110 key OID says about signatures made
// with the key (part 3, A.2.1.1 and D.3).
type signatureScheme struct {
	hash crypto.Hash
	pss  bool
}

// schemes maps the last arc of id-TA-RSA (1) and id-TA-ECDSA (2) OIDs.
var (
	rsaSchemes = map[int]signatureScheme{
		1: {crypto.SHA1, false},   // id-TA-RSA-v1-5-SHA-1
		2: {crypto.SHA256, false}, // id-TA-RSA-v1-5-SHA-256
		3: {crypto.SHA1, true},    // id-TA-RSA-PSS-SHA-1
		4: {crypto.SHA256, true},  // id-TA-RSA-PSS-SHA-256
		5: {crypto.SHA512, false}, // id-TA-RSA-v1-5-SHA-512
		6: {crypto.SHA512, true},  // id-TA-RSA-PSS-SHA-512
	}
	ecdsaSchemes = map[int]signatureScheme{
		1: {crypto.SHA1, false},   // id-TA-ECDSA-SHA-1
		2: {crypto.SHA224, false}, // id-TA-ECDSA-SHA-224
		3: {crypto.SHA256, false}, // id-TA-ECDSA-SHA-256
		4: {crypto.SHA384, false}, // id-TA-ECDSA-SHA-384
		5: {crypto.SHA512, false}, // id-TA-ECDSA-SHA-512
	}
)

// Verify checks that sig is a signature over data by pub with the algorithm
// the key OID names: RSA PKCS#1 v1.5 or PSS, or ECDSA with the signature as
// r‖s of equal halves (TR-03111 section 5.2.1, the firmware's
// mbedtls_mpi_write_binary of r and s). pub is an *rsa.PublicKey or an
// *ecdsa.PublicKey.
func Verify(oid asn1.ObjectIdentifier, pub crypto.PublicKey, data, sig []byte) error {
	k := &PublicKey{OID: oid}
	var scheme signatureScheme
	var ok bool
	switch k.Algorithm() {
	case AlgorithmRSA:
		scheme, ok = rsaSchemes[oid[len(oid)-1]]
	case AlgorithmECDSA:
		scheme, ok = ecdsaSchemes[oid[len(oid)-1]]
	}
	if !ok {
		return fmt.Errorf("unsupported signature algorithm %v", oid)
	}
	h := scheme.hash.New()
	h.Write(data)
	digest := h.Sum(nil)
	switch key := pub.(type) {
	case *rsa.PublicKey:
		if k.Algorithm() != AlgorithmRSA {
			return errors.New("rsa key for a non-rsa algorithm")
		}
		var err error
		if scheme.pss {
			err = rsa.VerifyPSS(key, scheme.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		} else {
			err = rsa.VerifyPKCS1v15(key, scheme.hash, digest, sig)
		}
		if err != nil {
			return errors.New("signature verification failed")
		}
		return nil
	case *ecdsa.PublicKey:
		if k.Algorithm() != AlgorithmECDSA {
			return errors.New("ec key for a non-ecdsa algorithm")
		}
		// Halves are normally the field size; the firmware sizes its outer
		// signature by the private key's byte length instead
		// (asn1_cvc_aut), so shorter even lengths are accepted.
		size := (key.Curve.Params().BitSize + 7) / 8
		if len(sig) == 0 || len(sig)%2 != 0 || len(sig) > 2*size {
			return fmt.Errorf("ecdsa signature of %d bytes, want %d", len(sig), 2*size)
		}
		half := len(sig) / 2
		r := new(big.Int).SetBytes(sig[:half])
		s := new(big.Int).SetBytes(sig[half:])
		if !ecdsa.Verify(key, digest, r, s) {
			return errors.New("signature verification failed")
		}
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// Verify checks sig over data with this key (see the package function
// Verify); keys on curves crypto/ecdsa lacks give ErrUnsupportedCurve.
func (p *PublicKey) Verify(data, sig []byte) error {
	pub, err := p.CryptoPublicKey()
	if err != nil {
		return err
	}
	return Verify(p.OID, pub, data, sig)
}

// VerifyInner checks the inner signature over Body with pub, using the
// algorithm of the certificate's own key OID. That is right for requests,
// whose inner signature is the holder's proof of possession made with the
// new key (RSA: PKCS#1 v1.5 with SHA-256; EC: ECDSA with SHA-256), and for
// self-signed certificates. Pass the key from vectors or from
// PublicKey.CryptoPublicKey.
func (c *Certificate) VerifyInner(pub crypto.PublicKey) error {
	if len(c.InnerSignature) == 0 {
		return errors.New("no inner signature")
	}
	body := c.Body
	if body == nil {
		body = c.MarshalBody()
	}
	return Verify(c.PublicKey.OID, pub, body, c.InnerSignature)
}

// VerifyInnerWith checks the inner signature with a signer's CV public key,
// e.g. the authority's key for a certificate it issued.
func (c *Certificate) VerifyInnerWith(signer *PublicKey) error {
	if len(c.InnerSignature) == 0 {
		return errors.New("no inner signature")
	}
	body := c.Body
	if body == nil {
		body = c.MarshalBody()
	}
	return signer.Verify(body, c.InnerSignature)
}

// VerifyOuter checks the outer signature of an authenticated request with
// the CV public key OuterCAR names. On the Pico HSM that is the device key
// from EF 2F02, a secp256k1 key in the recorded build, which crypto/ecdsa
// cannot check (ErrUnsupportedCurve): verify OuterSignedData with the
// curve arithmetic of internal/ecc instead.
func (c *Certificate) VerifyOuter(signer *PublicKey) error {
	if !c.Authenticated {
		return errors.New("not an authenticated request")
	}
	return signer.Verify(c.OuterSignedData(), c.OuterSignature)
}
