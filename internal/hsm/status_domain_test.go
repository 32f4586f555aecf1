package hsm

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// domainsDevice sets up a simulated device with 4 key domains as
// transcripts/60 does: domain 0 for 1 share (imported), domain 1 for 2
// shares (1 imported), domain 2 for 1 share (imported), domain 3 free.
func domainsDevice(t *testing.T) *Device {
	t.Helper()
	d := initDomains(t, 1)
	must := func(_ DKEKStatus, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(d.ImportDKEKShareInto(0, kdShare("0")))
	if err := d.VerifyPIN(UserPIN, []byte("648219")); err != nil {
		t.Fatal(err)
	}
	must(d.CreateKeyDomain(1, 2))
	must(d.ImportDKEKShareInto(1, kdShare("1")))
	must(d.CreateKeyDomain(2, 1))
	must(d.ImportDKEKShareInto(2, kdShare("2")))
	// VERIFY commits the DKEKs (VECTORS.txt section 7).
	if err := d.VerifyPIN(UserPIN, []byte("648219")); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStatusKeyDomains: on a device with key domains the status lists
// every slot; the check values are known only with the PIN; the first
// lines still describe domain 0 as sc-hsm-tool prints them.
func TestStatusKeyDomains(t *testing.T) {
	d := domainsDevice(t)

	st, err := d.ReadStatus(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.KeyDomains) != 4 {
		t.Fatalf("%d key domains, want 4: %+v", len(st.KeyDomains), st.KeyDomains)
	}
	for i, kd := range st.KeyDomains {
		if kd.KCV != nil {
			t.Errorf("domain %d: check value %s without the PIN, want unknown", i, *kd.KCV)
		}
	}
	st.KeyDomains[0].Keys, st.KeyDomains[1].Keys, st.KeysCounted = 1, 2, true
	var b bytes.Buffer
	st.WriteText(&b)
	want := `DKEK shares          : 1
DKEK key check value : 0000000000000000
Key domains          : 4
Key domain 0         : 1 share, check value unknown (give --pin), 1 key
Key domain 1         : 2 shares, 1 missing, 2 keys
Key domain 2         : 1 share, check value unknown (give --pin), 0 keys
Key domain 3         : not set up
`
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Errorf("status without PIN:\n%s\nwant it to end with:\n%s", got, want)
	}

	st, err = d.ReadStatus([]byte("648219"), false)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	st.WriteText(&b)
	// B5AB61CF11C72BEE: transcripts/60 [15]; domain 2 has a share of its
	// own, so a check value of its own.
	kcv2 := st.KeyDomains[2].KCV
	if kcv2 == nil || len(*kcv2) != 16 || *kcv2 == "0000000000000000" || *kcv2 == "B5AB61CF11C72BEE" {
		t.Fatalf("domain 2 check value %v with the PIN", kcv2)
	}
	want = `DKEK shares          : 1
DKEK key check value : B5AB61CF11C72BEE
Key domains          : 4
Key domain 0         : 1 share, check value B5AB61CF11C72BEE
Key domain 1         : 2 shares, 1 missing
Key domain 2         : 1 share, check value ` + *kcv2 + `
Key domain 3         : not set up
`
	if got := b.String(); !strings.HasSuffix(got, want) {
		t.Errorf("status with PIN (keys not counted):\n%s\nwant it to end with:\n%s", got, want)
	}
	if st.KeyDomains[1].KCV != nil {
		t.Errorf("domain 1 waits for a share but has check value %s", *st.KeyDomains[1].KCV)
	}

	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		`"key_domains":[{"domain":0,"set_up":true,"dkek_shares":1,"dkek_outstanding":0,"dkek_kcv":"B5AB61CF11C72BEE","key_count":0}`,
		`{"domain":1,"set_up":true,"dkek_shares":2,"dkek_outstanding":1,"dkek_kcv":null,"key_count":0}`,
		`{"domain":3,"set_up":false,"dkek_shares":0,"dkek_outstanding":0,"dkek_kcv":null,"key_count":0}]`,
	} {
		if !bytes.Contains(js, []byte(s)) {
			t.Errorf("JSON lacks %s:\n%s", s, js)
		}
	}
}

// TestStatusWithoutDomains: a device without key domains prints what it
// always printed, has no "key_domains" in JSON, and costs one more query,
// of slot 1, answered 6A86.
func TestStatusWithoutDomains(t *testing.T) {
	d, trace := newDevice(t)
	initialize(t, d)
	trace.Reset()
	st, err := d.ReadStatus(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.KeyDomains != nil {
		t.Errorf("key domains on a device without: %+v", st.KeyDomains)
	}
	var b bytes.Buffer
	st.WriteText(&b)
	if strings.Contains(b.String(), "Key domain") {
		t.Errorf("status mentions key domains:\n%s", b.String())
	}
	js, _ := json.Marshal(st)
	if bytes.Contains(js, []byte("key_domains")) {
		t.Errorf("JSON has key_domains: %s", js)
	}
	if n := strings.Count(trace.String(), "> DKEK status"); n != 2 {
		t.Errorf("%d DKEK status queries, want 2 (domain 0, then slot 1):\n%s", n, trace.String())
	}
	if !strings.Contains(trace.String(), "80 52 00 01") || !strings.Contains(trace.String(), "< 6A86") {
		t.Errorf("no query of slot 1 answered 6A86:\n%s", trace.String())
	}
}

// TestStatusDomainZeroFree: INITIALIZE with tag 97 and no follow-up
// leaves domain 0 free (transcripts/60 [3]); the status says so instead
// of failing on 6A88.
func TestStatusDomainZeroFree(t *testing.T) {
	s, err := sim.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	d := New(s, nil)
	if _, err := d.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	p := &InitParams{SOPIN: mustHex(t, "3537363231383830"), PIN: []byte("648219"), Retries: 3, Options: 1,
		DKEKShares: 1, KeyDomains: 2}
	// INITIALIZE alone, without Initialize's set-up of domain 0.
	if _, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x50, Data: p.Data(), Name: "INITIALIZE"}); err != nil {
		t.Fatal(err)
	}
	st, err := d.ReadStatus(nil, false)
	if err != nil {
		t.Fatalf("status of a device whose domain 0 is free: %v", err)
	}
	var b bytes.Buffer
	st.WriteText(&b)
	want := `DKEK shares          : 0
Key domains          : 2
Key domain 0         : not set up
Key domain 1         : not set up
`
	if !strings.HasSuffix(b.String(), want) {
		t.Errorf("status:\n%s\nwant it to end with:\n%s", b.String(), want)
	}
	if st.DKEK != nil || st.KnownKCV != nil {
		t.Errorf("domain 0 free but DKEK %+v, KCV %v", st.DKEK, st.KnownKCV)
	}
}
