// Package pinops changes and unblocks the PINs of an initialized device:
// the user PIN with CHANGE REFERENCE DATA, the SO-PIN the same way, and a
// blocked user PIN with RESET RETRY COUNTER and the SO-PIN (pico-hsm
// cmd_change_pin.c, cmd_reset_retry.c, cmd_verify.c).
//
// Every operation checks the device before it sends anything that changes
// a PIN: initialized (CHANGE REFERENCE DATA on a device never initialized
// hangs the firmware, see hsm.ErrNotInitialized), the PIN it needs not
// blocked, and the tries left (the last one is spent only with
// AllowLastTry). After a change it proves the result: the new PIN
// verifies, and the DKEK key check value is the one read before.
package pinops

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// Result tells what an operation did and what it checked afterwards.
type Result struct {
	// KCV is the DKEK key check value (domain 0) read with the new PIN
	// verified, empty when the device has no complete DKEK or it could
	// not be read (a reset without a new PIN verifies no user PIN).
	KCV string
	// KCVUnchanged is true when the same check value was read before the
	// change with the old PIN (change-pin only).
	KCVUnchanged bool
	// TriesLeft is the user PIN's tries left after a reset without a new
	// PIN (the device's retry counter), -1 otherwise.
	TriesLeft int
	// TransportPIN is true when the device was in transport-PIN mode: the
	// old PIN could not be verified first, nor the tries guarded.
	TransportPIN bool
}

// ErrNoReset means the device was initialized without "User PIN reset with
// SO-PIN" (initialize --no-rrc): the firmware answers 6986 to RESET RETRY
// COUNTER (cmd_reset_retry.c; transcripts/differential/fw-p2.txt [370]).
var ErrNoReset = errors.New("this device was initialized without \"User PIN reset with SO-PIN\" (initialize --no-rrc), so the firmware refuses to reset the user PIN with the SO-PIN: a blocked user PIN can then only be replaced by initializing the device again, which destroys every key and the DKEK (restore them afterwards from the DKEK shares and a backup); nothing was sent to the device")

// ErrNeedNewPIN means a reset of the counter alone was asked on a device
// without option 0020 (hsm.OptResetRetryOnly), which neither initialize
// nor sc-hsm-tool sets: the firmware answers 6986 to it.
var ErrNeedNewPIN = errors.New("this device resets a blocked user PIN only together with a new PIN (it was not initialized with the option to reset the retry counter alone): give --new-pin; nothing was sent to the device")

// checkReady selects the application and refuses a device that was never
// initialized, before any command that changes a PIN.
func checkReady(conn *device.Conn) (hsm.Info, error) {
	info, err := conn.SelectApplication()
	if err != nil {
		return info, err
	}
	so, err := conn.PINStatus(hsm.SOPIN)
	if err != nil {
		return info, err
	}
	if so.NotInitialized {
		return info, fmt.Errorf("%w; no PIN was sent to the device", hsm.ErrNotInitialized)
	}
	return info, nil
}

// blockedUser says what unblocks a blocked user PIN on this device: the
// SO-PIN with unblock-pin where the option allows it, otherwise only
// initializing again.
func blockedUser(conn *device.Conn, opts uint16) error {
	if opts&hsm.OptResetRetryCounter == 0 {
		return errors.New("the user PIN is blocked, and this device was initialized without \"User PIN reset with SO-PIN\": only initializing it again gives it a user PIN, which destroys every key and the DKEK; nothing was sent to the device")
	}
	return fmt.Errorf("the user PIN is blocked: unblock it with the SO-PIN: '%s'; nothing was sent to the device", conn.Suggest("unblock-pin --so-pin SO-PIN --new-pin NEW-PIN"))
}

// readKCV reads domain 0's DKEK key check value; "" when the device has
// no complete DKEK (or refuses the query: a device with key domains and
// domain 0 free).
func readKCV(conn *device.Conn) (string, error) {
	st, err := conn.DKEKStatus()
	var se *apdu.StatusError
	switch {
	case errors.Is(err, hsm.ErrNoDKEK), errors.As(err, &se):
		return "", nil
	case err != nil:
		return "", err
	case !st.Complete():
		return "", nil
	}
	return st.KCVHex(), nil
}

// afterSent adds to an error that came once the command changing a PIN was
// sent what the user must know: a refusal changed nothing; an interruption
// leaves it unknown whether the PIN changed.
func afterSent(err error, which, check string) error {
	if device.OutcomeUnknown(err) {
		return fmt.Errorf("%w; the %s may or may not have been changed: %s", err, which, check)
	}
	return err
}

// ChangePIN changes the user PIN from old to newPIN (CHANGE REFERENCE
// DATA, 00 24 00 81). It refuses, sending nothing that changes the
// device: a device never initialized, a blocked PIN (naming what unblocks
// it), a PIN with one try left without allowLastTry, and a new PIN too
// short for the device's retry counter (hsm.CheckPINRetries, where the
// tries left tell it). The old PIN is verified first (a wrong one spends a
// try, as CHANGE REFERENCE DATA itself would: cmd_change_pin.c checks it
// with check_pin), so that the DKEK key check value can be read before;
// after the change the new PIN is verified and the check value compared.
// On a transport-PIN device VERIFY answers 6984 to everything, so the PIN
// is changed without those checks.
func ChangePIN(conn *device.Conn, old, newPIN []byte, allowLastTry bool) (*Result, error) {
	if err := hsm.CheckPIN(old, "--pin"); err != nil {
		return nil, err
	}
	if err := hsm.CheckNewPIN(newPIN, old, "--new-pin"); err != nil {
		return nil, err
	}
	res := &Result{TriesLeft: -1}
	sent := false
	err := conn.Transaction(func() error {
		info, err := checkReady(conn)
		if err != nil {
			return err
		}
		up, err := conn.PINStatus(hsm.UserPIN)
		if err != nil {
			return err
		}
		switch {
		case up.NotInitialized:
			return fmt.Errorf("%w; no PIN was sent to the device", hsm.ErrNotInitialized)
		case up.PublicKeyAuth:
			return errors.New("the device uses public key authentication instead of a user PIN: there is no PIN to change; nothing was sent to the device")
		case up.Blocked:
			return blockedUser(conn, info.Options)
		}
		if up.TriesLeft >= 0 && !up.Verified {
			if err := hsm.CheckPINRetries(len(newPIN), up.TriesLeft); err != nil {
				return err
			}
		}
		var before string
		if up.TransportPIN {
			res.TransportPIN = true
		} else {
			if err := hsm.CheckTries(up, hsm.UserPIN, allowLastTry); err != nil {
				return err
			}
			if err := conn.VerifyPIN(hsm.UserPIN, old); err != nil {
				return fmt.Errorf("the current user PIN: %w; nothing was changed", err)
			}
			if before, err = readKCV(conn); err != nil {
				return err
			}
		}
		sent = true
		if err := conn.ChangePIN(hsm.UserPIN, old, newPIN); err != nil {
			return afterSent(err, "user PIN", fmt.Sprintf("check which PIN verifies with '%s'", conn.Suggest("status --pin NEW-PIN")))
		}
		if err := conn.VerifyPIN(hsm.UserPIN, newPIN); err != nil {
			if up.TransportPIN && apdu.IsStatus(err, apdu.SWDataInvalid) {
				return nil // still in transport mode: VERIFY tells nothing
			}
			return fmt.Errorf("the user PIN was changed, but the new PIN does not verify: %w", err)
		}
		after, err := readKCV(conn)
		if err != nil {
			return fmt.Errorf("the user PIN was changed and the new PIN verifies, but the DKEK check value could not be read: %w", err)
		}
		res.KCV = after
		if !up.TransportPIN {
			if before != after {
				return fmt.Errorf("the user PIN was changed, but the DKEK key check value read with it, %q, differs from the one before, %q: the device did not keep its DKEK under the new PIN; do not delete any backup, and check the device with '%s'", after, before, conn.Suggest("status --pin NEW-PIN"))
			}
			res.KCVUnchanged = true
		}
		return nil
	})
	if err != nil {
		if !sent && device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; nothing was changed%s", err, device.Again(err))
		}
		return nil, err
	}
	return res, nil
}

// ChangeSOPIN changes the SO-PIN (8 bytes each; CHANGE REFERENCE DATA,
// 00 24 00 88). The old SO-PIN is verified first with the tries guard,
// then changed, then the new one verified. A firmware that changes only
// the user PIN answers 6B00 (hsm.ErrSOPINChangeUnsupported).
func ChangeSOPIN(conn *device.Conn, old, newSO []byte, allowLastTry bool) error {
	if len(old) != hsm.SOPINLength || len(newSO) != hsm.SOPINLength {
		return errors.New("the SO-PIN is 16 hexadecimal digits; nothing was sent to the device")
	}
	if string(old) == string(newSO) {
		return errors.New("--new-so-pin: the new SO-PIN is the same as the current one: choose a different one; nothing was sent to the device")
	}
	sent := false
	err := conn.Transaction(func() error {
		if _, err := checkReady(conn); err != nil {
			return err
		}
		so, err := conn.PINStatus(hsm.SOPIN)
		if err != nil {
			return err
		}
		if err := hsm.CheckTries(so, hsm.SOPIN, allowLastTry); err != nil {
			return err
		}
		if err := conn.VerifyPIN(hsm.SOPIN, old); err != nil {
			return fmt.Errorf("the current SO-PIN: %w; nothing was changed", err)
		}
		sent = true
		if err := conn.ChangePIN(hsm.SOPIN, old, newSO); err != nil {
			return afterSent(err, "SO-PIN", "try the new one, then the old one, with change-so-pin before relying on either")
		}
		if err := conn.VerifyPIN(hsm.SOPIN, newSO); err != nil {
			return fmt.Errorf("the SO-PIN was changed, but the new SO-PIN does not verify: %w", err)
		}
		return nil
	})
	if err != nil && !sent && device.OutcomeUnknown(err) {
		return fmt.Errorf("%w; nothing was changed%s", err, device.Again(err))
	}
	return err
}

// Unblock resets the user PIN's retry counter with the SO-PIN (RESET
// RETRY COUNTER, 00 2C P1 81): with newPIN (P1 00) the user PIN becomes
// newPIN, without (P1 01) only the counter is reset. It refuses, sending
// nothing: a device never initialized, a device initialized without
// "User PIN reset with SO-PIN" (ErrNoReset), a reset without a new PIN
// where the device needs one (ErrNeedNewPIN), a blocked SO-PIN and an
// SO-PIN with one try left without allowLastTry. With a new PIN it
// verifies it afterwards and reads the DKEK key check value with it;
// without, it reads the tries left.
func Unblock(conn *device.Conn, so, newPIN []byte, allowLastTry bool) (*Result, error) {
	if len(so) != hsm.SOPINLength {
		return nil, errors.New("the SO-PIN is 16 hexadecimal digits; nothing was sent to the device")
	}
	if newPIN != nil {
		if err := hsm.CheckNewPIN(newPIN, nil, "--new-pin"); err != nil {
			return nil, err
		}
	}
	res := &Result{TriesLeft: -1}
	sent := false
	err := conn.Transaction(func() error {
		info, err := checkReady(conn)
		if err != nil {
			return err
		}
		if info.Options&hsm.OptResetRetryCounter == 0 {
			return ErrNoReset
		}
		if newPIN == nil && info.Options&hsm.OptResetRetryOnly == 0 {
			return ErrNeedNewPIN
		}
		st, err := conn.PINStatus(hsm.SOPIN)
		if err != nil {
			return err
		}
		if err := hsm.CheckTries(st, hsm.SOPIN, allowLastTry); err != nil {
			return err
		}
		sent = true
		if err := conn.ResetRetryCounter(so, newPIN); err != nil {
			var pe *hsm.PINError
			if errors.As(err, &pe) || device.Refused(err) {
				return fmt.Errorf("%w; the user PIN was not reset", err)
			}
			return afterSent(err, "user PIN", fmt.Sprintf("check with '%s'", conn.Suggest("status")))
		}
		if newPIN == nil {
			// A new session, as another program would see the device.
			if _, err := conn.SelectApplication(); err != nil {
				return err
			}
			up, err := conn.PINStatus(hsm.UserPIN)
			if err != nil {
				return err
			}
			res.TriesLeft = up.TriesLeft
			return nil
		}
		if err := conn.VerifyPIN(hsm.UserPIN, newPIN); err != nil {
			return fmt.Errorf("the user PIN was reset, but the new PIN does not verify: %w", err)
		}
		if res.KCV, err = readKCV(conn); err != nil {
			return fmt.Errorf("the user PIN was reset and the new PIN verifies, but the DKEK check value could not be read: %w", err)
		}
		return nil
	})
	if err != nil {
		if !sent && device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; nothing was changed%s", err, device.Again(err))
		}
		return nil, err
	}
	return res, nil
}
