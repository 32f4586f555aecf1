package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// Proof is a wrapped-key file offered as proof that a key is backed up
// before it is deleted. internal/backup builds it (backup.ReadProof), so
// that the file is read and its public key compared exactly as a restore
// does.
type Proof struct {
	// Name is the file's name as given, for messages.
	Name string
	// Type is the blob's key type: "RSA", "RSA-CRT", "EC" or "AES".
	Type string
	// KCV is the check value of the DKEK the blob was made under.
	KCV [8]byte
	// SameKey reports whether a public key is the backup's; nil when the
	// file carries no CV request or certificate to compare with.
	SameKey func(*cvc.PublicKey) bool
	// Verified tells that the DKEK was given and the blob's CMAC and key
	// structure check out (backup.Inspect).
	Verified bool
}

// Errors of Delete, matched with errors.Is.
var (
	// ErrNoProof is an exportable key with no backup offered.
	ErrNoProof = errors.New("no proof of a backup")
	// ErrNotProven is a backup that is not one of this key under this
	// device's DKEK.
	ErrNotProven = errors.New("the backup does not prove this key")
	// ErrCannotBackUp is a key that cannot leave the device at all.
	ErrCannotBackUp = errors.New("the key cannot be backed up")
	// ErrNeedYes is a delete without a terminal to ask on and without --yes.
	ErrNeedYes = errors.New("no terminal to ask on")
	// ErrAborted is a "no" at the terminal.
	ErrAborted = errors.New("aborted: nothing was deleted")
)

// DeleteOptions are the inputs of Delete.
type DeleteOptions struct {
	Key          Spec
	PIN          []byte
	AllowLastTry bool
	// Backup is the proof of a backup, nil when none was given.
	Backup *Proof
	// NoBackupCheck deletes without a proof.
	NoBackupCheck bool
	// Confirm shows the key and asks; nil means that Yes was given (the
	// caller refuses to go on without a terminal and without --yes).
	Confirm func(Key) (bool, error)
}

// DeleteResult tells what Delete removed.
type DeleteResult struct {
	Key
	// BackupVerified tells that a backup was proven: same public key, same
	// DKEK, and with the DKEK shares, its CMAC and key structure too.
	BackupVerified bool `json:"backup_verified"`
	// CMACVerified tells that the DKEK shares were given and the backup's
	// CMAC verified.
	CMACVerified bool `json:"backup_cmac_verified"`
	// Deleted lists the files removed, as hex FIDs in the order deleted.
	Deleted []string `json:"deleted_files"`
	deleted []uint16
}

// CheckBackup decides whether key k may be deleted: exportable tells
// whether it can leave the device (its algorithm list allows WRAP and the
// device has a DKEK); deviceKCV is the device's DKEK check value, read
// after login. It returns whether a backup was proven. The rules:
//
//   - with noCheck, anything goes, and nothing is proven;
//   - a key that cannot be exported cannot have a backup: deleting it
//     destroys it for good, so it needs noCheck explicitly, even with a
//     backup file;
//   - an exportable key needs p, whose DKEK is the device's and whose
//     public key is the key's (as a restore compares them). An AES key, or
//     a key whose CV request is gone, has no public key on the device, so
//     no file can prove it is this key's backup.
func CheckBackup(k Key, exportable bool, deviceKCV [8]byte, p *Proof, noCheck bool) (bool, error) {
	if noCheck {
		return false, nil
	}
	if !exportable {
		why := "its algorithm list lacks WRAP (it was made with --no-export)"
		if k.Exportable {
			why = "the device has no DKEK (it was initialized without --dkek-shares)"
		}
		return false, fmt.Errorf("%w: key reference %d can never leave the device, since %s, so no backup of it exists: deleting it destroys it for good; add --no-backup-check to delete it anyway", ErrCannotBackUp, k.Ref, why)
	}
	if p == nil {
		return false, fmt.Errorf("%w: key reference %d is exportable, so back it up first (wrap-key FILE --key-reference %d) and give --backup FILE, or add --no-backup-check to delete it without a backup", ErrNoProof, k.Ref, k.Ref)
	}
	if p.KCV != deviceKCV {
		return false, fmt.Errorf("%s: %w: it was made under DKEK %X, the device has %X; nothing was deleted", p.Name, ErrNotProven, p.KCV, deviceKCV)
	}
	if want := strings.TrimSuffix(p.Type, "-CRT"); k.Type != "unknown" && want != k.Type {
		return false, fmt.Errorf("%s: %w: it holds an %s key, key reference %d is %s; nothing was deleted", p.Name, ErrNotProven, want, k.Ref, k.Describe())
	}
	if k.PublicKey == nil {
		return false, fmt.Errorf("%s: %w: key reference %d has no public key on the device to compare with (AES keys never have one), so no file can prove it is this key's backup; check the backup yourself (inspect FILE --dkek-share …) and add --no-backup-check", p.Name, ErrNotProven, k.Ref)
	}
	if p.SameKey == nil {
		return false, fmt.Errorf("%s: %w: it carries no CV request or certificate, so its public key cannot be compared with the key's; give a backup made by wrap-key or backup", p.Name, ErrNotProven)
	}
	if !p.SameKey(k.PublicKey) {
		return false, fmt.Errorf("%s: %w: it is the backup of another key (its public key differs from key reference %d's); nothing was deleted", p.Name, ErrNotProven, k.Ref)
	}
	return true, nil
}

// deleteOrder is the order in which Delete removes a key's files: the
// key file CCxx last. The firmware deletes one file per DELETE FILE (pico-hsm
// cmd_delete_file.c; OpenSC card-sc-hsm.c sc_hsm_delete_file sends
// 00 E4 02 00 with the FID) and nothing ties the three together, so a
// failure in between leaves some of them. With the key last:
//
//   - the description C4xx goes first: OpenSC's emulation lists keys by
//     their descriptions (pkcs15-sc-hsm.c), so no PKCS#11 application
//     picks up a key that is being deleted;
//   - then the certificate or CV request CExx;
//   - the key CCxx, the only irreversible step, goes last, when nothing
//     else can fail. A failure before it leaves the key whole on the
//     device, still listed by list-keys and usable by its reference;
//     its description and certificate come back from the backup
//     (unwrap-key --force). Deleting the key first would instead leave,
//     after a failure, a description that OpenSC shows as a key that no
//     longer exists, and that list-keys does not show.
var deleteOrder = []byte{hsm.PrefixPRKD, hsm.PrefixEECert, hsm.PrefixKey}

// Delete deletes the key o names, with its PKCS#15 description and its
// certificate, after the PIN, the backup check (CheckBackup) and the
// confirmation, all in one transaction: the question is asked inside it,
// as initialize asks before it wipes, so that no other program can put
// another key at the reference between what is shown and what is deleted.
// A failure halfway says what is left on the device and the command that
// finishes the deletion.
func Delete(conn *device.Conn, o DeleteOptions) (*DeleteResult, error) {
	var res *DeleteResult
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
			return err
		}
		fids, err := conn.ListObjects()
		if err != nil {
			return err
		}
		// The descriptions name every key (one READ BINARY each); only
		// the key to delete is read in full.
		keys, err := ListFrom(conn.Device, fids, ReadPRKD)
		if err != nil {
			return err
		}
		k, err := Resolve(keys, o.Key)
		if err != nil {
			return err
		}
		if k, err = Read(conn.Device, byte(k.Ref)); err != nil {
			return err
		}
		// The DKEK that backs the key up is its key domain's (pico-hsm
		// cmd_key_wrap.c); a domain slot that is not set up has none.
		st, err := conn.DomainStatus(k.Domain)
		if errors.Is(err, hsm.ErrDomainNotSetUp) {
			st, err = hsm.DKEKStatus{}, nil
		}
		if err != nil {
			return err
		}
		if !o.NoBackupCheck && st.Shares > 0 && st.Outstanding > 0 && k.Exportable {
			// The check value of a DKEK that waits for shares is not the
			// one any backup was made under.
			whose := "the device's DKEK is"
			if k.Domain != 0 {
				whose = fmt.Sprintf("the DKEK of key domain %d, the key's, is", k.Domain)
			}
			return fmt.Errorf("%s incomplete (%d of %d shares imported), so no backup can be compared with it: import the remaining shares first, or add --no-backup-check; nothing was deleted", whose, st.Shares-st.Outstanding, st.Shares)
		}
		exportable := k.Exportable && st.Shares > 0
		res = &DeleteResult{Key: k}
		res.Exportable = exportable
		if res.BackupVerified, err = CheckBackup(k, exportable, st.KCV, o.Backup, o.NoBackupCheck); err != nil {
			return err
		}
		res.CMACVerified = res.BackupVerified && o.Backup.Verified
		if o.Confirm != nil {
			ok, err := o.Confirm(k)
			if err != nil {
				return err
			}
			if !ok {
				return ErrAborted
			}
		}
		present := map[uint16]bool{}
		for _, f := range fids {
			present[f] = true
		}
		// LIST KEYS names key files and descriptions but never
		// certificates (see ListFrom): the certificate is deleted when it
		// was read, or tried anyway and its absence (6A82) taken as done.
		var todo []uint16
		for _, p := range deleteOrder {
			if fid := hsm.KeyFID(p, byte(k.Ref)); present[fid] || p == hsm.PrefixEECert {
				todo = append(todo, fid)
			}
		}
		for i, fid := range todo {
			err := conn.DeleteFile(fid)
			if err != nil && byte(fid>>8) == hsm.PrefixEECert && len(k.Cert) == 0 && apdu.IsStatus(err, apdu.SWFileNotFound) {
				continue
			}
			if err != nil {
				return halfway(conn, k, res.deleted, todo[i:], err, o.NoBackupCheck || o.Backup == nil)
			}
			res.deleted = append(res.deleted, fid)
			res.Deleted = append(res.Deleted, fmt.Sprintf("%04X", fid))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// halfway explains a DELETE FILE that failed: done were deleted, left
// were not, and the first of left may or may not be, unless the device
// refused it.
func halfway(conn *device.Conn, k Key, done, left []uint16, err error, noCheck bool) error {
	var state string
	switch {
	case len(done) == 0 && device.Refused(err):
		return fmt.Errorf("%w; nothing was deleted", err)
	case device.Refused(err):
		state = "left: " + fileNames(left)
	default:
		state = "left: " + fileNames(left[1:])
		if len(left) > 1 {
			state += ", and perhaps "
		} else {
			state = "left: perhaps "
		}
		state += fileNames(left[:1])
	}
	if len(done) > 0 {
		state = "deleted: " + fileNames(done) + "; " + state
	}
	// The key file goes last, so it is still there unless it was the
	// file in flight; its description or certificate may be gone, so
	// --key-reference is the name that still finds it, and the public key
	// a backup is compared with may be gone too: the backup was proven
	// before anything was deleted.
	finish := conn.Suggest(fmt.Sprintf("delete-key --key-reference %d --no-backup-check --yes", k.Ref))
	if left[0]>>8 == uint16(hsm.PrefixKey) && !device.Refused(err) {
		return fmt.Errorf("%w; key reference %d is partly deleted (%s): run list-keys; if it still shows key reference %d, finish with '%s'", err, k.Ref, state, k.Ref, finish)
	}
	proven := "the backup was checked before anything was deleted"
	if noCheck {
		proven = "no backup was checked"
	}
	return fmt.Errorf("%w; key reference %d is partly deleted (%s): the key itself is still on the device; finish with '%s' (%s)", err, k.Ref, state, finish, proven)
}

// fileNames names key files: "description C401, certificate CE01".
func fileNames(fids []uint16) string {
	s := make([]string, len(fids))
	for i, f := range fids {
		what := map[byte]string{hsm.PrefixKey: "key", hsm.PrefixPRKD: "description", hsm.PrefixEECert: "certificate"}[byte(f>>8)]
		s[i] = fmt.Sprintf("%s %04X", what, f)
	}
	return strings.Join(s, ", ")
}
