package paper

import (
	"bytes"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

var update = flag.Bool("update", false, "rewrite testdata/*.page.txt")

// randomFile is a share file's shape: "Salted__" and 56 random bytes.
func randomFile(t testing.TB) []byte {
	f := make([]byte, dkekshare.FileSize)
	copy(f, "Salted__")
	if _, err := rand.Read(f[8:]); err != nil {
		t.Fatal(err)
	}
	return f
}

// vectors are the share files sc-hsm-tool wrote on the real firmware.
func vectors(t testing.TB) map[string][]byte {
	paths, err := filepath.Glob("../../testdata/pico-hsm/vectors/*.pbe")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no recorded share files: %v", err)
	}
	m := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		m[filepath.Base(p)] = b
	}
	return m
}

// files are the recorded share files and 200 random ones.
func files(t testing.TB) map[string][]byte {
	m := vectors(t)
	for i := range 200 {
		m[fmt.Sprintf("random-%d.pbe", i)] = randomFile(t)
	}
	return m
}

func TestLayoutConstants(t *testing.T) {
	if Symbols != 103 || Lines != 7 || lineLen(7) != 7 {
		t.Fatalf("Symbols %d Lines %d last line %d", Symbols, Lines, lineLen(7))
	}
	if len(Alphabet) != 32 {
		t.Fatal("alphabet")
	}
	for _, c := range "ILOU" {
		if strings.ContainsRune(Alphabet, c) {
			t.Fatalf("%c in the alphabet", c)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for name, f := range files(t) {
		lines := FileLines(f)
		if len(lines) != Lines {
			t.Fatalf("%s: %d lines", name, len(lines))
		}
		var data [][]byte
		for _, l := range lines {
			d, err := CheckLine(l.N, l.String()[strings.Index(l.String(), ":")+1:])
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			data = append(data, d)
		}
		got, err := Assemble(data, FileCheck(f))
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("%s: lines: %x %v", name, got, err)
		}
		page := &Page{Name: name, File: f}
		got, err = Parse(bytes.NewReader(page.Text()), "page.txt")
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("%s: text page: %x %v", name, got, err)
		}
		got, err = ParseQRPayload(QRPayload(f))
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("%s: QR payload: %x %v", name, got, err)
		}
	}
}

// TestEverySingleTypo replaces each character of each line, data and check
// characters alike, by every other character of the alphabet (and by
// characters outside it), and checks that the line is refused and that
// the error names that line and no other.
func TestEverySingleTypo(t *testing.T) {
	m := vectors(t)
	for i := range 20 {
		m[fmt.Sprintf("random-%d", i)] = randomFile(t)
	}
	subs := Alphabet + "U*#"
	tried := 0
	for name, f := range m {
		for _, l := range FileLines(f) {
			typed := []byte(l.Data + l.Check)
			for pos := range typed {
				for _, c := range []byte(subs) {
					if c == typed[pos] {
						continue
					}
					bad := bytes.Clone(typed)
					bad[pos] = c
					_, err := CheckLine(l.N, string(bad))
					var le *LineError
					if !errors.As(err, &le) || le.N != l.N {
						t.Fatalf("%s line %d: %q at %d: %v", name, l.N, c, pos, err)
					}
					// the same typo as any other line's text: refused too
					for n := 1; n <= Lines; n++ {
						if n != l.N && len(bad) == lineLen(n)+CheckSymbols {
							if _, err := CheckLine(n, string(bad)); err == nil {
								t.Fatalf("%s: line %d with a typo passes as line %d", name, l.N, n)
							}
						}
					}
					tried++
				}
			}
		}
	}
	t.Logf("%d single-character typos, every one caught on its own line", tried)
}

// TestEveryTypoInThePage does the same through Parse, on the text page:
// the error names the page line (and the input line).
func TestEveryTypoInThePage(t *testing.T) {
	f := vectors(t)["dkek-share-1.pbe"]
	page := string((&Page{Name: "dkek-share-1.pbe", File: f}).Text())
	for _, l := range FileLines(f) {
		s := l.String()
		at := strings.Index(page, s)
		for pos := strings.Index(s, ":") + 2; pos < len(s); pos++ {
			if s[pos] == ' ' || s[pos] == '-' {
				continue
			}
			for _, c := range []byte(Alphabet) {
				if c == s[pos] || (c == '1' && s[pos] == '1') {
					continue
				}
				bad := page[:at+pos] + string(c) + page[at+pos+1:]
				_, err := Parse(strings.NewReader(bad), "page.txt")
				want := fmt.Sprintf("page.txt: line %d (input line ", l.N)
				if err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Fatalf("line %d pos %d %q: %v", l.N, pos, c, err)
				}
			}
		}
	}
}

func TestSwappedNeighbours(t *testing.T) {
	for name, f := range vectors(t) {
		for _, l := range FileLines(f) {
			typed := []byte(l.Data + l.Check)
			for i := 0; i+1 < len(typed); i++ {
				if typed[i] == typed[i+1] {
					continue
				}
				bad := bytes.Clone(typed)
				bad[i], bad[i+1] = bad[i+1], bad[i]
				if _, err := CheckLine(l.N, string(bad)); err == nil {
					t.Fatalf("%s line %d: swap at %d passes", name, l.N, i)
				}
			}
		}
	}
}

func TestForgivingInput(t *testing.T) {
	f := vectors(t)["dkek-share-2.pbe"]
	l := FileLines(f)[2]
	typed := strings.ToLower(l.String()[3:])
	typed = strings.NewReplacer("0", "o", "1", "l").Replace(typed)
	if _, err := CheckLine(3, "  "+typed+"  "); err != nil {
		t.Fatalf("%q: %v", typed, err)
	}
	if _, err := CheckLine(3, strings.ReplaceAll(l.Data+l.Check, "", "")); err != nil {
		t.Fatal(err)
	}
}

func TestLineErrors(t *testing.T) {
	f := vectors(t)["dkek-share-1.pbe"]
	l := FileLines(f)[0]
	for _, tc := range []struct{ text, want string }{
		{l.Data[1:] + l.Check, "line 1: 17 characters typed, the line has 18 (the 2 after the dash included): a character is missing"},
		{l.Data + "A" + l.Check, "line 1: 19 characters typed, the line has 18 (the 2 after the dash included): a character is extra"},
		{"U" + l.Data[1:] + l.Check, "line 1: 'U' is not a character of the page (0-9 and A-Z without U)"},
	} {
		_, err := CheckLine(1, tc.text)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q: %v, want %s", tc.text, err, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	f := vectors(t)["dkek-share-1.pbe"]
	page := string((&Page{Name: "s.pbe", File: f}).Text())
	lines := FileLines(f)
	var typed strings.Builder
	for _, l := range lines {
		fmt.Fprintln(&typed, l)
	}
	check := "File check value: " + FileCheck(f) + "\n"
	for _, tc := range []struct{ name, in, want string }{
		{"missing line", strings.Replace(page, lines[3].String()+"\n", "", 1), "page.txt: line 4 is missing: add it as on the paper, starting with its number (4: ...)"},
		{"missing lines", typed.String()[len(lines[0].String())+1:], "page.txt: line 1 is missing"},
		{"no check value", typed.String(), "page.txt: no file check value: add the line 'File check value : HEX' from the paper"},
		{"wrong check value", typed.String() + "File check value : 0000000000000000\n", "page.txt: the lines make a file whose check value is " + FileCheck(f) + ", the paper says 0000000000000000"},
		{"twice", check + typed.String() + lines[1].String() + "\n", "page.txt: line 2 is given twice (input lines 3 and 9): keep the one that matches the paper"},
		{"out of range", check + typed.String() + "9: ABCD\n", "page.txt: input line 9 is numbered 9, a paper copy has lines 1 to 7: correct its number"},
		{"nothing", "hello\nworld\n", "page.txt: no numbered lines of a paper copy and no QR code text in it"},
		{"bad QR", QRPayload(f)[:60] + "\n", "page.txt: the QR code text is cut short: scan it again"},
		{"QR v2", "PICOHSM-DKEK-SHARE:V2:ABC\n", "page.txt: the QR code text is of another version"},
		{"QR and other lines", QRPayload(randomFile(t)) + "\n" + check + typed.String(), "page.txt: the QR code text and the lines are not the same file: give one of them"},
	} {
		_, err := Parse(strings.NewReader(tc.in), "page.txt")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v\nwant %s", tc.name, err, tc.want)
		}
	}
	// typed lines with the check value, numbered in the other accepted ways
	var alt strings.Builder
	alt.WriteString("file check value " + strings.ToLower(FileCheck(f)) + "\n")
	for i, l := range lines {
		sep := []string{". ", ") ", " ", ":"}[i%4]
		fmt.Fprintf(&alt, "line %d%s%s %s\n", l.N, sep, strings.ToLower(l.Data), l.Check)
	}
	if got, err := Parse(strings.NewReader(alt.String()), "typed.txt"); err != nil || !bytes.Equal(got, f) {
		t.Fatalf("typed lines: %v", err)
	}
	// the QR code's text with the lines of the same file, and on its own
	both := QRPayload(f) + "\n" + check + typed.String()
	if got, err := Parse(strings.NewReader(both), "x"); err != nil || !bytes.Equal(got, f) {
		t.Fatalf("QR and lines: %v", err)
	}
}

// TestQRPayload checks that the text the QR code encodes is the payload,
// that it fits the QR alphanumeric set, and that from-paper's reader
// takes it as a scanner gives it, also in lower case.
func TestQRPayload(t *testing.T) {
	for name, f := range vectors(t) {
		p := QRPayload(f)
		if !strings.HasPrefix(p, QRPrefix) || len(p) != len(QRPrefix)+Symbols+1+16 {
			t.Fatalf("%s: %s", name, p)
		}
		for _, c := range p {
			if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", c) {
				t.Fatalf("%s: %q is not in the QR alphanumeric set", name, c)
			}
		}
		q, err := qrcode.New(p, qrcode.High)
		if err != nil {
			t.Fatal(err)
		}
		if q.Content != p || q.VersionNumber != 8 {
			t.Fatalf("%s: QR content %q version %d", name, q.Content, q.VersionNumber)
		}
		for _, in := range []string{p, strings.ToLower(p), "  " + p + "\r"} {
			got, err := Parse(strings.NewReader(in+"\n"), "scan.txt")
			if err != nil || !bytes.Equal(got, f) {
				t.Fatalf("%s: %q: %v", name, in, err)
			}
		}
		bad := []byte(p)
		bad[len(QRPrefix)+20] ^= 1 // another symbol
		if _, err := ParseQRPayload(string(bad)); err == nil {
			t.Fatalf("%s: a damaged QR text passes", name)
		}
	}
}

// TestGoldenPage keeps the text page of a recorded share: a page printed
// today must still be read by later versions (go test -update rewrites it).
func TestGoldenPage(t *testing.T) {
	for _, name := range []string{"dkek-share-1.pbe", "dkek-share-3.pbe"} {
		f := vectors(t)[name]
		page := (&Page{Name: name, File: f}).Text()
		golden := filepath.Join("testdata", strings.TrimSuffix(name, ".pbe")+".page.txt")
		if *update {
			os.WriteFile(golden, page, 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(page, want) {
			t.Errorf("%s: page changed:\n%s", name, page)
		}
		got, err := Parse(bytes.NewReader(want), golden)
		if err != nil || !bytes.Equal(got, f) {
			t.Fatalf("%s: %v", golden, err)
		}
	}
}

func TestShareKCVOnPage(t *testing.T) {
	f := vectors(t)["dkek-share-1.pbe"]
	without := string((&Page{Name: "a.pbe", File: f}).Text())
	with := string((&Page{Name: "a.pbe", File: f, ShareKCV: "0123456789ABCDEF"}).Text())
	if !strings.Contains(without, "Share check value : not printed (it needs the password: print --password or --pwd-shares-file)\n") {
		t.Error(without)
	}
	if !strings.Contains(with, "Share check value : 0123456789ABCDEF\n") || !strings.Contains(with, "File check value  : "+FileCheck(f)+"\n") {
		t.Error(with)
	}
	if _, err := Parse(strings.NewReader(with), "p"); err != nil {
		t.Fatal(err)
	}
}

// fakeTerminal answers ReadLine from a script and records what was shown.
type fakeTerminal struct {
	in  []string
	out bytes.Buffer
}

func (f *fakeTerminal) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *fakeTerminal) ReadLine() (string, error) {
	if len(f.in) == 0 {
		return "", io.EOF
	}
	s := f.in[0]
	f.in = f.in[1:]
	f.out.WriteString(s + "\n")
	return s, nil
}

func TestAsk(t *testing.T) {
	f := vectors(t)["dkek-share-3.pbe"]
	lines := FileLines(f)
	typo := []byte(lines[2].Data + lines[2].Check)
	typo[5] = map[bool]byte{true: 'A', false: 'B'}[typo[5] != 'A']
	in := []string{lines[0].String(), lines[1].Data + lines[1].Check, "", string(typo), "5: " + lines[4].Data, lines[2].String()}
	for _, l := range lines[3:] {
		in = append(in, l.String()[3:])
	}
	in = append(in, "0000000000000000", strings.ToLower(FileCheck(f)))
	term := &fakeTerminal{in: in}
	got, err := Ask(term)
	if err != nil || !bytes.Equal(got, f) {
		t.Fatalf("%v\n%s", err, term.out.String())
	}
	out := term.out.String()
	for _, want := range []string{
		"line 3: its check characters do not match: a character is mistyped, or it is another line: type line 3 again\n",
		"that is line 5: type line 3\n",
		"the lines make a file whose check value is " + FileCheck(f) + ", the paper says 0000000000000000",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}

	// the QR code's text pasted at line 1
	term = &fakeTerminal{in: []string{QRPayload(f)}}
	if got, err := Ask(term); err != nil || !bytes.Equal(got, f) {
		t.Fatalf("QR: %v", err)
	}
	// the input ends: an error, nothing returned
	term = &fakeTerminal{in: []string{lines[0].String()}}
	if _, err := Ask(term); err == nil || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("EOF: %v", err)
	}
	// three wrong check values: an error
	in = nil
	for _, l := range lines {
		in = append(in, l.String())
	}
	term = &fakeTerminal{in: append(in, "0000000000000000", "1111111111111111", "2222222222222222")}
	var ce *CheckError
	if _, err := Ask(term); !errors.As(err, &ce) {
		t.Fatalf("wrong check values: %v", err)
	}
}
