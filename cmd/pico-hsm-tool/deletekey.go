package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/backup"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

func newDeleteKeyCmd(g *globals) *cobra.Command {
	var k keyFlags
	var p pinFlags
	var d dkekFlags
	var backupFile string
	var noCheck, yes, asJSON bool
	cmd := &cobra.Command{
		Use:   "delete-key",
		Short: "Delete a key, its description and its certificate, only against a proven backup",
		Long: `Delete the key named by --key-reference, --label or --id: its key file
(CCxx), its PKCS#15 description (C4xx) and its certificate or CV request
(CExx). The key reference is free afterwards.

An exportable key is deleted only against a proof of its backup: --backup FILE
names a wrapped-key file (wrap-key, backup, sc-hsm-tool --wrap-key) whose
public key is the key's and whose DKEK check value is the device's. With
--dkek-share files (and passwords) the backup's CMAC and key structure are
verified too, so a damaged or altered backup is refused. A key that cannot be
exported has no backup: deleting it destroys it for good, and needs
--no-backup-check. --no-backup-check deletes any key without a proof.

On a terminal the key is shown and you are asked to type 'yes'; without a
terminal --yes is required.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := k.spec()
			if err != nil {
				return err
			}
			if noCheck && backupFile != "" {
				return fmt.Errorf("--backup %s and --no-backup-check contradict each other: give one", backupFile)
			}
			if len(d.files) > 0 && backupFile == "" {
				return fmt.Errorf("--dkek-share verifies the backup that --backup names: add --backup FILE")
			}
			var t secret.Terminal
			if !yes {
				if t, err = g.secrets().TTY(); err != nil {
					return fmt.Errorf("%w: delete-key destroys a key, so it asks first; add --yes to delete without asking", keystore.ErrNeedYes)
				}
				defer t.Close()
			}
			o := keystore.DeleteOptions{Key: spec, NoBackupCheck: noCheck, AllowLastTry: p.lastTry}
			if backupFile != "" {
				data, err := readLimited(backupFile, 1<<20)
				if err != nil {
					return err
				}
				dkek, err := g.dkek(&d)
				if err != nil {
					return err
				}
				defer secret.Wipe(dkek)
				if o.Backup, err = backup.ReadProof(data, backupFile, dkek); err != nil {
					return err
				}
			}
			conn, pin, done, err := g.openWithPIN(p.pin)
			if err != nil {
				return err
			}
			defer done()
			o.PIN = pin
			if t != nil {
				o.Confirm = func(k keystore.Key) (bool, error) {
					fmt.Fprintf(t, "Key reference %d: %s, label %q, ID %s, in %s\nDeleting it destroys the key for good. Type 'yes' to delete it: ", k.Ref, k.Describe(), k.Label, k.ID, conn.Reader)
					ans, err := t.ReadLine()
					return strings.TrimSpace(ans) == "yes", err
				}
			}
			res, err := keystore.Delete(conn, o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "result", res)
			}
			proof := "without a backup check"
			switch {
			case res.CMACVerified:
				proof = "; its backup " + backupFile + " was proven: same public key and DKEK, CMAC and key structure verified"
			case res.BackupVerified:
				proof = "; its backup " + backupFile + " was proven: same public key and DKEK"
			default:
				proof = " " + proof
			}
			fmt.Fprintf(g.stdout, "Deleted key reference %d (%s %q, ID %s)%s\n", res.Ref, res.Describe(), res.Label, res.ID, proof)
			return nil
		},
	}
	k.register(cmd)
	p.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&backupFile, "backup", "", "a wrapped-key file of this key, as proof that it is backed up")
	fl.BoolVar(&noCheck, "no-backup-check", false, "delete without proof of a backup (a key that cannot be exported is destroyed for good)")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask (required without a terminal)")
	fl.BoolVar(&asJSON, "json", false, "print the deleted key as JSON")
	d.register(cmd)
	return cmd
}
