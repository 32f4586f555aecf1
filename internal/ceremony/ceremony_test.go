package ceremony

import (
	"bytes"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

var (
	soPIN   = []byte("57621880")
	so      = mustHex("3537363231383830")
	pin     = []byte("648219")
	sharesA = [][]byte{
		mustHex("C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077"),
		mustHex("FDC9CC9D09EBB7374E4763818ABC20E2F40C5D0BDE156D4FEBFE3333586C7434"),
		mustHex("F8615DB573D128CEBC558ADD95D1E44739B9144DDAA540AE0F5CE3E7E036ACF1"),
	}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func openSim(t *testing.T, path string) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func params(shares int) hsm.InitParams {
	return hsm.InitParams{SOPIN: so, PIN: pin, Retries: 3, DKEKShares: shares, Options: hsm.OptResetRetryCounter}
}

func status(t *testing.T, c *device.Conn) hsm.DKEKStatus {
	t.Helper()
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	st, err := c.DKEKStatus()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestInitialize(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	res, err := Initialize(c, InitOptions{Params: params(3)})
	if err != nil || res.WasInitialized {
		t.Fatalf("%+v %v", res, err)
	}
	// A wrong SO-PIN changes nothing.
	p := params(1)
	p.SOPIN = mustHex("0000000000000000")
	if _, err := Initialize(c, InitOptions{Params: p}); !strings.Contains(err.Error(), "re-initializing needs its current SO-PIN: wrong SO-PIN, 14 tries left") {
		t.Fatalf("wrong SO-PIN: %v", err)
	}
	if st := status(t, c); st.Shares != 3 {
		t.Fatalf("device changed: %+v", st)
	}
	// Saying no changes nothing; the key count is shown first.
	asked := -1
	_, err = Initialize(c, InitOptions{Params: params(1), Confirm: func(n int) (bool, error) { asked = n; return false, nil }})
	if !errors.Is(err, ErrAborted) || asked != 0 {
		t.Fatalf("declined: %v, asked with %d", err, asked)
	}
	if st := status(t, c); st.Shares != 3 {
		t.Fatalf("device changed after no: %+v", st)
	}
	// A label is refused on a Pico HSM before anything changes.
	if _, err := Initialize(c, InitOptions{Params: params(1), Label: "vault"}); err == nil || !strings.Contains(err.Error(), "cannot store a token label") {
		t.Fatalf("label: %v", err)
	}
	if st := status(t, c); st.Shares != 3 {
		t.Fatalf("device changed after the label: %+v", st)
	}
	// Yes re-initializes.
	res, err = Initialize(c, InitOptions{Params: params(1), Confirm: func(int) (bool, error) { return true, nil }})
	if err != nil || !res.WasInitialized {
		t.Fatalf("%+v %v", res, err)
	}
	if st := status(t, c); st.Shares != 1 || st.Outstanding != 1 {
		t.Fatalf("%+v", st)
	}
}

func TestInitializeLastSOPINTry(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	if _, err := Initialize(c, InitOptions{Params: params(1)}); err != nil {
		t.Fatal(err)
	}
	c.SelectApplication()
	for i := 0; i < 14; i++ {
		c.VerifyPIN(hsm.SOPIN, []byte("wrongwro"))
	}
	_, err := Initialize(c, InitOptions{Params: params(2)})
	if err == nil || !strings.Contains(err.Error(), "the SO-PIN has 1 try left") {
		t.Fatalf("%v", err)
	}
	if _, err := Initialize(c, InitOptions{Params: params(2), AllowLastTry: true}); err != nil {
		t.Fatal(err)
	}
}

func TestImportShares(t *testing.T) {
	var warnings []string
	warn := func(f string, a ...any) { warnings = append(warnings, f) }

	// All three recorded shares with the PIN: committed, KCV checked.
	c := openSim(t, filepath.Join(t.TempDir(), "a.json"))
	Initialize(c, InitOptions{Params: params(3)})
	var out bytes.Buffer
	res, err := ImportShares(c, ImportOptions{Shares: sharesA, PIN: pin, Out: &out, Warn: warn})
	if err != nil || !res.Committed || res.Expected != "440B48E7FAEBC853" || res.Status.KCVHex() != "440B48E7FAEBC853" {
		t.Fatalf("%+v %v", res, err)
	}
	if !strings.HasSuffix(out.String(), "DKEK share imported\nDKEK shares          : 3\nDKEK key check value : 440B48E7FAEBC853\n") {
		t.Fatalf("output:\n%s", out.String())
	}
	if _, err := ImportShares(c, ImportOptions{Shares: sharesA[:1], Out: &out}); !errors.Is(err, hsm.ErrAllSharesImported) {
		t.Fatalf("extra share: %v", err)
	}

	// Without a PIN: imported, not committed, a warning.
	c = openSim(t, filepath.Join(t.TempDir(), "b.json"))
	Initialize(c, InitOptions{Params: params(1)})
	res, err = ImportShares(c, ImportOptions{Shares: sharesA[:1], Out: &out, Warn: warn})
	if !errors.Is(err, ErrNotCommitted) || res.Committed || res.Status.KCVKnown() {
		t.Fatalf("%+v %v", res, err)
	}
	if len(warnings) == 0 || !strings.Contains(warnings[len(warnings)-1], "NOT committed") {
		t.Fatalf("warnings %q", warnings)
	}

	// Asked for the PIN after the last share: committed.
	c = openSim(t, filepath.Join(t.TempDir(), "c.json"))
	Initialize(c, InitOptions{Params: params(1)})
	res, err = ImportShares(c, ImportOptions{Shares: sharesA[:1], Out: &out, Warn: warn,
		AskPIN: func() ([]byte, error) { return []byte("648219"), nil }})
	if err != nil || !res.Committed || res.Status.KCVHex() != "01B9858437B91648" {
		t.Fatalf("%+v %v", res, err)
	}

	// More shares than expected, or a wrong PIN: nothing imported.
	c = openSim(t, filepath.Join(t.TempDir(), "d.json"))
	Initialize(c, InitOptions{Params: params(2)})
	if _, err := ImportShares(c, ImportOptions{Shares: sharesA, Out: &out}); err == nil || !strings.Contains(err.Error(), "expects 2 more") {
		t.Fatalf("too many: %v", err)
	}
	if _, err := ImportShares(c, ImportOptions{Shares: sharesA[:2], PIN: []byte("000000"), Out: &out}); !errors.Is(err, apdu.ErrWrongPIN) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if st := status(t, c); st.Outstanding != 2 {
		t.Fatalf("imported anyway: %+v", st)
	}
}

// A device that reports another DKEK than the shares make is caught.
func TestImportSharesKCVMismatch(t *testing.T) {
	c := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
	Initialize(c, InitOptions{Params: params(1)})
	c.Sim.Fault = func(cmd []byte) ([]byte, error) {
		if len(cmd) > 4 && cmd[1] == 0x52 && cmd[4] == 0x20 {
			c.Sim.Fault = nil
			if _, err := c.Sim.Transmit(cmd); err != nil {
				return nil, err
			}
			return mustHex("0100DEADBEEFDEADBEEF9000"), nil
		}
		return nil, nil
	}
	var out bytes.Buffer
	_, err := ImportShares(c, ImportOptions{Shares: sharesA[:1], PIN: pin, Out: &out})
	if err == nil || !strings.Contains(err.Error(), "DKEK key check value DEADBEEFDEADBEEF differs from the shares' 01B9858437B91648") {
		t.Fatalf("%v", err)
	}
}

func TestCombinedKCV(t *testing.T) {
	if k := CombinedKCV(sharesA); k != "440B48E7FAEBC853" {
		t.Fatal(k)
	}
}
