package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestE2EPullSpareMidShare pulls the spare out of its reader in the
// middle of a two-device ceremony, as its third share is about to go in
// (issue 12: "a card pulled from the second device in the middle of the
// third share"), through pcscd and vpcd. The primary finishes; the report
// tells the truth about each device and prints the command that finishes
// the spare; that command, run as printed once the spare is back, imports
// only the share the spare lacks; and both devices end with one DKEK.
func TestE2EPullSpareMidShare(t *testing.T) {
	bed, dir := startFaultBed(t)
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	bed.InsertSecondCard([]string{bin, "sim", "bridge", filepath.Join(dir, "spare.json")})
	must := e2eMust(t, bed, dir)
	pws := []string{"custodian-one-Pw", "custodian-two-Pw", "custodian-three-Pw"}
	files := []string{"c1.pbe", "c2.pbe", "c3.pbe"}
	var withPasswords []string
	for i, f := range files {
		must("create-dkek-share", f, "--password", pws[i])
		withPasswords = append(withPasswords, "--password", pws[i])
	}
	kcv := regexp.MustCompile(`DKEK key check value : ([0-9A-F]{16})`).FindStringSubmatch(must(append([]string{"dkek-share", "kcv"}, append(files, withPasswords...)...)...))
	if kcv == nil {
		t.Fatal("dkek-share kcv printed no value")
	}
	want := kcv[1]
	must("--all-readers", "initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "3")

	// MANAGE DKEK (INS 52) through PC/SC: the status of each device when
	// they are checked (1, 2), then per device the status and the three
	// shares: the spare's third share is the tenth.
	args := append(append([]string{"--all-readers", "import-dkek-share"}, files...), append(withPasswords, "--pin", matrixPIN)...)
	code, out := pausedTool(t, bed, dir, "ins=52:10", bed.RemoveSecondCard, args...)
	t.Logf("report:\n%s", out)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, line := range []string{
		"Device Virtual PCD 00 00: DKEK key check value " + want,
		"Device Virtual PCD 00 01: not done, 2 of 3 shares are in, and c3.pbe may be: its answer was lost (the card was pulled or the reader failed); put the device back and finish with: pico-hsm-tool --reader \"Virtual PCD 00 01\" import-dkek-share c1.pbe c2.pbe c3.pbe --resume --expect-kcv " + want + " --pin …",
		"pico-hsm-tool: 1 of 2 devices did not end with the DKEK: see the line for each",
	} {
		if !strings.Contains(out, line+"\n") {
			t.Errorf("the report lacks %q", line)
		}
	}
	if strings.Contains(out, "All 2 devices hold") {
		t.Error("the report claims both devices are done")
	}

	bed.ReinsertSecondCard()
	st := must("--reader", "Virtual PCD 00 01", "status")
	if !strings.Contains(st, "DKEK import pending, 1 share(s) still missing\n") {
		t.Fatalf("the spare after the pull:\n%s", st)
	}
	// The command as printed, with the PIN and the passwords: every file
	// is decrypted, only the third share imported.
	m := regexp.MustCompile(`finish with: pico-hsm-tool --reader "Virtual PCD 00 01" (.*) --pin …\n`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no command to finish the spare")
	}
	resume := append([]string{"--reader", "Virtual PCD 00 01"}, strings.Fields(m[1])...)
	done := must(append(resume, append(withPasswords, "--pin", matrixPIN)...)...)
	if strings.Count(done, "DKEK share imported\n") != 1 || !strings.Contains(done, "DKEK key check value : "+want+"\n") {
		t.Fatalf("finishing the spare:\n%s", done)
	}
	// Run again, it changes nothing.
	again := must(append(resume, append(withPasswords, "--pin", matrixPIN)...)...)
	if !strings.Contains(again, "No DKEK share left to import: all 3 are in\n") || strings.Contains(again, "DKEK share imported") {
		t.Fatalf("the same command again:\n%s", again)
	}
	both := must("--all-readers", "status", "--pin", matrixPIN)
	if !strings.Contains(both, "DKEKs                : all 2 devices hold DKEK "+want+"\n") {
		t.Fatalf("status of both:\n%s", both)
	}
}
