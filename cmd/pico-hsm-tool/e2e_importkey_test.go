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

// TestE2EImportKeyPKCS11 imports software keys with import-key through
// pcscd into a device whose DKEK was imported from a share, checks that
// pkcs15-tool lists them under their labels and IDs, and that the RSA and
// P-256 keys sign, through pkcs11-tool, what the software public keys
// verify.
func TestE2EImportKeyPKCS11(t *testing.T) {
	testbed.SkipShort(t)
	dir := t.TempDir()
	share := filepath.Join(vectorsDir, "dkek-share-1.pbe")
	keys := []struct{ file, label, id, mech, want string }{
		{"rsa2048-pkcs8.pem", "imp-rsa", "41", "SHA256-RSA-PKCS", "Imported RSA 2048"},
		{"ec-prime256v1-pkcs8.der", "imp-p256", "42", "ECDSA-SHA256", "Imported EC secp256r1"},
		{"ec-secp256k1-sec1.pem", "imp-k1", "43", "", "Imported EC secp256k1"},
		{"aes256.hex", "imp-aes", "44", "", "Imported AES 256"},
	}
	bed, _ := startBed(t, "import")
	run := runner(t, bed)
	run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
	run("pico-hsm-tool", "import-dkek-share", share, "--password", "seed-share-1-Pw", "--pin", "648219")
	for _, k := range keys {
		out := run("pico-hsm-tool", "import-key", "--key", filepath.Join("../../internal/keyimport/testdata", k.file), "--dkek-share", share,
			"--password", "seed-share-1-Pw", "--pin", "648219", "--label", k.label, "--id", k.id)
		if !strings.Contains(out, k.want) || !strings.Contains(out, "still holds the key in the clear") {
			t.Fatalf("import-key %s: %s", k.file, out)
		}
	}
	out := run("pkcs15-tool", "-D")
	for _, k := range keys[:3] {
		if !strings.Contains(out, "["+k.label+"]") || !strings.Contains(out, "ID             : "+k.id) {
			t.Errorf("pkcs15-tool -D does not list %s with ID %s:\n%s", k.label, k.id, out)
		}
	}
	for _, k := range keys[:2] {
		checkDeviceSigns(t, run, dir, k.id, k.mech, k.file)
	}
}

// checkDeviceSigns has the device sign a message with the key of ID id
// through pkcs11-tool (mechanism mech, SHA-256 based) and verifies the
// signature with the software key in internal/keyimport/testdata/file
// (PEM or DER PKCS#8, or DER PKCS#1).
func checkDeviceSigns(t *testing.T, run func(string, ...string) string, dir, id, mech, file string) {
	t.Helper()
	text := []byte("signed by the device with key " + id + "\n")
	msg, sig := filepath.Join(dir, "msg-"+id+".txt"), filepath.Join(dir, "msg-"+id+".sig")
	if err := os.WriteFile(msg, text, 0o600); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256(text)
	run("pkcs11-tool", "--module", pkcs11Module, "-l", "--pin", "648219", "--sign", "--id", id, "-m", mech, "-i", msg, "-o", sig)
	s, err := os.ReadFile(sig)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("../../internal/keyimport/testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := pem.Decode(raw); b != nil {
		raw = b.Bytes
	}
	priv, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		if priv, err = x509.ParsePKCS1PrivateKey(raw); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	switch p := priv.(type) {
	case *rsa.PrivateKey:
		if err := rsa.VerifyPKCS1v15(&p.PublicKey, crypto.SHA256, digest[:], s); err != nil {
			t.Errorf("%s: the device's signature does not verify with the software key: %v", file, err)
		}
	case *ecdsa.PrivateKey:
		r, ss := new(big.Int).SetBytes(s[:len(s)/2]), new(big.Int).SetBytes(s[len(s)/2:])
		if !ecdsa.Verify(&p.PublicKey, digest[:], r, ss) {
			t.Errorf("%s: the device's signature does not verify with the software key", file)
		}
	default:
		t.Fatalf("%s: a %T key", file, priv)
	}
}

// TestE2EImportKeyFormats imports, through pcscd, an RSA-4096 key and keys
// from the other input formats: PKCS#1 DER, an encrypted PKCS#8 file, and
// legacy and modern PKCS#12 files with their certificates; OpenSC lists
// each, and the RSA keys sign what the software keys verify.
func TestE2EImportKeyFormats(t *testing.T) {
	testbed.SkipShort(t)
	dir := t.TempDir()
	share := filepath.Join(vectorsDir, "dkek-share-1.pbe")
	td := "../../internal/keyimport/testdata"
	keys := []struct{ file, label, id, want string }{
		{"rsa4096-pkcs8.pem", "imp-rsa4096", "51", "Imported RSA 4096"},
		{"rsa2048-pkcs1.der", "imp-pkcs1", "52", "Imported RSA 2048"},
		{"rsa2048-aes256-sha512.pem", "imp-enc", "53", "Imported RSA 2048"},
		{"ec-secp256k1-legacy.p12", "imp-p12-k1", "54", "Imported EC secp256k1"},
		{"ec-brainpoolP256r1.p12", "imp-p12-bp", "55", "Imported EC brainpoolP256r1"},
		{"aes128.bin", "imp-aes128", "56", "Imported AES 128"},
	}
	bed, _ := startBed(t, "import-formats")
	run := runner(t, bed)
	run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
	run("pico-hsm-tool", "import-dkek-share", share, "--password", "seed-share-1-Pw", "--pin", "648219")
	for _, k := range keys {
		args := []string{"import-key", "--key", filepath.Join(td, k.file), "--dkek-share", share,
			"--password", "seed-share-1-Pw", "--pin", "648219", "--label", k.label, "--id", k.id}
		if strings.Contains(k.file, "p12") || strings.Contains(k.file, "aes256-sha512") {
			args = append(args, "--key-password", "import-test-pw")
		}
		out := run("pico-hsm-tool", args...)
		if !strings.Contains(out, k.want) {
			t.Fatalf("import-key %s: %s", k.file, out)
		}
		if strings.HasSuffix(k.file, ".p12") && !strings.Contains(out, "Stored its certificate") {
			t.Errorf("import-key %s stored no certificate: %s", k.file, out)
		}
	}
	out := run("pkcs15-tool", "-D")
	for _, k := range keys[:5] {
		if !strings.Contains(out, "["+k.label+"]") || !strings.Contains(out, "ID             : "+k.id) {
			t.Errorf("pkcs15-tool -D does not list %s with ID %s:\n%s", k.label, k.id, out)
		}
	}
	// The certificates of the PKCS#12 files are listed under the keys' IDs.
	if n := strings.Count(out, "X.509 Certificate"); n < 2 {
		t.Errorf("pkcs15-tool -D lists %d X.509 certificates, want the 2 of the PKCS#12 files:\n%s", n, out)
	}
	for _, k := range keys[:2] {
		checkDeviceSigns(t, run, dir, k.id, "SHA256-RSA-PKCS", k.file)
	}
}
