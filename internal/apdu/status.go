package apdu

import (
	"errors"
	"fmt"
)

// Status words the Pico HSM firmware returns (pico-keys-sdk src/apdu.h
// SW_* constants, used throughout pico-hsm src/hsm/cmd_*.c), plus the ISO
// 7816-4 section 5.6 words a PC/SC reader or another card may answer.
const (
	SWOK                     uint16 = 0x9000
	SWBytesRemaining         uint16 = 0x6100 // 61xx: xx more bytes with GET RESPONSE
	SWWarningEOF             uint16 = 0x6282 // end of file reached before Ne bytes
	SWVerifyFailed           uint16 = 0x63C0 // 63Cx: wrong PIN, x tries left
	SWSelectedFileTerminated uint16 = 0x6285
	SWExecError              uint16 = 0x6400 // execution error, state unchanged
	SWButtonTimeout          uint16 = 0x6600 // pico-keys-sdk SECURE_MESSAGE_EXEC_ERROR: user presence button not pressed
	SWMemoryFailure          uint16 = 0x6581
	SWWrongLength            uint16 = 0x6700
	SWLogicalChannel         uint16 = 0x6881
	SWSecureMessaging        uint16 = 0x6882
	SWCommandIncompatible    uint16 = 0x6981
	SWSecurityStatus         uint16 = 0x6982
	SWPINBlocked             uint16 = 0x6983
	SWDataInvalid            uint16 = 0x6984
	SWConditionsNotSatisfied uint16 = 0x6985
	SWCommandNotAllowed      uint16 = 0x6986
	SWWrongData              uint16 = 0x6A80
	SWFuncNotSupported       uint16 = 0x6A81
	SWFileNotFound           uint16 = 0x6A82
	SWRecordNotFound         uint16 = 0x6A83
	SWFileFull               uint16 = 0x6A84
	SWWrongP1P2              uint16 = 0x6A86
	SWWrongNc                uint16 = 0x6A87
	SWReferenceNotFound      uint16 = 0x6A88
	SWFileExists             uint16 = 0x6A89
	SWWrongP1P2Plain         uint16 = 0x6B00
	SWWrongLe                uint16 = 0x6C00 // 6Cxx: resend with Le=xx
	SWINSNotSupported        uint16 = 0x6D00
	SWCLANotSupported        uint16 = 0x6E00
	SWUnknown                uint16 = 0x6F00
)

// StatusError is a status word other than 9000. Its message is written for
// the person at the keyboard; the hex stays in the detail in parentheses.
// Callers test it with errors.Is against the sentinels below, or with
// errors.As to read SW and Retries.
type StatusError struct {
	SW uint16
}

// Retries returns the tries left for a 63Cx status word, and -1 otherwise.
func (e *StatusError) Retries() int {
	if e.SW&0xFFF0 == SWVerifyFailed {
		return int(e.SW & 0x000F)
	}
	return -1
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s (SW %04X)", Describe(e.SW), e.SW)
}

// Is makes errors.Is(err, ErrWrongPIN) and friends work on *StatusError.
func (e *StatusError) Is(target error) bool {
	s, ok := target.(sentinel)
	if !ok {
		return false
	}
	if s.mask != 0 {
		return e.SW&s.mask == s.sw
	}
	return e.SW == s.sw
}

type sentinel struct {
	sw, mask uint16
	msg      string
}

func (s sentinel) Error() string { return s.msg }

// Sentinels for errors.Is. A *StatusError matches the sentinel of its status
// word; ErrWrongPIN matches every 63Cx.
var (
	ErrWrongPIN            error = sentinel{SWVerifyFailed, 0xFFF0, "wrong PIN"}
	ErrExecution           error = sentinel{SWExecError, 0, "execution error"}
	ErrButtonTimeout       error = sentinel{SWButtonTimeout, 0, "button not pressed"}
	ErrMemoryFailure       error = sentinel{SWMemoryFailure, 0, "memory failure"}
	ErrWrongLength         error = sentinel{SWWrongLength, 0, "wrong length"}
	ErrSecurityStatus      error = sentinel{SWSecurityStatus, 0, "security status not satisfied"}
	ErrPINBlocked          error = sentinel{SWPINBlocked, 0, "PIN blocked"}
	ErrDataInvalid         error = sentinel{SWDataInvalid, 0, "reference data not usable"}
	ErrConditionsNotMet    error = sentinel{SWConditionsNotSatisfied, 0, "conditions of use not satisfied"}
	ErrNotAllowed          error = sentinel{SWCommandNotAllowed, 0, "command not allowed"}
	ErrWrongData           error = sentinel{SWWrongData, 0, "incorrect data"}
	ErrNotSupported        error = sentinel{SWFuncNotSupported, 0, "function not supported"}
	ErrFileNotFound        error = sentinel{SWFileNotFound, 0, "file not found"}
	ErrFileFull            error = sentinel{SWFileFull, 0, "not enough memory"}
	ErrWrongP1P2           error = sentinel{SWWrongP1P2, 0, "incorrect parameters P1-P2"}
	ErrReferenceNotFound   error = sentinel{SWReferenceNotFound, 0, "referenced data not found"}
	ErrFileExists          error = sentinel{SWFileExists, 0, "file already exists"}
	ErrWrongParameters     error = sentinel{SWWrongP1P2Plain, 0, "wrong parameters"}
	ErrINSNotSupported     error = sentinel{SWINSNotSupported, 0, "instruction not supported"}
	ErrCLANotSupported     error = sentinel{SWCLANotSupported, 0, "class not supported"}
	ErrUnknown             error = sentinel{SWUnknown, 0, "unknown error"}
	ErrCommandIncompatible error = sentinel{SWCommandIncompatible, 0, "command incompatible with file structure"}
	ErrSecureMessaging     error = sentinel{SWSecureMessaging, 0, "secure messaging not supported"}
	ErrLogicalChannel      error = sentinel{SWLogicalChannel, 0, "logical channel not supported"}
	ErrRecordNotFound      error = sentinel{SWRecordNotFound, 0, "record not found"}
	ErrWrongNc             error = sentinel{SWWrongNc, 0, "Lc inconsistent with P1-P2"}
	ErrEndOfFile           error = sentinel{SWWarningEOF, 0, "end of file reached"}
)

// Describe returns the generic human meaning of a status word. Commands in
// internal/hsm add context ("key reference 5 not found") on top of it.
func Describe(sw uint16) string {
	switch {
	case sw == SWOK:
		return "success"
	case sw&0xFFF0 == SWVerifyFailed:
		n := int(sw & 0x0F)
		return fmt.Sprintf("wrong PIN, %d %s left", n, plural(n, "try", "tries"))
	case sw&0xFF00 == 0x6300:
		return "verification failed"
	case sw&0xFF00 == SWBytesRemaining:
		return fmt.Sprintf("%d more response bytes available", sw&0xFF)
	case sw&0xFF00 == SWWrongLe:
		return fmt.Sprintf("wrong expected length, the card offers %d bytes", sw&0xFF)
	}
	switch sw {
	case SWWarningEOF:
		return "end of file reached before the expected length"
	case SWSelectedFileTerminated:
		return "the application is terminated"
	case SWButtonTimeout:
		return "the device's button was not pressed in time: press it when the LED blinks, then retry"
	case SWExecError:
		return "the device could not execute the command; its state is unchanged (for a restore: the backup does not match this device's DKEK, or is damaged)"
	case SWMemoryFailure:
		return "device memory failure"
	case SWWrongLength:
		return "wrong length"
	case SWLogicalChannel:
		return "logical channels are not supported"
	case SWSecureMessaging:
		return "secure messaging is not supported"
	case SWCommandIncompatible:
		return "command incompatible with the file structure"
	case SWSecurityStatus:
		return "security status not satisfied: log in with the user PIN first"
	case SWPINBlocked:
		return "PIN blocked: unblock it with the SO-PIN"
	case SWDataInvalid:
		return "reference data not usable"
	case SWConditionsNotSatisfied:
		return "conditions of use not satisfied"
	case SWCommandNotAllowed:
		return "command not allowed in the device's current state"
	case SWWrongData:
		return "incorrect data in the command"
	case SWFuncNotSupported:
		return "function not supported by the device"
	case SWFileNotFound:
		return "file or key not found"
	case SWRecordNotFound:
		return "record not found"
	case SWFileFull:
		return "not enough memory on the device"
	case SWWrongP1P2:
		return "incorrect parameters P1-P2"
	case SWWrongNc:
		return "Lc inconsistent with P1-P2"
	case SWReferenceNotFound:
		return "referenced data not found"
	case SWFileExists:
		return "file already exists"
	case SWWrongP1P2Plain:
		return "wrong parameters P1-P2"
	case SWINSNotSupported:
		return "instruction not supported by the device"
	case SWCLANotSupported:
		return "class not supported by the device"
	case SWUnknown:
		return "unknown error in the device"
	}
	return "unexpected status"
}

// IsStatus reports whether err carries exactly the status word sw.
func IsStatus(err error, sw uint16) bool {
	var se *StatusError
	return errors.As(err, &se) && se.SW == sw
}

// Retries returns the tries left carried by a 63Cx error, or -1.
func Retries(err error) int {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retries()
	}
	return -1
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
