package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/backup"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

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
	case !legacy && (res.ManyDomains || res.Domain != 0):
		fmt.Fprintf(g.stdout, "Key reference %d (key domain %d) wrapped under DKEK %s and saved to %s\n", res.Ref, res.Domain, res.KCV, res.Path)
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
value compared with the device's. On a device with key domains the key
lands in the first domain whose DKEK has the backup's check value, as the
firmware picks it; the result names the domain when it is not 0. An occupied reference needs --force; even
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
	dom := ""
	if res.Domain != 0 {
		dom = fmt.Sprintf(" in key domain %d", res.Domain)
	}
	fmt.Fprintf(g.stdout, "%s key %q (ID %s) %s at key reference %d%s%s\n", res.Type, res.Label, res.ID, verb, res.Ref, dom, check)
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
		if res.ManyDomains && e.Domain != nil {
			fmt.Fprintf(w, "backed up key reference %d (%s %q) of key domain %d to %s%s\n", e.Ref, e.Type, e.Label, *e.Domain, e.File, verified)
			continue
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

On a device with key domains each key lands in the first domain whose DKEK
has the check value it was wrapped under, as the firmware picks it, and the
plan names the domain. A key that no domain can take is not restorable:
nothing is done for it, the other keys are restored, and it is reported
again on every run until its DKEK is on the device.

Exit status: 0 every key restored or already present; 1 nothing restored,
the device is unchanged (keys that are not restorable, refused or failed
without a trace, the others already present); 2 some keys restored and
others failed or are not restorable, or the run was interrupted (each
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

// printRestorePlan prints restore's plan, one line per key; on a device
// with key domains each line names the domain the key lands in.
func printRestorePlan(w io.Writer, plan []backup.KeyResult) {
	for _, r := range plan {
		if r.Action == backup.ActionNotRestorable {
			fmt.Fprintf(w, "plan: %s to key reference %d: not restorable: %s: nothing is done for it\n", r.File, r.Ref, r.Reason)
			continue
		}
		what := map[string]string{backup.ActionRestore: "restore", backup.ActionSkip: "skip", backup.ActionReplace: "replace it (--force --key-reference " + fmt.Sprint(r.Ref) + ")",
			backup.ActionRefuse: "refused: not named with --force --key-reference"}[r.Action]
		fmt.Fprintf(w, "plan: %s to key reference %d%s: %s: %s\n", r.File, r.Ref, inDomain(r), r.Reason, what)
	}
}

// inDomain is " in key domain D" for a key of a device with key domains.
func inDomain(r backup.KeyResult) string {
	if r.Domain == nil || !r.ShowDomain && *r.Domain == 0 {
		return ""
	}
	return fmt.Sprintf(" in key domain %d", *r.Domain)
}

// printRestore prints what became of each key, and a last line when the
// device held every key already.
func printRestore(w io.Writer, results []backup.KeyResult) {
	present := 0
	for _, r := range results {
		switch r.Status {
		case backup.StatusRestored:
			fmt.Fprintf(w, "restored %s to key reference %d%s (%s %q)\n", r.File, r.Result.Ref, inDomain(r), r.Result.Type, r.Result.Label)
		case backup.StatusReplaced:
			fmt.Fprintf(w, "restored %s to key reference %d%s (%s %q), replacing the key it held\n", r.File, r.Result.Ref, inDomain(r), r.Result.Type, r.Result.Label)
		case backup.StatusNotRestorable:
			fmt.Fprintf(w, "not restorable: %s (key reference %d): %s\n", r.File, r.Ref, r.Reason)
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
