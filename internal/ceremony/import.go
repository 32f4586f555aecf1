package ceremony

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// ImportOptions are the inputs of ImportShares.
type ImportOptions struct {
	// Shares are the decrypted 32-byte DKEK shares, in import order.
	Shares [][]byte
	// PIN, when set, is verified before the first share is imported, so
	// that the firmware commits the DKEK at the last share and reports its
	// real key check value.
	PIN []byte
	// AskPIN, when set and PIN is not, asks for the user PIN after the last
	// share to commit the DKEK (a terminal is attached).
	AskPIN func() ([]byte, error)
	// AllowLastTry lets the user PIN be tried when it has one try left.
	AllowLastTry bool
	// Out receives sc-hsm-tool's result lines.
	Out io.Writer
	// Warn receives warnings and notes for the person or the log.
	Warn func(format string, args ...any)
}

// ImportResult tells the DKEK state after ImportShares.
type ImportResult struct {
	Status hsm.DKEKStatus
	// Committed is true when the DKEK is complete and a user-PIN
	// verification has stored it under the device's master key.
	Committed bool
	// Expected is the KCV of the shares imported in this run when they
	// are all the device's shares, so that it could be checked.
	Expected string
}

// ErrNotCommitted is returned by ImportShares when the DKEK is complete but
// uncommitted and no PIN was available; the shares are imported.
var ErrNotCommitted = errors.New("the DKEK is complete but not committed")

// ImportShares imports DKEK shares (card-sc-hsm.c
// sc_hsm_import_dkek_share; sc-hsm-tool.c import_dkek_share) and prints
// sc-hsm-tool's lines after each: "DKEK share imported", "DKEK shares
// : N", then "DKEK import pending, K share(s) still missing" or "DKEK key
// check value : ...".
//
// Before anything is imported it checks that the device expects at least
// as many shares as given, and verifies the PIN if one is given.
//
// The Pico HSM keeps the combined DKEK unprotected after the last share
// and stores it properly only at the next successful user-PIN VERIFY; if
// the device loses power before that, the DKEK is silently corrupted
// (../shared/pico-hsm/VECTORS.txt section 7, device E). So with a PIN the
// imports happen inside a PIN session and the firmware commits at once;
// without one, AskPIN is used after the last share, and failing that the
// result is ErrNotCommitted with a warning saying what to do.
func ImportShares(conn *device.Conn, o ImportOptions) (*ImportResult, error) {
	if len(o.Shares) == 0 {
		return nil, errors.New("no DKEK share to import")
	}
	for i, s := range o.Shares {
		if len(s) != 32 {
			return nil, fmt.Errorf("DKEK share %d is %d bytes, not 32", i+1, len(s))
		}
	}
	res := &ImportResult{}
	var uncommitted bool
	// imported counts the shares the device confirmed in this run; sent is
	// set while a share is on its way.
	imported, sent := 0, false
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		// One share is checked by the device itself (6986, 6B00), which
		// saves an APDU; several are checked before the first goes in.
		var st hsm.DKEKStatus
		allHere := false
		if len(o.Shares) > 1 || o.PIN != nil {
			var err error
			if st, err = conn.DKEKStatus(); err != nil {
				return err
			}
			if err := checkOutstanding(st, len(o.Shares)); err != nil {
				return err
			}
			allHere = st.Outstanding == st.Shares && len(o.Shares) == st.Shares
		}
		pinSession := false
		if o.PIN != nil {
			if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
				return err
			}
			pinSession = true
		}
		for i, s := range o.Shares {
			var err error
			sent = true
			st, err = conn.ImportDKEKShare(s)
			if err != nil && !device.Refused(err) {
				return fmt.Errorf("%w; %s", err, shareUnknown(i, len(o.Shares), pinSession))
			}
			sent = false
			if errors.Is(err, hsm.ErrAllSharesImported) {
				// Say which: no shares configured, or all of them in.
				if st2, err2 := conn.DKEKStatus(); err2 == nil {
					if cerr := checkOutstanding(st2, 1); cerr != nil {
						return cerr
					}
				}
				return err
			}
			if err != nil {
				return err
			}
			imported++
			fmt.Fprintln(o.Out, "DKEK share imported")
			printDKEK(o.Out, st)
		}
		res.Status = st
		if st.Outstanding > 0 {
			return nil
		}
		if !pinSession && o.AskPIN != nil {
			pin, err := o.AskPIN()
			if err != nil {
				return err
			}
			err = conn.Login(pin, o.AllowLastTry)
			clear(pin)
			if err != nil {
				return fmt.Errorf("all shares are imported, but the DKEK is not committed: %w; run 'pico-hsm-tool status --pin' before unplugging the device", err)
			}
			pinSession = true
			if res.Status, err = conn.DKEKStatus(); err != nil {
				return err
			}
			if o.Warn != nil {
				o.Warn("DKEK committed; DKEK key check value %s", res.Status.KCVHex())
			}
		}
		if !pinSession {
			uncommitted = true
			return nil
		}
		res.Committed = true
		if allHere {
			k := hsm.KCV(xorShares(o.Shares))
			res.Expected = fmt.Sprintf("%X", k[:])
			if subtle.ConstantTimeCompare(k[:], res.Status.KCV[:]) != 1 {
				return fmt.Errorf("the device's DKEK key check value %s differs from the shares' %s: do not use this device for backups; re-initialize it and import the shares again", res.Status.KCVHex(), res.Expected)
			}
		}
		return nil
	})
	if err != nil {
		if !sent && imported == 0 && device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; no share was imported, the device is as it was%s", err, device.Again(err))
		}
		return nil, err
	}
	if uncommitted {
		if o.Warn != nil {
			o.Warn("WARNING: the DKEK is complete but NOT committed: the Pico HSM stores it only at the next user-PIN verification, and unplugging the device before that corrupts it silently. Commit it now, before unplugging: pico-hsm-tool status --pin env:VAR (or pass --pin to import-dkek-share)")
		}
		return res, ErrNotCommitted
	}
	return res, nil
}

// shareUnknown says what state an import is in when the answer to share
// i (from 0) of n was lost. Importing a share twice makes a wrong DKEK, so
// the person must look before importing again.
func shareUnknown(i, n int, pinSession bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "share %d of %d may or may not have been imported", i+1, n)
	if i > 0 {
		fmt.Fprintf(&b, " (the %d before it were)", i)
	}
	b.WriteString(": run 'pico-hsm-tool status' to see how many shares the device still expects, then import only those")
	if i == n-1 && !pinSession {
		// Without a PIN session the firmware commits the DKEK only at the
		// next VERIFY, and a device unplugged before it has lost it.
		b.WriteString("; if none is missing, run 'pico-hsm-tool status --pin' at once, which commits the DKEK, and compare its check value with the shares' ('pico-hsm-tool dkek-share kcv'): if they differ, the device lost the DKEK when it was unplugged, so re-initialize it and import every share again (import with --pin to avoid this)")
	}
	return b.String()
}

// checkOutstanding refuses shares the device does not expect.
func checkOutstanding(st hsm.DKEKStatus, n int) error {
	switch {
	case st.Shares == 0:
		return fmt.Errorf("%w: this device was initialized without DKEK shares", hsm.ErrNoDKEK)
	case st.Outstanding == 0:
		return fmt.Errorf("%w (%d of %d imported)", hsm.ErrAllSharesImported, st.Shares, st.Shares)
	case n > st.Outstanding:
		return fmt.Errorf("the device expects %d more DKEK share(s), but %d were given: nothing was imported", st.Outstanding, n)
	}
	return nil
}

// printDKEK prints sc-hsm-tool.c print_dkek_info's lines.
func printDKEK(w io.Writer, st hsm.DKEKStatus) {
	fmt.Fprintf(w, "DKEK shares          : %d\n", st.Shares)
	if st.Outstanding > 0 {
		fmt.Fprintf(w, "DKEK import pending, %d share(s) still missing\n", st.Outstanding)
	} else {
		fmt.Fprintf(w, "DKEK key check value : %s\n", st.KCVHex())
	}
}

// xorShares combines shares as the device does.
func xorShares(shares [][]byte) []byte {
	out := make([]byte, 32)
	for _, s := range shares {
		for i := range out {
			out[i] ^= s[i]
		}
	}
	return out
}

// CombinedKCV returns the key check value of the DKEK the shares make.
func CombinedKCV(shares [][]byte) string {
	d := xorShares(shares)
	defer clear(d)
	k := hsm.KCV(d)
	return fmt.Sprintf("%X", k[:])
}
