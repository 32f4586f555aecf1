// Package secret reads PINs, SO-PINs and passwords from the sources a person
// or a script uses: a literal value, env:VAR (as OpenSC's util_get_pin),
// file:PATH (first line), "-" (one line of stdin), or a no-echo prompt on the
// terminal. Without a terminal, a missing secret is an error that names the
// flag: scripts never hang on a prompt.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"golang.org/x/term"
)

// Source resolves secrets. Stdin is where "-" reads; TTY opens the terminal
// for prompts (nil: no terminal).
type Source struct {
	Stdin io.Reader
	// TTY returns the terminal to prompt on, or an error if there is none.
	TTY func() (Terminal, error)
	// Getenv looks up env:VAR.
	Getenv    func(string) (string, bool)
	stdinUsed bool
}

// Terminal is a terminal to prompt on without echo.
type Terminal interface {
	io.Writer
	// ReadPassword turns echo off, shows prompt and reads a line; the
	// newline after it is shown too.
	ReadPassword(prompt string) ([]byte, error)
	ReadLine() (string, error)
	Close() error
}

// Default returns a Source on the process's stdin, environment and /dev/tty.
func Default() *Source {
	return &Source{Stdin: os.Stdin, TTY: OpenTTY, Getenv: os.LookupEnv}
}

// ErrNoTerminal is wrapped by errors for secrets that would need a prompt
// when there is no terminal.
var ErrNoTerminal = errors.New("no terminal to prompt on")

// Get resolves the secret given to flag (its value spec; "" when the flag
// was not given). prompt is shown on the terminal when spec is empty.
// The caller must Wipe the result after use.
func (s *Source) Get(flag, spec, prompt string) ([]byte, error) {
	switch {
	case spec == "":
		return s.Prompt(flag, prompt)
	case spec == "-":
		line, err := readLine(s.Stdin)
		switch {
		case errors.Is(err, errNoLine):
			return nil, fmt.Errorf("--%s -: standard input has no line left for it: give one line per option that reads -, in the order of the options", flag)
		case errors.Is(err, errLineTooLong):
			return nil, fmt.Errorf("--%s -: the line on standard input is longer than %d bytes: is this the right input?", flag, maxLine)
		case err != nil:
			return nil, fmt.Errorf("--%s -: cannot read a line from standard input: %v", flag, err)
		}
		return line, nil
	case strings.HasPrefix(spec, "env:"):
		name := spec[4:]
		v, ok := s.Getenv(name)
		if !ok {
			return nil, fmt.Errorf("--%s env:%s: environment variable %s is not set", flag, name, name)
		}
		return []byte(v), nil
	case strings.HasPrefix(spec, "file:"):
		path := spec[5:]
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("--%s file:%s: %v: check the path after file:", flag, path, errors.Unwrap(err))
		}
		defer f.Close()
		line, err := readLine(f)
		switch {
		case errors.Is(err, errNoLine):
			return nil, fmt.Errorf("--%s file:%s: the file is empty: put the secret on its first line", flag, path)
		case errors.Is(err, errLineTooLong):
			return nil, fmt.Errorf("--%s file:%s: its first line is longer than %d bytes: is this the file that holds the secret?", flag, path, maxLine)
		case err != nil:
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				err = pe.Err
			}
			return nil, fmt.Errorf("--%s file:%s: cannot read its first line: %v: give a file that holds the secret", flag, path, err)
		}
		return line, nil
	}
	return []byte(spec), nil
}

// Prompt asks for the secret on the terminal without echo.
func (s *Source) Prompt(flag, prompt string) ([]byte, error) {
	if s.TTY == nil {
		return nil, missing(flag)
	}
	t, err := s.TTY()
	if err != nil {
		return nil, missing(flag)
	}
	defer t.Close()
	b, err := t.ReadPassword(prompt)
	if err != nil {
		return nil, ttyErr(flag, err)
	}
	return b, nil
}

// ttyErr is the error of a failed read from the terminal.
func ttyErr(flag string, err error) error {
	if errors.Is(err, errNoLine) {
		return fmt.Errorf("--%s: the terminal input ended before a line was entered: run again and type it, or give --%s VALUE, env:VAR, file:PATH or -", flag, flag)
	}
	return fmt.Errorf("--%s: reading from the terminal: %v", flag, err)
}

func missing(flag string) error {
	return &missingError{flag}
}

// missingError names the flag a script must use instead of a prompt.
type missingError struct{ flag string }

func (e *missingError) Error() string {
	f := e.flag
	return fmt.Sprintf("--%s is required when there is no terminal to prompt on: give --%s VALUE, --%s env:VAR, --%s file:PATH or --%s - (one line of stdin)", f, f, f, f, f)
}

func (e *missingError) Unwrap() error { return ErrNoTerminal }

// readLine reads one line without its line ending, a byte at a time so
// that the next secret read from the same input gets the next line. EOF
// before any byte is errNoLine; EOF after some bytes ends the line. The
// buffer grows by copying, and every copy left behind is wiped, so that
// no piece of the secret stays in memory but the returned slice.
func readLine(r io.Reader) ([]byte, error) {
	line := make([]byte, 0, 64)
	var c [1]byte
	defer Wipe(c[:])
	for len(line) < maxLine {
		n, err := r.Read(c[:])
		if n == 1 {
			if c[0] == '\n' {
				return bytes.TrimRight(line, "\r"), nil
			}
			if len(line) == cap(line) {
				grown := make([]byte, len(line), 2*cap(line))
				copy(grown, line)
				Wipe(line)
				line = grown
			}
			line = append(line, c[0])
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(line) == 0 {
				return nil, errNoLine
			}
			return bytes.TrimRight(line, "\r"), nil
		}
		if err != nil {
			Wipe(line)
			return nil, err
		}
	}
	Wipe(line)
	return nil, errLineTooLong
}

// readLine's errors: an input with no line left, a line too long for a
// secret.
var (
	errNoLine      = errors.New("no line to read (end of input)")
	errLineTooLong = fmt.Errorf("line longer than %d bytes", maxLine)
)

// maxLine bounds a secret read from a line.
const maxLine = 4096

// Wipe overwrites b with zeros.
func Wipe(b []byte) {
	for i := range b {
		b[i] = 0
	}
}

type tty struct {
	f *os.File
}

// OpenTTY opens /dev/tty for prompts, so that prompts work even when stdin
// and stdout are pipes, and fail cleanly when there is no controlling
// terminal.
func OpenTTY() (Terminal, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, ErrNoTerminal
	}
	if !term.IsTerminal(int(f.Fd())) {
		f.Close()
		return nil, ErrNoTerminal
	}
	return &tty{f: f}, nil
}

func (t *tty) Write(p []byte) (int, error) { return t.f.Write(p) }
func (t *tty) Close() error                { return t.f.Close() }
func (t *tty) ReadPassword(prompt string) ([]byte, error) {
	return readPassword(t.f, prompt)
}
func (t *tty) ReadLine() (string, error) {
	b, err := readLine(t.f)
	return string(b), err
}

// NewSecret asks for a new secret twice on the terminal, without echo, and
// insists on at least min bytes (sc-hsm-tool.c ask_for_password refuses
// fewer than 6 characters). Without a terminal it names the flag to use.
func (s *Source) NewSecret(flag, prompt, again string, min int) ([]byte, error) {
	if s.TTY == nil {
		return nil, missing(flag)
	}
	t, err := s.TTY()
	if err != nil {
		return nil, missing(flag)
	}
	defer t.Close()
	for try := 0; try < 3; try++ {
		a, err := t.ReadPassword(prompt)
		if err != nil {
			return nil, ttyErr(flag, err)
		}
		if len(a) < min {
			Wipe(a)
			fmt.Fprintf(t, "Too short: at least %d characters. Please retry.\n", min)
			continue
		}
		b, err := t.ReadPassword(again)
		if err != nil {
			Wipe(a)
			return nil, ttyErr(flag, err)
		}
		same := bytes.Equal(a, b)
		Wipe(b)
		if same {
			return a, nil
		}
		Wipe(a)
		fmt.Fprintln(t, "The two entries differ. Please retry.")
	}
	return nil, fmt.Errorf("--%s: no matching entry after 3 tries: run again, and type the same secret, at least %d characters, twice", flag, min)
}
