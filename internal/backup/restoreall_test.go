package backup

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// countINS counts the APDUs of each instruction the device receives.
func countINS(c *device.Conn) map[byte]int {
	n := map[byte]int{}
	c.Sim.Fault = func(cmd []byte) ([]byte, error) {
		if len(cmd) > 1 {
			n[cmd[1]]++
		}
		return nil, nil
	}
	return n
}

// generate makes a key on c, failing the test if it cannot.
func generate(t *testing.T, c *device.Conn, s keystore.GenSpec) {
	t.Helper()
	s.PIN = pin
	if _, err := keystore.Generate(c, s); err != nil {
		t.Fatal(err)
	}
}

// backupOf backs up c into a new directory and returns it.
func backupOf(t *testing.T, c *device.Conn) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "backup")
	if _, err := BackupAll(c, BackupOptions{Dir: dir, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	return dir
}

func statuses(res []KeyResult) string {
	var s []string
	for _, r := range res {
		s = append(s, r.Action+"/"+r.Status)
	}
	return strings.Join(s, " ")
}

// restore runs are planned before the device changes: keys already
// present are skipped, so that a restore can be run again; a reference
// that holds another key, or an AES key that cannot be compared, stops the
// whole restore unless it is named to be replaced; the exit status tells
// all restored (nil), some (ErrPartial) and none (another error).
func TestRestoreAllPlan(t *testing.T) {
	src := deviceWithKeys(t, "src.json") // RSA k1 at 1, EC k2 at 2
	generate(t, src, keystore.GenSpec{Type: "aes", Bits: 128, Label: "k3", Ref: 3})
	dir := backupOf(t, src)

	for _, c := range []struct {
		name    string
		prepare func(t *testing.T, c *device.Conn)
		opts    RestoreAllOptions
		want    string // actions and outcomes, in the backup's order
		err     string // in the error; "" for none
		errIs   error
		unwraps int // UNWRAP KEY commands sent
	}{
		{name: "empty device", want: "restore/restored restore/restored restore/restored", unwraps: 3},
		{name: "run again", prepare: restoreFrom(dir),
			want: "skip/present skip/present refuse/not restored", errIs: ErrOtherKeys,
			err: "nothing was restored: key reference 3 holds a key (AES 128 \"k3\", ID 03) that cannot be compared with the backup's, as AES keys have no public key: to replace it with the backup's key, add --force --key-reference 3; or restore into a device where it is free"},
		{name: "run again, the AES key named", prepare: restoreFrom(dir), opts: RestoreAllOptions{Replace: []int{3}},
			want: "skip/present skip/present replace/replaced", unwraps: 1},
		{name: "another key at 2", prepare: func(t *testing.T, c *device.Conn) {
			generate(t, c, keystore.GenSpec{Type: "ec", Curve: "secp256r1", Label: "other", ID: []byte{0x20}, Ref: 2})
		}, want: "restore/not restored refuse/not restored restore/not restored", errIs: ErrOtherKeys,
			err: "nothing was restored: key reference 2 holds another key (EC 256 \"other\", ID 20): to replace it with the backup's key, add --force --key-reference 2;"},
		{name: "another key at 2, named", prepare: func(t *testing.T, c *device.Conn) {
			generate(t, c, keystore.GenSpec{Type: "ec", Curve: "secp256r1", Label: "other", ID: []byte{0x20}, Ref: 2})
		}, opts: RestoreAllOptions{Replace: []int{2}}, want: "restore/restored replace/replaced restore/restored", unwraps: 3},
		{name: "a key with the same label elsewhere", prepare: func(t *testing.T, c *device.Conn) {
			generate(t, c, keystore.GenSpec{Type: "aes", Bits: 128, Label: "k1", ID: []byte{0x30}, Ref: 9})
		}, want: "restore/not restored restore/not restored restore/not restored", errIs: &keystore.DuplicateError{},
			err: "nothing was restored: key-001-k1.bin for key reference 1: key reference 9 already has the label \"k1\": a second key with the same label would make --label ambiguous: add --allow-duplicate"},
		{name: "a key with the same label elsewhere, allowed", prepare: func(t *testing.T, c *device.Conn) {
			generate(t, c, keystore.GenSpec{Type: "aes", Bits: 128, Label: "k1", ID: []byte{0x30}, Ref: 9})
		}, opts: RestoreAllOptions{AllowDuplicate: true}, want: "restore/restored restore/restored restore/restored", unwraps: 3},
		{name: "one key fails", prepare: func(t *testing.T, c *device.Conn) {
			atINS(c, 0x74, 2, false, []byte{0x6A, 0x84}, nil)
		}, want: "restore/restored restore/failed restore/restored", errIs: ErrPartial, err: "some keys failed: 1 of 3 keys were not restored", unwraps: 3},
		{name: "every key refused by the device", prepare: func(t *testing.T, c *device.Conn) {
			everyUnwrap(c, []byte{0x6A, 0x84}) // not enough memory: a refusal
		}, want: "restore/failed restore/failed restore/failed", err: "nothing was restored: 3 of 3 keys were not restored", unwraps: 0},
		{name: "every key fails, device perhaps changed", prepare: func(t *testing.T, c *device.Conn) {
			everyUnwrap(c, []byte{0x65, 0x81}) // memory failure: the key may be there
		}, want: "restore/failed restore/failed restore/failed", errIs: ErrPartial, err: "some keys failed: 3 of 3 keys were not restored", unwraps: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := deviceA(t, "dst.json")
			if c.prepare != nil {
				c.prepare(t, conn)
			}
			var planned []KeyResult
			o := c.opts
			o.Dir, o.PIN = dir, pin
			o.OnPlan = func(p []KeyResult) { planned = append([]KeyResult(nil), p...) }
			var n map[byte]int
			if conn.Sim.Fault == nil {
				n = countINS(conn)
			}
			res, err := RestoreAll(conn, o)
			conn.Sim.Fault = nil
			if got := statuses(res); got != c.want {
				t.Errorf("got %s, want %s", got, c.want)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("error %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("error %v, want one with %q", err, c.err)
			case c.errIs == ErrPartial && !errors.Is(err, ErrPartial), c.errIs == nil && errors.Is(err, ErrPartial):
				t.Errorf("error %v: ErrPartial is %v", err, errors.Is(err, ErrPartial))
			}
			var dup *keystore.DuplicateError
			if _, ok := c.errIs.(*keystore.DuplicateError); ok && !errors.As(err, &dup) {
				t.Errorf("error %v is not a DuplicateError", err)
			}
			if c.errIs == ErrOtherKeys && !errors.Is(err, ErrOtherKeys) {
				t.Errorf("error %v is not ErrOtherKeys", err)
			}
			if len(planned) != 3 {
				t.Errorf("the plan was not reported before the restore: %+v", planned)
			}
			if n != nil && n[0x74] != c.unwraps {
				t.Errorf("%d UNWRAP KEY, want %d", n[0x74], c.unwraps)
			}
		})
	}
}

// everyUnwrap answers every UNWRAP KEY with ans.
func everyUnwrap(c *device.Conn, ans []byte) {
	c.Sim.Fault = func(cmd []byte) ([]byte, error) {
		if cmd[1] == 0x74 {
			return ans, nil
		}
		return nil, nil
	}
}

// restoreFrom restores the backup dir into a device, as a first run.
func restoreFrom(dir string) func(t *testing.T, c *device.Conn) {
	return func(t *testing.T, c *device.Conn) {
		t.Helper()
		if _, err := RestoreAll(c, RestoreAllOptions{Dir: dir, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
}

// A key reference to replace that the backup does not hold is refused
// before the device is opened for the restore.
func TestRestoreAllReplaceNotInBackup(t *testing.T) {
	dir := backupOf(t, deviceWithKeys(t, "src.json"))
	c := deviceA(t, "dst.json")
	n := countINS(c)
	_, err := RestoreAll(c, RestoreAllOptions{Dir: dir, PIN: pin, Replace: []int{7}})
	if err == nil || err.Error() != "--key-reference 7: the backup has no key for key reference 7: name the references to replace among the backup's (1, 2)" {
		t.Fatalf("%v", err)
	}
	if len(n) != 0 {
		t.Fatalf("the device was sent %v", n)
	}
}

// After UNWRAP KEY the key is read back; a device whose key differs from
// the backup's public key (OpenSC issue 3567: an incomplete 4096-bit
// restore) is reported, by unwrap-key and by restore. The device's answer
// to the read-back is replaced with another key's CV request.
func TestRestoreReadBackMismatch(t *testing.T) {
	other, err := wrap.ParseFile(readVector(t, "wrap-key-rsa2048-ref1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// readBackOther answers the READ BINARY of CE<ref> that follows
	// UNWRAP KEY with the RSA key's CV request.
	readBackOther := func(c *device.Conn) {
		unwrapped := false
		c.Sim.Fault = func(cmd []byte) ([]byte, error) {
			switch {
			case cmd[1] == 0x74:
				unwrapped = true
			case unwrapped && cmd[1] == 0xB1 && cmd[2] == 0xCE:
				return append(append([]byte(nil), other.Cert...), 0x90, 0x00), nil
			}
			return nil, nil
		}
	}
	const want = "the key restored at reference 5 does not match the backup's public key: do not use it; restore again or investigate the device"

	c := deviceA(t, "a.json")
	readBackOther(c)
	res, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec.bin", Ref: 5, PIN: pin})
	c.Sim.Fault = nil
	if res != nil || err == nil || err.Error() != want {
		t.Fatalf("unwrap: %+v, %v", res, err)
	}
	// Without the fault the same restore reads back the right key.
	if res, err := Restore(c, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec.bin", Ref: 5, Force: true, PIN: pin}); err != nil || !res.Verified {
		t.Fatalf("unwrap without the fault: %+v, %v", res, err)
	}

	src := deviceA(t, "src.json")
	if _, err := Restore(src, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec.bin", Ref: 5, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	dir := backupOf(t, src)
	dst := deviceA(t, "dst.json")
	readBackOther(dst)
	results, err := RestoreAll(dst, RestoreAllOptions{Dir: dir, PIN: pin})
	dst.Sim.Fault = nil
	// The device holds a key there now: not "nothing was restored".
	if !errors.Is(err, ErrPartial) || len(results) != 1 || results[0].Status != StatusFailed || results[0].Error != want {
		t.Fatalf("restore: %+v, %v", results, err)
	}
}
