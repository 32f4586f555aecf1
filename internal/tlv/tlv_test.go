package tlv

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	tests := []struct {
		in, tag, val, rest, err string
	}{
		{"04 02 AB CD EE", "04", "ABCD", "EE", ""},
		{"7F21 03 010203", "7F21", "010203", "", ""},
		{"5F20 81 01 41", "5F20", "41", "", ""},
		{"7F 81 01 00", "7F8101", "", "", ""},
		{"30", "", "", "", "truncated"},
		{"30 05 01", "", "", "", "truncated"},
		{"30 80 00 00", "", "", "", "indefinite length"},
		{"30 85 0000000001 00", "", "", "", "length of 5 octets"},
		{"7F 81 81 01 00", "", "", "", "tag longer than three octets"},
		{"30 84 FFFFFFFF", "", "", "", "length too large"},
	}
	for _, tt := range tests {
		in, _ := hex.DecodeString(strings.ReplaceAll(tt.in, " ", ""))
		e, rest, err := Read(in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || hex.EncodeToString(rest) != strings.ToLower(tt.rest) ||
			!strings.EqualFold(hex.EncodeToString(e.Value), tt.val) || fmt.Sprintf("%02X", e.Tag) != tt.tag {
			t.Errorf("%s: %X %X rest %X, %v", tt.in, e.Tag, e.Value, rest, err)
		}
		if !bytes.Equal(Append(nil, e.Tag, e.Value), e.Full) && !strings.Contains(tt.in, " 81 01 41") {
			t.Errorf("%s: Append does not give back %X", tt.in, e.Full)
		}
	}
	if _, _, err := Read(nil); !errors.Is(err, ErrTruncated) {
		t.Error(err)
	}
	var oe *OverflowError
	if _, _, err := Read([]byte{0x30, 0x05, 0x01}); !errors.As(err, &oe) || oe.Length != 5 || oe.Left != 1 || !errors.Is(err, ErrTruncated) {
		t.Errorf("length past the end: %v", err)
	}
}

func TestAppendLengths(t *testing.T) {
	for _, n := range []int{0, 127, 128, 255, 256, 65535, 65536} {
		b := Append(nil, 0x53, make([]byte, n))
		e, rest, err := Read(b)
		if err != nil || len(rest) != 0 || len(e.Value) != n || e.Tag != 0x53 {
			t.Errorf("length %d: %v", n, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	f.Add([]byte{0x7F, 0x21, 0x01, 0x00})
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, rest, err := Read(b)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(e.Full)+len(rest) != len(b) || !bytes.HasSuffix(e.Full, e.Value) {
			t.Fatalf("inconsistent split of % X", b)
		}
	})
}
