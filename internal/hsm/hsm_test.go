package hsm

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

func newDevice(t *testing.T) (*Device, *bytes.Buffer) {
	t.Helper()
	s, err := sim.NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	var trace bytes.Buffer
	return New(s, &trace), &trace
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// initialize sends the INITIALIZE that sc-hsm-tool sent in
// transcripts/04-initialize.txt.
func initialize(t *testing.T, d *Device) {
	t.Helper()
	if _, err := d.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	data := mustHex(t, "80020001 8106363438323139 82083537363231383830 910103 920103")
	if _, err := d.Channel().Do(apdu.Command{CLA: 0x80, INS: 0x50, Data: data, Secret: true}); err != nil {
		t.Fatal(err)
	}
}

func TestParseFCI(t *testing.T) {
	tests := []struct {
		fcp     string
		version string
		options uint16
		bad     bool
	}{
		{"6222810200008201018302000084 0B 2B0601040181C31F020100 8A0105 8505 0000FF0606", "6.6", 0, false},
		{"6222810200008201018302000084 0B 2B0601040181C31F020100 8A0105 8505 0001FF0606", "6.6", 1, false},
		{"62058503FF0401", "4.1", 0, false},
		{"6F00", "", 0, true},
		{"62", "", 0, true},
		{"6203820101", "", 0, true},
		{"62FF8505", "", 0, true},
	}
	for _, tt := range tests {
		info, err := ParseFCI(mustHex(t, tt.fcp))
		if tt.bad {
			if err == nil {
				t.Errorf("%s: accepted", tt.fcp)
			}
			continue
		}
		if err != nil || info.Version() != tt.version || info.Options != tt.options {
			t.Errorf("%s: %+v %v", tt.fcp, info, err)
		}
	}
}

func TestStatusLifecycle(t *testing.T) {
	d, _ := newDevice(t)
	st, err := d.ReadStatus(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	st.WriteText(&out)
	want := "Version              : 6.6\n" +
		"SmartCard-HSM has never been initialized. Please use --initialize to set SO-PIN and user PIN.\n" +
		"DKEK shares          : 0\n"
	if out.String() != want {
		t.Fatalf("factory status:\n%s", out.String())
	}
	if _, err := d.ReadStatus([]byte("648219"), false); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("PIN on a factory device: %v", err)
	}

	initialize(t, d)
	st, err = d.ReadStatus(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	st.WriteText(&out)
	// transcripts/05-status-after-initialize.txt, tool stdout
	want = "Version              : 6.6\nConfig options       :\n  User PIN reset with SO-PIN enabled\n" +
		"SO-PIN tries left    : 15\nUser PIN tries left  : 3\nDKEK shares          : 3\n" +
		"DKEK import pending, 3 share(s) still missing\n"
	if out.String() != want {
		t.Fatalf("status after initialize:\n%s", out.String())
	}

	// Import the three recorded shares; the KCV shows only with the PIN.
	for _, s := range []string{
		"C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077",
		"FDC9CC9D09EBB7374E4763818ABC20E2F40C5D0BDE156D4FEBFE3333586C7434",
		"F8615DB573D128CEBC558ADD95D1E44739B9144DDAA540AE0F5CE3E7E036ACF1",
	} {
		if _, err := d.SelectApplication(); err != nil {
			t.Fatal(err)
		}
		if _, err := d.ImportDKEKShare(mustHex(t, s)); err != nil {
			t.Fatal(err)
		}
	}
	st, err = d.ReadStatus(nil, false)
	if err != nil || st.KCV != "0000000000000000" || st.KCVVerified {
		t.Fatalf("without PIN: %+v %v", st, err)
	}
	st, err = d.ReadStatus([]byte("648219"), false)
	if err != nil || st.KCV != "440B48E7FAEBC853" || !st.KCVVerified {
		t.Fatalf("with PIN: %+v %v", st, err)
	}
	if _, err := d.ImportDKEKShare(make([]byte, 32)); !errors.Is(err, ErrAllSharesImported) || !apdu.IsStatus(err, 0x6986) {
		t.Fatalf("extra share: %v", err)
	}
}

func TestVerifyPIN(t *testing.T) {
	d, trace := newDevice(t)
	d.SelectApplication()
	if err := d.VerifyPIN(UserPIN, []byte("648219")); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("before initialize: %v", err)
	}
	initialize(t, d)
	d.SelectApplication()
	var pe *PINError
	err := d.VerifyPIN(UserPIN, []byte("000000"))
	if !errors.As(err, &pe) || pe.TriesLeft != 2 || pe.Blocked || err.Error() != "wrong user PIN, 2 tries left (SW 63C2)" {
		t.Fatalf("first wrong PIN: %v", err)
	}
	err = d.VerifyPIN(UserPIN, []byte("000000"))
	if !errors.As(err, &pe) || pe.TriesLeft != 1 || !strings.Contains(err.Error(), "the next wrong user PIN blocks it") {
		t.Fatalf("second wrong PIN: %v", err)
	}
	st, _ := d.PINStatus(UserPIN)
	if st.TriesLeft != 1 || st.Blocked {
		t.Fatalf("status: %+v", st)
	}
	err = d.VerifyPIN(UserPIN, []byte("000000"))
	if !errors.As(err, &pe) || !pe.Blocked || !errors.Is(err, apdu.ErrPINBlocked) {
		t.Fatalf("third wrong PIN: %v", err)
	}
	if err := d.VerifyPIN(UserPIN, []byte("648219")); !errors.As(err, &pe) || !pe.Blocked {
		t.Fatalf("right PIN when blocked: %v", err)
	}
	st, _ = d.PINStatus(UserPIN)
	if !st.Blocked {
		t.Fatalf("status when blocked: %+v", st)
	}
	so, _ := d.PINStatus(SOPIN)
	if so.TriesLeft != 15 {
		t.Fatalf("SO-PIN: %+v", so)
	}
	if strings.Contains(trace.String(), "36 34 38 32 31 39") || strings.Contains(trace.String(), "30 30 30 30 30 30") {
		t.Fatalf("trace leaks a PIN:\n%s", trace.String())
	}
}

func TestFiles(t *testing.T) {
	d, _ := newDevice(t)
	initialize(t, d)
	fids, err := d.ListObjects()
	if err != nil || len(fids) != 2 || fids[0] != 0xC400 || fids[1] != 0xCC00 {
		t.Fatalf("list: %04X %v", fids, err)
	}
	cert, err := d.ReadFile(FIDDeviceCert)
	if err != nil || len(cert) != 798 || cert[0] != 0x67 {
		t.Fatalf("device certificate: %d bytes, %v", len(cert), err)
	}
	big := bytes.Repeat([]byte("0123456789"), 300) // 3000 bytes: more than one short APDU
	if err := d.UpdateFile(0xC401, big); err != nil {
		t.Fatal(err)
	}
	back, err := d.ReadFile(0xC401)
	if err != nil || !bytes.Equal(back, big) {
		t.Fatalf("read back %d bytes, %v", len(back), err)
	}
	if err := d.DeleteFile(0xC401); err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadFile(0xC401)
	if !errors.Is(err, apdu.ErrFileNotFound) || !strings.Contains(err.Error(), "private key description of key reference 1 not found") {
		t.Fatalf("deleted file: %v", err)
	}
	if err := d.DeleteFile(0xC405); !errors.Is(err, apdu.ErrFileNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
	if _, err := d.ReadFile(0xCC00); !errors.Is(err, apdu.ErrSecurityStatus) {
		t.Fatalf("reading the device key: %v", err)
	}
	r, err := d.GetChallenge(32)
	if err != nil || len(r) != 32 {
		t.Fatalf("challenge: %v", err)
	}
}

func TestNotSmartCardHSM(t *testing.T) {
	d := New(blank{}, nil)
	if _, err := d.SelectApplication(); !errors.Is(err, ErrNotSmartCardHSM) {
		t.Fatalf("%v", err)
	}
}

type blank struct{}

func (blank) Transmit([]byte) ([]byte, error) { return []byte{0x6A, 0x82}, nil }

func TestKCV(t *testing.T) {
	k := KCV(mustHex(t, "CCA90B3A41CC892109535829354821FFDCD666F33E9AC9C855ECF3D45A13E8B2"))
	if hex.EncodeToString(k[:]) != "440b48e7faebc853" {
		t.Fatalf("%X", k)
	}
}
