package ceremony

import (
	"bytes"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// inject arms a fault plan on the connection's simulated device.
func inject(t *testing.T, c interface{ Inject(sim.Fault) }, spec string) {
	t.Helper()
	f, err := sim.ParseFault(spec)
	if err != nil {
		t.Fatal(err)
	}
	c.Inject(f)
}

// Initialize on a factory device: VERIFY status of the SO-PIN (APDU 1),
// then INITIALIZE (2). A failure before INITIALIZE changes nothing; one
// at it leaves the device in either state, and the message says so.
func TestInitializeFaults(t *testing.T) {
	for _, c := range []struct {
		fault       string
		want        string
		initialized bool
	}{
		{"removed:before:1", "; nothing was changed, the device is as it was", false},
		{"sw=6581:before:1", "device memory failure (SW 6581); nothing was changed, the device is as it was: run the command again", false},
		{"sw=6581:before:2", "the device may or may not have been initialized: run the same initialize command again", false},
		{"removed:after:2", "the device may or may not have been initialized: run the same initialize command again", true},
		{"truncate:after:2", "the device may or may not have been initialized", true},
	} {
		t.Run(c.fault, func(t *testing.T) {
			conn := openSim(t, filepath.Join(t.TempDir(), "dev.json"))
			inject(t, conn.Sim, c.fault)
			_, err := Initialize(conn, InitOptions{Params: params(1)})
			conn.Sim.Fault = nil
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v", err)
			}
			if _, err := conn.SelectApplication(); err != nil {
				t.Fatal(err)
			}
			st, err := conn.PINStatus(hsm.SOPIN)
			if err != nil || st.NotInitialized == c.initialized {
				t.Fatalf("initialized: %v, want %v (%v)", !st.NotInitialized, c.initialized, err)
			}
		})
	}
}

// ImportShares with two shares and the PIN: DKEK status (1), VERIFY status
// (2), VERIFY (3), IMPORT DKEK SHARE (4, 5); without the PIN: DKEK status
// (1), IMPORT DKEK SHARE (2, 3). The message says which shares are in and
// which may be, so that none is imported twice, and, without a PIN
// session, how to find out whether the unplugged device lost its DKEK.
func TestImportSharesFaults(t *testing.T) {
	for _, c := range []struct {
		fault    string
		noPIN    bool
		want     string
		imported int
	}{
		{"removed:before:2", false, "; no share was imported, the device is as it was", 0},
		{"sw=6F00:after:3", false, "unknown error in the device (SW 6F00); no share was imported, the device is as it was: run the command again", 0},
		{"removed:after:4", false, "; share 1 of 2 may or may not have been imported: run 'pico-hsm-tool status' to see how many shares the device still expects, then import only those", 1},
		{"sw=6581:before:4", false, "share 1 of 2 may or may not have been imported", 0},
		{"noservice:before:5", false, "share 2 of 2 may or may not have been imported (the 1 before it were)", 1},
		{"reset:after:5", false, "share 2 of 2 may or may not have been imported (the 1 before it were)", 2},
		{"removed:after:3", true, "if none is missing, run 'pico-hsm-tool status --pin' at once, which commits the DKEK, and compare its check value with the shares'", 2},
	} {
		t.Run(c.fault, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "dev.json")
			first := openSim(t, path)
			if _, err := Initialize(first, InitOptions{Params: params(2)}); err != nil {
				t.Fatal(err)
			}
			first.Close()
			conn := openSim(t, path)
			inject(t, conn.Sim, c.fault)
			var out bytes.Buffer
			o := ImportOptions{Shares: sharesA[:2], PIN: pin, Out: &out}
			if c.noPIN {
				o.PIN = nil
			}
			_, err := ImportShares(conn, o)
			conn.Sim.Fault = nil
			// A suggested command may name the reader (pico-hsm-tool
			// --reader R status): the advice, not the spelling, is tested.
			want := regexp.MustCompile(strings.ReplaceAll(regexp.QuoteMeta(c.want), "pico-hsm-tool ", `pico-hsm-tool (--reader \S+ )?`))
			if err == nil || !want.MatchString(err.Error()) {
				t.Fatalf("%v", err)
			}
			if st := status(t, conn); st.Shares-st.Outstanding != c.imported {
				t.Fatalf("%d shares imported, want %d", st.Shares-st.Outstanding, c.imported)
			}
		})
	}
}
