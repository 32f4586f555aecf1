package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// Exit codes (documented in the README).
const (
	exitPartial = 2 // backup or restore: some keys failed, the others are done
)

// keyFlags name a key by reference, label or ID.
type keyFlags struct {
	ref   int
	label string
	id    string
}

func (k *keyFlags) register(cmd *cobra.Command) {
	decimalVar(cmd.Flags(), &k.ref, "key-reference", "i", -1, "key reference (the xx of the key file CCxx; list-keys shows it)")
	cmd.Flags().StringVar(&k.label, "label", "", "the key's label")
	cmd.Flags().StringVar(&k.id, "id", "", "the key's ID, hex (the PKCS#15 / PKCS#11 CKA_ID, not the key reference)")
}

func (k *keyFlags) spec() (keystore.Spec, error) {
	s := keystore.Spec{Ref: k.ref, Label: k.label}
	n := 0
	if k.ref >= 0 {
		n++
	}
	if k.label != "" {
		n++
	}
	if k.id != "" {
		n++
		id, err := parseKeyID(strings.TrimPrefix(k.id, "0x"), k.id, "give the ID as list-keys shows it, e.g. --id 01")
		if err != nil {
			return s, err
		}
		s.ID = id
	}
	if n != 1 {
		return s, errors.New("name the key with one of --key-reference, --label and --id")
	}
	return s, nil
}

// parseKeyID reads a key ID in hex (h, given as arg); hint ends the
// message for what is not hex at all. An odd number of digits is valid
// hex but no whole bytes: the message says so and shows the ID with a
// leading zero.
func parseKeyID(h, arg, hint string) ([]byte, error) {
	id, err := hex.DecodeString(h)
	if errors.Is(err, hex.ErrLength) {
		if _, err := hex.DecodeString("0" + h); err == nil {
			return nil, fmt.Errorf("--id %s: odd number of hex digits: give whole bytes, e.g. --id 0%s", arg, h)
		}
	}
	if err != nil || len(id) == 0 {
		return nil, fmt.Errorf("--id %s: not hexadecimal: %s", arg, hint)
	}
	return id, nil
}

// pinFlags is --pin and --last-try.
type pinFlags struct {
	pin     string
	lastTry bool
}

func (p *pinFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.pin, "pin", "", "user PIN (or env:VAR, file:PATH, -); prompted for when omitted")
	cmd.Flags().BoolVar(&p.lastTry, "last-try", false, "allow using a PIN that has only one try left")
}

// openWithPIN reads the user PIN, then opens the device; done closes the
// device and wipes the PIN.
func (g *globals) openWithPIN(spec string) (*device.Conn, []byte, func(), error) {
	pin, err := g.userPIN(spec)
	if err != nil {
		return nil, nil, nil, err
	}
	conn, err := g.open()
	if err != nil {
		secret.Wipe(pin)
		return nil, nil, nil, err
	}
	return conn, pin, func() { conn.Close(); secret.Wipe(pin) }, nil
}

func newGenerateKeyCmd(g *globals) *cobra.Command {
	var s keystore.GenSpec
	var p pinFlags
	var id, keyType string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "generate-key",
		Short: "Generate a key on the device (RSA, EC or AES), exportable under the DKEK",
		Long: `Generate a key on the device and write the PKCS#15 description OpenSC writes,
so that pkcs15-tool -D and pkcs11-tool -O list it with its label, ID and size.

  --type rsa:2048 (1024 to 4096), ec:secp256r1 (secp384r1, secp521r1, secp256k1,
  brainpoolP256r1, brainpoolP384r1, brainpoolP512r1) or aes:256 (128, 192)

Keys are exportable under the DKEK (wrap-key, backup) unless --no-export.
A label or ID that another key has is refused unless --allow-duplicate: it
would make --label and --id ambiguous.

--key-domain D puts the key into key domain D of a device initialized with
key domains: it is then wrapped under that domain's DKEK. The domain must be
set up (status lists them); while its DKEK shares are not all imported the
key works but cannot be backed up.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyType == "" {
				return errors.New("--type is required: give rsa:2048, ec:secp256r1 or aes:256, for example (see --help for every size and curve)")
			}
			typ, param, _ := strings.Cut(keyType, ":")
			s.Type = typ
			switch strings.ToLower(typ) {
			case "rsa", "aes":
				if param == "" {
					return fmt.Errorf("--type %s: give the size, as in %s:2048", keyType, typ)
				}
				bits, err := parseDecimal(param)
				if err != nil {
					return fmt.Errorf("--type %s: give the size in bits as a decimal number, as in %s:2048", keyType, typ)
				}
				s.Bits = bits
			case "ec":
				s.Curve = param
			}
			if !cmd.Flags().Changed("key-reference") {
				s.Ref = -1
			}
			if id != "" {
				b, err := parseKeyID(id, id, "give whole bytes in hex, e.g. --id 01 or --id 0A0B")
				if err != nil {
					return err
				}
				s.ID = b
			}
			if err := s.Validate(); err != nil {
				return err
			}
			conn, pin, done, err := g.openWithPIN(p.pin)
			if err != nil {
				return err
			}
			defer done()
			s.PIN, s.AllowLastTry = pin, p.lastTry
			s.Warn = func(msg string) { g.note("warning: %s", msg) }
			k, err := keystore.Generate(conn, s)
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "key", k)
			}
			inDomain := ""
			if k.Domain != 0 {
				inDomain = fmt.Sprintf(", key domain %d", k.Domain)
			}
			fmt.Fprintf(g.stdout, "Generated %s at key reference %d, label %q, ID %s%s\n", k.Describe(), k.Ref, k.Label, k.ID, inDomain)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&keyType, "type", "t", "", "key type and size or curve: rsa:2048, ec:secp256r1, aes:256")
	fl.StringVar(&s.Label, "label", "", "the key's label")
	fl.StringVar(&id, "id", "", "the key's ID, hex (default: the key reference)")
	decimalVar(fl, &s.Ref, "key-reference", "i", -1, "key reference from 1 to 255 (default: the lowest free one)")
	decimalVar(fl, &s.Domain, "key-domain", "", 0, "key domain from 0 to 15 to put the key in (default 0; status lists them)")
	fl.BoolVar(&s.NoExport, "no-export", false, "the key can never leave the device: leave WRAP out of its allowed algorithms")
	fl.BoolVar(&s.AllowDuplicate, "allow-duplicate", false, "allow a label or ID that another key has (it makes --label and --id ambiguous)")
	fl.BoolVar(&asJSON, "json", false, "print the key as JSON")
	p.register(cmd)
	return cmd
}

func newListKeysCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list-keys",
		Short: "List the keys: reference, type and size or curve, label, ID, exportable, certificate",
		Long: `List the keys on the device without pkcs15-tool. The key reference is where the
key lives on the device (key file CCxx); the ID is the PKCS#15 / PKCS#11 CKA_ID.
They often differ: commands accept --key-reference, --label or --id.

When any key is in a key domain other than 0 (generate-key --key-domain), a
Domain column shows each key's domain; --json always gives "key_domain".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := g.open()
			if err != nil {
				return err
			}
			defer conn.Close()
			var keys []keystore.Key
			noDKEK := false
			err = conn.Transaction(func() error {
				if _, err := conn.SelectApplication(); err != nil {
					return err
				}
				if keys, err = keystore.List(conn.Device); err != nil || len(keys) == 0 {
					return err
				}
				// Without a DKEK in its key domain no key is
				// exportable, whatever its algorithm list says (pico-hsm
				// cmd_key_wrap.c).
				noDKEK, err = keystore.MarkUnexportable(conn.Device, keys)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "keys", keys)
			}
			if len(keys) == 0 {
				fmt.Fprintln(g.stdout, "No keys")
				return nil
			}
			printKeyTable(g.stdout, keys)
			switch {
			case noDKEK && slices.ContainsFunc(keys, func(k keystore.Key) bool { return k.Domain != 0 }):
				fmt.Fprintln(g.stdout, "No key can be exported: their key domains have no DKEK (status shows them; key-domain create sets one up)")
			case noDKEK:
				fmt.Fprintln(g.stdout, "No key can be exported: the device has no DKEK (it was initialized without --dkek-shares)")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the keys as JSON")
	return cmd
}

// printKeyTable prints list-keys' table. Columns are as wide as their
// widest cell, at least as wide as a typical one (so that short lists look
// as in the README), with labels cut to labelMax columns with "…": widths
// are counted in terminal columns (textWidth), so that labels in any
// script keep the columns aligned.
//
// A Domain column, the key's key domain, comes before Export when any key
// is in a domain other than 0 (the rule documented for list-keys): on
// devices without key domains, and where every key is in the default
// domain, the table stays as it always was.
func printKeyTable(w io.Writer, keys []keystore.Key) {
	const labelMax = 32
	domains := false
	for _, k := range keys {
		domains = domains || k.Domain != 0
	}
	head := []string{"Ref", "Key", "Label", "ID", "Export", "Certificate"}
	widths := []int{4, 22, 16, 10, 6, 0}
	if domains {
		head = slices.Insert(head, 4, "Domain")
		widths = slices.Insert(widths, 4, 6)
	}
	rows := [][]string{head}
	for _, k := range keys {
		exp := "no"
		if k.Exportable {
			exp = "yes"
		}
		cert := k.Certificate
		if cert == "" {
			cert = "-"
		}
		row := []string{fmt.Sprint(k.Ref), k.Describe(), truncateText(k.Label, labelMax), k.ID, exp, cert}
		if domains {
			row = slices.Insert(row, 4, fmt.Sprint(k.Domain))
		}
		rows = append(rows, row)
	}
	for _, r := range rows {
		for i, c := range r[:len(r)-1] {
			widths[i] = max(widths[i], textWidth(c))
		}
	}
	for _, r := range rows {
		var b strings.Builder
		for i, c := range r[:len(r)-1] {
			b.WriteString(c)
			b.WriteString(strings.Repeat(" ", widths[i]-textWidth(c)+1))
		}
		b.WriteString(r[len(r)-1])
		fmt.Fprintln(w, b.String())
	}
}

// truncateText cuts s to at most n columns, ending it with "…" when cut.
func truncateText(s string, n int) string {
	if textWidth(s) <= n {
		return s
	}
	w := 0
	for i, r := range s {
		if w+runeWidth(r) > n-1 {
			return s[:i] + "…"
		}
		w += runeWidth(r)
	}
	return s
}

// textWidth is the number of terminal columns s takes.
func textWidth(s string) int {
	w := 0
	for _, r := range s {
		w += runeWidth(r)
	}
	return w
}

// runeWidth is the number of terminal columns r takes: 0 for combining
// marks, format and control characters, 2 for East Asian wide and
// fullwidth characters (Unicode UAX #11, the ranges wcwidth(3) gives 2,
// emoji included), 1 otherwise.
func runeWidth(r rune) int {
	switch {
	case r == 0, unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf), unicode.IsControl(r):
		return 0
	case r >= 0x1100 && r <= 0x115F, // Hangul Jamo initial consonants
		r >= 0x2E80 && r <= 0x303E, // CJK radicals, punctuation
		r >= 0x3041 && r <= 0x33FF, // kana, CJK symbols
		r >= 0x3400 && r <= 0x4DBF, // CJK extension A
		r >= 0x4E00 && r <= 0x9FFF, // CJK unified ideographs
		r >= 0xA000 && r <= 0xA4CF, // Yi
		r >= 0xAC00 && r <= 0xD7A3, // Hangul syllables
		r >= 0xF900 && r <= 0xFAFF, // CJK compatibility ideographs
		r >= 0xFE30 && r <= 0xFE4F, // CJK compatibility forms
		r >= 0xFF00 && r <= 0xFF60, // fullwidth forms
		r >= 0xFFE0 && r <= 0xFFE6,
		r >= 0x1F300 && r <= 0x1F64F, // emoji
		r >= 0x1F900 && r <= 0x1F9FF,
		r >= 0x20000 && r <= 0x3FFFD: // CJK extensions B and later
		return 2
	}
	return 1
}

// decimalList is a repeatable decimal option (see decimal).
type decimalList []int

func (l *decimalList) Set(s string) error {
	n, err := parseDecimal(s)
	if err != nil {
		return err
	}
	*l = append(*l, n)
	return nil
}

func (l *decimalList) String() string {
	s := make([]string, len(*l))
	for i, n := range *l {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ",")
}

func (l *decimalList) Type() string { return "N" }
