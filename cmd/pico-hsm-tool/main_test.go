package main

import (
	"os"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary double as pico-hsm-tool, so that scripts
// (and the PC/SC bridge of the end-to-end tests) run the real command.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pico-hsm-tool": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the CLI scripts in testdata/script against the
// simulated device (--reader sim:PATH) and against a missing pcscd. They
// need no hardware and no daemon.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			// A pcscd socket that does not exist: "pcscd is not running".
			env.Setenv("PCSCLITE_CSOCK_NAME", env.WorkDir+"/no-pcscd/pcscd.comm")
			return nil
		},
	})
}
