package backup

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
)

// manifestSeed is a manifest as BackupAll writes it, with one key backed up
// and one skipped.
const manifestSeed = `{
  "version": 1,
  "created": "2026-01-02T03:04:05Z",
  "reader": "sim:a.json",
  "dkek_kcv": "440B48E7FAEBC853",
  "keys": [
    {
      "file": "key-001-k1.bin",
      "key_reference": 1,
      "label": "k1",
      "id": "01",
      "type": "RSA",
      "bits": 2048,
      "dkek_kcv": "440B48E7FAEBC853",
      "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
      "time": "2026-01-02T03:04:05.123456789+02:00",
      "verified": true
    }
  ],
  "skipped": [
    {
      "key_reference": 3,
      "label": "k3",
      "reason": "not exportable: generated without the WRAP permission"
    }
  ]
}
`

// FuzzParseManifest checks that ParseManifest never panics or changes its
// input, that every rejection has a message, that it never accepts a key
// file name that leaves the backup directory (joined to a directory, the
// name must be a file directly inside it), and that an accepted manifest
// round-trips: written as BackupAll writes it and parsed again, it writes
// the same bytes. Seeds: manifestSeed, the cases of TestParseManifest and
// testdata/fuzz/FuzzParseManifest.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(manifestSeed))
	for _, tt := range parseManifestTests {
		f.Add([]byte(tt.json))
	}
	const dir = "/backups/2026-01-02"
	f.Fuzz(func(t *testing.T, b []byte) {
		in := bytes.Clone(b)
		m, err := ParseManifest(b)
		if !bytes.Equal(in, b) {
			t.Fatal("ParseManifest modified its input")
		}
		if err != nil {
			if m != nil || err.Error() == "" {
				t.Fatalf("rejection %#v with manifest %v", err, m)
			}
			return
		}
		for _, e := range m.Keys {
			p := filepath.Join(dir, e.File)
			if filepath.Dir(p) != dir || filepath.Base(p) != e.File {
				t.Fatalf("accepted the file name %q, which names %s", e.File, p)
			}
		}
		js, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatalf("accepted a manifest that cannot be written back: %v", err)
		}
		back, err := ParseManifest(js)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", js, err)
		}
		js2, err := json.MarshalIndent(back, "", "  ")
		if err != nil || !bytes.Equal(js2, js) {
			t.Fatalf("round trip differs (%v):\n%s\n%s", err, js2, js)
		}
	})
}
