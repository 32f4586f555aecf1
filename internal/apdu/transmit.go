package apdu

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Transport sends one raw command APDU and returns the raw response. It is
// implemented by internal/pcsc for a real reader and by internal/sim for the
// simulated device.
type Transport interface {
	Transmit(cmd []byte) ([]byte, error)
}

// minCommand is the shortest command APDU the channel sends: the 4-byte
// header CLA INS P1 P2 of case 1 (ISO 7816-4:2013 section 5.1). The Pico
// HSM firmware hangs on a 1-byte APDU until it is unplugged
// (testdata/pico-hsm/README.md, "Firmware hazards"), and vpcd would take
// one for a control code; Encode never makes anything shorter, and
// roundTrip refuses it should anything else try.
const minCommand = 4

// ErrShortCommand is returned, without transmitting anything, for command
// bytes shorter than minCommand.
var ErrShortCommand = errors.New("apdu: refusing to send a command shorter than its 4-byte header")

// maxGetResponse bounds the GET RESPONSE loop so that a misbehaving card
// cannot keep the host busy forever.
const maxGetResponse = 256

// Channel sends Commands over a Transport. It handles 61xx (GET RESPONSE,
// ISO 7816-4:2013 section 7.6.1) and 6Cxx (resend with the offered Le) in one
// place, and writes a trace with secrets masked when Trace is set.
type Channel struct {
	T     Transport
	Trace io.Writer
}

// Transmit sends c and returns the complete response. A status word other
// than 9000 is returned in the Response, not as an error: the caller decides
// what it means. The error is only for transport failures.
func (ch *Channel) Transmit(c Command) (Response, error) {
	raw, err := c.Encode()
	if err != nil {
		return Response{}, err
	}
	if c.Secret {
		// The encoding copies the PIN or share: wipe it when done.
		defer clear(raw)
	}
	r, err := ch.roundTrip(c, raw)
	if err != nil {
		return Response{}, err
	}
	if r.SW&0xFF00 == SWWrongLe && c.Ne > 0 {
		c.Ne = int(r.SW & 0xFF)
		if c.Ne == 0 {
			c.Ne = 256
		}
		if raw, err = c.Encode(); err != nil {
			return Response{}, err
		}
		if r, err = ch.roundTrip(c, raw); err != nil {
			return Response{}, err
		}
	}
	data := r.Data
	for i := 0; r.SW&0xFF00 == SWBytesRemaining; i++ {
		if i == maxGetResponse {
			return Response{}, fmt.Errorf("card keeps answering 61xx after %d GET RESPONSE commands", i)
		}
		ne := int(r.SW & 0xFF)
		if ne == 0 {
			ne = 256
		}
		gr := Command{INS: 0xC0, Ne: ne, Name: "GET RESPONSE", SecretResponse: c.SecretResponse}
		graw, _ := gr.Encode()
		if r, err = ch.roundTrip(gr, graw); err != nil {
			return Response{}, err
		}
		data = append(data[:len(data):len(data)], r.Data...)
	}
	return Response{Data: data, SW: r.SW}, nil
}

// Do is Transmit followed by Response.Err: it returns the data only on 9000.
func (ch *Channel) Do(c Command) ([]byte, error) {
	r, err := ch.Transmit(c)
	if err != nil {
		return nil, err
	}
	if err := r.Err(); err != nil {
		return r.Data, err
	}
	return r.Data, nil
}

func (ch *Channel) roundTrip(c Command, raw []byte) (Response, error) {
	if len(raw) < minCommand {
		return Response{}, fmt.Errorf("%s: %w (%d bytes)", c.label(), ErrShortCommand, len(raw))
	}
	if ch.Trace != nil {
		fmt.Fprintf(ch.Trace, "> %s\n", TraceCommand(c, raw))
	}
	out, err := ch.T.Transmit(raw)
	if err != nil {
		if ch.Trace != nil {
			fmt.Fprintf(ch.Trace, "< error: %v\n", err)
		}
		return Response{}, err
	}
	r, err := ParseResponse(out)
	if err != nil {
		return Response{}, fmt.Errorf("card answered %s: %w", c.label(), err)
	}
	if ch.Trace != nil {
		fmt.Fprintf(ch.Trace, "< %s\n", TraceResponse(c, r))
	}
	return r, nil
}

func (c Command) label() string {
	if c.Name != "" {
		return c.Name
	}
	return fmt.Sprintf("INS %02X", c.INS)
}

// TraceCommand renders a command for the -v trace. Secret data is replaced by
// its length, so PINs, SO-PINs and DKEK shares never reach the trace.
func TraceCommand(c Command, raw []byte) string {
	var b strings.Builder
	if c.Name != "" {
		fmt.Fprintf(&b, "%s: ", c.Name)
	}
	if !c.Secret || len(c.Data) == 0 {
		b.WriteString(spacedHex(raw))
		return b.String()
	}
	b.WriteString(spacedHex(raw[:4]))
	fmt.Fprintf(&b, " [%d secret bytes masked]", len(c.Data))
	if c.Ne > 0 {
		fmt.Fprintf(&b, " Ne=%d", c.Ne)
	}
	return b.String()
}

// TraceResponse renders a response for the -v trace, masking secret data.
func TraceResponse(c Command, r Response) string {
	sw := fmt.Sprintf("%04X", r.SW)
	if r.SW != SWOK {
		sw += " " + Describe(r.SW)
	}
	if len(r.Data) == 0 {
		return sw
	}
	if c.SecretResponse {
		return fmt.Sprintf("[%d secret bytes masked] %s", len(r.Data), sw)
	}
	return spacedHex(r.Data) + " " + sw
}

func spacedHex(b []byte) string {
	h := strings.ToUpper(hex.EncodeToString(b))
	var s strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			s.WriteByte(' ')
		}
		s.WriteString(h[i : i+2])
	}
	return s.String()
}
