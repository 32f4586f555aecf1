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
