package main

// Secret hygiene (issue "Hardening", section 3): PINs, SO-PINs, passwords,
// DKEK shares, the DKEK and decrypted key material never reach standard
// output, standard error (the -v APDU trace, notes, warnings, errors) or a
// panic, in successful and in failing runs; files that hold secrets are
// private; a failed write keeps the old file; the tool never changes its
// environment.

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/shamir"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// The secrets of the leak test: distinctive, so that finding one in the
// output cannot be chance.
const (
	leakPIN      = "Qx7-pin-5150"
	leakWrongPIN = "Qx7-bad-0000"
	leakShortPIN = "Qx7-p" // refused: shorter than 6
	leakSO       = "8D1C5A7E3B9F2046"
	leakWrongSO  = "6F4E2D0C1B3A5968"
	leakShortSO  = "8D1C5A7E3B9F" // refused: not 16 digits
	leakPW1      = "pw-Alpha-Lima-73"
	leakPW2      = "pw-Bravo-Mike-19"
	leakPW3      = "pw-Delta-Oscar-44"
	leakWrongPW  = "pw-wrong-Zulu-00"
	leakNewPW    = "pw-Charlie-Rot-27"
	leakShortPW  = "Zq9!x"
)

// leakRun is one run of the tool in the leak test.
type leakRun struct {
	args  []string
	stdin string
	// fail is "" for a run that must succeed, otherwise a piece of the
	// error it must fail with (so that the failure is the one meant).
	fail string
	// deliberate removes, from a copy of stdout, the secrets this run
	// prints on purpose, exactly; nil for none.
	deliberate func(t *testing.T, stdout string) string

	stdout, stderr string
	// checked is stdout without the deliberate secrets.
	checked string
}

func (r *leakRun) name() string { return strings.Join(r.args, " ") }

// TestSecretsNeverLeak runs every command of the tool with -v, in success
// and failure (wrong PIN, blocked PIN, wrong SO-PIN, wrong password, wrong
// password shares, wrong DKEK, a password given to the wrong option), and
// checks that no secret appears in any run's stdout or stderr: neither as
// text, nor as hex (upper and lower case, with and without the spaces of
// the trace), nor as base64; for binary secrets, neither any 8 bytes of
// them. The DKEK shares, the DKEK, the n-of-m passwords and the key
// material are read back from the files the runs wrote, with the share
// passwords and the DKEK.
//
// list-readers is left out: it needs pcscd and has no secret.
func TestSecretsNeverLeak(t *testing.T) {
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	for name, content := range map[string]string{
		"pin.txt":    leakPIN + "\n",
		"so.txt":     leakSO + "\n",
		"pw1.txt":    leakPW1 + "\n",
		"pwfile.txt": leakPW1 + "\n", // a password given as password shares
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"custodians", "custodians2"} {
		os.Mkdir(filepath.Join(dir, d), 0o700)
	}
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"PICO_HSM_TEST_KDF_ITERATIONS=1000",
		"PCSCLITE_CSOCK_NAME=" + filepath.Join(dir, "no-pcscd", "pcscd.comm"),
		"HSM_PIN=" + leakPIN,
		"SO_PIN=" + leakSO,
		"PW2=" + leakPW2,
	}

	sim := func(dev string, args ...string) []string {
		return append([]string{"-r", "sim:" + filepath.Join(dir, dev+".json")}, args...)
	}
	c1, c2, c3 := "custodians/n.pbe.share-1-of-3.txt", "custodians/n.pbe.share-2-of-3.txt", "custodians/n.pbe.share-3-of-3.txt"
	var mShares *shamir.Set // printed on purpose by "create-dkek-share m.pbe --pwd-shares-out -"
	var inspectKCV string   // printed on purpose by "dkek-share inspect s1.pbe --password"
	runs := []*leakRun{
		// Custodians create their shares.
		{args: []string{"create-dkek-share", "s1.pbe", "--password", leakPW1}},
		{args: []string{"create-dkek-share", "s2.pbe", "--password", "env:PW2"}},
		{args: []string{"create-dkek-share", "s1.pbe", "--password", leakPW1}, fail: "file exists"},
		{args: []string{"create-dkek-share", "short.pbe", "--password", leakShortPW}, fail: "at least 6 characters"},
		{args: []string{"create-dkek-share", "n.pbe", "--pwd-shares-threshold", "2", "--pwd-shares-total", "3", "--pwd-shares-out", "custodians"}},
		{args: []string{"create-dkek-share", "m.pbe", "--pwd-shares-threshold", "2", "--pwd-shares-total", "3", "--pwd-shares-out", "-"},
			deliberate: func(t *testing.T, stdout string) string {
				// Exactly the three "Share value" lines of m.pbe's shares
				// are deliberate; the rest is checked.
				blocks, _, _ := strings.Cut(stdout, "Enciphering")
				set, err := shamir.ParseSet(strings.NewReader(blocks))
				if err != nil || len(set.Shares) != 3 {
					t.Fatalf("m.pbe shares on stdout: %v\n%s", err, stdout)
				}
				mShares = set
				return removeLines(t, stdout, func(line string) bool {
					for _, sh := range set.Shares {
						if line == "Share value : "+shamir.FormatHex(sh.Value) {
							return true
						}
					}
					return false
				}, 3)
			}},
		{args: []string{"--create-dkek-share", "l.pbe", "--password", leakPW3}},

		// Offline tools.
		{args: []string{"dkek-share", "inspect", "s1.pbe"}},
		{args: []string{"dkek-share", "inspect", "s1.pbe", "--password", leakPW1},
			deliberate: func(t *testing.T, stdout string) string {
				// The share's own check value, and nothing else of it.
				share := openShare(t, filepath.Join(dir, "s1.pbe"), leakPW1)
				inspectKCV = ceremony.ShareKCV(share)
				return removeLines(t, stdout, func(line string) bool { return line == "Share check value    : "+inspectKCV }, 1)
			}},
		{args: []string{"dkek-share", "inspect", "s1.pbe", "--password", "file:pw1.txt", "--json"},
			deliberate: func(t *testing.T, stdout string) string {
				share := openShare(t, filepath.Join(dir, "s1.pbe"), leakPW1)
				return removeLines(t, stdout, func(line string) bool {
					return strings.TrimSpace(line) == `"share_kcv": "`+ceremony.ShareKCV(share)+`"`
				}, 1)
			}},
		{args: []string{"dkek-share", "inspect", "s1.pbe", "--password", leakWrongPW}, fail: "wrong password"},
		{args: []string{"dkek-share", "inspect", "n.pbe", "--pwd-shares-file", c1, "--pwd-shares-file", c3}},
		{args: []string{"dkek-share", "print", "n.pbe", "--pwd-shares-file", c1, "--pwd-shares-file", c3}},
		{args: []string{"dkek-share", "print", "n.pbe", "--pwd-shares-file", c2}, fail: "give at least 2"},
		{args: []string{"dkek-share", "kcv", "s1.pbe", "s2.pbe", "--password", leakPW1, "--password", "env:PW2"}},
		{args: []string{"dkek-share", "kcv", "s1.pbe", "s2.pbe", "--password", leakPW1, "--password", leakWrongPW}, fail: "wrong password"},
		{args: []string{"dkek-share", "kcv", "n.pbe", "--pwd-shares-file", c2, "--pwd-shares-file", c3}},
		{args: []string{"dkek-share", "kcv", "n.pbe", "--pwd-shares-file", c2}, fail: "give at least 2"},
		{args: []string{"dkek-share", "kcv", "n.pbe", "--pwd-share", leakPW1}, fail: "password shares for n.pbe"},
		{args: []string{"dkek-share", "kcv", "n.pbe", "--pwd-share", "e1:65:e9:72:0d:51:95:1f/1/" + hex.EncodeToString([]byte(leakPW2))}, fail: "password shares for n.pbe"},
		{args: []string{"dkek-share", "kcv", "n.pbe", "--pwd-shares-file", "pwfile.txt"}, fail: "password shares for n.pbe"},
		{args: []string{"dkek-share", "reshare", "s1.pbe", "--out", "s1r.pbe", "--password", leakPW1, "--new-password", "-"}, stdin: leakNewPW + "\n"},
		{args: []string{"dkek-share", "reshare", "s1.pbe", "--out", "s1x.pbe", "--password", leakWrongPW, "--new-password", leakNewPW}, fail: "wrong password"},
		{args: []string{"dkek-share", "reshare", "s1.pbe", "--out", "s1x.pbe", "--password", leakPW1, "--new-password", leakShortPW}, fail: "at least 6 characters"},
		{args: []string{"dkek-share", "reshare", "s2.pbe", "--out", "s2n.pbe", "--password", "env:PW2", "--new-pwd-shares-threshold", "2", "--new-pwd-shares-total", "3", "--pwd-shares-out", "custodians2"}},

		// Device A: initialize, import, keys, wrap, inspect, backup.
		{args: sim("a", "initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "2")},
		{args: sim("a", "initialize", "--so-pin", leakWrongSO, "--pin", leakPIN, "--dkek-shares", "2", "--yes"), fail: "wrong SO-PIN"},
		{args: sim("a", "initialize", "--so-pin", leakShortSO, "--pin", leakPIN), fail: "--so-pin must be 16 hexadecimal digits"},
		{args: sim("a", "initialize", "--so-pin", "file:so.txt", "--pin", leakShortPIN), fail: "at least 6 characters"},
		{args: sim("a", "status", "--pin", leakPIN)},
		{args: sim("a", "status", "--pin", leakWrongPIN), fail: "wrong user PIN, 2 tries left"},
		{args: sim("a", "import-dkek-share", "s1.pbe", "s2.pbe", "--password", leakPW1, "--password", leakWrongPW, "--pin", leakPIN), fail: "wrong password"},
		{args: sim("a", "import-dkek-share", "s1.pbe", "s2.pbe", "--password", leakPW1, "--password", "env:PW2", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("a", "status", "--pin", "file:pin.txt", "--last-try")}, // the right PIN resets the tries
		{args: sim("a", "import-dkek-share", "s1.pbe", "s2.pbe", "--password", leakPW1, "--password", "env:PW2", "--pin", "-"), stdin: leakPIN + "\n"},
		{args: sim("a", "status", "--pin", "env:HSM_PIN", "--json")},
		{args: sim("a", "generate-key", "--type", "ec:secp256r1", "--label", "ec", "--pin", leakPIN)},
		{args: sim("a", "generate-key", "--type", "rsa:1024", "--label", "rsa", "--pin", "env:HSM_PIN")},
		{args: sim("a", "generate-key", "--type", "aes:256", "--label", "aes", "--pin", "file:pin.txt")},
		{args: sim("a", "generate-key", "--type", "ec:secp256r1", "--label", "x", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("a", "list-keys")},
		{args: sim("a", "list-keys", "--json")},
		{args: sim("a", "wrap-key", "ec.bin", "--label", "ec", "--pin", leakPIN)},
		{args: sim("a", "wrap-key", "rsa.bin", "--label", "rsa", "--pin", leakPIN, "--json")},
		{args: sim("a", "wrap-key", "aes.bin", "--id", "03", "--pin", leakPIN)},
		{args: sim("a", "wrap-key", "x.bin", "--label", "ec", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("a", "wrap-key", "ec.bin", "--label", "ec", "--pin", leakPIN), fail: "file exists"},
		{args: []string{"inspect", "ec.bin", "--dkek-share", "s1.pbe", "--dkek-share", "s2.pbe", "--password", leakPW1, "--password", "env:PW2"}},
		{args: []string{"inspect", "rsa.bin", "--dkek-share", "s1.pbe", "--dkek-share", "s2.pbe", "--password", leakPW1, "--password", "env:PW2", "--json"}},
		{args: []string{"inspect", "aes.bin", "--dkek-share", "s1.pbe", "--dkek-share", "s2.pbe", "--password", leakPW1, "--password", "env:PW2"}},
		{args: []string{"inspect", "ec.bin", "--dkek-share", "s1.pbe", "--password", leakPW1}, fail: "made under another DKEK"},
		{args: []string{"inspect", "ec.bin", "--dkek-share", "s1.pbe", "--dkek-share", "s2.pbe", "--password", leakPW1, "--password", leakWrongPW}, fail: "wrong password"},
		{args: sim("a", "backup", "--out-dir", "bk", "--pin", leakPIN, "--verify", "--dkek-share", "s1.pbe", "--dkek-share", "s2.pbe", "--password", leakPW1, "--password", "env:PW2")},
		{args: sim("a", "backup", "--out-dir", "bk", "--pin", leakPIN, "--force", "--json")},
		{args: sim("a", "backup", "--out-dir", "bk2", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("a", "backup", "--out-dir", "bk3", "--pin", leakPIN, "--verify", "--dkek-share", "n.pbe", "--pwd-shares-file", c1, "--pwd-shares-file", c2), fail: "some keys failed"},

		// Device B: sc-hsm-tool's options.
		{args: sim("b", "--initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "2")},
		{args: sim("b", "--import-dkek-share", "s1.pbe", "--password", leakPW1)},
		{args: sim("b", "--import-dkek-share", "s2.pbe", "--password", leakWrongPW), fail: "wrong password"},
		{args: sim("b", "--import-dkek-share", "s2.pbe", "--password", leakPW2, "--pin", leakPIN)},
		{args: sim("b", "--unwrap-key", "ec.bin", "--key-reference", "4", "--pin", leakPIN)},
		{args: sim("b", "--unwrap-key", "ec.bin", "--key-reference", "4", "--pin", leakPIN), fail: "holds a key"},
		{args: sim("b", "--wrap-key", "lw.bin", "--key-reference", "4", "--pin", leakPIN)},
		{args: sim("b", "--pin", leakPIN)},
		{args: sim("b", "--json")},
		{args: sim("b", "unwrap-key", "rsa.bin", "--pin", leakPIN, "--json")},
		{args: sim("b", "unwrap-key", "aes.bin", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("b", "--initialize", "--so-pin", leakWrongSO, "--pin", leakPIN, "--dkek-shares", "1", "--yes"), fail: "wrong SO-PIN"},

		// Device C: the rotated share, then a restore.
		{args: sim("c", "initialize", "--so-pin", "env:SO_PIN", "--pin", "env:HSM_PIN", "--dkek-shares", "2")},
		{args: sim("c", "import-dkek-share", "s1r.pbe", "s2.pbe", "--password", leakNewPW, "--password", "env:PW2", "--pin", leakPIN)},
		{args: sim("c", "restore", "--from", "bk", "--pin", leakWrongPIN), fail: "wrong user PIN"},
		{args: sim("c", "restore", "--from", "bk", "--pin", leakPIN)},
		{args: sim("c", "restore", "--from", "bk", "--pin", leakPIN, "--json"), fail: "nothing was restored"},

		// Device E: another DKEK, from an n-of-m share.
		{args: sim("e", "initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "1")},
		{args: sim("e", "import-dkek-share", "n.pbe", "--pwd-shares-file", "custodians2/s2n.pbe.share-1-of-3.txt", "--pwd-shares-file", "custodians2/s2n.pbe.share-2-of-3.txt", "--pin", leakPIN), fail: "do not rebuild"},
		{args: sim("e", "import-dkek-share", "n.pbe", "--pwd-shares-total", "2", "--pwd-shares-file", c1, "--pwd-shares-file", c3, "--pin", leakPIN)},
		{args: sim("e", "restore", "--from", "bk", "--pin", leakPIN), fail: "wrong DKEK"},
		{args: sim("e", "unwrap-key", "ec.bin", "--pin", leakPIN), fail: "wrong DKEK"},

		// Device D: the user PIN runs out of tries, then is blocked.
		{args: sim("d", "initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "1")},
		{args: sim("d", "status", "--pin", leakWrongPIN), fail: "2 tries left"},
		{args: sim("d", "status", "--pin", leakWrongPIN), fail: "1 try left"},
		{args: sim("d", "import-dkek-share", "s1.pbe", "--password", leakPW1, "--pin", leakWrongPIN), fail: "run again with --last-try"},
		{args: sim("d", "wrap-key", "x.bin", "--key-reference", "1", "--pin", leakWrongPIN), fail: "run again with --last-try"},
		{args: sim("d", "status", "--pin", leakWrongPIN, "--last-try"), fail: "blocked"},
		{args: sim("d", "status", "--pin", leakPIN), fail: "blocked"},
		{args: sim("d", "import-dkek-share", "s1.pbe", "--password", leakPW1, "--pin", leakPIN), fail: "blocked"},
		{args: sim("d", "wrap-key", "x.bin", "--key-reference", "1", "--pin", leakPIN), fail: "blocked"},
		{args: sim("d", "initialize", "--so-pin", leakWrongSO, "--pin", leakPIN, "--yes"), fail: "wrong SO-PIN"},
		{args: sim("d", "initialize", "--so-pin", "env:SO_PIN", "--pin", leakPIN, "--yes")},

		// No device at all: pcscd is down.
		{args: []string{"status", "--pin", leakPIN}, fail: "pcscd is not running"},
		{args: []string{"--initialize", "--so-pin", leakSO, "--pin", leakPIN}, fail: "pcscd is not running"},
	}
	for _, r := range runs {
		r.run(t, bin, dir, env)
		r.checked = r.stdout
		if r.deliberate != nil {
			r.checked = r.deliberate(t, r.stdout)
		}
	}

	// The secrets, read back from the files the runs wrote.
	var secrets []leakSecret
	for _, s := range []struct{ name, v string }{
		{"user PIN", leakPIN}, {"wrong user PIN", leakWrongPIN}, {"short user PIN", leakShortPIN},
		{"SO-PIN", leakSO}, {"wrong SO-PIN", leakWrongSO}, {"short SO-PIN", leakShortSO},
		{"password 1", leakPW1}, {"password 2", leakPW2}, {"password 3", leakPW3},
		{"wrong password", leakWrongPW}, {"new password", leakNewPW}, {"short password", leakShortPW},
	} {
		secrets = append(secrets, textSecret(s.name, s.v))
	}
	so, _ := hex.DecodeString(leakSO)
	wrongSO, _ := hex.DecodeString(leakWrongSO)
	secrets = append(secrets, binarySecret("SO-PIN bytes", so), binarySecret("wrong SO-PIN bytes", wrongSO))
	pbe := func(name, pw string) []byte {
		share := openShare(t, filepath.Join(dir, name), pw)
		secrets = append(secrets, binarySecret("DKEK share "+name, share))
		file, _ := os.ReadFile(filepath.Join(dir, name))
		key, iv := dkekshare.DeriveKeyIV([]byte(pw), file[8:16], nil)
		secrets = append(secrets, binarySecret("AES key of "+name, key[:]), binarySecret("IV of "+name, iv[:]))
		return share
	}
	s1, s2 := pbe("s1.pbe", leakPW1), pbe("s2.pbe", leakPW2)
	pbe("s1r.pbe", leakNewPW)
	pbe("l.pbe", leakPW3)
	for _, f := range []struct{ pbe, sharesDir, prefix string }{
		{"n.pbe", "custodians", "n.pbe"},
		{"s2n.pbe", "custodians2", "s2n.pbe"},
		{"m.pbe", "", ""},
	} {
		set := mShares
		if f.sharesDir != "" {
			var text []byte
			for id := 1; id <= 3; id++ {
				b, err := os.ReadFile(filepath.Join(dir, f.sharesDir, fmt.Sprintf("%s.share-%d-of-3.txt", f.prefix, id)))
				if err != nil {
					t.Fatal(err)
				}
				text = append(text, b...)
			}
			var err error
			if set, err = shamir.ParseSet(bytes.NewReader(text)); err != nil {
				t.Fatal(err)
			}
		}
		if set == nil {
			t.Fatalf("no password shares for %s", f.pbe)
		}
		pw, err := shamir.Combine(set)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, binarySecret("n-of-m password of "+f.pbe, pw))
		secrets = append(secrets, colonSecret("n-of-m password of "+f.pbe, new(big.Int).SetBytes(pw)))
		for _, sh := range set.Shares {
			secrets = append(secrets, colonSecret(fmt.Sprintf("password share %d of %s", sh.ID, f.pbe), sh.Value))
		}
		pbe(f.pbe, string(pw))
	}
	dkek := make([]byte, 32)
	for i := range dkek {
		dkek[i] = s1[i] ^ s2[i]
	}
	keys := wrap.Derive(dkek)
	secrets = append(secrets, binarySecret("DKEK", dkek), binarySecret("Kenc", keys.Enc[:]), binarySecret("Kmac", keys.MAC[:]))
	wrapped, _ := filepath.Glob(filepath.Join(dir, "*.bin"))
	more, _ := filepath.Glob(filepath.Join(dir, "bk", "*.bin"))
	wrapped = append(wrapped, more...)
	if len(wrapped) < 7 {
		t.Fatalf("wrapped-key files: %v", wrapped)
	}
	for _, path := range wrapped {
		for name, v := range openKey(t, path, dkek) {
			secrets = append(secrets, binarySecret(filepath.Base(path)+" "+name, v))
		}
	}

	checked := 0
	for _, r := range runs {
		for where, text := range map[string]string{"stdout": r.checked, "stderr": r.stderr} {
			if strings.Contains(text, "panic:") || strings.Contains(text, "goroutine ") {
				t.Errorf("%s: a panic on %s:\n%s", r.name(), where, text)
			}
			for _, s := range secrets {
				for _, form := range s.forms {
					if strings.Contains(text, form) {
						t.Errorf("%s: %s on %s, as %q:\n%s", r.name(), s.name, where, form, text)
					}
				}
			}
			checked++
		}
	}
	// The deliberate outputs are what they claim to be.
	if inspectKCV == "" || len(mShares.Shares) != 3 {
		t.Fatal("the deliberate outputs were not checked")
	}
	n := 0
	for _, s := range secrets {
		n += len(s.forms)
	}
	t.Logf("%d runs, %d outputs, %d secrets in %d forms: no leak", len(runs), checked, len(secrets), n)
}

// run runs the tool in dir, in a session of its own: no controlling
// terminal, so that a prompt can never wait on the developer's terminal.
func (r *leakRun) run(t *testing.T, bin, dir string, env []string) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"-v"}, r.args...)...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(r.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = newSession()
	err := cmd.Run()
	r.stdout, r.stderr = stdout.String(), stderr.String()
	var ee *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &ee):
		t.Fatalf("%s: %v", r.name(), err)
	case r.fail == "" && err != nil:
		t.Fatalf("%s: %v\n%s%s", r.name(), err, r.stdout, r.stderr)
	case r.fail != "" && err == nil:
		t.Fatalf("%s: succeeded, want an error with %q\n%s%s", r.name(), r.fail, r.stdout, r.stderr)
	case r.fail != "" && !strings.Contains(r.stderr, r.fail):
		t.Fatalf("%s: want an error with %q\n%s", r.name(), r.fail, r.stderr)
	}
}

// removeLines removes the lines of out that drop says, which must be n.
func removeLines(t *testing.T, out string, drop func(string) bool, n int) string {
	t.Helper()
	var keep []string
	dropped := 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if drop(sc.Text()) {
			dropped++
			continue
		}
		keep = append(keep, sc.Text())
	}
	if dropped != n {
		t.Fatalf("%d deliberate lines, want %d:\n%s", dropped, n, out)
	}
	return strings.Join(keep, "\n")
}

func openShare(t *testing.T, path, pw string) []byte {
	t.Helper()
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	share, err := dkekshare.Open(file, []byte(pw), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return share
}

// openKey returns the private parts of the key in a wrapped-key file.
func openKey(t *testing.T, path string, dkek []byte) map[string][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wrap.ParseFile(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	bl, err := wrap.ParseBlob(f.Blob)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	k, err := bl.Open(dkek)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	parts := map[string][]byte{}
	for name, v := range map[string][]byte{"D": k.D, "P": k.P, "Q": k.Q, "DP": k.DP, "DQ": k.DQ, "PQ": k.PQ, "AES key": k.Secret} {
		if len(v) > 0 {
			parts[name] = v
		}
	}
	if len(parts) == 0 {
		t.Fatalf("%s: no private key material", path)
	}
	return parts
}

// leakSecret is a secret and every form it must not appear in.
type leakSecret struct {
	name  string
	forms []string
}

// textSecret is a PIN or password: its text and any 6 characters of it,
// and the hex of its bytes.
func textSecret(name, v string) leakSecret {
	s := leakSecret{name: name, forms: []string{v}}
	if !isHex(v) { // a hex SO-PIN is also checked as bytes, whole
		for i := 0; i+6 <= len(v); i++ {
			s.forms = append(s.forms, v[i:i+6])
		}
	}
	s.forms = append(s.forms, hexForms([]byte(v))...)
	return s
}

// binarySecret is a key, share or password of bytes: the hex of the whole
// and of any 8 bytes of it, and its base64.
func binarySecret(name string, v []byte) leakSecret {
	s := leakSecret{name: name}
	s.forms = append(s.forms, hexForms(v)...)
	for i := 0; i+8 < len(v); i++ {
		s.forms = append(s.forms, hexForms(v[i:i+8])...)
	}
	s.forms = append(s.forms, base64.StdEncoding.EncodeToString(v), base64.RawURLEncoding.EncodeToString(v))
	return s
}

// colonSecret is a value as sc-hsm-tool prints password shares.
func colonSecret(name string, v *big.Int) leakSecret {
	return leakSecret{name: name, forms: []string{shamir.FormatHex(v), strings.ToUpper(shamir.FormatHex(v))}}
}

// hexForms: lower and upper case, run together, spaced as the trace
// prints bytes ("36 34 38 …"), and with colons as password shares are
// printed.
func hexForms(b []byte) []string {
	h := hex.EncodeToString(b)
	spaced := fmt.Sprintf("% x", b)
	colons := strings.ReplaceAll(spaced, " ", ":")
	return []string{h, strings.ToUpper(h), spaced, strings.ToUpper(spaced), colons, strings.ToUpper(colons)}
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}

// TestSecretFilesPrivate checks the modes of every file that holds a
// secret or a backup, also under umask 0 and over an existing file of
// mode 0644, and that a backup directory the tool creates is private.
func TestSecretFilesPrivate(t *testing.T) {
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	old := setUmask(0)
	defer setUmask(old)
	env := []string{"PATH=" + os.Getenv("PATH"), "PICO_HSM_TEST_KDF_ITERATIONS=1000"}
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = newSession()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	os.WriteFile(filepath.Join(dir, "s2.pbe"), []byte("an older file, readable by all"), 0o644)
	os.Mkdir(filepath.Join(dir, "cust"), 0o755)
	dev := "sim:" + filepath.Join(dir, "dev.json")
	run("create-dkek-share", "s1.pbe", "--password", leakPW1)
	run("create-dkek-share", "s2.pbe", "--password", leakPW2, "--force")
	run("create-dkek-share", "n.pbe", "--pwd-shares-threshold", "2", "--pwd-shares-total", "3", "--pwd-shares-out", "cust")
	run("dkek-share", "reshare", "s1.pbe", "--out", "s1r.pbe", "--password", leakPW1, "--new-password", leakNewPW)
	run("-r", dev, "initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "1")
	run("-r", dev, "import-dkek-share", "s1.pbe", "--password", leakPW1, "--pin", leakPIN)
	run("-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "k", "--pin", leakPIN)
	run("-r", dev, "wrap-key", "k.bin", "--key-reference", "1", "--pin", leakPIN)
	run("-r", dev, "--wrap-key", "legacy.bin", "--key-reference", "1", "--pin", leakPIN)
	run("-r", dev, "backup", "--out-dir", "new/bk", "--pin", leakPIN)
	files := []string{"s1.pbe", "s2.pbe", "n.pbe", "s1r.pbe", "k.bin", "legacy.bin", "dev.json", "new/bk/manifest.json", "new/bk/key-001-k.bin"}
	for id := 1; id <= 3; id++ {
		files = append(files, fmt.Sprintf("cust/n.pbe.share-%d-of-3.txt", id))
	}
	for _, f := range files {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", f, fi.Mode().Perm(), err)
		}
	}
	for _, d := range []string{"new", "new/bk"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, %v; want 0700", d, fi.Mode().Perm(), err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// TestFailedWriteKeepsOld: a share file, a wrapped key and a backup that
// cannot be written (a directory the tool may not write in) leave the old
// files as they were, and no temporary file behind. Root may write
// anywhere, so as root the tool runs without CAP_DAC_OVERRIDE (setpriv).
// The same with a full disk is in testdata/errors/files.txtar (a tmpfs)
// and internal/atomicfile (an injected write error).
func TestFailedWriteKeepsOld(t *testing.T) {
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.MkdirAll(filepath.Join(ro, "bk"), 0o700)
	old := map[string]string{"s.pbe": "old share file", "k.bin": "old wrapped key", "bk/manifest.json": "old manifest"}
	for name, content := range old {
		os.WriteFile(filepath.Join(ro, name), []byte(content), 0o600)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "PICO_HSM_TEST_KDF_ITERATIONS=1000"}
	dev := "sim:" + filepath.Join(dir, "dev.json")
	run := func(unprivileged bool, args ...string) (string, error) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		if unprivileged {
			cmd = nodac(t, bin, args...)
		}
		cmd.Dir, cmd.Env = dir, env
		cmd.SysProcAttr = newSession()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, args := range [][]string{
		{"-r", dev, "initialize", "--so-pin", leakSO, "--pin", leakPIN, "--dkek-shares", "1"},
		{"create-dkek-share", "s.pbe", "--password", leakPW1},
		{"-r", dev, "import-dkek-share", "s.pbe", "--password", leakPW1, "--pin", leakPIN},
		{"-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "k", "--pin", leakPIN},
	} {
		if out, err := run(false, args...); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	os.Chmod(filepath.Join(ro, "bk"), 0o500)
	os.Chmod(ro, 0o500)
	defer os.Chmod(ro, 0o700)
	defer os.Chmod(filepath.Join(ro, "bk"), 0o700)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"create-dkek-share", "ro/s.pbe", "--password", leakPW2, "--force"}, "cannot write ro/s.pbe: permission denied: you may not write in that directory"},
		{[]string{"-r", dev, "wrap-key", "ro/k.bin", "--key-reference", "1", "--pin", leakPIN, "--force"}, "cannot write ro/k.bin: permission denied"},
		{[]string{"-r", dev, "backup", "--out-dir", "ro/bk", "--pin", leakPIN, "--force"}, "permission denied"},
		{[]string{"dkek-share", "reshare", "s.pbe", "--out", "ro/s.pbe", "--password", leakPW1, "--new-password", leakNewPW, "--force"}, "cannot write ro/s.pbe: permission denied"},
	} {
		out, err := run(true, tt.args...)
		if err == nil || !strings.Contains(out, tt.want) {
			t.Errorf("%s: %v, want %q:\n%s", strings.Join(tt.args, " "), err, tt.want, out)
		}
	}
	for name, content := range old {
		if b, err := os.ReadFile(filepath.Join(ro, name)); err != nil || string(b) != content {
			t.Errorf("%s: %q %v; the old file changed", name, b, err)
		}
	}
	for _, d := range []string{ro, filepath.Join(ro, "bk")} {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if strings.Contains(e.Name(), ".tmp") {
				t.Errorf("temporary file left: %s", e.Name())
			}
		}
	}
}

// nodac returns a command that runs bin without the capabilities that let
// root write anywhere, so that a read-only directory refuses it as it
// refuses everybody else. Other users run bin as it is.
func nodac(t *testing.T, bin string, args ...string) *exec.Cmd {
	if os.Geteuid() != 0 {
		return exec.Command(bin, args...)
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("running as root without setpriv (util-linux): cannot drop CAP_DAC_OVERRIDE to test a directory without write permission")
	}
	return exec.Command(setpriv, append([]string{"--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all", "--", bin}, args...)...)
}

// TestNoEnvironmentChanges: the tool never changes its environment, so
// it can never pass a secret on to another program through it. In the
// source of every package linked into the tool nothing calls Setenv,
// Unsetenv or Clearenv; and running commands that read secrets from
// env:VAR leaves the environment exactly as it was.
func TestNoEnvironmentChanges(t *testing.T) {
	ctx := build.Default
	seen := map[string]bool{}
	var walk func(path, srcDir string)
	fset := token.NewFileSet()
	files := 0
	walk = func(path, srcDir string) {
		if seen[path] {
			return
		}
		seen[path] = true
		pkg, err := ctx.Import(path, srcDir, 0)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, name := range slices.Concat(pkg.GoFiles, pkg.CgoFiles) {
			f, err := parser.ParseFile(fset, filepath.Join(pkg.Dir, name), nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files++
			envPkgs := map[string]bool{}
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == "os" || p == "syscall" || p == "golang.org/x/sys/unix" {
					n := filepath.Base(p)
					if imp.Name != nil {
						n = imp.Name.Name
					}
					envPkgs[n] = true
				}
			}
			ast.Inspect(f, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && envPkgs[id.Name] {
					switch sel.Sel.Name {
					case "Setenv", "Unsetenv", "Clearenv":
						t.Errorf("%s: %s.%s: the tool must not change its environment", fset.Position(sel.Pos()), id.Name, sel.Sel.Name)
					}
				}
				return true
			})
		}
		for _, imp := range pkg.Imports {
			if strings.HasPrefix(imp, "github.com/pico-hsm-tool/pico-hsm-tool/") {
				walk(imp, pkg.Dir)
			}
		}
	}
	wd, _ := os.Getwd()
	walk(".", wd)
	if files < 20 || !seen["github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"] {
		t.Fatalf("only %d files in %d packages checked", files, len(seen))
	}

	// At run time, in this process.
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	t.Setenv("LEAK_PIN", leakPIN)
	t.Setenv("LEAK_SO", leakSO)
	t.Setenv("LEAK_PW", leakPW1)
	before := os.Environ()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	share := filepath.Join(dir, "s.pbe")
	for _, args := range [][]string{
		{"create-dkek-share", share, "--password", "env:LEAK_PW"},
		{"-r", dev, "initialize", "--so-pin", "env:LEAK_SO", "--pin", "env:LEAK_PIN", "--dkek-shares", "1"},
		{"-r", dev, "import-dkek-share", share, "--password", "env:LEAK_PW", "--pin", "env:LEAK_PIN"},
		{"-r", dev, "status", "--pin", "env:LEAK_PIN"},
		{"-r", dev, "status", "--pin", leakWrongPIN},
		{"dkek-share", "kcv", share, "--password", "env:LEAK_PW"},
	} {
		var out bytes.Buffer
		run(args, strings.NewReader(""), &out, &out)
		if after := os.Environ(); !slices.Equal(before, after) {
			t.Fatalf("%s changed the environment:\nbefore %q\nafter  %q", strings.Join(args, " "), before, after)
		}
	}
}
