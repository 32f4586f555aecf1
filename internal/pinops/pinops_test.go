package pinops

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

var (
	userPIN = []byte("648219")
	soPIN   = []byte("57621880") // 3537363231383830 in hex
	newPIN  = []byte("24681012")
)

// open opens a simulated device in a fresh state file whose firmware hangs
// where the real one does (sim FirmwareHangs), and returns it with the
// commands it received.
func open(t *testing.T, path string) (*device.Conn, *[][]byte) {
	t.Helper()
	var cmds [][]byte
	device.TestHook = func(c *device.Conn) {
		c.Sim.FirmwareHangs = true
		c.Intercept(func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error) {
			cmds = append(cmds, append([]byte(nil), cmd...))
			return send(cmd)
		})
	}
	t.Cleanup(func() { device.TestHook = nil })
	conn, err := device.Open(device.Options{Reader: "sim:" + path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, &cmds
}

// initialized initializes a simulated device with options opts, a random
// DKEK and 3 tries, and reopens it.
func initialized(t *testing.T, opts uint16) (*device.Conn, *[][]byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dev.json")
	conn, _ := open(t, path)
	p := &hsm.InitParams{SOPIN: soPIN, PIN: userPIN, Retries: 3, Options: opts, DKEKShares: 0}
	if _, err := conn.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Initialize(p); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	return open(t, path)
}

func block(t *testing.T, conn *device.Conn) {
	t.Helper()
	for range 3 {
		if err := conn.VerifyPIN(hsm.UserPIN, []byte("000000")); err == nil {
			t.Fatal("a wrong PIN verified")
		}
	}
}

func sent(cmds [][]byte, ins byte) bool {
	for _, c := range cmds {
		if len(c) > 1 && c[1] == ins {
			return true
		}
	}
	return false
}

// A device never initialized gets no CHANGE REFERENCE DATA (it hangs the
// firmware) and no RESET RETRY COUNTER: every operation refuses after
// SELECT and the PIN status.
func TestNeverInitialized(t *testing.T) {
	ops := map[string]func(*device.Conn) error{
		"change-pin": func(c *device.Conn) error { _, err := ChangePIN(c, userPIN, newPIN, false); return err },
		"change-so-pin": func(c *device.Conn) error {
			return ChangeSOPIN(c, soPIN, []byte{1, 2, 3, 4, 5, 6, 7, 8}, false)
		},
		"unblock-pin":       func(c *device.Conn) error { _, err := Unblock(c, soPIN, newPIN, false); return err },
		"unblock-pin reset": func(c *device.Conn) error { _, err := Unblock(c, soPIN, nil, false); return err },
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			conn, cmds := open(t, filepath.Join(t.TempDir(), "new.json"))
			err := op(conn)
			if !errors.Is(err, hsm.ErrNotInitialized) {
				t.Fatalf("err = %v, want ErrNotInitialized", err)
			}
			if conn.Sim.Hung() || sent(*cmds, 0x24) || sent(*cmds, 0x2C) {
				t.Errorf("a PIN command reached the device never initialized: %X", *cmds)
			}
		})
	}
}

// change-pin keeps the DKEK: the check value read with the new PIN is the
// one read with the old PIN; the old PIN then fails.
func TestChangePINKeepsDKEK(t *testing.T) {
	conn, _ := initialized(t, hsm.OptResetRetryCounter)
	res, err := ChangePIN(conn, userPIN, newPIN, false)
	if err != nil {
		t.Fatal(err)
	}
	if !res.KCVUnchanged || len(res.KCV) != 16 || res.KCV == strings.Repeat("0", 16) {
		t.Fatalf("result %+v: want the real check value, unchanged", res)
	}
	if _, err := conn.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	var pe *hsm.PINError
	if err := conn.VerifyPIN(hsm.UserPIN, userPIN); !errors.As(err, &pe) || pe.TriesLeft != 2 {
		t.Errorf("old PIN: %v, want wrong with 2 tries left", err)
	}
	res2, err := ChangePIN(conn, newPIN, userPIN, false)
	if err != nil || res2.KCV != res.KCV {
		t.Errorf("change back: %+v, %v; want KCV %s", res2, err, res.KCV)
	}
}

// The last try of the current PIN is refused without allowLastTry, before
// any PIN is sent, and a blocked PIN is never sent.
func TestChangePINGuards(t *testing.T) {
	conn, cmds := initialized(t, hsm.OptResetRetryCounter)
	for range 2 {
		conn.VerifyPIN(hsm.UserPIN, []byte("000000"))
	}
	*cmds = nil
	if _, err := ChangePIN(conn, userPIN, newPIN, false); err == nil || !strings.Contains(err.Error(), "--last-try") {
		t.Errorf("one try left: %v, want the --last-try refusal", err)
	}
	for _, c := range *cmds {
		if len(c) > 5 && (c[1] == 0x20 || c[1] == 0x24) {
			t.Errorf("a PIN was sent: %X", c)
		}
	}
	conn.VerifyPIN(hsm.UserPIN, []byte("000000"))
	*cmds = nil
	_, err := ChangePIN(conn, userPIN, newPIN, true)
	if err == nil || !strings.Contains(err.Error(), "unblock-pin") || sent(*cmds, 0x24) {
		t.Errorf("blocked: %v (CHANGE sent: %v), want a refusal naming unblock-pin", err, sent(*cmds, 0x24))
	}
}

// unblock-pin with and without a new PIN, on a device whose options allow
// each (0021: RESET RETRY COUNTER P1 01 needs HSM_OPT_RRC_RESET_ONLY).
func TestUnblock(t *testing.T) {
	conn, _ := initialized(t, hsm.OptResetRetryCounter|hsm.OptResetRetryOnly)
	before, err := ChangePIN(conn, userPIN, newPIN, false)
	if err != nil {
		t.Fatal(err)
	}
	block(t, conn)
	res, err := Unblock(conn, soPIN, nil, false)
	if err != nil || res.TriesLeft != 3 {
		t.Fatalf("reset only: %+v, %v; want 3 tries left", res, err)
	}
	if err := conn.VerifyPIN(hsm.UserPIN, newPIN); err != nil {
		t.Errorf("the PIN after a reset alone: %v, want it unchanged", err)
	}
	block(t, conn)
	res, err = Unblock(conn, soPIN, userPIN, false)
	if err != nil || res.KCV != before.KCV {
		t.Fatalf("reset with a new PIN: %+v, %v; want KCV %s", res, err, before.KCV)
	}
}

// Without option 0001 or, for a reset alone, 0020, unblock-pin refuses
// before RESET RETRY COUNTER; a wrong SO-PIN shows its tries left.
func TestUnblockRefusals(t *testing.T) {
	conn, cmds := initialized(t, 0)
	if _, err := Unblock(conn, soPIN, newPIN, false); !errors.Is(err, ErrNoReset) || sent(*cmds, 0x2C) {
		t.Errorf("no option: %v, want ErrNoReset with nothing sent", err)
	}
	conn, cmds = initialized(t, hsm.OptResetRetryCounter)
	if _, err := Unblock(conn, soPIN, nil, false); !errors.Is(err, ErrNeedNewPIN) || sent(*cmds, 0x2C) {
		t.Errorf("reset only without 0020: %v, want ErrNeedNewPIN with nothing sent", err)
	}
	_, err := Unblock(conn, []byte("00000000"), newPIN, false)
	var pe *hsm.PINError
	if !errors.As(err, &pe) || pe.Ref != hsm.SOPIN || pe.TriesLeft != 14 {
		t.Errorf("wrong SO-PIN: %v, want 14 tries left", err)
	}
}

// On a transport-PIN device VERIFY answers 6984 to everything: the PIN is
// changed without the old PIN verified first, and the device leaves
// transport mode.
func TestChangeTransportPIN(t *testing.T) {
	conn, _ := initialized(t, hsm.OptResetRetryCounter|hsm.OptTransportPIN)
	res, err := ChangePIN(conn, userPIN, newPIN, false)
	if err != nil || !res.TransportPIN {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, err := conn.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := conn.VerifyPIN(hsm.UserPIN, newPIN); err != nil {
		t.Errorf("the new PIN: %v", err)
	}
}

// change-so-pin: the new SO-PIN verifies; a firmware that changes only the
// user PIN (6B00 to P2 88) says so.
func TestChangeSOPIN(t *testing.T) {
	conn, _ := initialized(t, hsm.OptResetRetryCounter)
	nw := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	if err := ChangeSOPIN(conn, soPIN, nw, false); err != nil {
		t.Fatal(err)
	}
	if _, err := Unblock(conn, nw, newPIN, false); err != nil {
		t.Errorf("unblock with the new SO-PIN: %v", err)
	}
	conn.Intercept(func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error) {
		if len(cmd) > 3 && cmd[1] == 0x24 && cmd[3] == 0x88 {
			return []byte{0x6B, 0x00}, nil
		}
		return send(cmd)
	})
	err := ChangeSOPIN(conn, nw, soPIN, false)
	if !errors.Is(err, hsm.ErrSOPINChangeUnsupported) || !apdu.IsStatus(err, apdu.SWWrongP1P2Plain) && !strings.Contains(err.Error(), "6B00") {
		t.Errorf("old firmware: %v, want ErrSOPINChangeUnsupported", err)
	}
}
