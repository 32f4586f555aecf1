package hsm

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// PINState is what a VERIFY without data tells about a PIN
// (ISO 7816-4 section 11.5.6; pico-hsm cmd_verify.c).
type PINState struct {
	// Verified is true when the PIN is already verified in this session (9000).
	Verified bool `json:"verified"`
	// TriesLeft is the retry counter from 63Cx, or -1 when not reported.
	TriesLeft int `json:"tries_left"`
	// Blocked is true on 6983 or 63C0.
	Blocked bool `json:"blocked"`
	// NotInitialized is true when the device has never been initialized
	// (6A88 for the SO-PIN, transcripts/00-status-factory.txt [4]).
	NotInitialized bool `json:"not_initialized,omitempty"`
	// TransportPIN is true when the PIN is a transport PIN that must be
	// changed first (6984, sc-hsm-tool.c print_info).
	TransportPIN bool `json:"transport_pin,omitempty"`
	// PublicKeyAuth is true when public key authentication replaces the
	// PIN (6400, sc-hsm-tool.c print_info).
	PublicKeyAuth bool `json:"public_key_auth,omitempty"`
	// SW is the raw status word, kept for diagnostics.
	SW uint16 `json:"-"`
}

// PINStatus queries a PIN's state with VERIFY without data. It never uses
// up a try.
func (d *Device) PINStatus(ref byte) (PINState, error) {
	r, err := d.ch.Transmit(apdu.Command{INS: 0x20, P2: ref, Name: "VERIFY status query (no PIN sent)"})
	if err != nil {
		return PINState{}, err
	}
	st := PINState{TriesLeft: -1, SW: r.SW}
	switch {
	case r.SW == apdu.SWOK:
		st.Verified = true
	case r.SW&0xFFF0 == apdu.SWVerifyFailed:
		st.TriesLeft = int(r.SW & 0x0F)
		st.Blocked = st.TriesLeft == 0
	case r.SW == apdu.SWPINBlocked:
		st.Blocked, st.TriesLeft = true, 0
	case r.SW == apdu.SWReferenceNotFound:
		st.NotInitialized = true
	case r.SW == apdu.SWDataInvalid:
		st.TransportPIN = true
	case r.SW == apdu.SWExecError:
		st.PublicKeyAuth = true
	default:
		return st, fmt.Errorf("query %s state: %w", pinName(ref), r.Err())
	}
	return st, nil
}

// PINError is a failed PIN verification with the tries left.
type PINError struct {
	Ref       byte
	TriesLeft int // -1 when unknown
	Blocked   bool
	Err       error // the underlying *apdu.StatusError
}

func (e *PINError) Error() string {
	name := pinName(e.Ref)
	sw := ""
	var se *apdu.StatusError
	if errors.As(e.Err, &se) {
		sw = fmt.Sprintf(" (SW %04X)", se.SW)
	}
	switch {
	case e.Blocked && e.Ref == SOPIN:
		return fmt.Sprintf("%s blocked: the device can no longer be re-initialized or its user PIN reset%s", name, sw)
	case e.Blocked:
		return fmt.Sprintf("%s blocked%s: %s", name, sw, unblockHint)
	case e.TriesLeft == 1:
		return fmt.Sprintf("wrong %s, 1 try left: the next wrong %s blocks it%s", name, name, sw)
	case e.TriesLeft >= 0:
		return fmt.Sprintf("wrong %s, %d tries left%s", name, e.TriesLeft, sw)
	}
	return fmt.Sprintf("wrong %s%s", name, sw)
}

func (e *PINError) Unwrap() error { return e.Err }

// PIN commands that change a PIN (CHANGE REFERENCE DATA, 00 24 00 81 or
// 88; change-pin, change-so-pin and friends when they come) must first
// check that the device is initialized, with PINStatus of that PIN: its
// NotInitialized (6A88) means never send the command. On a device never
// initialized the PIN files hold only the zeros of the first start, and
// the firmware hangs on CHANGE PIN with a PIN of 1 to 16 bytes: it never
// answers and spins until it is unplugged (issue 9 section 6;
// testdata/pico-hsm/README.md, "Firmware hazards"; recorded in
// transcripts/differential/fw-p1.txt, step "risky: 002400810C…"). Refuse
// with ErrNotInitialized instead, before anything is sent. (The other
// hazard, a 1-byte APDU, is refused by apdu.Channel for every command.)

// ErrNotInitialized means the device has never been initialized.
var ErrNotInitialized = errors.New("the device has never been initialized: run initialize first")

// VerifyPIN verifies the PIN ref (UserPIN or SOPIN). The PIN bytes are
// masked in traces. A wrong PIN returns a *PINError.
func (d *Device) VerifyPIN(ref byte, pin []byte) error {
	r, err := d.ch.Transmit(apdu.Command{INS: 0x20, P2: ref, Data: pin, Secret: true, Name: "VERIFY"})
	if err != nil {
		return err
	}
	switch {
	case r.SW == apdu.SWOK:
		return nil
	case r.SW&0xFFF0 == apdu.SWVerifyFailed:
		n := int(r.SW & 0x0F)
		return &PINError{Ref: ref, TriesLeft: n, Blocked: n == 0, Err: r.Err()}
	case r.SW == apdu.SWPINBlocked:
		return &PINError{Ref: ref, TriesLeft: 0, Blocked: true, Err: r.Err()}
	case r.SW == apdu.SWReferenceNotFound:
		return fmt.Errorf("verify %s: %w (%w)", pinName(ref), ErrNotInitialized, r.Err())
	}
	return fmt.Errorf("verify %s: %w", pinName(ref), r.Err())
}

func pinName(ref byte) string {
	switch ref {
	case UserPIN:
		return "user PIN"
	case SOPIN:
		return "SO-PIN"
	}
	return fmt.Sprintf("PIN %02X", ref)
}

// CheckTries refuses to spend the last try of a PIN, since one wrong guess
// would block it, and says what to do about a blocked one.
func CheckTries(st PINState, ref byte, allowLast bool) error {
	name, flag := "user PIN", "--pin"
	if ref == SOPIN {
		name, flag = "SO-PIN", "--so-pin"
	}
	switch {
	case st.Blocked && ref == SOPIN:
		return errors.New("the SO-PIN is blocked: the device can no longer be re-initialized or its user PIN reset")
	case st.Blocked:
		return errors.New(blockedUserPIN)
	case st.TriesLeft == 1 && !allowLast:
		return fmt.Errorf("the %s has 1 try left: a wrong %s would block it; check %s and run again with --last-try to use it", name, name, flag)
	}
	return nil
}

// unblockHint says how to unblock a blocked user PIN. This tool has no
// unblock command yet; pkcs11-tool's --unlock-pin logged in as SO sends
// RESET RETRY COUNTER with the SO-PIN (OpenSC card-sc-hsm.c
// sc_hsm_pin_cmd, SC_PIN_CMD_UNBLOCK).
const unblockHint = "unblock it with the SO-PIN: pkcs11-tool --unlock-pin --login --login-type so --so-pin SO-PIN --new-pin NEW-PIN (this tool has no unblock command yet)"

const blockedUserPIN = "the user PIN is blocked: " + unblockHint

// The user PIN's length on a SmartCard-HSM: 6 to 16 characters
// (sc-hsm-tool.c, initialize: "User PIN must have between 6 and 16
// characters"; pico-hsm cmd_initialize.c stores what it is given).
const (
	MinPINLength = 6
	MaxPINLength = 16
)

// CheckPIN refuses a user PIN that cannot be right before it reaches the
// device, where a wrong one spends a try: empty, or shorter or longer than
// a SmartCard-HSM user PIN can be. flag names the option it came from.
func CheckPIN(pin []byte, flag string) error {
	switch {
	case len(pin) == 0:
		return fmt.Errorf("%s: the user PIN given is empty: give the PIN (6 to 16 characters); nothing was sent to the device", flag)
	case len(pin) < MinPINLength, len(pin) > MaxPINLength:
		chars := "characters"
		if len(pin) == 1 {
			chars = "character"
		}
		return fmt.Errorf("%s: the user PIN given has %d %s, and a user PIN has %d to %d: check the PIN; nothing was sent to the device, no try was spent", flag, len(pin), chars, MinPINLength, MaxPINLength)
	}
	return nil
}

// blankNote adds to a wrong-PIN error that the PIN given starts or ends
// with a blank: a file:PATH line keeps everything but its line ending, and
// a stray space there is a common reason for a "wrong" PIN.
func blankNote(err error, pin []byte) error {
	var pe *PINError
	if !errors.As(err, &pe) || len(pin) == 0 {
		return err
	}
	isBlank := func(c byte) bool { return c == ' ' || c == '\t' }
	switch {
	case isBlank(pin[0]) && isBlank(pin[len(pin)-1]):
		return fmt.Errorf("%w; note: the PIN given starts and ends with a blank (space or tab), which the device counts as part of the PIN", err)
	case isBlank(pin[0]):
		return fmt.Errorf("%w; note: the PIN given starts with a blank (space or tab), which the device counts as part of the PIN", err)
	case isBlank(pin[len(pin)-1]):
		return fmt.Errorf("%w; note: the PIN given ends with a blank (space or tab), which the device counts as part of the PIN", err)
	}
	return err
}

// Login verifies the user PIN after checking its tries left with
// CheckTries. A session already open (by this or another program) does
// not stand in for the PIN: it is verified anyway. A PIN that CheckPIN
// refuses is never sent.
func (d *Device) Login(pin []byte, allowLastTry bool) error {
	if err := CheckPIN(pin, "--pin"); err != nil {
		return err
	}
	st, err := d.PINStatus(UserPIN)
	if err != nil {
		return err
	}
	if st.NotInitialized {
		return ErrNotInitialized
	}
	if err := CheckTries(st, UserPIN, allowLastTry); err != nil {
		return err
	}
	return blankNote(d.VerifyPIN(UserPIN, pin), pin)
}
