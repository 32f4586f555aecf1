package secret

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTTY answers prompts from a list, recording what was shown.
type fakeTTY struct {
	out     bytes.Buffer
	answers []string
}

func (f *fakeTTY) Write(p []byte) (int, error) { return f.out.Write(p) }
func (f *fakeTTY) Close() error                { return nil }
func (f *fakeTTY) next() (string, error) {
	if len(f.answers) == 0 {
		return "", io.EOF
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return a, nil
}
func (f *fakeTTY) ReadPassword(prompt string) ([]byte, error) {
	f.out.WriteString(prompt)
	a, err := f.next()
	f.out.WriteString("\n")
	return []byte(a), err
}
func (f *fakeTTY) ReadLine() (string, error) { return f.next() }

func TestGet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	os.WriteFile(file, []byte("648219\nsecond line\n"), 0o600)
	crlf := filepath.Join(dir, "crlf")
	os.WriteFile(crlf, []byte("pässwörd\r\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	long := filepath.Join(dir, "long")
	os.WriteFile(long, bytes.Repeat([]byte("x"), maxLine+1), 0o600)
	grown := strings.Repeat("0123456789", 50) // grows readLine's buffer three times
	grownFile := filepath.Join(dir, "grown")
	os.WriteFile(grownFile, []byte(grown+"\n"), 0o600)
	env := map[string]string{"HSM_PIN": "123456", "EMPTY": ""}
	src := &Source{
		Stdin:  strings.NewReader("first\nsecond\r\nlast"),
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	tests := []struct {
		spec, want, err string
	}{
		{"648219", "648219", ""},
		{"env:HSM_PIN", "123456", ""},
		{"env:EMPTY", "", ""},
		{"env:NOPE", "", "--pin env:NOPE: environment variable NOPE is not set"},
		{"file:" + file, "648219", ""},
		{"file:" + crlf, "pässwörd", ""},
		{"file:" + dir + "/missing", "", "--pin file:" + dir + "/missing: no such file or directory: check the path after file:"},
		{"file:" + empty, "", "--pin file:" + empty + ": the file is empty: put the secret on its first line"},
		{"file:" + long, "", "--pin file:" + long + ": its first line is longer than 4096 bytes: is this the file that holds the secret?"},
		{"file:" + dir, "", "--pin file:" + dir + ": cannot read its first line: is a directory: give a file that holds the secret"},
		{"file:" + grownFile, grown, ""},
		{"-", "first", ""},
		{"-", "second", ""},
		{"-", "last", ""},
		{"-", "", "--pin -: standard input has no line left for it: give one line per option that reads -, in the order of the options"},
		{"", "", "--pin is required when there is no terminal to prompt on: give --pin VALUE, --pin env:VAR, --pin file:PATH or --pin - (one line of stdin)"},
	}
	for _, tt := range tests {
		got, err := src.Get("pin", tt.spec, "PIN: ")
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("%q: error %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("%q: %q, %v; want %q", tt.spec, got, err, tt.want)
		}
	}
	_, err := src.Get("password", "", "")
	if !errors.Is(err, ErrNoTerminal) {
		t.Errorf("no terminal: %v", err)
	}
}

func TestPrompt(t *testing.T) {
	tty := &fakeTTY{answers: []string{"648219"}}
	src := &Source{TTY: func() (Terminal, error) { return tty, nil }}
	got, err := src.Get("pin", "", "Enter user PIN: ")
	if err != nil || string(got) != "648219" || !strings.HasPrefix(tty.out.String(), "Enter user PIN: ") {
		t.Fatalf("%q %v %q", got, err, tty.out.String())
	}
}

func TestNewSecret(t *testing.T) {
	tests := []struct {
		answers []string
		want    string
		shown   string
	}{
		{[]string{"seed-share-1-Pw", "seed-share-1-Pw"}, "seed-share-1-Pw", ""},
		{[]string{"x", "long enough", "long enough"}, "long enough", "Too short: at least 6 characters"},
		{[]string{"long enough", "different", "long enough", "long enough"}, "long enough", "The two entries differ"},
	}
	for _, tt := range tests {
		tty := &fakeTTY{answers: tt.answers}
		src := &Source{TTY: func() (Terminal, error) { return tty, nil }}
		got, err := src.NewSecret("password", "New: ", "Again: ", 6)
		if err != nil || string(got) != tt.want || !strings.Contains(tty.out.String(), tt.shown) {
			t.Errorf("%v: %q %v\n%s", tt.answers, got, err, tty.out.String())
		}
	}
	tty := &fakeTTY{answers: []string{"a", "b", "c"}}
	src := &Source{TTY: func() (Terminal, error) { return tty, nil }}
	if _, err := src.NewSecret("password", "New: ", "Again: ", 6); err == nil || err.Error() != "--password: no matching entry after 3 tries: run again, and type the same secret, at least 6 characters, twice" {
		t.Errorf("three short entries: %v", err)
	}
	none := &Source{TTY: func() (Terminal, error) { return nil, ErrNoTerminal }}
	if _, err := none.NewSecret("password", "", "", 6); !errors.Is(err, ErrNoTerminal) || !strings.Contains(err.Error(), "--password env:VAR") {
		t.Errorf("no terminal: %v", err)
	}
}

func TestWipe(t *testing.T) {
	b := []byte("secret")
	Wipe(b)
	if !bytes.Equal(b, make([]byte, 6)) {
		t.Fatal(b)
	}
}

// readLine returns the whole line across the growths of its buffer (64,
// 128, 256 bytes; each outgrown copy is wiped), and wipes the one-byte
// buffer it reads into.
func TestReadLineWipesGrownBuffers(t *testing.T) {
	secret := strings.Repeat("S", 200)
	r := &spyReader{data: []byte(secret + "\n")}
	got, err := readLine(r)
	if err != nil || string(got) != secret {
		t.Fatalf("%q %v", got, err)
	}
	if len(r.reads) != len(secret)+1 {
		t.Fatalf("%d reads", len(r.reads))
	}
	// The one-byte read buffer is wiped at the end.
	if r.last[0] != 0 {
		t.Errorf("read buffer not wiped: %q", r.last[:])
	}
}

type spyReader struct {
	data  []byte
	reads [][]byte
	last  []byte
}

func (s *spyReader) Read(p []byte) (int, error) {
	s.reads = append(s.reads, p)
	s.last = p
	if len(s.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.data)
	s.data = s.data[n:]
	return n, nil
}
