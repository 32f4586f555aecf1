// Package pcsc reaches a Pico HSM through the PC/SC resource manager
// (pcscd on Linux, via libpcsclite and github.com/ebfe/scard).
//
// Errors carry a sentinel (ErrNoService, ErrNoCard, ...) that says what
// the user should do, together with the PC/SC code for the log; see
// errors.go for the mapping.
//
// libpcsclite reads the PCSCLITE_CSOCK_NAME environment variable once per
// process, at the first SCardEstablishContext, to find pcscd's socket
// (getSocketName in pcsc-lite src/winscard_msg.c). Setting it later has no
// effect on this process.
package pcsc

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ebfe/scard"
)

// pnpNotification is the pseudo reader name that makes SCardGetStatusChange
// return when a reader is added or removed (PC/SC part 5 section 3.1.9;
// pcsc-lite SCardGetStatusChange in src/winscard_clnt.c).
const pnpNotification = `\\?PnP?\Notification`

// Context is a PC/SC resource manager context.
type Context struct {
	ctx *scard.Context
}

// Establish opens a context with pcscd. It fails with ErrNoService when
// pcscd is not running.
func Establish() (*Context, error) {
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, wrap(err, phaseContext, "establish context", "")
	}
	return &Context{ctx: c}, nil
}

// Release closes the context. Cards connected through it must be closed
// first.
func (c *Context) Release() error {
	if err := c.ctx.Release(); err != nil {
		return wrap(err, phaseContext, "release context", "")
	}
	return nil
}

// Cancel makes a Choose that is waiting for a card return ErrCancelled. It
// is the one method that may be called from another goroutine, for example
// on Ctrl-C.
func (c *Context) Cancel() error {
	if err := c.ctx.Cancel(); err != nil {
		return wrap(err, phaseContext, "cancel", "")
	}
	return nil
}

// ReaderInfo describes one reader as pcscd sees it.
type ReaderInfo struct {
	Name        string
	CardPresent bool
	// Mute is set when a card is present but did not answer the reset.
	Mute bool
	// Exclusive is set when another program holds the card exclusively.
	Exclusive bool
	// ATR is the card's answer-to-reset, when a card is present.
	ATR []byte
}

// Readers lists the readers and their card state, in pcscd's order (the
// order the numeric reader specs of Choose and of sc-hsm-tool --reader
// refer to). No reader is an empty list, not an error.
func (c *Context) Readers() ([]ReaderInfo, error) {
	infos, _, err := c.readers()
	return infos, err
}

// readers also returns the raw states, which waitChange needs to block
// until something differs from them.
func (c *Context) readers() ([]ReaderInfo, []scard.ReaderState, error) {
	for try := 0; ; try++ {
		infos, states, err := c.readersOnce()
		// A reader that left between listing and asking for its
		// state fails the whole call with SCARD_E_UNKNOWN_READER:
		// look again.
		if try < 3 && errors.Is(err, scard.ErrUnknownReader) {
			continue
		}
		return infos, states, err
	}
}

func (c *Context) readersOnce() ([]ReaderInfo, []scard.ReaderState, error) {
	names, err := c.ctx.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return []ReaderInfo{}, nil, nil
	}
	if err != nil {
		return nil, nil, wrap(err, phaseContext, "list readers", "")
	}
	states := make([]scard.ReaderState, len(names))
	for i, n := range names {
		states[i] = scard.ReaderState{Reader: n, CurrentState: scard.StateUnaware}
	}
	// With every current state "unaware", SCardGetStatusChange returns
	// the present state at once (PC/SC part 5 section 3.1.9).
	if err := c.ctx.GetStatusChange(states, 0); err != nil && !errors.Is(err, scard.ErrTimeout) {
		return nil, nil, wrap(err, phaseContext, "get reader status", "")
	}
	infos := make([]ReaderInfo, 0, len(states))
	kept := states[:0]
	for _, s := range states {
		if s.EventState&(scard.StateUnknown|scard.StateIgnore) != 0 {
			continue // gone meanwhile
		}
		info := ReaderInfo{
			Name:        s.Reader,
			CardPresent: s.EventState&scard.StatePresent != 0,
			Mute:        s.EventState&scard.StateMute != 0,
			Exclusive:   s.EventState&scard.StateExclusive != 0,
		}
		if info.CardPresent && len(s.Atr) > 0 {
			info.ATR = bytes.Clone(s.Atr)
		}
		infos = append(infos, info)
		kept = append(kept, s)
	}
	return infos, kept, nil
}

// Connect opens the card in reader in shared mode, so that other programs
// (and pcscd's own polling) keep working, with T=1 preferred and T=0
// accepted; the Pico HSM speaks T=1.
func (c *Context) Connect(reader string) (*Card, error) {
	h, err := c.ctx.Connect(reader, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		return nil, wrap(err, phaseConnect, "connect", reader)
	}
	card := &Card{h: h, reader: reader}
	if st, err := h.Status(); err == nil {
		card.atr = bytes.Clone(st.Atr)
	}
	return card, nil
}

// Card is a connected card. It implements apdu.Transport.
type Card struct {
	h      *scard.Card
	reader string
	atr    []byte
}

// Reader returns the name of the reader the card is in.
func (c *Card) Reader() string { return c.reader }

// ATR returns the answer-to-reset read when the card was connected or last
// reconnected.
func (c *Card) ATR() []byte { return bytes.Clone(c.atr) }

// Transmit sends one command APDU and returns the response APDU (data and
// SW1 SW2). A card pulled out, or reset by another program, in the middle
// fails with ErrCardRemoved.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	rsp, err := c.h.Transmit(cmd)
	if err != nil {
		return nil, c.cardErr(err, "transmit")
	}
	return rsp, nil
}

// cardErr wraps an error from an open handle. Some readers report a card
// pulled out during an exchange only as a transmission failure
// (SCARD_E_NOT_TRANSACTED, SCARD_F_COMM_ERROR); asking for the status then
// tells whether the card is still there.
func (c *Card) cardErr(err error, op string) error {
	e := wrap(err, phaseCard, op, c.reader).(*Error)
	if e.Kind == nil && e.Code != 0 {
		if _, serr := c.h.Status(); serr != nil {
			var code scard.Error
			if errors.As(serr, &code) && classify(code, phaseCard) == ErrCardRemoved {
				e.Kind = ErrCardRemoved
			}
		}
	}
	return e
}

// Begin starts an exclusive transaction (SCardBeginTransaction): until End,
// no other program can send APDUs to the card. Wrap every multi-APDU
// operation (select, verify PIN, then use the key) in Begin and End so
// another program cannot interleave commands or reset the card in between.
func (c *Card) Begin() error {
	if err := c.h.BeginTransaction(); err != nil {
		return c.cardErr(err, "begin transaction")
	}
	return nil
}

// End ends the transaction, leaving the card as it is
// (SCardEndTransaction with SCARD_LEAVE_CARD), so the login state survives
// for the next transaction.
func (c *Card) End() error {
	if err := c.h.EndTransaction(scard.LeaveCard); err != nil {
		return c.cardErr(err, "end transaction")
	}
	return nil
}

// Reconnect re-establishes the connection after another program reset the
// card (ErrCardRemoved with SCARD_W_RESET_CARD), or resets the card itself
// when reset is true, which logs out and deselects the applet.
func (c *Card) Reconnect(reset bool) error {
	disp := scard.LeaveCard
	if reset {
		disp = scard.ResetCard
	}
	if err := c.h.Reconnect(scard.ShareShared, scard.ProtocolAny, disp); err != nil {
		return c.cardErr(err, "reconnect")
	}
	if st, err := c.h.Status(); err == nil {
		c.atr = bytes.Clone(st.Atr)
	}
	return nil
}

// Close disconnects, leaving the card powered and logged in for the next
// program, as sc-hsm-tool and OpenSC do. A card that is already gone is not
// an error.
func (c *Card) Close() error {
	err := c.h.Disconnect(scard.LeaveCard)
	if err == nil {
		return nil
	}
	var code scard.Error
	if errors.As(err, &code) {
		switch code {
		case scard.ErrRemovedCard, scard.ErrResetCard, scard.ErrNoSmartcard,
			scard.ErrReaderUnavailable, scard.ErrInvalidHandle:
			return nil
		}
	}
	return wrap(err, phaseCard, "disconnect", c.reader)
}

// Choose connects to the card a reader spec designates:
//
//	""        the first reader, in pcscd's order, whose card probe accepts
//	"2"       the reader at index 2 (as sc-hsm-tool --reader 2)
//	"nitro"   the first reader whose name contains "nitro", any case,
//	          whose card probe accepts
//
// probe is called on each connected candidate, typically to SELECT the
// SmartCard-HSM application; nil accepts any card. A card probe refuses
// fails with ErrNotSmartCardHSM.
//
// With wait > 0, Choose waits up to wait for a suitable card to appear,
// including a reader being plugged in (a Pico HSM is its own USB reader),
// using SCardGetStatusChange. Context.Cancel interrupts the wait.
//
// It returns the card and the reader name.
func Choose(ctx *Context, spec string, wait time.Duration, probe func(*Card) bool) (*Card, string, error) {
	deadline := time.Now().Add(wait)
	for {
		readers, states, err := ctx.readers()
		if err != nil {
			return nil, "", err
		}
		card, err := ctx.pick(readers, spec, probe)
		if err == nil {
			return card, card.reader, nil
		}
		var e *Error
		if !errors.As(err, &e) || !retryable(e.Kind) {
			return nil, "", err
		}
		left := time.Until(deadline)
		if wait <= 0 || left <= 0 {
			if wait > 0 {
				e.Detail = joinDetail(e.Detail, fmt.Sprintf("gave up after waiting %s", wait.Round(time.Millisecond)))
			}
			return nil, "", err
		}
		if werr := ctx.waitChange(states, left); werr != nil {
			if errors.Is(werr, scard.ErrTimeout) {
				continue // one last look; the deadline has passed
			}
			return nil, "", wrap(werr, phaseContext, "wait for a card", "")
		}
	}
}

func joinDetail(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// retryable reports whether waiting for a change could fix err.
func retryable(kind error) bool {
	switch kind {
	case ErrNoReader, ErrReaderNotFound, ErrNoCard, ErrNotSmartCardHSM,
		ErrCardBusy, ErrCardUnresponsive, ErrCardRemoved:
		return true
	}
	return false
}

// pick tries the candidates for spec in order.
func (c *Context) pick(readers []ReaderInfo, spec string, probe func(*Card) bool) (*Card, error) {
	cands, err := candidates(readers, spec)
	if err != nil {
		return nil, err
	}
	var errBusy, errNotHSM, errOther error
	for _, r := range cands {
		if !r.CardPresent {
			continue
		}
		card, err := c.Connect(r.Name)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && e.Kind == ErrCardBusy {
				errBusy = err
			} else if errors.As(err, &e) && retryable(e.Kind) {
				errOther = err
			} else {
				return nil, err
			}
			continue
		}
		if probe == nil || probe(card) {
			return card, nil
		}
		card.Close()
		if errNotHSM == nil {
			errNotHSM = &Error{Op: "select", Reader: r.Name, Kind: ErrNotSmartCardHSM}
		}
	}
	for _, e := range []error{errBusy, errNotHSM, errOther} {
		if e != nil {
			return nil, e
		}
	}
	e := &Error{Op: "choose reader", Kind: ErrNoCard}
	if len(cands) == 1 {
		e.Reader = cands[0].Name
	} else {
		e.Detail = "readers checked: " + listNames(cands)
	}
	return nil, e
}

// candidates returns the readers spec designates, in order. Only the
// selection happens here, so that it can be tested without pcscd.
func candidates(readers []ReaderInfo, spec string) ([]ReaderInfo, error) {
	if len(readers) == 0 {
		return nil, &Error{Op: "list readers", Kind: ErrNoReader}
	}
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return readers, nil
	}
	if isIndex(spec) {
		// Decimal, leading zeros allowed ("010" is ten): fmt.Sscan
		// would read it as octal.
		if i, err := strconv.Atoi(spec); err == nil && i < len(readers) {
			return readers[i : i+1], nil
		}
		return nil, &Error{Op: "choose reader", Kind: ErrReaderNotFound,
			Detail: fmt.Sprintf("index %s: there are %d readers: %s", spec, len(readers), listReaders(readers))}
	}
	var out []ReaderInfo
	want := strings.ToLower(spec)
	for _, r := range readers {
		if strings.Contains(strings.ToLower(r.Name), want) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, &Error{Op: "choose reader", Kind: ErrReaderNotFound,
			Detail: fmt.Sprintf("%q: the readers are %s", spec, listReaders(readers))}
	}
	return out, nil
}

func isIndex(s string) bool {
	if len(s) == 0 || len(s) > 4 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// listReaders renders readers with their index for error messages.
func listReaders(rs []ReaderInfo) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d %q", i, r.Name)
	}
	return strings.Join(parts, ", ")
}

func listNames(rs []ReaderInfo) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%q", r.Name)
	}
	return strings.Join(parts, ", ")
}

// waitChange blocks until a reader's state differs from states, a reader is
// added or removed, or timeout passes (scard.ErrTimeout).
//
// For the PnP pseudo reader, pcsc-lite compares the reader count held in
// the high 16 bits of dwCurrentState with the actual count (pcsc-lite 1.8.x
// and later, SCardGetStatusChange in src/winscard_clnt.c); older versions
// compare with the count at the time of the call. Setting the count works
// with both.
func (c *Context) waitChange(states []scard.ReaderState, timeout time.Duration) error {
	ws := make([]scard.ReaderState, 0, len(states)+1)
	for _, s := range states {
		s.CurrentState = s.EventState &^ scard.StateChanged
		ws = append(ws, s)
	}
	ws = append(ws, scard.ReaderState{
		Reader:       pnpNotification,
		CurrentState: scard.StateFlag(uint32(len(states)) << 16),
	})
	return c.ctx.GetStatusChange(ws, timeout)
}
