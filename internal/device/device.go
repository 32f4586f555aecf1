// Package device opens the Pico HSM a --reader option names: a PC/SC reader
// (by index, by a piece of its name, or the first one whose card answers the
// SmartCard-HSM application identifier), or the simulated device
// "sim:PATH", whose state lives in the file PATH.
package device

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/ebfe/scard"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pcsc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// SimPrefix marks a reader spec that names a simulated device's state file.
const SimPrefix = "sim:"

// Options say which device to open and how.
type Options struct {
	// Reader is "" (the first reader with a SmartCard-HSM), an index, a
	// case-insensitive substring of a reader name, or sim:PATH.
	Reader string
	// Wait is how long to wait for a card; 0 does not wait.
	Wait time.Duration
	// Trace receives the APDU trace (-v), secrets masked; nil for none.
	Trace io.Writer
}

// Conn is an open device.
type Conn struct {
	*hsm.Device
	// Reader is the reader name, or "sim:PATH".
	Reader string
	// ATR is the card's answer to reset.
	ATR []byte
	// Sim is the simulated device when Reader is sim:PATH.
	Sim *sim.Device

	card *pcsc.Card
	ctx  *pcsc.Context
	inTx bool
	// tap, when set, carries every APDU of the connection (Intercept).
	tap func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error)
}

// TestHook, when set, is called by Open with each new connection before
// its first APDU, the reader probe's included: Conn.Sim is set for
// sim:PATH, and the hook may arm a fault plan on it (sim.Device.Inject) or
// Intercept the APDUs. Only tests set it; cmd/pico-hsm-tool's test binary
// sets it from PICO_HSM_TEST_FAULT, which the real binary never reads, so
// that the fault matrix (docs/reliability.md) runs the real command.
var TestHook func(*Conn)

// Intercept routes every later APDU of the connection through fn, which
// sends it with send (or not), and may change the answer or fail. Tests use
// it to pause or break an operation at a chosen APDU.
func (c *Conn) Intercept(fn func(cmd []byte, send func([]byte) ([]byte, error)) ([]byte, error)) {
	c.tap = fn
}

// tapped is the transport of a connection: the card or the simulated
// device, through the connection's tap when one is set.
type tapped struct {
	c *Conn
	t apdu.Transport
}

func (t tapped) Transmit(cmd []byte) ([]byte, error) {
	if t.c.tap != nil {
		return t.c.tap(cmd, t.t.Transmit)
	}
	return t.t.Transmit(cmd)
}

// simCard is the simulated device as a transport. The faults injected
// into it fail the way the real PC/SC stack fails (see pcsc.classify): a
// removed card is SCARD_W_REMOVED_CARD, a reset SCARD_W_RESET_CARD, and a
// pcscd gone SCARD_E_NO_SERVICE, so that every layer above, and the
// messages the user reads, behave as they do with a real reader. A device
// whose firmware hangs (sim.ErrHung, with Device.FirmwareHangs on) never
// answers; to the host that is a card that does not respond,
// SCARD_W_UNRESPONSIVE_CARD, and the advice to unplug it.
type simCard struct {
	d      *sim.Device
	reader string
}

func (s simCard) Transmit(cmd []byte) ([]byte, error) {
	r, err := s.d.Transmit(cmd)
	switch {
	case errors.Is(err, sim.ErrCardRemoved):
		return nil, &pcsc.Error{Op: "transmit", Reader: s.reader, Kind: pcsc.ErrCardRemoved, Code: scard.ErrRemovedCard}
	case errors.Is(err, sim.ErrCardReset):
		return nil, &pcsc.Error{Op: "transmit", Reader: s.reader, Kind: pcsc.ErrCardRemoved, Code: scard.ErrResetCard}
	case errors.Is(err, sim.ErrNoService):
		return nil, &pcsc.Error{Op: "transmit", Reader: s.reader, Kind: pcsc.ErrNoService, Code: scard.ErrNoService}
	case errors.Is(err, sim.ErrHung):
		return nil, &pcsc.Error{Op: "transmit", Reader: s.reader, Kind: pcsc.ErrCardUnresponsive, Code: scard.ErrUnresponsiveCard}
	}
	return r, err
}

// Open opens the device o names. The caller must Close it.
func Open(o Options) (*Conn, error) {
	if path, ok := strings.CutPrefix(o.Reader, SimPrefix); ok {
		if path == "" {
			return nil, errors.New("--reader sim:PATH needs the path of the simulated device's state file")
		}
		d, err := sim.Open(path)
		if err != nil {
			return nil, err
		}
		d.PowerOn()
		conn := &Conn{Reader: o.Reader, ATR: d.ATR(), Sim: d}
		conn.Device = hsm.New(tapped{conn, simCard{d, o.Reader}}, o.Trace)
		if TestHook != nil {
			TestHook(conn)
		}
		info, err := conn.SelectApplication()
		if err != nil {
			d.Close()
			if OutcomeUnknown(err) {
				return nil, fmt.Errorf("%w; the command did not start, the device is unchanged%s", err, Again(err))
			}
			return nil, err
		}
		conn.Selected(info)
		return conn, nil
	}
	ctx, err := pcsc.Establish()
	if err != nil {
		return nil, err
	}
	conn := &Conn{Reader: o.Reader}
	if TestHook != nil {
		TestHook(conn)
	}
	// The probe's SELECT is the session's first APDU: its answer is kept,
	// so that the operation does not send it again.
	var probed hsm.Info
	probe := func(c *pcsc.Card) bool {
		info, err := hsm.New(tapped{conn, c}, o.Trace).SelectApplication()
		probed = info
		return err == nil
	}
	card, name, err := pcsc.Choose(ctx, o.Reader, o.Wait, probe)
	if err != nil {
		ctx.Release()
		return nil, err
	}
	conn.Device = hsm.New(tapped{conn, card}, o.Trace)
	conn.Reader, conn.ATR, conn.card, conn.ctx = name, card.ATR(), card, ctx
	conn.Selected(probed)
	return conn, nil
}

// probe tells a SmartCard-HSM from other cards: it answers SELECT of the
// application with its FCP (9000, or 61xx when the reader runs T=0).
func probe(c *pcsc.Card) bool {
	_, err := hsm.New(c, nil).SelectApplication()
	return err == nil
}

// Transaction runs fn inside an exclusive PC/SC transaction, so that no
// other program's APDUs interleave with a multi-APDU operation. The
// simulated device is already exclusive: its state file is locked while open.
func (c *Conn) Transaction(fn func() error) error {
	if c.card == nil || c.inTx {
		return fn()
	}
	if err := c.card.Begin(); err != nil {
		return err
	}
	c.inTx = true
	ferr := fn()
	c.inTx = false
	eerr := c.card.End()
	if ferr != nil {
		return ferr
	}
	return eerr
}

// Close disconnects from the card or releases the simulated device.
// Suggest is the command line that runs "pico-hsm-tool ARGS" on this same
// device, for messages that tell the user what to run next: a follow-up
// that left out --reader could reach another device (or, from a
// rehearsal on sim:PATH, the real one).
func (c *Conn) Suggest(args string) string {
	return "pico-hsm-tool --reader " + ShellQuote(c.Reader) + " " + args
}

// ShellQuote quotes s for a POSIX shell when it needs it, with double
// quotes: the messages put a suggested command in single quotes. A "!",
// which an interactive bash expands inside double quotes, gets single
// quotes instead.
func ShellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:@%+=,", r))
	}) < 0 {
		return s
	}
	if strings.ContainsRune(s, '!') {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if strings.ContainsRune("\"\\$`", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

func (c *Conn) Close() error {
	if c.Sim != nil {
		return c.Sim.Close()
	}
	err := c.card.Close()
	if rerr := c.ctx.Release(); err == nil {
		err = rerr
	}
	return err
}

// Reader is one line of list-readers.
type Reader struct {
	Index       int    `json:"index"`
	Name        string `json:"name"`
	CardPresent bool   `json:"card_present"`
	ATR         string `json:"atr,omitempty"`
	// SmartCardHSM tells whether the card answers the SmartCard-HSM
	// application identifier; nil when there is no card or it is in use.
	SmartCardHSM *bool `json:"smartcard_hsm,omitempty"`
}

// ListReaders lists the PC/SC readers, probing each card present.
func ListReaders() ([]Reader, error) {
	ctx, err := pcsc.Establish()
	if err != nil {
		return nil, err
	}
	defer ctx.Release()
	rs, err := ctx.Readers()
	if err != nil {
		return nil, err
	}
	out := make([]Reader, 0, len(rs))
	for i, r := range rs {
		line := Reader{Index: i, Name: r.Name, CardPresent: r.CardPresent}
		if len(r.ATR) > 0 {
			line.ATR = fmt.Sprintf("% X", r.ATR)
		}
		if r.CardPresent {
			if card, err := ctx.Connect(r.Name); err == nil {
				ok := probe(card)
				line.SmartCardHSM = &ok
				card.Close()
			}
		}
		out = append(out, line)
	}
	return out, nil
}
