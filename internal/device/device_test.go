package device

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebfe/scard"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pcsc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

func TestOutcome(t *testing.T) {
	removed := &pcsc.Error{Op: "transmit", Reader: "r", Kind: pcsc.ErrCardRemoved, Code: scard.ErrRemovedCard}
	comm := &pcsc.Error{Op: "transmit", Reader: "r", Code: scard.ErrCommError}
	for _, c := range []struct {
		name                       string
		err                        error
		interrupted, unknown, refd bool
		again                      string
	}{
		{"card removed", fmt.Errorf("list objects: %w", removed), true, true, false, ""},
		{"transport failure without a sentinel", comm, true, true, false, ": run the command again"},
		{"malformed answer", fmt.Errorf("card answered X: %w: response of 1 bytes", apdu.ErrMalformed), true, true, false, ": run the command again"},
		{"memory failure", fmt.Errorf("unwrap: %w", &apdu.StatusError{SW: 0x6581}), false, true, false, ": run the command again"},
		{"no precise diagnosis", &apdu.StatusError{SW: 0x6F00}, false, true, false, ": run the command again"},
		{"blob refused", &apdu.StatusError{SW: 0x6400}, false, false, true, ": run the command again"},
		{"wrong PIN", &apdu.StatusError{SW: 0x63C2}, false, false, true, ": run the command again"},
		{"local error", errors.New("key reference must be from 1 to 255"), false, false, false, ": run the command again"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Interrupted(c.err); got != c.interrupted {
				t.Errorf("Interrupted = %v", got)
			}
			if got := OutcomeUnknown(c.err); got != c.unknown {
				t.Errorf("OutcomeUnknown = %v", got)
			}
			if got := Refused(c.err); got != c.refd {
				t.Errorf("Refused = %v", got)
			}
			if got := Again(c.err); got != c.again {
				t.Errorf("Again = %q", got)
			}
		})
	}
}

// A fault in the simulated device reaches the caller as the PC/SC error a
// real reader gives, from the first APDU on (Open's SELECT), and TestHook
// sees every connection before that APDU.
func TestSimFaults(t *testing.T) {
	defer func() { TestHook = nil }()
	for _, c := range []struct {
		fault string
		kind  error
		code  scard.Error
		msg   string
	}{
		{"removed:before:1", pcsc.ErrCardRemoved, scard.ErrRemovedCard, "the card was removed or reset during the operation"},
		{"reset:after:1", pcsc.ErrCardRemoved, scard.ErrResetCard, "SCARD_W_RESET_CARD"},
		{"noservice:before:1", pcsc.ErrNoService, scard.ErrNoService, "pcscd is not running"},
		{"sw=6581:before:1", apdu.ErrMemoryFailure, 0, "device memory failure (SW 6581)"},
		{"truncate:after:1", apdu.ErrMalformed, 0, "has no status word"},
	} {
		t.Run(c.fault, func(t *testing.T) {
			f, err := sim.ParseFault(c.fault)
			if err != nil {
				t.Fatal(err)
			}
			hooked := 0
			TestHook = func(conn *Conn) {
				hooked++
				conn.Sim.Inject(f)
			}
			path := filepath.Join(t.TempDir(), "dev.json")
			_, err = Open(Options{Reader: "sim:" + path})
			if hooked != 1 || !errors.Is(err, c.kind) || (c.code != 0 && !errors.Is(err, c.code)) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("hooked %d times; err %v", hooked, err)
			}
			if !strings.Contains(err.Error(), "the command did not start, the device is unchanged") {
				t.Errorf("Open's error does not say the device is unchanged: %v", err)
			}
			// The lock is released: the device opens again.
			TestHook = nil
			conn, err := Open(Options{Reader: "sim:" + path})
			if err != nil {
				t.Fatal(err)
			}
			conn.Close()
		})
	}
}

// A simulated device whose firmware hangs (issue 9 section 6) fails as a
// card that does not respond: the command is interrupted, its outcome
// unknown, and the message says to unplug the device.
func TestSimHang(t *testing.T) {
	defer func() { TestHook = nil }()
	TestHook = func(conn *Conn) { conn.Sim.FirmwareHangs = true }
	path := filepath.Join(t.TempDir(), "dev.json")
	conn, err := Open(Options{Reader: "sim:" + path})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// CHANGE PIN on a device never initialized hangs the firmware. The
	// tool never sends it; the transport is driven directly here.
	tr := simCard{conn.Sim, conn.Reader}
	_, err = tr.Transmit([]byte{0x00, 0x24, 0x00, 0x81, 0x02, 0x31, 0x32, 0x33, 0x34})
	want := `the card does not respond: unplug it and plug it in again (transmit "sim:` + path + `": SCARD_W_UNRESPONSIVE_CARD)`
	if !errors.Is(err, pcsc.ErrCardUnresponsive) || !errors.Is(err, scard.ErrUnresponsiveCard) || err.Error() != want {
		t.Fatalf("err %v\nwant %s", err, want)
	}
	if !Interrupted(err) || !OutcomeUnknown(err) || Refused(err) || Again(err) != "" {
		t.Errorf("Interrupted %v, OutcomeUnknown %v, Refused %v, Again %q", Interrupted(err), OutcomeUnknown(err), Refused(err), Again(err))
	}
	// Every later APDU of the session gets no answer either.
	if _, err := conn.PINStatus(0x81); !errors.Is(err, pcsc.ErrCardUnresponsive) {
		t.Errorf("VERIFY after the hang: %v", err)
	}
}

// Intercept sees every APDU and may answer in the device's place.
func TestIntercept(t *testing.T) {
	defer func() { TestHook = nil }()
	var seen []byte
	TestHook = func(conn *Conn) {
		conn.Intercept(func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error) {
			seen = append(seen, cmd[1])
			if cmd[1] == 0x20 {
				return []byte{0x69, 0x83}, nil
			}
			return send(cmd)
		})
	}
	conn, err := Open(Options{Reader: "sim:" + filepath.Join(t.TempDir(), "dev.json")})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.PINStatus(0x81); err != nil {
		t.Fatal(err)
	}
	st, _ := conn.PINStatus(0x81)
	if !st.Blocked || string(seen) != "\xA4\x20\x20" {
		t.Fatalf("status %+v, INS seen % X", st, seen)
	}
}
