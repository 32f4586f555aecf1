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
// real firmware, are 6, 4, 13, 12, 13 and 16).
func TestAPDUCounts(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	share := filepath.Join(dir, "s.pbe")
	cmd := func(args ...string) (int, string) {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(append([]string{"-v", "--reader", dev}, args...), strings.NewReader(""), &out, &errb); code != 0 {
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
	unwrapN, _ := cmd("unwrap-key", filepath.Join(dir, "r.bin"), "--key-reference", "10", "--pin", "648219")
	forceN, trace := cmd("unwrap-key", filepath.Join(dir, "e.bin"), "--key-reference", "10", "--force", "--pin", "648219")
	for _, c := range []struct {
		name      string
		got, max  int
		scHSMTool int
	}{
		{"status", statusN, 4, 6},
		{"import one share", importN, 2, 4},
		{"wrap RSA", wrapRSA, 6, 13},
		{"wrap EC", wrapEC, 6, 12},
		{"unwrap", unwrapN, 9, 13},
		{"unwrap --force", forceN, 9, 16},
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
