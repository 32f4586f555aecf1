package backup

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
)

// Shares of the DKEKs the key domain tests use: domain 0 gets shareC, the
// other domains the three shares of DKEK A or shareB.
var (
	shareB = strings.Repeat("B1", 32)
	shareC = strings.Repeat("C7", 32)
)

// domainSpec sets up one key domain: its shares, all imported unless
// missing says how many are left out.
type domainSpec struct {
	dom     int
	shares  []string
	missing int
}

// deviceWithDomains initializes a simulated device with n key domains,
// domain 0 for shareC, and sets up the others as given (CREATE KEY DOMAIN
// and the shares need the user PIN verified: pico-hsm cmd_key_domain.c).
func deviceWithDomains(t *testing.T, name string, n int, doms ...domainSpec) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), name)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := hsm.InitParams{SOPIN: mustHex("3537363231383830"), PIN: pin, Retries: 3, DKEKShares: 1, KeyDomains: n, Options: hsm.OptResetRetryCounter}
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(&p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportDKEKShareInto(0, mustHex(shareC)); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if _, err := c.CreateKeyDomain(d.dom, len(d.shares)); err != nil {
			t.Fatal(err)
		}
		for _, s := range d.shares[:len(d.shares)-d.missing] {
			if _, err := c.ImportDKEKShareInto(d.dom, mustHex(s)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return c
}

// genInDomain generates an EC P-256 key at ref in key domain dom, with
// metadata tag 92 01 dom in GENERATE ASYMMETRIC KEY PAIR's data
// (transcripts/61-key-domains-keys.txt [1]), and writes its description.
func genInDomain(t *testing.T, c *device.Conn, ref, dom int, label string) {
	t.Helper()
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	cv := ecc.ByName("secp256r1")
	n := cv.ByteLen()
	data := cvc.GAKPRequestEC(cv.P.FillBytes(make([]byte, n)), cv.A.FillBytes(make([]byte, n)), cv.B.FillBytes(make([]byte, n)),
		cv.Marshal(cv.Gx, cv.Gy), cv.N.FillBytes(make([]byte, cv.ScalarLen())), cv.H, "UTCA00001", "ESPICOHSMTR00001")
	if _, err := c.GenerateKeyPair(byte(ref), append(data, 0x92, 0x01, byte(dom))); err != nil {
		t.Fatal(err)
	}
	prkd, err := pkcs15.New(pkcs15.EC, label, []byte{byte(ref)}, ref, 256)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateFile(hsm.KeyFID(hsm.PrefixPRKD, byte(ref)), prkd.Marshal()); err != nil {
		t.Fatal(err)
	}
}

// signs checks that key ref of c is in key domain dom and makes ECDSA
// signatures its public key (read back from CExx) verifies.
func signs(t *testing.T, c *device.Conn, ref, dom int) {
	t.Helper()
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	k, err := keystore.Read(c.Device, byte(ref))
	if err != nil {
		t.Fatal(err)
	}
	if k.Domain != dom {
		t.Errorf("key reference %d is in key domain %d, want %d", ref, k.Domain, dom)
	}
	cert, err := cvc.Parse(k.Cert)
	if err != nil {
		t.Fatal(err)
	}
	x, y := elliptic.Unmarshal(elliptic.P256(), cert.PublicKey.Q)
	if x == nil {
		t.Fatalf("key reference %d: public key not on P-256", ref)
	}
	msg := []byte("signed by a restored key")
	sig, err := c.Sign(byte(ref), hsm.AlgECDSASHA256, msg)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(msg)
	if !ecdsa.VerifyASN1(&ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, sum[:], sig) {
		t.Errorf("key reference %d: the signature does not verify", ref)
	}
}

// domainKCV is key domain dom's check value, read with the PIN verified.
func domainKCV(t *testing.T, c *device.Conn, dom int) string {
	t.Helper()
	if err := c.Login(pin, false); err != nil {
		t.Fatal(err)
	}
	st, err := c.DomainStatus(dom)
	if err != nil {
		t.Fatal(err)
	}
	return st.KCVHex()
}

// A device with two key domains of different DKEKs, a key in each and one
// in domain 0: the backup records each key's domain and check value; a
// device with the same domains takes every key back into its domain; a
// device with only one of them takes that domain's keys, reports the
// other not restorable and leaves its reference free, run after run.
func TestRestoreAcrossDomains(t *testing.T) {
	src := deviceWithDomains(t, "src.json", 4, domainSpec{dom: 1, shares: sharesA}, domainSpec{dom: 2, shares: []string{shareB}})
	genInDomain(t, src, 1, 1, "in-a")
	genInDomain(t, src, 2, 2, "in-b")
	genInDomain(t, src, 3, 0, "in-c")
	kcvA, kcvB, kcvC := domainKCV(t, src, 1), domainKCV(t, src, 2), domainKCV(t, src, 0)
	if kcvA == kcvB || kcvA == kcvC {
		t.Fatalf("the domains share a DKEK: %s %s %s", kcvA, kcvB, kcvC)
	}

	dir := filepath.Join(t.TempDir(), "backup")
	res, err := BackupAll(src, BackupOptions{Dir: dir, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if !res.ManyDomains || res.KCV != kcvC {
		t.Errorf("ManyDomains %v, manifest KCV %s, want true and %s", res.ManyDomains, res.KCV, kcvC)
	}
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][2]string{1: {"1", kcvA}, 2: {"2", kcvB}, 3: {"0", kcvC}}
	for _, e := range m.Keys {
		if e.Domain == nil || strconv.Itoa(*e.Domain) != want[e.Ref][0] || e.KCV != want[e.Ref][1] {
			t.Errorf("key reference %d: key_domain %v dkek_kcv %s, want %v", e.Ref, e.Domain, e.KCV, want[e.Ref])
		}
	}

	// The same domains, numbered the same.
	same := deviceWithDomains(t, "same.json", 4, domainSpec{dom: 1, shares: sharesA}, domainSpec{dom: 2, shares: []string{shareB}})
	got, err := RestoreAll(same, RestoreAllOptions{Dir: dir, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(got); s != "restore/restored restore/restored restore/restored" {
		t.Errorf("got %s", s)
	}
	for ref, dom := range map[int]int{1: 1, 2: 2, 3: 0} {
		signs(t, same, ref, dom)
		if r := got[ref-1]; r.Domain == nil || *r.Domain != dom || r.Result.Domain != dom || !r.ShowDomain {
			t.Errorf("key reference %d: planned domain %v, result domain %d, want %d", ref, r.Domain, r.Result.Domain, dom)
		}
	}

	// Only domain 0 and DKEK A, in domain 3 this time.
	one := deviceWithDomains(t, "one.json", 4, domainSpec{dom: 3, shares: sharesA})
	n := countINS(one)
	got, err = RestoreAll(one, RestoreAllOptions{Dir: dir, PIN: pin})
	one.Sim.Fault = nil
	if s := statuses(got); s != "restore/restored not restorable/not restorable restore/restored" {
		t.Errorf("got %s", s)
	}
	wantErr := "some keys failed: 1 of 3 keys were not restored (1 is not restorable here: key-002-in-b.bin needs DKEK " + kcvB +
		": import that DKEK's shares into a key domain of this device, or restore on the device that holds that DKEK)"
	if !errors.Is(err, ErrPartial) || err.Error() != wantErr {
		t.Errorf("got %v, want %s", err, wantErr)
	}
	if n[0x74] != 2 {
		t.Errorf("%d UNWRAP KEY sent, want 2", n[0x74])
	}
	if r := got[1]; r.Domain != nil || r.Reason != "no key domain on this device has DKEK check value "+kcvB {
		t.Errorf("key 2: domain %v, reason %q", r.Domain, r.Reason)
	}
	signs(t, one, 1, 3)
	signs(t, one, 3, 0)
	fids, err := one.ListObjects()
	if err != nil {
		t.Fatal(err)
	}
	if keystore.Occupied(fids, 2) {
		t.Error("key reference 2 was written, though no domain takes its key")
	}

	// Again: nothing new, the same key reported; the device is unchanged.
	n = countINS(one)
	got, err = RestoreAll(one, RestoreAllOptions{Dir: dir, PIN: pin})
	one.Sim.Fault = nil
	if s := statuses(got); s != "skip/present not restorable/not restorable skip/present" {
		t.Errorf("again: got %s", s)
	}
	if err == nil || errors.Is(err, ErrPartial) || !strings.HasPrefix(err.Error(), "nothing was restored: 1 of 3 keys were not restored (1 is not restorable here: key-002-in-b.bin needs DKEK "+kcvB) ||
		!strings.HasSuffix(err.Error(), "(2 already present)") {
		t.Errorf("again: %v", err)
	}
	if n[0x74] != 0 {
		t.Errorf("again: %d UNWRAP KEY sent", n[0x74])
	}
}

// unwrap-key of a blob whose check value no domain has is refused after
// the PIN, before any UNWRAP KEY, naming each domain's check value and
// the one waiting for shares.
func TestUnwrapNoDomainRefused(t *testing.T) {
	src := deviceWithDomains(t, "src.json", 4, domainSpec{dom: 2, shares: []string{shareB}})
	genInDomain(t, src, 1, 2, "in-b")
	path := filepath.Join(t.TempDir(), "b.bin")
	w, err := WrapToFile(src, WrapOptions{Key: keystore.Spec{Ref: 1}, PIN: pin, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	kcvB := domainKCV(t, src, 2)
	if w.Domain != 2 || !w.ManyDomains || w.KCV != kcvB {
		t.Errorf("wrap: domain %d many %v KCV %s, want 2 true %s", w.Domain, w.ManyDomains, w.KCV, kcvB)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	dst := deviceWithDomains(t, "dst.json", 4, domainSpec{dom: 1, shares: sharesA}, domainSpec{dom: 3, shares: []string{shareB, shareC}, missing: 1})
	kcvA, kcvC := domainKCV(t, dst, 1), domainKCV(t, dst, 0)
	n := countINS(dst)
	_, err = Restore(dst, RestoreOptions{File: file, Name: "b.bin", Ref: -1, PIN: pin})
	dst.Sim.Fault = nil
	want := "wrong DKEK: no key domain on this device has DKEK check value " + kcvB + " (key domain 0: " + kcvC + ", key domain 1: " + kcvA +
		", key domain 3: 1 of 2 shares imported): the backup was made under DKEK " + kcvB +
		": import that DKEK's shares into a key domain of this device, or restore on the device that holds that DKEK"
	if err == nil || err.Error() != want || !errors.Is(err, ErrWrongDKEK) || !errors.Is(err, keystore.ErrNoDomainMatch) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if n[0x74] != 0 || n[0x20] != 2 {
		t.Errorf("UNWRAP KEY sent %d times, VERIFY %d times; want 0 and 2 (tries left, then the PIN)", n[0x74], n[0x20])
	}

	// With domain 3 complete, the key lands there.
	if _, err := dst.ImportDKEKShareInto(3, mustHex(shareC)); err != nil {
		t.Fatal(err)
	}
	// DKEK B xor C is not B: set domain 2 up with B instead.
	if _, err := dst.CreateKeyDomain(2, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.ImportDKEKShareInto(2, mustHex(shareB)); err != nil {
		t.Fatal(err)
	}
	r, err := Restore(dst, RestoreOptions{File: file, Name: "b.bin", Ref: -1, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if r.Domain != 2 || r.Ref != 1 {
		t.Errorf("restored into domain %d at %d, want 2 at 1", r.Domain, r.Ref)
	}
	signs(t, dst, 1, 2)
}

// wrap-key of a key whose domain waits for shares is refused before WRAP
// KEY, naming the domain and the shares missing; backup lists the key as
// skipped, naming the domain, and backs up the others.
func TestWrapIncompleteDomain(t *testing.T) {
	c := deviceWithDomains(t, "dev.json", 4, domainSpec{dom: 1, shares: sharesA, missing: 2})
	genInDomain(t, c, 1, 1, "waiting")
	genInDomain(t, c, 2, 0, "ready")
	n := countINS(c)
	_, err := WrapToFile(c, WrapOptions{Key: keystore.Spec{Ref: 1}, PIN: pin, Path: filepath.Join(t.TempDir(), "x.bin")})
	c.Sim.Fault = nil
	want := "cannot wrap key reference 1: it belongs to key domain 1, whose DKEK is incomplete (1 of 3 shares imported, 2 missing): import the remaining shares of key domain 1 first"
	if err == nil || err.Error() != want || !errors.Is(err, hsm.ErrDKEKIncomplete) {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if n[0x72] != 0 {
		t.Errorf("WRAP KEY sent %d times", n[0x72])
	}

	res, err := BackupAll(c, BackupOptions{Dir: filepath.Join(t.TempDir(), "bk"), PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 1 || res.Keys[0].Ref != 2 || *res.Keys[0].Domain != 0 {
		t.Errorf("backed up %+v", res.Keys)
	}
	wantSkip := "cannot be wrapped now: its key domain 1's DKEK is incomplete (1 of 3 shares imported): import the remaining shares of key domain 1, then back up again"
	if len(res.Skipped) != 1 || res.Skipped[0].Ref != 1 || res.Skipped[0].Reason != wantSkip {
		t.Errorf("skipped %+v", res.Skipped)
	}
	if !res.ManyDomains {
		t.Error("ManyDomains false")
	}
}

// A manifest written before key domains (no "key_domain") restores as
// before: its keys are under the manifest's DKEK.
func TestRestoreOldManifest(t *testing.T) {
	src := deviceWithKeys(t, "src.json")
	dir := backupOf(t, src)
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range raw["keys"].([]any) {
		e := k.(map[string]any)
		if _, ok := e["key_domain"]; !ok {
			t.Fatalf("the new manifest has no key_domain: %v", e)
		}
		delete(e, "key_domain")
	}
	b, _ = json.Marshal(raw)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	dst := deviceA(t, "dst.json")
	got, err := RestoreAll(dst, RestoreAllOptions{Dir: dir, PIN: pin})
	if err != nil {
		t.Fatal(err)
	}
	if s := statuses(got); s != "restore/restored restore/restored" {
		t.Errorf("got %s", s)
	}
	if got[0].Domain == nil || *got[0].Domain != 0 || got[0].ShowDomain {
		t.Errorf("domain %v, shown %v", got[0].Domain, got[0].ShowDomain)
	}
}
