package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/testbed"
)

// Concurrent use (issue "Hardening", section 4): two pico-hsm-tool
// processes on one device. On a sim:PATH device the state file's lock
// makes each invocation one card session, so the second waits; through
// pcscd the PC/SC transaction keeps each multi-APDU operation whole. In
// both cases no update may be lost: every run succeeds and the final
// state holds what every run did.

// generatedRE reads generate-key's line.
var generatedRE = regexp.MustCompile(`Generated EC secp256r1 at key reference (\d+), label "([^"]+)"`)

// concurrently runs each command in its own goroutine, all at once, and
// returns their exit codes and outputs in order.
func concurrently(cmds ...func() (int, string)) ([]int, []string) {
	codes, outs := make([]int, len(cmds)), make([]string, len(cmds))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range cmds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], outs[i] = c()
		}()
	}
	close(start)
	wg.Wait()
	return codes, outs
}

// checkGenerated checks that every run succeeded with its own key
// reference, and that list-keys shows each key at the reference its run
// reported.
func checkGenerated(t *testing.T, codes []int, outs []string, listKeys string) {
	t.Helper()
	refs := map[string]string{} // reference -> label
	for i, out := range outs {
		if codes[i] != 0 {
			t.Errorf("run %d: exit %d\n%s", i, codes[i], out)
			continue
		}
		for _, m := range generatedRE.FindAllStringSubmatch(out, -1) {
			if other, ok := refs[m[1]]; ok {
				t.Errorf("key reference %s given to both %s and %s", m[1], other, m[2])
			}
			refs[m[1]] = m[2]
		}
	}
	for ref, label := range refs {
		if !regexp.MustCompile(`(?m)^` + ref + ` +EC secp256r1 +` + label + ` `).MatchString(listKeys) {
			t.Errorf("list-keys does not show %s at key reference %s:\n%s", label, ref, listKeys)
		}
	}
	if got := strings.Count(listKeys, "EC secp256r1"); got != len(refs) {
		t.Errorf("list-keys shows %d keys, the runs made %d:\n%s", got, len(refs), listKeys)
	}
}

// TestConcurrentSim runs pico-hsm-tool processes at once on one sim:PATH
// device: generate-key runs that each take the lowest free reference, and
// the two custodians' share imports of one DKEK.
func TestConcurrentSim(t *testing.T) {
	dir := faultTempDir(t)
	dev := "sim:" + filepath.Join(dir, "dev.json")
	faultMustTool(t, dir, "create-dkek-share", "s1.pbe", "--password", "concurrent-1")
	faultMustTool(t, dir, "create-dkek-share", "s2.pbe", "--password", "concurrent-2")
	faultMustTool(t, dir, "--reader", dev, "initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "2")

	t.Run("import-dkek-share", func(t *testing.T) {
		imp := func(n int) func() (int, string) {
			return func() (int, string) {
				code, out, errs := faultRunTool(t, dir, nil, "--reader", dev, "import-dkek-share", fmt.Sprintf("s%d.pbe", n), "--password", fmt.Sprintf("concurrent-%d", n), "--pin", matrixPIN)
				return code, out + errs
			}
		}
		codes, outs := concurrently(imp(1), imp(2))
		for i := range codes {
			if codes[i] != 0 {
				t.Errorf("import %d: exit %d\n%s", i+1, codes[i], outs[i])
			}
		}
		// Both shares are in, whichever went first: the device's DKEK is
		// the one the two shares make.
		out := faultMustTool(t, dir, "--reader", dev, "status", "--pin", matrixPIN)
		want := faultMustTool(t, dir, "dkek-share", "kcv", "s1.pbe", "s2.pbe", "--password", "concurrent-1", "--password", "concurrent-2")
		if !strings.Contains(out, "DKEK shares          : 2\n") || lastKCVIn(out) == "" || lastKCVIn(out) != lastKCVIn(want) {
			t.Errorf("after both imports:\n%s\nthe shares make:\n%s", out, want)
		}
	})

	t.Run("generate-key", func(t *testing.T) {
		var runs []func() (int, string)
		for i := range 6 {
			runs = append(runs, func() (int, string) {
				code, out, errs := faultRunTool(t, dir, nil, "--reader", dev, "generate-key", "--type", "ec:secp256r1", "--label", fmt.Sprintf("k%d", i), "--pin", matrixPIN)
				return code, out + errs
			})
		}
		codes, outs := concurrently(runs...)
		checkGenerated(t, codes, outs, faultMustTool(t, dir, "--reader", dev, "list-keys"))
	})
}

// TestConcurrentPCSCD runs pico-hsm-tool processes at once through pcscd
// on the simulated device behind the bridge: two loops of generate-key
// (each reads the key list, picks the lowest free reference and generates
// there: interleaved, two runs would pick the same reference and one key
// would replace the other) and a loop of status --pin (whose SELECT would
// end the others' PIN session).
func TestConcurrentPCSCD(t *testing.T) {
	bed, dir := startFaultBed(t)
	tool := func(args ...string) (int, string) {
		code, out := e2eTool(t, bed, dir, nil, args...)
		return code, out
	}
	if code, out := tool("initialize", "--so-pin", matrixSOPIN, "--pin", matrixPIN, "--dkek-shares", "0"); code != 0 {
		t.Fatalf("initialize: exit %d\n%s", code, out)
	}
	const perLoop = 4
	genLoop := func(name string) func() (int, string) {
		return func() (int, string) {
			var all strings.Builder
			for i := range perLoop {
				code, out := tool("generate-key", "--type", "ec:secp256r1", "--label", name+strconv.Itoa(i), "--pin", matrixPIN)
				all.WriteString(out)
				if code != 0 {
					return code, all.String()
				}
			}
			return 0, all.String()
		}
	}
	statusLoop := func() (int, string) {
		var all strings.Builder
		for range 2 * perLoop {
			code, out := tool("status", "--pin", matrixPIN)
			all.WriteString(out)
			if code != 0 {
				return code, all.String()
			}
		}
		return 0, all.String()
	}
	codes, outs := concurrently(genLoop("a"), genLoop("b"), statusLoop)
	if codes[2] != 0 {
		t.Errorf("status loop: exit %d\n%s", codes[2], outs[2])
	}
	code, keys := tool("list-keys")
	if code != 0 {
		t.Fatalf("list-keys: exit %d\n%s", code, keys)
	}
	checkGenerated(t, codes[:2], outs[:2], keys)
	if n := strings.Count(keys, "EC secp256r1"); n != 2*perLoop {
		t.Errorf("%d keys after %d generate-key runs:\n%s", n, 2*perLoop, keys)
	}
}

// startFaultBed starts a bed whose simulated device keeps its state on
// tmpfs (see faultTempDir), and returns it with a work directory.
func startFaultBed(t *testing.T) (*testbed.Bed, string) {
	t.Helper()
	bin, err := exec.LookPath("pico-hsm-tool")
	if err != nil {
		t.Fatal(err)
	}
	dir := faultTempDir(t)
	return testbed.Start(t, []string{bin, "sim", "bridge", filepath.Join(dir, "dev.json")}), dir
}
