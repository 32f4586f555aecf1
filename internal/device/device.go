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
		conn := &Conn{Device: hsm.New(d, o.Trace), Reader: o.Reader, ATR: d.ATR(), Sim: d}
		info, err := conn.SelectApplication()
		if err != nil {
			d.Close()
			return nil, err
		}
		conn.Selected(info)
		return conn, nil
	}
	ctx, err := pcsc.Establish()
	if err != nil {
		return nil, err
	}
	// The probe's SELECT is the session's first APDU: its answer is kept,
	// so that the operation does not send it again.
	var probed hsm.Info
	probe := func(c *pcsc.Card) bool {
		info, err := hsm.New(c, o.Trace).SelectApplication()
		probed = info
		return err == nil
	}
	card, name, err := pcsc.Choose(ctx, o.Reader, o.Wait, probe)
	if err != nil {
		ctx.Release()
		return nil, err
	}
	conn := &Conn{Device: hsm.New(card, o.Trace), Reader: name, ATR: card.ATR(), card: card, ctx: ctx}
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
