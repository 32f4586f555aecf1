// Package hsm is the SmartCard-HSM command set, as implemented by the Pico HSM
// firmware, as typed Go methods. Each method builds its APDU, sends it through
// an apdu.Channel and turns the answer into Go values and errors with the
// command's context ("key reference 5 not found").
//
// References: OpenSC src/libopensc/card-sc-hsm.c (host side), pico-hsm
// src/hsm/sc_hsm.c and cmd_*.c (device side), and the transcripts recorded
// from the real firmware in ../shared/pico-hsm/transcripts.
package hsm

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// AID is the SmartCard-HSM application identifier (card-sc-hsm.c sc_hsm_aid).
var AID = []byte{0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01}

// PIN references for VERIFY (card-sc-hsm.h ID_USER_PIN, ID_SO_PIN).
const (
	UserPIN byte = 0x81
	SOPIN   byte = 0x88
)

// Initialization options, the low byte of INITIALIZE tag 80 and of the
// SELECT response's tag 85 (card-sc-hsm.h INIT_RRC_ENABLED and friends).
const (
	OptResetRetryCounter  uint16 = 0x0001 // user PIN reset with SO-PIN
	OptTransportPIN       uint16 = 0x0002
	OptSessionPIN         uint16 = 0x0004 // session PIN, cleared on reset
	OptSessionPINExplicit uint16 = 0x000C
	OptReplaceKeys        uint16 = 0x0008
)

// Device is a SmartCard-HSM reached through a channel.
type Device struct {
	ch *apdu.Channel
	// fresh is the answer of a SELECT just sent on this connection (the
	// reader probe): the next SelectApplication uses it instead of sending
	// the same APDU again.
	fresh *Info
}

// Selected records that the application was just selected on this
// connection with the answer info, so that the next SelectApplication
// need not send it again.
func (d *Device) Selected(info Info) { d.fresh = &info }

// New returns a Device that talks through t. A non-nil trace receives the
// APDU trace with secrets masked.
func New(t apdu.Transport, trace io.Writer) *Device {
	return &Device{ch: &apdu.Channel{T: t, Trace: trace}}
}

// Channel returns the underlying channel, for commands this package does not
// wrap.
func (d *Device) Channel() *apdu.Channel { return d.ch }

// Info is what SELECT of the application tells.
type Info struct {
	// Options is the initialization options word from tag 85 (0 before
	// initialization).
	Options uint16
	Major   byte
	Minor   byte
	// FCP is the whole FCP template as answered.
	FCP []byte
}

// Version returns "major.minor" as sc-hsm-tool prints it.
func (i Info) Version() string { return fmt.Sprintf("%d.%d", i.Major, i.Minor) }

// ErrNotSmartCardHSM means the card does not have the SmartCard-HSM application.
var ErrNotSmartCardHSM = errors.New("the card is not a SmartCard-HSM or Pico HSM: it does not answer the SmartCard-HSM application identifier")

// SelectApplication selects the SmartCard-HSM application and parses its
// FCP (card-sc-hsm.c sc_hsm_select_file_ex with the AID; sc-hsm-tool.c
// print_info reads the version from the last two bytes of proprietary
// tag 85 and the options from the two bytes before the byte before them).
//
// Recorded answer (transcripts/00-status-factory.txt [3]):
//
//	62 22 81 02 00 00 82 01 01 83 02 00 00 84 0B <AID> 8A 01 05 85 05 00 00 FF 06 06
//
// Selecting resets the card session: the user PIN must be verified again.
func (d *Device) SelectApplication() (Info, error) {
	if d.fresh != nil {
		info := *d.fresh
		d.fresh = nil
		return info, nil
	}
	r, err := d.ch.Transmit(apdu.Command{INS: 0xA4, P1: 0x04, P2: 0x00, Data: AID, Ne: 256, Name: "SELECT application"})
	if err != nil {
		return Info{}, err
	}
	if r.SW == apdu.SWFileNotFound || r.SW == apdu.SWWrongP1P2 || r.SW == apdu.SWINSNotSupported || r.SW == apdu.SWCLANotSupported {
		return Info{}, fmt.Errorf("%w (SW %04X)", ErrNotSmartCardHSM, r.SW)
	}
	if err := r.Err(); err != nil {
		return Info{}, fmt.Errorf("select SmartCard-HSM application: %w", err)
	}
	return ParseFCI(r.Data)
}

// ParseFCI parses the FCP template answered by SELECT of the application.
func ParseFCI(fcp []byte) (Info, error) {
	info := Info{FCP: bytes.Clone(fcp)}
	body, ok := findTLV(fcp, 0x62)
	if !ok {
		return info, fmt.Errorf("select SmartCard-HSM application: answer is not an FCP template: % X", fcp)
	}
	p, ok := findTLV(body, 0x85)
	if !ok || len(p) < 2 {
		return info, fmt.Errorf("select SmartCard-HSM application: FCP lacks the version in tag 85: % X", fcp)
	}
	info.Major, info.Minor = p[len(p)-2], p[len(p)-1]
	if len(p) >= 5 {
		info.Options = uint16(p[len(p)-5])<<8 | uint16(p[len(p)-4])
	}
	return info, nil
}

// findTLV returns the value of the first BER-TLV with a one-byte tag in b.
// It never reads past b: a malformed length ends the search.
func findTLV(b []byte, tag byte) ([]byte, bool) {
	for len(b) >= 2 {
		t := b[0]
		n, hdr, ok := berLength(b[1:])
		if !ok || 1+hdr+n > len(b) {
			return nil, false
		}
		v := b[1+hdr : 1+hdr+n]
		if t == tag {
			return v, true
		}
		b = b[1+hdr+n:]
	}
	return nil, false
}

// berLength decodes a BER length (X.690 section 8.1.3) of up to 3 bytes
// after the first: the value, the bytes it took, and whether it was valid.
func berLength(b []byte) (n, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	k := int(b[0] & 0x7F)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, true
}
