package ceremony

import (
	"strings"
	"testing"
)

// TestCheckNewPasswordBoundary holds the minimum at exactly 6: five
// characters are refused, six accepted. Like sc-hsm-tool's strlen check
// (sc-hsm-tool.c ask_for_password), the count is in bytes.
func TestCheckNewPasswordBoundary(t *testing.T) {
	tests := []struct {
		pw string
		ok bool
	}{
		{"", false},
		{"abcde", false},
		{"abcdef", true},
		{"abcdefg", true},
		{"äöü", true}, // 6 bytes in UTF-8
		{"äö", false}, // 4 bytes
	}
	for _, tc := range tests {
		err := CheckNewPassword([]byte(tc.pw))
		if tc.ok != (err == nil) {
			t.Errorf("CheckNewPassword(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "at least 6 characters") {
			t.Errorf("CheckNewPassword(%q): %v does not say the minimum", tc.pw, err)
		}
	}
}
