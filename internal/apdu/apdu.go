// Package apdu encodes ISO/IEC 7816-4 command and response APDUs and turns
// status words into Go errors.
//
// The SmartCard-HSM (and the Pico HSM firmware that implements it) accepts
// short and extended length APDUs but not command chaining (CLA bit 0x10), so
// a command whose data exceeds 255 bytes, or whose expected response exceeds
// 256 bytes, is sent as one extended APDU (ISO 7816-4:2013 section 5.1).
package apdu

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// MaxShortNc and MaxShortNe are the largest data and expected lengths a short
// APDU can carry (ISO 7816-4:2013 section 5.1, table 1).
const (
	MaxShortNc    = 255
	MaxShortNe    = 256
	MaxExtendedNc = 65535
	MaxExtendedNe = 65536
)

// Command is a command APDU.
//
// Ne is the number of response bytes expected: 0 means no Le field, 1..256
// fits a short Le (256 is encoded as 00), larger values up to 65536 need an
// extended Le (65536 is encoded as 0000).
type Command struct {
	CLA, INS, P1, P2 byte
	Data             []byte
	Ne               int

	// Secret marks command data that must never be printed: PINs, DKEK
	// shares, INITIALIZE payloads. Traces show the header and the length only.
	Secret bool
	// SecretResponse marks response data that must never be printed.
	SecretResponse bool
	// Name is a human name for traces, such as "VERIFY".
	Name string
}

// Extended reports whether c needs the extended length encoding.
func (c Command) Extended() bool {
	return len(c.Data) > MaxShortNc || c.Ne > MaxShortNe
}

// Encode returns the wire bytes of c: one of the four cases of
// ISO 7816-4:2013 section 5.1, short when possible, extended otherwise.
func (c Command) Encode() ([]byte, error) {
	if len(c.Data) > MaxExtendedNc {
		return nil, fmt.Errorf("apdu: command data of %d bytes exceeds %d", len(c.Data), MaxExtendedNc)
	}
	if c.Ne < 0 || c.Ne > MaxExtendedNe {
		return nil, fmt.Errorf("apdu: expected length %d out of range 0..%d", c.Ne, MaxExtendedNe)
	}
	b := make([]byte, 0, 4+3+len(c.Data)+3)
	b = append(b, c.CLA, c.INS, c.P1, c.P2)
	if !c.Extended() {
		if len(c.Data) > 0 {
			b = append(b, byte(len(c.Data)))
			b = append(b, c.Data...)
		}
		if c.Ne > 0 {
			b = append(b, byte(c.Ne)) // 256 wraps to 00
		}
		return b, nil
	}
	// Extended: Lc is 00 followed by two bytes; Le is two bytes, preceded
	// by 00 only when there is no Lc field.
	if len(c.Data) > 0 {
		b = append(b, 0, byte(len(c.Data)>>8), byte(len(c.Data)))
		b = append(b, c.Data...)
		if c.Ne > 0 {
			b = append(b, byte(c.Ne>>8), byte(c.Ne)) // 65536 wraps to 0000
		}
		return b, nil
	}
	b = append(b, 0, byte(c.Ne>>8), byte(c.Ne))
	return b, nil
}

// ErrMalformed is returned by ParseCommand and ParseResponse for bytes that
// are not a well-formed APDU.
var ErrMalformed = errors.New("malformed APDU")

// ParseCommand decodes a command APDU in any of the short and extended cases
// of ISO 7816-4:2013 section 5.1. The result's Extended reports which form
// was used through the returned flag.
func ParseCommand(b []byte) (c Command, extended bool, err error) {
	if len(b) < 4 {
		return c, false, fmt.Errorf("%w: %d bytes, need at least 4", ErrMalformed, len(b))
	}
	c.CLA, c.INS, c.P1, c.P2 = b[0], b[1], b[2], b[3]
	body := b[4:]
	switch {
	case len(body) == 0: // case 1
		return c, false, nil
	case len(body) == 1: // case 2 short
		c.Ne = int(body[0])
		if c.Ne == 0 {
			c.Ne = 256
		}
		return c, false, nil
	case body[0] != 0: // case 3 or 4 short
		nc := int(body[0])
		switch len(body) {
		case 1 + nc:
			c.Data = body[1:]
		case 2 + nc:
			c.Data = body[1 : 1+nc]
			c.Ne = int(body[1+nc])
			if c.Ne == 0 {
				c.Ne = 256
			}
		default:
			return c, false, fmt.Errorf("%w: Lc %d does not match %d body bytes", ErrMalformed, nc, len(body))
		}
		return c, false, nil
	}
	// body[0] == 0 and more than one byte: extended.
	if len(body) == 3 { // case 2 extended
		c.Ne = int(binary.BigEndian.Uint16(body[1:]))
		if c.Ne == 0 {
			c.Ne = 65536
		}
		return c, true, nil
	}
	if len(body) < 3 {
		return c, false, fmt.Errorf("%w: truncated extended length", ErrMalformed)
	}
	nc := int(binary.BigEndian.Uint16(body[1:3]))
	if nc == 0 {
		return c, false, fmt.Errorf("%w: extended Lc of zero", ErrMalformed)
	}
	switch len(body) {
	case 3 + nc:
		c.Data = body[3:]
	case 3 + nc + 2:
		c.Data = body[3 : 3+nc]
		c.Ne = int(binary.BigEndian.Uint16(body[3+nc:]))
		if c.Ne == 0 {
			c.Ne = 65536
		}
	default:
		return c, false, fmt.Errorf("%w: extended Lc %d does not match %d body bytes", ErrMalformed, nc, len(body))
	}
	return c, true, nil
}

// Response is a response APDU: the data field and the status word SW1SW2.
type Response struct {
	Data []byte
	SW   uint16
}

// ParseResponse splits raw response bytes into data and status word.
func ParseResponse(b []byte) (Response, error) {
	if len(b) < 2 {
		return Response{}, fmt.Errorf("%w: response of %d bytes has no status word", ErrMalformed, len(b))
	}
	n := len(b) - 2
	return Response{Data: b[:n:n], SW: binary.BigEndian.Uint16(b[n:])}, nil
}

// Bytes returns the wire form of r: data followed by SW1 SW2.
func (r Response) Bytes() []byte {
	b := make([]byte, 0, len(r.Data)+2)
	b = append(b, r.Data...)
	return append(b, byte(r.SW>>8), byte(r.SW))
}

// SW1 and SW2 return the two halves of the status word.
func (r Response) SW1() byte { return byte(r.SW >> 8) }
func (r Response) SW2() byte { return byte(r.SW) }

// Err returns nil for 9000 and a *StatusError otherwise.
func (r Response) Err() error {
	if r.SW == SWOK {
		return nil
	}
	return &StatusError{SW: r.SW}
}
