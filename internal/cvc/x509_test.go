package cvc

import (
	"bytes"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

func readPEM(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "x509", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", name)
	}
	return blk.Bytes
}

// TestX509PublicKey reads the public keys of certificates made with
// openssl (testdata/x509, copied from internal/keyimport/testdata) on
// curves crypto/x509 refuses, and compares them with the keys' own.
func TestX509PublicKey(t *testing.T) {
	for _, name := range []string{"ec-secp256k1", "ec-brainpoolP256r1"} {
		pub, err := X509PublicKey(readPEM(t, name+".crt"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// SEC 1 ECPrivateKey: the public key is field [1].
		var sec1 struct {
			Version int
			D       []byte
			Params  asn1.RawValue  `asn1:"optional,explicit,tag:0"`
			Pub     asn1.BitString `asn1:"optional,explicit,tag:1"`
		}
		if _, err := asn1.Unmarshal(readPEM(t, name+"-sec1.pem"), &sec1); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pub.Q, sec1.Pub.RightAlign()) {
			t.Errorf("%s: Q % X, want % X", name, pub.Q, sec1.Pub.RightAlign())
		}
		cv := ecc.ByPrime(pub.Prime)
		if cv == nil || cv.Name != name[3:] {
			t.Errorf("%s: prime names curve %v", name, cv)
		}
	}
	pub, err := X509PublicKey(readPEM(t, "rsa2048.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if pub.N.BitLen() != 2048 || pub.E.Int64() != 65537 {
		t.Errorf("rsa2048: %d-bit modulus, exponent %v", pub.N.BitLen(), pub.E)
	}
	if p2, err := CertPublicKey(readPEM(t, "rsa2048.crt")); err != nil || p2.N.Cmp(pub.N) != 0 {
		t.Errorf("CertPublicKey of an X.509 certificate: %v", err)
	}
	for _, bad := range [][]byte{nil, {0x30, 0x03, 0x02, 0x01, 0x00}, {0x7F, 0x21, 0x00}} {
		if _, err := CertPublicKey(bad); err == nil {
			t.Errorf("% X: no error", bad)
		}
	}
}
