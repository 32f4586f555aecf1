package backup

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// parseManifestTests are the cases of TestParseManifest; they also seed
// FuzzParseManifest.
var parseManifestTests = []struct {
	name string
	json string
	// err is a part of the error message; "" means accepted.
	err string
}{
	{"minimal", `{"version":1}`, ""},
	{"one key", `{"version":1,"keys":[{"file":"key-001-k1.bin","key_reference":1,"sha256":"00"}]}`, ""},
	{"dotted name", `{"version":1,"keys":[{"file":"...bin"}]}`, ""},
	{"empty", ``, "not a backup manifest: EOF"},
	{"not JSON", `key-001.bin`, "not a backup manifest"},
	{"array", `[1]`, "not a backup manifest"},
	{"unknown field", `{"version":1,"extra":true}`, `unknown field "extra"`},
	{"wrong type", `{"version":"1"}`, "not a backup manifest"},
	{"bad time", `{"version":1,"created":"yesterday"}`, "not a backup manifest"},
	{"version 0", `{}`, "manifest version 0, this tool reads 1"},
	{"version 2", `{"version":2}`, "manifest version 2, this tool reads 1"},
	{"empty name", `{"version":1,"keys":[{"file":""}]}`, `names the file "" outside the backup directory`},
	{"dot", `{"version":1,"keys":[{"file":"."}]}`, `names the file "."`},
	{"dot dot", `{"version":1,"keys":[{"file":".."}]}`, `names the file ".."`},
	{"parent", `{"version":1,"keys":[{"file":"../key-001.bin"}]}`, `names the file "../key-001.bin"`},
	{"absolute", `{"version":1,"keys":[{"file":"/etc/passwd"}]}`, `names the file "/etc/passwd"`},
	{"subdirectory", `{"version":1,"keys":[{"file":"a/key-001.bin"}]}`, `names the file "a/key-001.bin"`},
	{"trailing slash", `{"version":1,"keys":[{"file":"key-001.bin/"}]}`, `names the file "key-001.bin/"`},
	// Found by FuzzParseManifest: filepath.Base("/") is "/", so the old
	// check let the root through; joined to the directory it names the
	// directory itself.
	{"root", `{"version":1,"keys":[{"file":"/"}]}`, `names the file "/"`},
	{"slashes", `{"version":1,"keys":[{"file":"//"}]}`, `names the file "//"`},
	{"backslash", `{"version":1,"keys":[{"file":"..\\key-001.bin"}]}`, `names the file "..\\key-001.bin"`},
	{"NUL", `{"version":1,"keys":[{"file":"key\u0000.bin"}]}`, `names the file "key\x00.bin"`},
	{"second key bad", `{"version":1,"keys":[{"file":"a.bin"},{"file":"../b.bin"}]}`, `names the file "../b.bin"`},
}

func TestParseManifest(t *testing.T) {
	for _, tt := range parseManifestTests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(tt.json))
			if tt.err == "" {
				if err != nil || m == nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil || m != nil {
				t.Fatalf("accepted: %+v", m)
			}
			if !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %q does not contain %q", err, tt.err)
			}
		})
	}
}

// TestReadManifest checks that ReadManifest names the manifest file in
// syntax errors and the directory in the others, as before ParseManifest.
func TestReadManifest(t *testing.T) {
	tests := []struct {
		name, json, want string
	}{
		{"ok", manifestSeed, ""},
		{"syntax", `{`, "{path}: not a backup manifest: unexpected EOF"},
		{"version", `{"version":3}`, "{dir}: manifest version 3, this tool reads 1"},
		{"escape", `{"version":1,"keys":[{"file":"../x"}]}`, `{dir}: manifest names the file "../x" outside the backup directory`},
		{"missing", "", "{dir}: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, ManifestName)
			if tt.name != "missing" {
				if err := os.WriteFile(path, []byte(tt.json), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			m, err := ReadManifest(dir)
			if tt.want == "" {
				if err != nil || len(m.Keys) != 1 || m.Keys[0].File != "key-001-k1.bin" {
					t.Fatalf("%+v %v", m, err)
				}
				return
			}
			want := strings.NewReplacer("{path}", path, "{dir}", dir).Replace(tt.want)
			if err == nil || err.Error() != want {
				t.Fatalf("error %v, want %s", err, want)
			}
		})
	}
}
