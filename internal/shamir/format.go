package shamir

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// maxHexBytes bounds ParseHex: sc-hsm-tool reads a prime or a value into a
// 64-byte buffer (recreate_password_from_shares).
const maxHexBytes = 64

// FormatHex formats v as sc-hsm-tool's generate_pwd_shares prints the prime
// and the share value: the minimal big-endian bytes (BN_bn2bin) as
// lower-case hex separated by colons (sc_bin_to_hex with ':'), for example
// "e1:65:e9:72:0d:51:95:1f". Zero, for which sc-hsm-tool prints nothing,
// formats as "00". v must not be negative.
func FormatHex(v *big.Int) string {
	b := v.Bytes()
	if len(b) == 0 {
		b = []byte{0}
	}
	var sb strings.Builder
	sb.Grow(3 * len(b))
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(hex.EncodeToString([]byte{c}))
	}
	return sb.String()
}

// ParseHex parses a prime or a share value: whole bytes of hex, either
// separated by colons as sc-hsm-tool prints them ("e1:65:e9:72:0d:51:95:1f")
// or run together ("E165E9720D51951F"), in any case, with surrounding spaces
// ignored. With colons every byte must have two digits, so that a dropped
// digit is an error rather than another number.
func ParseHex(s string) (*big.Int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("empty hex value: enter it as printed, e.g. e1:65:e9:72:0d:51:95:1f")
	}
	for _, r := range s {
		if !isHexDigit(r) && r != ':' {
			return nil, fmt.Errorf("hex value %q contains %q: use only 0-9, a-f and colons", s, r)
		}
	}
	var digits string
	if strings.Contains(s, ":") {
		parts := strings.Split(s, ":")
		for i, part := range parts {
			if len(part) != 2 {
				return nil, fmt.Errorf("hex value %q: byte %d is %q, not two hex digits: write every byte with two digits, e.g. 0d", s, i+1, part)
			}
		}
		digits = strings.Join(parts, "")
	} else {
		if len(s)%2 != 0 {
			return nil, fmt.Errorf("hex value %q has an odd number of digits: write whole bytes, e.g. 0d, or separate them with colons", s)
		}
		digits = s
	}
	if len(digits)/2 > maxHexBytes {
		return nil, fmt.Errorf("hex value %q is %d bytes: at most %d are accepted, check the value", s, len(digits)/2, maxHexBytes)
	}
	v, ok := new(big.Int).SetString(digits, 16)
	if !ok { // unreachable after the checks above
		return nil, fmt.Errorf("hex value %q is not valid: check the value", s)
	}
	return v, nil
}

func isHexDigit(r rune) bool {
	return '0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F'
}

// ParseID parses a share ID in decimal, as sc-hsm-tool prints it
// (BN_bn2dec), with surrounding spaces ignored. It accepts 1 to 255. Unlike
// sc-hsm-tool, which reads the ID back as hex (BN_hex2bn), "10" is share 10
// (defect 2 in the package documentation).
func ParseID(s string) (int, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, errors.New("empty share ID: enter the decimal Share ID printed with the share, e.g. 1")
	}
	for _, r := range t {
		if r < '0' || r > '9' {
			return 0, fmt.Errorf("share ID %q is not a decimal number: enter the Share ID as printed, e.g. 1 or 12", t)
		}
	}
	digits := strings.TrimLeft(t, "0")
	id := 0
	if len(digits) > 3 {
		id = MaxTotal + 1
	} else {
		for _, r := range digits {
			id = 10*id + int(r-'0')
		}
	}
	if id < 1 || id > MaxTotal {
		return 0, fmt.Errorf("share ID %s is out of range: share IDs are 1 to %d", t, MaxTotal)
	}
	return id, nil
}

// Validate checks that the set can be recombined: a prime of at most
// PrimeBits bits that is prime, at least two shares, IDs from 1 to 255,
// distinct and below the prime, and values from 0 to prime-1. sc-hsm-tool
// checks none of this and computes a wrong password instead.
func (s *Set) Validate() error {
	if err := s.validatePrime(); err != nil {
		return err
	}
	if len(s.Shares) < MinThreshold {
		return fmt.Errorf("%d share(s) given: give at least %d, as many as the threshold", len(s.Shares), MinThreshold)
	}
	seen := make(map[int]bool, len(s.Shares))
	for _, sh := range s.Shares {
		if err := s.validateShare(sh); err != nil {
			return err
		}
		if seen[sh.ID] {
			return fmt.Errorf("share ID %d is given twice: give each custodian's share once", sh.ID)
		}
		seen[sh.ID] = true
	}
	return nil
}

func (s *Set) validatePrime() error {
	switch p := s.Prime; {
	case p == nil:
		return errors.New("no prime given: add the Prime printed with the shares")
	case p.BitLen() > PrimeBits:
		return fmt.Errorf("prime %s has %d bits, sc-hsm-tool primes have %d: check the prime", FormatHex(p), p.BitLen(), PrimeBits)
	case p.Sign() <= 0 || !p.ProbablyPrime(0): // Baillie-PSW, exact below 2^64
		return fmt.Errorf("%s is not a prime number: check the prime", FormatHex(p))
	}
	return nil
}

// validateShare checks one share against the (already valid) prime.
func (s *Set) validateShare(sh Share) error {
	if sh.ID < 1 || sh.ID > MaxTotal {
		return fmt.Errorf("share ID %d is out of range: share IDs are 1 to %d", sh.ID, MaxTotal)
	}
	if big.NewInt(int64(sh.ID)).Cmp(s.Prime) >= 0 {
		return fmt.Errorf("share ID %d is not below the prime %s: check the prime", sh.ID, FormatHex(s.Prime))
	}
	if sh.Value == nil {
		return fmt.Errorf("share ID %d has no value: add its Share value", sh.ID)
	}
	if sh.Value.Sign() < 0 || sh.Value.Cmp(s.Prime) >= 0 {
		return fmt.Errorf("value %s of share ID %d is not below the prime %s: check the value and the prime", FormatHex(sh.Value), sh.ID, FormatHex(s.Prime))
	}
	return nil
}

// Single returns a set holding the prime and only the share with the given
// ID: what one custodian receives.
func (s *Set) Single(id int) (*Set, error) {
	for _, sh := range s.Shares {
		if sh.ID == id {
			return &Set{Prime: s.Prime, Shares: []Share{sh}}, nil
		}
	}
	return nil, fmt.Errorf("no share with ID %d in the set: use one of the IDs it holds", id)
}

// Format writes each share of the set, in order, as the block sc-hsm-tool's
// generate_pwd_shares shows a custodian, prime included:
//
//	Prime       : ce:32:c9:94:e2:da:23:df
//	Share ID    : 1
//	Share value : ab:ea:6d:fc:0f:a5:e1:5b
//
// For a set of one share (see [Set.Single]) that is what the custodian sees
// and stores; [ParseSet] reads it back.
func (s *Set) Format(w io.Writer) error {
	if s.Prime == nil {
		return errors.New("no prime in the set: cannot format shares without it")
	}
	prime := FormatHex(s.Prime)
	var sb strings.Builder
	for _, sh := range s.Shares {
		if sh.Value == nil {
			return fmt.Errorf("share ID %d has no value: cannot format it", sh.ID)
		}
		fmt.Fprintf(&sb, "Prime       : %s\nShare ID    : %d\nShare value : %s\n", prime, sh.ID, FormatHex(sh.Value))
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

// ParseError is a ParseSet error with the line it is about (1-based).
type ParseError struct {
	Line int
	Err  error
}

func (e *ParseError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }

func (e *ParseError) Unwrap() error { return e.Err }

// Line labels of the block format, lower-cased with single spaces.
const (
	labelPrime = "prime"
	labelID    = "share id"
	labelValue = "share value"
)

// ParseSet reads a share set in the text format of the package
// documentation: sc-hsm-tool's "Prime / Share ID / Share value" blocks
// (the prime needed only once) and compact PRIME/ID/VALUE lines, which may
// be mixed; blank lines and lines starting with # are ignored. The result is
// checked as [Set.Validate] does. Errors about a line are [*ParseError]s.
func ParseSet(r io.Reader) (*Set, error) {
	set := &Set{}
	var (
		primeLine int
		lines     []int // line of each share's value, for errors
		pendingID int   // ID read, value not yet
		idLine    int
	)
	setPrime := func(p *big.Int, line int) error {
		if set.Prime == nil {
			set.Prime, primeLine = p, line
			return nil
		}
		if set.Prime.Cmp(p) != 0 {
			return fmt.Errorf("prime %s differs from prime %s on line %d: all shares of a set have the same prime, check both", FormatHex(p), FormatHex(set.Prime), primeLine)
		}
		return nil
	}
	addShare := func(id int, v *big.Int, line int) error {
		for k, sh := range set.Shares {
			if sh.ID == id {
				return fmt.Errorf("share ID %d was already given on line %d: give each custodian's share once", id, lines[k])
			}
		}
		set.Shares = append(set.Shares, Share{ID: id, Value: v})
		lines = append(lines, line)
		return nil
	}
	unfinished := func() error {
		return &ParseError{idLine, fmt.Errorf("share ID %d has no Share value line after it: add the value printed with it", pendingID)}
	}

	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		text := sc.Text()
		if n == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		line := strings.TrimSpace(text)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		err := func() error {
			if strings.Contains(line, "/") {
				if pendingID != 0 {
					return unfinished()
				}
				return parseCompact(line, n, setPrime, addShare)
			}
			key, val, ok := strings.Cut(line, ":")
			label := strings.ToLower(strings.Join(strings.Fields(key), " "))
			if !ok || (label != labelPrime && label != labelID && label != labelValue) {
				return &ParseError{n, fmt.Errorf("%q is not a share line: write \"Prime : <hex>\", \"Share ID : <decimal>\", \"Share value : <hex>\" or PRIME/ID/VALUE", line)}
			}
			switch label {
			case labelPrime:
				p, err := ParseHex(val)
				if err != nil {
					return &ParseError{n, fmt.Errorf("prime: %w", err)}
				}
				if err := setPrime(p, n); err != nil {
					return &ParseError{n, err}
				}
			case labelID:
				if pendingID != 0 {
					return unfinished()
				}
				id, err := ParseID(val)
				if err != nil {
					return &ParseError{n, err}
				}
				pendingID, idLine = id, n
			case labelValue:
				if pendingID == 0 {
					return &ParseError{n, errors.New("share value without a Share ID line before it: add the Share ID printed with it")}
				}
				v, err := ParseHex(val)
				if err != nil {
					return &ParseError{n, fmt.Errorf("share value: %w", err)}
				}
				if err := addShare(pendingID, v, n); err != nil {
					return &ParseError{n, err}
				}
				pendingID = 0
			}
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{n + 1, errors.New("line too long: a share line is well under 200 characters, check the input")}
		}
		return nil, fmt.Errorf("reading shares: %w", err)
	}
	if pendingID != 0 {
		return nil, unfinished()
	}
	if len(set.Shares) == 0 {
		return nil, errors.New("no shares found: give Prime/Share ID/Share value lines or PRIME/ID/VALUE lines")
	}
	if set.Prime == nil {
		return nil, errors.New("no prime given: add a \"Prime : <hex>\" line with the prime printed with the shares")
	}
	if err := set.validatePrime(); err != nil {
		return nil, &ParseError{primeLine, err}
	}
	for k, sh := range set.Shares {
		if err := set.validateShare(sh); err != nil {
			return nil, &ParseError{lines[k], err}
		}
	}
	if err := set.Validate(); err != nil { // share count
		return nil, err
	}
	return set, nil
}

// parseCompact parses one PRIME/ID/VALUE line.
func parseCompact(line string, n int, setPrime func(*big.Int, int) error, addShare func(int, *big.Int, int) error) error {
	parts := strings.Split(line, "/")
	if len(parts) != 3 {
		return &ParseError{n, fmt.Errorf("%q has %d fields: write PRIME/ID/VALUE, e.g. e1:65:e9:72:0d:51:95:1f/1/b3:1f:8f:49:57:67:30:83", line, len(parts))}
	}
	p, err := ParseHex(parts[0])
	if err != nil {
		return &ParseError{n, fmt.Errorf("prime: %w", err)}
	}
	id, err := ParseID(parts[1])
	if err != nil {
		return &ParseError{n, err}
	}
	v, err := ParseHex(parts[2])
	if err != nil {
		return &ParseError{n, fmt.Errorf("share value: %w", err)}
	}
	if err := setPrime(p, n); err != nil {
		return &ParseError{n, err}
	}
	if err := addShare(id, v, n); err != nil {
		return &ParseError{n, err}
	}
	return nil
}
