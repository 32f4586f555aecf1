// Package keyimport reads a software key (PEM or DER PKCS#1, PKCS#8 and
// SEC 1 private keys, raw AES keys) and seals it into sc-hsm-tool's
// wrapped-key file under a DKEK, so that a device holding that DKEK can
// take it with UNWRAP KEY.
package keyimport

import (
	"bytes"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// Supported says what Parse reads, for error messages.
const Supported = "supported: RSA 1024 to 4096 bits (PKCS#1 or PKCS#8), EC on secp256r1, secp384r1, secp521r1, " +
	"secp256k1, brainpoolP256r1, brainpoolP384r1 or brainpoolP512r1 (SEC 1 or PKCS#8), in PEM or DER, " +
	"and AES-128, -192 or -256 as a file of 16, 24 or 32 bytes or of their hex"

// ErrUnsupported is wrapped by every error about a key Parse does not take.
var ErrUnsupported = errors.New("unsupported key")

// deviceCurves are the curves the Pico HSM generates and unwraps keys on
// (the curves of generate-key).
var deviceCurves = []string{"secp256r1", "secp384r1", "secp521r1", "secp256k1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}

// Key is a software key read by Parse, laid out as a key blob carries it.
type Key struct {
	Wrap *wrap.Key
	// Format names what was read, e.g. "PKCS#8 PEM".
	Format string
	// Curve is the EC curve, nil for RSA and AES.
	Curve *ecc.Curve
	// Encrypted tells that the file needed a password.
	Encrypted bool
	// Cert is the key's X.509 certificate, found with it in a PKCS#12
	// file or a PEM file, or given by SetCertificate; nil if none.
	Cert *Certificate
	// OtherCerts counts the certificates found with the key that are not
	// its own (CA certificates of the chain): they are not stored.
	OtherCerts int
	// FriendlyName is the PKCS#12 friendlyName of the key, "" if none.
	FriendlyName string
}

// passwordFunc supplies the password of an encrypted key file; Parse
// calls it only for a file that needs one. The caller wipes what it
// returns.
type passwordFunc = func() ([]byte, error)

// ErrNeedsPassword is an encrypted key file parsed without a way to get
// its password.
var ErrNeedsPassword = errors.New("the key file is encrypted")

// Kind returns the PKCS#15 kind of k.
func (k *Key) Kind() pkcs15.Kind {
	switch k.Wrap.Type {
	case wrap.TypeRSA:
		return pkcs15.RSA
	case wrap.TypeEC:
		return pkcs15.EC
	}
	return pkcs15.AES
}

// Bits is the key size as the PKCS#15 description records it: the modulus
// size, the field size (521 for P-521) or the AES key size.
func (k *Key) Bits() int {
	switch {
	case k.Wrap.Type == wrap.TypeRSA:
		return new(big.Int).SetBytes(k.Wrap.N).BitLen()
	case k.Curve != nil:
		return k.Curve.BitSize()
	}
	return k.Wrap.Bits
}

// String describes k as list-keys does: "RSA 2048", "EC secp256k1", "AES 256".
func (k *Key) String() string {
	switch {
	case k.Wrap.Type == wrap.TypeRSA:
		return fmt.Sprintf("RSA %d", k.Bits())
	case k.Curve != nil:
		return "EC " + k.Curve.Name
	}
	return fmt.Sprintf("AES %d", k.Bits())
}

// DefaultID is the ID OpenSC derives for a key pair (its intrinsic ID,
// pkcs15-pubkey.c sc_pkcs15_get_object_id): the SHA-1 of the RSA modulus
// or of the uncompressed EC point. AES keys have no public part: 01.
func (k *Key) DefaultID() []byte {
	var h [20]byte
	switch k.Wrap.Type {
	case wrap.TypeRSA:
		h = sha1.Sum(k.Wrap.N)
	case wrap.TypeEC:
		h = sha1.Sum(k.Wrap.ECQ)
	default:
		return []byte{1}
	}
	return h[:]
}

// Wipe zeroes the private parts of k.
func (k *Key) Wipe() {
	if k != nil && k.Wrap != nil {
		k.Wrap.Wipe()
	}
}

// Parse reads an unencrypted private key from data: ParseWithPassword
// with no password.
func Parse(data []byte) (*Key, error) {
	return ParseWithPassword(data, nil)
}

// ParseWithPassword reads a private key from data. PEM is recognised by
// its "-----BEGIN" line, hex by its digits; a file of exactly 16, 24 or
// 32 bytes is a raw AES key; anything else is taken as DER. An encrypted
// PKCS#8 key (PEM "ENCRYPTED PRIVATE KEY" or DER EncryptedPrivateKeyInfo)
// or a PKCS#12 file is opened with the password that password returns;
// it is called only for such a file, and a nil password makes them
// ErrNeedsPassword. A PKCS#12 file's or a PEM file's certificate for the
// key becomes the key's Cert.
func ParseWithPassword(data []byte, password func() ([]byte, error)) (*Key, error) {
	if password == nil {
		password = func() ([]byte, error) {
			return nil, fmt.Errorf("%w: give its password", ErrNeedsPassword)
		}
	}
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		return parsePEM(data, password)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && isHex(t) {
		switch len(t) {
		case 32, 48, 64:
			raw := make([]byte, len(t)/2)
			hex.Decode(raw, t)
			defer clear(raw)
			return aesKey(raw, "hex")
		}
		return nil, fmt.Errorf("%w: %d hex digits are not an AES-128, -192 or -256 key (32, 48 or 64 digits); %s", ErrUnsupported, len(t), Supported)
	}
	switch len(data) {
	case 16, 24, 32:
		return aesKey(data, "raw")
	}
	return parseDER(data, "DER", password)
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func aesKey(raw []byte, format string) (*Key, error) {
	w, err := wrap.AESKey(raw)
	if err != nil {
		return nil, err
	}
	return &Key{Wrap: w, Format: format}, nil
}

func parsePEM(data []byte, password passwordFunc) (*Key, error) {
	rest := data
	var seen []string
	var key *pem.Block
	var certs [][]byte
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		defer clear(b.Bytes)
		seen = append(seen, b.Type)
		switch b.Type {
		case "RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
			if _, enc := b.Headers["DEK-Info"]; enc {
				return nil, fmt.Errorf("%w: a PEM key encrypted with OpenSSL's legacy DEK-Info header; convert it to encrypted PKCS#8 first (openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8); %s", ErrUnsupported, Supported)
			}
			if key == nil {
				key = b
			}
		case "CERTIFICATE":
			certs = append(certs, b.Bytes)
		}
	}
	if key == nil {
		if len(seen) == 0 {
			return nil, fmt.Errorf("%w: the PEM block does not decode; %s", ErrUnsupported, Supported)
		}
		return nil, fmt.Errorf("%w: the file holds %s and no private key; %s", ErrUnsupported, strings.Join(seen, ", "), Supported)
	}
	var k *Key
	var err error
	if key.Type == "ENCRYPTED PRIVATE KEY" {
		k, err = parseEncryptedPKCS8(key.Bytes, "encrypted PKCS#8 PEM", password)
	} else {
		k, err = parseDER(key.Bytes, key.Type+" PEM", nil)
	}
	if err != nil {
		return nil, err
	}
	k.pickCert(certs)
	return k, nil
}

// parseEncryptedPKCS8 decrypts an EncryptedPrivateKeyInfo (RFC 5208
// section 6) with the password and reads the key in it.
func parseEncryptedPKCS8(der []byte, format string, password passwordFunc) (*Key, error) {
	var e encryptedPrivateKeyInfo
	if err := unmarshalAll(der, &e); err != nil {
		return nil, fmt.Errorf("%w: a malformed encrypted PKCS#8 key (%v)", ErrUnsupported, err)
	}
	pw, err := password()
	if err != nil {
		return nil, fmt.Errorf("the encrypted PKCS#8 key needs its password: %w", err)
	}
	defer clear(pw)
	plain, err := decryptPKCS8(der, pw)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	k, err := parsePKCS8(plain, format)
	if err != nil {
		return nil, err
	}
	k.Encrypted = true
	return k, nil
}

// parsePKCS12 opens a PFX (RFC 7292) and reads its one private key, with
// the certificate for it when the file holds one.
func parsePKCS12(der []byte, password passwordFunc) (*Key, error) {
	c, asked, err := openPKCS12(der, func() ([]byte, error) {
		pw, err := password()
		if err != nil {
			return nil, fmt.Errorf("the PKCS#12 file needs its password: %w", err)
		}
		return pw, nil
	})
	if err != nil {
		return nil, err
	}
	defer c.wipe()
	pk, err := c.pickKey()
	if err != nil {
		return nil, err
	}
	k, err := parsePKCS8(pk.der, "PKCS#12")
	if err != nil {
		return nil, err
	}
	k.Encrypted = asked
	k.FriendlyName = pk.name
	var ders [][]byte
	for _, ct := range c.certs {
		ders = append(ders, ct.der)
	}
	k.pickCert(ders)
	return k, nil
}

// Object identifiers Parse knows.
var (
	oidRSA       = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidEC        = asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}
	oidPKCS7Data = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	knownOther   = map[string]string{
		"1.2.840.113549.1.1.10": "an RSASSA-PSS key (restricted to PSS; export it as a plain rsaEncryption key)",
		"1.2.840.10040.4.1":     "a DSA key",
		"1.3.101.110":           "an X25519 key",
		"1.3.101.111":           "an X448 key",
		"1.3.101.112":           "an Ed25519 key",
		"1.3.101.113":           "an Ed448 key",
		"1.2.840.10046.2.1":     "a Diffie-Hellman (X9.42) key",
		"1.2.840.113549.1.3.1":  "a Diffie-Hellman (PKCS#3) key",
		"1.2.156.10197.1.301":   "an SM2 key",
	}
	curveNames = map[string]string{
		"1.2.840.10045.3.1.1": "secp192r1", "1.3.132.0.31": "secp192k1", "1.3.132.0.33": "secp224r1",
		"1.3.132.0.32": "secp224k1", "1.3.36.3.3.2.8.1.1.1": "brainpoolP160r1", "1.3.36.3.3.2.8.1.1.3": "brainpoolP192r1",
		"1.3.36.3.3.2.8.1.1.5": "brainpoolP224r1", "1.3.36.3.3.2.8.1.1.9": "brainpoolP320r1",
	}
)

type pkcs8 struct {
	Version    int
	Algo       pkix.AlgorithmIdentifier
	PrivateKey []byte
	Attributes asn1.RawValue `asn1:"optional,tag:0"`
	PublicKey  asn1.RawValue `asn1:"optional,tag:1"`
}

// ecPrivateKey is SEC 1 (version 2) appendix C.4 ECPrivateKey; the
// parameters are kept raw, since only a namedCurve is taken.
type ecPrivateKey struct {
	Version    int
	PrivateKey []byte
	Parameters asn1.RawValue  `asn1:"optional,explicit,tag:0"`
	PublicKey  asn1.BitString `asn1:"optional,explicit,tag:1"`
}

// parseDER tells the DER structures apart by their shape: PKCS#8
// PrivateKeyInfo (RFC 5208) is INTEGER, SEQUENCE, OCTET STRING; PKCS#1
// RSAPrivateKey (RFC 8017 A.1.2) is nine INTEGERs; SEC 1 ECPrivateKey is
// INTEGER 1, OCTET STRING; EncryptedPrivateKeyInfo starts with a SEQUENCE
// and PKCS#12 PFX (RFC 7292) is INTEGER 3, ContentInfo.
func parseDER(der []byte, format string, password passwordFunc) (*Key, error) {
	var outer asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &outer); err != nil || len(rest) != 0 || outer.Tag != asn1.TagSequence {
		return nil, fmt.Errorf("%w: not PEM, DER, hex or a raw AES key of 16, 24 or 32 bytes (%d bytes); %s", ErrUnsupported, len(der), Supported)
	}
	var first, second asn1.RawValue
	rest, err := asn1.Unmarshal(outer.Bytes, &first)
	if err == nil {
		_, err = asn1.Unmarshal(rest, &second)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: a DER SEQUENCE that is no private key; %s", ErrUnsupported, Supported)
	}
	switch {
	case first.Tag == asn1.TagSequence && second.Tag == asn1.TagOctetString && password != nil:
		return parseEncryptedPKCS8(der, "encrypted PKCS#8 DER", password)
	case first.Tag == asn1.TagInteger && second.Tag == asn1.TagSequence && isPKCS12(second) && password != nil:
		return parsePKCS12(der, password)
	case first.Tag == asn1.TagInteger && second.Tag == asn1.TagSequence:
		return parsePKCS8(der, format)
	case first.Tag == asn1.TagInteger && second.Tag == asn1.TagOctetString:
		return parseSEC1(der, nil, format)
	case first.Tag == asn1.TagInteger && second.Tag == asn1.TagInteger:
		return parsePKCS1(der, format)
	case first.Tag == asn1.TagSequence && second.Tag == asn1.TagSequence, first.Tag == asn1.TagSequence && second.Tag == asn1.TagOctetString:
		return nil, fmt.Errorf("%w: this looks like a certificate or a public key, not a private key; %s", ErrUnsupported, Supported)
	}
	return nil, fmt.Errorf("%w: a DER SEQUENCE that is no private key; %s", ErrUnsupported, Supported)
}

func isPKCS12(ci asn1.RawValue) bool {
	var oid asn1.ObjectIdentifier
	_, err := asn1.Unmarshal(ci.Bytes, &oid)
	return err == nil && oid.Equal(oidPKCS7Data)
}

func parsePKCS8(der []byte, format string) (*Key, error) {
	var p pkcs8
	if _, err := asn1.Unmarshal(der, &p); err != nil {
		return nil, fmt.Errorf("%w: a malformed PKCS#8 key: %v", ErrUnsupported, err)
	}
	defer clear(p.PrivateKey)
	if format == "DER" {
		format = "PKCS#8 DER"
	}
	switch {
	case p.Algo.Algorithm.Equal(oidRSA):
		return parsePKCS1(p.PrivateKey, format)
	case p.Algo.Algorithm.Equal(oidEC):
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(p.Algo.Parameters.FullBytes, &curve); err != nil {
			return nil, fmt.Errorf("%w: an EC key with explicit curve parameters instead of a named curve; %s", ErrUnsupported, Supported)
		}
		return parseSEC1(p.PrivateKey, curve, format)
	}
	what, ok := knownOther[p.Algo.Algorithm.String()]
	if !ok {
		what = "a key of algorithm " + p.Algo.Algorithm.String()
	}
	return nil, fmt.Errorf("%w: %s; %s", ErrUnsupported, what, Supported)
}

func parsePKCS1(der []byte, format string) (*Key, error) {
	if format == "DER" {
		format = "PKCS#1 DER"
	}
	rk, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("%w: an RSA key that does not parse or check out: %v", ErrUnsupported, err)
	}
	defer func() {
		wipeInt(rk.D, rk.Precomputed.Dp, rk.Precomputed.Dq, rk.Precomputed.Qinv)
		wipeInt(rk.Primes...)
	}()
	if n := rk.N.BitLen(); n < 1024 || n > 4096 {
		return nil, fmt.Errorf("%w: RSA %d; the device holds RSA keys of 1024 to 4096 bits; %s", ErrUnsupported, n, Supported)
	}
	w, err := wrap.RSAKey(rk.N, big.NewInt(int64(rk.E)), rk.D)
	if err != nil {
		return nil, err
	}
	return &Key{Wrap: w, Format: format}, nil
}

// parseSEC1 reads an ECPrivateKey; curve is the PKCS#8 algorithm
// parameter, nil when the key stands alone and names its own.
func parseSEC1(der []byte, curve asn1.ObjectIdentifier, format string) (*Key, error) {
	if format == "DER" {
		format = "SEC 1 DER"
	}
	var k ecPrivateKey
	if _, err := asn1.Unmarshal(der, &k); err != nil {
		return nil, fmt.Errorf("%w: a malformed SEC 1 EC key: %v", ErrUnsupported, err)
	}
	defer clear(k.PrivateKey)
	if k.Version != 1 {
		return nil, fmt.Errorf("%w: SEC 1 EC key version %d, not 1", ErrUnsupported, k.Version)
	}
	if len(k.Parameters.FullBytes) > 0 {
		var own asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(k.Parameters.Bytes, &own); err != nil {
			return nil, fmt.Errorf("%w: an EC key with explicit curve parameters instead of a named curve; %s", ErrUnsupported, Supported)
		}
		if curve != nil && !curve.Equal(own) {
			return nil, fmt.Errorf("%w: the PKCS#8 key names curve %s and its EC key %s", ErrUnsupported, curve, own)
		}
		curve = own
	}
	if curve == nil {
		return nil, fmt.Errorf("%w: an EC key that names no curve; %s", ErrUnsupported, Supported)
	}
	c := ecc.ByOID(curve)
	if c == nil || !onDevice(c) {
		name := curve.String()
		if c != nil {
			name = c.Name
		} else if n, ok := curveNames[name]; ok {
			name = n
		}
		return nil, fmt.Errorf("%w: an EC key on curve %s, which the device does not hold; %s", ErrUnsupported, name, Supported)
	}
	if len(k.PrivateKey) > c.ScalarLen() {
		return nil, fmt.Errorf("%w: EC private key of %d bytes on %s", ErrUnsupported, len(k.PrivateKey), c.Name)
	}
	w, err := wrap.ECKey(c, k.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: an EC key on %s that does not check out: %v", ErrUnsupported, c.Name, err)
	}
	if pub := k.PublicKey.RightAlign(); len(pub) > 0 && !bytes.Equal(pub, w.ECQ) {
		if x, y, err := c.Unmarshal(pub); err != nil || !bytes.Equal(c.Marshal(x, y), w.ECQ) {
			w.Wipe()
			return nil, fmt.Errorf("%w: the EC key's public key does not belong to its private key", ErrUnsupported)
		}
	}
	return &Key{Wrap: w, Format: format, Curve: c}, nil
}

func onDevice(c *ecc.Curve) bool {
	for _, n := range deviceCurves {
		if c.Name == n {
			return true
		}
	}
	return false
}

// Options of Seal.
type Options struct {
	// Label and ID go into the PKCS#15 description; a nil ID is
	// DefaultID.
	Label string
	ID    []byte
	// Rand supplies the blob's 8 random bytes.
	Rand io.Reader
}

// placeholderRef is the key reference the description carries in a
// sealed file: the device chooses the reference only at UNWRAP KEY, and
// unwrap-key writes the one it used.
const placeholderRef = 1

// Seal wraps k under dkek into sc-hsm-tool's wrapped-key file (wrap.File):
// the key blob (wrap.Seal, kek.c dkek_encode_key, with no allowed-algorithm
// list, as for a key generated without one), the PKCS#15 description
// OpenSC writes for a generated key (pkcs15.New) and, when k has one, its
// X.509 certificate: the third element of the file is what EF CExx holds
// (sc-hsm-tool.c wrap_key reads it from there, unwrap_key writes it back).
// Without a certificate the file carries none: a CV certificate of the
// key is issued by the device (its outer signature is the device key's),
// so none can be made offline; the firmware writes a fresh CV request
// when it unwraps the key.
func Seal(k *Key, dkek []byte, o Options) (*wrap.File, error) {
	id := o.ID
	if id == nil {
		id = k.DefaultID()
	}
	d, err := pkcs15.New(k.Kind(), o.Label, id, placeholderRef, k.Bits())
	if err != nil {
		return nil, err
	}
	blob, err := wrap.Seal(dkek, k.Wrap, nil, o.Rand)
	if err != nil {
		return nil, err
	}
	f := &wrap.File{Blob: blob, PRKD: d.Marshal()}
	if k.Cert != nil {
		f.Cert = bytes.Clone(k.Cert.DER)
	}
	return f, nil
}

// wipeInt zeroes the words of each x (big.Int keeps its magnitude in one
// slice, which SetInt64(0) would only shorten).
func wipeInt(xs ...*big.Int) {
	for _, x := range xs {
		if x != nil {
			clear(x.Bits())
		}
	}
}
