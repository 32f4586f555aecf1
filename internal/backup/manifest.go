package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ManifestName is the manifest's file name in a backup directory.
const ManifestName = "manifest.json"

// Manifest lists the files of a whole-device backup.
type Manifest struct {
	Version int       `json:"version"`
	Created time.Time `json:"created"`
	Reader  string    `json:"reader"`
	// KCV is key domain 0's DKEK check value, "" when domain 0 has no
	// complete DKEK; each key's is in its entry.
	KCV  string  `json:"dkek_kcv"`
	Keys []Entry `json:"keys"`
	// Skipped lists the keys that were not backed up, and why.
	Skipped []Skipped `json:"skipped"`
}

// Entry is one backed-up key.
type Entry struct {
	File  string `json:"file"`
	Ref   int    `json:"key_reference"`
	Label string `json:"label"`
	ID    string `json:"id"`
	Type  string `json:"type"`
	Bits  int    `json:"bits,omitempty"`
	Curve string `json:"curve,omitempty"`
	// KCV is the check value of the DKEK the key is wrapped under: its
	// key domain's, the blob's first 8 bytes (pico-hsm cmd_key_wrap.c).
	KCV string `json:"dkek_kcv"`
	// Domain is the key domain the key belonged to. A manifest written
	// before key domains has none: its keys are all under the manifest's
	// DKEK, as if in domain 0.
	Domain *int      `json:"key_domain,omitempty"`
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
