package keyimport

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

var dkek = bytes.Repeat([]byte{0x5A}, 32)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stdPublic returns the public key Go's own parser finds in a vector, or
// nil for the curves crypto/x509 does not know.
func stdPublic(b []byte) any {
	if p, _ := pem.Decode(b); p != nil {
		b = p.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		return k.(crypto.Signer).Public()
	}
	if k, err := x509.ParsePKCS1PrivateKey(b); err == nil {
		return k.Public()
	}
	if k, err := x509.ParseECPrivateKey(b); err == nil {
		return k.Public()
	}
	return nil
}

func TestParseAndSeal(t *testing.T) {
	tests := []struct{ file, want, format string }{
		{"rsa1024-pkcs1.pem", "RSA 1024", "RSA PRIVATE KEY PEM"},
		{"rsa2048-pkcs8.pem", "RSA 2048", "PRIVATE KEY PEM"},
		{"rsa2048-pkcs8.der", "RSA 2048", "PKCS#8 DER"},
		{"rsa2048-pkcs1.der", "RSA 2048", "PKCS#1 DER"},
		{"rsa4096-pkcs8.pem", "RSA 4096", "PRIVATE KEY PEM"},
		{"ec-secp256k1-params.pem", "EC secp256k1", "EC PRIVATE KEY PEM"},
		{"aes128.bin", "AES 128", "raw"},
		{"aes192.bin", "AES 192", "raw"},
		{"aes256.bin", "AES 256", "raw"},
		{"aes256.hex", "AES 256", "hex"},
	}
	for _, c := range []string{"prime256v1:secp256r1", "secp384r1:secp384r1", "secp521r1:secp521r1", "secp256k1:secp256k1",
		"brainpoolP256r1:brainpoolP256r1", "brainpoolP384r1:brainpoolP384r1", "brainpoolP512r1:brainpoolP512r1"} {
		file, name, _ := strings.Cut(c, ":")
		tests = append(tests,
			struct{ file, want, format string }{"ec-" + file + "-sec1.pem", "EC " + name, "EC PRIVATE KEY PEM"},
			struct{ file, want, format string }{"ec-" + file + "-sec1.der", "EC " + name, "SEC 1 DER"},
			struct{ file, want, format string }{"ec-" + file + "-pkcs8.pem", "EC " + name, "PRIVATE KEY PEM"},
			struct{ file, want, format string }{"ec-" + file + "-pkcs8.der", "EC " + name, "PKCS#8 DER"})
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := read(t, tt.file)
			k, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if k.String() != tt.want || k.Format != tt.format {
				t.Fatalf("got %s (%s), want %s (%s)", k, k.Format, tt.want, tt.format)
			}
			switch p := stdPublic(raw).(type) {
			case *rsa.PublicKey:
				if new(big.Int).SetBytes(k.Wrap.N).Cmp(p.N) != 0 {
					t.Fatal("modulus differs from Go's parser")
				}
			case *ecdsa.PublicKey:
				b, _ := p.Bytes()
				if !bytes.Equal(b, k.Wrap.ECQ) {
					t.Fatal("public point differs from Go's parser")
				}
			}
			f, err := Seal(k, dkek, Options{Label: "imported", Rand: rand.Reader})
			if err != nil {
				t.Fatal(err)
			}
			f2, err := wrap.ParseFile(f.Marshal())
			if err != nil {
				t.Fatal(err)
			}
			bl, err := wrap.ParseBlob(f2.Blob)
			if err != nil {
				t.Fatal(err)
			}
			got, err := bl.Open(dkek)
			if err != nil {
				t.Fatal(err)
			}
			if got.Bits != k.Wrap.Bits || !bytes.Equal(got.D, k.Wrap.D) || !bytes.Equal(got.N, k.Wrap.N) ||
				!bytes.Equal(got.ECQ, k.Wrap.ECQ) || !bytes.Equal(got.Secret, k.Wrap.Secret) {
				t.Fatal("the sealed key does not open to the key read")
			}
			d, err := pkcs15.Parse(f2.PRKD)
			if err != nil {
				t.Fatal(err)
			}
			if d.Label != "imported" || d.Kind != k.Kind() || d.Bits != k.Bits() || !bytes.Equal(d.ID, k.DefaultID()) {
				t.Fatalf("description: %+v", d)
			}
			if len(f2.Cert) != 0 {
				t.Fatal("a sealed file carries no certificate")
			}
			k.Wipe()
			if k.Wrap.D != nil && !bytes.Equal(k.Wrap.D, make([]byte, len(k.Wrap.D))) {
				t.Fatal("Wipe left the private key")
			}
		})
	}
}

func TestParseUnsupported(t *testing.T) {
	tests := []struct{ file, want string }{
		{"rsa512.pem", "RSA 512; the device holds RSA keys of 1024 to 4096 bits"},
		{"ec-secp224r1.pem", "an EC key on curve secp224r1, which the device does not hold"},
		{"ec-explicit.pem", "explicit curve parameters"},
		{"ed25519.pem", "an Ed25519 key"},
		{"ec-encrypted.pem", "the encrypted PKCS#8 key needs its password: the key file is encrypted: give its password"},
		{"key.p12", "the PKCS#12 file needs its password: the key file is encrypted: give its password"},
		{"rsa-pub.pem", "the file holds PUBLIC KEY and no private key"},
		{"cert.pem", "the file holds CERTIFICATE and no private key"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := Parse(read(t, tt.file))
			if errors.Is(err, ErrNeedsPassword) && strings.Contains(err.Error(), tt.want) {
				return
			}
			if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "supported: RSA") {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
	for name, in := range map[string][]byte{
		"17 bytes":   bytes.Repeat([]byte{1}, 17),
		"short hex":  []byte("00112233\n"),
		"text":       []byte("hello, world, this is not a key at all\n"),
		"empty":      nil,
		"der scrap":  {0x30, 0x03, 0x02, 0x01, 0x00},
		"bad pem":    []byte("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----\n"),
		"legacy enc": []byte("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
	} {
		if _, err := Parse(in); !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// TestPublicKeyMismatch: a SEC 1 key whose public key is another key's is
// refused, not sealed.
func TestPublicKeyMismatch(t *testing.T) {
	a, _ := pem.Decode(read(t, "ec-secp256k1-sec1.pem"))
	_, rest := pem.Decode(read(t, "ec-secp256k1-params.pem")) // EC PARAMETERS, then the key
	b, _ := pem.Decode(rest)
	var ka, kb ecPrivateKey
	if _, err := asn1.Unmarshal(a.Bytes, &ka); err != nil {
		t.Fatal(err)
	}
	if _, err := asn1.Unmarshal(b.Bytes, &kb); err != nil {
		t.Fatal(err)
	}
	ka.PublicKey = kb.PublicKey
	bad, err := asn1.Marshal(ka)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(bad); err == nil || !strings.Contains(err.Error(), "does not belong to its private key") {
		t.Fatalf("got %v", err)
	}
}
