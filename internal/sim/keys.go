package sim

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"io"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// devName is the device's CHR, the holder of its certificate in 2F02
// (transcripts/errors/p01 [7]); CV requests name it as outer CAR.
var devName = []byte("ESPICOHSMTR00001")

// devKeyD is the device-authentication key of the emulator: the secp256k1
// key the firmware derives from its fixed emulated OTP key (32 bytes 0xBE;
// pico-keys-sdk otp_emulation.c). Its public key is the one recorded in
// 2F02 and CE00, so the recorded certificates match it.
var devKeyD = bytes.Repeat([]byte{0xBE}, 32)

// Algorithm identifiers (pico-hsm sc_hsm.h ALGO_*).
const (
	algRSARaw       = 0x20
	algRSADecrypt   = 0x21
	algRSAPKCS1     = 0x30
	algRSAPKCS1SHA1 = 0x31
	algRSAPSS       = 0x40
	algECDSA        = 0x70
	algWrap         = 0x92
	algUnwrap       = 0x93
)

// storedSize is the size of the key file, what its FCP shows: the length
// of the key as store_keys writes it (stored).
func (k *key) storedSize() int { return len(k.stored()) }

// installDeviceKey creates key reference 0 and its files as INITIALIZE does
// on a device without one: the key, its PRKD (C400), its CV request (CE00)
// and the device certificate chain (2F02), as recorded from the emulator.
func (d *Device) installDeviceKey() {
	c := ecc.ByName("secp256k1")
	pub, err := c.PublicKey(devKeyD)
	if err != nil {
		panic("sim: device key: " + err.Error())
	}
	d.st.Keys[0] = &key{Kind: "ec", Curve: c.Name, D: devKeyD, Pub: pub}
	d.st.Files[fidKey(fidDevPRKD)] = devKeyPRKD
	d.st.Files[fidKey(fidDevEE)] = devKeyCert
	d.st.Files[fidKey(fidDevCert)] = efDevCert
}

// keyMeta reads the optional metadata tags of key generation: 91 allowed
// algorithms and 92 key domain (cmd_keypair_gen.c, cmd_key_gen.c).
func keyMeta(data []byte, k *key) {
	for _, tag := range []uint16{0x90, 0x91, 0x92, 0x93} {
		if v, ok := tlvValue2(data, tag); ok {
			k.Meta = append(k.Meta, tlvb(byte(tag), v)...)
		}
	}
	if v, ok := tlvValue2(data, 0x91); ok {
		k.Allowed, k.HasAllowed = bytes.Clone(v), true
	}
	if v, ok := tlvValue2(data, 0x92); ok && len(v) == 1 {
		k.Domain = v[0]
	}
}

// storeKey writes key file CC<ref> and the firmware's own PRKD C4<ref>
// (cvc.c asn1_build_prkd_generic), replacing what was there: the firmware
// never refuses an occupied reference.
func (d *Device) storeKey(ref byte, k *key) {
	d.storeKeyOnly(ref, k)
	d.writePRKD(ref, k)
}

// storeKeyOnly writes key file CC<ref>.
func (d *Device) storeKeyOnly(ref byte, k *key) {
	fid := uint16(prefixKey)<<8 | uint16(ref)
	if _, ok := d.st.Keys[ref]; !ok {
		d.st.Order = append(d.st.Order, fid)
	}
	d.st.Keys[ref] = k
	d.flashPut(fid, k.storedSize())
	d.flashDirty = true
}

// writePRKD writes the firmware's PRKD C4<ref> for k.
func (d *Device) writePRKD(ref byte, k *key) {
	d.writeFile(0xC400|uint16(ref), firmwarePRKD(ref, k))
}

// writeFile writes a whole file, in the simulator's files and in flash.
func (d *Device) writeFile(fid uint16, b []byte) {
	if _, ok := d.st.Files[fidKey(fid)]; !ok {
		d.st.Order = append(d.st.Order, fid)
	}
	d.st.Files[fidKey(fid)] = b
	d.flashPut(fid, len(b))
}

// firmwarePRKD is the minimal PKCS#15 private key description the firmware
// writes at key generation and unwrap (cvc.c asn1_build_prkd_generic): an
// empty label, the key reference in ASCII decimal as ID, a usage, and the
// size. For RSA ref 1: 30 19 30 02 0C 00 30 07 04 01 31 03 02 02 74 A1 0A
// 30 08 30 02 04 00 02 02 08 00 (27 bytes, the size recorded in
// transcripts/other/12 after generation).
func firmwarePRKD(ref byte, k *key) []byte {
	id := []byte(itoa(int(ref)))
	label := []byte{0x30, 0x02, 0x0C, 0x00}
	var tag byte
	var usage []byte
	var attrs []byte
	bits := k.bits()
	switch k.Kind {
	case "rsa":
		tag, usage = 0x30, []byte{0x03, 0x02, 0x02, 0x74}
		attrs = tlvb(0xA1, tlvb(0x30, append(tlvb(0x30, []byte{0x04, 0x00}), intTLV(bits)...)))
	case "ec":
		tag, usage = 0xA0, []byte{0x03, 0x03, 0x07, 0x20, 0x80}
		attrs = tlvb(0xA1, tlvb(0x30, append(tlvb(0x30, []byte{0x04, 0x00}), intTLV(bits)...)))
	default:
		tag, usage = 0xA8, []byte{0x03, 0x03, 0x07, 0xC0, 0x10}
		attrs = append(tlvb(0xA0, tlvb(0x30, intTLV(bits))), tlvb(0xA1, tlvb(0x30, tlvb(0x30, []byte{0x04, 0x00})))...)
	}
	common := tlvb(0x30, append(tlvb(0x04, id), usage...))
	body := append(append(append([]byte{}, label...), common...), attrs...)
	return tlvb(tag, body)
}

func (k *key) bits() int {
	switch k.Kind {
	case "rsa":
		return 8 * (len(k.P) + len(k.Q))
	case "ec":
		return 8 * len(k.D)
	}
	return 8 * len(k.Secret)
}

// cmdKeyPairGen implements GENERATE ASYMMETRIC KEY PAIR (00 46 ref P2,
// pico-hsm cmd_keypair_gen.c). The data is the body of a CV certificate
// request (5F29, 42 CAR, 7F49 public key template, 5F20 CHR) plus optional
// metadata tags. The template's OID chooses the algorithm: RSA with key
// size 02 and exponent 82, or ECDSA on the curve whose prime is in 81 (an
// unknown prime answers 6A81). The answer is the device-signed CV request,
// which is also stored in CE<ref>; the key goes to CC<ref> with the
// firmware's PRKD in C4<ref>. Recorded: transcripts/other/12 and 13.
func (d *Device) cmdKeyPairGen(c apdu.Command) ([]byte, uint16) {
	if !d.sess.UserAuth {
		return nil, apdu.SWSecurityStatus
	}
	ref := c.P1
	tmpl, ok := tlvValue2(c.Data, 0x7F49)
	if !ok || len(tmpl) == 0 {
		return nil, apdu.SWWrongLength
	}
	if !d.hasSession() {
		return nil, apdu.SWExecError
	}
	oid, _ := tlvValue2(tmpl, 0x06)
	k := &key{}
	keyMeta(c.Data, k)
	switch {
	case bytes.Equal(oid, wrap.OIDRSA):
		bits := 2048
		if v, ok := tlvValue2(tmpl, 0x02); ok && len(v) > 0 && len(v) <= 2 {
			bits = int(new(big.Int).SetBytes(v).Int64())
		}
		e := 65537
		if v, ok := tlvValue2(tmpl, 0x82); ok && len(v) > 0 && len(v) <= 4 {
			e = int(new(big.Int).SetBytes(v).Int64())
		}
		if bits < 1024 || bits > 4096 || bits%8 != 0 || e < 3 || e%2 == 0 {
			return nil, apdu.SWExecError
		}
		priv, err := generateRSA(d.rand, bits, e)
		if err != nil {
			return nil, apdu.SWExecError
		}
		*k = rsaKey(priv, k)
	case len(oid) >= 10 && bytes.Equal(oid[:10], wrap.OIDEC):
		p, ok := tlvValue2(tmpl, 0x81)
		if !ok {
			return nil, apdu.SWWrongLength
		}
		curve := ecc.ByPrime(p)
		if curve == nil {
			return nil, apdu.SWFuncNotSupported
		}
		dd, pub, err := curve.GenerateKey(d.rand)
		if err != nil {
			return nil, apdu.SWExecError
		}
		k.Kind, k.Curve, k.D, k.Pub = "ec", curve.Name, dd, pub
	default:
		// The firmware generates nothing for another OID, but still
		// writes an empty CE file and answers 9000 without data.
		d.writeFile(0xCE00|uint16(ref), []byte{})
		d.flashDirty = true
		return nil, apdu.SWOK
	}
	car, _ := tlvValue2(c.Data, 0x42)
	chr, _ := tlvValue2(c.Data, 0x5F20)
	req, err := d.cvRequest(k, car, chr)
	if err != nil {
		return nil, apdu.SWExecError
	}
	// cmd_keypair_gen.c writes the key and its PRKD (store_keys), the
	// metadata, then the CV request.
	d.storeKey(ref, k)
	if len(k.Meta) > 0 {
		d.flashMeta()
	}
	d.writeFile(0xCE00|uint16(ref), req)
	return req, apdu.SWOK
}

// generateRSA makes an RSA key. Go's generator fixes the public exponent
// at 65537, the only one OpenSC asks for; another answers 6400 like a
// failed generation.
func generateRSA(rnd io.Reader, bits, e int) (*rsa.PrivateKey, error) {
	if e != 65537 {
		return nil, errors.New("only the public exponent 65537 is supported")
	}
	return rsa.GenerateKey(rnd, bits)
}

func rsaKey(priv *rsa.PrivateKey, meta *key) key {
	k := *meta
	k.Kind = "rsa"
	k.N, k.E = priv.N.Bytes(), big.NewInt(int64(priv.E)).Bytes()
	k.P, k.Q = priv.Primes[0].Bytes(), priv.Primes[1].Bytes()
	k.D = firmwareD(priv.Primes[0], priv.Primes[1], priv.E).Bytes()
	return k
}

// firmwareD is the private exponent as mbedtls computes it and the Pico HSM
// exports it: e^-1 mod lcm(p-1, q-1) (verified on vectors/wrap-key-rsa2048).
func firmwareD(p, q *big.Int, e int) *big.Int {
	one := big.NewInt(1)
	p1 := new(big.Int).Sub(p, one)
	q1 := new(big.Int).Sub(q, one)
	g := new(big.Int).GCD(nil, nil, p1, q1)
	l := new(big.Int).Div(new(big.Int).Mul(p1, q1), g)
	return new(big.Int).ModInverse(big.NewInt(int64(e)), l)
}

// cvRequest builds the authenticated CV certificate request the firmware
// answers to key generation and stores in CE<ref> (pico-hsm cvc.c
// asn1_cvc_aut):
//
//	67 { 7F21 { 7F4E { 5F29 00, 42 CAR, 7F49 public key, 5F20 CHR },
//	            5F37 signature by the new key over the 7F4E TLV },
//	     42 device CHR, 5F37 ECDSA-SHA-256 by the device key over 7F21 || 42 }
//
// CAR and CHR default to the device's name. Signatures are raw r||s for EC
// and PKCS#1 v1.5 with SHA-256 for RSA.
func (d *Device) cvRequest(k *key, car, chr []byte) ([]byte, error) {
	if len(car) == 0 {
		car = devName
	}
	if len(chr) == 0 {
		chr = devName
	}
	pk, err := cvPublicKey(k)
	if err != nil {
		return nil, err
	}
	body := tlv2(0x5F29, []byte{0x00})
	body = append(body, tlvb(0x42, car)...)
	body = append(body, pk...)
	body = append(body, tlv2(0x5F20, chr)...)
	inner := tlv2(0x7F4E, body)
	sig, err := d.signWith(k, inner)
	if err != nil {
		return nil, err
	}
	aut := tlv2(0x7F21, append(inner, tlv2(0x5F37, sig)...))
	outerCAR := tlvb(0x42, devName)
	dev := d.st.Keys[0]
	if dev == nil {
		return nil, errors.New("no device key")
	}
	osig, err := d.signWith(dev, append(bytes.Clone(aut), outerCAR...))
	if err != nil {
		return nil, err
	}
	out := append(aut, outerCAR...)
	out = append(out, tlv2(0x5F37, osig)...)
	return tlvb(0x67, out), nil
}

// cvPublicKey is the 7F49 public key of a CV request: RSA { 06 OID, 81 N,
// 82 E }; EC { 06 OID, 81 P, 82 A, 83 B, 84 G, 85 order, 86 Q, 87 cofactor }
// with P, A and the order at full length, A as one zero byte when it is 0,
// and B at its minimal length: 65 bytes for secp521r1, whose b starts with
// a zero byte, and the single byte 07 for secp256k1
// (transcripts/differential/fw-p3.txt [295], [456]).
func cvPublicKey(k *key) ([]byte, error) {
	switch k.Kind {
	case "rsa":
		b := tlvb(0x06, wrap.OIDRSA)
		b = append(b, tlvb(0x81, k.N)...)
		b = append(b, tlvb(0x82, k.E)...)
		return tlv2(0x7F49, b), nil
	case "ec":
		c := ecc.ByName(k.Curve)
		if c == nil {
			return nil, errors.New("unknown curve")
		}
		n := c.ByteLen()
		a := []byte{0}
		if c.A.Sign() != 0 {
			a = c.A.FillBytes(make([]byte, n))
		}
		b := tlvb(0x06, wrap.OIDEC)
		b = append(b, tlvb(0x81, c.P.FillBytes(make([]byte, n)))...)
		b = append(b, tlvb(0x82, a)...)
		b = append(b, tlvb(0x83, c.B.Bytes())...)
		b = append(b, tlvb(0x84, c.Marshal(c.Gx, c.Gy))...)
		b = append(b, tlvb(0x85, c.N.FillBytes(make([]byte, c.ScalarLen())))...)
		b = append(b, tlvb(0x86, k.Pub)...)
		b = append(b, tlvb(0x87, []byte{byte(c.H)})...)
		return tlv2(0x7F49, b), nil
	}
	return nil, errors.New("no public key for a secret key")
}

// signWith signs msg with SHA-256: PKCS#1 v1.5 for RSA, raw r||s for EC.
func (d *Device) signWith(k *key, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	switch k.Kind {
	case "rsa":
		return rsa.SignPKCS1v15(nil, k.rsaPrivate(), crypto.SHA256, h[:])
	case "ec":
		c := ecc.ByName(k.Curve)
		r, s, err := c.Sign(d.rand, k.D, h[:])
		if err != nil {
			return nil, err
		}
		n := c.ScalarLen()
		return append(r.FillBytes(make([]byte, n)), s.FillBytes(make([]byte, n))...), nil
	}
	return nil, errors.New("cannot sign with a secret key")
}

func (k *key) rsaPrivate() *rsa.PrivateKey {
	p := new(big.Int).SetBytes(k.P)
	q := new(big.Int).SetBytes(k.Q)
	priv := &rsa.PrivateKey{
		PublicKey: rsa.PublicKey{N: new(big.Int).SetBytes(k.N), E: int(new(big.Int).SetBytes(k.E).Int64())},
		D:         new(big.Int).SetBytes(k.D),
		Primes:    []*big.Int{p, q},
	}
	priv.Precompute()
	return priv
}

// cmdKeyGen implements GENERATE SYMMETRIC KEY (80 48 ref P2, pico-hsm
// cmd_key_gen.c): an AES key of 16 (P2 B0), 24 (B1) or 32 bytes (B2 and
// anything else), with optional metadata tags in the data.
func (d *Device) cmdKeyGen(c apdu.Command) uint16 {
	if !d.sess.UserAuth {
		return apdu.SWSecurityStatus
	}
	n := 32
	switch c.P2 {
	case 0xB0:
		n = 16
	case 0xB1:
		n = 24
	}
	if !d.hasSession() {
		return apdu.SWExecError
	}
	secret, err := randomBytes(d.rand, n)
	if err != nil {
		return apdu.SWMemoryFailure
	}
	k := &key{Kind: "aes", Secret: secret}
	keyMeta(c.Data, k)
	d.storeKey(c.P1, k)
	if len(k.Meta) > 0 {
		d.flashMeta()
	}
	return apdu.SWOK
}

// domainReady reports whether key domain dom has a complete DKEK
// (cmd_key_wrap.c: 6A88 while shares are outstanding or without a DKEK).
func (d *Device) domainReady(dom byte) bool {
	i := 2 * int(dom)
	if i+1 >= len(d.st.KeyDomains) {
		return false
	}
	total, cur := d.st.KeyDomains[i], d.st.KeyDomains[i+1]
	return total != 0 && total != 0xFF && total == cur
}

// cmdWrapKey implements WRAP KEY (80 72 ref 92, pico-hsm cmd_key_wrap.c),
// checking in the firmware's order: P2 (6B00), login (6982), the key
// (6A82; key reference 0, the device key, is not wrappable), the DKEK of
// its domain (6A88 while shares are outstanding or without a DKEK), the
// WRAP purpose in its allowed algorithms (6985), its PRKD (6A82). The
// answer is the key blob under the DKEK (see package wrap).
func (d *Device) cmdWrapKey(c apdu.Command) ([]byte, uint16) {
	if c.P2 != algWrap {
		return nil, apdu.SWWrongP1P2Plain
	}
	if !d.sess.UserAuth {
		return nil, apdu.SWSecurityStatus
	}
	k, ok := d.st.Keys[c.P1]
	if !ok || c.P1 == 0 {
		return nil, apdu.SWFileNotFound
	}
	if !d.domainReady(k.Domain) {
		return nil, apdu.SWReferenceNotFound
	}
	if k.HasAllowed && bytes.IndexByte(k.Allowed, algWrap) < 0 {
		return nil, apdu.SWConditionsNotSatisfied
	}
	if _, ok := d.st.Files[fidKey(0xC400|uint16(c.P1))]; !ok {
		return nil, apdu.SWFileNotFound
	}
	dkek, ok := d.loadDKEK(k.Domain)
	if !ok {
		return nil, apdu.SWExecError
	}
	defer clear(dkek)
	wk, err := k.wrapKey()
	if err != nil {
		return nil, apdu.SWExecError
	}
	blob, err := wrap.Seal(dkek, wk, k.Allowed, d.rand)
	if err != nil {
		return nil, apdu.SWExecError
	}
	return blob, apdu.SWOK
}

// wrapKey converts a stored key to blob fields: RSA as D, N, E; EC with
// the curve's A (empty when mbedtls leaves it unset: a = -3 or 0), B, P,
// order, G, D and Q at minimal length; AES raw.
func (k *key) wrapKey() (*wrap.Key, error) {
	switch k.Kind {
	case "rsa":
		return &wrap.Key{Type: wrap.TypeRSA, Bits: 8 * len(k.N), D: k.D, N: k.N, E: k.E}, nil
	case "ec":
		c := ecc.ByName(k.Curve)
		if c == nil {
			return nil, errors.New("unknown curve")
		}
		var a []byte
		if c.A.Sign() != 0 && new(big.Int).Add(c.A, big.NewInt(3)).Cmp(c.P) != 0 {
			a = c.A.Bytes()
		}
		return &wrap.Key{Type: wrap.TypeEC, Bits: 8 * c.ByteLen(), A: a, B: c.B.Bytes(), ECP: c.P.Bytes(),
			ECN: c.N.Bytes(), G: c.Marshal(c.Gx, c.Gy), D: new(big.Int).SetBytes(k.D).Bytes(), ECQ: k.Pub}, nil
	case "aes":
		return &wrap.Key{Type: wrap.TypeAES, Secret: k.Secret}, nil
	}
	return nil, errors.New("unknown key kind")
}

// cmdUnwrapKey implements UNWRAP KEY (80 74 ref 93, pico-hsm
// cmd_key_unwrap.c): P2 (6B00), login (6982), the blob's type byte (6984),
// then the decoding under the DKEK; every decoding failure, a blob made
// under another DKEK included, answers 6400 (transcripts/errors/p09). The
// firmware does not refuse an occupied reference: it replaces the key and
// writes its own PRKD and, for RSA and EC, a new CV request.
func (d *Device) cmdUnwrapKey(c apdu.Command) uint16 {
	if c.P2 != algUnwrap {
		return apdu.SWWrongP1P2Plain
	}
	if !d.sess.UserAuth {
		return apdu.SWSecurityStatus
	}
	if len(c.Data) < 9 {
		return apdu.SWDataInvalid
	}
	switch wrap.KeyType(c.Data[8]) {
	case wrap.TypeRSA, wrap.TypeRSACRT, wrap.TypeEC, wrap.TypeAES:
	default:
		return apdu.SWDataInvalid
	}
	dom, dkek, ok := d.unwrapDomain(c.Data[:8])
	if !ok {
		return apdu.SWExecError
	}
	defer clear(dkek)
	bl, err := wrap.ParseBlob(c.Data)
	if err != nil {
		return apdu.SWExecError
	}
	if !bytes.Equal(bl.AlgorithmOID, defaultOID(bl.Type)) {
		return apdu.SWExecError
	}
	wk, err := bl.Open(dkek)
	if err != nil {
		return apdu.SWExecError
	}
	defer wk.Wipe()
	k, err := keyFromBlob(wk)
	if err != nil {
		return apdu.SWExecError
	}
	if len(bl.Allowed) > 0 {
		k.Allowed, k.HasAllowed = bytes.Clone(bl.Allowed), true
		k.Meta = tlvb(0x91, k.Allowed)
	}
	k.Domain = dom
	k.Meta = append(k.Meta, 0x92, 0x01, dom)
	var req []byte
	if k.Kind != "aes" {
		if req, err = d.cvRequest(k, nil, nil); err != nil {
			return apdu.SWExecError
		}
	}
	// cmd_key_unwrap.c writes the key and its PRKD (store_keys), the
	// metadata (key domain, allowed algorithms), then the CV request.
	d.storeKey(c.P1, k)
	d.flashMeta()
	if req != nil {
		d.writeFile(0xCE00|uint16(c.P1), req)
	}
	return apdu.SWOK
}

// unwrapDomain picks the key domain of a blob as cmd_key_unwrap.c does: it
// tries the domains from 0 up, skipping one without a DKEK file or whose
// DKEK's check value is not the blob's, and takes the first that matches.
// A blob that matches none cannot be unwrapped (6400).
func (d *Device) unwrapDomain(kcv []byte) (dom byte, dkek []byte, ok bool) {
	for dom := range byte(16) {
		dk, ok := d.loadDKEK(dom)
		if !ok {
			continue
		}
		s := sha256.Sum256(dk)
		if bytes.Equal(s[:8], kcv) {
			return dom, dk, true
		}
		clear(dk)
	}
	return 0, nil, false
}

func defaultOID(t wrap.KeyType) []byte {
	switch t {
	case wrap.TypeRSA, wrap.TypeRSACRT:
		return wrap.OIDRSA
	case wrap.TypeEC:
		return wrap.OIDEC
	}
	return wrap.OIDAES
}

// keyFromBlob checks decoded key material as the firmware does before it
// stores it: RSA is re-factored from D, N, E (the device keeps P and Q) and
// must work; the EC curve is found from its prime and d·G must be Q.
func keyFromBlob(wk *wrap.Key) (*key, error) {
	switch wk.Type {
	case wrap.TypeRSA, wrap.TypeRSACRT:
		n := new(big.Int).SetBytes(wk.N)
		e := new(big.Int).SetBytes(wk.E)
		var p, q *big.Int
		if wk.Type == wrap.TypeRSACRT {
			p, q = new(big.Int).SetBytes(wk.P), new(big.Int).SetBytes(wk.Q)
		} else {
			var err error
			if p, q, err = factorRSA(n, e, new(big.Int).SetBytes(wk.D)); err != nil {
				return nil, err
			}
		}
		if new(big.Int).Mul(p, q).Cmp(n) != 0 || !e.IsInt64() {
			return nil, errors.New("inconsistent RSA key")
		}
		k := &key{Kind: "rsa", N: n.Bytes(), E: e.Bytes(), P: p.Bytes(), Q: q.Bytes()}
		k.D = firmwareD(p, q, int(e.Int64())).Bytes()
		if err := k.rsaPrivate().Validate(); err != nil {
			return nil, err
		}
		return k, nil
	case wrap.TypeEC:
		c := ecc.ByPrime(wk.ECP)
		if c == nil {
			return nil, errors.New("unknown curve")
		}
		dd := new(big.Int).SetBytes(wk.D).FillBytes(make([]byte, c.ScalarLen()))
		pub, err := c.PublicKey(dd)
		if err != nil {
			return nil, err
		}
		if len(wk.ECQ) > 0 && !bytes.Equal(pub, wk.ECQ) {
			return nil, errors.New("EC public key does not match the private key")
		}
		return &key{Kind: "ec", Curve: c.Name, D: dd, Pub: pub}, nil
	case wrap.TypeAES:
		return &key{Kind: "aes", Secret: bytes.Clone(wk.Secret)}, nil
	}
	return nil, errors.New("unknown key type")
}

// factorRSA recovers p and q from n, e and d (the standard probabilistic
// method, NIST SP 800-56B rev. 2 appendix C.2).
func factorRSA(n, e, d *big.Int) (*big.Int, *big.Int, error) {
	one := big.NewInt(1)
	k := new(big.Int).Sub(new(big.Int).Mul(e, d), one)
	if k.Sign() <= 0 || k.Bit(0) != 0 {
		return nil, nil, errors.New("bad RSA exponents")
	}
	t := 0
	r := new(big.Int).Set(k)
	for r.Bit(0) == 0 {
		r.Rsh(r, 1)
		t++
	}
	nm1 := new(big.Int).Sub(n, one)
	for g := int64(2); g < 200; g++ {
		y := new(big.Int).Exp(big.NewInt(g), r, n)
		if y.Cmp(one) == 0 || y.Cmp(nm1) == 0 {
			continue
		}
		for i := 1; i <= t; i++ {
			x := new(big.Int).Exp(y, big.NewInt(2), n)
			if x.Cmp(one) == 0 {
				p := new(big.Int).GCD(nil, nil, new(big.Int).Sub(y, one), n)
				q := new(big.Int).Div(n, p)
				if p.Cmp(q) < 0 {
					return q, p, nil
				}
				return p, q, nil
			}
			if x.Cmp(nm1) == 0 {
				break
			}
			y = x
		}
	}
	return nil, nil, errors.New("cannot factor the RSA modulus from its exponents")
}

// hashFor maps the offsets 0..4 of the algorithm families to SHA-1,
// SHA-224, SHA-256, SHA-384 and SHA-512.
func hashFor(i byte) (hash.Hash, crypto.Hash) {
	switch i {
	case 0:
		return sha1.New(), crypto.SHA1
	case 1:
		return sha256.New224(), crypto.SHA224
	case 2:
		return sha256.New(), crypto.SHA256
	case 3:
		return sha512.New384(), crypto.SHA384
	}
	return sha512.New(), crypto.SHA512
}

// tlvb encodes a one-byte-tag TLV with a BER length.
func tlvb(tag byte, v []byte) []byte {
	return append(append([]byte{tag}, berLenBytes(len(v))...), v...)
}

// tlv2 encodes a two-byte-tag TLV with a BER length.
func tlv2(tag uint16, v []byte) []byte {
	return append(append([]byte{byte(tag >> 8), byte(tag)}, berLenBytes(len(v))...), v...)
}

func berLenBytes(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	case n < 0x10000:
		return []byte{0x82, byte(n >> 8), byte(n)}
	}
	return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
}

// tlvValue2 finds a TLV with a one- or two-byte tag at the top level of b.
func tlvValue2(b []byte, tag uint16) ([]byte, bool) {
	for len(b) >= 2 {
		t := uint16(b[0])
		i := 1
		if b[0]&0x1F == 0x1F {
			t = t<<8 | uint16(b[1])
			i = 2
		}
		if len(b) <= i {
			return nil, false
		}
		n, hl, ok := berLen(b[i:])
		if !ok || i+hl+n > len(b) {
			return nil, false
		}
		if t == tag {
			return b[i+hl : i+hl+n], true
		}
		b = b[i+hl+n:]
	}
	return nil, false
}

func intTLV(v int) []byte {
	b := big.NewInt(int64(v)).Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return tlvb(0x02, b)
}

func itoa(v int) string {
	if v == 0 {
		return "0"
	}
	var b []byte
	for v > 0 {
		b = append([]byte{byte('0' + v%10)}, b...)
		v /= 10
	}
	return string(b)
}
