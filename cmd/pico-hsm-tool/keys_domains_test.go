package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// runAll runs the tool and returns its exit code, stdout and stderr.
func runAll(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// domainsDevice makes a simulated device with 4 key domains: domain 0 for
// one share, imported from a share file; domain 1 for one share, imported;
// domain 2 for two shares, one imported; domain 3 free. Domains 1 and 2
// are set up through the API key-domain create and import-dkek-share
// --key-domain call. It returns the reader spec and domain 1's real check
// value.
func domainsDevice(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	dev := "sim:" + filepath.Join(dir, "dev.json")
	share := filepath.Join(dir, "s.pbe")
	mustRun(t, "create-dkek-share", share, "--password", "keys-domains-Pw")
	mustRun(t, "-r", dev, "initialize", "--so-pin", "3537363231383830", "--pin", "648219", "--key-domains", "4", "--dkek-shares", "1")
	mustRun(t, "-r", dev, "import-dkek-share", share, "--password", "keys-domains-Pw", "--pin", "648219")
	conn, err := device.Open(device.Options{Reader: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Login([]byte("648219"), false); err != nil {
		t.Fatal(err)
	}
	raw := func(n string) []byte { s := sha256.Sum256([]byte("keys-domains-" + n)); return s[:] }
	must := func(st hsm.DKEKStatus, err error) hsm.DKEKStatus {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	must(conn.CreateKeyDomain(1, 1))
	kcv1 := must(conn.ImportDKEKShareInto(1, raw("1"))).KCVHex()
	must(conn.CreateKeyDomain(2, 2))
	must(conn.ImportDKEKShareInto(2, raw("2a")))
	// VERIFY commits the new DKEKs (VECTORS.txt section 7).
	if err := conn.VerifyPIN(hsm.UserPIN, []byte("648219")); err != nil {
		t.Fatal(err)
	}
	if kcv1 == "0000000000000000" {
		t.Fatal("domain 1's check value read as zeros with the PIN verified")
	}
	return dev, kcv1
}

// keyDomainOnDevice reads the key domain of key ref from its key file's
// FCP (metadata tag 92), as the firmware keeps it.
func keyDomainOnDevice(t *testing.T, dev string, ref byte) int {
	t.Helper()
	conn, err := device.Open(device.Options{Reader: dev})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fi, err := conn.SelectFile(hsm.KeyFID(hsm.PrefixKey, ref))
	if err != nil {
		t.Fatal(err)
	}
	return fi.KeyDomain()
}

// TestGenerateInKeyDomain: --key-domain D sends tag 92 01 D and the key
// lands in D (its FCP says so); a domain waiting for shares gets a
// warning; a free slot and a slot the device does not have are refused
// before any GENERATE and before the PIN is tried; keys without the flag
// stay in domain 0, without the tag.
func TestGenerateInKeyDomain(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dev, _ := domainsDevice(t)

	code, out, errs := runAll("-v", "-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "d1", "--key-domain", "1", "--pin", "648219")
	if code != 0 {
		t.Fatalf("generate in domain 1: exit %d\n%s", code, errs)
	}
	if want := "Generated EC secp256r1 at key reference 1, label \"d1\", ID 01, key domain 1\n"; out != want {
		t.Errorf("stdout %q, want %q", out, want)
	}
	if !regexp.MustCompile(`(?m)^> GENERATE ASYMMETRIC KEY PAIR.*(\n  .*)*92 01 01 00 00$`).MatchString(errs) {
		t.Errorf("the GENERATE data does not end with 92 01 01:\n%s", errs)
	}
	if strings.Contains(errs, "warning") {
		t.Errorf("a warning for a complete domain:\n%s", errs)
	}
	if d := keyDomainOnDevice(t, dev, 1); d != 1 {
		t.Errorf("key 1 is in domain %d, want 1", d)
	}

	// A domain still waiting for a share: a warning, the key is made.
	code, out, errs = runAll("-r", dev, "generate-key", "--type", "aes:128", "--label", "d2", "--key-domain", "2", "--pin", "648219", "--json")
	if code != 0 {
		t.Fatalf("generate in domain 2: exit %d\n%s", code, errs)
	}
	if !strings.Contains(errs, "pico-hsm-tool: warning: key domain 2 still waits for 1 of its 2 DKEK shares: the key can be used but not backed up until its domain's shares are all imported") {
		t.Errorf("no warning for a domain waiting for shares:\n%s", errs)
	}
	var k map[string]any
	if err := json.Unmarshal([]byte(out), &k); err != nil {
		t.Fatal(err)
	}
	if k["key_domain"] != 2.0 {
		t.Errorf("--json key_domain %v, want 2:\n%s", k["key_domain"], out)
	}
	if d := keyDomainOnDevice(t, dev, 2); d != 2 {
		t.Errorf("AES key 2 is in domain %d, want 2", d)
	}

	// Domain 0 (the default): no tag, as before key domains.
	code, out, errs = runAll("-v", "-r", dev, "generate-key", "--type", "rsa:1024", "--label", "d0", "--pin", "648219")
	if code != 0 {
		t.Fatalf("generate in domain 0: exit %d\n%s", code, errs)
	}
	if strings.Contains(out, "key domain") || strings.Contains(errs, "92 01 00") {
		t.Errorf("domain 0 named or tagged:\n%s\n%s", out, errs)
	}
	if d := keyDomainOnDevice(t, dev, 3); d != 0 {
		t.Errorf("key 3 is in domain %d, want 0", d)
	}

	// Refusals: nothing generated, no PIN try used.
	for _, c := range []struct{ dom, msg string }{
		{"3", "pico-hsm-tool: key domain 3 is not set up: create it with key-domain create 3 --dkek-shares N (SW 6A88)\n"},
		{"4", "pico-hsm-tool: the device has no key domain 4: it was initialized with fewer key domains (see status) (SW 6A86)\n"},
	} {
		code, out, errs = runAll("-v", "-r", dev, "generate-key", "--type", "ec:secp256r1", "--key-domain", c.dom, "--pin", "648219")
		if code == 0 || out != "" {
			t.Errorf("domain %s: exit %d, stdout %q", c.dom, code, out)
		}
		if !strings.HasSuffix(errs, c.msg) {
			t.Errorf("domain %s: stderr ends\n%s\nwant %s", c.dom, errs[max(0, len(errs)-300):], c.msg)
		}
		for _, apdu := range []string{"GENERATE", "VERIFY", "LIST"} {
			if strings.Contains(errs, "> "+apdu) {
				t.Errorf("domain %s: %s sent before the refusal:\n%s", c.dom, apdu, errs)
			}
		}
	}
	m := runJSON(t, "-r", dev, "status", "--json")
	if up := m["user_pin"].(map[string]any); up["tries_left"] != 3.0 {
		t.Errorf("the refusals cost PIN tries: %v left", up["tries_left"])
	}
}

// TestKeyDomainsListAndStatus: list-keys shows each key's domain, and
// status counts the keys of each domain, with check values known only
// with the PIN.
func TestKeyDomainsListAndStatus(t *testing.T) {
	defer dkekshare.SetIterationsForTesting(1000)()
	dev, kcv1 := domainsDevice(t)
	mustRun(t, "-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "zero", "--pin", "648219")
	mustRun(t, "-r", dev, "generate-key", "--type", "ec:secp256r1", "--label", "one", "--key-domain", "1", "--pin", "648219")
	mustRun(t, "-r", dev, "generate-key", "--type", "aes:256", "--label", "one-aes", "--key-domain", "1", "--pin", "648219")
	mustRun(t, "-r", dev, "generate-key", "--type", "aes:128", "--label", "two", "--key-domain", "2", "--pin", "648219")

	code, out, errs := runAll("-r", dev, "list-keys")
	if code != 0 {
		t.Fatalf("list-keys: exit %d\n%s", code, errs)
	}
	want := `Ref  Key                    Label            ID         Domain Export Certificate
1    EC secp256r1           zero             01         0      yes    cv-request
2    EC secp256r1           one              02         1      yes    cv-request
3    AES 256                one-aes          03         1      yes    -
4    AES 128                two              04         2      yes    -
`
	if out != want {
		t.Errorf("list-keys:\n%s\nwant:\n%s", out, want)
	}
	var list struct {
		Keys []struct {
			Ref    int  `json:"key_reference"`
			Domain *int `json:"key_domain"`
		} `json:"keys"`
	}
	code, out, errs = runAll("-r", dev, "list-keys", "--json")
	if code != 0 {
		t.Fatalf("list-keys --json: exit %d\n%s", code, errs)
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for i, d := range []int{0, 1, 1, 2} {
		if i >= len(list.Keys) || list.Keys[i].Domain == nil || *list.Keys[i].Domain != d {
			t.Errorf("list-keys --json key %d: %+v, want key_domain %d\n%s", i+1, list.Keys, d, out)
		}
	}

	code, out, errs = runAll("-r", dev, "status")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s", code, errs)
	}
	want = `DKEK shares          : 1
DKEK key check value : 0000000000000000
Key domains          : 4
Key domain 0         : 1 share, check value unknown (give --pin), 1 key
Key domain 1         : 1 share, check value unknown (give --pin), 2 keys
Key domain 2         : 2 shares, 1 missing, 1 key
Key domain 3         : not set up
`
	if !strings.HasSuffix(out, want) {
		t.Errorf("status without PIN:\n%s\nwant it to end with:\n%s", out, want)
	}
	code, out, errs = runAll("-r", dev, "status", "--pin", "648219")
	if code != 0 {
		t.Fatalf("status --pin: exit %d\n%s", code, errs)
	}
	if !strings.Contains(out, "\nKey domain 1         : 1 share, check value "+kcv1+", 2 keys\n") {
		t.Errorf("status --pin, domain 1's check value %s not shown:\n%s", kcv1, out)
	}
	if !regexp.MustCompile(`(?m)^Key domain 0         : 1 share, check value [0-9A-F]{16}, 1 key$`).MatchString(out) || strings.Contains(out, "unknown") {
		t.Errorf("status --pin:\n%s", out)
	}

	m := runJSON(t, "-r", dev, "status", "--json", "--pin", "648219")
	doms, _ := m["key_domains"].([]any)
	if len(doms) != 4 {
		t.Fatalf("key_domains: %v", m["key_domains"])
	}
	wantDoms := []map[string]any{
		{"domain": 0.0, "set_up": true, "dkek_shares": 1.0, "dkek_outstanding": 0.0, "key_count": 1.0},
		{"domain": 1.0, "set_up": true, "dkek_shares": 1.0, "dkek_outstanding": 0.0, "key_count": 2.0, "dkek_kcv": kcv1},
		{"domain": 2.0, "set_up": true, "dkek_shares": 2.0, "dkek_outstanding": 1.0, "key_count": 1.0, "dkek_kcv": nil},
		{"domain": 3.0, "set_up": false, "dkek_shares": 0.0, "dkek_outstanding": 0.0, "key_count": 0.0, "dkek_kcv": nil},
	}
	for i, w := range wantDoms {
		got := doms[i].(map[string]any)
		if _, ok := got["dkek_kcv"]; !ok {
			t.Errorf("domain %d: no dkek_kcv: %v", i, got)
		}
		for k, v := range w {
			if got[k] != v {
				t.Errorf("domain %d: %s = %v, want %v", i, k, got[k], v)
			}
		}
	}
	if doms[0].(map[string]any)["dkek_kcv"] != m["dkek_kcv"] {
		t.Errorf("domain 0's check value %v differs from dkek_kcv %v", doms[0].(map[string]any)["dkek_kcv"], m["dkek_kcv"])
	}
}
