package keyimport

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrWrongPassword is a password that does not open an encrypted key file:
// a PKCS#12 MAC that does not verify, or a decryption whose padding or
// content does not check out (a damaged file looks the same).
var ErrWrongPassword = errors.New("wrong --key-password")

// maxIterations bounds the key derivation of a file: OpenSSL writes 2048
// (PKCS#12) and 2048 or 600000 (PKCS#8); a file asking for more is more
// likely an attempt to hang the tool.
const maxIterations = 10_000_000

// Object identifiers of password-based encryption.
var (
	oidPBES2        = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}
	oidPBKDF2       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}
	oidPBMAC1       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 14}
	oidScrypt       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}
	oidAES128CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 2}
	oidAES192CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 22}
	oidAES256CBC    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidDESEDE3CBC   = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
	oidDESCBC       = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 7}
	oidPKCS12PBE    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 12, 1} // RFC 7292 appendix C
	oidPKCS5PBES1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5}     // pbeWithMD5AndDES-CBC etc.
	oidHMACWithSHA1 = asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 7}
	oidSHA1         = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512       = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
)

// hmacHash returns the hash of a PRF of PBKDF2 (RFC 8018 appendix
// B.1.2): hmacWithSHA1 to hmacWithSHA512 are 1.2.840.113549.2.7 to .11.
func hmacHash(o asn1.ObjectIdentifier) func() hash.Hash {
	if len(o) != len(oidHMACWithSHA1) || !o[:5].Equal(oidHMACWithSHA1[:5]) {
		return nil
	}
	return map[int]func() hash.Hash{7: sha1.New, 8: sha256.New224, 9: sha256.New, 10: sha512.New384, 11: sha512.New}[o[5]]
}

// digests are the MAC digests of a PKCS#12 MacData (RFC 7292 section 4).
func digest(oid asn1.ObjectIdentifier) func() hash.Hash {
	switch {
	case oid.Equal(oidSHA1):
		return sha1.New
	case oid.Equal(oidSHA256):
		return sha256.New
	case oid.Equal(oidSHA384):
		return sha512.New384
	case oid.Equal(oidSHA512):
		return sha512.New
	}
	return nil
}

// pbkdf2 is PBKDF2 of RFC 8018 section 5.2 over a password kept as bytes,
// so that the caller can wipe it (crypto/pbkdf2 takes a string).
func pbkdf2(h func() hash.Hash, password, salt []byte, iter, keyLen int) []byte {
	prf := hmac.New(h, password)
	hLen := prf.Size()
	out := make([]byte, 0, (keyLen+hLen-1)/hLen*hLen)
	var u, t []byte
	var ctr [4]byte
	for block := uint32(1); len(out) < keyLen; block++ {
		binary.BigEndian.PutUint32(ctr[:], block)
		prf.Reset()
		prf.Write(salt)
		prf.Write(ctr[:])
		u = prf.Sum(u[:0])
		t = append(t[:0], u...)
		for n := 1; n < iter; n++ {
			prf.Reset()
			prf.Write(u)
			u = prf.Sum(u[:0])
			subtle.XORBytes(t, t, u)
		}
		out = append(out, t...)
	}
	clear(u)
	clear(t)
	clear(out[keyLen:cap(out)])
	return out[:keyLen]
}

// pkcs12KDF is the key derivation of RFC 7292 appendix B.2 for purpose id
// (1 key, 2 IV, 3 MAC key); password is the BMPString form (bmpPassword).
func pkcs12KDF(h func() hash.Hash, id byte, password, salt []byte, iter, n int) []byte {
	d := h()
	u, v := d.Size(), d.BlockSize()
	fill := func(s []byte) []byte {
		if len(s) == 0 {
			return nil
		}
		out := make([]byte, (len(s)+v-1)/v*v)
		for i := range out {
			out[i] = s[i%len(s)]
		}
		return out
	}
	i := append(fill(salt), fill(password)...)
	defer clear(i)
	diversifier := make([]byte, v)
	for k := range diversifier {
		diversifier[k] = id
	}
	var a []byte
	b := make([]byte, v)
	defer clear(b)
	for len(a) < n {
		d.Reset()
		d.Write(diversifier)
		d.Write(i)
		ai := d.Sum(nil)
		for r := 1; r < iter; r++ {
			d.Reset()
			d.Write(ai)
			ai = d.Sum(ai[:0])
		}
		a = append(a, ai...)
		if len(a) >= n {
			clear(ai)
			break
		}
		for k := range b {
			b[k] = ai[k%u]
		}
		clear(ai)
		// I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block of I.
		for j := 0; j < len(i); j += v {
			carry := uint16(1)
			for k := v - 1; k >= 0; k-- {
				s := uint16(i[j+k]) + uint16(b[k]) + carry
				i[j+k] = byte(s)
				carry = s >> 8
			}
		}
	}
	clear(a[n:])
	return a[:n]
}

// bmpPassword is the password as PKCS#12's KDF takes it: UTF-16 big
// endian with two zero bytes at the end (RFC 7292 appendix B.1); an empty
// password is the two zero bytes.
func bmpPassword(pw []byte) ([]byte, error) {
	if !utf8.Valid(pw) {
		return nil, errors.New("the password is not UTF-8")
	}
	out := make([]byte, 0, 2*len(pw)+2)
	for s := pw; len(s) > 0; {
		r, n := utf8.DecodeRune(s)
		s = s[n:]
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			out = append(out, byte(r1>>8), byte(r1), byte(r2>>8), byte(r2))
		} else {
			out = append(out, byte(r>>8), byte(r))
		}
	}
	return append(out, 0, 0), nil
}

// pbkdf2Params is PBKDF2-params of RFC 8018 appendix A.2; the salt is
// kept raw since otherSource is a CHOICE we refuse.
type pbkdf2Params struct {
	Salt      asn1.RawValue
	Iter      int
	KeyLength int                      `asn1:"optional"`
	PRF       pkix.AlgorithmIdentifier `asn1:"optional"`
}

// derive runs the PBKDF2 an AlgorithmIdentifier names; keyLen 0 takes
// the parameters' keyLength.
func derive(kdf pkix.AlgorithmIdentifier, password []byte, keyLen int) ([]byte, error) {
	if kdf.Algorithm.Equal(oidScrypt) {
		return nil, fmt.Errorf("%w: the key file is encrypted with scrypt; re-encrypt it with PBKDF2 (openssl pkcs8 -topk8 -v2 aes-256-cbc)", ErrUnsupported)
	}
	if !kdf.Algorithm.Equal(oidPBKDF2) {
		return nil, fmt.Errorf("%w: key derivation %s (only PBKDF2 is supported)", ErrUnsupported, kdf.Algorithm)
	}
	var p pbkdf2Params
	if err := unmarshalAll(kdf.Parameters.FullBytes, &p); err != nil || p.Salt.Tag != asn1.TagOctetString {
		return nil, fmt.Errorf("%w: malformed PBKDF2 parameters", ErrUnsupported)
	}
	h := sha1.New
	if len(p.PRF.Algorithm) > 0 {
		o := p.PRF.Algorithm
		if h = hmacHash(o); h == nil {
			return nil, fmt.Errorf("%w: PBKDF2 with PRF %s (supported: HMAC with SHA-1, SHA-224, SHA-256, SHA-384, SHA-512)", ErrUnsupported, o)
		}
	}
	if keyLen == 0 {
		keyLen = p.KeyLength
	} else if p.KeyLength != 0 && p.KeyLength != keyLen {
		return nil, fmt.Errorf("%w: PBKDF2 key length %d for a %d-byte key", ErrUnsupported, p.KeyLength, keyLen)
	}
	if err := checkIter(p.Iter); err != nil {
		return nil, err
	}
	if keyLen <= 0 || keyLen > 64 {
		return nil, fmt.Errorf("%w: PBKDF2 key length %d", ErrUnsupported, keyLen)
	}
	return pbkdf2(h, password, p.Salt.Bytes, p.Iter, keyLen), nil
}

func checkIter(n int) error {
	if n < 1 || n > maxIterations {
		return fmt.Errorf("%w: an iteration count of %d (1 to %d)", ErrUnsupported, n, maxIterations)
	}
	return nil
}

type pbes2Params struct {
	KDF pkix.AlgorithmIdentifier
	Enc pkix.AlgorithmIdentifier
}

type pkcs12PBEParams struct {
	Salt []byte
	Iter int
}

// decrypt opens data encrypted with algorithm alg and a password:
//
//   - PBES2 (RFC 8018 section 6.2) with PBKDF2 and AES-128/192/256-CBC,
//     DES-EDE3-CBC or DES-CBC; the password is used as given (UTF-8), as
//     OpenSSL does, also inside PKCS#12;
//   - the PKCS#12 PBES1 schemes of RFC 7292 appendix C with SHA-1:
//     3-key and 2-key triple DES, 128-bit and 40-bit RC2; their KDF takes
//     the password as a BMPString.
//
// A padding that does not check out is ErrWrongPassword.
func decrypt(alg pkix.AlgorithmIdentifier, password, data []byte) ([]byte, error) {
	var block cipher.Block
	var iv []byte
	switch {
	case alg.Algorithm.Equal(oidPBES2):
		var p pbes2Params
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("%w: malformed PBES2 parameters", ErrUnsupported)
		}
		var keyLen int
		var newCipher func([]byte) (cipher.Block, error)
		switch e := p.Enc.Algorithm; {
		case e.Equal(oidAES128CBC):
			keyLen, newCipher = 16, aes.NewCipher
		case e.Equal(oidAES192CBC):
			keyLen, newCipher = 24, aes.NewCipher
		case e.Equal(oidAES256CBC):
			keyLen, newCipher = 32, aes.NewCipher
		case e.Equal(oidDESEDE3CBC):
			keyLen, newCipher = 24, des.NewTripleDESCipher
		case e.Equal(oidDESCBC):
			keyLen, newCipher = 8, des.NewCipher
		default:
			return nil, fmt.Errorf("%w: PBES2 with cipher %s (supported: AES-128, -192 and -256-CBC, DES-EDE3-CBC, DES-CBC)", ErrUnsupported, e)
		}
		if err := unmarshalAll(p.Enc.Parameters.FullBytes, &iv); err != nil {
			return nil, fmt.Errorf("%w: malformed PBES2 cipher parameters", ErrUnsupported)
		}
		key, err := derive(p.KDF, password, keyLen)
		if err != nil {
			return nil, err
		}
		block, err = newCipher(key)
		clear(key)
		if err != nil {
			return nil, err
		}
	case len(alg.Algorithm) == 8 && alg.Algorithm[:7].Equal(oidPKCS12PBE):
		var p pkcs12PBEParams
		if err := unmarshalAll(alg.Parameters.FullBytes, &p); err != nil {
			return nil, fmt.Errorf("%w: malformed PKCS#12 PBE parameters", ErrUnsupported)
		}
		if err := checkIter(p.Iter); err != nil {
			return nil, err
		}
		bmp, err := bmpPassword(password)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWrongPassword, err)
		}
		defer clear(bmp)
		keyLen := map[int]int{3: 24, 4: 16, 5: 16, 6: 5}[alg.Algorithm[7]]
		if keyLen == 0 {
			return nil, fmt.Errorf("%w: PKCS#12 encryption %s (RC4 is not supported; re-export the file with openssl pkcs12 -export)", ErrUnsupported, alg.Algorithm)
		}
		key := pkcs12KDF(sha1.New, 1, bmp, p.Salt, p.Iter, keyLen)
		defer clear(key)
		iv = pkcs12KDF(sha1.New, 2, bmp, p.Salt, p.Iter, 8)
		switch alg.Algorithm[7] {
		case 3:
			block, err = des.NewTripleDESCipher(key)
		case 4:
			k3 := append(append([]byte{}, key...), key[:8]...)
			block, err = des.NewTripleDESCipher(k3)
			clear(k3)
		default:
			block = newRC2(key, 8*keyLen)
		}
		if err != nil {
			return nil, err
		}
	case len(alg.Algorithm) == 7 && alg.Algorithm[:6].Equal(oidPKCS5PBES1):
		return nil, fmt.Errorf("%w: PKCS#5 v1.5 encryption %s (MD5 or SHA-1 with DES or RC2); re-encrypt the key with openssl pkcs8 -topk8 -v2 aes-256-cbc", ErrUnsupported, alg.Algorithm)
	default:
		return nil, fmt.Errorf("%w: encryption %s", ErrUnsupported, alg.Algorithm)
	}
	bs := block.BlockSize()
	if len(iv) != bs || len(data) == 0 || len(data)%bs != 0 {
		return nil, ErrWrongPassword
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, data)
	// PKCS#5 padding (RFC 8018 section 6.1.1 step 4).
	pad := int(out[len(out)-1])
	if pad == 0 || pad > bs {
		clear(out)
		return nil, ErrWrongPassword
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			clear(out)
			return nil, ErrWrongPassword
		}
	}
	clear(out[len(out)-pad:])
	return out[:len(out)-pad], nil
}

// unmarshalAll is asn1.Unmarshal that refuses trailing bytes.
func unmarshalAll(b []byte, v any) error {
	rest, err := asn1.Unmarshal(b, v)
	if err == nil && len(rest) != 0 {
		err = errors.New("trailing data")
	}
	return err
}
