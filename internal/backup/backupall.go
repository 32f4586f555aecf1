package backup

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// ErrPartial is returned with a result when some keys failed.
var ErrPartial = errors.New("some keys failed")

// BackupResult is what BackupAll wrote: the manifest, and where the
// earlier backup in the directory went.
type BackupResult struct {
	*Manifest
	// KeptAs is the name the earlier backup in the directory was moved to
	// (DIR.~N~), or "".
	KeptAs string `json:"earlier_backup_kept_as,omitempty"`
	// ManyDomains tells that the device has key domains beyond domain 0,
	// as far as the backup read them, or that a key is in one.
	ManyDomains bool `json:"-"`
}

// BackupAll wraps every exportable key of the device in one session, one
// file per key, with manifest.json. Keys that cannot be exported are
// listed as skipped.
//
// Two backups never mix: the files are written (atomically, mode 0600)
// into a new directory beside o.Dir, which takes o.Dir's name only once it
// is complete. An earlier backup there is refused without Force, and with
// Force kept whole as DIR.~N~ (atomicfile.MoveAside). A directory that
// holds other files is refused.
//
// Nothing is written until the device has answered everything, so that an
// interrupted session (card removed, pcscd gone) leaves the directory as it
// was. A key the device fails to wrap makes a partial backup (ErrPartial)
// in a new directory, but never replaces an earlier backup: with Force
// over one, the earlier backup stays and nothing is written.
//
// The session takes 5 + 3N APDUs for N keys: SELECT, the PIN's tries left,
// VERIFY, the DKEK status of key domain 0 and LIST KEYS, then for each key
// its description and certificate (keystore.ListFrom, without the key
// file's FCP) and WRAP KEY, whose answer also tells a key that is not
// exportable (6985). The files are built from what the listing read, as
// sc-hsm-tool.c wrap_key builds one from the same three.
//
// Each key's manifest entry records the check value its blob starts with
// and its key domain: the one whose DKEK has that check value. When
// domain 0 is complete and every blob has its check value, no other
// domain is read and every key is recorded in domain 0 (a key of another
// domain with the same DKEK as domain 0 is recorded in domain 0, where
// UNWRAP KEY puts it back anyway). Otherwise every domain is read (up to
// 16 APDUs), and a key whose check value several domains share, or whose
// domain cannot wrap (WRAP KEY answers 6A88 while its DKEK waits for
// shares), costs a SELECT of its key file for the domain in its FCP. A
// key whose domain cannot wrap is listed as skipped, naming the domain.
func BackupAll(conn *device.Conn, o BackupOptions) (*BackupResult, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	t, err := checkTarget(o.Dir, o.Force)
	if err != nil {
		return nil, err
	}
	// untouched says that the directory is as it was.
	untouched := func() string {
		if t.earlier {
			return fmt.Sprintf("nothing was written: the earlier backup in %s is unchanged", o.Dir)
		}
		return fmt.Sprintf("nothing was written to %s", o.Dir)
	}
	// The directory the backup is written into is made first: a place
	// that cannot be written fails before the device is touched.
	tmp, err := t.makeTemp()
	if err != nil {
		return nil, err
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
			t.removeCreated()
		}
	}()
	m := &Manifest{Version: 1, Created: o.Now().UTC(), Reader: conn.Reader, Keys: []Entry{}, Skipped: []Skipped{}}
	var failed []string
	type file struct {
		name string
		data []byte
		e    Entry
	}
	var files []file
	var kd *backupDomains
	err = conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
			return err
		}
		kd, err = readBackupDomains(conn)
		if err != nil {
			return err
		}
		m.KCV = kd.zeroKCV
		fids, err := conn.ListObjects()
		if err != nil {
			return err
		}
		keys, err := keystore.ListFrom(conn.Device, fids, keystore.ReadPRKD|keystore.ReadCert)
		if err != nil {
			return err
		}
		for _, k := range keys {
			blob, err := wrapBlob(conn.Device, byte(k.Ref))
			if errors.Is(err, hsm.ErrNotExportable) {
				m.Skipped = append(m.Skipped, Skipped{Ref: k.Ref, Label: k.Label, Reason: "not exportable: generated without the WRAP permission"})
				continue
			}
			if errors.Is(err, hsm.ErrDKEKIncomplete) {
				// 6A88: the key's domain has no complete DKEK (pico-hsm
				// cmd_key_wrap.c).
				why, err := kd.whyIncomplete(conn, k.Ref)
				if err != nil {
					return err
				}
				m.Skipped = append(m.Skipped, Skipped{Ref: k.Ref, Label: k.Label, Reason: why})
				continue
			}
			if device.Interrupted(err) {
				// The session is gone: no later key can be wrapped.
				return fmt.Errorf("key reference %d: %w", k.Ref, err)
			}
			if err != nil {
				failed = append(failed, fmt.Sprintf("key reference %d: %v", k.Ref, err))
				continue
			}
			kcv := [8]byte(blob[:8])
			dom, err := kd.domainOf(conn, k.Ref, kcv)
			if err != nil {
				return err
			}
			data := (&wrap.File{Blob: blob, PRKD: k.PRKD, Cert: k.Cert}).Marshal()
			name := FileName(k.Ref, k.Label)
			e := Entry{File: name, Ref: k.Ref, Label: k.Label, ID: k.ID, Type: k.Type, Bits: k.Bits, Curve: k.Curve, KCV: fmt.Sprintf("%X", kcv), Domain: &dom, Time: o.Now().UTC()}
			if o.DKEK != nil {
				if _, err := Inspect(data, o.DKEK); err != nil {
					failed = append(failed, fmt.Sprintf("key reference %d: the backup does not verify: %v", k.Ref, err))
					continue
				}
				e.Verified = true
			}
			files = append(files, file{name, data, e})
		}
		return nil
	})
	if err != nil {
		if device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; %s%s", err, untouched(), device.Again(err))
		}
		return nil, err
	}
	if len(failed) > 0 && t.earlier {
		return nil, fmt.Errorf("%s; %s: run the backup again, or back up into an empty directory to keep the keys that worked", strings.Join(failed, "; "), untouched())
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(tmp, f.name), f.data, 0o600, false); err != nil {
			return nil, t.inTarget(err, tmp)
		}
		sum := sha256.Sum256(f.data)
		f.e.SHA256 = fmt.Sprintf("%x", sum)
		m.Keys = append(m.Keys, f.e)
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.Write(filepath.Join(tmp, ManifestName), append(js, '\n'), 0o600, false); err != nil {
		return nil, t.inTarget(err, tmp)
	}
	res := &BackupResult{Manifest: m, ManyDomains: kd.many()}
	if res.KeptAs, err = t.swapIn(tmp); err != nil {
		return nil, err
	}
	keep = true
	if len(failed) > 0 {
		return res, fmt.Errorf("%w: %s", ErrPartial, strings.Join(failed, "; "))
	}
	return res, nil
}

// target is a backup's directory, checked before the device is touched.
type target struct {
	dir string
	// exists: dir is there, an empty directory or (earlier) one that holds
	// a backup.
	exists, earlier bool
	// created are the parent directories makeTemp made, deepest last.
	created []string
}

// checkTarget checks the backup's directory before the device is touched:
// "-" and files are refused, and so is a directory that holds other files
// than a backup, which the backup would otherwise mix with its own or move
// aside; an earlier backup needs force.
func checkTarget(dir string, force bool) (*target, error) {
	if dir == "-" {
		return nil, errors.New("--out-dir -: a backup is a directory of files and cannot go to standard output: give a directory (it is created if missing)")
	}
	t := &target{dir: dir}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("--out-dir %s: %w", dir, errors.Unwrap(err))
	case !fi.IsDir():
		return nil, fmt.Errorf("--out-dir %s: not a directory: give a directory for the backup (it is created if missing)", dir)
	}
	t.exists = true
	manifest := filepath.Join(dir, ManifestName)
	if _, err := os.Lstat(manifest); err == nil {
		t.earlier = true
		if !force {
			return nil, fmt.Errorf("%w (a backup is already in this directory)", atomicfile.CheckAbsent(manifest))
		}
		return t, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--out-dir %s: %w", dir, errors.Unwrap(err))
	}
	if len(ents) > 0 {
		return nil, fmt.Errorf("--out-dir %s: holds files but no backup (no %s): give a new or empty directory, so that the backup is not mixed with other files", dir, ManifestName)
	}
	return t, nil
}

// makeTemp makes the directory the backup is written into: beside the
// target, in the same file system, so that a rename gives it the target's
// name. Missing parent directories are made (and removed again if the
// backup fails).
func (t *target) makeTemp() (string, error) {
	parent := filepath.Dir(filepath.Clean(t.dir))
	var missing []string
	for p := parent; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || p == filepath.Dir(p) {
			break
		}
		missing = append([]string{p}, missing...)
	}
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", fmt.Errorf("cannot write %s: %w; nothing was written", t.dir, atomicfile.UnwrapPath(err))
	}
	t.created = missing
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(t.dir))+".tmp-")
	if err != nil {
		t.removeCreated()
		return "", fmt.Errorf("cannot write %s: %w; nothing was written", t.dir, atomicfile.UnwrapPath(err))
	}
	return tmp, nil
}

// removeCreated removes the parent directories makeTemp made, if empty.
func (t *target) removeCreated() {
	for i := len(t.created) - 1; i >= 0; i-- {
		os.Remove(t.created[i])
	}
	t.created = nil
}

// inTarget is a failed write into the temporary directory tmp, told with
// the target's name, which is what the person knows.
func (t *target) inTarget(err error, tmp string) error {
	msg := strings.ReplaceAll(err.Error(), tmp, t.dir)
	if t.earlier {
		msg += fmt.Sprintf("; the earlier backup in %s is unchanged", t.dir)
	}
	return &msgError{msg, []error{err}}
}

// swapIn gives the complete backup in tmp the target's name: an earlier
// backup is first moved aside to DIR.~N~, whose name it returns, and an
// empty directory removed.
func (t *target) swapIn(tmp string) (string, error) {
	var aside string
	switch {
	case t.earlier:
		var err error
		if aside, err = atomicfile.MoveAside(t.dir); err != nil {
			return "", fmt.Errorf("%w: nothing was written: the earlier backup in %s is unchanged", err, t.dir)
		}
	case t.exists:
		if err := os.Remove(t.dir); err != nil {
			return "", fmt.Errorf("--out-dir %s: %w: nothing was written", t.dir, atomicfile.UnwrapPath(err))
		}
	}
	// The name is free now; a directory another process made in between
	// is not replaced (rename refuses a directory that is not empty).
	if _, err := os.Lstat(t.dir); err == nil {
		return "", fmt.Errorf("--out-dir %s: appeared during the backup: nothing was written there%s", t.dir, keptAt(aside))
	}
	if err := os.Rename(tmp, t.dir); err != nil {
		if aside != "" && os.Rename(aside, t.dir) == nil {
			aside = ""
		}
		return "", fmt.Errorf("cannot write %s: %w; nothing was written%s", t.dir, atomicfile.UnwrapPath(err), keptAt(aside))
	}
	if d, err := os.Open(filepath.Dir(filepath.Clean(t.dir))); err == nil {
		d.Sync()
		d.Close()
	}
	return aside, nil
}

func keptAt(aside string) string {
	if aside == "" {
		return ""
	}
	return fmt.Sprintf(" (the earlier backup is in %s)", aside)
}

// backupDomains are the key domains BackupAll reads: domain 0 first, and
// the others only when a key needs them.
type backupDomains struct {
	zero    hsm.DKEKStatus
	zeroKCV string // domain 0's check value, "" unless it is complete
	doms    *keystore.Domains
	// other: a key is in a domain other than 0.
	other bool
}

// readBackupDomains reads key domain 0 and, unless its DKEK is complete,
// every domain. A device without key domains whose DKEK is missing or
// incomplete is refused as before key domains; so is a device with key
// domains none of which has a complete DKEK.
func readBackupDomains(conn *device.Conn) (*backupDomains, error) {
	kd := &backupDomains{}
	st, err := conn.DomainStatus(0)
	switch {
	case err == nil:
		kd.zero = st
		if st.Complete() {
			kd.zeroKCV = st.KCVHex()
			return kd, nil
		}
	case errors.Is(err, hsm.ErrDomainNotSetUp):
	default:
		return nil, err
	}
	if err := kd.readAll(conn); err != nil {
		return nil, err
	}
	if !kd.doms.Many() {
		if st.Shares == 0 {
			return nil, fmt.Errorf("cannot back up: %w", ErrNoDKEK)
		}
		return nil, fmt.Errorf("cannot back up: the device has no complete DKEK (%d shares, %d outstanding)", st.Shares, st.Outstanding)
	}
	for _, d := range kd.doms.List {
		if d.SetUp && d.Status.Complete() {
			return kd, nil
		}
	}
	return nil, fmt.Errorf("cannot back up: no key domain of the device has a complete DKEK (%s): import the remaining shares of a key domain first", keystore.DescribeDomains(kd.doms.List))
}

func (kd *backupDomains) readAll(conn *device.Conn) error {
	if kd.doms != nil {
		return nil
	}
	list, err := conn.KeyDomains()
	if err != nil {
		return err
	}
	kd.doms = &keystore.Domains{List: list, All: true}
	return nil
}

func (kd *backupDomains) many() bool { return kd.other || (kd.doms != nil && kd.doms.Many()) }

// domainOf is the key domain of key ref, whose blob starts with kcv.
func (kd *backupDomains) domainOf(conn *device.Conn, ref int, kcv [8]byte) (int, error) {
	if kd.zeroKCV != "" && kd.zero.KCV == kcv && kd.doms == nil {
		return 0, nil
	}
	if err := kd.readAll(conn); err != nil {
		return 0, err
	}
	var match []int
	for _, d := range kd.doms.List {
		if d.SetUp && d.Status.Complete() && d.Status.KCV == kcv {
			match = append(match, d.Domain)
		}
	}
	dom := 0
	if len(match) == 1 {
		dom = match[0]
	} else {
		fi, err := conn.SelectFile(hsm.KeyFID(hsm.PrefixKey, byte(ref)))
		if err != nil {
			return 0, fmt.Errorf("key reference %d: %w", ref, err)
		}
		dom = fi.KeyDomain()
	}
	kd.other = kd.other || dom != 0
	return dom, nil
}

// whyIncomplete says why key ref's domain cannot wrap it: the domain in
// its key file's FCP is not set up, or waits for shares.
func (kd *backupDomains) whyIncomplete(conn *device.Conn, ref int) (string, error) {
	fi, err := conn.SelectFile(hsm.KeyFID(hsm.PrefixKey, byte(ref)))
	if err != nil {
		return "", fmt.Errorf("key reference %d: %w", ref, err)
	}
	dom := fi.KeyDomain()
	kd.other = kd.other || dom != 0
	st, err := conn.DomainStatus(dom)
	switch {
	case errors.Is(err, hsm.ErrDomainNotSetUp):
		return fmt.Sprintf("cannot be wrapped now: its key domain %d is not set up and has no DKEK", dom), nil
	case err != nil:
		return "", err
	case st.Shares == 0:
		return fmt.Sprintf("cannot be wrapped now: its key domain %d has no DKEK", dom), nil
	}
	return fmt.Sprintf("cannot be wrapped now: its key domain %d's DKEK is incomplete (%d of %d shares imported): import the remaining shares of key domain %d, then back up again",
		dom, st.Shares-st.Outstanding, st.Shares, dom), nil
}
