package hsm

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// Algorithm identifiers for SIGNATURE and key metadata (pico-hsm sc_hsm.h
// ALGO_*; card-sc-hsm.h).
const (
	AlgRSARaw         byte = 0x20
	AlgRSAPKCS1       byte = 0x30
	AlgRSAPKCS1SHA256 byte = 0x33
	AlgRSAPSSSHA256   byte = 0x43
	AlgECDSA          byte = 0x70
	AlgECDSASHA256    byte = 0x73
	AlgWrap           byte = 0x92
	AlgUnwrap         byte = 0x93
)

// Errors of the key commands, matched with errors.Is.
var (
	ErrKeyNotFound    = errors.New("key not found")
	ErrNotExportable  = errors.New("the key is not exportable: its algorithm list lacks the WRAP permission (key generated without it)")
	ErrDKEKIncomplete = errors.New("the device has no complete DKEK (none configured, or shares still outstanding)")
	ErrUnwrapRefused  = errors.New("the device refused the key blob")
)

// GenerateKeyPair sends GENERATE ASYMMETRIC KEY PAIR (00 46 ref 00) with
// the CV request template data (card-sc-hsm.c sc_hsm_generate_keypair;
// transcripts/other/12 [29]) and returns the device's authenticated CV
// request, which the firmware also stores in CE<ref>.
func (d *Device) GenerateKeyPair(ref byte, data []byte) ([]byte, error) {
	out, err := d.ch.Do(apdu.Command{INS: 0x46, P1: ref, Data: data, Ne: 65536, Name: "GENERATE ASYMMETRIC KEY PAIR"})
	if err != nil {
		switch {
		case apdu.IsStatus(err, apdu.SWFuncNotSupported):
			return nil, fmt.Errorf("generate key pair: the device does not support this curve or key size: %w", err)
		case apdu.IsStatus(err, apdu.SWSecurityStatus):
			return nil, fmt.Errorf("generate key pair: %w", err)
		}
		return nil, fmt.Errorf("generate key pair at key reference %d: %w", ref, err)
	}
	return out, nil
}

// AES key sizes of GENERATE SYMMETRIC KEY (pico-hsm cmd_key_gen.c: P2 B0,
// B1, B2 for 128, 192, 256 bits).
func aesP2(bits int) (byte, error) {
	switch bits {
	case 128:
		return 0xB0, nil
	case 192:
		return 0xB1, nil
	case 256:
		return 0xB2, nil
	}
	return 0, fmt.Errorf("AES keys are 128, 192 or 256 bits, not %d", bits)
}

// GenerateAESKey sends GENERATE SYMMETRIC KEY (80 48 ref P2); meta holds
// the optional key metadata tags (91 allowed algorithms).
func (d *Device) GenerateAESKey(ref byte, bits int, meta []byte) error {
	p2, err := aesP2(bits)
	if err != nil {
		return err
	}
	if _, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x48, P1: ref, P2: p2, Data: meta, Name: "GENERATE KEY"}); err != nil {
		return fmt.Errorf("generate AES key at key reference %d: %w", ref, err)
	}
	return nil
}

// WrapKey exports key ref encrypted under the DKEK with WRAP KEY
// (80 72 ref 92, Le extended; card-sc-hsm.c sc_hsm_wrap_key) and returns
// the key blob. Status words get the key's context (pico-hsm
// cmd_key_wrap.c): 6A82 no such key, 6A88 no complete DKEK, 6985 not
// exportable.
func (d *Device) WrapKey(ref byte) ([]byte, error) {
	blob, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x72, P1: ref, P2: AlgWrap, Ne: 65536, Name: "WRAP KEY"})
	if err == nil {
		return blob, nil
	}
	switch {
	case apdu.IsStatus(err, apdu.SWFileNotFound):
		return nil, &keyNotFound{ref, err}
	case apdu.IsStatus(err, apdu.SWReferenceNotFound):
		return nil, fmt.Errorf("cannot wrap key reference %d: %w: import the outstanding DKEK shares first (%w)", ref, ErrDKEKIncomplete, err)
	case apdu.IsStatus(err, apdu.SWConditionsNotSatisfied):
		return nil, fmt.Errorf("cannot wrap key reference %d: %w (%w)", ref, ErrNotExportable, err)
	}
	return nil, fmt.Errorf("wrap key reference %d: %w", ref, err)
}

// UnwrapKey imports a key blob into key reference ref with UNWRAP KEY
// (80 74 ref 93; card-sc-hsm.c sc_hsm_unwrap_key). The firmware answers
// 6400 to every decoding failure, a blob made under another DKEK included
// (transcripts/errors/p09); callers check the KCV first to say which.
func (d *Device) UnwrapKey(ref byte, blob []byte) error {
	if _, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x74, P1: ref, P2: AlgUnwrap, Data: blob, Name: "UNWRAP KEY"}); err != nil {
		if apdu.IsStatus(err, apdu.SWExecError) || apdu.IsStatus(err, apdu.SWDataInvalid) {
			return fmt.Errorf("unwrap into key reference %d: %w: it was made under another DKEK, or is damaged (%w)", ref, ErrUnwrapRefused, err)
		}
		return fmt.Errorf("unwrap into key reference %d: %w", ref, err)
	}
	return nil
}

// Sign signs data with key ref and algorithm alg (80 68 ref alg;
// card-sc-hsm.c sc_hsm_compute_signature).
func (d *Device) Sign(ref, alg byte, data []byte) ([]byte, error) {
	sig, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x68, P1: ref, P2: alg, Data: data, Ne: 65536, Name: "SIGNATURE"})
	if err != nil {
		if apdu.IsStatus(err, apdu.SWFileNotFound) {
			return nil, &keyNotFound{ref, err}
		}
		return nil, fmt.Errorf("sign with key reference %d: %w", ref, err)
	}
	return sig, nil
}

// keyNotFound is a 6A82 answer about a key: it matches ErrKeyNotFound and
// the status word.
type keyNotFound struct {
	ref byte
	err error
}

func (e *keyNotFound) Error() string {
	var se *apdu.StatusError
	sw := ""
	if errors.As(e.err, &se) {
		sw = fmt.Sprintf(" (SW %04X)", se.SW)
	}
	return fmt.Sprintf("key reference %d not found: list the keys with list-keys%s", e.ref, sw)
}

func (e *keyNotFound) Unwrap() []error { return []error{ErrKeyNotFound, e.err} }
