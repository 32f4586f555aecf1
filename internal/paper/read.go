package paper

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
)

// numbered is a line that starts with its number: "3: ...", "3. ...",
// "3) ...", "3 ...", "line 3: ...".
var numbered = regexp.MustCompile(`^\s*(?i:line\s*)?(\d{1,2})\s*(?:[:.)]\s*|\s+)(\S.*)$`)

// fileCheckLine is the page's "File check value : HEX" line.
var fileCheckLine = regexp.MustCompile(`(?i)^\s*file\s+check\s+value\s*:?\s*([0-9a-f]{16})\b`)

// maxInput bounds what Parse reads: a page is about 2 kB.
const maxInput = 1 << 20

// Parse reads a paper copy from text: the text page dkek-share print
// wrote, a file of the lines as typed, or the text of the QR code (see
// the package documentation). Lines that are none of these (titles, the
// drawing of the QR code, notes) are skipped. name is the input's name for
// the messages. It returns the share file only when every line checks and
// the whole file has the check value given with the lines.
func Parse(r io.Reader, name string) ([]byte, error) {
	s := bufio.NewScanner(io.LimitReader(r, maxInput))
	s.Buffer(make([]byte, 4096), maxInput)
	lines := make([][]byte, Lines)
	at := make([]int, Lines) // input line of each page line
	var check, qr string
	seen := false
	for no := 1; s.Scan(); no++ {
		text := s.Text()
		if IsQRPayload(text) {
			if qr != "" {
				return nil, fmt.Errorf("%s: line %d: a second QR code text: give one share per input", name, no)
			}
			qr = text
			continue
		}
		if m := fileCheckLine.FindStringSubmatch(text); m != nil {
			check = m[1]
			continue
		}
		m := numbered.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		seen = true
		if n < 1 || n > Lines {
			return nil, fmt.Errorf("%s: input line %d is numbered %d, a paper copy has lines 1 to %d: correct its number", name, no, n, Lines)
		}
		if at[n-1] != 0 {
			return nil, fmt.Errorf("%s: line %d is given twice (input lines %d and %d): keep the one that matches the paper", name, n, at[n-1], no)
		}
		data, err := CheckLine(n, m[2])
		var le *LineError
		if errors.As(err, &le) {
			return nil, fmt.Errorf("%s: line %d (input line %d): %s: correct it as on the paper", name, n, no, le.Reason)
		}
		lines[n-1], at[n-1] = data, no
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	var fromQR []byte
	if qr != "" {
		f, err := ParseQRPayload(qr)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if !seen {
			return f, nil
		}
		fromQR = f
	}
	if !seen {
		return nil, fmt.Errorf("%s: no numbered lines of a paper copy and no QR code text in it: give the page dkek-share print wrote, its lines (1: ... to %d: ...) with the file check value, or the QR code's text", name, Lines)
	}
	var missing []string
	for i, l := range lines {
		if l == nil {
			missing = append(missing, strconv.Itoa(i+1))
		}
	}
	switch {
	case len(missing) == 1:
		return nil, fmt.Errorf("%s: line %s is missing: add it as on the paper, starting with its number (%s: ...)", name, missing[0], missing[0])
	case len(missing) > 1:
		return nil, fmt.Errorf("%s: lines %s are missing: add them as on the paper, each starting with its number", name, strings.Join(missing, ", "))
	}
	if check == "" {
		if fromQR != nil {
			check = FileCheck(fromQR)
		} else {
			return nil, fmt.Errorf("%s: no file check value: add the line 'File check value : HEX' from the paper", name)
		}
	}
	file, err := Assemble(lines, check)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if fromQR != nil && string(fromQR) != string(file) {
		return nil, fmt.Errorf("%s: the QR code text and the lines are not the same file: give one of them", name)
	}
	return file, nil
}

// Terminal is where Ask reads the lines a person types, with echo.
type Terminal interface {
	io.Writer
	ReadLine() (string, error)
}

// maxCheckTries is how often Ask asks for the file check value when the
// lines do not match it.
const maxCheckTries = 3

// Ask reads a paper copy typed on a terminal, line by line: a line with
// a typo is named and asked for again, before the next one. At the first
// line the QR code's text may be pasted instead. Then it asks for the file
// check value and returns the file only when it matches.
func Ask(t Terminal) ([]byte, error) {
	fmt.Fprintf(t, "Type the %d lines of the paper copy, each with the 2 check characters after\n"+
		"its dash (spaces, dashes and lower case are fine), or paste the text of its\n"+
		"QR code at line 1.\n", Lines)
	lines := make([][]byte, Lines)
	for n := 1; n <= Lines; {
		fmt.Fprintf(t, "line %d: ", n)
		text, err := t.ReadLine()
		if err != nil {
			return nil, readErr(err)
		}
		if strings.TrimSpace(text) == "" {
			continue
		}
		if n == 1 && IsQRPayload(text) {
			file, err := ParseQRPayload(text)
			if err != nil {
				fmt.Fprintf(t, "%v\n", err)
				continue
			}
			fmt.Fprintf(t, "QR code text read: file check value %s\n", FileCheck(file))
			return file, nil
		}
		if m := numbered.FindStringSubmatch(text); m != nil {
			if k, _ := strconv.Atoi(m[1]); k != n {
				fmt.Fprintf(t, "that is line %d: type line %d\n", k, n)
				continue
			}
			text = m[2]
		}
		data, err := CheckLine(n, text)
		if err != nil {
			fmt.Fprintf(t, "%v: type line %d again\n", err, n)
			continue
		}
		lines[n-1] = data
		n++
	}
	for try := 1; ; try++ {
		fmt.Fprint(t, "File check value (16 characters): ")
		text, err := t.ReadLine()
		if err != nil {
			return nil, readErr(err)
		}
		file, err := Assemble(lines, strings.ReplaceAll(text, " ", ""))
		var ce *CheckError
		switch {
		case err == nil:
			return file, nil
		case errors.As(err, &ce) && try < maxCheckTries:
			fmt.Fprintf(t, "%v\n", err)
		default:
			return nil, err
		}
	}
}

func readErr(err error) error {
	return fmt.Errorf("the paper copy is not complete (reading the terminal: %v): nothing was written", err)
}
