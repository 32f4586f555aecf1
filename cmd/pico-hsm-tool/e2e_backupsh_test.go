package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// The test binary is installed as sc-hsm-tool by TestE2EBackupScript.
// testscript.Main picks the command to run by the name it was started
// under, and knows it only as pico-hsm-tool; the command itself never
// looks at its name, so this rename is all it takes.
func init() {
	if filepath.Base(os.Args[0]) == "sc-hsm-tool" {
		os.Args[0] = "pico-hsm-tool"
	}
}

// backupScriptKeys are the key types of pico-hsm's tests/scripts/backup.sh,
// in its order, with what pkcs11-tool --keypairgen must print for each
// (its gen_and_check in tests/scripts/func.sh: secp521r1's point is shown
// as 528 bits, whole bytes).
var backupScriptKeys = []struct{ typ, generated, inspected string }{
	{"rsa:1024", "RSA 1024 bits", "RSA 1024"},
	{"rsa:2048", "RSA 2048 bits", "RSA 2048"},
	{"ec:secp192r1", "EC_POINT 192 bits", "EC secp192r1"},
	{"ec:secp256r1", "EC_POINT 256 bits", "EC secp256r1"},
	{"ec:secp384r1", "EC_POINT 384 bits", "EC secp384r1"},
	{"ec:secp521r1", "EC_POINT 528 bits", "EC secp521r1"},
	{"ec:brainpoolP256r1", "EC_POINT 256 bits", "EC brainpoolP256r1"},
	{"ec:brainpoolP384r1", "EC_POINT 384 bits", "EC brainpoolP384r1"},
	{"ec:brainpoolP512r1", "EC_POINT 512 bits", "EC brainpoolP512r1"},
	{"ec:secp192k1", "EC_POINT 192 bits", "EC secp192k1"},
	{"ec:secp256k1", "EC_POINT 256 bits", "EC secp256k1"},
}

// TestE2EBackupScript runs, through pcscd, what pico-hsm's own
// tests/scripts/backup.sh runs, with this tool installed as sc-hsm-tool
// ahead of OpenSC's: a DKEK ceremony with one share, a second with three
// whose first share file has the name of the first ceremony's, then for
// each of the script's eleven key types a key generated with pkcs11-tool,
// wrapped into the file the last type's wrap left, unwrapped into key
// reference 10, checked with pkcs15-tool and deleted. It checks what the
// script checks, and beyond it that each file written over was kept as
// FILE.~N~ with its old content.
func TestE2EBackupScript(t *testing.T) {
	testbed.SkipShort(t)
	start := time.Now()
	bed, _ := startBed(t, "backup-script")

	self, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(self, filepath.Join(bin, "sc-hsm-tool")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if got, err := exec.LookPath("sc-hsm-tool"); err != nil || got != filepath.Join(bin, "sc-hsm-tool") {
		t.Fatalf("sc-hsm-tool is %q (%v), not this tool", got, err)
	}

	work := t.TempDir()
	// run runs a program in work, as the script does in its directory,
	// and returns its standard output and error together, as the script
	// reads them (2>&1); a failure ends the test.
	run := func(env []string, name string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(bed.Env(), env...)
		cmd.Dir = work
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	if out := run(nil, "sc-hsm-tool", "--help"); !strings.Contains(out, "pico-hsm-tool") {
		t.Fatalf("sc-hsm-tool --help is not this tool's:\n%s", out)
	}
	const pin, soPIN, password = "648219", "3537363231383830", "testpw"
	pkcs11 := func(args ...string) string {
		t.Helper()
		return run(nil, "pkcs11-tool", append([]string{"--module", pkcs11Module, "-l", "--pin", pin}, args...)...)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(work, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	kcvLine := regexp.MustCompile(`(?m)^DKEK key check value : ([0-9A-F]{16})$`)
	deviceKCV := func() string {
		t.Helper()
		out := run(nil, "sc-hsm-tool", "--pin", pin)
		m := kcvLine.FindStringSubmatch(out)
		if m == nil || m[1] == "0000000000000000" {
			t.Fatalf("no DKEK key check value after the ceremony:\n%s", out)
		}
		return m[1]
	}

	// ceremony is the script's sc_backup: create n share files, initialize
	// for n shares, log in, import each share without a PIN, and log in
	// again, which commits the DKEK.
	ceremony := func(n int, env []string) string {
		t.Helper()
		for i := 1; i <= n; i++ {
			run(env, "sc-hsm-tool", "--create-dkek-share", fmt.Sprintf("dkek.%d.pbe", i), "--password", password)
		}
		run(nil, "sc-hsm-tool", "--initialize", "--so-pin", soPIN, "--pin", pin, "--dkek-shares", fmt.Sprint(n))
		pkcs11("-I")
		shares := regexp.MustCompile(fmt.Sprintf(`DKEK shares[[:blank:]]*: %d\n`, n))
		for i := 1; i <= n; i++ {
			out := run(env, "sc-hsm-tool", "--import-dkek-share", fmt.Sprintf("dkek.%d.pbe", i), "--password", password)
			if !strings.Contains(out, "DKEK share imported") || !shares.MatchString(out) {
				t.Errorf("share %d of %d: no \"DKEK share imported\" and \"DKEK shares : %d\":\n%s", i, n, n, out)
			}
			if pending := fmt.Sprintf("DKEK import pending, %d", n-i); i < n && !strings.Contains(out, pending) {
				t.Errorf("share %d of %d: no %q:\n%s", i, n, pending, out)
			}
		}
		pkcs11("-I")
		return deviceKCV()
	}

	// The first ceremony derives the share key with sc-hsm-tool's real
	// count (10,000,000 rounds); the second, which is about the files, with
	// the test binary's fast one.
	phase := time.Now()
	kcv1 := ceremony(1, nil)
	share1 := read("dkek.1.pbe")
	t.Logf("one-share ceremony, real key derivation: %v", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()
	fast := []string{"PICO_HSM_TEST_KDF_ITERATIONS=1000"}
	kcv3 := ceremony(3, fast)
	if kcv3 == kcv1 {
		t.Errorf("both ceremonies made DKEK %s", kcv1)
	}
	t.Logf("three-share ceremony: %v", time.Since(phase).Round(time.Millisecond))
	// The first ceremony's share file was kept, whole: it still makes the
	// first DKEK.
	if !bytes.Equal(read("dkek.1.pbe.~1~"), share1) {
		t.Error("dkek.1.pbe.~1~ is not the first ceremony's share file")
	}
	if out := run(nil, "pico-hsm-tool", "dkek-share", "kcv", "dkek.1.pbe.~1~", "--password", password); !strings.Contains(out, kcv1) {
		t.Errorf("dkek.1.pbe.~1~ does not make the first DKEK %s:\n%s", kcv1, out)
	}
	if bytes.Equal(read("dkek.1.pbe"), share1) {
		t.Error("dkek.1.pbe was not written anew")
	}

	// pkcs15-tool -D prints "Key ref        : 10 (0x0A)".
	keyRef := func(ref int) *regexp.Regexp {
		return regexp.MustCompile(fmt.Sprintf(`Key ref[[:blank:]]*: %d \(`, ref))
	}
	ref1, ref10 := keyRef(1), keyRef(10)
	var wrapped [][]byte
	for i, k := range backupScriptKeys {
		phase = time.Now()
		out := pkcs11("--keypairgen", "--key-type", k.typ, "--id", "1", "--label", "TestLabel")
		if !strings.Contains(out, k.generated) {
			t.Errorf("%s: pkcs11-tool --keypairgen does not show %q:\n%s", k.typ, k.generated, out)
		}
		gen := time.Since(phase)

		out = run(nil, "sc-hsm-tool", "--wrap-key", "wrap-key.bin", "--key-reference", "1", "--pin", pin)
		kept := fmt.Sprintf("pico-hsm-tool: wrap-key.bin exists: kept as wrap-key.bin.~%d~\n", i)
		if i == 0 && strings.Contains(out, "kept as") || i > 0 && !strings.Contains(out, kept) {
			t.Errorf("%s: --wrap-key over the last file: want %q:\n%s", k.typ, kept, out)
		}
		wrapped = append(wrapped, read("wrap-key.bin"))
		if out := run(nil, "pkcs15-tool", "-D"); ref10.MatchString(out) || !ref1.MatchString(out) {
			t.Errorf("%s: before the unwrap, pkcs15-tool -D must list key reference 1, not 10:\n%s", k.typ, out)
		}

		run(nil, "sc-hsm-tool", "--unwrap-key", "wrap-key.bin", "--key-reference", "10", "--pin", pin, "--force")
		if out := run(nil, "pkcs15-tool", "-D"); !ref10.MatchString(out) || !ref1.MatchString(out) {
			t.Errorf("%s: after the unwrap, pkcs15-tool -D must list key references 1 and 10:\n%s", k.typ, out)
		}

		// Both keys have ID 1: each delete removes one of them.
		pkcs11("--delete-object", "--type", "privkey", "--id", "1")
		pkcs11("--delete-object", "--type", "privkey", "--id", "1")
		if out := run(nil, "pkcs15-tool", "-D"); ref1.MatchString(out) || ref10.MatchString(out) {
			t.Errorf("%s: a key is left after both deletes:\n%s", k.typ, out)
		}
		t.Logf("%-20s generated in %v, all steps %v", k.typ, gen.Round(time.Millisecond), time.Since(phase).Round(time.Millisecond))
	}

	// Each type's file was kept as wrap-key.bin.~N~, in order, whole.
	last := len(backupScriptKeys) - 1
	for i, want := range wrapped[:last] {
		name := fmt.Sprintf("wrap-key.bin.~%d~", i+1)
		if !bytes.Equal(read(name), want) {
			t.Errorf("%s is not the wrap of %s", name, backupScriptKeys[i].typ)
			continue
		}
		if out := run(nil, "pico-hsm-tool", "inspect", name); !strings.Contains(out, "Key                  : "+backupScriptKeys[i].inspected+"\n") {
			t.Errorf("%s does not hold the %s key:\n%s", name, backupScriptKeys[i].typ, out)
		}
	}
	if !bytes.Equal(read("wrap-key.bin"), wrapped[last]) {
		t.Errorf("wrap-key.bin is not the wrap of %s", backupScriptKeys[last].typ)
	}
	for _, extra := range []string{"dkek.1.pbe.~2~", fmt.Sprintf("wrap-key.bin.~%d~", last+1)} {
		if _, err := os.Lstat(filepath.Join(work, extra)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists: a copy kept for nothing", extra)
		}
	}
	t.Logf("backup.sh sequence through pcscd: %v", time.Since(start).Round(time.Millisecond))
}

// TestLegacyAside covers what no script can bring about: another program
// writing the file while the legacy action runs. Nothing is lost: the old
// file stays as FILE.~1~ and the other program's file is left alone.
func TestLegacyAside(t *testing.T) {
	errFailed := errors.New("failed")
	for _, tc := range []struct {
		name     string
		write    func(path string) error
		want     string // content of path afterwards
		kept     bool   // the old file is still at path.~1~
		wantNote string // %[1]s is the file's path
	}{
		{"written", func(p string) error { return os.WriteFile(p, []byte("new"), 0o600) }, "new", true, "%[1]s exists: kept as %[1]s.~1~\n"},
		{"failed", func(string) error { return errFailed }, "old", false, "%[1]s.~1~ put back as %[1]s\n"},
		{"failed, another program wrote the file", func(p string) error {
			os.WriteFile(p, []byte("other"), 0o600)
			return errFailed
		}, "other", true, "%[1]s was written meanwhile by another program: the old file stays as %[1]s.~1~\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "f")
			if err := os.WriteFile(f, []byte("old"), 0o600); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			err := (&legacyFlags{}).aside(&globals{stderr: &stderr}, f, func() error { return tc.write(f) })
			if tc.want == "new" && err != nil || tc.want != "new" && !errors.Is(err, errFailed) {
				t.Fatalf("aside: %v", err)
			}
			if b, _ := os.ReadFile(f); string(b) != tc.want {
				t.Errorf("f = %q, want %q", b, tc.want)
			}
			b, err := os.ReadFile(f + ".~1~")
			if tc.kept != (err == nil) || tc.kept && string(b) != "old" {
				t.Errorf("f.~1~: %q, %v; want the old file kept: %v", b, err, tc.kept)
			}
			if note := "pico-hsm-tool: " + fmt.Sprintf(tc.wantNote, f); !strings.Contains(stderr.String(), note) {
				t.Errorf("stderr %q lacks %q", stderr.String(), note)
			}
		})
	}
}
