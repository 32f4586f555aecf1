package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// TestE2EShareInterop exchanges DKEK share files with OpenSC's sc-hsm-tool
// through pcscd, in both directions, with the real 10,000,000-iteration
// key derivation: a share sc-hsm-tool created imports with ours and the
// reverse, a device initialized by either tool takes shares from the other,
// and the key check value read with OpenSC equals ours and equals
// "dkek-share kcv" on the files.
func TestE2EShareInterop(t *testing.T) {
	testbed.SkipShort(t)
	dir := t.TempDir()
	theirs := filepath.Join(dir, "theirs.pbe")
	ours := filepath.Join(dir, "ours.pbe")
	var kcv string

	t.Run("initialized by sc-hsm-tool", func(t *testing.T) {
		bed, _ := startBed(t, "interop-1")
		run := runner(t, bed)
		run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "2")
		out := run("sc-hsm-tool", "--create-dkek-share", theirs, "--password", "theirs-Pw-2026")
		if !strings.Contains(out, "DKEK share created and saved to "+theirs) {
			t.Fatalf("sc-hsm-tool --create-dkek-share:\n%s", out)
		}
		out = run("pico-hsm-tool", "create-dkek-share", ours, "--password", "ours-Pw-2026")
		if !regexp.MustCompile(`\AEnciphering DKEK share, please wait\.\.\.\nDKEK share created and saved to ` + regexp.QuoteMeta(ours) + `\nShare check value    : [0-9A-F]{16} \(write it down with the file name ` + regexp.QuoteMeta(ours) + `\)\n\z`).MatchString(out) {
			t.Fatalf("create-dkek-share:\n%s", out)
		}

		// Ours imports sc-hsm-tool's file, with sc-hsm-tool's lines.
		out = run("pico-hsm-tool", "import-dkek-share", theirs, "--password", "theirs-Pw-2026")
		want := "Using reader with a card: Virtual PCD 00 00\nDeciphering DKEK share, please wait...\nDKEK share imported\nDKEK shares          : 2\nDKEK import pending, 1 share(s) still missing\n"
		if !strings.HasPrefix(out, want) {
			t.Fatalf("import-dkek-share:\n%s", out)
		}
		// sc-hsm-tool imports ours; on a Pico HSM it prints a zero KCV.
		out = run("sc-hsm-tool", "--import-dkek-share", ours, "--password", "ours-Pw-2026")
		if !strings.Contains(out, "DKEK share imported\nDKEK shares          : 2\nDKEK key check value : 0000000000000000\n") {
			t.Fatalf("sc-hsm-tool --import-dkek-share:\n%s", out)
		}

		// The real KCV, read with OpenSC in one session (transcripts/10).
		out = run("opensc-tool", "-s", "00A404000BE82B0601040181C31F0201", "-s", "0020008106363438323139", "-s", "8052000000")
		m := regexp.MustCompile(`(?m)^02 00 ((?:[0-9A-F]{2} ){8})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("opensc-tool KCV query:\n%s", out)
		}
		kcv = strings.ReplaceAll(m[1], " ", "")
		if kcv == "0000000000000000" {
			t.Fatal("opensc-tool read a zero KCV after VERIFY")
		}
		out = run("pico-hsm-tool", "status", "--pin", "648219")
		if !strings.Contains(out, "DKEK key check value : "+kcv+"\n") {
			t.Fatalf("status --pin shows another KCV than OpenSC (%s):\n%s", kcv, out)
		}
		out = run("pico-hsm-tool", "dkek-share", "kcv", theirs, ours, "--password", "theirs-Pw-2026", "--password", "ours-Pw-2026")
		if !strings.Contains(out, "DKEK key check value : "+kcv+"\n") {
			t.Fatalf("dkek-share kcv differs from the device (%s):\n%s", kcv, out)
		}
	})

	t.Run("initialized by pico-hsm-tool", func(t *testing.T) {
		if kcv == "" {
			t.Fatal("the previous subtest failed: its share files are needed here")
		}
		bed, _ := startBed(t, "interop-2")
		run := runner(t, bed)
		run("pico-hsm-tool", "initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "2")
		out := run("sc-hsm-tool")
		if !strings.Contains(out, "DKEK import pending, 2 share(s) still missing") {
			t.Fatalf("sc-hsm-tool on a device we initialized:\n%s", out)
		}
		run("sc-hsm-tool", "--import-dkek-share", theirs, "--password", "theirs-Pw-2026")
		out = run("pico-hsm-tool", "import-dkek-share", ours, "--password", "ours-Pw-2026", "--pin", "648219")
		if !strings.Contains(out, "DKEK key check value : "+kcv+"\n") {
			t.Fatalf("the same two shares make another DKEK (want %s):\n%s", kcv, out)
		}
	})
}
