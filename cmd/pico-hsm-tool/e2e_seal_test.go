package main

import (
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
	for _, k := range keys[:2] {
		checkDeviceSigns(t, run, dir, k.id, k.mech, k.file)
	}
}
