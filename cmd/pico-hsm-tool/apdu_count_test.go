package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

// TestAPDUCounts counts the APDUs of each operation in the -v trace and
// holds them to the numbers in the README (sc-hsm-tool's, recorded on the
// real firmware, are 6, 4, 13, 12, 13 and 16; it has no whole-device
// backup: one --wrap-key run per key).
func TestAPDUCounts(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	share := filepath.Join(dir, "s.pbe")
	cmd := func(args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		args = append([]string{"-v", "--reader", dev}, args...)
		if args[3] == "--reader" {
			args = append([]string{"-v"}, args[3:]...) // a command for another device
		}
		if code := run(args, strings.NewReader(""), &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errb.String())
		}
		n := 0
		for _, l := range strings.Split(errb.String(), "\n") {
			if strings.HasPrefix(l, "> ") {
				n++
			}
		}
		return n, errb.String()
	}
	cmd("create-dkek-share", share, "--password", "count-the-APDUs")
	cmd("initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
	importN, _ := cmd("import-dkek-share", share, "--password", "count-the-APDUs")
	cmd("status", "--pin", "648219")
	cmd("generate-key", "--type", "rsa:1024", "--label", "r", "--pin", "648219")
	cmd("generate-key", "--type", "ec:secp256r1", "--label", "e", "--pin", "648219")
	statusN, _ := cmd("status")
	wrapRSA, _ := cmd("wrap-key", filepath.Join(dir, "r.bin"), "--key-reference", "1", "--pin", "648219")
	wrapEC, _ := cmd("wrap-key", filepath.Join(dir, "e.bin"), "--key-reference", "2", "--pin", "648219")
	// The copies of keys 1 and 2 have their labels and IDs: the check for
	// duplicates is off, as in sc-hsm-tool's syntax.
	unwrapN, _ := cmd("unwrap-key", filepath.Join(dir, "r.bin"), "--key-reference", "10", "--allow-duplicate", "--pin", "648219")
	forceN, trace := cmd("unwrap-key", filepath.Join(dir, "e.bin"), "--key-reference", "10", "--force", "--allow-duplicate", "--pin", "648219")
	// Three keys, 1, 2 and 10: 5 + 3N.
	backupN, _ := cmd("backup", "--out-dir", filepath.Join(dir, "bk"), "--pin", "648219")
	// The check for duplicates reads the description of each key on the
	// device: none on a new device, then one.
	dev2 := []string{"--reader", "sim:" + filepath.Join(dir, "dev2.json")}
	cmd(append(dev2, "initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")...)
	cmd(append(dev2, "import-dkek-share", share, "--password", "count-the-APDUs")...)
	checked0, _ := cmd(append(dev2, "unwrap-key", filepath.Join(dir, "r.bin"), "--pin", "648219")...)
	checked1, _ := cmd(append(dev2, "unwrap-key", filepath.Join(dir, "e.bin"), "--pin", "648219")...)
	for _, c := range []struct {
		name      string
		got, max  int
		scHSMTool int
	}{
		// SELECT, SO-PIN and user PIN tries, the DKEK state of key
		// domain 0, and of slot 1 (6A86: no key domains).
		{"status", statusN, 5, 6},
		// SELECT, the DKEK status (checked before the slow decryption:
		// a device without outstanding shares fails first), IMPORT.
		{"import one share", importN, 3, 4},
		{"wrap RSA", wrapRSA, 8, 13},
		{"wrap EC", wrapEC, 8, 12},
		{"unwrap", unwrapN, 9, 13},
		{"unwrap --force", forceN, 9, 16},
		{"backup of 3 keys", backupN, 5 + 3*3, 3 * 13},
		{"unwrap, 0 keys", checked0, 9, 13},
		{"unwrap, 1 key", checked1, 9 + 1, 13},
	} {
		t.Logf("%-17s %2d APDUs (sc-hsm-tool %d)", c.name, c.got, c.scHSMTool)
		if c.got > c.max {
			t.Errorf("%s takes %d APDUs, more than the %d the README promises", c.name, c.got, c.max)
		}
	}
	if strings.Contains(trace, "DELETE FILE") {
		t.Errorf("unwrap --force deleted something before unwrapping:\n%s", trace)
	}
}
