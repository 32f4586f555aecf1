package ceremony

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestResumeFrom: import-dkek-share --resume takes, of the files given,
// the last ones the device still counts as missing (sharesA: the three
// recorded shares, DKEK 440B48E7FAEBC853).
func TestResumeFrom(t *testing.T) {
	for _, c := range []struct {
		name     string
		imported int // shares in before the resume
		files    int // files given to --resume
		from     int
		err      string
	}{
		{"none in, all given", 0, 3, 0, ""},
		{"one in, the last two given", 1, 2, 0, ""},
		{"one in, all given", 1, 3, 1, ""},
		{"two in, all given", 2, 3, 2, ""},
		{"all in", 3, 3, 3, ""},
		{"all in, one given", 3, 1, 1, ""},
		{"none in, two given", 0, 2, 0, "the device expects 3 more DKEK share(s), but --resume was given 2 file(s)"},
		{"one in, one given", 1, 1, 0, "the device expects 2 more DKEK share(s), but --resume was given 1 file(s)"},
		{"none in, four given", 0, 4, 0, "--resume was given 4 share files, but the device's DKEK has 3 shares"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := openSim(t, filepath.Join(t.TempDir(), "d.json"))
			if _, err := Initialize(conn, InitOptions{Params: params(3)}); err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if c.imported > 0 {
				if _, err := ImportShares(conn, ImportOptions{Shares: sharesA[:c.imported], PIN: pin, Out: &out}); err != nil {
					t.Fatal(err)
				}
			}
			st, from, err := ResumeFrom(conn, 0, c.files)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || from != c.from || st.Outstanding != 3-c.imported {
				t.Fatalf("from %d, status %+v, err %v; want from %d", from, st, err, c.from)
			}
			// The files from "from" on finish the DKEK.
			given := sharesA[3-c.files:]
			res, err := ImportShares(conn, ImportOptions{Shares: given[from:], PIN: pin, Out: &out, Resume: true, Checked: &st})
			if err != nil || !res.Committed || res.Status.KCVHex() != "440B48E7FAEBC853" {
				t.Fatalf("%+v %v\n%s", res, err, out.String())
			}
			if from == c.files && !strings.Contains(out.String(), "No DKEK share left to import: all 3 are in\n") {
				t.Fatalf("output:\n%s", out.String())
			}
			e := &Expect{KCV: "440B48E7FAEBC853"}
			if err := e.CheckDevice(res.Status); err != nil {
				t.Fatal(err)
			}
			e.KCV = "0011223344556677"
			if err := e.CheckDevice(res.Status); err == nil || !strings.Contains(err.Error(), "do not use this device for backups") {
				t.Fatalf("mismatch: %v", err)
			}
		})
	}
}

// TestImportSharesResumeNothing: with no shares, ImportShares refuses a
// device that still lacks some.
func TestImportSharesResumeNothing(t *testing.T) {
	conn := openSim(t, filepath.Join(t.TempDir(), "d.json"))
	Initialize(conn, InitOptions{Params: params(2)})
	var out bytes.Buffer
	if _, err := ImportShares(conn, ImportOptions{Out: &out}); err == nil {
		t.Fatal("no shares without Resume accepted")
	}
	_, err := ImportShares(conn, ImportOptions{Out: &out, Resume: true, PIN: pin})
	if err == nil || !strings.Contains(err.Error(), "the device still expects 2 DKEK share(s)") {
		t.Fatalf("%v", err)
	}
}

// TestExpectFrom: the part of the expected values the files left can
// show before they reach a device.
func TestExpectFrom(t *testing.T) {
	e := &Expect{KCV: "K", ShareKCVs: []string{"A", "B", "C"}}
	for _, c := range []struct {
		from   int
		whole  bool
		kcv    string
		shares []string
	}{
		{0, true, "K", []string{"A", "B", "C"}},
		{1, false, "", []string{"B", "C"}},
		{3, false, "", nil},
	} {
		f := e.From(c.from, c.whole)
		if f.KCV != c.kcv || strings.Join(f.ShareKCVs, ",") != strings.Join(c.shares, ",") {
			t.Errorf("From(%d, %v) = %+v", c.from, c.whole, f)
		}
	}
}
