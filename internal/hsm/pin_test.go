package hsm

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
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
