package hsm

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// DKEKStatus is the answer to IMPORT DKEK SHARE (80 52), with or without a
// share (card-sc-hsm.c sc_hsm_import_dkek_share; pico-hsm
// cmd_import_dkek.c):
//
//	shares(1) outstanding(1) KCV(8)
//
// Recorded: transcripts/05-status-after-initialize.txt [6] answers
// 03 03 00..00; transcripts/10-kcv-query-A.txt [6] answers 03 00 440B48E7FAEBC853.
type DKEKStatus struct {
	Shares      int
	Outstanding int
	KCV         [8]byte
}

// KCVKnown reports whether the KCV is a real value. The Pico HSM answers
// zeros until the user PIN is verified in the same card session
// (../shared/pico-hsm/VECTORS.txt section 7).
func (s DKEKStatus) KCVKnown() bool { return s.KCV != [8]byte{} }

// KCVHex returns the KCV as 16 upper-case hex digits, as sc-hsm-tool prints it.
func (s DKEKStatus) KCVHex() string { return fmt.Sprintf("%X", s.KCV[:]) }

// Complete reports whether the device has a DKEK with every share imported.
func (s DKEKStatus) Complete() bool { return s.Shares > 0 && s.Outstanding == 0 }

// ErrNoDKEK means the device was initialized without DKEK shares, or never.
var ErrNoDKEK = errors.New("the device has no DKEK (it was initialized without --dkek-shares, or never): only initializing with --dkek-shares gives it one, and on an initialized device that destroys every key")

// ErrAllSharesImported means a share was offered when none is outstanding.
var ErrAllSharesImported = errors.New("all DKEK shares are already imported: the device accepts no more (re-initialize to start a new DKEK, which destroys every key)")

// DKEKStatus queries the DKEK state of key domain 0 without changing it.
func (d *Device) DKEKStatus() (DKEKStatus, error) {
	r, err := d.ch.Transmit(apdu.Command{CLA: 0x80, INS: 0x52, Ne: 256, Name: "DKEK status"})
	if err != nil {
		return DKEKStatus{}, err
	}
	// A factory-new device answers 6B00 (transcripts/00-status-factory.txt [5]).
	if r.SW == apdu.SWWrongP1P2Plain || r.SW == apdu.SWINSNotSupported {
		return DKEKStatus{}, fmt.Errorf("%w (SW %04X)", ErrNoDKEK, r.SW)
	}
	if err := r.Err(); err != nil {
		return DKEKStatus{}, fmt.Errorf("query DKEK status: %w", err)
	}
	return parseDKEKStatus(r.Data)
}

// ImportDKEKShare sends one 32-byte share. The share is masked in traces.
func (d *Device) ImportDKEKShare(share []byte) (DKEKStatus, error) {
	if len(share) != 32 {
		return DKEKStatus{}, fmt.Errorf("a DKEK share is 32 bytes, got %d", len(share))
	}
	r, err := d.ch.Transmit(apdu.Command{CLA: 0x80, INS: 0x52, Data: share, Ne: 256, Secret: true, Name: "IMPORT DKEK SHARE"})
	if err != nil {
		return DKEKStatus{}, err
	}
	switch r.SW {
	case apdu.SWOK:
		return parseDKEKStatus(r.Data)
	case apdu.SWCommandNotAllowed: // transcripts/errors/p02
		return DKEKStatus{}, fmt.Errorf("import DKEK share: %w (%w)", ErrAllSharesImported, r.Err())
	case apdu.SWWrongP1P2Plain, apdu.SWINSNotSupported:
		return DKEKStatus{}, fmt.Errorf("%w (SW %04X)", ErrNoDKEK, r.SW)
	}
	return DKEKStatus{}, fmt.Errorf("import DKEK share: %w", r.Err())
}

func parseDKEKStatus(b []byte) (DKEKStatus, error) {
	if len(b) < 10 {
		return DKEKStatus{}, fmt.Errorf("DKEK status: expected at least 10 bytes, got % X", b)
	}
	s := DKEKStatus{Shares: int(b[0]), Outstanding: int(b[1])}
	copy(s.KCV[:], b[2:10])
	return s, nil
}

// KCV returns the key check value of a DKEK: the first 8 bytes of its
// SHA-256 (pico-hsm kek.c; ../shared/pico-hsm/VECTORS.txt section 3).
func KCV(dkek []byte) [8]byte {
	var k [8]byte
	sum := sha256.Sum256(dkek)
	copy(k[:], sum[:8])
	return k
}

// ZeroDKEKKCV is the key check value of an all-zero DKEK (KCV of 32 zero
// bytes): what a device reports when shares cancelled each other out, a
// share imported twice, say. Such a DKEK protects nothing.
const ZeroDKEKKCV = "66687AADF862BD77"
