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
