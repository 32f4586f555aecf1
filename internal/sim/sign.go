package sim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// More algorithm identifiers (pico-hsm sc_hsm.h ALGO_*).
const (
	algRSADecryptPKCS1 = 0x22
	algRSADecryptOAEP  = 0x23
	algRSAPSSSHA1      = 0x41
	algRSAPSSSHA512    = 0x45
	algHD              = 0xA0
	algECDH            = 0x80
	algECDHXKEK        = 0x84
	algECDerive        = 0x98
)

// opKey finds the key of a private-key operation as cmd_signature.c,
// cmd_decrypt_asym.c and cmd_cipher_sym.c do, after the login check
// (6982): key file CC<ref> (6A82), where only SIGNATURE also finds the
// device key CC00 (device says so), the others looking among the dynamic
// files only; a key whose use counter (meta tag 90) is spent answers
// 6A84; an algorithm missing from its allowed list (meta tag 91) 6985.
func (d *Device) opKey(ref, alg byte, device bool) (*key, uint16) {
	if !d.sess.UserAuth {
		return nil, apdu.SWSecurityStatus
	}
	k, ok := d.st.Keys[ref]
	if !ok || (ref == 0 && !device) {
		return nil, apdu.SWFileNotFound
	}
	if n, ok := k.counter(); ok && n == 0 {
		return nil, apdu.SWFileFull
	}
	if k.HasAllowed && bytes.IndexByte(k.Allowed, alg) < 0 {
		return nil, apdu.SWConditionsNotSatisfied
	}
	return k, apdu.SWOK
}

// counter is the key's use counter, meta tag 90 (4 bytes), if it has one.
func (k *key) counter() (uint32, bool) {
	v, ok := tlvValue(k.Meta, 0x90)
	if !ok || len(v) != 4 {
		return 0, false
	}
	return uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3]), true
}

// used counts one use of the key down (sc_hsm.c decrement_key_counter),
// after an operation that succeeded.
func (d *Device) used(k *key) {
	n, ok := k.counter()
	if !ok {
		return
	}
	n--
	for b := k.Meta; len(b) >= 2; {
		l, hl, ok := berLen(b[1:])
		if !ok || 1+hl+l > len(b) {
			return
		}
		if b[0] == 0x90 && l == 4 {
			v := b[1+hl:]
			v[0], v[1], v[2], v[3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
			d.flashDirty = true
			return
		}
		b = b[1+hl+l:]
	}
}

// cmdSign implements SIGNATURE (80 68 ref alg, pico-hsm cmd_signature.c):
// the key checks of opKey, then by algorithm:
//
//   - 31 to 35 hash the data with SHA-1, SHA-224, SHA-256, SHA-384 or
//     SHA-512 and sign with PKCS#1 v1.5; 41 to 45 hash it and sign with
//     PSS.
//
//   - 30 takes a DigestInfo and signs it with PKCS#1 v1.5; a DigestInfo of
//     another prefix answers 6400.
//
//   - Every other RSA algorithm (20 to 45) looks for a DigestInfo in the
//     data: found, its hash is signed with its hash algorithm, with PSS for
//     40 to 45 and PKCS#1 v1.5 otherwise. So 40 with a DigestInfo signs
//     its hash with PSS (transcripts/differential/fw-p3.txt [1614], where
//     OpenSC sends RSA-PSS that way). Without one, 40 signs data of 20,
//     28, 32, 48 or 64 bytes as that hash with PSS, and anything else is
//     the raw RSA operation on the data padded with zeros after it to the
//     modulus length (6400 when that is not below the modulus).
//
//   - 70 signs the data as a hash with ECDSA; 71 to 75 hash it with SHA-1,
//     SHA-224, SHA-256, SHA-384 or SHA-512 first. The answer is DER.
//
//   - A0 signs with a key derived by BIP/SLIP (80 4A), which the simulator
//     never holds: 6985.
//
// An RSA algorithm on an EC key, or the reverse, answers 6400; any other
// algorithm 6A86. An RSA signature is answered whole whatever Le says.
func (d *Device) cmdSign(c apdu.Command) ([]byte, uint16) {
	k, status := d.opKey(c.P1, c.P2, true)
	if status != apdu.SWOK {
		return nil, status
	}
	alg, data := c.P2, c.Data
	var out []byte
	var err error
	switch {
	case alg >= algRSARaw && alg <= algRSAPSSSHA512:
		if k.Kind != "rsa" {
			return nil, apdu.SWExecError
		}
		out, err = d.signRSA(k, alg, data)
	case alg >= algECDSA && alg <= algECDSA+5:
		if k.Kind != "ec" {
			return nil, apdu.SWExecError
		}
		digest := data
		if alg > algECDSA {
			h, _ := hashFor(alg - algECDSA - 1)
			h.Write(data)
			digest = h.Sum(nil)
		}
		out, err = d.signECDSA(k, digest)
	case alg == algHD:
		return nil, apdu.SWConditionsNotSatisfied
	default:
		return nil, apdu.SWWrongP1P2
	}
	if err != nil {
		return nil, apdu.SWExecError
	}
	d.used(k)
	return out, apdu.SWOK
}

func (d *Device) signRSA(k *key, alg byte, data []byte) ([]byte, error) {
	priv := k.rsaPrivate()
	var md crypto.Hash
	switch {
	case alg >= algRSAPKCS1SHA1 && alg <= algRSAPKCS1SHA1+4:
		_, md = hashFor(alg - algRSAPKCS1SHA1)
	case alg >= algRSAPSSSHA1 && alg <= algRSAPSSSHA512:
		_, md = hashFor(alg - algRSAPSSSHA1)
	}
	if md != 0 {
		h := md.New()
		h.Write(data)
		data = h.Sum(nil)
	}
	hash := data
	pss := alg >= algRSAPSS
	if alg == algRSAPKCS1 {
		dmd, h, ok := stripDigestInfo(data)
		if !ok {
			return nil, errors.New("no DigestInfo")
		}
		md, hash = dmd, h
	} else {
		oid, h := digestInfoParts(data)
		if h != nil {
			hash = h
		}
		if dmd := digestByOID(oid); dmd != 0 {
			md = dmd
		}
		if alg == algRSAPSS && len(oid) == 0 {
			md = hashByLen(len(data))
		}
	}
	switch {
	case md == 0:
		return rawRSA(priv, data)
	case pss:
		return rsa.SignPSS(d.rand, priv, md, hash, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.SignPKCS1v15(nil, priv, md, hash)
}

// rawRSA is the RSA private operation on data padded with zeros after it
// to the modulus length (cmd_signature.c, cmd_decrypt_asym.c): longer data
// is cut there, and an input not below the modulus fails.
func rawRSA(priv *rsa.PrivateKey, data []byte) ([]byte, error) {
	n := (priv.N.BitLen() + 7) / 8
	in := make([]byte, n)
	copy(in, data)
	m := new(big.Int).SetBytes(in)
	if m.Cmp(priv.N) >= 0 {
		return nil, errors.New("input not below the modulus")
	}
	return new(big.Int).Exp(m, priv.D, priv.N).FillBytes(make([]byte, n)), nil
}

func (d *Device) signECDSA(k *key, digest []byte) ([]byte, error) {
	curve := ecc.ByName(k.Curve)
	if curve == nil {
		return nil, errors.New("unknown curve")
	}
	r, s, err := curve.Sign(d.rand, k.D, digest)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// digestInfoPrefixes are the DigestInfo headers cmd_signature.c strips for
// algorithm 30 (taken from OpenSC there), with the hash length after them.
var digestInfoPrefixes = []struct {
	md     crypto.Hash
	prefix []byte
}{
	{crypto.MD5, []byte{0x30, 0x20, 0x30, 0x0c, 0x06, 0x08, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x05, 0x05, 0x00, 0x04, 0x10}},
	{crypto.SHA1, []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14}},
	{crypto.SHA256, []byte{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20}},
	{crypto.SHA384, []byte{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30}},
	{crypto.SHA512, []byte{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40}},
	{crypto.SHA224, []byte{0x30, 0x2d, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x04, 0x05, 0x00, 0x04, 0x1c}},
	{crypto.RIPEMD160, []byte{0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x24, 0x03, 0x02, 0x01, 0x05, 0x00, 0x04, 0x14}},
}

// stripDigestInfo is cmd_signature.c pkcs1_strip_digest_info_prefix: the
// data must be one of the known prefixes and a hash of its length.
func stripDigestInfo(data []byte) (crypto.Hash, []byte, bool) {
	for _, p := range digestInfoPrefixes {
		if len(data) == len(p.prefix)+int(p.prefix[len(p.prefix)-1]) && bytes.HasPrefix(data, p.prefix) {
			return p.md, data[len(p.prefix):], true
		}
	}
	return 0, nil, false
}

// digestInfoParts is how cmd_signature.c reads a DigestInfo for the
// algorithms other than 30: the first SEQUENCE of the data, the OID in its
// first inner SEQUENCE, and its OCTET STRING, each nil when missing.
func digestInfoParts(data []byte) (oid, hash []byte) {
	seq, ok := tlvValue(data, 0x30)
	if !ok || len(seq) == 0 {
		return nil, nil
	}
	if alg, ok := tlvValue(seq, 0x30); ok && len(alg) > 0 {
		oid, _ = tlvValue(alg, 0x06)
	}
	hash, _ = tlvValue(seq, 0x04)
	return oid, hash
}

// digestByOID maps the OID of a DigestInfo to SHA-1, SHA-224, SHA-256,
// SHA-384 or SHA-512, the ones cmd_signature.c knows; 0 for another.
func digestByOID(oid []byte) crypto.Hash {
	if len(oid) == 0 {
		return 0
	}
	for _, p := range digestInfoPrefixes {
		if p.md == crypto.MD5 || p.md == crypto.RIPEMD160 {
			continue
		}
		// The OID sits at offset 6 of the prefix, after 30 xx 30 xx 06 len.
		if bytes.Equal(oid, p.prefix[6:6+int(p.prefix[5])]) {
			return p.md
		}
	}
	return 0
}

func hashByLen(n int) crypto.Hash {
	switch n {
	case 20:
		return crypto.SHA1
	case 28:
		return crypto.SHA224
	case 32:
		return crypto.SHA256
	case 48:
		return crypto.SHA384
	case 64:
		return crypto.SHA512
	}
	return 0
}
