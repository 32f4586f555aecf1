// Package paper writes a DKEK share file (.pbe) on paper and reads it back:
// the page a custodian keeps in a safe for the day the file is lost, and
// the text typed, or scanned from its QR code, to make the file again.
//
// What is on the page, and why:
//
//   - The 64 bytes of the .pbe file exactly as sc-hsm-tool writes them
//     (internal/dkekshare: "Salted__", 8 bytes of salt, 48 bytes of
//     AES-256-CBC ciphertext; OpenSC src/tools/sc-hsm-tool.c
//     create_dkek_share). The share inside stays encrypted under its
//     custodian's password: the page is as sensitive as the file, no more.
//
//   - Alphabet: Crockford's base32 (0-9 and A-Z without I, L, O and U;
//     https://www.crockford.com/base32.html). It is 20% shorter than hex
//     (103 characters instead of 128), and without I, L, O and U no two
//     characters look alike on paper or sound alike read aloud. Input is
//     forgiving as Crockford's decoding is: lower case is accepted, I and
//     L are read as 1, O as 0; spaces, dashes and other punctuation are
//     ignored. The 512 bits are one big-endian bit stream cut into 5-bit
//     symbols; the 103rd symbol carries the last 2 bits and 3 zero bits.
//
//   - Lines: the 103 symbols in 7 numbered lines of 16 symbols (the last
//     line 7), printed in groups of 4: short enough to type without losing
//     one's place, few enough to type in a few minutes.
//
//   - Check per line: 2 symbols (10 bits), the CRC-10 with generator
//     x^10+x^9+x^5+x^4+x+1 (0x233, CRC-10/ATM) over the line number
//     (5 bits) followed by the line's symbols (5 bits each). A typo
//     changes one symbol, that is at most 5 consecutive bits of the
//     checked message: an error burst shorter than the generator's degree,
//     which a CRC whose generator has a constant term always detects
//     (Peterson and Brown, "Cyclic Codes for Error Detection", 1961). The
//     same holds for two neighbouring symbols swapped (a burst of at most
//     10 bits). A typo in the check symbols themselves changes the check
//     typed, not the one computed. Because the line number is checked too,
//     a line typed under another line's number fails. So every
//     single-character substitution is caught, and only its own line's
//     check fails: TestEverySingleTypo tries them all.
//
//   - The whole file's check value: SHA-256 of the 64 bytes, first 8, in
//     hex (FileCheck). It is the file's, not the share's: the share's own
//     check value (ceremony.ShareKCV, the one create-dkek-share prints)
//     needs the password, so the page shows it only when the password was
//     given to print it. from-paper writes nothing unless the lines make a
//     file with the check value on the page.
//
//   - QR code: the text "PICOHSM-DKEK-SHARE:V1:", the 103 symbols, ":"
//     and the file's check value (QRPayload). Every character of it is in
//     the QR code's alphanumeric set (ISO/IEC 18004 section 7.4.4), which
//     keeps the code small: version 8 (49 modules a side) at error
//     correction level Q, which survives a quarter of it damaged. The
//     prefix makes a scanned text recognizable among other input.
package paper

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

const (
	// Alphabet is Crockford's base32, symbol value = index.
	Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	// Symbols is the number of base32 symbols of a share file.
	Symbols = (dkekshare.FileSize*8 + 4) / 5
	// LineSymbols is the number of data symbols on a full line.
	LineSymbols = 16
	// Lines is the number of lines on the page.
	Lines = (Symbols + LineSymbols - 1) / LineSymbols
	// CheckSymbols is the number of check symbols that end each line.
	CheckSymbols = 2
	// QRPrefix starts the text of the QR code.
	QRPrefix = "PICOHSM-DKEK-SHARE:V1:"

	crcPoly = 0x233 // x^10+x^9+x^5+x^4+x+1 without x^10: CRC-10/ATM
	crcBits = 10
)

// FileCheck is the check value of a whole share file: SHA-256 of its
// bytes, first 8, in upper-case hex. It needs no password.
func FileCheck(file []byte) string {
	s := sha256.Sum256(file)
	return fmt.Sprintf("%X", s[:8])
}

// encode cuts file into 5-bit symbols, most significant bit first, the
// last symbol padded with zero bits.
func encode(file []byte) []byte {
	syms := make([]byte, 0, (len(file)*8+4)/5)
	var acc uint32
	bits := 0
	for _, b := range file {
		acc = acc<<8 | uint32(b)
		bits += 8
		for bits >= 5 {
			syms = append(syms, byte(acc>>(bits-5))&31)
			bits -= 5
		}
	}
	if bits > 0 {
		syms = append(syms, byte(acc<<(5-bits))&31)
	}
	return syms
}

// decode is encode's inverse for a share file's Symbols symbols; the
// padding bits must be zero.
func decode(syms []byte) ([]byte, error) {
	if len(syms) != Symbols {
		return nil, fmt.Errorf("%d characters, a share file takes %d", len(syms), Symbols)
	}
	file := make([]byte, 0, dkekshare.FileSize)
	var acc uint32
	bits := 0
	for _, s := range syms {
		acc = acc<<5 | uint32(s)
		bits += 5
		if bits >= 8 {
			file = append(file, byte(acc>>(bits-8)))
			bits -= 8
		}
	}
	if acc&(1<<bits-1) != 0 {
		return nil, errors.New("the last character has bits set past the end of the file")
	}
	return file, nil
}

// symbol returns the value of the character c as Crockford's decoding
// reads it, or -1.
func symbol(c byte) int {
	switch c {
	case 'o', 'O':
		return 0
	case 'i', 'I', 'l', 'L':
		return 1
	}
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	return strings.IndexByte(Alphabet, c)
}

// lineCheck is the CRC-10 of the line number n (5 bits) followed by the
// line's symbols (5 bits each), most significant bit first, initial value
// 0, as the package documentation explains.
func lineCheck(n int, syms []byte) uint16 {
	var crc uint16
	feed := func(v byte) {
		for i := 4; i >= 0; i-- {
			bit := uint16(v>>i) & 1
			top := crc >> (crcBits - 1) & 1
			crc = crc << 1 & (1<<crcBits - 1)
			if top^bit != 0 {
				crc ^= crcPoly
			}
		}
	}
	feed(byte(n))
	for _, s := range syms {
		feed(s)
	}
	return crc
}

// checkChars are the two check symbols of a line.
func checkChars(n int, syms []byte) string {
	c := lineCheck(n, syms)
	return string([]byte{Alphabet[c>>5], Alphabet[c&31]})
}

// Line is one numbered line of the page.
type Line struct {
	N     int    // from 1
	Data  string // the line's symbols, without spaces
	Check string // its two check symbols
}

// String is the line as printed: "1: ABCD EFGH JKMN PQRS - XY".
func (l Line) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d: ", l.N)
	for i := 0; i < len(l.Data); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(l.Data[i:min(i+4, len(l.Data))])
	}
	b.WriteString(" - ")
	b.WriteString(l.Check)
	return b.String()
}

// FileLines cuts a share file into the page's lines.
func FileLines(file []byte) []Line {
	syms := encode(file)
	var lines []Line
	for n := 1; len(syms) > 0; n++ {
		k := min(LineSymbols, len(syms))
		data := make([]byte, k)
		for i, s := range syms[:k] {
			data[i] = Alphabet[s]
		}
		lines = append(lines, Line{N: n, Data: string(data), Check: checkChars(n, syms[:k])})
		syms = syms[k:]
	}
	return lines
}

// lineLen is the number of data symbols of line n.
func lineLen(n int) int {
	return min(LineSymbols, Symbols-(n-1)*LineSymbols)
}

// LineError is a line that does not check: N is its number on the page.
type LineError struct {
	N      int
	Reason string
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %s", e.N, e.Reason) }

// CheckLine reads the text of line n as typed (without its number: spaces,
// dashes and punctuation ignored, Crockford's confusions accepted) and
// returns its data symbols if its check symbols match. Every error is a
// *LineError for line n.
func CheckLine(n int, text string) ([]byte, error) {
	if n < 1 || n > Lines {
		return nil, &LineError{n, fmt.Sprintf("the page has lines 1 to %d", Lines)}
	}
	var syms []byte
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == ' ' || c == '\t' || c == '-' || c == '.' || c == ',' || c == ':' || c == '|' || c == '/' || c == '_' {
			continue
		}
		v := symbol(c)
		if v < 0 {
			what := fmt.Sprintf("%q", c)
			if c >= 0x20 && c < 0x7f {
				what = "'" + string(c) + "'"
			}
			return nil, &LineError{n, fmt.Sprintf("%s is not a character of the page (0-9 and A-Z without U)", what)}
		}
		syms = append(syms, byte(v))
	}
	want := lineLen(n) + CheckSymbols
	switch {
	case len(syms) < want:
		return nil, &LineError{n, fmt.Sprintf("%d characters typed, the line has %d (the 2 after the dash included): a character is missing", len(syms), want)}
	case len(syms) > want:
		return nil, &LineError{n, fmt.Sprintf("%d characters typed, the line has %d (the 2 after the dash included): a character is extra", len(syms), want)}
	}
	data, check := syms[:want-CheckSymbols], syms[want-CheckSymbols:]
	if lineCheck(n, data) != uint16(check[0])<<5|uint16(check[1]) {
		return nil, &LineError{n, "its check characters do not match: a character is mistyped, or it is another line"}
	}
	return data, nil
}

// Assemble makes the share file from the data symbols of every line (in
// order, from CheckLine) and checks it: the dkekshare format, and the
// file check value on the page (want, hex, any case).
func Assemble(lines [][]byte, want string) ([]byte, error) {
	var syms []byte
	for _, l := range lines {
		syms = append(syms, l...)
	}
	file, err := decode(syms)
	if err != nil {
		return nil, fmt.Errorf("the lines do not make a share file: %v", err)
	}
	if _, err := dkekshare.Check(file); err != nil {
		return nil, fmt.Errorf("the lines do not make a share file: %v", err)
	}
	if got := FileCheck(file); !strings.EqualFold(got, strings.TrimSpace(want)) {
		return nil, &CheckError{Got: got, Want: strings.ToUpper(strings.TrimSpace(want))}
	}
	return file, nil
}

// CheckError is a file whose check value is not the one on the page.
type CheckError struct{ Got, Want string }

func (e *CheckError) Error() string {
	return fmt.Sprintf("the lines make a file whose check value is %s, the paper says %s: check the file check value typed, then the lines", e.Got, e.Want)
}

// QRPayload is the text of the page's QR code for a share file.
func QRPayload(file []byte) string {
	var b strings.Builder
	b.WriteString(QRPrefix)
	for _, s := range encode(file) {
		b.WriteByte(Alphabet[s])
	}
	b.WriteByte(':')
	b.WriteString(FileCheck(file))
	return b.String()
}

// IsQRPayload reports whether s holds a QR code's text (QRPayload), in any
// case.
func IsQRPayload(s string) bool {
	return strings.Contains(strings.ToUpper(s), QRPrefix[:strings.Index(QRPrefix, ":")+1])
}

// ParseQRPayload reads the text of the QR code, as a scanner gives it
// (any case, spaces around it ignored), and returns the share file if its
// check value matches.
func ParseQRPayload(s string) ([]byte, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	i := strings.Index(u, QRPrefix[:strings.Index(QRPrefix, ":")+1])
	if i < 0 {
		return nil, errors.New("the QR code text does not start with " + QRPrefix)
	}
	u = u[i:]
	if !strings.HasPrefix(u, QRPrefix) {
		return nil, fmt.Errorf("the QR code text is of another version than %s: use the pico-hsm-tool that printed it", strings.TrimSuffix(QRPrefix, ":"))
	}
	body, check, ok := strings.Cut(u[len(QRPrefix):], ":")
	if !ok {
		return nil, errors.New("the QR code text is cut short: scan it again")
	}
	syms := make([]byte, len(body))
	for i := 0; i < len(body); i++ {
		v := symbol(body[i])
		if v < 0 {
			return nil, errors.New("the QR code text has a character that is not Crockford base32: scan it again")
		}
		syms[i] = byte(v)
	}
	file, err := decode(syms)
	if err == nil {
		_, err = dkekshare.Check(file)
	}
	if err != nil {
		return nil, fmt.Errorf("the QR code text is not a share file: %v: scan it again", err)
	}
	if got := FileCheck(file); got != check {
		return nil, fmt.Errorf("the QR code text makes a file whose check value is %s, the code says %s: scan it again", got, check)
	}
	return file, nil
}
