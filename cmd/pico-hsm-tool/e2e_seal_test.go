package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// TestE2ESealUnwrapWithOpenSC seals software keys offline with seal-key,
// restores the files with OpenSC's sc-hsm-tool --unwrap-key into a device
// that holds the same DKEK, checks that pkcs15-tool lists them under their
// labels, and that the RSA and EC keys sign, through pkcs11-tool, what the
// software public keys verify.
func TestE2ESealUnwrapWithOpenSC(t *testing.T) {
	testbed.SkipShort(t)
	dir := t.TempDir()
	share := filepath.Join(vectorsDir, "dkek-share-1.pbe")
	keys := []struct{ file, label, id, mech string }{
		{"rsa2048-pkcs8.pem", "soft-rsa", "31", "SHA256-RSA-PKCS"},
		{"ec-prime256v1-pkcs8.der", "soft-p256", "32", "ECDSA-SHA256"},
		{"ec-secp256k1-sec1.pem", "soft-k1", "33", ""},
		{"aes256.hex", "soft-aes", "34", ""},
	}
	bed, _ := startBed(t, "seal")
	run := runner(t, bed)
	for _, k := range keys {
		out := run("pico-hsm-tool", "seal-key", "--key", filepath.Join("../../internal/keyimport/testdata", k.file), "--dkek-share", share,
			"--password", "seed-share-1-Pw", "--out", filepath.Join(dir, k.label+".bin"), "--label", k.label, "--id", k.id)
		if !strings.HasPrefix(out, "Sealed ") {
			t.Fatalf("seal-key: %s", out)
		}
	}
	run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
	run("pico-hsm-tool", "import-dkek-share", share, "--password", "seed-share-1-Pw", "--pin", "648219")
	for i, k := range keys {
		run("sc-hsm-tool", "--unwrap-key", filepath.Join(dir, k.label+".bin"), "--key-reference", string(rune('1'+i)), "--pin", "648219")
	}
	out := run("pkcs15-tool", "-D")
	for _, k := range keys[:3] {
		if !strings.Contains(out, "["+k.label+"]") || !strings.Contains(out, "ID             : "+k.id) {
			t.Errorf("pkcs15-tool -D does not list %s with ID %s:\n%s", k.label, k.id, out)
		}
	}
	list := run("pico-hsm-tool", "list-keys")
	for _, want := range []string{"RSA 2048", "EC secp256r1", "EC secp256k1", "AES 256"} {
		if !strings.Contains(list, want) {
			t.Errorf("list-keys lacks %s:\n%s", want, list)
		}
	}
	msg := filepath.Join(dir, "msg.txt")
	os.WriteFile(msg, []byte("sealed offline, restored by sc-hsm-tool\n"), 0o600)
	digest := sha256.Sum256([]byte("sealed offline, restored by sc-hsm-tool\n"))
	for _, k := range keys[:2] {
		sig := filepath.Join(dir, k.label+".sig")
		run("pkcs11-tool", "--module", pkcs11Module, "-l", "--pin", "648219", "--sign", "--id", k.id, "-m", k.mech, "-i", msg, "-o", sig)
		s, err := os.ReadFile(sig)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join("../../internal/keyimport/testdata", k.file))
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := pem.Decode(raw); b != nil {
			raw = b.Bytes
		}
		priv, err := x509.ParsePKCS8PrivateKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		switch p := priv.(type) {
		case *rsa.PrivateKey:
			if err := rsa.VerifyPKCS1v15(&p.PublicKey, crypto.SHA256, digest[:], s); err != nil {
				t.Errorf("%s: the device's signature does not verify with the software key: %v", k.label, err)
			}
		case *ecdsa.PrivateKey:
			r, ss := new(big.Int).SetBytes(s[:len(s)/2]), new(big.Int).SetBytes(s[len(s)/2:])
			if !ecdsa.Verify(&p.PublicKey, digest[:], r, ss) {
				t.Errorf("%s: the device's signature does not verify with the software key", k.label)
			}
		}
	}
}
