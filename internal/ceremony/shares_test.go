package ceremony

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// sealed makes k share files with passwords "pw-1"..., at the test
// iteration count, and returns them with their shares.
func sealed(t *testing.T, k int) (names []string, files, passwords, shares [][]byte) {
	t.Helper()
	for i := range k {
		s := make([]byte, 32)
		rand.Read(s)
		pw := []byte(fmt.Sprintf("pw-%d", i+1))
		f, err := dkekshare.Seal(s, pw, rand.Reader, nil)
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, fmt.Sprintf("s%d.pbe", i+1))
		files, passwords, shares = append(files, f), append(passwords, pw), append(shares, s)
	}
	return names, files, passwords, shares
}

// TestOpenSharesOrder checks that the shares come back in the order of the
// files whatever the number of workers, including more files than workers
// and more workers than files.
func TestOpenSharesOrder(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(2000)()
	names, files, pws, want := sealed(t, 7)
	for _, workers := range []int{1, 2, 3, 7, 16} {
		got, err := openShares(names, files, pws, nil, workers)
		if err != nil {
			t.Fatalf("%d workers: %v", workers, err)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%d workers: share %d is %x, want %x", workers, i, got[i], want[i])
			}
		}
	}
	got, err := OpenShares(names[:1], files[:1], pws[:1], nil)
	if err != nil || !bytes.Equal(got[0], want[0]) {
		t.Fatalf("OpenShares of one file: %x, %v", got, err)
	}
}

// TestOpenSharesWrongPassword checks that a wrong password fails with the
// name and index of its file, whichever file it is and however many
// workers run; that with two wrong, the first in the order of the files is
// named; and that every share decrypted before the failure is wiped and
// none is returned.
func TestOpenSharesWrongPassword(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(2000)()
	names, files, pws, _ := sealed(t, 5)
	var mu sync.Mutex
	var seen [][]byte
	testHookOpened = func(s []byte) {
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
	}
	defer func() { testHookOpened = nil }()
	for _, wrong := range [][]int{{0}, {2}, {4}, {3, 1}} {
		for _, workers := range []int{1, 2, 5} {
			seen = nil
			bad := make([][]byte, len(pws))
			copy(bad, pws)
			for _, w := range wrong {
				bad[w] = []byte("not the password")
			}
			got, err := openShares(names, files, bad, nil, workers)
			first := min(wrong[0], wrong[len(wrong)-1])
			var se *ShareError
			if got != nil || !errors.As(err, &se) || se.Index != first || se.Name != names[first] || !errors.Is(err, dkekshare.ErrWrongPassword) {
				t.Fatalf("wrong %v, %d workers: got %x, %v", wrong, workers, got, err)
			}
			if want := names[first] + ": " + dkekshare.ErrWrongPassword.Error(); err.Error() != want {
				t.Fatalf("message %q, want %q", err, want)
			}
			for _, s := range seen {
				if !bytes.Equal(s, make([]byte, 32)) {
					t.Fatalf("wrong %v, %d workers: a decrypted share was left unwiped: %x", wrong, workers, s)
				}
			}
		}
	}
}

// TestOpenSharesStopsOthers checks that a failure stops the derivations
// still running: with one worker per file, a truncated first file fails
// at once, and the others, at a count that would take minutes, return
// within seconds.
func TestOpenSharesStopsOthers(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(2000)()
	names, files, pws, _ := sealed(t, 3)
	restore := dkekshare.SetIterationsForTesting(1 << 34) // hours per file
	defer restore()
	files[0] = files[0][:40]
	_, err := openShares(names, files, pws, nil, 3)
	var se *ShareError
	if !errors.As(err, &se) || se.Index != 0 || !errors.Is(err, dkekshare.ErrTruncated) {
		t.Fatalf("got %v", err)
	}
}

// TestOpenSharesProgress checks the one combined progress count: it grows,
// its total is the sum over the files, and it ends at the total, also
// when a file fails.
func TestOpenSharesProgress(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(3000)()
	names, files, pws, _ := sealed(t, 3)
	for _, fail := range []bool{false, true} {
		var calls, last, lastTotal int
		p := func(done, total int) {
			calls++
			if done < last && !fail {
				t.Errorf("progress went back from %d to %d", last, done)
			}
			last, lastTotal = done, total
		}
		bad := pws
		if fail {
			bad = [][]byte{pws[0], []byte("wrong"), pws[2]}
		}
		_, err := openShares(names, files, bad, p, 2)
		if (err != nil) != fail {
			t.Fatal(err)
		}
		if last != lastTotal || lastTotal < 3*3*3000 && !fail || calls < 3 {
			t.Fatalf("fail %v: %d calls, last %d of %d", fail, calls, last, lastTotal)
		}
		if !fail && lastTotal != 3*3*3000 {
			t.Fatalf("total %d, want %d", lastTotal, 3*3*3000)
		}
	}
}

// TestOpenSharesArguments refuses slices of different lengths.
func TestOpenSharesArguments(t *testing.T) {
	if _, err := OpenShares([]string{"a"}, nil, nil, nil); err == nil {
		t.Fatal("no error")
	}
}

func TestParseKCV(t *testing.T) {
	for in, want := range map[string]string{
		"1A2B3C4D5E6F7081":     "1A2B3C4D5E6F7081",
		"1a2b3c4d5e6f7081":     "1A2B3C4D5E6F7081",
		"1a2b 3c4d 5e6f 7081":  "1A2B3C4D5E6F7081",
		" 1A2B3C4D 5E6F7081 ":  "1A2B3C4D5E6F7081",
		"1A2B3C4D5E6F708":      "",
		"1A2B3C4D5E6F70812":    "",
		"1A2B3C4D5E6F708G":     "",
		"1A:2B:3C:4D:5E:6F:70": "",
		"":                     "",
	} {
		got, err := ParseKCV("--expect-kcv", in)
		if got != want || (err != nil) != (want == "") {
			t.Errorf("ParseKCV(%q) = %q, %v; want %q", in, got, err, want)
		}
		if err != nil && !strings.HasPrefix(err.Error(), fmt.Sprintf("--expect-kcv %q: not a key check value", in)) {
			t.Errorf("message %q", err)
		}
	}
}

func TestExpect(t *testing.T) {
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	names := []string{"a.pbe", "b.pbe"}
	shares := [][]byte{a, b}
	k := hsm.KCV(xorOf(a, b))
	whole := fmt.Sprintf("%X", k[:])
	if ShareKCV(a) != fmt.Sprintf("%X", hsm.KCV(a)) {
		t.Fatal("ShareKCV is not a one-share DKEK's check value")
	}
	ok := []Expect{{}, {KCV: whole}, {ShareKCVs: []string{ShareKCV(a), ShareKCV(b)}}, {KCV: whole, ShareKCVs: []string{ShareKCV(a), ShareKCV(b)}}}
	for _, e := range ok {
		if err := e.Check(names, shares); err != nil {
			t.Errorf("%+v: %v", e, err)
		}
	}
	e := Expect{KCV: whole, ShareKCVs: []string{ShareKCV(a), ShareKCV(a)}}
	if err := e.Check(names, shares); err == nil || !strings.HasPrefix(err.Error(), "b.pbe: the share's check value is "+ShareKCV(b)+", not the expected "+ShareKCV(a)+" ") {
		t.Errorf("share mismatch: %v", err)
	}
	e = Expect{KCV: ShareKCV(a)}
	if err := e.Check(names, shares); err == nil || !strings.HasPrefix(err.Error(), "the shares of a.pbe and b.pbe make a DKEK with key check value "+whole+", not the expected "+ShareKCV(a)+" ") {
		t.Errorf("DKEK mismatch: %v", err)
	}
	if err := (&Expect{ShareKCVs: []string{whole}}).CheckCount(2); err == nil {
		t.Error("one --expect-share-kcv for two files accepted")
	}
	if err := (&Expect{KCV: whole}).CheckCount(2); err != nil {
		t.Error(err)
	}
}

func TestCheckExpectComplete(t *testing.T) {
	for _, tt := range []struct {
		st      hsm.DKEKStatus
		dom, n  int
		wantErr string
	}{
		{hsm.DKEKStatus{Shares: 3, Outstanding: 3}, 0, 3, ""},
		{hsm.DKEKStatus{Shares: 1, Outstanding: 1}, 2, 1, ""},
		{hsm.DKEKStatus{Shares: 3, Outstanding: 3}, 0, 2, "all of the device's 3 DKEK shares in one run, but 2 share file(s) were given: "},
		{hsm.DKEKStatus{Shares: 3, Outstanding: 1}, 0, 1, "but 2 of them were already imported and 1 share file(s) were given: "},
		{hsm.DKEKStatus{Shares: 2, Outstanding: 1}, 4, 1, "all of key domain 4's 2 DKEK shares in one run, but 1 of them was already imported and "},
	} {
		err := CheckExpectComplete(tt.st, tt.dom, tt.n)
		if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%+v domain %d, %d files: %v", tt.st, tt.dom, tt.n, err)
		}
	}
}

// TestOpenSharesFirstFailureNamed checks that the file named is the first
// that fails in the order of the files, not the first to fail in time: a
// later file that fails at once (truncated) does not stop an earlier one
// whose password turns out wrong after its derivation.
func TestOpenSharesFirstFailureNamed(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(200_000)()
	names, files, pws, _ := sealed(t, 3)
	pws[0] = []byte("not the password")
	files[2] = files[2][:40]
	for _, workers := range []int{1, 2, 3} {
		_, err := openShares(names, files, pws, nil, workers)
		var se *ShareError
		if !errors.As(err, &se) || se.Index != 0 || !errors.Is(err, dkekshare.ErrWrongPassword) {
			t.Fatalf("%d workers: got %v, want s1.pbe's wrong password", workers, err)
		}
	}
}
