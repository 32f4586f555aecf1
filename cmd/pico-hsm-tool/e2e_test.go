package main

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// The end-to-end tests drive the simulated Pico HSM through the real PC/SC
// stack: a private pcscd with vsmartcard's vpcd reader, and "pico-hsm-tool
// sim bridge" plugging the simulator into that reader. OpenSC's tools are
// the independent peer. They skip loudly when pcscd cannot run here, and
// fail instead under PICO_HSM_E2E=require (CI).

// startBed starts pcscd and returns the bed and the simulated device's
// state file. The kind of bed follows the script's name: "blank-" serves a
// card without the SmartCard-HSM application, "nocard-" a reader with no
// card, "noreader-" no reader at all; anything else a fresh simulated
// Pico HSM.
func startBed(t *testing.T, name string) (*testbed.Bed, string) {
	t.Helper()
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "dev.json")
	switch {
	case strings.HasPrefix(name, "noreader-"):
		return testbed.StartNoReaders(t), state
	case strings.HasPrefix(name, "nocard-"):
		return testbed.Start(t, nil), state
	case strings.HasPrefix(name, "blank-"):
		return testbed.Start(t, []string{bin, "sim", "bridge", "--blank", state}), state
	}
	return testbed.Start(t, []string{bin, "sim", "bridge", state}), state
}

// TestE2EScripts runs each script of testdata/e2e against its own bed.
// Scripts can change the bed with the "bed" command: remove-card,
// insert-card, stop-pcscd.
// bridgeCommand is the command line of a bridge that plugs the simulated
// device of state file state into the bed's reader.
func bridgeCommand(ts *testscript.TestScript, state string) []string {
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		ts.Fatalf("%v", err)
	}
	return []string{bin, "sim", "bridge", state}
}

func TestE2EScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/e2e/*.txtar")
	if err != nil || len(files) == 0 {
		t.Fatalf("no e2e scripts: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txtar")
		t.Run(name, func(t *testing.T) {
			bed, state := startBed(t, name)
			testscript.Run(t, testscript.Params{
				Files:               []string{f},
				RequireExplicitExec: true,
				Setup: func(env *testscript.Env) error {
					env.Setenv("PCSCLITE_CSOCK_NAME", bed.Socket())
					env.Setenv("STATE", state)
					env.Setenv("VECTORS", vectorsDir)
					return nil
				},
				Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
					"kcv": scriptCmds["kcv"],
					"bed": func(ts *testscript.TestScript, neg bool, args []string) {
						if neg || len(args) < 1 {
							ts.Fatalf("usage: bed remove-card|insert-card|stop-pcscd|swap-card STATE|second-card STATE")
						}
						switch args[0] {
						case "second-card":
							// A second simulated device, in vpcd's
							// second reader.
							if len(args) != 2 {
								ts.Fatalf("usage: bed second-card STATE")
							}
							bed.InsertSecondCard(bridgeCommand(ts, ts.MkAbs(args[1])))
						case "swap-card":
							// Another simulated device in the reader:
							// STATE is its state file, made anew if
							// missing.
							if len(args) != 2 {
								ts.Fatalf("usage: bed swap-card STATE")
							}
							bed.SwapCard(bridgeCommand(ts, ts.MkAbs(args[1])))
						case "remove-card":
							bed.RemoveCard()
						case "insert-card":
							bed.InsertCard()
						case "stop-pcscd":
							bed.StopPCSCD()
						default:
							ts.Fatalf("unknown bed action %q", args[0])
						}
					},
				},
			})
		})
	}
}

// TestE2EStatusMatchesSCHSMTool checks that OpenSC's sc-hsm-tool, with no
// arguments, and this tool's status print the same facts about the
// simulated device through pcscd: factory-new, then after sc-hsm-tool
// initialized it, then after a wrong PIN.
func TestE2EStatusMatchesSCHSMTool(t *testing.T) {
	bed, _ := startBed(t, "status")
	compare := func(stage string) {
		t.Helper()
		theirs, err := bed.Run("sc-hsm-tool")
		if err != nil {
			t.Fatalf("%s: sc-hsm-tool: %v\n%s", stage, err, theirs)
		}
		ours, err := bed.Run("pico-hsm-tool", "status")
		if err != nil {
			t.Fatalf("%s: pico-hsm-tool status: %v\n%s", stage, err, ours)
		}
		want := facts(theirs)
		got := facts(ours)
		if stage == "factory" {
			// sc-hsm-tool prints a zero KCV after its DKEK query failed
			// with 6B00 on a device never initialized; there is no DKEK.
			want = slices.DeleteFunc(want, func(l string) bool { return l == "DKEK key check value : 0000000000000000" })
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: facts differ\nsc-hsm-tool:\n  %s\npico-hsm-tool:\n  %s", stage, strings.Join(want, "\n  "), strings.Join(got, "\n  "))
		}
		if len(got) < 3 {
			t.Errorf("%s: too few facts: %q", stage, got)
		}
	}
	compare("factory")

	out, err := bed.Run("sc-hsm-tool", "--initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "3")
	if err != nil {
		t.Fatalf("sc-hsm-tool --initialize: %v\n%s", err, out)
	}
	compare("initialized")

	// A wrong PIN through our tool shows in both tools' tries left.
	out, err = bed.Run("pico-hsm-tool", "status", "--pin", "000000")
	if err == nil || !strings.Contains(out, "wrong user PIN, 2 tries left") {
		t.Fatalf("status with a wrong PIN: %v\n%s", err, out)
	}
	compare("after a wrong PIN")
	ours, _ := bed.Run("pico-hsm-tool", "status")
	if !strings.Contains(ours, "User PIN tries left  : 2\n") {
		t.Errorf("status after a wrong PIN:\n%s", ours)
	}

	// The right PIN resets the counter; both tools agree again.
	if out, err := bed.Run("pico-hsm-tool", "status", "--pin", "648219"); err != nil {
		t.Fatalf("status --pin: %v\n%s", err, out)
	}
	compare("after the right PIN")
}

// facts keeps the lines of a status print that carry facts, dropping
// OpenSC's connection chatter.
func facts(out string) []string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		switch {
		case l == "", strings.HasPrefix(l, "Using reader"), strings.HasPrefix(l, "Connecting to card"),
			strings.HasPrefix(l, "Using card driver"), strings.HasPrefix(l, "sc_card_ctl"),
			strings.HasPrefix(l, "pico-hsm-tool: note:"):
			continue
		}
		keep = append(keep, strings.Join(strings.Fields(l), " "))
	}
	return keep
}

// runner returns a function that runs a program against the bed and fails
// the test, with the program's output, when it exits non-zero.
func runner(t *testing.T, bed *testbed.Bed) func(string, ...string) string {
	return func(name string, args ...string) string {
		t.Helper()
		out, err := bed.Run(name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return out
	}
}
