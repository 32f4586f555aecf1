// Package ceremony carries out the steps of a DKEK key ceremony on a
// device: initialize it, import the custodians' DKEK shares, and commit
// the DKEK. Each step checks everything it can before it changes the
// device, so that bad input leaves the device as it was.
package ceremony

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// InitOptions are the inputs of Initialize.
type InitOptions struct {
	Params hsm.InitParams
	// Label is the token label for EF.TokenInfo; empty keeps the device's.
	Label string
	// Confirm is asked before an initialized device is wiped, with the
	// number of keys that will be destroyed; nil means no question (--yes,
	// or a script).
	Confirm func(keys int) (bool, error)
	// AllowLastTry lets the SO-PIN be tried when it has one try left.
	AllowLastTry bool
}

// InitResult tells what Initialize did.
type InitResult struct {
	// WasInitialized is true when the device had been initialized before.
	WasInitialized bool
	// KeysDestroyed is the number of keys that were on the device.
	KeysDestroyed int
}

// ErrAborted is returned when the person at the terminal said no.
var ErrAborted = errors.New("aborted: nothing was changed")

// picoManufacturer is the manufacturer in the Pico HSM's built-in
// EF.TokenInfo (transcripts/errors/p01-token-info.txt [13]).
var picoManufacturer = []byte("Pol Henarejos")

// Initialize initializes the device as sc-hsm-tool --initialize does, with
// the same INITIALIZE DEVICE APDU. On a device that was initialized before
// it first verifies the SO-PIN given, because the Pico HSM itself does not
// (pico-hsm cmd_initialize.c), and asks Confirm with the number of keys
// that will be lost. A label is refused on a Pico HSM before anything is
// changed: its EF.TokenInfo is built in, and writing it crashes firmware
// up to 6.6 (pico-hsm pull request 130).
func Initialize(conn *device.Conn, o InitOptions) (*InitResult, error) {
	if err := o.Params.Validate(); err != nil {
		return nil, err
	}
	if len(o.Label) > 100 {
		return nil, errors.New("--label must not be longer than 100 characters")
	}
	res := &InitResult{}
	// sent is set once INITIALIZE is on its way: from then on a failure
	// leaves the device in a state the host cannot know.
	sent := false
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		so, err := conn.PINStatus(hsm.SOPIN)
		if err != nil {
			return err
		}
		if o.Label != "" {
			ti, err := conn.ReadFile(hsm.FIDTokenInfo)
			if err == nil && bytes.Contains(ti, picoManufacturer) {
				return errors.New("--label: the Pico HSM firmware cannot store a token label (its EF.TokenInfo is built in, and writing it crashes firmware 6.6 and older); the label stays \"Pico-HSM\": run again without --label")
			}
		}
		if !so.NotInitialized {
			res.WasInitialized = true
			if err := hsm.CheckTries(so, hsm.SOPIN, o.AllowLastTry); err != nil {
				return err
			}
			if err := conn.VerifyPIN(hsm.SOPIN, o.Params.SOPIN); err != nil {
				return fmt.Errorf("the device is initialized; re-initializing needs its current SO-PIN: %w", err)
			}
			n, err := conn.CountKeys()
			if err != nil {
				return err
			}
			res.KeysDestroyed = n
			if o.Confirm != nil {
				ok, err := o.Confirm(n)
				if err != nil {
					return err
				}
				if !ok {
					return ErrAborted
				}
			}
		}
		sent = true
		if err := conn.Initialize(&o.Params); err != nil {
			if !device.Refused(err) {
				// Running it again is right in either case: the SO-PIN it
				// verifies is the one given, old and new.
				return fmt.Errorf("%w; the device may or may not have been initialized: run the same initialize command again, then check with '%s'", err, conn.Suggest("status"))
			}
			return err
		}
		if o.Label != "" {
			return writeLabel(conn, o.Label, o.Params.PIN)
		}
		return nil
	})
	if err != nil {
		if !sent && device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; nothing was changed, the device is as it was%s", err, device.Again(err))
		}
		return nil, err
	}
	return res, nil
}

// writeLabel writes EF.TokenInfo with the label, as OpenSC does after
// INITIALIZE on a CardContact SmartCard-HSM (card-sc-hsm.c
// sc_hsm_initialize: VERIFY the user PIN, then UPDATE BINARY 2F03). The
// TokenInfo (PKCS#15 section 6.9) carries version 0, the manufacturer and
// the label.
func writeLabel(conn *device.Conn, label string, pin []byte) error {
	if err := conn.VerifyPIN(hsm.UserPIN, pin); err != nil {
		return fmt.Errorf("writing the label: %w", err)
	}
	ti := tokenInfo(label)
	if err := conn.UpdateFile(hsm.FIDTokenInfo, ti); err != nil {
		return fmt.Errorf("the device is initialized, but writing the label failed: %w", err)
	}
	return nil
}

func tokenInfo(label string) []byte {
	var b bytes.Buffer
	b.Write([]byte{0x02, 0x01, 0x00})
	man := []byte("www.CardContact.de")
	b.WriteByte(0x0C)
	b.WriteByte(byte(len(man)))
	b.Write(man)
	b.WriteByte(0x80)
	b.WriteByte(byte(len(label)))
	b.WriteString(label)
	b.Write([]byte{0x03, 0x02, 0x04, 0x20})
	return append([]byte{0x30, byte(b.Len())}, b.Bytes()...)
}

// InitState is what CheckInitialize found on a device.
type InitState struct {
	Initialized bool
	// Keys is the number of keys an initialization would destroy.
	Keys int
}

// CheckInitialize checks, before any device of a run that initializes
// several changes, that conn can be initialized: it answers, and when it
// is initialized its SO-PIN has a try to spare (not the last, unless
// allowLastTry) for the verification re-initializing needs; it counts the
// keys that would be destroyed. With soPIN it also verifies that SO-PIN
// on an initialized device, as Initialize will: when several devices are
// initialized in one run, a wrong SO-PIN on one of them must stop the run
// before any other is wiped. It changes nothing else.
func CheckInitialize(conn *device.Conn, allowLastTry bool, soPIN []byte) (InitState, error) {
	var st InitState
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		so, err := conn.PINStatus(hsm.SOPIN)
		if err != nil || so.NotInitialized {
			return err
		}
		st.Initialized = true
		if err := hsm.CheckTries(so, hsm.SOPIN, allowLastTry); err != nil {
			return err
		}
		if soPIN != nil {
			if err := conn.VerifyPIN(hsm.SOPIN, soPIN); err != nil {
				return fmt.Errorf("the device is initialized; re-initializing needs its current SO-PIN: %w", err)
			}
		}
		st.Keys, err = conn.CountKeys()
		return err
	})
	return st, err
}
