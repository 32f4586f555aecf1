package keyimport

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	stdpbkdf2 "crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"hash"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

const testPW = "import-test-pw"

// pw returns a password function that counts its calls.
func pw(s string, calls *int) func() ([]byte, error) {
	return func() ([]byte, error) {
		*calls++
		return []byte(s), nil
	}
}

// TestRC2 runs the test vectors of RFC 2268 section 5.
func TestRC2(t *testing.T) {
	for _, v := range []struct {
		key   string
		bits  int
		plain string
		ciph  string
	}{
		{"0000000000000000", 63, "0000000000000000", "ebb773f993278eff"},
		{"ffffffffffffffff", 64, "ffffffffffffffff", "278b27e42e2f0d49"},
		{"3000000000000000", 64, "1000000000000001", "30649edf9be7d2c2"},
		{"88", 64, "0000000000000000", "61a8a244adacccf0"},
		{"88bca90e90875a", 64, "0000000000000000", "6ccf4308974c267f"},
		{"88bca90e90875a7f0f79c384627bafb2", 64, "0000000000000000", "1a807d272bbe5db1"},
		{"88bca90e90875a7f0f79c384627bafb2", 128, "0000000000000000", "2269552ab0f85ca6"},
	} {
		key, _ := hex.DecodeString(v.key)
		c, _ := hex.DecodeString(v.ciph)
		got := make([]byte, 8)
		newRC2(key, v.bits).Decrypt(got, c)
		if hex.EncodeToString(got) != v.plain {
			t.Errorf("RC2 key %s/%d: decrypts to %x, want %s", v.key, v.bits, got, v.plain)
		}
	}
}

// TestPBKDF2 checks the byte-password PBKDF2 against crypto/pbkdf2.
func TestPBKDF2(t *testing.T) {
	for _, h := range []func() hash.Hash{sha1.New, sha256.New, sha512.New384, sha512.New} {
		for _, n := range []int{1, 2, 1000} {
			for _, kl := range []int{16, 24, 32, 64} {
				want, err := stdpbkdf2.Key(h, "pässword", []byte("saltsalt"), n, kl)
				if err != nil {
					t.Fatal(err)
				}
				if got := pbkdf2Key(h, []byte("pässword"), []byte("saltsalt"), n, kl); !bytes.Equal(got, want) {
					t.Fatalf("%d iterations, %d bytes: %x, want %x", n, kl, got, want)
				}
			}
		}
	}
}

func pbkdf2Key(h func() hash.Hash, pw, salt []byte, n, kl int) []byte {
	return pbkdf2(h, pw, salt, n, kl)
}

// TestBMPPassword: RFC 7292 appendix B.1's encoding, including a
// character outside the BMP (a surrogate pair).
func TestBMPPassword(t *testing.T) {
	got, err := bmpPassword([]byte("aé\U0001F511"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "006100e9d83ddd110000"; hex.EncodeToString(got) != want {
		t.Fatalf("%x, want %s", got, want)
	}
	if got, _ := bmpPassword(nil); !bytes.Equal(got, []byte{0, 0}) {
		t.Fatalf("empty: %x", got)
	}
}

// sameKey checks that k is the key of the plain file.
func sameKey(t *testing.T, k *Key, plainFile string) {
	t.Helper()
	want, err := Parse(read(t, plainFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Wrap.D, want.Wrap.D) || !bytes.Equal(k.Wrap.N, want.Wrap.N) || !bytes.Equal(k.Wrap.ECQ, want.Wrap.ECQ) || k.String() != want.String() {
		t.Fatalf("got %s, not the key of %s", k, plainFile)
	}
}

func TestParseEncryptedPKCS8(t *testing.T) {
	for _, tt := range []struct{ file, plain, format string }{
		{"rsa2048-aes256-sha512.pem", "rsa2048-pkcs8.pem", "encrypted PKCS#8 PEM"},
		{"rsa2048-aes128-sha1.der", "rsa2048-pkcs8.pem", "encrypted PKCS#8 DER"},
		{"ec-secp256k1-aes192-sha384.pem", "ec-secp256k1-pkcs8.pem", "encrypted PKCS#8 PEM"},
		{"ec-prime256v1-des3.pem", "ec-prime256v1-pkcs8.pem", "encrypted PKCS#8 PEM"},
		{"ec-brainpoolP384r1-pbe-sha1-3des.pem", "ec-brainpoolP384r1-pkcs8.pem", "encrypted PKCS#8 PEM"},
		{"ec-prime256v1-pbe-sha1-rc2-40.pem", "ec-prime256v1-pkcs8.pem", "encrypted PKCS#8 PEM"},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := read(t, tt.file)
			calls := 0
			k, err := ParseWithPassword(data, pw(testPW, &calls))
			if err != nil {
				t.Fatal(err)
			}
			sameKey(t, k, tt.plain)
			if k.Format != tt.format || !k.Encrypted || calls != 1 || k.Cert != nil {
				t.Fatalf("format %q, encrypted %v, %d password calls, cert %v", k.Format, k.Encrypted, calls, k.Cert)
			}
			if _, err := ParseWithPassword(data, pw("wrong", &calls)); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("wrong password: %v", err)
			}
			if _, err := Parse(data); !errors.Is(err, ErrNeedsPassword) {
				t.Fatalf("no password: %v", err)
			}
		})
	}
}

// TestEncryptedRoundTrip encrypts every plain PKCS#8 key of testdata with
// PBES2 (PBKDF2-HMAC-SHA256 from crypto/pbkdf2, AES-256-CBC) here and
// reads it back.
func TestEncryptedRoundTrip(t *testing.T) {
	files, _ := filepath.Glob("testdata/*-pkcs8.der")
	if len(files) < 5 {
		t.Fatalf("only %d plain keys", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		plain := read(t, name)
		enc := encryptPKCS8(t, plain, "round trip ✓", 2048)
		calls := 0
		k, err := ParseWithPassword(enc, pw("round trip ✓", &calls))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		sameKey(t, k, name)
		pemEnc := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: enc})
		if _, err := ParseWithPassword(pemEnc, pw("round trip", &calls)); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("%s: wrong password: %v", name, err)
		}
	}
	// a file that asks for a billion iterations is refused before any work
	big := encryptPKCS8(t, read(t, "ec-prime256v1-pkcs8.der"), "x", 1_000_000_000)
	calls := 0
	if _, err := ParseWithPassword(big, pw("x", &calls)); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "iteration count") {
		t.Fatalf("huge iteration count: %v", err)
	}
}

func encryptPKCS8(t *testing.T, plain []byte, password string, iter int) []byte {
	t.Helper()
	salt, iv := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	derive := iter
	if derive > 100_000 {
		derive = 1 // only the parameters claim more
	}
	key, err := stdpbkdf2.Key(sha256.New, password, salt, derive, 32)
	if err != nil {
		t.Fatal(err)
	}
	pad := 16 - len(plain)%16
	buf := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
	b, _ := aes.NewCipher(key)
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(buf, buf)
	must := func(v any) asn1.RawValue {
		d, err := asn1.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return asn1.RawValue{FullBytes: d}
	}
	kdf := pkix.AlgorithmIdentifier{Algorithm: oidPBKDF2, Parameters: must(struct {
		Salt []byte
		Iter int
		PRF  pkix.AlgorithmIdentifier
	}{salt, iter, pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 2, 9}, Parameters: asn1.NullRawValue}})}
	enc := pkix.AlgorithmIdentifier{Algorithm: oidAES256CBC, Parameters: must(iv)}
	out, err := asn1.Marshal(encryptedPrivateKeyInfo{
		Algorithm: pkix.AlgorithmIdentifier{Algorithm: oidPBES2, Parameters: must(pbes2Params{kdf, enc})},
		Data:      buf,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestParsePKCS12(t *testing.T) {
	for _, tt := range []struct {
		file, password, plain string
		subject, issuer       string
		others                int
		name                  string
	}{
		{"rsa2048-modern.p12", testPW, "rsa2048-pkcs8.pem", "CN=rsa2048 leaf", "CN=Test CA", 1, "signing key"},
		{"rsa2048-legacy.p12", testPW, "rsa2048-pkcs8.pem", "CN=rsa2048 leaf", "CN=Test CA", 1, "signing key"},
		{"ec-brainpoolP256r1.p12", testPW, "ec-brainpoolP256r1-pkcs8.pem", "CN=brainpool self-signed", "CN=brainpool self-signed", 0, ""},
		{"ec-secp256k1-legacy.p12", testPW, "ec-secp256k1-pkcs8.pem", "CN=secp256k1 self-signed", "CN=secp256k1 self-signed", 0, ""},
		{"ec-secp256k1-nocert.p12", testPW, "ec-secp256k1-pkcs8.pem", "", "", 0, ""},
		{"rfc9579-a1.p12", "1234", "", "CN=tt,OU=rr", "", 0, ""},
		{"rfc9579-a2.p12", "1234", "", "CN=tt,OU=rr", "", 0, ""},
		{"rfc9579-a3.p12", "1234", "", "CN=tt,OU=rr", "", 0, ""},
	} {
		t.Run(tt.file, func(t *testing.T) {
			data := read(t, tt.file)
			calls := 0
			k, err := ParseWithPassword(data, pw(tt.password, &calls))
			if err != nil {
				t.Fatal(err)
			}
			if tt.plain != "" {
				sameKey(t, k, tt.plain)
			}
			if k.Format != "PKCS#12" || !k.Encrypted || calls != 1 || k.OtherCerts != tt.others || k.FriendlyName != tt.name {
				t.Fatalf("format %q, encrypted %v, %d password calls, %d other certificates, name %q", k.Format, k.Encrypted, calls, k.OtherCerts, k.FriendlyName)
			}
			switch {
			case tt.subject == "" && k.Cert != nil:
				t.Fatalf("certificate %s", k.Cert.Subject)
			case tt.subject != "" && (k.Cert == nil || !strings.HasPrefix(k.Cert.Subject, tt.subject) || tt.issuer != "" && k.Cert.Issuer != tt.issuer):
				t.Fatalf("certificate %q from %q, want %s", k.Cert.Subject, k.Cert.Issuer, tt.subject)
			}
			if _, err := ParseWithPassword(data, pw(tt.password+"x", &calls)); !errors.Is(err, ErrWrongPassword) {
				t.Fatalf("wrong password: %v", err)
			}
			if _, err := Parse(data); !errors.Is(err, ErrNeedsPassword) {
				t.Fatalf("no password: %v", err)
			}
			// the sealed file carries the certificate
			f, err := Seal(k, dkek, Options{Label: "p12", Rand: zeroReader{}})
			if err != nil {
				t.Fatal(err)
			}
			if k.Cert != nil && !bytes.Equal(f.Cert, k.Cert.DER) || k.Cert == nil && f.Cert != nil {
				t.Fatal("the sealed file does not carry the key's certificate")
			}
			f2, err := wrap.ParseFile(f.Marshal())
			if err != nil || !bytes.Equal(f2.Cert, f.Cert) {
				t.Fatalf("the wrapped-key file does not keep the certificate: %v", err)
			}
		})
	}
}

func TestParsePKCS12Refused(t *testing.T) {
	calls := 0
	for _, tt := range []struct{ file, password, want string }{
		{"nokey.p12", testPW, "the PKCS#12 file holds 2 certificate(s) and no private key"},
		{"rfc9579-a4.p12", "1234", "wrong --key-password"},
		{"rfc9579-a5.p12", "1234", "wrong --key-password"},
		{"rfc9579-a6.p12", "1234", "without a key length"},
		{"ec-prime256v1-scrypt.pem", testPW, "scrypt"},
		{"ec-prime256v1-pbe-md5-des.pem", testPW, "PKCS#5 v1.5 encryption"},
	} {
		if _, err := ParseWithPassword(read(t, tt.file), pw(tt.password, &calls)); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.file, err, tt.want)
		}
	}
	// two keys, unencrypted and without a MAC: refused, naming both
	two := pfxOf(t, keyBag(t, "ec-prime256v1-pkcs8.der", "first"), keyBag(t, "ec-secp256k1-pkcs8.der", "second"))
	calls = 0
	_, err := ParseWithPassword(two, pw("", &calls))
	if err == nil || !strings.Contains(err.Error(), `2 private keys ("first", "second")`) || calls != 0 {
		t.Fatalf("two keys: %v (%d password calls)", err, calls)
	}
	// one unencrypted key: no password asked, not Encrypted
	k, err := ParseWithPassword(pfxOf(t, keyBag(t, "ec-prime256v1-pkcs8.der", "only")), pw("", &calls))
	if err != nil || k.Encrypted || calls != 0 || k.FriendlyName != "only" {
		t.Fatalf("one plain key: %v, %+v, %d calls", err, k, calls)
	}
}

func keyBag(t *testing.T, file, name string) safeBag {
	u := []byte{}
	for _, r := range name {
		u = append(u, 0, byte(r))
	}
	v, _ := asn1.Marshal(asn1.RawValue{Tag: asn1.TagBMPString, Bytes: u})
	return safeBag{ID: oidKeyBag, Value: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: read(t, file)},
		Attributes: []attribute{{ID: oidFriendlyName, Values: asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSet, IsCompound: true, Bytes: v}}}}
}

// pfxOf makes a PFX with the bags in one plain SafeContents and no MAC.
func pfxOf(t *testing.T, bags ...safeBag) []byte {
	sc, err := asn1.Marshal(bags)
	if err != nil {
		t.Fatal(err)
	}
	octets := func(b []byte) asn1.RawValue {
		d, _ := asn1.Marshal(b)
		return asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: d}
	}
	safe, err := asn1.Marshal([]contentInfo{{ContentType: oidPKCS7Data, Content: octets(sc)}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := asn1.Marshal(struct {
		Version  int
		AuthSafe contentInfo
	}{3, contentInfo{ContentType: oidPKCS7Data, Content: octets(safe)}})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSetCertificate(t *testing.T) {
	rsa, err := Parse(read(t, "rsa2048-pkcs8.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"rsa2048.crt", "rsa2048.crt.der"} {
		certs, err := ParseCertificates(read(t, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := rsa.SetCertificate(certs); err != nil || rsa.Cert.Subject != "CN=rsa2048 leaf" {
			t.Fatalf("%s: %v", f, err)
		}
	}
	ca, _ := ParseCertificates(read(t, "ca.crt"))
	if err := rsa.SetCertificate(ca); !errors.Is(err, ErrCertMismatch) || !strings.Contains(err.Error(), "CN=Test CA holds another public key than the RSA 2048 key") {
		t.Fatalf("CA certificate: %v", err)
	}
	// crypto/x509 cannot read a brainpool certificate; this does
	bp, err := Parse(read(t, "ec-brainpoolP256r1-pkcs8.pem"))
	if err != nil {
		t.Fatal(err)
	}
	bc, err := ParseCertificates(read(t, "ec-brainpoolP256r1.crt"))
	if err != nil || bp.SetCertificate(bc) != nil {
		t.Fatalf("brainpool: %v", err)
	}
	k1, _ := Parse(read(t, "ec-secp256k1-pkcs8.pem"))
	if err := k1.SetCertificate(bc); !errors.Is(err, ErrCertMismatch) {
		t.Fatalf("another curve: %v", err)
	}
	aes, _ := Parse(read(t, "aes256.bin"))
	if err := aes.SetCertificate(bc); !errors.Is(err, ErrCertMismatch) {
		t.Fatalf("AES: %v", err)
	}
	if _, err := ParseCertificates(read(t, "rsa2048-pkcs8.pem")); err == nil {
		t.Fatal("a key file read as a certificate")
	}
	// a PEM file with the key and its certificate gives the key its certificate
	bundle := append(read(t, "ca.crt"), append(read(t, "rsa2048-pkcs8.pem"), read(t, "rsa2048.crt")...)...)
	k, err := Parse(bundle)
	if err != nil || k.Cert == nil || k.Cert.Subject != "CN=rsa2048 leaf" || k.OtherCerts != 1 {
		t.Fatalf("bundle: %v %+v", err, k)
	}
}
