package sim

// Tests of the state file: the device keeps its flash and the emulator's
// RAM across Open/Close (separate tool invocations see one device), a
// power cycle loses the RAM, and the lock keeps a second process out.

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

func openDev(t *testing.T, path string) *dev {
	t.Helper()
	d, err := OpenWait(path, 2*time.Second)
	if err != nil {
		t.Fatalf("Open %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return &dev{t: t, Device: d}
}

func TestStatePersistence(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	msg := []byte("persisted")
	h := sha256.Sum256(msg)

	// Invocation 1: initialize, import the DKEK, make keys and a file,
	// use up one PIN try.
	d := openDev(t, path)
	d.ok("SELECT", selectAID())
	d.ok("INITIALIZE", initialize(initData(3)))
	d.ok("SELECT", selectAID())
	for _, s := range [][]byte{share1, share2, share3} {
		d.ok("share", importShare(s))
	}
	d.ok("VERIFY", verifyPIN(userPIN))
	rsaK := d.genRSA(1, 1024)
	ecK := d.genEC(2, "secp256r1", t1(0x91, []byte{0x73, 0x92}))
	d.ok("data", updateBin(0xCF01, 0, []byte("keep me")))
	d.ok("SELECT", selectAID())
	d.expect("wrong PIN", verifyPIN([]byte("000000")), apdu.SWVerifyFailed|2)
	list := d.ok("LIST", listKeys())
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v (%v), want 0600: it holds keys", fi.Mode().Perm(), err)
	}

	// Invocation 2: the emulator's RAM is kept, so the application is still
	// selected; the flash kept the keys, files and PIN counter.
	d = openDev(t, path)
	d.expect("still selected; try counter kept", queryPIN(), apdu.SWVerifyFailed|2)
	d.expect("SO counter", querySO(), apdu.SWVerifyFailed|15)
	if got := d.ok("LIST", listKeys()); !bytes.Equal(got, list) {
		t.Errorf("LIST KEYS % X, was % X", got, list)
	}
	if got := d.readAll(0xCF01); string(got) != "keep me" {
		t.Errorf("CF01 %q", got)
	}
	if got := d.ok("FCP", selectAID()); !bytes.Equal(got, fcpApp(0x0001)) {
		t.Errorf("options lost: % X", got)
	}
	d.ok("VERIFY", verifyPIN(userPIN))
	st := d.ok("DKEK status", dkekStatus())
	if !bytes.Equal(st, cat([]byte{3, 0}, kcvA)) {
		t.Errorf("DKEK status % X after reopening, want KCV A", st)
	}
	sig := d.ok("SIGN RSA", sign(1, 0x20, pkcs1Block(128, msg)))
	if err := rsa.VerifyPKCS1v15(rsaK, crypto.SHA256, h[:], sig); err != nil {
		t.Errorf("RSA key changed across Open: %v", err)
	}
	der := d.ok("SIGN EC", sign(2, 0x73, msg))
	if !verifyDER(ecc.ByName("secp256r1"), ecK, h[:], der) {
		t.Errorf("EC key changed across Open")
	}
	d.expect("allowed list kept", sign(2, 0x70, h[:]), apdu.SWConditionsNotSatisfied)
	_, bl := d.wrapped(2)
	if !bytes.Equal(bl.Allowed, []byte{0x73, 0x92}) {
		t.Errorf("allowed list % X", bl.Allowed)
	}
	// Session survives too (emulator RAM): close while logged in.
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openDev(t, path)
	d.expect("PIN session kept across Open", queryPIN(), apdu.SWOK)
	if err := d.PowerCycle(); err != nil {
		t.Fatal(err)
	}
	d.Close()
	d = openDev(t, path)
	d.expect("power cycle deselected the application", queryPIN(), apdu.SWFileNotFound)
	d.ok("SELECT", selectAID())
	d.expect("power cycle ended the session", queryPIN(), apdu.SWVerifyFailed|3)
}

// TestStatePendingDKEK: the pending DKEK commit lives in the emulator's
// RAM, which outlives tool invocations (Open/Close) but not a power cycle
// (VECTORS.txt section 7, devices E and E2).
func TestStatePendingDKEK(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		powerCycle bool
	}{{"E2: no restart", false}, {"E: restart", true}} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			d := openDev(t, path)
			d.ok("SELECT", selectAID())
			d.ok("INITIALIZE", initialize(initData(1)))
			d.Close()
			d = openDev(t, path)
			d.ok("SELECT", selectAID())
			d.ok("share 1", importShare(share1))
			if c.powerCycle {
				if err := d.PowerCycle(); err != nil {
					t.Fatal(err)
				}
			}
			d.Close()
			d = openDev(t, path)
			d.ok("SELECT", selectAID())
			d.ok("VERIFY", verifyPIN(userPIN))
			st := d.ok("status", dkekStatus())
			if c.powerCycle == bytes.Equal(st[2:], kcvE) {
				t.Errorf("KCV % X (intended %X), power cycle %v", st[2:], kcvE, c.powerCycle)
			}
		})
	}
}

func TestStateLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	d := openDev(t, path)
	start := time.Now()
	d2, err := OpenWait(path, 100*time.Millisecond)
	if err == nil {
		d2.Close()
		t.Fatal("a second OpenWait succeeded while the device was open")
	}
	if !errors.Is(err, ErrBusy) {
		t.Errorf("second OpenWait: %v, want ErrBusy", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("second OpenWait took %v with a 100 ms bound", el)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d3, err := OpenWait(path, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("OpenWait after Close: %v", err)
	}
	d3.Close()

	// A waiting OpenWait gets the device once the holder closes it.
	d4 := openDev(t, path)
	done := make(chan error, 1)
	go func() {
		d5, err := OpenWait(path, 5*time.Second)
		if err == nil {
			d5.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	d4.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("waiting OpenWait: %v", err)
		}
	case <-time.After(4 * time.Second):
		t.Errorf("waiting OpenWait did not get the device after Close")
	}
}

func TestStateFileErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		content string
	}{
		{"not JSON", "this is not a state file"},
		{"another version", `{"version": 99}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(c.content), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := OpenWait(path, 100*time.Millisecond)
			if err == nil {
				d.Close()
				t.Fatalf("Open accepted %s", c.name)
			}
			// The lock is released after a failed Open.
			os.Remove(path)
			d2, err := OpenWait(path, 100*time.Millisecond)
			if err != nil {
				t.Fatalf("Open after a failed Open: %v", err)
			}
			defer d2.Close()
			if _, sw := (&dev{t: t, Device: d2}).raw(selectAID()); sw != apdu.SWOK {
				t.Errorf("fresh device: SELECT %04X", sw)
			}
		})
	}

	t.Run("a new state file is a factory device", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "new.json")
		d := openDev(t, path)
		d.expect("nothing selected", queryPIN(), apdu.SWFileNotFound)
		d.ok("SELECT", selectAID())
		d.expect("factory", dkekStatus(), apdu.SWWrongP1P2Plain)
		if _, err := os.Stat(path); err != nil {
			t.Errorf("Open did not write the factory state: %v", err)
		}
	})
}

// A state file whose directory does not exist is an error, not a new
// device in a new directory: a mistyped --reader sim:PATH would otherwise
// rehearse on a blank device.
func TestStateDirectoryMissing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "nodir", "state.json"), "simulated device: directory " + filepath.Join(dir, "nodir") + " does not exist: create it first (mkdir -p " + filepath.Join(dir, "nodir") + "), or check the path after sim:"},
		{filepath.Join(dir, "a", "b", "state.json"), "simulated device: directory " + filepath.Join(dir, "a", "b") + " does not exist: create it first (mkdir -p " + filepath.Join(dir, "a", "b") + "), or check the path after sim:"},
		{filepath.Join(dir, "file", "state.json"), "simulated device: " + filepath.Join(dir, "file") + " is not a directory: check the path after sim:"},
	} {
		os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o600)
		d, err := OpenWait(c.path, 100*time.Millisecond)
		if err == nil {
			d.Close()
			t.Errorf("%s: opened", c.path)
			continue
		}
		if err.Error() != c.want {
			t.Errorf("%s:\n got %v\nwant %s", c.path, err, c.want)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("Open created %v", ents)
	}
}

// No lock file is left beside the state file: not after Close, not after
// an Open that failed on the state, not after a waiter took the device
// over.
func TestStateNoLockFileLeft(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	only := func(when string, want ...string) {
		t.Helper()
		ents, _ := os.ReadDir(dir)
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: directory holds %q, want %q", when, got, want)
		}
	}
	d := openDev(t, path)
	d.ok("SELECT", selectAID())
	d.Close()
	only("after Close", "state.json")

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("not a state file"), 0o600)
	if _, err := OpenWait(bad, 100*time.Millisecond); err == nil {
		t.Fatal("opened a file that is not a state file")
	}
	only("after a failed Open", "bad.json", "state.json")
	os.Remove(bad)

	// A waiter that opened the lock file before the holder removed it
	// locks the new one, and removes it when done.
	d = openDev(t, path)
	done := make(chan error, 1)
	go func() {
		d2, err := OpenWait(path, 5*time.Second)
		if err == nil {
			err = d2.Close()
		}
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	d.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	only("after a waiter took over", "state.json")

	// A lock file left by a crashed process is taken over and removed.
	os.WriteFile(path+".lock", nil, 0o600)
	d = openDev(t, path)
	d.Close()
	only("after a stale lock file", "state.json")
}

// Removing the lock file at Close keeps the lock exclusive: many openers
// at once never hold the device together.
func TestStateLockExclusive(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	openDev(t, path).Close()
	var holders, most atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				d, err := OpenWait(path, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				time.Sleep(time.Millisecond)
				holders.Add(-1)
				d.Close()
			}
		}()
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Errorf("%d openers held the device at once", most.Load())
	}
	if _, err := os.Stat(path + ".lock"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("lock file left: %v", err)
	}
}

// TestStateFlashFromEarlierBuild checks the pool's layout in a state file
// written by the build that kept it among the files (under "flash"): it is
// read from there, saved in its own field from then on, and LIST KEYS
// answers in the same order as before, not in the creation order a
// rebuilt pool would give.
func TestStateFlashFromEarlierBuild(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "state.json")
	d := openDev(t, path)
	d.ok("SELECT", selectAID())
	d.ok("INITIALIZE", initialize(initData(0)))
	d.ok("SELECT", selectAID())
	d.ok("VERIFY", verifyPIN(userPIN))
	d.genEC(1, "secp256r1")
	d.genEC(2, "secp256r1")
	d.ok("DELETE CC01", deleteFID(0xCC01))
	d.ok("AES 3", genAES(3, 0xB0, nil)) // small: into the gap CC01 left
	d.ok("SELECT", selectAID())
	want := d.ok("LIST", listKeys())
	if !bytes.Equal(want, hx("C4 00 CC 00 CC 03 CC 02 C4 01 C4 02 C4 03")) {
		t.Fatalf("LIST % X: the AES key did not take the gap, so this test shows nothing", want)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	// Rewrite the file as the earlier build wrote it.
	var top map[string]json.RawMessage
	b, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &top)
	}
	if err != nil {
		t.Fatal(err)
	}
	var files map[string]json.RawMessage
	if err := json.Unmarshal(top["files"], &files); err != nil {
		t.Fatal(err)
	}
	files["flash"] = top["flash"]
	delete(top, "flash")
	top["files"], _ = json.Marshal(files)
	b, _ = json.Marshal(top)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	d = openDev(t, path)
	if _, ok := d.st.Files["flash"]; ok || d.st.Flash == nil {
		t.Fatalf("the layout was not moved out of the files: flash %x", d.st.Flash)
	}
	d.ok("SELECT", selectAID())
	if got := d.ok("LIST", listKeys()); !bytes.Equal(got, want) {
		t.Errorf("LIST % X after loading the earlier layout, want % X", got, want)
	}
	d.ok("VERIFY", verifyPIN(userPIN)) // a change, so the state is saved
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	top = nil
	files = nil
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(top["files"], &files)
	if _, ok := files["flash"]; ok || top["flash"] == nil {
		t.Errorf("saved again: top-level flash %s, files flash %s", top["flash"], files["flash"])
	}
}
