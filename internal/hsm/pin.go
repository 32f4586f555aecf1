package hsm

import (
	"bytes"
	"encoding/hex"
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
	op := "verify " + pinName(ref)
	if err, ok := pinCheckAnswer(op, ref, r); ok {
		return err
	}
	return fmt.Errorf("%s: %w", op, r.Err())
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

// unblockHint says how to unblock a blocked user PIN: unblock-pin sends
// RESET RETRY COUNTER with the SO-PIN (pico-hsm cmd_reset_retry.c), which
// the firmware takes only on a device initialized with "User PIN reset
// with SO-PIN" (initialize without --no-rrc).
const unblockHint = "unblock it with the SO-PIN: pico-hsm-tool unblock-pin --so-pin SO-PIN --new-pin NEW-PIN (where the device was initialized with User PIN reset with SO-PIN; otherwise only initialize helps)"

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

// OptResetRetryOnly lets RESET RETRY COUNTER reset the user PIN's counter
// without setting a new PIN (pico-hsm sc_hsm.h HSM_OPT_RRC_RESET_ONLY,
// cmd_reset_retry.c P1 01 and 03). Neither sc-hsm-tool nor initialize sets
// it; it needs OptResetRetryCounter too.
const OptResetRetryOnly uint16 = 0x0020

// The SO-PIN is 8 bytes, typed as 16 hexadecimal digits, as initialize
// takes it (sc-hsm-tool.c initialize; card-sc-hsm.c sends it as tag 82).
const SOPINLength = 8

// ParseSOPIN decodes an SO-PIN typed as 16 hexadecimal digits (blanks
// around them are dropped) into its 8 bytes, without a string copy that
// could not be wiped. flag names the option in the error; the error never
// repeats what was typed. The caller wipes the result.
func ParseSOPIN(typed []byte, flag string) ([]byte, error) {
	h := bytes.TrimSpace(typed)
	out := make([]byte, SOPINLength)
	if len(h) != 2*SOPINLength {
		return nil, fmt.Errorf("%s must be 16 hexadecimal digits (it has %d characters): check it; nothing was sent to the device", flag, len(h))
	}
	if _, err := hex.Decode(out, h); err != nil {
		clear(out)
		return nil, fmt.Errorf("%s must be 16 hexadecimal digits (0-9, A-F): check it; nothing was sent to the device", flag)
	}
	return out, nil
}

// CheckNewPIN refuses a new user PIN before anything is sent: the length
// rule of CheckPIN (6 to 16 characters, what sc-hsm-tool.c initialize
// allows; the firmware itself takes 1 to 16 bytes, cmd_change_pin.c), and
// the same value as the old one (old nil: not known), which changes
// nothing and is most likely a mistake. flag names the option.
func CheckNewPIN(pin, old []byte, flag string) error {
	switch {
	case len(pin) == 0:
		return fmt.Errorf("%s: the new user PIN given is empty: give a PIN of %d to %d characters; nothing was sent to the device", flag, MinPINLength, MaxPINLength)
	case len(pin) < MinPINLength, len(pin) > MaxPINLength:
		return fmt.Errorf("%s: the new user PIN has %d characters, and a user PIN has %d to %d: choose another; nothing was sent to the device", flag, len(pin), MinPINLength, MaxPINLength)
	case old != nil && bytes.Equal(pin, old):
		return fmt.Errorf("%s: the new user PIN is the same as the current one: choose a different PIN; nothing was sent to the device", flag)
	}
	return nil
}

// CheckPINRetries applies initialize's rule between a user PIN's length
// and its retry counter (sc-hsm-tool.c initialize: at most 3 tries for a
// 6-character PIN, 5 for 7 characters): a PIN that short on a device that
// allows more tries is easier to guess than initialize would accept.
// retries is the device's counter, or what is known of it: the tries
// left, which are the counter itself while no wrong PIN was given.
func CheckPINRetries(pinLen, retries int) error {
	switch {
	case pinLen == 6 && retries > 3:
		return fmt.Errorf("--new-pin: the device allows %d tries, and a 6-character user PIN at most 3 (initialize's rule): choose a PIN of 8 or more characters; nothing was sent to the device", retries)
	case pinLen == 7 && retries > 5:
		return fmt.Errorf("--new-pin: the device allows %d tries, and a 7-character user PIN at most 5 (initialize's rule): choose a PIN of 8 or more characters; nothing was sent to the device", retries)
	}
	return nil
}

// ErrSOPINChangeUnsupported means the firmware changes only the user PIN:
// pico-hsm cmd_change_pin.c handled P2 81 alone before it learnt 88, and
// answers 6B00 to the SO-PIN.
var ErrSOPINChangeUnsupported = errors.New("this firmware cannot change the SO-PIN (CHANGE REFERENCE DATA for the SO-PIN answered 6B00): the SO-PIN stays as it was; only initialize sets another one, and it destroys every key")

// ErrResetNotAllowed is RESET RETRY COUNTER refused with 6986: the device
// was initialized without "User PIN reset with SO-PIN" (option 0001), or,
// for a reset without a new PIN, without option 0020 (pico-hsm
// cmd_reset_retry.c).
var ErrResetNotAllowed = errors.New("the device refuses to reset the user PIN with the SO-PIN (SW 6986): it was initialized without that option")

// pinCheckAnswer turns the answers every command that checks a PIN gives
// (VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER; pico-hsm sc_hsm.c
// check_pin) into a result: 9000 nil, 63Cx a wrong PIN with x tries left,
// 6983 a blocked PIN, 6A88 a device never initialized. ok is false for any
// other status word, which the caller explains.
func pinCheckAnswer(op string, ref byte, r apdu.Response) (err error, ok bool) {
	switch {
	case r.SW == apdu.SWOK:
		return nil, true
	case r.SW&0xFFF0 == apdu.SWVerifyFailed:
		n := int(r.SW & 0x0F)
		return &PINError{Ref: ref, TriesLeft: n, Blocked: n == 0, Err: r.Err()}, true
	case r.SW == apdu.SWPINBlocked:
		return &PINError{Ref: ref, TriesLeft: 0, Blocked: true, Err: r.Err()}, true
	case r.SW == apdu.SWReferenceNotFound:
		return fmt.Errorf("%s: %w (%w)", op, ErrNotInitialized, r.Err()), true
	}
	return nil, false
}

// pinCommandResult turns the answer to CHANGE REFERENCE DATA or RESET
// RETRY COUNTER into an error. Both check a PIN as VERIFY does (pico-hsm
// sc_hsm.c check_pin): a wrong one spends a try and answers 63Cx, or 6983
// when it was the last; a blocked one answers 6983 even when right
// (transcripts/differential/fw-p2.txt [55]). ref is the PIN checked.
func pinCommandResult(op string, ref byte, r apdu.Response) error {
	if err, ok := pinCheckAnswer(op, ref, r); ok {
		return err
	}
	switch {
	case r.SW == apdu.SWCommandNotAllowed:
		return fmt.Errorf("%s: %w", op, ErrResetNotAllowed)
	case r.SW == apdu.SWWrongLength:
		return fmt.Errorf("%s: the device refused the length of the PINs (SW 6700): check the current %s and the new one", op, pinName(ref))
	}
	return fmt.Errorf("%s: %w", op, r.Err())
}

// ChangePIN sends CHANGE REFERENCE DATA (00 24 00 ref, ref UserPIN or
// SOPIN) with the current PIN followed by the new one, masked in traces
// (pico-hsm cmd_change_pin.c; transcripts/differential/fw-p2.txt [244],
// as pkcs11-tool --change-pin sends it). The firmware splits the data at
// the stored PIN's length, checks the current PIN as VERIFY does (a wrong
// one spends a try), re-encrypts the MKEK under the new PIN (load_mkek,
// store_mkek: keys and the DKEK stay usable) and stores the new PIN; the
// session is then the new PIN's.
//
// It first asks the PIN's state with VERIFY without data and refuses a
// device never initialized (ErrNotInitialized) without sending CHANGE
// REFERENCE DATA, which would hang the firmware (see the hazard note
// above ErrNotInitialized). Callers guard the tries left before (Login,
// CheckTries), since a wrong current PIN spends one.
func (d *Device) ChangePIN(ref byte, old, new []byte) error {
	if ref != UserPIN && ref != SOPIN {
		return fmt.Errorf("change PIN: unknown PIN reference %02X", ref)
	}
	if len(old) == 0 || len(new) == 0 || len(new) > MaxPINLength {
		return fmt.Errorf("change %s: the current and the new PIN must not be empty, and the new one at most %d bytes; nothing was sent to the device", pinName(ref), MaxPINLength)
	}
	st, err := d.PINStatus(ref)
	if err != nil {
		return err
	}
	if st.NotInitialized {
		return ErrNotInitialized
	}
	data := make([]byte, 0, len(old)+len(new))
	data = append(append(data, old...), new...)
	defer clear(data)
	r, err := d.ch.Transmit(apdu.Command{INS: 0x24, P2: ref, Data: data, Secret: true, Name: "CHANGE REFERENCE DATA"})
	if err != nil {
		return err
	}
	if ref == SOPIN && r.SW == apdu.SWWrongP1P2Plain {
		return ErrSOPINChangeUnsupported
	}
	return pinCommandResult("change "+pinName(ref), ref, r)
}

// ResetRetryCounter sends RESET RETRY COUNTER (00 2C P1 81, pico-hsm
// cmd_reset_retry.c) with the SO-PIN, masked in traces: with newPIN, P1 00
// and the SO-PIN followed by the new user PIN (as pkcs11-tool --init-pin
// logged in as SO does, transcripts/differential/fw-p2.txt [184]); the
// firmware sets the PIN, resets its counter and re-encrypts the MKEK for
// it, loaded with the SO-PIN. Without newPIN, P1 01 and the SO-PIN alone:
// only the counter is reset, which needs option OptResetRetryOnly. A
// wrong SO-PIN spends an SO-PIN try (63Cx, [346]). Without option
// OptResetRetryCounter the firmware answers 6986 (ErrResetNotAllowed,
// [370]), also on a device never initialized (fw-p1.txt [119]), so
// callers check the device first.
func (d *Device) ResetRetryCounter(so, newPIN []byte) error {
	if len(so) != SOPINLength {
		return fmt.Errorf("reset retry counter: the SO-PIN must be %d bytes; nothing was sent to the device", SOPINLength)
	}
	p1 := byte(0x01)
	if newPIN != nil {
		if len(newPIN) == 0 || len(newPIN) > MaxPINLength {
			return fmt.Errorf("reset retry counter: the new user PIN must be 1 to %d bytes; nothing was sent to the device", MaxPINLength)
		}
		p1 = 0x00
	}
	data := make([]byte, 0, len(so)+len(newPIN))
	data = append(append(data, so...), newPIN...)
	defer clear(data)
	r, err := d.ch.Transmit(apdu.Command{INS: 0x2C, P1: p1, P2: UserPIN, Data: data, Secret: true, Name: "RESET RETRY COUNTER"})
	if err != nil {
		return err
	}
	return pinCommandResult("reset the user PIN", SOPIN, r)
}
