package main

import (
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/backup"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keyimport"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
)

func newImportKeyCmd(g *globals) *cobra.Command {
	var d dkekFlags
	var kf keyFileFlags
	var p pinFlags
	var keyPath, label, id, backupFile string
	var ref, domain int
	var noExport, allowDup, asJSON, force, noCheck bool
	cmd := &cobra.Command{
		Use:   "import-key --key FILE --dkek-share F... --pin PIN",
		Short: "Import a software key into the device through the DKEK, and prove it is there and works",
		Long: `Import a software private key into the device: it is sealed in memory under
the DKEK that the share files make, sent with UNWRAP KEY, and checked.

` + keyFileHelp + `

Before the device changes, the key file is read, the DKEK check value of the
shares compared with the device's, the key reference checked (the lowest
free one, or --key-reference N) and the label and ID
compared with the other keys' (a duplicate is refused unless
--allow-duplicate). After UNWRAP KEY, the public key the device shows for
the key is compared with the software key's, and the device signs a random
digest that the software key verifies (RSA and EC; AES keys have nothing to
compare). Then the key's certificate, if any, replaces the CV request in
EF CExx, and only then is the PKCS#15 description written, so that
pkcs15-tool -D and pkcs11-tool -O list the key, and its certificate, under
its label and ID.

A --key-reference that holds this very key (same public key) is left as it
is and the import succeeds with nothing done, so it can run twice. One that
holds another key is refused; --force replaces that key, for good, and
only against a proof of its backup, as delete-key asks: --backup FILE, a
wrapped-key file of that key under its domain's DKEK (or --no-backup-check).

On a device with key domains the key lands in the domain whose DKEK the
shares make (UNWRAP KEY picks the first domain with that check value);
--key-domain D insists on domain D and refuses, before the device changes,
shares that make another domain's DKEK.

The label defaults to the PKCS#12 friendly name or the key file's name
without its extension, the ID to
OpenSC's ID for the key pair (the SHA-1 of the RSA modulus or of the EC
point; 01 for AES). With --no-export the key can never leave the device:
WRAP is left out of its allowed algorithms. The DKEK, the key and the PIN
exist only in memory and are wiped after use; the software key file is left
as it was: destroy it or lock it away.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case keyPath == "":
				return errors.New("--key is required: give the software private key file to import")
			case len(d.files) == 0:
				return errors.New("--dkek-share is required: the key goes into the device under the DKEK that its share files make")
			}
			idBytes, err := optionalKeyID(id)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("key-reference") {
				ref = -1
			}
			switch {
			case force && ref < 0:
				return errors.New("--force replaces the key at the --key-reference it names: add --key-reference N")
			case !force && (backupFile != "" || noCheck):
				return errors.New("--backup and --no-backup-check go with --force, which replaces the key at --key-reference: add --force, or leave them out")
			case noCheck && backupFile != "":
				return fmt.Errorf("--backup %s and --no-backup-check contradict each other: give one", backupFile)
			}
			var proof []byte
			if backupFile != "" {
				var err error
				if proof, err = readLimited(backupFile, 1<<20); err != nil {
					return err
				}
			}
			if !cmd.Flags().Changed("key-domain") {
				domain = -1
			} else if domain > 15 {
				return fmt.Errorf("--key-domain must be from 0 to 15, not %d (status lists the device's key domains)", domain)
			}
			kf.passwordGiven = cmd.Flags().Changed("key-password")
			key, dkek, wipe, err := g.softwareKey(keyPath, &kf, &d)
			defer wipe()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("label") {
				label = keyLabel(key, keyPath)
			}
			var backupProof *keystore.Proof
			if proof != nil {
				// The backup's CMAC is verified when it was made under the
				// DKEK the shares make; otherwise it is checked like any
				// proof delete-key takes without shares.
				var pk []byte
				if bk, err := backup.BlobKCV(proof); err == nil && bk == hsm.KCV(dkek) {
					pk = dkek
				}
				if backupProof, err = backup.ReadProof(proof, backupFile, pk); err != nil {
					return err
				}
			}
			conn, pin, done, err := g.openWithPIN(p.pin)
			if err != nil {
				return err
			}
			defer done()
			res, err := keyimport.Import(conn, key, dkek, keyimport.ImportOptions{Name: keyPath, Label: label, ID: idBytes, Ref: ref,
				NoExport: noExport, AllowDuplicate: allowDup, PIN: pin, AllowLastTry: p.lastTry, Rand: rand.Reader, Domain: domain,
				Replace: force, Backup: backupProof, NoBackupCheck: noCheck})
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "result", res)
			}
			if res.AlreadyPresent {
				fmt.Fprintf(g.stdout, "Key reference %d already holds this key (label %q, ID %s): nothing was imported\n", res.Ref, res.Label, res.ID)
				fmt.Fprintf(g.stdout, "%s: destroy it or lock it away, the device copy is now the one to protect\n", stillHolds(key, keyPath))
				return nil
			}
			if res.Replaced != "" {
				how := "without a backup check (--no-backup-check)"
				if res.BackupVerified {
					how = fmt.Sprintf("its backup %s was proven: same public key and DKEK", backupFile)
				}
				fmt.Fprintf(g.stdout, "Replaced key reference %d (%s); %s\n", res.Ref, res.Replaced, how)
			}
			check := "AES key: no public key or signature to check"
			if res.SignatureVerified {
				check = "its public key matches the software key's and a test signature by the device verifies with it"
			}
			where := fmt.Sprintf("key reference %d", res.Ref)
			if res.Domain != 0 || res.DomainsOnDevice {
				where += fmt.Sprintf(" in key domain %d", res.Domain)
			}
			fmt.Fprintf(g.stdout, "Imported %s from %s at %s, label %q, ID %s; %s\n", res.Key, keyPath, where, res.Label, res.ID, check)
			if res.Certificate != "" {
				fmt.Fprintf(g.stdout, "Stored its certificate %s (issued by %s) in place of the device's CV request\n", res.Certificate, res.CertificateIssuer)
			}
			otherCerts(g, key, keyPath)
			fmt.Fprintf(g.stdout, "%s: destroy it or lock it away, the device copy is now the one to protect\n", stillHolds(key, keyPath))
			return nil
		},
	}
	d.register(cmd)
	kf.register(cmd)
	p.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&keyPath, "key", "", "the software private key file (PEM, DER, PKCS#12, raw or hex AES)")
	decimalVar(fl, &ref, "key-reference", "i", -1, "key reference from 1 to 255, which must be free (default: the lowest free one)")
	fl.StringVar(&label, "label", "", "the key's label (default: the PKCS#12 friendly name, else the key file's name without extension)")
	fl.StringVar(&id, "id", "", "the key's ID in hex (default: OpenSC's ID for the key pair)")
	decimalVar(fl, &domain, "key-domain", "", -1, "the key domain from 0 to 15 the key must land in (default: the one whose DKEK the shares make)")
	fl.BoolVar(&force, "force", false, "replace the key at --key-reference N, against a proof of its backup (--backup or --no-backup-check)")
	fl.StringVar(&backupFile, "backup", "", "with --force: a wrapped-key file of the key being replaced, proving it has a backup")
	fl.BoolVar(&noCheck, "no-backup-check", false, "with --force: replace the key without a proof of its backup")
	fl.BoolVar(&noExport, "no-export", false, "the key can never leave the device: leave WRAP out of its allowed algorithms")
	fl.BoolVar(&allowDup, "allow-duplicate", false, "import the key even if another key has its label or ID (it makes --label and --id ambiguous)")
	fl.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}
