package pcsc

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebfe/scard"
)

// Sentinel errors. Every error returned by this package that has one of
// these causes matches it with errors.Is; the PC/SC code, when there is one,
// matches too (errors.Is(err, scard.ErrNoSmartcard)).
var (
	ErrNoService        = errors.New("pcscd is not running: start it with 'sudo systemctl start pcscd' (or run 'sudo pcscd')")
	ErrNoReader         = errors.New("no smart card reader found: plug in the Pico HSM")
	ErrReaderNotFound   = errors.New("no reader matches")
	ErrNoCard           = errors.New("no card in the reader: plug in the Pico HSM")
	ErrNotSmartCardHSM  = errors.New("the card does not answer as a SmartCard-HSM: is the Pico HSM firmware installed, or is this another card?")
	ErrCardRemoved      = errors.New("the card was removed or reset during the operation: check that it is plugged in and retry")
	ErrCardBusy         = errors.New("the card is in exclusive use by another program (for example scdaemon or a browser): close it and retry")
	ErrCardUnresponsive = errors.New("the card does not respond: unplug it and plug it in again")
	ErrCancelled        = errors.New("waiting for the card was cancelled")
)

// Error is a PC/SC failure with the operation and reader it happened on.
type Error struct {
	Op     string      // "establish", "list readers", "connect", "transmit", ...
	Reader string      // empty when not tied to a reader
	Kind   error       // one of the sentinels above, or nil
	Code   scard.Error // the PC/SC return code, 0 when there is none
	Detail string      // extra context such as the list of readers
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Kind != nil {
		b.WriteString(e.Kind.Error())
		if e.Kind == ErrReaderNotFound && e.Detail != "" {
			b.WriteString(" ")
			b.WriteString(e.Detail)
		}
		b.WriteString(" (")
		b.WriteString(e.where())
		if e.Code != 0 {
			b.WriteString(": ")
			b.WriteString(codeName(e.Code))
		}
		b.WriteString(")")
		if e.Kind != ErrReaderNotFound && e.Detail != "" {
			b.WriteString(": ")
			b.WriteString(e.Detail)
		}
		return b.String()
	}
	b.WriteString("pcsc ")
	b.WriteString(e.where())
	if e.Code != 0 {
		fmt.Fprintf(&b, ": %s (%s)", describe(e.Code), codeName(e.Code))
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *Error) where() string {
	if e.Reader == "" {
		return e.Op
	}
	return fmt.Sprintf("%s %q", e.Op, e.Reader)
}

// Unwrap exposes both the sentinel and the PC/SC code to errors.Is.
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.Code != 0 {
		errs = append(errs, e.Code)
	}
	return errs
}

// phase says where in a card's life a code was returned: the same code
// means different things before and during an operation. SCARD_E_NO_SMARTCARD
// from SCardConnect is "no card"; from SCardTransmit it is "the card went
// away under us".
type phase int

const (
	phaseContext phase = iota // establish, list readers, status change
	phaseConnect              // SCardConnect
	phaseCard                 // transmit, transactions, reconnect, status
)

// classify maps a PC/SC return code to a sentinel. The codes and their
// meanings are those of pcsc-lite's pcsclite.h.in and the PC/SC Workgroup
// specification part 5 (section 3.1.7 error codes); pcsc-lite's
// winscard_clnt.c documents which function returns which.
func classify(code scard.Error, p phase) error {
	switch code {
	case scard.ErrNoService, scard.ErrServiceStopped:
		// SCARD_E_NO_SERVICE: libpcsclite could not reach pcscd's
		// socket. SCARD_E_SERVICE_STOPPED: pcscd went away while a
		// context was open.
		return ErrNoService
	case scard.ErrNoReadersAvailable:
		return ErrNoReader
	case scard.ErrUnknownReader, scard.ErrReaderUnavailable:
		if p == phaseCard {
			// The reader vanished under an open handle: for a Pico
			// HSM the reader is the device, so it was unplugged.
			return ErrCardRemoved
		}
		return ErrReaderNotFound
	case scard.ErrNoSmartcard:
		if p == phaseCard {
			return ErrCardRemoved
		}
		return ErrNoCard
	case scard.ErrRemovedCard:
		if p == phaseConnect {
			return ErrNoCard
		}
		return ErrCardRemoved
	case scard.ErrResetCard:
		return ErrCardRemoved
	case scard.ErrUnresponsiveCard, scard.ErrUnpoweredCard, scard.ErrUnsupportedCard:
		return ErrCardUnresponsive
	case scard.ErrSharingViolation:
		return ErrCardBusy
	case scard.ErrCancelled:
		return ErrCancelled
	}
	return nil
}

// wrap turns an error from package scard into an *Error.
func wrap(err error, p phase, op, reader string) error {
	if err == nil {
		return nil
	}
	var code scard.Error
	if !errors.As(err, &code) {
		return &Error{Op: op, Reader: reader, Detail: err.Error()}
	}
	return &Error{Op: op, Reader: reader, Kind: classify(code, p), Code: code}
}

// codeNames are the pcsclite.h names of the codes this package treats
// specially, for messages a user can search for.
var codeNames = map[scard.Error]string{
	scard.ErrCancelled:          "SCARD_E_CANCELLED",
	scard.ErrInvalidHandle:      "SCARD_E_INVALID_HANDLE",
	scard.ErrInvalidParameter:   "SCARD_E_INVALID_PARAMETER",
	scard.ErrUnknownReader:      "SCARD_E_UNKNOWN_READER",
	scard.ErrTimeout:            "SCARD_E_TIMEOUT",
	scard.ErrSharingViolation:   "SCARD_E_SHARING_VIOLATION",
	scard.ErrNoSmartcard:        "SCARD_E_NO_SMARTCARD",
	scard.ErrProtoMismatch:      "SCARD_E_PROTO_MISMATCH",
	scard.ErrNotReady:           "SCARD_E_NOT_READY",
	scard.ErrCommError:          "SCARD_F_COMM_ERROR",
	scard.ErrNotTransacted:      "SCARD_E_NOT_TRANSACTED",
	scard.ErrReaderUnavailable:  "SCARD_E_READER_UNAVAILABLE",
	scard.ErrNoService:          "SCARD_E_NO_SERVICE",
	scard.ErrServiceStopped:     "SCARD_E_SERVICE_STOPPED",
	scard.ErrNoReadersAvailable: "SCARD_E_NO_READERS_AVAILABLE",
	scard.ErrUnsupportedCard:    "SCARD_W_UNSUPPORTED_CARD",
	scard.ErrUnresponsiveCard:   "SCARD_W_UNRESPONSIVE_CARD",
	scard.ErrUnpoweredCard:      "SCARD_W_UNPOWERED_CARD",
	scard.ErrResetCard:          "SCARD_W_RESET_CARD",
	scard.ErrRemovedCard:        "SCARD_W_REMOVED_CARD",
}

func codeName(c scard.Error) string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("0x%08X", uint32(c))
}

// describe returns pcsc-lite's text for a code without the "scard: "
// prefix and the trailing period, in lower case to read as a Go error.
func describe(c scard.Error) string {
	s := strings.TrimPrefix(c.Error(), "scard: ")
	s = strings.TrimSuffix(s, ".")
	if s != "" {
		s = strings.ToLower(s[:1]) + s[1:]
	}
	return s
}
