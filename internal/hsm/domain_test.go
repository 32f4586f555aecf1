package hsm

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/transcript"
)

// initDomains initializes a simulated device as transcripts/60 does: one
// DKEK share and 4 key domains, user PIN 648219.
func initDomains(t *testing.T, shares int) *Device {
	t.Helper()
	d, _ := newDevice(t)
	if _, err := d.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	p := &InitParams{SOPIN: mustHex(t, "3537363231383830"), PIN: []byte("648219"), Retries: 3, Options: 1,
		DKEKShares: shares, KeyDomains: 4}
	if err := d.Initialize(p); err != nil {
		t.Fatal(err)
	}
	return d
}

func kdShare(n string) []byte {
	s := sha256.Sum256([]byte("kd-share-" + n))
	return s[:]
}

// TestInitializeKeepsDomainZero: tag 97 frees domain 0 on the firmware
// (transcripts/60 [3]); Initialize sets it up again for --dkek-shares.
func TestInitializeKeepsDomainZero(t *testing.T) {
	d := initDomains(t, 1)
	doms, err := d.KeyDomains()
	if err != nil {
		t.Fatal(err)
	}
	if len(doms) != 4 {
		t.Fatalf("%d domains, want 4: %+v", len(doms), doms)
	}
	if !doms[0].SetUp || doms[0].Status.Shares != 1 || doms[0].Status.Outstanding != 1 {
		t.Errorf("domain 0: %+v, want set up for 1 share, 1 missing", doms[0])
	}
	for _, kd := range doms[1:] {
		if kd.SetUp {
			t.Errorf("domain %d set up: %+v", kd.Domain, kd)
		}
	}
	st, err := d.ImportDKEKShareInto(0, kdShare("0"))
	if err != nil {
		t.Fatal(err)
	}
	if st.KCVHex() != "B5AB61CF11C72BEE" { // transcripts/60 [15]
		t.Errorf("KCV %s", st.KCVHex())
	}
}

// TestDomainLifecycle walks transcripts/60 and 61 through the API: each
// firmware answer becomes a result or a *DomainError of the right kind.
func TestDomainLifecycle(t *testing.T) {
	d := initDomains(t, 1)
	steps := []struct {
		name string
		run  func() error
		want error
	}{
		{"status of a free slot", func() error { _, err := d.DomainStatus(1); return err }, ErrDomainNotSetUp},
		{"status beyond the device's domains", func() error { _, err := d.DomainStatus(4); return err }, ErrNoSuchDomain},
		{"domain 16", func() error { _, err := d.DomainStatus(16); return err }, nil},
		{"share into a free slot", func() error { _, err := d.ImportDKEKShareInto(1, kdShare("1")); return err }, ErrDomainNotSetUp},
		{"create 1 for 2 shares", func() error { _, err := d.CreateKeyDomain(1, 2); return err }, nil},
		{"create 1 again", func() error { _, err := d.CreateKeyDomain(1, 2); return err }, ErrDomainExists},
		{"create 7 (no such slot)", func() error { _, err := d.CreateKeyDomain(7, 2); return err }, ErrNoSuchDomain},
		{"0 shares", func() error { _, err := d.CreateKeyDomain(2, 0); return err }, nil},
		{"share 1 of 2", func() error { _, err := d.ImportDKEKShareInto(1, kdShare("1")); return err }, nil},
		{"share 2 of 2", func() error { _, err := d.ImportDKEKShareInto(1, kdShare("2")); return err }, nil},
		{"a third share", func() error { _, err := d.ImportDKEKShareInto(1, kdShare("2")); return err }, ErrAllSharesImported},
		{"clear 1", func() error { _, err := d.ClearKeyDomain(1); return err }, nil},
		{"delete 1", func() error { return d.DeleteKeyDomain(1) }, nil},
		{"delete 1 again", func() error { return d.DeleteKeyDomain(1) }, ErrDomainNotSetUp},
		{"status after delete", func() error { _, err := d.DomainStatus(1); return err }, ErrDomainNotSetUp},
	}
	for _, s := range steps {
		err := s.run()
		switch {
		case s.want == nil && s.name == "domain 16" || s.name == "0 shares":
			if err == nil {
				t.Errorf("%s: no error", s.name)
			}
		case s.want == nil && err != nil:
			t.Errorf("%s: %v", s.name, err)
		case s.want != nil && !errors.Is(err, s.want):
			t.Errorf("%s: %v, want %v", s.name, err, s.want)
		}
	}
}

// TestDomainNeedsPIN: without a verified PIN (after a wrong VERIFY ends
// INITIALIZE's session, transcripts/60 [8], [9]) create is refused with
// 6985. Clear and delete send no data, and cmd_key_domain.c asks for the
// PIN only with data: the firmware clears a domain for anyone, which is
// why the tool verifies the PIN itself before it sends either.
func TestDomainNeedsPIN(t *testing.T) {
	d := initDomains(t, 1)
	if err := d.VerifyPIN(UserPIN, []byte("000000")); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	if _, err := d.CreateKeyDomain(2, 1); !errors.Is(err, ErrDomainNeedsPIN) {
		t.Errorf("create: %v", err)
	}
	if _, err := d.ClearKeyDomain(0); err != nil {
		t.Errorf("clear without a PIN, as the firmware allows: %v", err)
	}
	if _, err := d.ImportDKEKShareInto(0, kdShare("0")); err != nil {
		t.Errorf("share for domain 0: %v", err)
	}
}

// TestDeleteDomainWithKeys: 6A89 becomes ErrDomainInUse (transcripts/61
// [10]); the key generated with tag 92 shows its domain in its FCP.
func TestDeleteDomainWithKeys(t *testing.T) {
	d := initDomains(t, 1)
	if _, err := d.CreateKeyDomain(1, 1); err != nil {
		t.Fatal(err)
	}
	ex, err := transcript.ReadFile("../../testdata/pico-hsm/transcripts/61-key-domains-keys.txt")
	if err != nil {
		t.Fatal(err)
	}
	// [1]: GENERATE ASYMMETRIC KEY PAIR, key 1 in domain 1 (92 01 01).
	c := ex[0].Command
	if _, err := d.GenerateKeyPair(1, c[7:len(c)-2]); err != nil {
		t.Fatal(err)
	}
	fi, err := d.SelectFile(KeyFID(PrefixKey, 1))
	if err != nil {
		t.Fatal(err)
	}
	if fi.KeyDomain() != 1 {
		t.Errorf("key 1 in domain %d, want 1", fi.KeyDomain())
	}
	if err := d.DeleteKeyDomain(1); !errors.Is(err, ErrDomainInUse) {
		t.Errorf("delete: %v", err)
	}
	if err := d.DeleteFile(KeyFID(PrefixKey, 1)); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteKeyDomain(1); err != nil {
		t.Errorf("delete of the empty domain: %v", err)
	}
}

func TestFileInfoKeyDomain(t *testing.T) {
	for _, c := range []struct {
		meta string
		want int
	}{{"", 0}, {"920101", 1}, {"9103707192 920103", 3}, {"9200", 0}} {
		fi := FileInfo{Meta: mustHex(t, c.meta)}
		if got := fi.KeyDomain(); got != c.want {
			t.Errorf("meta %s: domain %d, want %d", c.meta, got, c.want)
		}
	}
}

// TestClearFreeSlot records a firmware hazard: clearing a free slot
// (FF FF) sets its imported count to 0, and the slot then reads as set up
// for 255 shares (cmd_key_domain.c P1 04). The tool never clears a domain
// it has not seen set up.
func TestClearFreeSlot(t *testing.T) {
	d := initDomains(t, 1)
	if _, err := d.ClearKeyDomain(3); err != nil {
		t.Fatal(err)
	}
	st, err := d.DomainStatus(3)
	if err != nil || st.Shares != 255 {
		t.Errorf("after clearing a free slot: %+v, %v; the firmware leaves FF 00", st, err)
	}
}

// TestDomainErrorCarriesStatus: a refusal the device answered carries its
// status word, so that callers know the device did not change.
func TestDomainErrorCarriesStatus(t *testing.T) {
	d := initDomains(t, 1)
	_, err := d.CreateKeyDomain(0, 1)
	var se *apdu.StatusError
	if !errors.Is(err, ErrDomainExists) || !errors.As(err, &se) || se.SW != apdu.SWWrongP1P2 {
		t.Errorf("create of a set-up domain: %v", err)
	}
}
