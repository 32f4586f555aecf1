package custodian

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/shamir"
)

// screen is a terminal that answers from a list and records the screens.
type screen struct {
	out     bytes.Buffer
	answers []string
}

func (s *screen) Write(p []byte) (int, error) { return s.out.Write(p) }
func (s *screen) Close() error                { return nil }
func (s *screen) ReadLine() (string, error) {
	if len(s.answers) == 0 {
		return "", io.EOF
	}
	a := s.answers[0]
	s.answers = s.answers[1:]
	return a, nil
}
func (s *screen) ReadPassword(prompt string) ([]byte, error) {
	s.Write([]byte(prompt))
	l, err := s.ReadLine()
	s.Write([]byte("\n"))
	return []byte(l), err
}

func TestShowShares(t *testing.T) {
	_, set, err := shamir.Split(rand.Reader, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	s := &screen{answers: []string{"", "", "", "", "", "", ""}}
	if err := ShowShares(s, set, 2); err != nil {
		t.Fatal(err)
	}
	out := s.out.String()
	if !strings.Contains(out, "This password is split using a (2-of-3) threshold scheme.") {
		t.Error("no introduction")
	}
	// Each share is shown on its own screen: cleared before and after.
	screens := strings.Split(out, clear)
	shown := 0
	for _, sc := range screens {
		n := strings.Count(sc, "Share value :")
		if n > 1 {
			t.Fatalf("a screen shows %d shares:\n%s", n, sc)
		}
		shown += n
	}
	if shown != 3 || !strings.HasSuffix(out, clear) {
		t.Fatalf("%d shares shown, last screen cleared: %v", shown, strings.HasSuffix(out, clear))
	}
	if !strings.Contains(out, "Share 2 of 3\n\n\nPrime       : "+shamir.FormatHex(set.Prime)+"\nShare ID    : 2\n") {
		t.Errorf("share 2 screen not as sc-hsm-tool shows it:\n%q", out)
	}
	// A custodian who leaves (EOF) stops the ceremony.
	if err := ShowShares(&screen{answers: []string{""}}, set, 2); err == nil {
		t.Error("no error when the terminal closes")
	}
}

// The custodians of the recorded 2-of-3 set present shares 1 and 3
// (screens/screens-import-1-3.txt); typing mistakes are asked again.
func TestAskShares(t *testing.T) {
	s := &screen{answers: []string{
		"e1:65:e9:72:0d:51:95:zz", // a typo in the prime
		"e1:65:e9:72:0d:51:95:1f",
		"", "1", "b3:1f:8f:49:57:67:30:83",
		"", "x", "3", "13:6d:3b:37:8d:08:85:3", "13:6d:3b:37:8d:08:85:31",
	}}
	set, err := AskShares(s, 2)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := shamir.Combine(set)
	if err != nil || strings.ToUpper(hexString(secret)) != "2192CFE02F44F10D" {
		t.Fatalf("secret %x, %v", secret, err)
	}
	out := s.out.String()
	for _, want := range []string{
		"requires 2 key custodians", "Please enter prime: ", "Press <enter> to enter share 2 of 2",
		"Share 2 of 2\n\nPlease enter share ID: ", "Please retry.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("screen lacks %q", want)
		}
	}
	if strings.Contains(out, "b3:1f:8f:49:57:67:30:83") {
		t.Error("a share value was echoed")
	}
	// Two custodians presenting the same share ID.
	s = &screen{answers: []string{"e1:65:e9:72:0d:51:95:1f", "", "1", "b3:1f:8f:49:57:67:30:83", "", "1", "b3:1f:8f:49:57:67:30:83"}}
	if _, err := AskShares(s, 2); err == nil {
		t.Error("duplicate share IDs accepted")
	}
}

func hexString(b []byte) string {
	const h = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(h[c>>4])
		sb.WriteByte(h[c&15])
	}
	return sb.String()
}
