package ceremony

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// domainDevice is a simulated device initialized with four key domains,
// domain 0 set up for one share.
func domainDevice(t *testing.T) *device.Conn {
	t.Helper()
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	p := params(1)
	p.KeyDomains = 4
	if _, err := Initialize(c, InitOptions{Params: p}); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCheckDomainNumberAndShares(t *testing.T) {
	for _, d := range []int{0, 1, 15} {
		if err := CheckDomainNumber(d); err != nil {
			t.Errorf("domain %d: %v", d, err)
		}
	}
	for _, d := range []int{-1, 16, 255} {
		if err := CheckDomainNumber(d); err == nil {
			t.Errorf("domain %d accepted", d)
		}
	}
	for _, n := range []int{1, 254} {
		if err := CheckDomainShares(n); err != nil {
			t.Errorf("%d shares: %v", n, err)
		}
	}
	// 255 shares would read FF: with FF imported, a free slot.
	for _, n := range []int{-1, 0, 255} {
		if err := CheckDomainShares(n); err == nil {
			t.Errorf("%d shares accepted", n)
		}
	}
}

// TestCheckOutstandingIn: domain 0 keeps the words of a device without
// key domains; another domain names itself and says to clear it, never
// to re-initialize.
func TestCheckOutstandingIn(t *testing.T) {
	full := hsm.DKEKStatus{Shares: 2}
	half := hsm.DKEKStatus{Shares: 3, Outstanding: 1}
	for _, tc := range []struct {
		dom  int
		st   hsm.DKEKStatus
		n    int
		is   error
		want string
	}{
		{0, full, 1, hsm.ErrAllSharesImported, "all DKEK shares are already imported: the device accepts no more (re-initialize to start a new DKEK, which destroys every key) (2 of 2 imported)"},
		{0, half, 2, nil, "the device expects 1 more DKEK share(s), but 2 were given: nothing was imported"},
		{0, hsm.DKEKStatus{}, 1, hsm.ErrNoDKEK, "cannot import DKEK shares: the device has no DKEK"},
		{1, full, 1, hsm.ErrAllSharesImported, "all 2 DKEK shares of key domain 1 are already imported: it accepts no more (to import them again, clear it first: key-domain clear 1)"},
		{3, half, 2, nil, "key domain 3 expects 1 more DKEK share(s), but 2 were given: nothing was imported"},
		{3, half, 1, nil, ""},
	} {
		err := checkOutstandingIn(tc.dom, tc.st, tc.n)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("domain %d %+v %d: %v", tc.dom, tc.st, tc.n, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("domain %d %+v %d: %v, want %q", tc.dom, tc.st, tc.n, err, tc.want)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("domain %d %+v %d: %v is not %v", tc.dom, tc.st, tc.n, err, tc.is)
		}
	}
}

// TestDomainLifecycle walks create, import, clear and delete on the
// simulated device, and the refusals between them.
func TestDomainLifecycle(t *testing.T) {
	c := domainDevice(t)
	o := DomainOptions{Domain: 1, Shares: 2, PIN: pin}
	res, err := CreateDomain(c, o)
	if err != nil || *res != (DomainResult{Action: "create", Domain: 1, SetUp: true, DKEKShares: 2, DKEKOutstanding: 2}) {
		t.Fatalf("create: %+v %v", res, err)
	}
	if _, err := CreateDomain(c, o); !errors.Is(err, hsm.ErrDomainExists) || !strings.Contains(err.Error(), "2 DKEK shares, 2 still missing") {
		t.Fatalf("create again: %v", err)
	}
	if _, err := CreateDomain(c, DomainOptions{Domain: 4, Shares: 1, PIN: pin}); !errors.Is(err, hsm.ErrNoSuchDomain) || !strings.Contains(err.Error(), "it has 4 key domains, 0 to 3") {
		t.Fatalf("create beyond the slots: %v", err)
	}

	// A free slot is never cleared: it would become FF 00, 255 shares.
	if _, err := ClearDomain(c, DomainOptions{Domain: 3, PIN: pin}); !errors.Is(err, hsm.ErrDomainNotSetUp) {
		t.Fatalf("clear free: %v", err)
	}
	if _, err := c.DomainStatus(3); !errors.Is(err, hsm.ErrDomainNotSetUp) {
		t.Fatalf("slot 3 after the refused clear: %v", err)
	}
	if _, err := DeleteDomain(c, DomainOptions{Domain: 3, PIN: pin}); !errors.Is(err, hsm.ErrDomainNotSetUp) {
		t.Fatalf("delete free: %v", err)
	}

	// Shares for domain 1 need the PIN, and are checked against the
	// domain, not domain 0.
	var out bytes.Buffer
	if _, err := ImportShares(c, ImportOptions{Domain: 1, Shares: sharesA[:2], Out: &out}); !errors.Is(err, hsm.ErrDomainNeedsPIN) {
		t.Fatalf("import without PIN: %v", err)
	}
	if _, err := CheckImportInto(c, 1, 3); err == nil || !strings.HasPrefix(err.Error(), "key domain 1 expects 2 more") {
		t.Fatalf("three shares for two: %v", err)
	}
	if _, err := CheckImportInto(c, 2, 1); !errors.Is(err, hsm.ErrDomainNotSetUp) {
		t.Fatalf("free domain: %v", err)
	}
	st, err := CheckImportInto(c, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ir, err := ImportShares(c, ImportOptions{Domain: 1, Shares: sharesA[:2], PIN: pin, Out: &out, Checked: &st})
	if err != nil || !ir.Committed || ir.Status.KCVHex() != CombinedKCV(sharesA[:2]) {
		t.Fatalf("import: %+v %v", ir, err)
	}
	if got := strings.Count(out.String(), "DKEK share imported into key domain 1\n"); got != 2 {
		t.Fatalf("%d lines name the domain:\n%s", got, out.String())
	}
	// Domain 0 is untouched.
	if st, err := c.DomainStatus(0); err != nil || st.Shares != 1 || st.Outstanding != 1 {
		t.Fatalf("domain 0: %+v %v", st, err)
	}

	res, err = ClearDomain(c, DomainOptions{Domain: 1, PIN: pin})
	if err != nil || res.DKEKShares != 2 || res.DKEKOutstanding != 2 || res.Keys != 0 {
		t.Fatalf("clear: %+v %v", res, err)
	}

	// A wrong PIN changes nothing.
	if _, err := DeleteDomain(c, DomainOptions{Domain: 1, PIN: []byte("000000")}); !errors.Is(err, apdu.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if _, err := c.DomainStatus(1); err != nil {
		t.Fatalf("domain 1 after a wrong PIN: %v", err)
	}
	res, err = DeleteDomain(c, DomainOptions{Domain: 1, PIN: pin})
	if err != nil || res.SetUp || res.DKEKShares != 0 {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if _, err := c.DomainStatus(1); !errors.Is(err, hsm.ErrDomainNotSetUp) {
		t.Fatalf("domain 1 after delete: %v", err)
	}
}

// TestDeleteDomainZeroInUse: the firmware counts every file without a
// domain tag as domain 0 (cmd_key_domain.c get_key_domain), so a data
// object alone keeps domain 0 from being deleted (6A89) though no key is
// listed in it; the refusal says why.
func TestDeleteDomainZeroInUse(t *testing.T) {
	c := domainDevice(t)
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateFile(0xCD01, []byte("a data object")); err != nil {
		t.Fatal(err)
	}
	_, err := DeleteDomain(c, DomainOptions{Domain: 0, PIN: pin})
	if !errors.Is(err, hsm.ErrDomainInUse) || !strings.Contains(err.Error(), "counts every file without a key domain tag as domain 0") {
		t.Fatalf("delete domain 0: %v", err)
	}
	if st, err := c.DomainStatus(0); err != nil || st.Shares != 1 {
		t.Fatalf("domain 0 after the refusal: %+v %v", st, err)
	}
}

// TestInitializedWithoutDomains: a device without key domains has domain
// 0 only, and says so.
func TestInitializedWithoutDomains(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	if _, err := Initialize(c, InitOptions{Params: params(1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckImportInto(c, 1, 1); !errors.Is(err, hsm.ErrNoSuchDomain) || !strings.Contains(err.Error(), "initialized without key domains") {
		t.Fatalf("domain 1: %v", err)
	}
	if st, err := CheckImportInto(c, 0, 1); err != nil || st.Outstanding != 1 {
		t.Fatalf("domain 0: %+v %v", st, err)
	}
}
