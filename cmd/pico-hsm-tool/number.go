package main

import (
	"errors"
	"strconv"

	"github.com/spf13/pflag"
)

// decimal is an integer option a person types: key references, counts,
// retry counters, domain numbers. It reads decimal digits only, leading
// zeros allowed, so that "-i 010" is key reference 10 as sc-hsm-tool's
// atoi reads it (OpenSC src/tools/sc-hsm-tool.c, "-i" handling). pflag's
// IntVar parses with base 0, where 010 is eight and 0x10 sixteen: a key
// reference read that way replaces the wrong key.
//
// A default of zero or less means "not given": the help prints none, so
// that the usage text's own "(default: …)" is the only one shown.
type decimal struct{ p *int }

// decimalVar defines a decimal option; short may be "".
func decimalVar(fs *pflag.FlagSet, p *int, name, short string, def int, usage string) {
	*p = def
	fs.VarP(decimal{p}, name, short, usage)
	if def <= 0 {
		fs.Lookup(name).DefValue = ""
	}
}

// errNotDecimal is what Set says to anything but digits.
var errNotDecimal = errors.New("not a decimal number: give digits only, e.g. 10 (leading zeros are allowed; 0x, octal and signs are not)")

func (d decimal) Set(s string) error {
	n, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*d.p = n
	return nil
}

// parseDecimal reads a non-negative decimal number: digits only, leading
// zeros allowed.
func parseDecimal(s string) (int, error) {
	if s == "" {
		return 0, errors.New("empty: give a decimal number, e.g. 10")
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return 0, errNotDecimal
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, errors.New("too large")
	}
	return int(n), nil
}

func (d decimal) String() string {
	if d.p == nil {
		return ""
	}
	return strconv.Itoa(*d.p)
}

func (d decimal) Type() string { return "int" }
