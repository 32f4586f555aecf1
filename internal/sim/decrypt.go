package sim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// cmdDecrypt implements DECRYPT ASYM (80 62 ref alg, pico-hsm
// cmd_decrypt_asym.c) after the key checks of opKey (the device key is
// not found: 6A82):
//
//   - 21 is the raw RSA private operation on the data padded with zeros
//     after it to the modulus length; the answer has the modulus length
//     (transcripts/differential/fw-p3.txt [2374]: pkcs11-tool --decrypt -m
//     RSA-PKCS, which removes the padding itself). 22 removes PKCS#1 v1.5
//     padding, 23 OAEP with SHA-256. A failure answers 6400, so does an EC
//     key.
//   - 80 is ECDH: the data is the other party's public point, its length
//     taken from the byte before the data (the low byte of Lc), as mbedtls
//     reads a TLS point; the answer is 04 and the shared X coordinate
//     (fw-p3.txt [2500]: pkcs11-tool --derive -m ECDH1-DERIVE). A point
//     that does not parse or is not on the curve answers 6984, so does an
//     RSA key. 84 (ECDH into an XKEK key domain) needs a CV certificate
//     from such a domain, which the simulator never has: 6984.
//   - Any other algorithm answers 6B00.
func (d *Device) cmdDecrypt(c apdu.Command) ([]byte, uint16) {
	k, status := d.opKey(c.P1, c.P2, false)
	if status != apdu.SWOK {
		return nil, status
	}
	var out []byte
	switch c.P2 {
	case algRSADecrypt, algRSADecryptPKCS1, algRSADecryptOAEP:
		if k.Kind != "rsa" {
			return nil, apdu.SWExecError
		}
		priv := k.rsaPrivate()
		in := make([]byte, len(k.N))
		copy(in, c.Data)
		var err error
		switch c.P2 {
		case algRSADecrypt:
			out, err = rawRSA(priv, in)
		case algRSADecryptPKCS1:
			out, err = rsa.DecryptPKCS1v15(nil, priv, in)
		default:
			out, err = rsa.DecryptOAEP(sha256.New(), nil, priv, in, nil)
		}
		if err != nil {
			return nil, apdu.SWExecError
		}
	case algECDH:
		if k.Kind != "ec" {
			return nil, apdu.SWDataInvalid
		}
		x, err := sharedX(k, c.Data, len(c.Data)&0xFF)
		if err != nil {
			return nil, apdu.SWDataInvalid
		}
		out = append([]byte{0x04}, x...)
	case algECDHXKEK:
		return nil, apdu.SWDataInvalid
	default:
		return nil, apdu.SWWrongP1P2Plain
	}
	d.used(k)
	return out, apdu.SWOK
}

// sharedX is the shared X coordinate of k and the point in the first n bytes
// of data, at the curve's field length.
func sharedX(k *key, data []byte, n int) ([]byte, error) {
	curve := ecc.ByName(k.Curve)
	if curve == nil || n < 1 || n > len(data) {
		return nil, errors.New("no point")
	}
	x, y, err := curve.Unmarshal(data[:n])
	if err != nil {
		return nil, err
	}
	sx, _ := curve.ScalarMult(x, y, k.D)
	if sx == nil {
		return nil, errors.New("point at infinity")
	}
	return sx.FillBytes(make([]byte, curve.ByteLen())), nil
}

// AES algorithms of CIPHER SYM (sc_hsm.h).
const (
	algAESCBCEncrypt = 0x10
	algAESCBCDecrypt = 0x11
	algAESCMAC       = 0x18
	algExtEncrypt    = 0x51
	algExtDecrypt    = 0x52
	algAESDerive     = 0x99
)

// cmdCipherSym implements CIPHER SYM (80 78 ref alg, pico-hsm
// cmd_cipher_sym.c) after the key checks of opKey (the device key is not
// found: 6A82). The key is decrypted under the MKEK, which needs a PIN or
// SO-PIN session (6400 without). Then:
//
//   - 10 and 11 encrypt and decrypt with AES-CBC and a zero IV; the data
//     must be whole blocks (6700).
//   - 18 is the AES-CMAC of the data (a key of another length: 6A80).
//   - 99 derives as many bytes as the data holds with HKDF-SHA-256 keyed
//     with the key file's content (the key encrypted under the MKEK, as
//     the firmware reads it from flash) and the data as info.
//   - 51 and 52 (the extended ciphers, selected by an OID in the data) are
//     not simulated: without an OID they answer 6A80, as the firmware
//     does, and with one 6A80 too, as for an OID it does not know.
//   - Any other algorithm answers 6B00. A key that is not an AES key fails
//     the AES operations with 6400.
func (d *Device) cmdCipherSym(c apdu.Command) ([]byte, uint16) {
	k, status := d.opKey(c.P1, c.P2, false)
	if status != apdu.SWOK {
		return nil, status
	}
	if !d.hasSession() {
		return nil, apdu.SWExecError
	}
	secret := k.Secret
	switch c.P2 {
	case algAESCBCEncrypt, algAESCBCDecrypt:
		if len(c.Data)%16 != 0 {
			return nil, apdu.SWWrongLength
		}
		blk, err := aes.NewCipher(secret)
		if err != nil || k.Kind != "aes" {
			return nil, apdu.SWExecError
		}
		out := make([]byte, len(c.Data))
		iv := make([]byte, 16)
		if c.P2 == algAESCBCEncrypt {
			cipher.NewCBCEncrypter(blk, iv).CryptBlocks(out, c.Data)
		} else {
			cipher.NewCBCDecrypter(blk, iv).CryptBlocks(out, c.Data)
		}
		return out, apdu.SWOK
	case algAESCMAC:
		blk, err := aes.NewCipher(secret)
		if err != nil || k.Kind != "aes" {
			return nil, apdu.SWWrongData
		}
		return cmac(blk, c.Data), apdu.SWOK
	case algAESDerive:
		if k.Kind != "aes" && k.Kind != "ec" {
			return nil, apdu.SWExecError
		}
		stored := d.mkekCrypt(k.stored(), true)
		out, err := hkdf.Key(sha256.New, stored, nil, string(c.Data), len(c.Data))
		if err != nil {
			return nil, apdu.SWExecError
		}
		return out, apdu.SWOK
	case algExtEncrypt, algExtDecrypt:
		return nil, apdu.SWWrongData
	}
	return nil, apdu.SWWrongP1P2Plain
}

// stored is the plain content of the key file as store_keys writes it
// (pico-hsm sc_hsm.c): RSA P then Q, EC the mbedtls group id and d at its
// minimal length, AES the key.
func (k *key) stored() []byte {
	switch k.Kind {
	case "rsa":
		return append(append([]byte{}, k.P...), k.Q...)
	case "ec":
		c := ecc.ByName(k.Curve)
		return append([]byte{mbedtlsGroupID(c)}, new(big.Int).SetBytes(k.D).Bytes()...)
	}
	return k.Secret
}

// mbedtlsGroupID is mbedtls' mbedtls_ecp_group_id of a curve, the first
// byte of an EC key file.
func mbedtlsGroupID(c *ecc.Curve) byte {
	if c == nil {
		return 0
	}
	return map[string]byte{
		"secp192r1": 1, "secp224r1": 2, "secp256r1": 3, "secp384r1": 4, "secp521r1": 5,
		"brainpoolP256r1": 6, "brainpoolP384r1": 7, "brainpoolP512r1": 8,
		"secp192k1": 10, "secp224k1": 11, "secp256k1": 12,
	}[c.Name]
}

// cmac is AES-CMAC (RFC 4493, NIST SP 800-38B) of msg.
func cmac(blk cipher.Block, msg []byte) []byte {
	sub := func(b []byte) []byte {
		out := make([]byte, 16)
		carry := b[0] >> 7
		for i := 0; i < 15; i++ {
			out[i] = b[i]<<1 | b[i+1]>>7
		}
		out[15] = b[15] << 1
		if carry != 0 {
			out[15] ^= 0x87
		}
		return out
	}
	l := make([]byte, 16)
	blk.Encrypt(l, l)
	k1 := sub(l)
	k2 := sub(k1)
	n := (len(msg) + 15) / 16
	last := make([]byte, 16)
	if n > 0 && len(msg)%16 == 0 {
		copy(last, msg[(n-1)*16:])
		for i := range last {
			last[i] ^= k1[i]
		}
	} else {
		if n == 0 {
			n = 1
		}
		rest := msg[(n-1)*16:]
		copy(last, rest)
		last[len(rest)] = 0x80
		for i := range last {
			last[i] ^= k2[i]
		}
	}
	x := make([]byte, 16)
	for i := 0; i < n-1; i++ {
		for j := 0; j < 16; j++ {
			x[j] ^= msg[i*16+j]
		}
		blk.Encrypt(x, x)
	}
	for j := range x {
		x[j] ^= last[j]
	}
	blk.Encrypt(x, x)
	return x
}

// cmdDeriveAsym implements DERIVE ASYM (80 76 ref dest, pico-hsm
// cmd_derive_asym.c): login (6982), key CC<ref>, the device key included
// (6A82), its use counter (6A84), the purpose 98 in its allowed list
// (6985), data (6700) starting with 98 (6A80); an RSA key fails (6400).
// The new private value is d plus the rest of the data as a number,
// reduced modulo the curve's field prime p, as the firmware does (not
// modulo the order); it is stored as an EC key at dest with the
// firmware's PRKD, and no CV request. The answer is 9000 without data.
func (d *Device) cmdDeriveAsym(c apdu.Command) ([]byte, uint16) {
	if !d.sess.UserAuth {
		return nil, apdu.SWSecurityStatus
	}
	k, ok := d.st.Keys[c.P1]
	if !ok {
		return nil, apdu.SWFileNotFound
	}
	if n, ok := k.counter(); ok && n == 0 {
		return nil, apdu.SWFileFull
	}
	if k.HasAllowed && !containsByte(k.Allowed, algECDerive) {
		return nil, apdu.SWConditionsNotSatisfied
	}
	if len(c.Data) == 0 {
		return nil, apdu.SWWrongLength
	}
	if c.Data[0] != algECDerive {
		return nil, apdu.SWWrongData
	}
	curve := ecc.ByName(k.Curve)
	if k.Kind != "ec" || curve == nil || !d.hasSession() {
		return nil, apdu.SWExecError
	}
	nd := new(big.Int).Add(new(big.Int).SetBytes(k.D), new(big.Int).SetBytes(c.Data[1:]))
	nd.Mod(nd, curve.P)
	// A value from n to p-1, which mbedtls uses as it is, is kept reduced
	// modulo n: the same key for every operation but the export.
	nd.Mod(nd, curve.N)
	dd := nd.FillBytes(make([]byte, curve.ScalarLen()))
	pub, err := curve.PublicKey(dd)
	if err != nil {
		return nil, apdu.SWExecError
	}
	dk := &key{Kind: "ec", Curve: curve.Name, D: dd, Pub: pub}
	d.storeKey(c.P2, dk)
	d.used(k)
	return nil, apdu.SWOK
}

func containsByte(b []byte, x byte) bool {
	for _, v := range b {
		if v == x {
			return true
		}
	}
	return false
}
