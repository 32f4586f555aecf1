package hsm

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// TestCheckPIN holds the length rule that keeps a certainly-wrong PIN
// from spending a try: 6 to 16 characters, nothing empty.
func TestCheckPIN(t *testing.T) {
	tests := []struct {
		pin     string
		wantErr string
	}{
		{"", "--pin env:X: the user PIN given is empty"},
		{"9", "has 1 character, and"},
		{"12345", "has 5 characters, and a user PIN has 6 to 16"},
		{"123456", ""},
		{"1234567890123456", ""},
		{"12345678901234567", "has 17 characters"},
		{"      ", ""}, // six blanks is a PIN the device could hold
	}
	for _, tc := range tests {
		err := CheckPIN([]byte(tc.pin), "--pin env:X")
		if tc.wantErr == "" {
			if err != nil {
				t.Errorf("CheckPIN(%q) = %v, want nil", tc.pin, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("CheckPIN(%q) = %v, want an error with %q", tc.pin, err, tc.wantErr)
		}
		if err != nil && tc.pin != "" && strings.Contains(err.Error(), tc.pin) {
			t.Errorf("CheckPIN(%q) repeats the PIN: %v", tc.pin, err)
		}
	}
}

// TestBlankNote adds the blank note to a wrong PIN only, and never
// repeats the PIN.
func TestBlankNote(t *testing.T) {
	wrong := &PINError{Ref: UserPIN, TriesLeft: 2, Err: &apdu.StatusError{SW: 0x63C2}}
	tests := []struct {
		pin  string
		err  error
		want string
	}{
		{"648219 ", wrong, "; note: the PIN given ends with a blank"},
		{"\t648219", wrong, "; note: the PIN given starts with a blank"},
		{" 648219 ", wrong, "; note: the PIN given starts and ends with a blank"},
		{"648219", wrong, ""},
		{"648219 ", errors.New("card removed"), ""},
	}
	for _, tc := range tests {
		got := blankNote(tc.err, []byte(tc.pin))
		if !errors.Is(got, tc.err) {
			t.Errorf("blankNote(%q) lost the error: %v", tc.pin, got)
		}
		note := strings.TrimPrefix(got.Error(), tc.err.Error())
		if note != "" && tc.want == "" || tc.want != "" && !strings.HasPrefix(note, tc.want) {
			t.Errorf("blankNote(%q) = %q, want the note %q", tc.pin, got, tc.want)
		}
		if strings.Contains(got.Error(), "648219") {
			t.Errorf("blankNote repeats the PIN: %v", got)
		}
	}
}

// TestZeroDKEKKCV: the constant is the check value of 32 zero bytes.
func TestZeroDKEKKCV(t *testing.T) {
	k := KCV(make([]byte, 32))
	if got := strings.ToUpper(hex.EncodeToString(k[:])); got != ZeroDKEKKCV {
		t.Fatalf("KCV of zeros = %s, ZeroDKEKKCV = %s", got, ZeroDKEKKCV)
	}
}

// swTransport answers every APDU with one status word, and records the
// commands it saw.
type swTransport struct {
	sw   uint16
	cmds [][]byte
}

func (s *swTransport) Transmit(cmd []byte) ([]byte, error) {
	s.cmds = append(s.cmds, append([]byte(nil), cmd...))
	// The PIN status query must find an initialized device.
	if len(cmd) == 4 && cmd[1] == 0x20 {
		return []byte{0x63, 0xC3}, nil
	}
	return []byte{byte(s.sw >> 8), byte(s.sw)}, nil
}

// TestPINCommandStatusWords maps every status word the firmware answers to
// CHANGE REFERENCE DATA (cmd_change_pin.c) and RESET RETRY COUNTER
// (cmd_reset_retry.c) to the error a caller acts on.
func TestPINCommandStatusWords(t *testing.T) {
	type check func(t *testing.T, err error)
	pinErr := func(ref byte, tries int, blocked bool) check {
		return func(t *testing.T, err error) {
			var pe *PINError
			if !errors.As(err, &pe) || pe.Ref != ref || pe.TriesLeft != tries || pe.Blocked != blocked {
				t.Errorf("err = %v, want a PINError ref %02X tries %d blocked %v", err, ref, tries, blocked)
			}
		}
	}
	is := func(target error) check {
		return func(t *testing.T, err error) {
			if !errors.Is(err, target) {
				t.Errorf("err = %v, want %v", err, target)
			}
		}
	}
	has := func(s string) check {
		return func(t *testing.T, err error) {
			if err == nil || !strings.Contains(err.Error(), s) {
				t.Errorf("err = %v, want one with %q", err, s)
			}
		}
	}
	ok := func(t *testing.T, err error) {
		if err != nil {
			t.Errorf("err = %v, want nil", err)
		}
	}
	tests := []struct {
		name string
		sw   uint16
		op   func(d *Device) error
		want check
	}{
		{"change 9000", 0x9000, changeUser, ok},
		{"change 63C2 wrong old PIN", 0x63C2, changeUser, pinErr(UserPIN, 2, false)},
		{"change 63C1", 0x63C1, changeUser, pinErr(UserPIN, 1, false)},
		{"change 6983 blocked", 0x6983, changeUser, pinErr(UserPIN, 0, true)},
		{"change 6A88 no PIN", 0x6A88, changeUser, is(ErrNotInitialized)},
		{"change 6700 length", 0x6700, changeUser, has("refused the length of the PINs (SW 6700)")},
		{"change 6400 MKEK", 0x6400, changeUser, has("6400")},
		{"change SO 63CE", 0x63CE, changeSO, pinErr(SOPIN, 14, false)},
		{"change SO 6B00 old firmware", 0x6B00, changeSO, is(ErrSOPINChangeUnsupported)},
		{"change user 6B00 is no SO message", 0x6B00, changeUser, has("6B00")},
		{"reset 9000", 0x9000, resetNew, ok},
		{"reset 63CE wrong SO-PIN", 0x63CE, resetNew, pinErr(SOPIN, 14, false)},
		{"reset 6983 SO-PIN blocked", 0x6983, resetNew, pinErr(SOPIN, 0, true)},
		{"reset 6986 option", 0x6986, resetNew, is(ErrResetNotAllowed)},
		{"reset only 6986 option", 0x6986, resetOnly, is(ErrResetNotAllowed)},
		{"reset 6A88", 0x6A88, resetNew, is(ErrNotInitialized)},
		{"reset 6700", 0x6700, resetOnly, has("SW 6700")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := &swTransport{sw: tc.sw}
			err := tc.op(New(tr, nil))
			tc.want(t, err)
			if err != nil && (strings.Contains(err.Error(), "648219") || strings.Contains(err.Error(), "3537363231383830")) {
				t.Errorf("the error repeats a PIN: %v", err)
			}
		})
	}
}

func changeUser(d *Device) error { return d.ChangePIN(UserPIN, []byte("648219"), []byte("12345678")) }
func changeSO(d *Device) error {
	return d.ChangePIN(SOPIN, []byte("57621880"), []byte{1, 2, 3, 4, 5, 6, 7, 8})
}
func resetNew(d *Device) error  { return d.ResetRetryCounter([]byte("57621880"), []byte("12345678")) }
func resetOnly(d *Device) error { return d.ResetRetryCounter([]byte("57621880"), nil) }

// TestPINCommandAPDUs holds the bytes sent: CHANGE REFERENCE DATA with the
// old and the new PIN (transcripts/differential/fw-p2.txt [244]), RESET
// RETRY COUNTER P1 00 with the SO-PIN and the new PIN ([184]) and P1 01
// with the SO-PIN alone; each masked in the trace.
func TestPINCommandAPDUs(t *testing.T) {
	tests := []struct {
		op   func(d *Device) error
		want string
	}{
		{func(d *Device) error { return d.ChangePIN(UserPIN, []byte("123456"), []byte("648219")) }, "002400810C313233343536363438323139"},
		{func(d *Device) error { return d.ResetRetryCounter([]byte("57621880"), []byte("123456")) }, "002C00810E3537363231383830313233343536"},
		{resetOnly, "002C01810835373632313838 30"},
	}
	for _, tc := range tests {
		tr := &swTransport{sw: 0x9000}
		var trace strings.Builder
		if err := tc.op(New(tr, &trace)); err != nil {
			t.Fatal(err)
		}
		got := strings.ToUpper(hex.EncodeToString(tr.cmds[len(tr.cmds)-1]))
		if want := strings.ReplaceAll(tc.want, " ", ""); got != want {
			t.Errorf("sent %s, want %s", got, want)
		}
		for _, pin := range []string{"123456", "648219", "57621880", "313233343536", "3537363231383830"} {
			if strings.Contains(trace.String(), pin) {
				t.Errorf("trace shows a PIN: %s", trace.String())
			}
		}
	}
}

// TestChangePINNeverInitialized: ChangePIN asks the PIN's state first and
// sends no CHANGE REFERENCE DATA to a device never initialized, whose
// firmware it would hang (sim FirmwareHangs).
func TestChangePINNeverInitialized(t *testing.T) {
	for _, ref := range []byte{UserPIN, SOPIN} {
		s, err := sim.NewMemory()
		if err != nil {
			t.Fatal(err)
		}
		s.FirmwareHangs = true
		d := New(s, nil)
		if _, err := d.SelectApplication(); err != nil {
			t.Fatal(err)
		}
		old := []byte("648219")
		if ref == SOPIN {
			old = []byte("57621880")
		}
		if err := d.ChangePIN(ref, old, []byte("12345678")); !errors.Is(err, ErrNotInitialized) {
			t.Errorf("%02X: err = %v, want ErrNotInitialized", ref, err)
		}
		if s.Hung() {
			t.Errorf("%02X: the simulated firmware hangs: CHANGE REFERENCE DATA was sent", ref)
		}
	}
}

// TestParseSOPIN and TestCheckNewPIN hold the input rules, and that no
// error repeats what was typed.
func TestParseSOPIN(t *testing.T) {
	for _, tc := range []struct{ in, err string }{
		{"3537363231383830", ""},
		{" 3537363231383830\t", ""},
		{"353736323138383", "it has 15 characters"},
		{"353736323138383G", "(0-9, A-F)"},
		{"", "it has 0 characters"},
	} {
		b, err := ParseSOPIN([]byte(tc.in), "--so-pin")
		switch {
		case tc.err == "" && (err != nil || string(b) != "57621880"):
			t.Errorf("ParseSOPIN(%q) = %q, %v", tc.in, b, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseSOPIN(%q) = %v, want %q", tc.in, err, tc.err)
		case err != nil && tc.in != "" && strings.Contains(err.Error(), strings.TrimSpace(tc.in)):
			t.Errorf("ParseSOPIN(%q) repeats it: %v", tc.in, err)
		}
	}
}

func TestCheckNewPIN(t *testing.T) {
	for _, tc := range []struct{ pin, old, err string }{
		{"12345678", "648219", ""},
		{"", "648219", "is empty"},
		{"12345", "", "has 5 characters"},
		{"12345678901234567", "", "has 17 characters"},
		{"648219", "648219", "the same as the current one"},
	} {
		var old []byte
		if tc.old != "" {
			old = []byte(tc.old)
		}
		err := CheckNewPIN([]byte(tc.pin), old, "--new-pin")
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("CheckNewPIN(%q, %q) = %v, want %q", tc.pin, tc.old, err, tc.err)
		}
	}
	for _, tc := range []struct{ n, retries int }{{6, 4}, {7, 6}, {6, 10}} {
		if CheckPINRetries(tc.n, tc.retries) == nil {
			t.Errorf("CheckPINRetries(%d, %d) = nil, want initialize's refusal", tc.n, tc.retries)
		}
	}
	for _, tc := range []struct{ n, retries int }{{6, 3}, {7, 5}, {8, 10}} {
		if err := CheckPINRetries(tc.n, tc.retries); err != nil {
			t.Errorf("CheckPINRetries(%d, %d) = %v", tc.n, tc.retries, err)
		}
	}
}
