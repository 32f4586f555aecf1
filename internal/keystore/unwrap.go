package keystore

import (
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// DKEKMismatch is a device whose DKEK cannot take a key blob made under
// Want: it has none (Status.Shares 0), waits for shares, or has another
// one. UNWRAP KEY would only answer 6400 or 6A88 (pico-hsm
// cmd_key_unwrap.c), so callers check first and say which it is.
type DKEKMismatch struct {
	Status hsm.DKEKStatus
	Want   [8]byte
}

// None tells a device without a DKEK; Incomplete one that waits for
// shares; otherwise the DKEK is another one.
func (e *DKEKMismatch) None() bool       { return e.Status.Shares == 0 }
func (e *DKEKMismatch) Incomplete() bool { return !e.None() && !e.Status.Complete() }

func (e *DKEKMismatch) Error() string {
	switch {
	case e.None():
		return hsm.ErrNoDKEK.Error()
	case e.Incomplete():
		return fmt.Sprintf("the device's DKEK is incomplete (%d of %d shares imported)", e.Status.Shares-e.Status.Outstanding, e.Status.Shares)
	}
	return fmt.Sprintf("the device's DKEK is %s, not %X", e.Status.KCVHex(), e.Want)
}

// Unwrap makes errors.Is(err, hsm.ErrNoDKEK) hold for a device without one.
func (e *DKEKMismatch) Unwrap() error {
	if e.None() {
		return hsm.ErrNoDKEK
	}
	return nil
}

// LoginForUnwrap prepares an UNWRAP KEY of a blob made under the DKEK
// want: it selects the application, verifies the user PIN (Login, with the
// tries-left guard), and checks, with the PIN verified so that a Pico HSM
// shows the real check value, that the device's DKEK is complete and is
// want (a *DKEKMismatch otherwise). It returns the device's file list.
func LoginForUnwrap(conn *device.Conn, pin []byte, allowLastTry bool, want [8]byte) ([]uint16, error) {
	if _, err := conn.SelectApplication(); err != nil {
		return nil, err
	}
	if err := conn.Login(pin, allowLastTry); err != nil {
		return nil, err
	}
	st, err := conn.DKEKStatus()
	if err != nil {
		return nil, err
	}
	if !st.Complete() || st.KCV != want {
		return nil, &DKEKMismatch{Status: st, Want: want}
	}
	return conn.ListObjects()
}
