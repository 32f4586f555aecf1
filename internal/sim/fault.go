package sim

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Fault injection. A Fault says what goes wrong at which APDU of a card
// session, so that tests can break every step of a multi-APDU operation and
// check what the tool says and what the device and the disk hold
// afterwards (docs/reliability.md). It is applied through Device.Fault, so
// the firmware model itself is untouched: a fault only decides whether a
// command reaches the firmware and what the host gets back.

// FaultKind is what goes wrong.
type FaultKind string

const (
	// FaultRemoved is the device pulled out of the USB port. A Pico HSM is
	// its own reader, so this is a power cycle: the firmware's RAM is lost
	// (the PIN session and a DKEK commit still pending; see PowerCycle),
	// the flash keeps what was written. Every later APDU of the session
	// fails with ErrCardRemoved.
	FaultRemoved FaultKind = "removed"
	// FaultReset is a reset of the card by the reader (another program's
	// SCardDisconnect with SCARD_RESET_CARD, or pcscd recovering a reader).
	// The emulator ignores resets (see Reset), but a USB Pico HSM does not:
	// the CCID power-off stops the card thread, which unloads the
	// application (pico-keys-sdk apdu.c: on EV_EXIT it calls
	// current_app->unload and clears current_app; pico-hsm sc_hsm.c
	// sc_hsm_unload clears has_session_pin, has_session_sopin and
	// isUserAuthenticated), and the power-on starts it deselected. So the
	// session ends (ResetSession) and the flash and the rest of the RAM, a
	// pending DKEK commit included, stay. Every later APDU of the session
	// fails with ErrCardReset, as SCARD_W_RESET_CARD does until the host
	// reconnects.
	FaultReset FaultKind = "reset"
	// FaultNoService is pcscd going away: the device is untouched, and
	// every later APDU of the session fails with ErrNoService.
	FaultNoService FaultKind = "noservice"
	// FaultSW answers the status word Fault.SW (6581 memory failure, 6F00
	// no precise diagnosis, ...) instead of the firmware's answer.
	FaultSW FaultKind = "sw"
	// FaultTruncate delivers only the first byte of the answer, so the
	// host gets no status word. Longer cuts read as a wrong status word
	// (the last two bytes that arrived), which FaultSW covers
	// deterministically; on CCID and vpcd, which frame each message with
	// its length, they surface as transport errors instead.
	FaultTruncate FaultKind = "truncate"
)

// FaultWhen says whether the fault strikes before the command reaches the
// firmware or after the firmware has executed it.
type FaultWhen string

const (
	// Before: the command is not executed.
	Before FaultWhen = "before"
	// After: the command is executed and its effects stay; the answer is
	// lost or replaced.
	After FaultWhen = "after"
)

// Fault is one planned failure: Kind strikes When the AtAPDU-th APDU of
// the session arrives (1 is the first APDU after Inject; GET RESPONSE
// counts, as it does in the -v trace). SW is the status word of FaultSW.
type Fault struct {
	AtAPDU int
	When   FaultWhen
	Kind   FaultKind
	SW     uint16
}

// Errors the transport returns after a fault. internal/device turns them
// into the PC/SC errors a real reader gives (pcsc.ErrCardRemoved with
// SCARD_W_REMOVED_CARD or SCARD_W_RESET_CARD, pcsc.ErrNoService), so that
// messages read as they do on the real stack.
var (
	ErrCardRemoved = errors.New("simulated device: the card was removed")
	ErrCardReset   = errors.New("simulated device: the card was reset")
	ErrNoService   = errors.New("simulated device: pcscd is gone")
)

// String is the form ParseFault reads: "removed:after:5",
// "sw=6581:before:4".
func (f Fault) String() string {
	k := string(f.Kind)
	if f.Kind == FaultSW {
		k = fmt.Sprintf("sw=%04X", f.SW)
	}
	return fmt.Sprintf("%s:%s:%d", k, f.When, f.AtAPDU)
}

// ParseFault reads KIND:WHEN:N, KIND being removed, reset, noservice,
// sw=XXXX (four hex digits) or truncate, WHEN before or after, N the APDU
// number from 1. A truncated answer needs an answer, so truncate is only
// "after".
func ParseFault(s string) (Fault, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Fault{}, fmt.Errorf("fault %q: want KIND:before|after:N", s)
	}
	var f Fault
	kind, arg, hasArg := strings.Cut(parts[0], "=")
	f.Kind = FaultKind(kind)
	switch f.Kind {
	case FaultRemoved, FaultReset, FaultNoService, FaultTruncate:
		if hasArg {
			return Fault{}, fmt.Errorf("fault %q: %s takes no argument", s, kind)
		}
	case FaultSW:
		v, err := strconv.ParseUint(arg, 16, 16)
		if err != nil || len(arg) != 4 {
			return Fault{}, fmt.Errorf("fault %q: sw needs four hex digits, as in sw=6581", s)
		}
		f.SW = uint16(v)
	default:
		return Fault{}, fmt.Errorf("fault %q: unknown kind %q (removed, reset, noservice, sw=XXXX, truncate)", s, kind)
	}
	f.When = FaultWhen(parts[1])
	if f.When != Before && f.When != After {
		return Fault{}, fmt.Errorf("fault %q: say before or after, not %q", s, parts[1])
	}
	if f.Kind == FaultTruncate && f.When != After {
		return Fault{}, fmt.Errorf("fault %q: only an answer can be truncated: use truncate:after:N", s)
	}
	n, err := strconv.Atoi(parts[2])
	if err != nil || n < 1 {
		return Fault{}, fmt.Errorf("fault %q: the APDU number must be 1 or more", s)
	}
	f.AtAPDU = n
	return f, nil
}

// Inject arms f on the device through Device.Fault, replacing any hook
// set before. APDUs are counted from the next one.
func (d *Device) Inject(f Fault) {
	n := 0
	// gone is the error every APDU gets once the card was removed or
	// reset, or pcscd went away: the session cannot continue.
	var gone error
	d.Fault = func(cmd []byte) ([]byte, error) {
		if gone != nil {
			return nil, gone
		}
		n++
		if n != f.AtAPDU {
			return nil, nil
		}
		var out []byte
		if f.When == After {
			var err error
			if out, err = d.execute(cmd); err != nil {
				return nil, err
			}
		}
		switch f.Kind {
		case FaultRemoved:
			gone = ErrCardRemoved
			if err := d.PowerCycle(); err != nil {
				return nil, err
			}
			return nil, gone
		case FaultReset:
			gone = ErrCardReset
			if err := d.ResetSession(); err != nil {
				return nil, err
			}
			return nil, gone
		case FaultNoService:
			gone = ErrNoService
			return nil, gone
		case FaultSW:
			return sw(f.SW), nil
		case FaultTruncate:
			return out[:1], nil
		}
		return nil, fmt.Errorf("simulated device: unknown fault %q", f.Kind)
	}
}

// ResetSession is what a reset does to a USB Pico HSM, as opposed to the
// emulator (see Reset and FaultReset): the session ends, so the
// application must be selected and the PIN verified again. The flash and a
// pending DKEK commit stay.
func (d *Device) ResetSession() error {
	d.st.RAM.Session = session{}
	return d.save(false)
}

// PublicKey returns the public part of the key the device really holds at
// ref, whatever its files C4xx and CExx say: the RSA modulus, or the EC
// public point uncompressed. Tests use it to tell which key a reference
// holds after an interrupted restore. It is nil for no key or an AES key.
func (d *Device) PublicKey(ref byte) []byte {
	k, ok := d.st.Keys[ref]
	if !ok {
		return nil
	}
	switch k.Kind {
	case "rsa":
		return bytes.Clone(k.N)
	case "ec":
		return bytes.Clone(k.Pub)
	}
	return nil
}
