package backup

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// Two backups never mix: a backup with Force over an earlier one builds
// the new one beside it and keeps the earlier one whole as DIR.~N~, never
// overwriting an older copy; without Force an earlier backup is refused,
// and a directory with other files in it always is.
func TestBackupAllNeverMixes(t *testing.T) {
	two := deviceWithKeys(t, "two.json") // k1 at 1, k2 at 2
	one := deviceA(t, "one.json")
	generate(t, one, keystore.GenSpec{Type: "aes", Bits: 128, Label: "solo", Ref: 1})
	dir := filepath.Join(t.TempDir(), "nightly")

	if _, err := BackupAll(two, BackupOptions{Dir: dir, PIN: pin}); err != nil {
		t.Fatal(err)
	}
	first := listDir(t, dir)
	if !regexp.MustCompile(`^key-001-k1.bin=\w+ key-002-k2.bin=\w+ manifest.json=\w+$`).MatchString(first) {
		t.Fatalf("first backup: %s", first)
	}
	if _, err := BackupAll(one, BackupOptions{Dir: dir, PIN: pin}); !errors.Is(err, atomicfile.ErrExists) {
		t.Fatalf("over an earlier backup without Force: %v", err)
	}
	res, err := BackupAll(one, BackupOptions{Dir: dir, PIN: pin, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.KeptAs != dir+".~1~" || len(res.Keys) != 1 {
		t.Fatalf("%+v", res)
	}
	if got := listDir(t, dir); !regexp.MustCompile(`^key-001-solo.bin=\w+ manifest.json=\w+$`).MatchString(got) {
		t.Fatalf("the new backup holds files of the old one: %s", got)
	}
	if got := listDir(t, dir+".~1~"); got != first {
		t.Fatalf("the earlier backup was changed: %s, was %s", got, first)
	}
	second := listDir(t, dir)
	res, err = BackupAll(two, BackupOptions{Dir: dir, PIN: pin, Force: true})
	if err != nil || res.KeptAs != dir+".~2~" {
		t.Fatalf("%+v, %v", res, err)
	}
	if listDir(t, dir+".~1~") != first || listDir(t, dir+".~2~") != second {
		t.Fatal("an older copy was overwritten")
	}
	ents, _ := os.ReadDir(filepath.Dir(dir))
	if len(ents) != 3 {
		t.Fatalf("beside the backup: %v (a temporary directory left?)", ents)
	}
}

// The target directory is checked before the device is touched; nothing
// is left behind when the backup fails.
func TestBackupAllTarget(t *testing.T) {
	c := deviceWithKeys(t, "a.json")
	root := t.TempDir()
	other := filepath.Join(root, "papers")
	os.Mkdir(other, 0o700)
	os.WriteFile(filepath.Join(other, "notes.txt"), []byte("x"), 0o600)
	empty := filepath.Join(root, "empty")
	os.Mkdir(empty, 0o700)
	for _, tc := range []struct {
		name, dir, err string
	}{
		{"standard output", "-", "--out-dir -: a backup is a directory of files and cannot go to standard output: give a directory (it is created if missing)"},
		{"other files", other, "holds files but no backup (no manifest.json): give a new or empty directory, so that the backup is not mixed with other files"},
		{"a file", filepath.Join(other, "notes.txt"), "not a directory"},
		{"empty directory", empty, ""},
		{"missing parents", filepath.Join(root, "x", "y", "z"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := countINS(c)
			_, err := BackupAll(c, BackupOptions{Dir: tc.dir, PIN: pin})
			c.Sim.Fault = nil
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := listDir(t, tc.dir); !strings.HasSuffix(got, " manifest.json="+got[strings.LastIndex(got, "=")+1:]) {
					t.Fatalf("%s", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("%v", err)
			}
			if len(n) != 0 {
				t.Fatalf("the device was sent %v", n)
			}
		})
	}
	if got := listDir(t, other); !strings.HasPrefix(got, "notes.txt=") || strings.Contains(got, " ") {
		t.Fatalf("the other directory changed: %s", got)
	}
	// A failed backup into missing parents removes what it made.
	atINS(c, 0x72, 1, false, nil, sim.ErrCardRemoved)
	_, err := BackupAll(c, BackupOptions{Dir: filepath.Join(root, "p", "q", "r"), PIN: pin})
	c.Sim.Fault = nil
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := os.Stat(filepath.Join(root, "p")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the parents made for the backup are left: %v", err)
	}
}

// The backup reuses what its listing read: 5 + 3N APDUs for N keys
// (SELECT, the PIN's tries, VERIFY, DKEK status, LIST KEYS; per key the
// description, the certificate and WRAP KEY), not the key file's FCP or a
// second read of each file. A key that is not exportable costs the same:
// WRAP KEY's 6985 says so.
func TestBackupAllAPDUs(t *testing.T) {
	c := deviceWithKeys(t, "a.json")
	generate(t, c, keystore.GenSpec{Type: "aes", Bits: 128, Label: "k3", Ref: 3})
	generate(t, c, keystore.GenSpec{Type: "ec", Curve: "secp256r1", Label: "pinned", Ref: 4, NoExport: true})
	n := countINS(c)
	res, err := BackupAll(c, BackupOptions{Dir: filepath.Join(t.TempDir(), "b"), PIN: pin})
	c.Sim.Fault = nil
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 3 || len(res.Skipped) != 1 || res.Skipped[0].Ref != 4 {
		t.Fatalf("%+v", res.Manifest)
	}
	total := 0
	for _, k := range n {
		total += k
	}
	if total > 5+3*4 || n[0xB1] != 8 || n[0x72] != 4 || n[0xA4] != 1 {
		t.Fatalf("%d APDUs, want at most %d: %v", total, 5+3*4, n)
	}
}

// A device without keys makes a backup with an empty manifest.
func TestBackupAllEmptyDevice(t *testing.T) {
	c := deviceA(t, "a.json")
	dir := filepath.Join(t.TempDir(), "b")
	res, err := BackupAll(c, BackupOptions{Dir: dir, PIN: pin})
	if err != nil || len(res.Keys) != 0 || len(res.Skipped) != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
	if got := listDir(t, dir); !strings.HasPrefix(got, "manifest.json=") {
		t.Fatalf("%s", got)
	}
}
