package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// Fault injection for CLI runs of the test binary. TestMain's
// "pico-hsm-tool" wrapper calls installTestFault, so that a test can run
// the real command with a fault planned at one APDU of its session. This
// file is a _test.go file: the real pico-hsm-tool never reads these
// variables and cannot be made to misbehave with them.
const (
	// envTestFault is a sim.ParseFault plan ("removed:after:5") for a
	// sim:PATH device, or a pause for any device: "pause:N" before APDU
	// N, "pause:ins=74" before the first APDU with INS 74 (UNWRAP KEY),
	// "pause:ins=72:2" before the second. There the command writes the file
	// "paused" into envTestPauseDir and waits until the file "resume"
	// appears there, so that a test can stop pcscd or pull the card at that
	// exact point of a run through the real PC/SC stack.
	envTestFault    = "PICO_HSM_TEST_FAULT"
	envTestPauseDir = "PICO_HSM_TEST_PAUSE_DIR"
	// pauseTimeout bounds the wait for "resume": a test that died must not
	// leave the command hanging.
	pauseTimeout = 30 * time.Second
)

// installTestFault arms the fault envTestFault describes, if any.
func installTestFault() {
	spec := os.Getenv(envTestFault)
	if spec == "" {
		return
	}
	if p, ok := strings.CutPrefix(spec, "pause:"); ok {
		match, err := parsePause(p)
		dir := os.Getenv(envTestPauseDir)
		if err != nil || dir == "" {
			panic(fmt.Sprintf("bad %s=%q: want pause:N, pause:ins=XX or pause:ins=XX:K, with %s set", envTestFault, spec, envTestPauseDir))
		}
		device.TestHook = func(c *device.Conn) { c.Intercept(pauseAt(match, dir)) }
		return
	}
	f, err := sim.ParseFault(spec)
	if err != nil {
		panic(fmt.Sprintf("bad %s: %v", envTestFault, err))
	}
	device.TestHook = func(c *device.Conn) {
		if c.Sim == nil {
			panic(envTestFault + " needs --reader sim:PATH; use pause:N with a PC/SC reader")
		}
		c.Sim.Inject(f)
	}
}

// parsePause reads the part after "pause:" and returns a function that
// tells, APDU by APDU, whether this is the one to hold.
func parsePause(p string) (func(cmd []byte) bool, error) {
	if ins, ok := strings.CutPrefix(p, "ins="); ok {
		hexINS, nth, _ := strings.Cut(ins, ":")
		v, err := strconv.ParseUint(hexINS, 16, 8)
		if err != nil {
			return nil, err
		}
		k := 1
		if nth != "" {
			if k, err = strconv.Atoi(nth); err != nil || k < 1 {
				return nil, fmt.Errorf("bad count %q", nth)
			}
		}
		seen := 0
		return func(cmd []byte) bool {
			if len(cmd) > 1 && cmd[1] == byte(v) {
				seen++
				return seen == k
			}
			return false
		}, nil
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad APDU number %q", p)
	}
	count := 0
	return func([]byte) bool { count++; return count == n }, nil
}

// pauseAt returns an interceptor that holds the APDU match picks until
// dir/resume exists.
func pauseAt(match func([]byte) bool, dir string) func([]byte, func([]byte) ([]byte, error)) ([]byte, error) {
	return func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error) {
		if match(cmd) {
			if err := os.WriteFile(filepath.Join(dir, "paused"), nil, 0o600); err != nil {
				return nil, err
			}
			deadline := time.Now().Add(pauseTimeout)
			for {
				if _, err := os.Stat(filepath.Join(dir, "resume")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("test pause: no %s/resume after %s", dir, pauseTimeout)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		return send(cmd)
	}
}
