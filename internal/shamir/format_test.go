package shamir

import (
	"bytes"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFormatHex(t *testing.T) {
	tests := []struct {
		v    string // hex
		want string
	}{
		{"e165e9720d51951f", "e1:65:e9:72:0d:51:95:1f"},
		{"0d", "0d"},
		{"3f54a40290e7d6", "3f:54:a4:02:90:e7:d6"}, // minimal, as BN_bn2bin
		{"003f54a40290e7d6", "3f:54:a4:02:90:e7:d6"},
		{"0100", "01:00"},
		{"00", "00"}, // sc-hsm-tool would print nothing
		{"ffffffffffffffffff", "ff:ff:ff:ff:ff:ff:ff:ff:ff"},
	}
	for _, tt := range tests {
		v, _ := new(big.Int).SetString(tt.v, 16)
		if got := FormatHex(v); got != tt.want {
			t.Errorf("FormatHex(%s) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestParseHex(t *testing.T) {
	tests := []struct {
		in   string
		want string // hex of the value, or "error: substring"
	}{
		{"e1:65:e9:72:0d:51:95:1f", "e165e9720d51951f"},
		{"E1:65:E9:72:0D:51:95:1F", "e165e9720d51951f"},
		{"e165e9720d51951f", "e165e9720d51951f"},
		{"E165E9720D51951F", "e165e9720d51951f"},
		{"  e1:65:e9:72:0d:51:95:1f \t", "e165e9720d51951f"},
		{"3f:54:a4:02:90:e7:d6", "3f54a40290e7d6"},
		{"00:3f:54:a4:02:90:e7:d6", "3f54a40290e7d6"},
		{"00", "0"},
		{"0d", "d"},
		{"", "error: empty hex value"},
		{"   ", "error: empty hex value"},
		{"e1:65:e9:72:0d:51:95:1", "error: byte 8 is \"1\", not two hex digits"},
		{"e1:65::e9", "error: byte 3 is \"\""},
		{":e1", "error: byte 1 is \"\""},
		{"e1:", "error: byte 2 is \"\""},
		{"e1:65:e9:7", "error: not two hex digits"},
		{"e1 65", "error: contains ' '"},
		{"e1:6g", "error: contains 'g'"},
		{"0xe165", "error: contains 'x'"},
		{"e165e", "error: odd number of digits"},
		{"e1:é", "error: contains 'é'"},
		{strings.Repeat("ab", 64), "ab" + strings.Repeat("ab", 63)},
		{strings.Repeat("ab", 65), "error: is 65 bytes"},
	}
	for _, tt := range tests {
		v, err := ParseHex(tt.in)
		if want, ok := strings.CutPrefix(tt.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("ParseHex(%q) = %v, %v; want error containing %q", tt.in, v, err, want)
			}
			continue
		}
		if err != nil || v.Text(16) != tt.want {
			t.Errorf("ParseHex(%q) = %v, %v; want %s", tt.in, v, err, tt.want)
		}
	}
}

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want int // 0: error
		err  string
	}{
		{"1", 1, ""},
		{" 3\n", 3, ""},
		{"10", 10, ""}, // sc-hsm-tool's BN_hex2bn reads 16
		{"12", 12, ""},
		{"255", 255, ""},
		{"007", 7, ""},
		{"0", 0, "share ID 0 is out of range"},
		{"000", 0, "out of range"},
		{"256", 0, "share ID 256 is out of range: share IDs are 1 to 255"},
		{"99999999999999999999999", 0, "out of range"},
		{"", 0, "empty share ID"},
		{"a", 0, "share ID \"a\" is not a decimal number"},
		{"0a", 0, "not a decimal number"},
		{"0x10", 0, "not a decimal number"},
		{"-1", 0, "not a decimal number"},
		{"+1", 0, "not a decimal number"},
		{"1 2", 0, "not a decimal number"},
		{"1.0", 0, "not a decimal number"},
	}
	for _, tt := range tests {
		id, err := ParseID(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseID(%q) = %d, %v; want error containing %q", tt.in, id, err, tt.err)
			}
			continue
		}
		if err != nil || id != tt.want {
			t.Errorf("ParseID(%q) = %d, %v; want %d", tt.in, id, err, tt.want)
		}
	}
}

// TestFormatRecorded checks that Format writes exactly what sc-hsm-tool
// showed the custodians (testdata/pico-hsm/vectors/nofm-piped-shares.txt),
// and that ParseSet reads that file.
func TestFormatRecorded(t *testing.T) {
	recorded, err := os.ReadFile("../../testdata/pico-hsm/vectors/nofm-piped-shares.txt")
	if err != nil {
		t.Fatal(err)
	}
	set, err := ParseSet(bytes.NewReader(recorded))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := set.Format(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(recorded) {
		t.Errorf("Format:\n%s\nwant:\n%s", buf.String(), recorded)
	}
	one, err := set.Single(1)
	if err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := one.Format(&buf); err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(recorded), "\n")
	if want := strings.Join(lines[:3], ""); buf.String() != want {
		t.Errorf("Single(1).Format:\n%s\nwant:\n%s", buf.String(), want)
	}
	if _, err := set.Single(4); err == nil || !strings.Contains(err.Error(), "no share with ID 4") {
		t.Errorf("Single(4) error %v", err)
	}
	got, err := Combine(set)
	if err != nil || strings.ToUpper(string(hexString(got))) != "4E1A29FE97D1375B" {
		t.Errorf("Combine = %x, %v", got, err)
	}
}

func hexString(b []byte) string { return new(big.Int).SetBytes(b).Text(16) }

func TestFormatErrors(t *testing.T) {
	var buf bytes.Buffer
	if err := (&Set{}).Format(&buf); err == nil {
		t.Error("Format without a prime succeeded")
	}
	if err := (&Set{Prime: big.NewInt(7), Shares: []Share{{ID: 1}}}).Format(&buf); err == nil {
		t.Error("Format of a share without a value succeeded")
	}
	if err := (&Set{Prime: big.NewInt(7), Shares: []Share{{1, big.NewInt(0)}}}).Format(failWriter{}); err == nil {
		t.Error("write error lost")
	}
	buf.Reset()
	_ = (&Set{Prime: big.NewInt(263), Shares: []Share{{12, big.NewInt(0)}}}).Format(&buf)
	if want := "Prime       : 01:07\nShare ID    : 12\nShare value : 00\n"; buf.String() != want {
		t.Errorf("Format = %q, want %q", buf.String(), want)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestParseSetBad checks the files of testdata/bad against their "# error:"
// comments.
func TestParseSetBad(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("bad vectors: %v, %v", files, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(data), "\n")
		want, ok := strings.CutPrefix(first, "# error: ")
		if !ok {
			t.Fatalf("%s: no # error: comment on line 1", f)
		}
		set, err := ParseSet(bytes.NewReader(data))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: ParseSet = %v, %v; want error containing %q", f, set, err, want)
		}
	}
}

func TestParseSet(t *testing.T) {
	const (
		p  = "e1:65:e9:72:0d:51:95:1f"
		v1 = "b3:1f:8f:49:57:67:30:83"
		v2 = "63:46:65:40:72:37:da:da"
	)
	tests := []struct {
		name string
		in   string
		want string // "" = ok; else error substring
		line int    // expected ParseError line, 0 = not a ParseError
	}{
		{"compact", p + "/1/" + v1 + "\n" + p + "/2/" + v2, "", 0},
		{"compact spaces", " " + p + " / 1 / " + v1 + " \n\t" + p + "/ 2 /" + v2 + "\n", "", 0},
		{"block, prime once, no final newline", "Prime : " + p + "\nShare ID : 1\nShare value : " + v1 + "\nShare ID : 2\nShare value : " + v2, "", 0},
		{"prime last", "Share ID : 1\nShare value : " + v1 + "\nShare ID : 2\nShare value : " + v2 + "\nPrime : " + p, "", 0},
		{"mixed", "Prime : " + p + "\n" + p + "/1/" + v1 + "\nShare ID : 2\nShare value : " + v2, "", 0},
		{"BOM and CRLF", "\ufeffPrime : " + p + "\r\nShare ID : 1\r\nShare value : " + v1 + "\r\n" + p + "/2/" + v2 + "\r\n", "", 0},
		{"empty", "", "no shares found", 0},
		{"only comments", "# nothing\n\n   \n#\n", "no shares found", 0},
		{"one share", p + "/1/" + v1, "1 share(s) given", 0},
		{"compact two fields", p + "/1", "has 2 fields: write PRIME/ID/VALUE", 1},
		{"compact four fields", "\n" + p + "/1/" + v1 + "/x", "has 4 fields", 2},
		{"compact bad prime", "zz/1/" + v1, "prime: hex value \"zz\" contains 'z'", 1},
		{"compact bad ID", p + "/one/" + v1, "share ID \"one\" is not a decimal number", 1},
		{"compact ID 0", p + "/0/" + v1, "share ID 0 is out of range", 1},
		{"compact ID 256", p + "/256/" + v1, "share ID 256 is out of range", 1},
		{"compact empty value", p + "/1/ ", "share value: empty hex value", 1},
		{"compact prime differs", p + "/1/" + v1 + "\nce:32:c9:94:e2:da:23:df/2/" + v2, "differs from prime e1:65:e9:72:0d:51:95:1f on line 1", 2},
		{"value without ID", "Prime : " + p + "\nShare value : " + v1, "share value without a Share ID line", 2},
		{"ID at end", "Prime : " + p + "\n" + p + "/1/" + v1 + "\nShare ID : 2\n\n", "share ID 2 has no Share value line", 3},
		{"ID then compact", "Share ID : 2\n" + p + "/1/" + v1, "share ID 2 has no Share value line", 1},
		{"empty prime", "Prime :\n" + p + "/1/" + v1, "prime: empty hex value", 1},
		{"bad value", "Prime : " + p + "\nShare ID : 1\nShare value : b3:1f:8f:49:57:67:30:8", "share value: hex value", 3},
		{"unknown label", "Share: 1", "\"Share: 1\" is not a share line", 1},
		{"no colon", "hello", "\"hello\" is not a share line", 1},
		{"bare hex", p, "is not a share line", 1},
		{"value not below prime", "Prime : " + p + "\nShare ID : 1\nShare value : " + v1 + "\nShare ID : 2\nShare value : ff:" + v2, "value ff:63:46:65:40:72:37:da:da of share ID 2 is not below the prime", 5},
		{"prime too big", "Prime : 01:" + p + "\n" + "Share ID : 1\nShare value : " + v1 + "\nShare ID : 2\nShare value : " + v2, "has 65 bits", 1},
		{"ID not below small prime", "05/1/01\n05/5/02", "share ID 5 is not below the prime 05", 2},
		{"long line", strings.Repeat("#", 70000), "line too long", 1},
	}
	for _, tt := range tests {
		set, err := ParseSet(strings.NewReader(tt.in))
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
				continue
			}
			if got, err := Combine(set); err != nil || hexString(got) != "2192cfe02f44f10d" {
				t.Errorf("%s: Combine = %x, %v", tt.name, got, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseSet = %v, %v; want error containing %q", tt.name, set, err, tt.want)
			continue
		}
		var pe *ParseError
		switch {
		case tt.line == 0 && errors.As(err, &pe):
			t.Errorf("%s: %v is a ParseError", tt.name, err)
		case tt.line != 0 && (!errors.As(err, &pe) || pe.Line != tt.line):
			t.Errorf("%s: %v: want a ParseError on line %d", tt.name, err, tt.line)
		}
		if set != nil {
			t.Errorf("%s: set returned with an error", tt.name)
		}
	}
}

func TestParseSetReadError(t *testing.T) {
	_, err := ParseSet(errReader{})
	if err == nil || !strings.Contains(err.Error(), "reading shares: broken") {
		t.Errorf("ParseSet = %v", err)
	}
}
