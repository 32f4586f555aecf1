package device

import (
	"errors"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pcsc"
)

// Interrupted reports whether err broke off the exchange with the device:
// the card was removed or reset, pcscd went away, the card stopped
// answering, or its answer was malformed (a truncated response). The
// command in flight may or may not have been executed, and the session
// cannot go on: a multi-step operation must stop and say where it stopped.
func Interrupted(err error) bool {
	var pe *pcsc.Error
	return errors.As(err, &pe) || errors.Is(err, apdu.ErrMalformed)
}

// OutcomeUnknown reports whether, after err, the host cannot tell whether
// the command that failed changed the device: an interruption, or a status
// word that names no refusal. ISO 7816-4 section 5.6 gives 65xx as
// "execution error, non-volatile memory changed" (the Pico HSM answers
// 6581 when a flash write fails) and 6Fxx as "no precise diagnosis".
// Every other status word the firmware answers is a refusal that leaves
// the device as it was (63Cx wrong PIN, 6400 a blob that does not decode,
// 6982 no PIN session, ...), so the caller can say so.
func OutcomeUnknown(err error) bool {
	if Interrupted(err) {
		return true
	}
	var se *apdu.StatusError
	if errors.As(err, &se) {
		switch se.SW >> 8 {
		case 0x65, 0x6F:
			return true
		}
	}
	return false
}

// Again is the advice that ends a message about a failure after which the
// command can simply be run again: ": run the command again", or nothing
// when err's own message already says what to fix and to retry (the PC/SC
// errors: plug the card in, start pcscd).
func Again(err error) string {
	var pe *pcsc.Error
	if errors.As(err, &pe) && pe.Kind != nil {
		return ""
	}
	return ": run the command again"
}

// Refused reports whether err is the device refusing a command: a status
// word other than those OutcomeUnknown names. Only then does the host know
// that a command which changes the device did nothing; after any other
// error (the transport's, or an answer that does not parse) it must assume
// the command may have been executed.
func Refused(err error) bool {
	var se *apdu.StatusError
	return errors.As(err, &se) && !OutcomeUnknown(err)
}
