package backup

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// atINS arms a fault on the k-th APDU with instruction ins: the device
// answers ans or the transport fails with err, before the firmware sees
// the command or, with after, once it has executed it.
func atINS(c *device.Conn, ins byte, k int, after bool, ans []byte, err error) {
	seen := 0
	var hook func([]byte) ([]byte, error)
	hook = func(cmd []byte) ([]byte, error) {
		if len(cmd) < 2 || cmd[1] != ins {
			return nil, nil
		}
		if seen++; seen != k {
			return nil, nil
		}
		if after {
			c.Sim.Fault = nil
			if _, err := c.Sim.Transmit(cmd); err != nil {
				return nil, err
			}
			c.Sim.Fault = hook
		}
		return ans, err
	}
	c.Sim.Fault = hook
}

// deviceWithKeys is device A with the recorded RSA and EC keys restored at
// references 1 and 2.
func deviceWithKeys(t *testing.T, name string) *device.Conn {
	t.Helper()
	c := deviceA(t, name)
	for _, f := range []string{"wrap-key-rsa2048-ref1.bin", "wrap-key-ec256-ref2.bin"} {
		if _, err := Restore(c, RestoreOptions{File: readVector(t, f), Name: f, Ref: -1, PIN: pin}); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// listDir lists a directory's files with a hash of their content.
func listDir(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "(no directory)"
	}
	var names []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		names = append(names, fmt.Sprintf("%s=%x", e.Name(), sha256.Sum256(b)))
	}
	return strings.Join(names, " ")
}

// A backup writes nothing until the device has answered everything: an
// interrupted session leaves the directory as it was (a new one is
// removed), and a key the device fails to wrap makes a partial backup
// only where it replaces no earlier one.
func TestBackupAllFaults(t *testing.T) {
	for _, c := range []struct {
		name    string
		earlier bool // an earlier backup is in the directory (--force)
		k       int  // which WRAP KEY fails
		ans     []byte
		err     error
		want    string // in the error
		partial bool   // ErrPartial, with the other key written
	}{
		{name: "memory failure, new directory", k: 1, ans: []byte{0x65, 0x81}, want: "some keys failed: key reference 1: wrap key reference 1: device memory failure (SW 6581)", partial: true},
		{name: "memory failure, over an earlier backup", earlier: true, k: 1, ans: []byte{0x65, 0x81}, want: "nothing was written: the earlier backup in"},
		{name: "card removed, new directory", k: 2, err: sim.ErrCardRemoved, want: "; nothing was written to "},
		{name: "card removed, over an earlier backup", earlier: true, k: 2, err: sim.ErrCardRemoved, want: "nothing was written: the earlier backup in"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := deviceWithKeys(t, "a.json")
			dir := filepath.Join(t.TempDir(), "backup")
			if c.earlier {
				if _, err := BackupAll(conn, BackupOptions{Dir: dir, PIN: pin}); err != nil {
					t.Fatal(err)
				}
			}
			before := listDir(t, dir)
			atINS(conn, 0x72, c.k, false, c.ans, c.err)
			m, err := BackupAll(conn, BackupOptions{Dir: dir, PIN: pin, Force: true})
			conn.Sim.Fault = nil
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrPartial) != c.partial {
				t.Fatalf("%v", err)
			}
			after := listDir(t, dir)
			if c.partial {
				if m == nil || len(m.Keys) != 1 || m.Keys[0].Ref != 2 || !regexp.MustCompile(`^key-002-k2.bin=\w+ manifest.json=\w+$`).MatchString(after) {
					t.Fatalf("manifest %+v, directory %s", m, after)
				}
				return
			}
			if m != nil || after != before {
				t.Fatalf("manifest %+v; directory before: %s, after: %s", m, before, after)
			}
		})
	}
}

// An interrupted restore stops at the key it was restoring, says what
// state that key is in and how to finish it, and reports the keys before
// it as restored.
func TestRestoreAllInterrupted(t *testing.T) {
	a := deviceWithKeys(t, "a.json")
	dir := filepath.Join(t.TempDir(), "backup")
	if _, err := BackupAll(a, BackupOptions{Dir: dir, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	b := deviceA(t, "b.json")
	atINS(b, 0x74, 2, true, nil, sim.ErrCardRemoved)
	res, err := RestoreAll(b, RestoreAllOptions{Dir: dir, PIN: pin})
	b.Sim.Fault = nil
	if !errors.Is(err, ErrPartial) || !strings.Contains(err.Error(), "1 of 2 keys were not restored: the restore was interrupted at key-002-k2.bin") {
		t.Fatalf("%v", err)
	}
	if len(res) != 2 || res[0].Result == nil || res[0].Result.Ref != 1 ||
		!strings.Contains(res[1].Error, "the card was removed or reset during the operation") ||
		!strings.Contains(res[1].Error, "key reference 2 is either still free or holds the restored key (without its label and certificate): finish with '"+b.Suggest("unwrap-key "+filepath.Join(dir, "key-002-k2.bin")+" --key-reference 2 --force")+"'") {
		t.Fatalf("%+v", res)
	}
	if b.Sim.PublicKey(2) == nil {
		t.Fatal("UNWRAP KEY was executed, but the device holds no key at reference 2")
	}
}

// With --force, an UNWRAP KEY whose answer is lost may have replaced the
// old key: the message must not say it is unchanged.
func TestRestoreForceAnswerLost(t *testing.T) {
	for _, c := range []struct {
		name  string
		after bool
		ans   []byte
		err   error
		want  string
	}{
		{"card removed after UNWRAP KEY", true, nil, sim.ErrCardRemoved, "key reference 1 holds either its old key or the restored one"},
		{"memory failure", false, []byte{0x65, 0x81}, nil, "key reference 1 holds either its old key or the restored one"},
		{"blob refused", false, []byte{0x64, 0x00}, nil, "the key at reference 1 is unchanged"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := deviceWithKeys(t, "a.json")
			atINS(conn, 0x74, 1, c.after, c.ans, c.err)
			_, err := Restore(conn, RestoreOptions{File: readVector(t, "wrap-key-ec256-ref2.bin"), Name: "ec.bin", Ref: 1, Force: true, AllowDuplicate: true, PIN: pin})
			conn.Sim.Fault = nil
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v", err)
			}
		})
	}
}
