package ceremony

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

func xorOf(shares ...[]byte) []byte { return xorShares(shares) }

// CheckShares refuses every combination in which some custodian's share
// contributes nothing or one custodian alone knows the DKEK.
func TestCheckShares(t *testing.T) {
	a, b, c := sharesA[0], sharesA[1], sharesA[2]
	zero := make([]byte, 32)
	names := []string{"a.pbe", "b.pbe", "c.pbe", "d.pbe"}
	for _, tc := range []struct {
		name   string
		shares [][]byte
		want   string
	}{
		{"one share", [][]byte{a}, ""},
		{"two", [][]byte{a, b}, ""},
		{"the recorded three", [][]byte{a, b, c}, ""},
		{"an all-zero share", [][]byte{a, zero}, "b.pbe holds an all-zero share, which adds nothing to the DKEK: its custodian must create a new share with create-dkek-share"},
		{"the same share twice", [][]byte{a, a}, "a.pbe and b.pbe hold the same share: each custodian must bring their own share file"},
		{"c1, c1, c2", [][]byte{a, a, b}, "a.pbe and b.pbe hold the same share: each custodian must bring their own share file"},
		{"c1, c2, c1", [][]byte{a, b, a}, "a.pbe and c.pbe hold the same share: each custodian must bring their own share file"},
		{"three that cancel out", [][]byte{a, b, xorOf(a, b)}, "the shares of a.pbe, b.pbe and c.pbe cancel out: together they make an all-zero DKEK (key check value 66687AADF862BD77), which protects nothing: each custodian must create their own share with create-dkek-share"},
		{"the others cancel out", [][]byte{a, b, c, xorOf(a, b)}, "the shares of the other files cancel out, so the DKEK would be the share in c.pbe alone, which its custodian alone knows: each custodian must create their own share with create-dkek-share"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckShares(names[:len(tc.shares)], tc.shares)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("got %v\nwant %s", err, tc.want)
			}
		})
	}
	if k := CombinedKCV([][]byte{zero}); k != zeroKCV || zeroKCV != "66687AADF862BD77" {
		t.Fatalf("all-zero DKEK KCV %s / %s, the issue recorded 66687AADF862BD77", k, zeroKCV)
	}
}

// ReadShareFiles refuses one file given twice, by any path, before any key
// derivation.
func TestReadShareFiles(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1)()
	dir := t.TempDir()
	t.Chdir(dir)
	seal := func(name string, share []byte) {
		f, err := dkekshare.Seal(share, []byte("password-1"), rand.Reader, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	seal("c1.pbe", sharesA[0])
	seal("c2.pbe", sharesA[1])
	seal("resealed.pbe", sharesA[0]) // the same share, another salt
	if err := os.Link("c1.pbe", "link.pbe"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile("c1.pbe")
	os.WriteFile("copy.pbe", b, 0o600)
	os.Mkdir("sub", 0o700)

	for _, tc := range []struct {
		files []string
		want  string
	}{
		{[]string{"c1.pbe", "c2.pbe", "resealed.pbe"}, ""}, // known only once decrypted
		{[]string{"c1.pbe", "c1.pbe"}, "c1.pbe is given twice: each custodian must bring their own share file"},
		{[]string{"c2.pbe", "c1.pbe", "./c1.pbe"}, "c1.pbe and ./c1.pbe are the same file: each custodian must bring their own share file"},
		{[]string{"c1.pbe", "sub/../c1.pbe"}, "c1.pbe and sub/../c1.pbe are the same file: each custodian must bring their own share file"},
		{[]string{"link.pbe", "c1.pbe"}, "link.pbe and c1.pbe are the same file: each custodian must bring their own share file"},
		{[]string{"c1.pbe", "copy.pbe"}, "c1.pbe and copy.pbe hold the same share: each custodian must bring their own share file"},
	} {
		files, err := ReadShareFiles(tc.files)
		switch {
		case tc.want == "" && (err != nil || len(files) != len(tc.files)):
			t.Errorf("%v: %v", tc.files, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%v: got %v\nwant %s", tc.files, err, tc.want)
		}
	}
}

// CheckOutput finds what would make the write fail after the key
// derivation, and words it as the write would.
func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	os.WriteFile("exists.pbe", []byte("x"), 0o600)
	os.Mkdir("adir", 0o700)
	for _, tc := range []struct {
		path      string
		overwrite bool
		want      string
		is        error
	}{
		{"new.pbe", false, "", nil},
		{"exists.pbe", true, "", nil},
		{"exists.pbe", false, "exists.pbe: file exists: choose another name, or add --force to replace it", atomicfile.ErrExists},
		{"nodir/s.pbe", false, "cannot write nodir/s.pbe: no such file or directory: the directory does not exist: create it first, or check the path", os.ErrNotExist},
		{"exists.pbe/s.pbe", false, "cannot write exists.pbe/s.pbe: not a directory: a part of the path is a file, not a directory: check the path", syscall.ENOTDIR},
		{"adir", true, "cannot write adir: is a directory: a directory has that name: choose a file name", syscall.EISDIR},
		{"adir", false, "adir: file exists: choose another name, or add --force to replace it", atomicfile.ErrExists},
	} {
		err := CheckOutput(tc.path, tc.overwrite)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.path, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, tc.is)):
			t.Errorf("%s: got %v\nwant %s", tc.path, err, tc.want)
		}
	}
	// The probe leaves nothing behind.
	ents, _ := os.ReadDir(".")
	if len(ents) != 2 {
		t.Errorf("files left: %v", ents)
	}
	if os.Geteuid() != 0 {
		os.Mkdir("ro", 0o500)
		err := CheckOutput("ro/s.pbe", false)
		if err == nil || err.Error() != "cannot write ro/s.pbe: permission denied: you may not write in that directory: choose another one, or change its permissions; nothing was written" {
			t.Errorf("read-only directory: %v", err)
		}
	}
}

// CheckImport refuses, before any share file is decrypted, a device that
// cannot take the shares.
func TestCheckImport(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "new.json"))
	if _, err := CheckImport(c, 1); !errors.Is(err, hsm.ErrNoDKEK) {
		t.Fatalf("factory device: %v", err)
	}
	c = openSim(t, filepath.Join(t.TempDir(), "none.json"))
	Initialize(c, InitOptions{Params: params(-1)})
	if _, err := CheckImport(c, 1); err == nil || !errors.Is(err, hsm.ErrNoDKEK) || !strings.HasPrefix(err.Error(), "cannot import DKEK shares: the device has no DKEK") {
		t.Fatalf("no DKEK: %v", err)
	}
	c = openSim(t, filepath.Join(t.TempDir(), "two.json"))
	Initialize(c, InitOptions{Params: params(2)})
	if _, err := CheckImport(c, 3); err == nil || err.Error() != "the device expects 2 more DKEK share(s), but 3 were given: nothing was imported" {
		t.Fatalf("too many: %v", err)
	}
	st, err := CheckImport(c, 2)
	if err != nil || st.Shares != 2 || st.Outstanding != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	var out bytes.Buffer
	ImportShares(c, ImportOptions{Shares: sharesA[:2], PIN: pin, Out: &out, Checked: &st})
	if _, err := CheckImport(c, 1); !errors.Is(err, hsm.ErrAllSharesImported) {
		t.Fatalf("all in: %v", err)
	}
}

// A share imported in an earlier run and again now is found once the DKEK
// is complete and its real check value known (the device's check value of
// an incomplete DKEK is no share's), and the import fails loudly; without
// the PIN, a note says the check could not be made.
func TestImportSharesTwiceAcrossRuns(t *testing.T) {
	a, b, c := sharesA[0], sharesA[1], sharesA[2]
	type run struct {
		shares [][]byte
		pin    bool
	}
	for _, tc := range []struct {
		name   string
		total  int
		runs   []run
		want   string
		notes  []string
		commit bool
	}{
		{name: "c1 then c1, 2 shares", total: 2, runs: []run{{[][]byte{a}, false}, {[][]byte{a}, true}},
			want: "the device's DKEK is all zeros (key check value 66687AADF862BD77): a share was imported twice, and the two cancelled out, so the DKEK protects nothing; do not generate or back up keys on this device: re-initialize it (which destroys its keys) and have each custodian import their own share once"},
		{name: "c1, c1, then c2, 3 shares", total: 3, runs: []run{{[][]byte{a}, true}, {[][]byte{a}, true}, {[][]byte{b}, true}},
			want:  "the device's DKEK is the share of b.pbe alone (key check value " + ShareKCV(b) + "): the shares imported before this run cancel out (one was imported twice), so b.pbe's custodian alone knows the DKEK; do not generate or back up keys on this device: re-initialize it (which destroys its keys) and have each custodian import their own share once",
			notes: []string{"note: 1 share(s) were imported before this run; whether one of them was imported again now can only be checked when the DKEK is complete: import the last share with --pin"}},
		{name: "c1, c1, then c2 and c3, 4 shares", total: 4, runs: []run{{[][]byte{a}, true}, {[][]byte{a}, true}, {[][]byte{b, c}, true}},
			want: "the device's DKEK is made of this run's shares alone (key check value " + CombinedKCV([][]byte{b, c}) + "): the shares imported before this run cancel out (one was imported twice); do not generate or back up keys on this device: re-initialize it (which destroys its keys) and have each custodian import their own share once"},
		{name: "c1 then c1 without the PIN", total: 2, runs: []run{{[][]byte{a}, false}, {[][]byte{a}, false}},
			notes: []string{"WARNING: the DKEK is complete but NOT committed", "note: 1 share(s) were imported before this run, and without the user PIN the tool could not check that none of them was imported again now: if '", "status --pin' shows the DKEK key check value 66687AADF862BD77, the DKEK is all zeros: re-initialize the device"}},
		{name: "c1 then c2", total: 2, runs: []run{{[][]byte{a}, false}, {[][]byte{b}, true}}, commit: true},
		{name: "c1 then c2 and c3", total: 3, runs: []run{{[][]byte{a}, true}, {[][]byte{b, c}, true}}, commit: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
			if _, err := Initialize(conn, InitOptions{Params: params(tc.total)}); err != nil {
				t.Fatal(err)
			}
			var res *ImportResult
			var err error
			var notes []string
			for i, r := range tc.runs {
				o := ImportOptions{Shares: r.shares, Names: []string{"b.pbe", "c.pbe"}, Out: &bytes.Buffer{},
					Warn: func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) }}
				if r.pin {
					o.PIN = pin
				}
				res, err = ImportShares(conn, o)
				if i < len(tc.runs)-1 && err != nil {
					t.Fatalf("run %d: %v", i+1, err)
				}
			}
			switch {
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("got %v\nwant %s", err, tc.want)
			case tc.want == "" && tc.commit && (err != nil || !res.Committed):
				t.Fatalf("%+v %v", res, err)
			}
			for _, n := range tc.notes {
				found := false
				for _, got := range notes {
					found = found || strings.HasPrefix(got, n) || strings.HasSuffix(got, n)
				}
				if !found {
					t.Errorf("no note %q in %q", n, notes)
				}
			}
			if tc.commit && len(notes) > 0 {
				t.Errorf("notes after a good import: %q", notes)
			}
		})
	}
}

// Why a share imported twice cannot be caught before the DKEK is complete:
// after a verified PIN the device answers, for an incomplete DKEK, the
// check value of the plain XOR accumulator decrypted under its master key
// (pico-hsm kek.c dkek_kcv through load_dkek), which is no share's own
// check value; before the PIN, zeros.
func TestPartialKCVIsNoShares(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	Initialize(c, InitOptions{Params: params(3)})
	if _, err := ImportShares(c, ImportOptions{Shares: sharesA[:1], PIN: pin, Out: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	st := status(t, c)
	if st.KCVKnown() {
		t.Fatalf("KCV %s without a PIN session", st.KCVHex())
	}
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	st, err := c.DKEKStatus()
	if err != nil || st.Outstanding != 2 {
		t.Fatalf("%+v %v", st, err)
	}
	if !st.KCVKnown() || st.KCVHex() == ShareKCV(sharesA[0]) || st.KCVHex() == CombinedKCV(sharesA[:1]) {
		t.Fatalf("partial KCV %s, share's own %s: the simulator no longer models kek.c dkek_kcv", st.KCVHex(), ShareKCV(sharesA[0]))
	}
}
