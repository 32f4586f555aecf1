// Package attest tells whether a key was generated inside the device, from
// what the device holds: the key's CV request in EF CExx, the key file's
// metadata, and the device certificate chain in EF 2F02 (C_DevAut).
//
// What the firmware writes (pico-hsm v6.6, src/hsm):
//
//   - GENERATE ASYMMETRIC KEY PAIR (cmd_keypair_gen.c) stores in CExx the
//     authenticated request asn1_cvc_aut builds (cvc.c):
//     67 { 7F21 { 7F4E body, 5F37 signature by the new key },
//     42 device CHR, 5F37 ECDSA-SHA-256 signature by the device key over
//     7F21 ‖ 42 }. The body's CAR and CHR are the 42 and 5F20 of the
//     command data when present (OpenSC and generate-key send CAR
//     "UTCA00001"), else the device name.
//   - UNWRAP KEY (cmd_key_unwrap.c) stores the same kind of request, also
//     signed by the device key, with the device name as CAR and CHR (the
//     blob carries no 42), and always writes the key domain tag 92 into the
//     key's metadata, domain 0 included (transcripts/differential/fw-p3.txt
//     [2941] and [2965]). A generated key has tag 92 only when the command
//     asked for a domain (transcripts/61-key-domains-keys.txt [5]-[7]).
//   - Restore tools then overwrite CExx with the certificate the backup
//     carried (sc-hsm-tool, transcripts/21-unwrap-key-ref10.txt [11]-[16];
//     this tool, fw-p3.txt [2943]): the original device's request.
//   - EF 2F02 holds C_DevAut, the device's certificate (or, on a device
//     never provisioned, its authenticated request CE00), followed by the
//     certificate of its issuer: the DICA (CHR ESPICOHSMDV..., issued by the
//     vendor root ESPICOHSMCA00001, which is not on the device), or a
//     self-signed certificate of the device key itself, as in the emulator
//     build recorded in transcripts/errors/p01-token-info.txt [6]-[11]
//     (pico-hsm tests test_get_termca; OpenSC pkcs15-sc-hsm.c reads the
//     device CHR from its first object).
//
// So a valid device signature proves that this device made the request
// for this public key, by generation or by unwrapping. Evaluate separates
// the two with the marks UNWRAP KEY leaves (the CAR it writes, the domain
// tag) and says "cannot be known" when they do not decide.
package attest

import (
	"crypto"
	"errors"
	"fmt"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/tlv"
)

// Outcomes of one signature check.
const (
	Valid     = "valid"
	Invalid   = "invalid"
	Absent    = "absent"
	Unchecked = "not checked"
)

// Certificate kinds of CExx.
const (
	CertNone       = "none"
	CertRequest    = "cv-request"
	CertCV         = "cv-certificate"
	CertX509       = "x509"
	CertUnreadable = "unreadable"
)

// RootCAR is the vendor root that issues the DICA certificates of
// provisioned Pico HSMs (pico-hsm tests/pico-hsm/test_000_init.py
// test_get_termca; the root certificate ESPICOHSMCA00001.cvcert is
// published by the vendor, not stored on the device).
const RootCAR = "ESPICOHSMCA00001"

// Evidence is what the device holds about one key.
type Evidence struct {
	// Cert is EF CExx, nil when the file does not exist.
	Cert []byte
	// DomainTag reports the key domain tag 92 in the key file's metadata.
	DomainTag bool
	// DeviceCerts is EF 2F02, nil when the file does not exist.
	DeviceCerts []byte
}

// Link is one certificate of the chain, from the key up to the root.
type Link struct {
	// Role is "key", "device", "issuer" or "root".
	Role string `json:"role"`
	CHR  string `json:"chr,omitempty"`
	CAR  string `json:"car,omitempty"`
	// SignedBy names what signed it: "the key itself", "the device key",
	// a CAR, or "" for the root.
	SignedBy string `json:"signed_by,omitempty"`
	// Signature is Valid, Invalid, Absent or Unchecked; OnDevice is false
	// for a certificate the device does not hold.
	Signature string `json:"signature"`
	OnDevice  bool   `json:"on_device"`
}

// Result is the verdict on one key.
type Result struct {
	KeyReference int    `json:"key_reference"`
	Key          string `json:"key,omitempty"`
	Label        string `json:"label"`
	ID           string `json:"id"`
	// GeneratedOnDevice is true or false when the evidence decides, nil
	// when it cannot be known.
	GeneratedOnDevice *bool `json:"generated_on_device"`
	// SignedByDevice tells whether this device's key signed the request in
	// CExx; nil when that cannot be checked.
	SignedByDevice *bool `json:"signed_by_device"`
	// Reason says why, in a sentence.
	Reason string `json:"reason"`
	// Certificate is what CExx holds (CertNone, CertRequest, ...).
	Certificate string `json:"certificate"`
	// InnerSignature is the key's own signature over the request body;
	// DeviceSignature the outer signature, checked with the device key.
	InnerSignature  string `json:"inner_signature"`
	DeviceSignature string `json:"device_signature"`
	// KeyCAR, KeyCHR and OuterCAR are the request's references.
	KeyCAR   string `json:"key_car,omitempty"`
	KeyCHR   string `json:"key_chr,omitempty"`
	OuterCAR string `json:"outer_car,omitempty"`
	// DeviceCHR names this device (C_DevAut's holder).
	DeviceCHR string `json:"device_chr,omitempty"`
	// KeyDomainTag reports the key domain tag in the key's metadata.
	KeyDomainTag bool     `json:"key_domain_tag"`
	Chain        []Link   `json:"chain"`
	Notes        []string `json:"notes,omitempty"`
}

func ptr(b bool) *bool { return &b }

// device is what EF 2F02 tells.
type device struct {
	key   *cvc.PublicKey
	chr   string
	links []Link
	notes []string
	bad   string // why the chain cannot be trusted, "" when it can
}

// readDevice checks EF 2F02: C_DevAut and its issuer. A self-signed device
// certificate verifies with its own key; one issued by the DICA with the
// DICA's key, whose own issuer (the vendor root) is not on the device.
func readDevice(b []byte) (*device, error) {
	objs, err := cvc.ParseAll(b)
	if err != nil {
		return nil, err
	}
	dev := objs[0]
	d := &device{key: &dev.PublicKey, chr: dev.CHR}
	l := Link{Role: "device", CHR: dev.CHR, CAR: dev.CAR, OnDevice: true, SignedBy: dev.CAR}
	var issuer *cvc.Certificate
	if len(objs) > 1 {
		issuer = objs[1]
	}
	switch {
	case dev.CAR == dev.CHR:
		l.SignedBy = "itself"
		l.Signature = check(&dev.PublicKey, dev.Body, dev.InnerSignature)
		d.notes = append(d.notes, "the device certificate is self-signed: nothing outside the device vouches for its key (an emulator, whose device key is the same on every install, or a device never provisioned with an attestation certificate)")
	case issuer != nil && issuer.CHR == dev.CAR:
		l.Signature = check(&issuer.PublicKey, dev.Body, dev.InnerSignature)
	default:
		l.Signature = Unchecked
		d.notes = append(d.notes, fmt.Sprintf("the device certificate's issuer %s is not on the device: its signature was not checked", dev.CAR))
	}
	if l.Signature == Invalid {
		d.bad = "the device certificate in EF 2F02 does not verify"
	}
	d.links = append(d.links, l)
	if issuer == nil {
		return d, nil
	}
	il := Link{Role: "issuer", CHR: issuer.CHR, CAR: issuer.CAR, OnDevice: true, SignedBy: issuer.CAR}
	if issuer.IsSelfSigned() {
		il.SignedBy = "itself"
		il.Signature = check(&issuer.PublicKey, issuer.Body, issuer.InnerSignature)
		if il.Signature == Invalid && d.bad == "" {
			d.bad = "the issuer certificate in EF 2F02 does not verify"
		}
		d.links = append(d.links, il)
		return d, nil
	}
	il.Signature = Unchecked
	d.links = append(d.links, il, Link{Role: "root", CHR: issuer.CAR, Signature: Unchecked})
	root := issuer.CAR
	if root == RootCAR {
		root += ", the vendor's root"
	}
	d.notes = append(d.notes, fmt.Sprintf("the issuer certificate is signed by %s, which is not on the device: check it against the vendor's published root certificate", root))
	return d, nil
}

// Evaluate decides from the evidence alone; it does not talk to a device.
func Evaluate(ev Evidence) Result {
	r := Result{Certificate: CertNone, InnerSignature: Unchecked, DeviceSignature: Unchecked, KeyDomainTag: ev.DomainTag}
	var dev *device
	if ev.DeviceCerts != nil {
		var err error
		if dev, err = readDevice(ev.DeviceCerts); err != nil {
			r.Reason = fmt.Sprintf("the device certificate file EF 2F02 cannot be read (%v): the device signature cannot be checked", err)
			dev = nil
		} else {
			r.DeviceCHR = dev.chr
		}
	}
	var c *cvc.Certificate
	switch {
	case ev.Cert == nil:
		r.Reason = "the key has no certificate file (CExx): AES keys have none, and nothing else vouches for where the key was made"
	default:
		var err error
		c, err = cvc.Parse(ev.Cert)
		switch {
		case err != nil && len(ev.Cert) > 0 && ev.Cert[0] == 0x30:
			r.Certificate = CertX509
			r.Reason = "the key's certificate file (CExx) holds an X.509 certificate, stored over the device's CV request: the device's evidence is gone"
			c = nil
		case err != nil:
			r.Certificate = CertUnreadable
			r.Reason = fmt.Sprintf("the key's certificate file (CExx) cannot be read as a CV request (%v)", err)
			c = nil
		case !c.Authenticated:
			r.Certificate = CertCV
			r.Reason = fmt.Sprintf("the key's certificate file (CExx) holds a CV certificate issued by %s, stored over the device's CV request: the device's evidence is gone", c.CAR)
		default:
			r.Certificate = CertRequest
		}
	}
	if c != nil {
		r.KeyCAR, r.KeyCHR, r.OuterCAR = c.CAR, c.CHR, c.OuterCAR
		r.InnerSignature = check(&c.PublicKey, c.Body, c.InnerSignature)
		r.Chain = append(r.Chain, Link{Role: "key", CHR: c.CHR, CAR: c.CAR, SignedBy: "the key itself", Signature: r.InnerSignature, OnDevice: true})
	}
	if dev != nil {
		r.Chain = append(r.Chain, dev.links...)
		r.Notes = append(r.Notes, dev.notes...)
	}
	switch {
	case ev.DeviceCerts == nil:
		r.Reason = "the device has no device certificate file (EF 2F02): the device signature cannot be checked"
		return r
	case dev == nil:
		return r
	case c == nil || !c.Authenticated:
		return r
	case dev.bad != "":
		r.Reason = dev.bad + ": this device's key cannot be trusted"
		return r
	}
	r.DeviceSignature = check(dev.key, c.OuterSignedData(), c.OuterSignature)
	switch r.DeviceSignature {
	case Unchecked:
		r.Reason = "the device key's signature cannot be checked (its curve is not supported)"
		return r
	case Invalid, Absent:
		r.SignedByDevice = ptr(false)
		r.GeneratedOnDevice = ptr(false)
		r.Reason = fmt.Sprintf("this device did not sign the key's CV request (it names %q as signer; this device is %q): the request came with the key from elsewhere, as a restore or an import carries the request of the device that made the key", c.OuterCAR, dev.chr)
		return r
	}
	r.SignedByDevice = ptr(true)
	switch {
	case c.OuterCAR != dev.chr:
		r.Reason = fmt.Sprintf("this device's key signed the key's CV request, but the request names %q as signer, not this device %q", c.OuterCAR, dev.chr)
	case r.InnerSignature != Valid:
		r.Reason = fmt.Sprintf("this device signed the key's CV request, but the key's own signature in it is %s", r.InnerSignature)
	case c.CAR != dev.chr:
		r.GeneratedOnDevice = ptr(true)
		r.Reason = fmt.Sprintf("this device signed the key's CV request, and the request names the authority %q of a key generation command (UNWRAP KEY names the device itself): the key pair was generated by this device", c.CAR)
	case !ev.DomainTag:
		r.GeneratedOnDevice = ptr(true)
		r.Reason = "this device signed the key's CV request, and the key has no key domain tag, which UNWRAP KEY always writes: the key was generated by this device"
	default:
		r.Reason = "this device signed the key's CV request, which it does both for keys it generates and for keys it unwraps (unwrap-key, restore, import-key): this proves the key is held by this device, not where it was born"
	}
	if r.GeneratedOnDevice != nil {
		r.Notes = append(r.Notes, "the request is tied to the key only by its file number (CExx for key CCxx): attest reads files and does not use the key")
	}
	return r
}

// check verifies sig over data with pk: Valid, Invalid, Absent, or
// Unchecked when the algorithm or curve is not supported.
func check(pk *cvc.PublicKey, data, sig []byte) string {
	if len(sig) == 0 {
		return Absent
	}
	err := pk.Verify(data, sig)
	if errors.Is(err, cvc.ErrUnsupportedCurve) && pk.Algorithm() == cvc.AlgorithmECDSA {
		err = verifyWeierstrass(pk, data, sig)
	}
	switch {
	case err == nil:
		return Valid
	case errors.Is(err, errUnsupported), errors.Is(err, cvc.ErrUnsupportedCurve):
		return Unchecked
	}
	return Invalid
}

var errUnsupported = errors.New("unsupported")

// ecdsaHashes maps the last arc of an id-TA-ECDSA OID to its hash
// (TR-03110 part 3, A.2.1.1).
var ecdsaHashes = map[int]crypto.Hash{1: crypto.SHA1, 2: crypto.SHA224, 3: crypto.SHA256, 4: crypto.SHA384, 5: crypto.SHA512}

// verifyWeierstrass checks an ECDSA signature (r‖s, TR-03111 5.2.1) on a
// curve crypto/ecdsa lacks: secp256k1, which the device key uses, and the
// Brainpool curves. The encoded domain parameters must be the curve's.
func verifyWeierstrass(pk *cvc.PublicKey, data, sig []byte) error {
	c := ecc.ByPrime(pk.Prime)
	h, ok := ecdsaHashes[pk.OID[len(pk.OID)-1]]
	if c == nil || !ok || !h.Available() {
		return errUnsupported
	}
	same := func(enc []byte, v *big.Int) bool { return enc == nil || new(big.Int).SetBytes(enc).Cmp(v) == 0 }
	if !same(pk.A, c.A) || !same(pk.B, c.B) || !same(pk.Order, c.N) || (pk.G != nil && string(pk.G) != string(c.Marshal(c.Gx, c.Gy))) {
		return errors.New("domain parameters are not the curve's")
	}
	if len(sig)%2 != 0 || len(sig) > 2*c.ScalarLen() {
		return errors.New("signature length")
	}
	hh := h.New()
	hh.Write(data)
	half := len(sig) / 2
	if !c.Verify(pk.Q, hh.Sum(nil), new(big.Int).SetBytes(sig[:half]), new(big.Int).SetBytes(sig[half:])) {
		return errors.New("signature verification failed")
	}
	return nil
}

// Attest reads the evidence of the key spec names and evaluates it. It
// needs no PIN: LIST KEYS, SELECT of the key file (its metadata), READ
// BINARY of C4xx, CExx and 2F02. The caller has selected the application.
func Attest(d *hsm.Device, spec keystore.Spec) (Result, error) {
	fids, err := d.ListObjects()
	if err != nil {
		return Result{}, err
	}
	keys, err := keystore.ListFrom(d, fids, keystore.ReadPRKD)
	if err != nil {
		return Result{}, err
	}
	k, err := keystore.Resolve(keys, spec)
	if err != nil {
		if spec.Ref == 0 {
			err = fmt.Errorf("%w (key reference 0 is the device's own key, which EF 2F02 certifies)", err)
		}
		return Result{}, err
	}
	ref := byte(k.Ref)
	if k, err = keystore.Read(d, ref); err != nil {
		return Result{}, err
	}
	var ev Evidence
	fi, err := d.SelectFile(hsm.KeyFID(hsm.PrefixKey, ref))
	if err != nil {
		return Result{}, err
	}
	ev.DomainTag = hasTag(fi.Meta, 0x92)
	ev.Cert = k.Cert
	if ev.Cert == nil {
		// keystore leaves an empty CExx out: show it as present.
		if b, err := d.ReadFile(hsm.KeyFID(hsm.PrefixEECert, ref)); err == nil {
			ev.Cert = b
		}
	}
	ev.DeviceCerts, err = d.ReadFile(hsm.FIDDeviceCert)
	switch {
	case apdu.IsStatus(err, apdu.SWFileNotFound):
		ev.DeviceCerts = nil
	case err != nil:
		return Result{}, err
	}
	r := Evaluate(ev)
	r.KeyReference, r.Key, r.Label, r.ID = k.Ref, k.Describe(), k.Label, k.ID
	return r, nil
}

// hasTag reports whether the metadata TLVs hold tag.
func hasTag(meta []byte, tag uint32) bool {
	for len(meta) > 0 {
		e, rest, err := tlv.Read(meta)
		if err != nil {
			return false
		}
		if e.Tag == tag {
			return true
		}
		meta = rest
	}
	return false
}
