package keyimport

import (
	"crypto/rand"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// simWithDomains opens a simulated device with key domains 0 to 3, whose
// domains 1 and 2 each hold dkek as their one share, and domain 0 none.
func simWithDomains(t *testing.T, dkek []byte) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), "d.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := hsm.InitParams{SOPIN: []byte("57621880"), PIN: testPIN, Retries: 3, DKEKShares: -1, KeyDomains: 4}
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(&p); err != nil {
		t.Fatal(err)
	}
	for _, dom := range []int{1, 2} {
		if _, err := c.CreateKeyDomain(dom, 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ImportDKEKShareInto(dom, dkek); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// TestImportSameDKEKTwoDomains: with the same DKEK in domains 1 and 2,
// UNWRAP KEY puts a key into domain 1 (the firmware tries domains in
// order), so --key-domain 2 is refused before the device changes and
// --key-domain 1, or none, lands in domain 1.
func TestImportSameDKEKTwoDomains(t *testing.T) {
	dkek := randomDKEK(t)
	c := simWithDomains(t, dkek)
	k := parseFile(t, "ec-prime256v1-sec1.pem")
	o := ImportOptions{Name: "ec-prime256v1-sec1.pem", Label: "k", Ref: -1, PIN: testPIN, Rand: rand.Reader, Domain: 2}
	_, err := Import(c, k, dkek, o)
	if err == nil || !strings.Contains(err.Error(), "key domain 2 has the same DKEK as key domain 1") {
		t.Fatalf("import into domain 2: %v", err)
	}
	if keys := listKeys(t, c); len(keys) != 0 {
		t.Fatalf("a refused import left keys: %+v", keys)
	}
	for _, dom := range []int{1, -1} {
		o.Domain, o.AllowDuplicate = dom, true
		res, err := Import(c, k, dkek, o)
		if err != nil {
			t.Fatalf("domain %d: %v", dom, err)
		}
		if res.Domain != 1 || !res.DomainsOnDevice {
			t.Errorf("domain %d: landed in %d (domains on device %v)", dom, res.Domain, res.DomainsOnDevice)
		}
	}
	for _, key := range listKeys(t, c) {
		if key.Domain != 1 {
			t.Errorf("key %d in domain %d, want 1", key.Ref, key.Domain)
		}
	}
}
