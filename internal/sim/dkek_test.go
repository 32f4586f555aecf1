package sim

// Tests of IMPORT DKEK SHARE and the DKEK status (80 52), with the shares
// and key check values recorded from the real device
// (testdata/pico-hsm/VECTORS.txt sections 1, 3 and 7; keys.md section 1).

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// TestVectorsMatchRecording checks the constants of helpers_test.go
// against VECTORS.txt, so that the tests below use the recorded values.
func TestVectorsMatchRecording(t *testing.T) {
	b, err := os.ReadFile(repoRoot + "testdata/pico-hsm/VECTORS.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	shares := map[string][]byte{
		"dkek-share-1.pbe": share1, "dkek-share-2.pbe": share2, "dkek-share-3.pbe": share3,
		"dkek-share-utf8.pbe": shareUTF8, "dkek-share-1char.pbe": share1char,
		"dkek-share-empty.pbe": shareEmpty, "dkek-share-nofm.pbe": shareNofM,
	}
	for name, v := range shares {
		re := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(name) + `\s+--.*?share \(plain\) : ([0-9A-F]{64})`)
		m := re.FindStringSubmatch(text)
		if m == nil || m[1] != fmt.Sprintf("%X", v) {
			t.Errorf("%s: share constant %X does not match VECTORS.txt (%v)", name, v, m)
		}
	}
	for _, c := range []struct {
		dev       string
		dkek, kcv []byte
		parts     [][]byte
	}{
		{"A (shares 1+2+3)", dkekA, kcvA, [][]byte{share1, share2, share3}},
		{"C (n-of-m share)", dkekC, kcvC, [][]byte{shareNofM}},
		{"D (utf8+1char+empty)", dkekD, kcvD, [][]byte{shareUTF8, share1char, shareEmpty}},
		{"E (share 1 only)", dkekE, kcvE, [][]byte{share1}},
	} {
		line := fmt.Sprintf("DKEK %X\n", c.dkek)
		if !strings.Contains(text, c.dev) || !strings.Contains(text, line) || !strings.Contains(text, fmt.Sprintf("KCV expected %X", c.kcv)) {
			t.Errorf("device %s: DKEK or KCV constant not in VECTORS.txt", c.dev)
		}
		if !bytes.Equal(xorAll(c.parts...), c.dkek) {
			t.Errorf("device %s: XOR of the shares is not the DKEK", c.dev)
		}
		if !bytes.Equal(kcvOf(c.dkek), c.kcv) {
			t.Errorf("device %s: SHA-256(DKEK)[:8] is not the KCV", c.dev)
		}
	}
}

// TestImportDKEKShares imports the recorded shares of devices A, C, D and
// E2 as sc-hsm-tool does (no PIN session: zero KCVs), then VERIFY commits
// the DKEK and the status answers the KCV the real device answered.
func TestImportDKEKShares(t *testing.T) {
	t.Parallel()
	zero := make([]byte, 8)
	for _, c := range []struct {
		dev    string
		shares [][]byte
		kcv    []byte
	}{
		{"A", [][]byte{share1, share2, share3}, kcvA},            // transcripts/06-10
		{"C", [][]byte{shareNofM}, kcvC},                         // transcripts/45-46
		{"D", [][]byte{shareUTF8, share1char, shareEmpty}, kcvD}, // transcripts/48-51
		{"E2", [][]byte{share1}, kcvE},                           // transcripts/56-57
	} {
		t.Run(c.dev, func(t *testing.T) {
			n := byte(len(c.shares))
			d := initialized(t, len(c.shares))
			steps := []call{{"status before", dkekStatus(), apdu.SWOK, cat([]byte{n, n}, zero)}}
			for i, s := range c.shares {
				steps = append(steps, call{fmt.Sprintf("share %d", i+1), importShare(s), apdu.SWOK, cat([]byte{n, n - byte(i) - 1}, zero)})
			}
			steps = append(steps,
				// transcripts/errors/p02
				call{"extra share", importShare(share1), apdu.SWCommandNotAllowed, nil},
				call{"status still zero KCV", dkekStatus(), apdu.SWOK, cat([]byte{n, 0}, zero)},
				call{"VERIFY", verifyPIN(userPIN), apdu.SWOK, none()},
				call{"recorded KCV", dkekStatus(), apdu.SWOK, cat([]byte{n, 0}, c.kcv)},
				call{"new session", selectAID(), apdu.SWOK, nil},
				call{"zero KCV without session", dkekStatus(), apdu.SWOK, cat([]byte{n, 0}, zero)},
				call{"SO-PIN session", verifySO(soPIN), apdu.SWOK, none()},
				call{"KCV in an SO session", dkekStatus(), apdu.SWOK, cat([]byte{n, 0}, c.kcv)},
			)
			runSteps(t, d, steps)
		})
	}
}

// TestImportDKEKErrors covers the failure answers of 80 52 (keys.md 1 and
// pico-hsm cmd_key_domain.c).
func TestImportDKEKErrors(t *testing.T) {
	t.Parallel()
	zero := make([]byte, 8)
	init3 := func(t *testing.T) *dev { return initialized(t, 3) }
	domains2 := func(t *testing.T) *dev {
		return initializedWith(t, cat(initData(3), t1(0x97, []byte{2})))
	}
	runScenarios(t, []scenario{
		// transcripts/00-status-factory
		{"factory device answers 6B00", factory, []call{
			{"status", dkekStatus(), apdu.SWWrongP1P2Plain, nil},
			{"share", importShare(share1), apdu.SWWrongP1P2Plain, nil},
		}},
		{"short share answers 6700 and counts nothing", init3, []call{
			{"31 bytes", importShare(share1[:31]), apdu.SWWrongLength, nil},
			{"1 byte", importShare(share1[:1]), apdu.SWWrongLength, nil},
			{"status", dkekStatus(), apdu.SWOK, cat([]byte{3, 3}, zero)},
		}},
		{"bytes after the first 32 are ignored", init3, []call{
			{"share 1 + junk", importShare(cat(share1, []byte{0xFF, 0xEE})), apdu.SWOK, cat([]byte{3, 2}, zero)},
			{"share 2", importShare(share2), apdu.SWOK, nil},
			{"share 3 + junk", importShare(cat(share3, bytes.Repeat([]byte{0x5A}, 32))), apdu.SWOK, nil},
			{"VERIFY", verifyPIN(userPIN), apdu.SWOK, nil},
			{"KCV of A", dkekStatus(), apdu.SWOK, cat([]byte{3, 0}, kcvA)},
		}},
		{"no DKEK configured (no tag 92): 6986", func(t *testing.T) *dev { return initialized(t, -1) }, []call{
			{"status", dkekStatus(), apdu.SWOK, cat([]byte{0, 0}, zero)},
			{"share", importShare(share1), apdu.SWCommandNotAllowed, nil},
		}},
		{"P2 of 16 or more answers 6B00", init3, []call{
			{"P2=10 status", enc(0x80, 0x52, 0x00, 0x10, nil, 256), apdu.SWWrongP1P2Plain, nil},
			{"P2=FF status", enc(0x80, 0x52, 0x00, 0xFF, nil, 256), apdu.SWWrongP1P2Plain, nil},
		}},
		{"status of a domain beyond EF 10A0 answers 6A86", init3, []call{
			{"P2=01", enc(0x80, 0x52, 0x00, 0x01, nil, 256), apdu.SWWrongP1P2, nil},
			{"P2=0F", enc(0x80, 0x52, 0x00, 0x0F, nil, 256), apdu.SWWrongP1P2, nil},
		}},
		{"unknown operation P1 answers 6A86", init3, []call{
			{"P1=05", enc(0x80, 0x52, 0x05, 0x00, nil, 256), apdu.SWWrongP1P2, nil},
		}},
		{"a share for another domain needs a user PIN login", domains2, []call{
			{"domain 1 without login", enc(0x80, 0x52, 0x00, 0x01, share1, 256), apdu.SWConditionsNotSatisfied, nil},
			{"domain 1 status needs none", enc(0x80, 0x52, 0x00, 0x01, nil, 256), apdu.SWReferenceNotFound, nil},
		}},
		// FIRMWARE-DEVIATION: cmd_key_domain.c refuses data for a domain
		// other than 0 unless has_session_pin AND isUserAuthenticated; an
		// SO-PIN session (has_session_sopin only) is not enough: 6985.
		{"FIRMWARE-DEVIATION SO-PIN session is not enough for domain 1", domains2, []call{
			{"VERIFY SO", verifySO(soPIN), apdu.SWOK, nil},
			{"domain 1 share", enc(0x80, 0x52, 0x00, 0x01, share1, 256), apdu.SWConditionsNotSatisfied, nil},
		}},
		{"unconfigured domain 0 (tag 97): status 6A88", domains2, []call{
			{"status", dkekStatus(), apdu.SWReferenceNotFound, nil},
		}},
		// FIRMWARE-DEVIATION: cmd_key_domain.c P1=00 with data: after the
		// 32-byte check, current == total (FF == FF for an unconfigured
		// domain) answers 6986 COMMAND NOT ALLOWED, not 6A88.
		{"FIRMWARE-DEVIATION share into an unconfigured domain 0 answers 6986", domains2, []call{
			{"share", importShare(share1), apdu.SWCommandNotAllowed, nil},
			{"short share still 6700 first", importShare(share1[:8]), apdu.SWWrongLength, nil},
		}},
		{"FIRMWARE-DEVIATION share into an unconfigured domain 1 with a PIN session answers 6986", domains2, []call{
			{"VERIFY", verifyPIN(userPIN), apdu.SWOK, nil},
			{"domain 1 share", enc(0x80, 0x52, 0x00, 0x01, share1, 256), apdu.SWCommandNotAllowed, nil},
		}},
	})
}

// TestDKEKSessions covers when the KCV can be computed and when the DKEK
// is committed under the MKEK (keys.md 1, pending_save_dkek).
func TestDKEKSessions(t *testing.T) {
	t.Parallel()
	zero := make([]byte, 8)

	t.Run("last share in a PIN session commits at once", func(t *testing.T) {
		d := initialized(t, 3)
		d.ok("VERIFY", verifyPIN(userPIN))
		d.ok("share 1", importShare(share1))
		d.ok("share 2", importShare(share2))
		if got := d.ok("share 3", importShare(share3)); !bytes.Equal(got, cat([]byte{3, 0}, kcvA)) {
			t.Errorf("last share in a session answered % X, want 03 00 + KCV A", got)
		}
		if err := d.PowerCycle(); err != nil { // nothing pending: harmless
			t.Fatal(err)
		}
		d.ok("SELECT", selectAID())
		d.ok("VERIFY", verifyPIN(userPIN))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{3, 0}, kcvA)) {
			t.Errorf("status % X after power cycle, want KCV A", got)
		}
	})

	t.Run("shares outstanding in a session give the MKEK decryption of the accumulator", func(t *testing.T) {
		d := initialized(t, 3)
		d.ok("VERIFY", verifyPIN(userPIN))
		got := d.ok("share 1", importShare(share1))
		want := kcvOf(cfbDecrypt(d.st.MKEK, d.st.MKEKIV, share1))
		if !bytes.Equal(got, cat([]byte{3, 2}, want)) {
			t.Errorf("share 1 in a session answered % X, want 03 02 %X (KCV of the plain accumulator read as if encrypted)", got, want)
		}
		if bytes.Equal(got[2:], zero) || bytes.Equal(got[2:], kcvOf(share1)) {
			t.Errorf("KCV with shares outstanding should be neither zero nor the accumulator's: % X", got[2:])
		}
	})

	t.Run("pending commit survives sessions and failed VERIFYs", func(t *testing.T) {
		d := initialized(t, 3)
		d.ok("share 1", importShare(share1))
		d.ok("share 2", importShare(share2))
		d.ok("share 3", importShare(share3))
		d.ok("new session", selectAID())
		d.expect("wrong PIN", verifyPIN([]byte("000000")), apdu.SWVerifyFailed|2)
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{3, 0}, zero)) {
			t.Errorf("status % X before a good VERIFY", got)
		}
		d.ok("new session", selectAID())
		d.ok("VERIFY", verifyPIN(userPIN))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{3, 0}, kcvA)) {
			t.Errorf("status % X, want KCV A", got)
		}
	})

	t.Run("an SO-PIN VERIFY commits too", func(t *testing.T) {
		d := initialized(t, 1)
		d.ok("share", importShare(share1))
		d.ok("VERIFY SO", verifySO(soPIN))
		if err := d.PowerCycle(); err != nil {
			t.Fatal(err)
		}
		d.ok("SELECT", selectAID())
		d.ok("VERIFY", verifyPIN(userPIN))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{1, 0}, kcvE)) {
			t.Errorf("status % X, want KCV E", got)
		}
	})

	t.Run("power cycle between non-final shares does no harm", func(t *testing.T) {
		d := initialized(t, 3)
		d.ok("share 1", importShare(share1))
		if err := d.PowerCycle(); err != nil {
			t.Fatal(err)
		}
		d.ok("SELECT", selectAID())
		d.ok("share 2", importShare(share2))
		if err := d.PowerCycle(); err != nil {
			t.Fatal(err)
		}
		d.ok("SELECT", selectAID())
		d.ok("share 3", importShare(share3))
		d.ok("VERIFY", verifyPIN(userPIN))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{3, 0}, kcvA)) {
			t.Errorf("status % X, want KCV A", got)
		}
	})

	// VECTORS.txt section 3/7, device E (transcripts/52-54): a power cycle
	// between the last share and the first VERIFY leaves the plain XOR in
	// flash; every later load decrypts it under the MKEK.
	for _, c := range []struct {
		dev    string
		shares [][]byte
		good   []byte
	}{
		{"E", [][]byte{share1}, kcvE},
		{"A", [][]byte{share1, share2, share3}, kcvA},
	} {
		t.Run("power cycle before VERIFY corrupts the DKEK of device "+c.dev, func(t *testing.T) {
			d := initialized(t, len(c.shares))
			for _, s := range c.shares {
				d.ok("share", importShare(s))
			}
			if err := d.PowerCycle(); err != nil {
				t.Fatal(err)
			}
			d.ok("SELECT", selectAID())
			d.ok("VERIFY", verifyPIN(userPIN))
			st := d.ok("status", dkekStatus())
			n := byte(len(c.shares))
			if len(st) != 10 || st[0] != n || st[1] != 0 {
				t.Fatalf("status % X", st)
			}
			kcv := st[2:]
			if bytes.Equal(kcv, c.good) || bytes.Equal(kcv, zero) {
				t.Fatalf("KCV % X: the power cycle did not corrupt the DKEK (intended %X)", kcv, c.good)
			}
			corrupt := cfbDecrypt(d.st.MKEK, d.st.MKEKIV, xorAll(c.shares...))
			if !bytes.Equal(kcv, kcvOf(corrupt)) {
				t.Errorf("KCV % X, want SHA-256 of the MKEK decryption of the plain XOR, %X", kcv, kcvOf(corrupt))
			}
			// The corruption is stable: later sessions see the same DKEK.
			d.ok("SELECT", selectAID())
			d.ok("VERIFY", verifyPIN(userPIN))
			if again := d.ok("status", dkekStatus()); !bytes.Equal(again[2:], kcv) {
				t.Errorf("KCV changed from % X to % X", kcv, again[2:])
			}
			// Keys wrapped now are under the corrupted DKEK: they open
			// with it and do not restore on a device with the right one.
			d.genEC(1, "secp256r1")
			blob, bl := d.wrapped(1)
			if !bytes.Equal(bl.KCV[:], kcv) {
				t.Errorf("blob KCV %X, want the device's % X", bl.KCV, kcv)
			}
			if _, err := bl.Open(corrupt); err != nil {
				t.Errorf("blob does not open under the corrupted DKEK: %v", err)
			}
			if _, err := bl.Open(xorAll(c.shares...)); err == nil {
				t.Errorf("blob opens under the intended DKEK")
			}
			good := withDKEK(t, c.shares...)
			good.expect("UNWRAP on a healthy device", unwrapKey(1, blob), apdu.SWExecError)
		})
	}

	t.Run("re-initialize forgets the DKEK and a pending commit", func(t *testing.T) {
		d := initialized(t, 1)
		d.ok("share", importShare(share1))
		d.ok("re-INITIALIZE", initialize(initData(2)))
		d.ok("SELECT", selectAID())
		d.ok("VERIFY", verifyPIN(userPIN))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{2, 2}, zero)) {
			t.Errorf("status % X, want 02 02 + zero KCV", got)
		}
		d.ok("share 2", importShare(share2))
		d.ok("share 3", importShare(share3))
		if got := d.ok("status", dkekStatus()); !bytes.Equal(got, cat([]byte{2, 0}, kcvOf(xorAll(share2, share3)))) {
			t.Errorf("status % X, want KCV of share 2 XOR share 3 (no trace of share 1)", got)
		}
	})
}

// TestBlobKCVMatchesRecording opens the recorded wrap files with DKEK A:
// the wrap package and the shares agree with the real device.
func TestBlobKCVMatchesRecording(t *testing.T) {
	for _, name := range []string{"wrap-key-rsa2048-ref1.bin", "wrap-key-ec256-ref2.bin"} {
		b, err := os.ReadFile(repoRoot + "testdata/pico-hsm/vectors/" + name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wrap.ParseFile(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		bl, err := wrap.ParseBlob(f.Blob)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(bl.KCV[:], kcvA) {
			t.Errorf("%s: KCV %X, want %X", name, bl.KCV, kcvA)
		}
		if _, err := bl.Open(xorAll(share1, share2, share3)); err != nil {
			t.Errorf("%s does not open with DKEK A: %v", name, err)
		}
	}
}

// TestKeyDomainSetup covers MANAGE DKEK P1=01, 03 and 04 (cmd_key_domain.c),
// as recorded in ../shared/pico-hsm/transcripts/60-key-domains-setup.txt
// [3]-[14] and transcripts/differential/fw-p3.txt [40].
func TestKeyDomainSetup(t *testing.T) {
	t.Parallel()
	zero := make([]byte, 8)
	domains4 := func(t *testing.T) *dev {
		d := factory(t)
		d.ok("INITIALIZE", initialize(cat(initData(1), t1(0x97, []byte{4}))))
		return d // still in INITIALIZE's PIN session
	}
	create := func(dom, n byte) []byte { return enc(0x80, 0x52, 0x01, dom, []byte{n}, 256) }
	runScenarios(t, []scenario{
		{"create, as recorded", domains4, []call{
			{"[3] status of domain 0", dkekStatus(), apdu.SWReferenceNotFound, nil},
			{"[6] status past the domains", enc(0x80, 0x52, 0x00, 0x04, nil, 256), apdu.SWWrongP1P2, nil},
			{"[7] create domain 2", create(2, 1), apdu.SWOK, cat([]byte{1, 1}, zero)},
			{"[8] wrong PIN ends the session", verifyPIN([]byte("000000")), apdu.SWVerifyFailed | 2, nil},
			{"[9] create without a session", create(0, 1), apdu.SWConditionsNotSatisfied, nil},
			{"[10] VERIFY", verifyPIN(userPIN), apdu.SWOK, nil},
			{"[11] create domain 0", create(0, 1), apdu.SWOK, cat([]byte{1, 1}, zero)},
			{"[12] create domain 1", create(1, 2), apdu.SWOK, cat([]byte{2, 2}, zero)},
			{"[13] again", create(1, 2), apdu.SWWrongP1P2, nil},
			{"[14] two data bytes", enc(0x80, 0x52, 0x01, 0x03, []byte{1, 1}, 256), apdu.SWWrongLength, nil},
			{"import into domain 0", importShare(share1), apdu.SWOK, cat([]byte{1, 0}, kcvOf(share1))},
		}},
		{"P1=01 without data answers 6700 (fw-p3 [40])", func(t *testing.T) *dev { return loggedIn(t, 3) }, []call{
			{"80 52 01 00 00", hx("80 52 01 00 00"), apdu.SWWrongLength, nil},
		}},
		{"P1=04 forgets the shares, P1=03 deletes the domain", domains4, []call{
			{"create domain 0", create(0, 2), apdu.SWOK, nil},
			// A partial DKEK's check value is that of the accumulator
			// decrypted as if it were committed (60-key-domains-setup [16]).
			{"share 1", importShare(share1), apdu.SWOK, nil},
			{"forget", enc(0x80, 0x52, 0x04, 0x00, nil, 256), apdu.SWOK, cat([]byte{2, 2}, zero)},
			{"share 2", importShare(share2), apdu.SWOK, nil},
			{"share 3", importShare(share3), apdu.SWOK, cat([]byte{2, 0}, kcvOf(xorAll(share2, share3)))},
			{"delete", enc(0x80, 0x52, 0x03, 0x00, nil, 256), apdu.SWReferenceNotFound, nil},
			{"status", dkekStatus(), apdu.SWReferenceNotFound, nil},
			{"delete again", enc(0x80, 0x52, 0x03, 0x00, nil, 256), apdu.SWWrongP1P2, nil},
		}},
		{"P1=03 refuses a domain with files in it", domains4, []call{
			{"create domain 0", create(0, 1), apdu.SWOK, nil},
			{"a file", updateBin(0xCF01, 0, []byte{1}), apdu.SWOK, nil},
			{"delete", enc(0x80, 0x52, 0x03, 0x00, nil, 256), apdu.SWFileExists, nil},
		}},
		{"P1=02 without a device-signed certificate", domains4, []call{
			{"no tag 54", enc(0x80, 0x52, 0x02, 0x01, []byte{0x7F, 0x21, 0x00}, 256), apdu.SWWrongData, nil},
			{"tag 54", enc(0x80, 0x52, 0x02, 0x01, []byte{0x54, 0x01, 0x00}, 256), apdu.SWConditionsNotSatisfied, nil},
		}},
	})
}
