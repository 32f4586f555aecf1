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
func (f *fakeTTY) ReadPassword() ([]byte, error) { a, err := f.next(); return []byte(a), err }
func (f *fakeTTY) ReadLine() (string, error)     { return f.next() }

func TestGet(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	os.WriteFile(file, []byte("648219\nsecond line\n"), 0o600)
	crlf := filepath.Join(dir, "crlf")
	os.WriteFile(crlf, []byte("pässwörd\r\n"), 0o600)
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
		{"file:" + dir + "/missing", "", "--pin file:" + dir + "/missing: no such file or directory"},
		{"-", "first", ""},
		{"-", "second", ""},
		{"-", "last", ""},
		{"-", "", "--pin -: cannot read a line from standard input: no line to read (end of input)"},
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
	if _, err := src.NewSecret("password", "New: ", "Again: ", 6); err == nil {
		t.Error("three short entries accepted")
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
