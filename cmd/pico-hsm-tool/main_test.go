package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary double as pico-hsm-tool, so that scripts
// (and the PC/SC bridge of the end-to-end tests) run the real command.
//
// PICO_HSM_TEST_KDF_ITERATIONS lowers the share files' key derivation count
// for scripts that only exchange files with this tool. It exists only in
// the test binary: the real pico-hsm-tool has no way to change the count,
// so it cannot write files that sc-hsm-tool would not read.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pico-hsm-tool": func() {
			if v := os.Getenv("PICO_HSM_TEST_KDF_ITERATIONS"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 {
					panic("bad PICO_HSM_TEST_KDF_ITERATIONS")
				}
				dkekshare.SetIterationsForTesting(n)
			}
			installTestFault() // PICO_HSM_TEST_FAULT, see fault_test.go
			os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the CLI scripts in testdata/script against the
// simulated device (--reader sim:PATH) and against a missing pcscd. They
// need no hardware and no daemon.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
		Setup: func(env *testscript.Env) error {
			// A pcscd socket that does not exist: "pcscd is not running".
			env.Setenv("PCSCLITE_CSOCK_NAME", env.WorkDir+"/no-pcscd/pcscd.comm")
			env.Setenv("VECTORS", vectorsDir)
			return nil
		},
	})
}

// vectorsDir holds the files sc-hsm-tool made on the real firmware.
var vectorsDir = func() string {
	d, err := filepath.Abs("../../testdata/pico-hsm/vectors")
	if err != nil {
		panic(err)
	}
	return d
}()

// scriptCmds are the test-only commands of the scripts.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// kcv same|differ FILE FILE compares the last DKEK key check value
	// printed in each file ("DKEK key check value : X" or "dkek_kcv": "X").
	"kcv": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 3 || (args[0] != "same" && args[0] != "differ") {
			ts.Fatalf("usage: kcv same|differ FILE FILE")
		}
		a, b := lastKCV(ts, args[1]), lastKCV(ts, args[2])
		if (a == b) != (args[0] == "same") {
			ts.Fatalf("key check values %s and %s: want %s", a, b, args[0])
		}
	},
}

var kcvRE = regexp.MustCompile(`(?:DKEK key check value : |"(?:dkek_)?kcv": ")([0-9A-F]{16})`)

func lastKCV(ts *testscript.TestScript, file string) string {
	m := kcvRE.FindAllStringSubmatch(ts.ReadFile(file), -1)
	if len(m) == 0 {
		ts.Fatalf("no key check value in %s", file)
	}
	return m[len(m)-1][1]
}
