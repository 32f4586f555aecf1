package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
)

// runJSON runs the command in process and decodes its --json output.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := run(args, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil {
		t.Fatalf("%q: not a JSON object: %v\n%s", args, err, stdout.String())
	}
	return m
}

// mustRun runs a command in process and fails the test if it fails.
func mustRun(t *testing.T, args ...string) {
	t.Helper()
	var stderr bytes.Buffer
	if code := run(args, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 0 {
		t.Fatalf("%q: exit %d: %s", args, code, stderr.String())
	}
}

// TestStatusJSONSchema holds status --json to the schema the README
// documents, through a ceremony: "dkek_kcv" is null until it is known
// (no complete DKEK, or a Pico HSM's zeros without a verified PIN) and
// the check value once it is; user_pin.verified agrees with kcv_verified;
// the reader is named.
func TestStatusJSONSchema(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	share := filepath.Join(dir, "s1.pbe")
	mustRun(t, "create-dkek-share", share, "--password", "json-schema-Pw")

	type want struct {
		kcv      any // nil or "string"
		verified bool
		pending  float64
	}
	check := func(step string, m map[string]any, w want) {
		t.Helper()
		for _, k := range []string{"reader", "version", "options", "option_names", "initialized", "dkek_shares", "dkek_outstanding", "dkek_kcv", "kcv_verified"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %q in %v", step, k, m)
			}
		}
		if tool, _ := m["tool"].(map[string]any); tool["version"] == nil || tool["go_version"] == nil || tool["pcsc_library"] == nil {
			t.Errorf("%s: no tool version for the ceremony record: %v", step, m["tool"])
		}
		if _, ok := m["kcv"]; ok {
			t.Errorf("%s: the old name \"kcv\" is still there: the check value is \"dkek_kcv\" everywhere", step)
		}
		if r, _ := m["reader"].(string); r != dev {
			t.Errorf("%s: reader %v, want %s", step, m["reader"], dev)
		}
		switch w.kcv {
		case nil:
			if m["dkek_kcv"] != nil {
				t.Errorf("%s: dkek_kcv %v, want null", step, m["dkek_kcv"])
			}
		default:
			s, _ := m["dkek_kcv"].(string)
			if len(s) != 16 || s == "0000000000000000" {
				t.Errorf("%s: dkek_kcv %v, want the 16-digit check value", step, m["dkek_kcv"])
			}
		}
		if m["kcv_verified"] != w.verified {
			t.Errorf("%s: kcv_verified %v, want %v", step, m["kcv_verified"], w.verified)
		}
		if up, ok := m["user_pin"].(map[string]any); ok {
			if up["verified"] != m["kcv_verified"] {
				t.Errorf("%s: user_pin.verified %v disagrees with kcv_verified %v", step, up["verified"], m["kcv_verified"])
			}
		}
		if m["dkek_outstanding"] != w.pending {
			t.Errorf("%s: dkek_outstanding %v, want %v", step, m["dkek_outstanding"], w.pending)
		}
	}

	check("factory", runJSON(t, "-r", dev, "status", "--json"), want{})
	mustRun(t, "-r", dev, "initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
	check("pending", runJSON(t, "-r", dev, "status", "--json"), want{pending: 1})
	check("pending with PIN", runJSON(t, "-r", dev, "status", "--json", "--pin", "648219"), want{pending: 1, verified: true})
	mustRun(t, "-r", dev, "import-dkek-share", share, "--password", "json-schema-Pw", "--pin", "648219")
	check("complete, no PIN", runJSON(t, "-r", dev, "status", "--json"), want{})
	check("complete with PIN", runJSON(t, "-r", dev, "status", "--json", "--pin", "648219"), want{kcv: "string", verified: true})
	check("legacy bare --json --pin", runJSON(t, "-r", dev, "--json", "--pin", "648219"), want{kcv: "string", verified: true})
}

// keysNamed collects, at any depth, the object keys of v named name.
func keysNamed(v any, name string) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if k == name {
				n++
			}
			n += keysNamed(e, name)
		}
	case []any:
		for _, e := range x {
			n += keysNamed(e, name)
		}
	}
	return n
}

// TestDeviceJSONNamesReader: every --json result of a command that opens
// a device is an object that names the reader, and the DKEK check value
// is "dkek_kcv" wherever it appears; unwrap and restore give bits or
// curve as list-keys does.
func TestDeviceJSONNamesReader(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dir := t.TempDir()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	spare := "sim:" + filepath.Join(dir, "spare.json")
	share := filepath.Join(dir, "s1.pbe")
	mustRun(t, "create-dkek-share", share, "--password", "json-schema-Pw")
	for _, d := range []string{dev, spare} {
		mustRun(t, "-r", d, "initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--dkek-shares", "1")
		mustRun(t, "-r", d, "import-dkek-share", share, "--password", "json-schema-Pw", "--pin", "648219")
	}
	wrapped := filepath.Join(dir, "ec.bin")
	bk := filepath.Join(dir, "bk")
	steps := []struct {
		name string
		args []string
		list string // the key a list is put under, "" for an object
		want []string
	}{
		{"generate-key", []string{"-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "ec", "--pin", "648219", "--json"}, "", []string{"key_reference", "curve"}},
		{"generate-key rsa", []string{"-r", dev, "generate-key", "--type", "rsa:1024", "--label", "rsa", "--pin", "648219", "--json"}, "", []string{"key_reference", "bits"}},
		{"list-keys", []string{"-r", dev, "list-keys", "--json"}, "keys", nil},
		{"wrap-key", []string{"-r", dev, "wrap-key", wrapped, "--label", "ec", "--pin", "648219", "--json"}, "", []string{"dkek_kcv", "key_reference"}},
		{"unwrap-key", []string{"-r", spare, "unwrap-key", wrapped, "--pin", "648219", "--json"}, "", []string{"key_reference", "curve"}},
		{"backup", []string{"-r", dev, "backup", "--out-dir", bk, "--pin", "648219", "--json"}, "", nil},
		{"restore", []string{"-r", spare, "restore", "--from", bk, "--pin", "648219", "--json", "--allow-duplicate"}, "keys", nil},
		{"status", []string{"-r", dev, "status", "--json"}, "", []string{"dkek_kcv"}},
	}
	for _, st := range steps {
		var raw bytes.Buffer
		if code := run(st.args, strings.NewReader(""), &raw, &bytes.Buffer{}); code != 0 {
			t.Fatalf("%s: exit %d", st.name, code)
		}
		// A field named twice is invalid for many JSON readers.
		if n := strings.Count(raw.String(), `"reader":`); n != 1 {
			t.Errorf("%s: \"reader\" %d times:\n%s", st.name, n, raw.String())
		}
		var m map[string]any
		if err := json.Unmarshal(raw.Bytes(), &m); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		reader := dev
		if st.args[1] == spare {
			reader = spare
		}
		if m["reader"] != reader {
			t.Errorf("%s: reader %v, want %s", st.name, m["reader"], reader)
		}
		if st.list != "" {
			if _, ok := m[st.list].([]any); !ok {
				t.Errorf("%s: no list %q in %v", st.name, st.list, m)
			}
		}
		for _, k := range st.want {
			if keysNamed(m, k) == 0 {
				t.Errorf("%s: no %q in %v", st.name, k, m)
			}
		}
		if n := keysNamed(m, "kcv"); n > 0 {
			t.Errorf("%s: %d fields named \"kcv\": the check value is \"dkek_kcv\" everywhere", st.name, n)
		}
	}
}
