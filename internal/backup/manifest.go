package backup

import (
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
func BackupAll(conn *device.Conn, o BackupOptions) (*Manifest, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("--out-dir: %w", err)
	}
	if !o.Force {
		if err := atomicfile.CheckAbsent(filepath.Join(o.Dir, ManifestName)); err != nil {
			return nil, fmt.Errorf("%w (a backup is already in this directory)", err)
		}
	}
	m := &Manifest{Version: 1, Created: o.Now().UTC(), Reader: conn.Reader, Keys: []Entry{}, Skipped: []Skipped{}}
	var failed []string
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := Login(conn.Device, o.PIN, o.AllowLastTry); err != nil {
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
			if err := atomicfile.Write(filepath.Join(o.Dir, name), data, 0o600, o.Force); err != nil {
				failed = append(failed, fmt.Sprintf("key reference %d: %v", k.Ref, err))
				continue
			}
			sum := sha256.Sum256(data)
			e.SHA256 = fmt.Sprintf("%x", sum)
			m.Keys = append(m.Keys, e)
		}
		return nil
	})
	if err != nil {
		return nil, err
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

// ReadManifest reads and checks a backup directory's manifest.
func ReadManifest(dir string) (*Manifest, error) {
	f, err := os.Open(filepath.Join(dir, ManifestName))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 4<<20))
	if err != nil {
		return nil, err
	}
	var m Manifest
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%s: not a backup manifest: %v", filepath.Join(dir, ManifestName), err)
	}
	if m.Version != 1 {
		return nil, fmt.Errorf("%s: manifest version %d, this tool reads 1", dir, m.Version)
	}
	for _, e := range m.Keys {
		if e.File != filepath.Base(e.File) || e.File == "" || e.File == "." || e.File == ".." {
			return nil, fmt.Errorf("%s: manifest names the file %q outside the backup directory", dir, e.File)
		}
	}
	return &m, nil
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
	failed := 0
	err = conn.Transaction(func() error {
		fids, err := loginForRestore(conn, o.PIN, o.AllowLastTry, kcv)
		if err != nil {
			return err
		}
		for i, e := range m.Keys {
			results[i].File = e.File
			if err := restoreOne(conn, preps[i], fids, e.Ref, o.Force); err != nil {
				results[i].Error = err.Error()
				failed++
				continue
			}
			results[i].Result = &preps[i].res
			if fids, err = conn.ListObjects(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if failed > 0 {
		return results, fmt.Errorf("%w: %d of %d keys were not restored", ErrPartial, failed, len(m.Keys))
	}
	return results, nil
}
