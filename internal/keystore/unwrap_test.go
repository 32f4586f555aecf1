package keystore

import (
	"errors"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// TestDKEKMismatch tells the three reasons apart, so that restore and
// import-key can each say what to do.
func TestDKEKMismatch(t *testing.T) {
	want := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	tests := []struct {
		name             string
		st               hsm.DKEKStatus
		none, incomplete bool
		msg              string
	}{
		{"no DKEK", hsm.DKEKStatus{}, true, false, hsm.ErrNoDKEK.Error()},
		{"waits for shares", hsm.DKEKStatus{Shares: 3, Outstanding: 1}, false, true, "the device's DKEK is incomplete (2 of 3 shares imported)"},
		{"another DKEK", hsm.DKEKStatus{Shares: 1, KCV: [8]byte{9}}, false, false, "the device's DKEK is 0900000000000000, not 0102030405060708"},
	}
	for _, tc := range tests {
		e := &DKEKMismatch{Status: tc.st, Want: want}
		if e.None() != tc.none || e.Incomplete() != tc.incomplete || e.Error() != tc.msg {
			t.Errorf("%s: None %v Incomplete %v %q", tc.name, e.None(), e.Incomplete(), e.Error())
		}
		if errors.Is(e, hsm.ErrNoDKEK) != tc.none {
			t.Errorf("%s: errors.Is(ErrNoDKEK) = %v", tc.name, !tc.none)
		}
	}
}

// TestDomainsMatch takes the first set-up, complete domain with the
// blob's check value, as UNWRAP KEY does (pico-hsm cmd_key_unwrap.c), and
// says each domain's state when none has it.
func TestDomainsMatch(t *testing.T) {
	a, b := [8]byte{0xA}, [8]byte{0xB}
	d := &Domains{All: true, List: []hsm.KeyDomain{
		{Domain: 0, SetUp: true, Status: hsm.DKEKStatus{Shares: 2, Outstanding: 1, KCV: a}},
		{Domain: 1},
		{Domain: 2, SetUp: true, Status: hsm.DKEKStatus{Shares: 1, KCV: a}},
		{Domain: 3, SetUp: true, Status: hsm.DKEKStatus{Shares: 1, KCV: a}},
	}}
	if got := d.Match(a); got != 2 {
		t.Errorf("Match(a) = %d, want 2 (0 waits for shares)", got)
	}
	if got := d.Match(b); got != -1 {
		t.Errorf("Match(b) = %d, want -1", got)
	}
	err := d.Mismatch(b)
	want := "no key domain on this device has DKEK check value 0B00000000000000 (key domain 0: 1 of 2 shares imported, key domain 2: 0A00000000000000, key domain 3: 0A00000000000000)"
	if !errors.Is(err, ErrNoDomainMatch) || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	// Only domain 0: the words of a device without key domains.
	one := &Domains{All: true, List: d.List[:1]}
	var dm *DKEKMismatch
	if !errors.As(one.Mismatch(b), &dm) || !dm.Incomplete() {
		t.Errorf("one domain: %v", one.Mismatch(b))
	}
}
