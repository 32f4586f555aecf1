// Package vpcd attaches a virtual card to vsmartcard's vpcd, the virtual
// reader driver that pcscd loads from /etc/reader.conf.d/vpcd.
//
// vpcd listens on TCP port 35963 (VPCDPORT in vsmartcard
// virtualsmartcard/src/vpcd/vpcd.h; the Debian reader.conf writes it as
// CHANNELID 0x8C7B) for the reader "Virtual PCD 00 00", and on 35964 for
// "Virtual PCD 00 01". A virtual card (vicc) connects to that port; while
// the connection is open the reader reports a card present.
//
// Wire format, as implemented by sendToVICC and recvFromVICC in vsmartcard
// virtualsmartcard/src/vpcd/vpcd.c and mirrored by VirtualICC in
// virtualsmartcard/src/vpicc/virtualsmartcard/VirtualSmartcard.py: every
// message in both directions is a 2-byte big-endian length followed by that
// many bytes. A 1-byte message from vpcd is a control code (VPCD_CTRL_* in
// vpcd.h):
//
//	00 power off   no answer
//	01 power on    no answer
//	02 reset       no answer
//	04 get ATR     answer with the ATR
//
// Any longer message is a command APDU, answered with the response APDU.
// vpcd polls card presence by sending 04 (vicc_present calls vicc_getatr),
// so an ATR request can arrive at any time between APDUs. An empty answer,
// or closing the connection, makes vpcd drop the connection and report the
// card as removed (vicc_transmit calls vicc_eject when it reads 0 bytes).
//
// vpcd waits for an answer without a time limit (recvall blocks in
// vicc_transmit, which holds the lock its presence polls need too), so a
// card that never answers an APDU holds the reader until the connection
// closes: that is how a hung Pico HSM looks through vpcd (ErrNoAnswer).
package vpcd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// DefaultAddr is where vpcd listens for the card of "Virtual PCD 00 00".
// vpcd binds all interfaces (INADDR_ANY in opensock, vpcd.c), which is why
// internal/testbed runs pcscd in its own network namespace.
const DefaultAddr = "127.0.0.1:35963"

// Control codes sent by vpcd as 1-byte messages (vpcd.h VPCD_CTRL_*).
const (
	CtrlPowerOff byte = 0x00
	CtrlPowerOn  byte = 0x01
	CtrlReset    byte = 0x02
	CtrlATR      byte = 0x04
)

// maxMessage is the largest payload the 16-bit length prefix can carry.
const maxMessage = 0xFFFF

// retryInterval is how often Serve retries connecting while vpcd is not
// listening yet: pcscd loads its drivers asynchronously after it starts.
const retryInterval = 50 * time.Millisecond

// swNoDiagnosis is the ISO 7816-4 status word 6F00 ("no precise
// diagnosis"), sent when the card fails in a way that has no status word of
// its own, because vpcd blocks until it receives an answer.
var swNoDiagnosis = []byte{0x6F, 0x00}

// ErrNoAnswer, returned (or wrapped) by Card.Transmit, makes Serve send no
// answer at all: the card hangs, as the Pico HSM firmware does on some
// APDUs (internal/sim hazard.go). vpcd keeps waiting until the connection
// closes; a USB reader times out instead. Serve goes on reading vpcd's
// messages, so the card can still answer what comes later.
var ErrNoAnswer = errors.New("the card does not answer")

// ErrClosed is returned by Serve when vpcd closed the connection between
// two messages: pcscd stopped, or vpcd ejected the card.
var ErrClosed = errors.New("vpcd closed the connection")

// Card is the virtual card behind the reader. vpcd calls are serialised, so
// a Card needs no locking for Serve; it may need it for its own users.
type Card interface {
	// ATR returns the answer-to-reset. It is asked for often, as vpcd
	// polls presence with it; an empty ATR means "no card".
	ATR() []byte
	PowerOn()
	PowerOff()
	Reset()
	// Transmit answers one command APDU with a response APDU (data and
	// SW1 SW2). An error that matches ErrNoAnswer gets no answer; any
	// other error is answered with 6F00.
	Transmit(cmd []byte) ([]byte, error)
}

// Serve connects to vpcd at addr (DefaultAddr when empty) and answers its
// messages with card until ctx ends or the connection drops.
//
// While vpcd is not listening yet, Serve retries until ctx ends. Ending ctx
// closes the connection, which vpcd sees as the card being removed; that
// case returns nil. A close by vpcd between messages returns ErrClosed; a
// malformed or truncated message returns an error. logf, if not nil,
// receives one line per notable event.
func Serve(ctx context.Context, addr string, card Card, logf func(string, ...any)) error {
	if addr == "" {
		addr = DefaultAddr
	}
	if logf == nil {
		logf = func(string, ...any) {}
	}
	conn, err := dial(ctx, addr, logf)
	if err != nil {
		return nil // ctx ended while waiting for vpcd
	}
	logf("vpcd: connected to %s", addr)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	err = serveConn(conn, card, logf)
	if ctx.Err() != nil {
		logf("vpcd: disconnected (card removed)")
		return nil
	}
	return err
}

// dial connects to addr, retrying until ctx ends.
func dial(ctx context.Context, addr string, logf func(string, ...any)) (net.Conn, error) {
	var d net.Dialer
	logged := false
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !logged {
			logf("vpcd: waiting for vpcd at %s: %v", addr, err)
			logged = true
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryInterval):
		}
	}
}

// serveConn runs the message loop on an established connection.
func serveConn(rw io.ReadWriter, card Card, logf func(string, ...any)) error {
	for {
		msg, err := readMessage(rw)
		if err != nil {
			return err
		}
		var answer []byte
		switch {
		case len(msg) == 0:
			// vpcd never sends an empty message (vicc_transmit sends
			// nothing for a zero-length APDU); answering would
			// desynchronise the stream, so ignore it.
			logf("vpcd: ignoring empty message")
			continue
		case len(msg) == 1:
			switch msg[0] {
			case CtrlPowerOff:
				card.PowerOff()
				continue
			case CtrlPowerOn:
				card.PowerOn()
				continue
			case CtrlReset:
				card.Reset()
				continue
			case CtrlATR:
				answer = card.ATR()
			default:
				logf("vpcd: ignoring unknown control code %02X", msg[0])
				continue
			}
		default:
			rsp, err := card.Transmit(msg)
			switch {
			case errors.Is(err, ErrNoAnswer):
				logf("vpcd: no answer to the APDU: %v", err)
				continue
			case err != nil:
				logf("vpcd: card failed: %v", err)
				rsp = swNoDiagnosis
			case len(rsp) > maxMessage:
				logf("vpcd: response of %d bytes exceeds the %d bytes vpcd can carry", len(rsp), maxMessage)
				rsp = swNoDiagnosis
			}
			answer = rsp
		}
		if err := writeMessage(rw, answer); err != nil {
			return err
		}
	}
}

// readMessage reads one length-prefixed message. io.EOF before the first
// length byte is a clean close (ErrClosed); EOF anywhere else means the
// message was cut short.
func readMessage(r io.Reader) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrClosed
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errors.New("vpcd: connection closed inside a length prefix")
		}
		return nil, fmt.Errorf("vpcd: reading length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(hdr[:]))
	msg := make([]byte, n)
	if _, err := io.ReadFull(r, msg); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("vpcd: connection closed inside a %d-byte message", n)
		}
		return nil, fmt.Errorf("vpcd: reading %d-byte message: %w", n, err)
	}
	return msg, nil
}

// writeMessage sends the length prefix and the payload in one write, so
// that they travel in one segment.
func writeMessage(w io.Writer, msg []byte) error {
	if len(msg) > maxMessage {
		return fmt.Errorf("vpcd: message of %d bytes exceeds %d", len(msg), maxMessage)
	}
	buf := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(buf, uint16(len(msg)))
	copy(buf[2:], msg)
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("vpcd: writing answer: %w", err)
	}
	return nil
}

// Server keeps a Card attached to vpcd across connection drops, and lets a
// test pull the card out and put it back: Remove closes the connection
// (vpcd reports the card removed) and Insert reconnects (vpcd reports a new
// card and pcscd powers it up). The Card itself, and so the simulated
// device's state, survives.
type Server struct {
	Addr string // DefaultAddr when empty
	Card Card
	Logf func(string, ...any) // may be nil

	mu      sync.Mutex
	removed bool
	cancel  context.CancelFunc // ends the current session
	changed chan struct{}      // closed and replaced on Insert
}

func (s *Server) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// Run serves until ctx ends, reconnecting whenever the connection drops
// while the card is inserted. It returns nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		s.mu.Lock()
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		if s.removed {
			ch := s.changed
			s.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-ch:
			}
			continue
		}
		sctx, cancel := context.WithCancel(ctx)
		s.cancel = cancel
		s.mu.Unlock()

		err := Serve(sctx, s.Addr, s.Card, s.Logf)
		cancel()
		if err != nil && ctx.Err() == nil {
			s.logf("vpcd: %v; reconnecting", err)
			select {
			case <-ctx.Done():
			case <-time.After(retryInterval):
			}
		}
	}
	return nil
}

// Remove takes the card out of the reader: the connection is closed and
// stays closed until Insert.
func (s *Server) Remove() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removed = true
	if s.cancel != nil {
		s.cancel()
	}
}

// Insert puts the card back after Remove.
func (s *Server) Insert() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removed {
		return
	}
	s.removed = false
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// Inserted reports whether the card is meant to be in the reader.
func (s *Server) Inserted() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.removed
}
