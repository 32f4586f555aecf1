package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// The fault matrix's rows through the real PC/SC stack: pcscd killed and
// the card pulled out in the middle of an operation, at a chosen APDU
// (PICO_HSM_TEST_FAULT=pause:..., see fault_test.go). The in-process rows
// (TestFaultMatrix) model these faults in the simulator; these show that
// pcscd, libpcsclite and vpcd fail the same way, and that the messages
// and the device's state are the same.

// e2eTool runs pico-hsm-tool through the bed in dir, with extra
// environment, and returns its exit code and combined output.
func e2eTool(t *testing.T, bed *testbed.Bed, dir string, env []string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "pico-hsm-tool", args...)
	cmd.Env = append(append(bed.Env(), "PICO_HSM_TEST_KDF_ITERATIONS=1000"), env...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("pico-hsm-tool %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// e2eMust returns a function that runs pico-hsm-tool through the bed in
// dir (e2eTool) and fails the test, with the output, when it exits
// non-zero; it returns the output.
func e2eMust(t *testing.T, bed *testbed.Bed, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		code, out := e2eTool(t, bed, dir, nil, args...)
		if code != 0 {
			t.Fatalf("pico-hsm-tool %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
}

// pausedTool runs pico-hsm-tool through the bed, held before the APDU
// pause names; act runs while it is held (stop pcscd, pull the card), then
// it goes on. It returns the exit code and the combined output.
func pausedTool(t *testing.T, bed *testbed.Bed, dir, pause string, act func(), args ...string) (int, string) {
	t.Helper()
	sync := t.TempDir()
	type result struct {
		code int
		out  string
	}
	done := make(chan result, 1)
	go func() {
		code, out := e2eTool(t, bed, dir, []string{envTestFault + "=pause:" + pause, envTestPauseDir + "=" + sync}, args...)
		done <- result{code, out}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(sync, "paused")); err == nil {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("pico-hsm-tool %s ended before the pause at %s: exit %d\n%s", strings.Join(args, " "), pause, r.code, r.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("pico-hsm-tool %s never reached the pause at %s", strings.Join(args, " "), pause)
		}
		time.Sleep(10 * time.Millisecond)
	}
	act()
	if err := os.WriteFile(filepath.Join(sync, "resume"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := <-done
	return r.code, r.out
}

// simPublicKey reads the public key the device holds at ref from its
// state file; the bridge must be stopped.
func simPublicKey(t *testing.T, state string, ref byte) []byte {
	t.Helper()
	d, err := sim.OpenWait(state, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	return d.PublicKey(ref)
}

func TestFaultE2E(t *testing.T) {
	bed, dir := startFaultBed(t)
	state := filepath.Join(dir, "dev.json")
	must := e2eMust(t, bed, dir)
	must("create-dkek-share", "s1.pbe", "--password", "fault-e2e-1")
	must("initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "1")
	must("import-dkek-share", "s1.pbe", "--password", "fault-e2e-1", "--pin", matrixPIN)
	must("generate-key", "--type", "rsa:1024", "--label", "alpha", "--pin", matrixPIN)
	must("generate-key", "--type", "ec:secp256r1", "--label", "beta", "--pin", matrixPIN)
	must("wrap-key", "beta.bin", "--key-reference", "2", "--pin", matrixPIN)
	must("backup", "--out-dir", "bk", "--pin", matrixPIN)
	bed.StopBridge()
	alpha, beta := simPublicKey(t, state, 1), simPublicKey(t, state, 2)
	bed.InsertCard() // starts the bridge again
	unwrap := []string{"unwrap-key", "beta.bin", "--key-reference", "1", "--force", "--allow-duplicate", "--pin", matrixPIN}

	t.Run("unwrap-key --force/pcscd killed before UNWRAP KEY", func(t *testing.T) {
		code, out := pausedTool(t, bed, dir, "ins=74", bed.StopPCSCD, unwrap...)
		if code == 0 || !strings.Contains(out, "key reference 1 holds either its old key or the restored one") ||
			!strings.Contains(out, "finish with 'pico-hsm-tool --reader \"Virtual PCD 00 00\" unwrap-key beta.bin --key-reference 1 --force --allow-duplicate'") {
			t.Errorf("exit %d\n%s", code, out)
		}
		t.Logf("message: %s", out)
		bed.StopBridge()
		if got := simPublicKey(t, state, 1); !bytes.Equal(got, alpha) {
			t.Errorf("key reference 1 holds %X, not the old key", got)
		}
		bed.RestartPCSCD()
	})

	t.Run("unwrap-key --force/card removed after UNWRAP KEY", func(t *testing.T) {
		code, out := pausedTool(t, bed, dir, "ins=B1", bed.RemoveCard, unwrap...)
		if code == 0 || !strings.Contains(out, "the key was restored at reference 1, replacing the old key, but reading it back failed: the card was removed or reset during the operation") ||
			!strings.Contains(out, "finish with 'pico-hsm-tool --reader \"Virtual PCD 00 00\" unwrap-key beta.bin --key-reference 1 --force --allow-duplicate'") {
			t.Errorf("exit %d\n%s", code, out)
		}
		t.Logf("message: %s", out)
		bed.InsertCard()
		// The advice works: the key gets its label and certificate.
		if out := must(unwrap...); !strings.Contains(out, "restored, replacing the old key, at key reference 1; its public key matches the backup") {
			t.Errorf("finishing: %s", out)
		}
		if out := must("list-keys"); !regexpMatch(`(?m)^1 +EC secp256r1 +beta `, out) {
			t.Errorf("list-keys after finishing:\n%s", out)
		}
		bed.StopBridge()
		if got := simPublicKey(t, state, 1); !bytes.Equal(got, beta) {
			t.Errorf("key reference 1 holds %X, not the restored key", got)
		}
		bed.InsertCard()
	})

	t.Run("backup --force/pcscd killed at the second WRAP KEY", func(t *testing.T) {
		before := faultSnapshot(t, filepath.Join(dir, "bk"))
		code, out := pausedTool(t, bed, dir, "ins=72:2", bed.StopPCSCD, "backup", "--out-dir", "bk", "--force", "--pin", matrixPIN)
		if code == 0 || !strings.Contains(out, "nothing was written: the earlier backup in bk is unchanged") {
			t.Errorf("exit %d\n%s", code, out)
		}
		t.Logf("message: %s", out)
		if d := faultDiff(before, faultSnapshot(t, filepath.Join(dir, "bk"))); len(d) > 0 {
			t.Errorf("backup directory: %s", strings.Join(d, "; "))
		}
		bed.RestartPCSCD()
		must("status")
	})
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
