package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/backup"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
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
would make --label and --id ambiguous.`,
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
			k, err := keystore.Generate(conn, s)
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "key", k)
			}
			fmt.Fprintf(g.stdout, "Generated %s at key reference %d, label %q, ID %s\n", k.Describe(), k.Ref, k.Label, k.ID)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&keyType, "type", "t", "", "key type and size or curve: rsa:2048, ec:secp256r1, aes:256")
	fl.StringVar(&s.Label, "label", "", "the key's label")
	fl.StringVar(&id, "id", "", "the key's ID, hex (default: the key reference)")
	decimalVar(fl, &s.Ref, "key-reference", "i", -1, "key reference from 1 to 255 (default: the lowest free one)")
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
They often differ: commands accept --key-reference, --label or --id.`,
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
				// Without a DKEK no key is exportable, whatever its
				// algorithm list says (pico-hsm cmd_key_wrap.c).
				noDKEK, err = keystore.NoDKEK(conn.Device)
				if err != nil && !device.Interrupted(err) {
					noDKEK, err = false, nil // not known: the algorithm lists decide
				}
				return err
			})
			if err != nil {
				return err
			}
			if noDKEK {
				for i := range keys {
					keys[i].Exportable = false
				}
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "keys", keys)
			}
			if len(keys) == 0 {
				fmt.Fprintln(g.stdout, "No keys")
				return nil
			}
			printKeyTable(g.stdout, keys)
			if noDKEK {
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
func printKeyTable(w io.Writer, keys []keystore.Key) {
	const labelMax = 32
	rows := [][]string{{"Ref", "Key", "Label", "ID", "Export", "Certificate"}}
	for _, k := range keys {
		exp := "no"
		if k.Exportable {
			exp = "yes"
		}
		cert := k.Certificate
		if cert == "" {
			cert = "-"
		}
		rows = append(rows, []string{fmt.Sprint(k.Ref), k.Describe(), truncateText(k.Label, labelMax), k.ID, exp, cert})
	}
	widths := []int{4, 22, 16, 10, 6, 0}
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

func newWrapKeyCmd(g *globals) *cobra.Command {
	var k keyFlags
	var p pinFlags
	var force, asJSON bool
	cmd := &cobra.Command{
		Use:   "wrap-key FILE",
		Short: "Export a key encrypted under the DKEK to FILE, as sc-hsm-tool --wrap-key does",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runWrapKey(g, args[0], &k, p, force, asJSON, false)
		},
	}
	k.register(cmd)
	p.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace FILE if it exists")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// runWrapKey is wrap-key; legacy prints what sc-hsm-tool --wrap-key
// prints on success: nothing.
func runWrapKey(g *globals, path string, k *keyFlags, p pinFlags, force, asJSON, legacy bool) error {
	if path == "-" {
		return errors.New("wrap-key -: '-' is not a file name here: a wrapped key is a binary file and does not go to standard output; give the file to write, e.g. signing.bin")
	}
	spec, err := k.spec()
	if err != nil {
		return err
	}
	conn, pin, done, err := g.openWithPIN(p.pin)
	if err != nil {
		return err
	}
	defer done()
	res, err := backup.WrapToFile(conn, backup.WrapOptions{Key: spec, PIN: pin, AllowLastTry: p.lastTry, Path: path, Force: force})
	if err != nil {
		return err
	}
	switch {
	case asJSON:
		return writeDeviceJSON(g, conn.Reader, "result", res)
	case !legacy:
		fmt.Fprintf(g.stdout, "Key reference %d wrapped under DKEK %s and saved to %s\n", res.Ref, res.KCV, res.Path)
	}
	return nil
}

func newUnwrapKeyCmd(g *globals) *cobra.Command {
	var ref int
	var p pinFlags
	var force, asJSON, allowDup bool
	cmd := &cobra.Command{
		Use:   "unwrap-key FILE",
		Short: "Restore a key from a wrapped-key FILE into the device, losing nothing",
		Long: `Restore a key wrapped by wrap-key or sc-hsm-tool --wrap-key. Without
--key-reference the lowest free reference is taken.

Before the device changes, the file is checked, and the backup's DKEK check
value compared with the device's. An occupied reference needs --force; even
then the old key is only replaced when the new one unwraps, unlike
sc-hsm-tool, which deletes it first. The restored key is read back and
compared with the backup's public key. A key whose label or ID another key
has is refused unless --allow-duplicate: it would make --label and --id
ambiguous.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return unwrapKey(g, args[0], ref, p, unwrapOptions{force: force, asJSON: asJSON, allowDuplicate: allowDup})
		},
	}
	decimalVar(cmd.Flags(), &ref, "key-reference", "i", -1, "key reference to restore into (default: the lowest free one)")
	p.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace the key at --key-reference (only if the new one unwraps)")
	cmd.Flags().BoolVar(&allowDup, "allow-duplicate", false, "restore the key even if another key has its label or ID (it makes --label and --id ambiguous)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

// unwrapOptions are unwrap-key's switches.
type unwrapOptions struct {
	force, asJSON, allowDuplicate bool
	// legacy prints sc-hsm-tool --unwrap-key's lines.
	legacy bool
}

// runUnwrapKey is unwrap-key; legacy prints sc-hsm-tool --unwrap-key's
// lines (sc-hsm-tool.c unwrap_key; transcripts/workflow-output.txt) and,
// as sc-hsm-tool, restores a key whose label or ID another key has
// (pico-hsm's tests/scripts/backup.sh unwraps a copy of a key next to the
// original).
func runUnwrapKey(g *globals, path string, ref int, p pinFlags, force, asJSON, legacy bool) error {
	return unwrapKey(g, path, ref, p, unwrapOptions{force: force, asJSON: asJSON, legacy: legacy, allowDuplicate: legacy})
}

func unwrapKey(g *globals, path string, ref int, p pinFlags, o unwrapOptions) error {
	data, err := readLimited(path, 1<<20)
	if err != nil {
		return err
	}
	if backup.IsShareFile(data) {
		return fmt.Errorf("%s: %w: give a file that wrap-key, backup or sc-hsm-tool --wrap-key wrote", path, backup.ErrShareFile)
	}
	conn, pin, done, err := g.openWithPIN(p.pin)
	if err != nil {
		return err
	}
	defer done()
	res, err := backup.Restore(conn, backup.RestoreOptions{File: data, Name: path, Ref: ref, Force: o.force, AllowDuplicate: o.allowDuplicate, PIN: pin, AllowLastTry: p.lastTry})
	if err != nil {
		return err
	}
	if o.asJSON {
		return writeDeviceJSON(g, conn.Reader, "result", res)
	}
	if o.legacy {
		fmt.Fprintln(g.stdout, "Wrapped key contains:\n  Key blob")
		if res.HasPRKD {
			fmt.Fprintln(g.stdout, "  Private Key Description (PRKD)")
		}
		if res.HasCert {
			fmt.Fprintln(g.stdout, "  Certificate")
		}
		fmt.Fprintln(g.stdout, "Key successfully imported")
		return nil
	}
	verb := "restored"
	if res.Replace {
		verb = "restored, replacing the old key,"
	}
	check := ""
	if res.Verified {
		check = "; its public key matches the backup"
	}
	fmt.Fprintf(g.stdout, "%s key %q (ID %s) %s at key reference %d%s\n", res.Type, res.Label, res.ID, verb, res.Ref, check)
	return nil
}

func readLimited(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than any backup (%d bytes at most): give a file that wrap-key, backup or sc-hsm-tool --wrap-key wrote", path, max)
	}
	return b, nil
}

// dkekFlags give the DKEK for offline checks: its share files and their
// passwords or password shares.
type dkekFlags struct {
	files []string
	imp   importFlags
}

func (d *dkekFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&d.files, "dkek-share", nil, "a DKEK share file (.pbe); repeat for each share")
	fl.StringArrayVar(&d.imp.passwords, "password", nil, "password of the next --dkek-share (or env:VAR, file:PATH, -); repeat for each")
	decimalVar(fl, &d.imp.nofm.total, "pwd-shares-total", "", 0, "an n-of-m share's password: number of custodians")
	fl.StringArrayVar(&d.imp.nofm.files, "pwd-shares-file", nil, "an n-of-m share's password shares")
	fl.StringArrayVar(&d.imp.nofm.shares, "pwd-share", nil, "one password share PRIME/ID/VALUE")
}

// dkek decrypts the shares and returns the DKEK (their XOR), or nil when
// no share was given.
func (g *globals) dkek(d *dkekFlags) ([]byte, error) {
	if len(d.files) == 0 {
		return nil, nil
	}
	shares, err := g.decryptAll(d.files, &d.imp)
	defer func() {
		for _, s := range shares {
			secret.Wipe(s)
		}
	}()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 32)
	for _, s := range shares {
		for i := range out {
			out[i] ^= s[i]
		}
	}
	return out, nil
}

func newInspectCmd(g *globals) *cobra.Command {
	var d dkekFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Describe a wrapped-key file; with the DKEK shares, prove it restorable (no device)",
		Long: `Describe a wrapped-key file: key type and size or curve, DKEK check value,
allowed algorithms, label, ID, and the certificate or CV request holder.

With --dkek-share files (and their passwords) it also checks the check value,
verifies the CMAC and decrypts the key in memory to check its structure, then
wipes it: a backup job can prove its backups restorable without a device.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readLimited(args[0], 1<<20)
			if err != nil {
				return err
			}
			if backup.IsShareFile(data) {
				return fmt.Errorf("%s: %w: 'pico-hsm-tool dkek-share inspect %s' describes it", args[0], backup.ErrShareFile, args[0])
			}
			dkek, err := g.dkek(&d)
			if err != nil {
				return err
			}
			defer secret.Wipe(dkek)
			r, err := backup.Inspect(data, dkek)
			if errors.Is(err, wrap.ErrWrongDKEK) && r != nil {
				return fmt.Errorf("%s: %w: give the --dkek-share files (and passwords) of the DKEK %s it was made under", args[0], err, r.KCV)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if asJSON {
				return writeJSON(g, r)
			}
			fmt.Fprint(g.stdout, r.Text())
			return nil
		},
	}
	d.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newBackupCmd(g *globals) *cobra.Command {
	var dir string
	var p pinFlags
	var force, asJSON, verify bool
	var d dkekFlags
	cmd := &cobra.Command{
		Use:   "backup --out-dir DIR",
		Short: "Wrap every exportable key into DIR, one file per key, with manifest.json",
		Long: `Wrap every exportable key of the device in one session: one file per key
(key-NNN-LABEL.bin, sc-hsm-tool's format) and a manifest.json with each key's
reference, label, ID, type and size, the DKEK check value, the file's SHA-256
and the time. With --verify and the DKEK shares, each file is proven
restorable offline as it is written.

Nothing is written until the device has answered for every key, and two
backups never mix: the backup is written into a new directory beside DIR,
which takes DIR's name once it is complete. An earlier backup in DIR needs
--force, and is then kept whole as DIR.~1~ (or the next free DIR.~N~). A
directory that holds other files is refused.

Exit status: 0 all keys backed up (keys that are not exportable are listed as
skipped); 1 nothing written; 2 some keys failed and the others were written
(only into a directory without an earlier backup).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("--out-dir is required: give the directory the backup goes to (it is created if missing)")
			}
			if dir == "-" {
				return errors.New("--out-dir -: a backup is a directory of files and cannot go to standard output: give a directory (it is created if missing)")
			}
			if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
				return fmt.Errorf("--out-dir %s: not a directory: give a directory for the backup (it is created if missing)", dir)
			}
			var dkek []byte
			if verify {
				var err error
				if dkek, err = g.dkek(&d); err != nil {
					return err
				}
				if dkek == nil {
					return errors.New("--verify needs the DKEK: give --dkek-share FILE and --password for each share")
				}
				defer secret.Wipe(dkek)
			}
			conn, pin, done, err := g.openWithPIN(p.pin)
			if err != nil {
				return err
			}
			defer done()
			res, err := backup.BackupAll(conn, backup.BackupOptions{Dir: dir, PIN: pin, AllowLastTry: p.lastTry, Force: force, DKEK: dkek})
			if res != nil {
				if asJSON {
					writeDeviceJSON(g, conn.Reader, "backup", res)
				} else {
					printBackup(g.stdout, dir, res)
				}
				if res.KeptAs != "" {
					fmt.Fprintf(g.stderr, "pico-hsm-tool: the earlier backup in %s was kept as %s\n", dir, res.KeptAs)
				}
			}
			if errors.Is(err, backup.ErrPartial) {
				return &exitError{code: exitPartial, err: err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "out-dir", "", "directory for the backup (created if missing)")
	p.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace an earlier backup in DIR, keeping it as DIR.~N~")
	cmd.Flags().BoolVar(&verify, "verify", false, "verify each file offline with the DKEK shares")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the manifest as JSON")
	d.register(cmd)
	return cmd
}

// printBackup prints a backup's result: a line per key, and a last line
// when no key was backed up.
func printBackup(w io.Writer, dir string, res *backup.BackupResult) {
	for _, e := range res.Keys {
		verified := ""
		if e.Verified {
			verified = "; verified: KCV, CMAC and key structure check out"
		}
		fmt.Fprintf(w, "backed up key reference %d (%s %q) to %s%s\n", e.Ref, e.Type, e.Label, e.File, verified)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped key reference %d (%q): %s\n", s.Ref, s.Label, s.Reason)
	}
	switch {
	case len(res.Keys) > 0:
	case len(res.Skipped) == 0:
		fmt.Fprintf(w, "Nothing to back up: the device holds no keys (%s records that)\n", filepath.Join(dir, backup.ManifestName))
	default:
		fmt.Fprintf(w, "Nothing was backed up: no key on the device is exportable (%s records that)\n", filepath.Join(dir, backup.ManifestName))
	}
}

func newRestoreCmd(g *globals) *cobra.Command {
	var dir string
	var p pinFlags
	var refs decimalList
	var force, asJSON, allowDup bool
	cmd := &cobra.Command{
		Use:   "restore --from DIR",
		Short: "Restore every key of a backup directory into a device with the same DKEK",
		Long: `Restore every key listed in DIR/manifest.json into the key reference it came
from, with unwrap-key's safety rules. It can be run again: every file is
checked against its SHA-256, then every key reference is checked before the
device changes, and the plan printed:

  the reference is free           the key is restored
  it holds the backup's key       the key is skipped (same public key)
  it holds another key            nothing is restored, unless the reference
                                  is named with --force --key-reference N
                                  (repeat it for each): the backup's key
                                  replaces that key, only if it unwraps

AES keys have no public key to compare: a reference that holds one is
treated as holding another key. A key whose label or ID another key has is
refused unless --allow-duplicate.

Exit status: 0 every key restored or already present; 1 nothing restored;
2 some keys restored and others failed, or the run was interrupted (each
key's state is reported).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return errors.New("--from is required: give the backup directory, the --out-dir of backup")
			}
			if force && len(refs) == 0 {
				return errors.New("--force replaces only the keys you name: add --key-reference N for each key reference to replace (run restore without --force to see which hold other keys)")
			}
			if len(refs) > 0 && !force {
				return fmt.Errorf("--key-reference %d names a key to replace: add --force to replace it", refs[0])
			}
			if _, err := os.Stat(dir); err != nil {
				return fmt.Errorf("--from %s: %w: give the backup directory, the --out-dir of backup", dir, errors.Unwrap(err))
			}
			if _, err := os.Stat(filepath.Join(dir, backup.ManifestName)); errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("--from %s: no %s in it: give the backup directory, the --out-dir of backup", dir, backup.ManifestName)
			}
			conn, pin, done, err := g.openWithPIN(p.pin)
			if err != nil {
				return err
			}
			defer done()
			o := backup.RestoreAllOptions{Dir: dir, PIN: pin, AllowLastTry: p.lastTry, Replace: refs, AllowDuplicate: allowDup}
			if !asJSON {
				o.OnPlan = func(plan []backup.KeyResult) { printRestorePlan(g.stdout, plan) }
			}
			results, err := backup.RestoreAll(conn, o)
			var dup *keystore.DuplicateError
			refused := errors.Is(err, backup.ErrOtherKeys) || errors.As(err, &dup)
			switch {
			case results == nil:
			case asJSON:
				writeDeviceJSON(g, conn.Reader, "keys", results)
			case !refused: // a refused plan was printed, and nothing happened
				printRestore(g.stdout, results)
			}
			if errors.Is(err, backup.ErrPartial) {
				return &exitError{code: exitPartial, err: err}
			}
			return err
		},
	}
	cmd.Flags().StringVar(&dir, "from", "", "backup directory (with manifest.json)")
	p.register(cmd)
	cmd.Flags().BoolVarP(&force, "force", "f", false, "replace the keys at the key references named with --key-reference (each only if the new one unwraps)")
	cmd.Flags().VarP(&refs, "key-reference", "i", "with --force: a key reference of the backup whose key on the device is replaced; repeat for each")
	cmd.Flags().BoolVar(&allowDup, "allow-duplicate", false, "restore keys even if other keys have their labels or IDs (it makes --label and --id ambiguous)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the plan and results as JSON")
	return cmd
}

// printRestorePlan prints restore's plan, one line per key.
func printRestorePlan(w io.Writer, plan []backup.KeyResult) {
	for _, r := range plan {
		what := map[string]string{backup.ActionRestore: "restore", backup.ActionSkip: "skip", backup.ActionReplace: "replace it (--force --key-reference " + fmt.Sprint(r.Ref) + ")",
			backup.ActionRefuse: "refused: not named with --force --key-reference"}[r.Action]
		fmt.Fprintf(w, "plan: %s to key reference %d: %s: %s\n", r.File, r.Ref, r.Reason, what)
	}
}

// printRestore prints what became of each key, and a last line when the
// device held every key already.
func printRestore(w io.Writer, results []backup.KeyResult) {
	present := 0
	for _, r := range results {
		switch r.Status {
		case backup.StatusRestored:
			fmt.Fprintf(w, "restored %s to key reference %d (%s %q)\n", r.File, r.Result.Ref, r.Result.Type, r.Result.Label)
		case backup.StatusReplaced:
			fmt.Fprintf(w, "restored %s to key reference %d (%s %q), replacing the key it held\n", r.File, r.Result.Ref, r.Result.Type, r.Result.Label)
		case backup.StatusPresent:
			fmt.Fprintf(w, "already present: %s at key reference %d (%s %q)\n", r.File, r.Ref, r.Result.Type, r.Result.Label)
			present++
		default:
			if r.Error != "" {
				fmt.Fprintf(w, "FAILED %s: %s\n", r.File, r.Error)
			}
		}
	}
	if present == len(results) {
		fmt.Fprintf(w, "Every key of the backup is on the device already: nothing to restore\n")
	}
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
