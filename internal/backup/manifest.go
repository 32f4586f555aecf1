package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
)

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "manifest.json"

// Manifest lists the files of a whole-device backup.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Reader  string    `json:"reader"`
	KCV     string    `json:"dkek_kcv"`
	Keys    []Entry   `json:"keys"`
	// Skipped lists the keys that were not backed up, and why.
	Skipped []Skipped `json:"skipped"`
}

// Entry is one backed-up key.
type Entry struct {
	File   string    `json:"file"`
	Ref    int       `json:"key_reference"`
	Label  string    `json:"label"`
	ID     string    `json:"id"`
	Type   string    `json:"type"`
	Bits   int       `json:"bits,omitempty"`
	Curve  string    `json:"curve,omitempty"`
	KCV    string    `json:"dkek_kcv"`
	SHA256 string    `json:"sha256"`
	Time   time.Time `json:"time"`
	// Verified is set when the file was verified offline with the shares.
	Verified bool `json:"verified,omitempty"`
}

// Skipped is a key that was not backed up.
type Skipped struct {
	Ref    int    `json:"key_reference"`
	Label  string `json:"label"`
	Reason string `json:"reason"`
}

// BackupOptions are the inputs of BackupAll.
type BackupOptions struct {
	Dir          string
	PIN          []byte
	AllowLastTry bool
	Force        bool
	// DKEK, when set, verifies each file offline as it is written.
	DKEK []byte
	Now  func() time.Time
}

// FileName is a backup file's name people can read: the key reference and
// the label, e.g. "key-001-k1.bin".
func FileName(ref int, label string) string {
	l := unsafeChars.ReplaceAllString(label, "_")
	l = strings.Trim(l, "._-")
	if len(l) > 40 {
		l = l[:40]
	}
	if l == "" {
		return fmt.Sprintf("key-%03d.bin", ref)
	}
	return fmt.Sprintf("key-%03d-%s.bin", ref, l)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// ErrPartial is returned with a result when some keys failed.
var ErrPartial = errors.New("some keys failed")

// BackupAll wraps every exportable key of the device in one session, one
// file per key, and writes manifest.json last. Keys that cannot be
// exported are listed as skipped. Every file, the manifest included, is
// written atomically with mode 0600 and never over an existing one without
// Force.
//
// Nothing is written until the device has answered everything, so that an
// interrupted session (card removed, pcscd gone) leaves the directory as it
// was. A key the device fails to wrap makes a partial backup (ErrPartial)
// in a new directory, but never replaces an earlier backup: with Force
// over one, the earlier backup stays whole and nothing is written.
func BackupAll(conn *device.Conn, o BackupOptions) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	_, statErr := os.Stat(o.Dir)
	created := errors.Is(statErr, os.ErrNotExist)
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("--out-dir: %w", err)
	}
	manifestPath := filepath.Join(o.Dir, ManifestName)
	if !o.Force {
		if err := atomicfile.CheckAbsent(manifestPath); err != nil {
			return nil, fmt.Errorf("%w (a backup is already in this directory)", err)
		}
	}
	_, statErr = os.Lstat(manifestPath)
	earlier := statErr == nil
	// untouched says that the directory is as it was, and removes it if
	// this run created it.
	untouched := func() string {
		if created {
			os.Remove(o.Dir)
		}
		if earlier {
			return fmt.Sprintf("nothing was written: the earlier backup in %s is unchanged", o.Dir)
		}
		return fmt.Sprintf("nothing was written to %s", o.Dir)
	}
	m := &Manifest{Version: 1, Created: o.Now().UTC(), Reader: conn.Reader, Keys: []Entry{}, Skipped: []Skipped{}}
	var failed []string
	type file struct {
		name string
		data []byte
		e    Entry
	}
	var files []file
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
			return err
		}
		st, err := conn.DKEKStatus()
		if err != nil {
			return err
		}
		if !st.Complete() {
			return fmt.Errorf("cannot back up: the device has no complete DKEK (%d shares, %d outstanding)", st.Shares, st.Outstanding)
		}
		m.KCV = st.KCVHex()
		keys, err := keystore.List(conn.Device)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if !k.Exportable {
				m.Skipped = append(m.Skipped, Skipped{Ref: k.Ref, Label: k.Label, Reason: "not exportable: generated without the WRAP permission"})
				continue
			}
			f, err := Export(conn.Device, byte(k.Ref))
			if device.Interrupted(err) {
				// The session is gone: no later key can be wrapped.
				return fmt.Errorf("key reference %d: %w", k.Ref, err)
			}
			if err != nil {
				failed = append(failed, fmt.Sprintf("key reference %d: %v", k.Ref, err))
				continue
			}
			data := f.Marshal()
			name := FileName(k.Ref, k.Label)
			e := Entry{File: name, Ref: k.Ref, Label: k.Label, ID: k.ID, Type: k.Type, Bits: k.Bits, Curve: k.Curve, KCV: m.KCV, Time: o.Now().UTC()}
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
		untouched()
		return nil, err
	}
	if len(failed) > 0 && earlier {
		return nil, fmt.Errorf("%s; %s: run the backup again, or back up into an empty directory to keep the keys that worked", strings.Join(failed, "; "), untouched())
	}
	for _, f := range files {
		if err := atomicfile.Write(filepath.Join(o.Dir, f.name), f.data, 0o600, o.Force); err != nil {
			failed = append(failed, fmt.Sprintf("key reference %d: %v", f.e.Ref, err))
			continue
		}
		sum := sha256.Sum256(f.data)
		f.e.SHA256 = fmt.Sprintf("%x", sum)
		m.Keys = append(m.Keys, f.e)
	}
	js, _ := json.MarshalIndent(m, "", "  ")
	if err := atomicfile.Write(filepath.Join(o.Dir, ManifestName), append(js, '\n'), 0o600, o.Force); err != nil {
		return m, err
	}
	if len(failed) > 0 {
		return m, fmt.Errorf("%w: %s", ErrPartial, strings.Join(failed, "; "))
	}
	return m, nil
}

// ReadManifest reads and checks a backup directory's manifest (see
// ParseManifest).
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest))
	if err != nil {
		return nil, err
	}
	m, err := ParseManifest(b)
	if err != nil {
		var me *manifestError
		if errors.As(err, &me) && me.syntax {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return m, nil
}

// maxManifest bounds what ReadManifest reads of a manifest.
const maxManifest = 4 << 20

// manifestError is an error of ParseManifest; syntax marks a manifest that
// is not JSON of the expected shape, which ReadManifest reports with the
// file's path rather than the directory's.
type manifestError struct {
	msg    string
	syntax bool
}

func (e *manifestError) Error() string { return e.msg }

// ParseManifest decodes and checks the contents of a manifest.json: JSON
// with no unknown fields, version 1, and key file names that stay inside
// the backup directory (validFileName).
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, &manifestError{msg: fmt.Sprintf("not a backup manifest: %v", err), syntax: true}
	}
	if m.Version != 1 {
		return nil, &manifestError{msg: fmt.Sprintf("manifest version %d, this tool reads 1", m.Version)}
	}
	for _, e := range m.Keys {
		if !validFileName(e.File) {
			return nil, &manifestError{msg: fmt.Sprintf("manifest names the file %q outside the backup directory", e.File)}
		}
	}
	return &m, nil
}

// validFileName reports whether name is a plain file name that, joined to
// the backup directory, names a file directly inside it: not empty, not .
// or .., and without a path separator of any system (/ and \) or a NUL.
// FileName only makes names of [A-Za-z0-9._-].
func validFileName(name string) bool {
	return name != "" && name != "." && name != ".." &&
		!strings.ContainsAny(name, "/\\\x00") && name == filepath.Base(name)
}

// KeyResult is one key of RestoreAll.
type KeyResult struct {
	File   string         `json:"file"`
	Result *RestoreResult `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
}

// RestoreAllOptions are the inputs of RestoreAll.
type RestoreAllOptions struct {
	Dir          string
	PIN          []byte
	AllowLastTry bool
	// Force replaces keys at occupied references; each restore keeps the
	// old key if it fails, as Restore does.
	Force bool
}

// RestoreAll restores every key of a backup directory into the key
// references the manifest records, in one session, with Restore's safety
// rules. Every file is checked against its SHA-256 before the device is
// touched. It reports per key and returns ErrPartial if any failed.
func RestoreAll(conn *device.Conn, o RestoreAllOptions) ([]KeyResult, error) {
	m, err := ReadManifest(o.Dir)
	if err != nil {
		return nil, err
	}
	if len(m.Keys) == 0 {
		return nil, fmt.Errorf("%s: the backup holds no key", o.Dir)
	}
	preps := make([]*prepared, len(m.Keys))
	var kcv [8]byte
	for i, e := range m.Keys {
		path := filepath.Join(o.Dir, e.File)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
		}
		if sum := sha256.Sum256(b); fmt.Sprintf("%x", sum) != e.SHA256 {
			return nil, fmt.Errorf("%s: its SHA-256 differs from the manifest's: the file was changed or damaged; nothing was restored", path)
		}
		if preps[i], err = prepare(b, path); err != nil {
			return nil, err
		}
		if i == 0 {
			kcv = preps[i].bl.KCV
		} else if preps[i].bl.KCV != kcv {
			return nil, fmt.Errorf("%s: made under DKEK %X, the other files under %X: nothing was restored", path, preps[i].bl.KCV, kcv)
		}
	}
	results := make([]KeyResult, len(m.Keys))
	for i, e := range m.Keys {
		results[i].File = e.File
	}
	failed, restored := 0, 0
	stoppedAt := -1
	err = conn.Transaction(func() error {
		fids, err := loginForRestore(conn, o.PIN, o.AllowLastTry, kcv)
		if err != nil {
			return nothingRestored(err)
		}
		for i, e := range m.Keys {
			if err := restoreOne(conn, preps[i], fids, e.Ref, o.Force); err != nil {
				results[i].Error = err.Error()
				failed++
				if device.Interrupted(err) {
					// The session is gone: no later key can be restored now.
					stoppedAt = i
					for j := i + 1; j < len(m.Keys); j++ {
						results[j].Error = "not restored: the restore was interrupted before this key"
						failed++
					}
					return nil
				}
				continue
			}
			results[i].Result = &preps[i].res
			restored++
			// The key file exists now; the list need not be read again
			// (reading it could fail after the key was restored, and the
			// run would then hide what it did).
			fids = append(fids, hsm.KeyFID(hsm.PrefixKey, byte(preps[i].res.Ref)))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if stoppedAt >= 0 {
		msg := fmt.Sprintf("%d of %d keys were not restored: the restore was interrupted at %s (its state and how to finish it are above)", failed, len(m.Keys), m.Keys[stoppedAt].File)
		if stoppedAt+1 < len(m.Keys) {
			msg += "; then run the same restore again for the keys after it"
			if restored > 0 && !o.Force {
				msg += " (those already restored are then reported as in use)"
			}
		}
		return results, fmt.Errorf("%w: %s", ErrPartial, msg)
	}
	if failed > 0 {
		return results, fmt.Errorf("%w: %d of %d keys were not restored", ErrPartial, failed, len(m.Keys))
	}
	return results, nil
}
