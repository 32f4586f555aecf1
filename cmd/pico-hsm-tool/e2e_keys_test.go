package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

const pkcs11Module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// e2eKeys are the keys the interop test generates on device A: label, ID,
// key reference, type, and whether sc-hsm-tool wraps it (ours wraps all).
var e2eKeys = []struct {
	label, id, ref, typ string
}{
	{"rsa2048", "21", "1", "rsa:2048"},
	{"rsa4096", "22", "2", "rsa:4096"},
	{"p256", "23", "3", "ec:secp256r1"},
	{"p521", "24", "4", "ec:secp521r1"},
	{"k1", "25", "5", "ec:secp256k1"},
	{"aes", "26", "6", "aes:256"},
}

// TestE2EKeysInterop generates keys with this tool on device A, lists them
// with OpenSC, wraps each with sc-hsm-tool and with this tool, restores
// sc-hsm-tool's files with this tool and this tool's files with
// sc-hsm-tool on device B (same DKEK), and checks with OpenSC that the
// restored keys are listed and sign as the originals did.
func TestE2EKeysInterop(t *testing.T) {
	testbed.SkipShort(t)
	dir := t.TempDir()
	share := filepath.Join(vectorsDir, "dkek-share-1.pbe")
	msg := filepath.Join(dir, "msg.txt")
	os.WriteFile(msg, []byte("pico-hsm-tool interop test message\n"), 0o600)
	sigs := map[string][]byte{}

	setup := func(t *testing.T, name string) func(string, ...string) string {
		bed, _ := startBed(t, name)
		run := runner(t, bed)
		run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
		run("pico-hsm-tool", "import-dkek-share", share, "--password", "seed-share-1-Pw", "--pin", "648219")
		return run
	}
	sign := func(run func(string, ...string) string, id, mech, out string) []byte {
		run("pkcs11-tool", "--module", pkcs11Module, "-l", "--pin", "648219", "--sign", "--id", id, "-m", mech, "-i", msg, "-o", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("device A", func(t *testing.T) {
		run := setup(t, "keys-a")
		for _, k := range e2eKeys {
			run("pico-hsm-tool", "generate-key", "--type", k.typ, "--label", k.label, "--id", k.id, "--key-reference", k.ref, "--pin", "648219")
		}
		// OpenSC lists the asymmetric keys with their label, ID and size.
		out := run("pkcs15-tool", "-D")
		for _, k := range e2eKeys[:5] {
			if !strings.Contains(out, "Private ") || !strings.Contains(out, "["+k.label+"]") || !strings.Contains(out, "ID             : "+k.id) {
				t.Errorf("pkcs15-tool -D does not list %s with ID %s:\n%s", k.label, k.id, out)
			}
		}
		for _, size := range []string{"ModLength      : 2048", "ModLength      : 4096", "FieldLength    : 256", "FieldLength    : 521"} {
			if !strings.Contains(out, size) {
				t.Errorf("pkcs15-tool -D lacks %q:\n%s", size, out)
			}
		}
		out = run("pkcs11-tool", "--module", pkcs11Module, "-O")
		if !strings.Contains(out, "label:      rsa4096") || !strings.Contains(out, "ID:         22") {
			t.Errorf("pkcs11-tool -O:\n%s", out)
		}
		sigs["rsa2048"] = sign(run, "21", "SHA256-RSA-PKCS", filepath.Join(dir, "a-rsa2048.sig"))
		sigs["rsa4096"] = sign(run, "22", "SHA256-RSA-PKCS", filepath.Join(dir, "a-rsa4096.sig"))

		for _, k := range e2eKeys {
			run("pico-hsm-tool", "wrap-key", filepath.Join(dir, "ours-"+k.label+".bin"), "--key-reference", k.ref, "--pin", "648219")
			if k.typ != "aes:256" {
				run("sc-hsm-tool", "--wrap-key", filepath.Join(dir, "theirs-"+k.label+".bin"), "--key-reference", k.ref, "--pin", "648219")
			}
		}
		// The RSA-4096 blob is about 1,100 bytes, its file about 2,300.
		st, _ := os.Stat(filepath.Join(dir, "ours-rsa4096.bin"))
		if st == nil || st.Size() < 2000 || st.Size() > 2600 {
			t.Errorf("RSA-4096 wrapped file: %v bytes", st)
		}
		// Both tools make files with the same description and certificate.
		for _, k := range e2eKeys[:5] {
			ours, _ := os.ReadFile(filepath.Join(dir, "ours-"+k.label+".bin"))
			theirs, _ := os.ReadFile(filepath.Join(dir, "theirs-"+k.label+".bin"))
			if len(ours) != len(theirs) || !bytes.Equal(ours[len(ours)-200:], theirs[len(theirs)-200:]) {
				t.Errorf("%s: our file (%d bytes) and sc-hsm-tool's (%d bytes) differ beyond the blob", k.label, len(ours), len(theirs))
			}
		}
	})
	if len(sigs) != 2 {
		t.Fatal("device A failed")
	}

	t.Run("device B", func(t *testing.T) {
		run := setup(t, "keys-b")
		// Ours restores sc-hsm-tool's files into references 1-5 ...
		for _, k := range e2eKeys[:5] {
			out := run("pico-hsm-tool", "unwrap-key", filepath.Join(dir, "theirs-"+k.label+".bin"), "--key-reference", k.ref, "--pin", "648219")
			if !strings.Contains(out, "its public key matches the backup") {
				t.Errorf("%s: %s", k.label, out)
			}
		}
		// ... and sc-hsm-tool restores ours into references 11-16.
		for i, k := range e2eKeys {
			run("sc-hsm-tool", "--unwrap-key", filepath.Join(dir, "ours-"+k.label+".bin"), "--key-reference", fmt.Sprint(11+i), "--pin", "648219")
		}
		out := run("pkcs15-tool", "-D")
		for _, k := range e2eKeys[:5] {
			if strings.Count(out, "["+k.label+"]") < 2 {
				t.Errorf("pkcs15-tool -D does not list both restored %s keys:\n%s", k.label, out)
			}
		}
		keys := run("pico-hsm-tool", "list-keys")
		for _, want := range []string{"RSA 4096", "EC secp521r1", "EC secp256k1", "AES 256"} {
			if !strings.Contains(keys, want) {
				t.Errorf("list-keys lacks %s:\n%s", want, keys)
			}
		}
		// The restored RSA keys sign exactly as the originals (PKCS#1 v1.5
		// is deterministic); both copies of each are the same key.
		for label, id := range map[string]string{"rsa2048": "21", "rsa4096": "22"} {
			got := sign(run, id, "SHA256-RSA-PKCS", filepath.Join(dir, "b-"+label+".sig"))
			if !bytes.Equal(got, sigs[label]) {
				t.Errorf("restored %s signs differently from the original", label)
			}
		}
	})
}
