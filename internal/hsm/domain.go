package hsm

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// MaxKeyDomains is the number of key domain slots EF 10A0 can hold
// (pico-hsm sc_hsm.h MAX_KEY_DOMAINS; cmd_key_domain.c answers 6B00 to a
// P2 of 16 or more).
const MaxKeyDomains = 16

// Key domain errors, matched with errors.Is. A *DomainError carries the
// domain number and matches one of these.
var (
	// ErrDomainNotSetUp: the domain's slot is free (FF FF): the firmware
	// answers 6A88 to its status and 6986 to a share for it.
	ErrDomainNotSetUp = errors.New("key domain not set up")
	// ErrNoSuchDomain: the device has fewer domains (6A86 to the status).
	ErrNoSuchDomain = errors.New("no such key domain")
	// ErrDomainExists: create of a domain that is set up (6A86).
	ErrDomainExists = errors.New("key domain already set up")
	// ErrDomainInUse: delete of a domain that still holds keys (6A89).
	ErrDomainInUse = errors.New("key domain still holds keys")
	// ErrDomainNeedsPIN: creating, deleting or clearing a domain, or a
	// share for a domain other than 0, needs the user PIN verified in the
	// same session (6985).
	ErrDomainNeedsPIN = errors.New("the user PIN must be verified first")
)

// DomainError is a refusal about key domain Domain.
type DomainError struct {
	Domain int
	Err    error // one of the Err* above
	SW     uint16
}

func (e *DomainError) Error() string {
	msg := ""
	switch e.Err {
	case ErrDomainNotSetUp:
		msg = fmt.Sprintf("key domain %d is not set up: create it with key-domain create %d --dkek-shares N", e.Domain, e.Domain)
	case ErrNoSuchDomain:
		msg = fmt.Sprintf("the device has no key domain %d: it was initialized with fewer key domains (see status)", e.Domain)
	case ErrDomainExists:
		msg = fmt.Sprintf("key domain %d is already set up: delete it first (key-domain delete %d), or clear its shares (key-domain clear %d)", e.Domain, e.Domain, e.Domain)
	case ErrDomainInUse:
		msg = fmt.Sprintf("key domain %d still holds keys: delete them first (list-keys shows each key's domain)", e.Domain)
	case ErrDomainNeedsPIN:
		msg = fmt.Sprintf("key domain %d: the user PIN must be verified first: give --pin", e.Domain)
	default:
		msg = fmt.Sprintf("key domain %d: %v", e.Domain, e.Err)
	}
	if e.SW != 0 {
		msg += fmt.Sprintf(" (SW %04X)", e.SW)
	}
	return msg
}

// Unwrap lets errors.Is see the kind and, when the device answered, the
// status word (an *apdu.StatusError: the device refused, and so did not
// change); a domain 0 that is not set up also matches ErrNoDKEK, since
// for the default domain it means the same.
func (e *DomainError) Unwrap() []error {
	errs := []error{e.Err}
	if e.Err == ErrDomainNotSetUp && e.Domain == 0 {
		errs = append(errs, ErrNoDKEK)
	}
	if e.SW != 0 {
		errs = append(errs, &apdu.StatusError{SW: e.SW})
	}
	return errs
}

// KeyDomain is one key domain's state.
type KeyDomain struct {
	Domain int
	// SetUp is false for a free slot; Status is then zero.
	SetUp  bool
	Status DKEKStatus
}

func checkDomain(dom int) error {
	if dom < 0 || dom >= MaxKeyDomains {
		return fmt.Errorf("key domain %d does not exist: key domains are numbered 0 to %d", dom, MaxKeyDomains-1)
	}
	return nil
}

// manageDKEK sends MANAGE DKEK (80 52 P1 P2, pico-hsm cmd_key_domain.c;
// card-sc-hsm.c sc_hsm_import_dkek_share for P1 00). The answer of every
// variant that succeeds is the domain's status:
//
//	shares(1) outstanding(1) KCV(8)
//
// Recorded: transcripts/60-key-domains-setup.txt, 61-key-domains-keys.txt.
func (d *Device) manageDKEK(p1 byte, dom int, data []byte, name string) (apdu.Response, error) {
	if err := checkDomain(dom); err != nil {
		return apdu.Response{}, err
	}
	return d.ch.Transmit(apdu.Command{CLA: 0x80, INS: 0x52, P1: p1, P2: byte(dom), Data: data, Ne: 256,
		Secret: p1 == 0 && len(data) > 0, Name: name})
}

// DomainStatus queries key domain dom without changing it (80 52 00 dom,
// no data). A free slot answers 6A88, a slot beyond the device's number
// of domains 6A86, a device never initialized 6B00
// (transcripts/60-key-domains-setup.txt [3] to [6]).
func (d *Device) DomainStatus(dom int) (DKEKStatus, error) {
	r, err := d.manageDKEK(0x00, dom, nil, "DKEK status")
	if err != nil {
		return DKEKStatus{}, err
	}
	switch r.SW {
	case apdu.SWOK:
		return parseDKEKStatus(r.Data)
	case apdu.SWWrongP1P2Plain, apdu.SWINSNotSupported:
		// A factory-new device (transcripts/00-status-factory.txt [5]).
		return DKEKStatus{}, fmt.Errorf("%w (SW %04X)", ErrNoDKEK, r.SW)
	case apdu.SWReferenceNotFound:
		return DKEKStatus{}, &DomainError{Domain: dom, Err: ErrDomainNotSetUp, SW: r.SW}
	case apdu.SWWrongP1P2:
		return DKEKStatus{}, &DomainError{Domain: dom, Err: ErrNoSuchDomain, SW: r.SW}
	}
	return DKEKStatus{}, fmt.Errorf("query the DKEK status of key domain %d: %w", dom, r.Err())
}

// KeyDomains reads every key domain slot the device has: domain 0 up to
// the first that answers 6A86. A device initialized without key domains
// has one, domain 0. It returns ErrNoDKEK (wrapped) for a device never
// initialized.
func (d *Device) KeyDomains() ([]KeyDomain, error) {
	var out []KeyDomain
	for dom := range MaxKeyDomains {
		st, err := d.DomainStatus(dom)
		switch {
		case err == nil:
			out = append(out, KeyDomain{Domain: dom, SetUp: true, Status: st})
		case errors.Is(err, ErrDomainNotSetUp):
			out = append(out, KeyDomain{Domain: dom})
		case errors.Is(err, ErrNoSuchDomain) && dom > 0:
			return out, nil
		default:
			return nil, err
		}
	}
	return out, nil
}

// ImportDKEKShareInto sends one 32-byte share for key domain dom. The
// share is masked in traces. A domain other than 0 needs the user PIN
// verified first (6985).
func (d *Device) ImportDKEKShareInto(dom int, share []byte) (DKEKStatus, error) {
	if len(share) != 32 {
		return DKEKStatus{}, fmt.Errorf("a DKEK share is 32 bytes, got %d", len(share))
	}
	r, err := d.manageDKEK(0x00, dom, share, "IMPORT DKEK SHARE")
	if err != nil {
		return DKEKStatus{}, err
	}
	switch r.SW {
	case apdu.SWOK:
		return parseDKEKStatus(r.Data)
	case apdu.SWCommandNotAllowed:
		// All shares in (transcripts/errors/p02, 60 [18]), or a free
		// slot, whose FF FF reads as "all of 255 imported".
		if dom != 0 {
			if _, serr := d.DomainStatus(dom); errors.Is(serr, ErrDomainNotSetUp) {
				return DKEKStatus{}, serr
			}
		}
		return DKEKStatus{}, fmt.Errorf("import DKEK share into key domain %d: %w (%w)", dom, ErrAllSharesImported, r.Err())
	case apdu.SWConditionsNotSatisfied:
		return DKEKStatus{}, &DomainError{Domain: dom, Err: ErrDomainNeedsPIN, SW: r.SW}
	case apdu.SWWrongP1P2Plain, apdu.SWINSNotSupported:
		return DKEKStatus{}, fmt.Errorf("%w (SW %04X)", ErrNoDKEK, r.SW)
	}
	return DKEKStatus{}, fmt.Errorf("import DKEK share into key domain %d: %w", dom, r.Err())
}

// CreateKeyDomain sets up free key domain dom for shares DKEK shares
// (80 52 01 dom, one data byte; transcripts/60 [7], [11] to [14]). It
// needs the user PIN verified in the session (6985), or the session of
// INITIALIZE.
func (d *Device) CreateKeyDomain(dom, shares int) (DKEKStatus, error) {
	if shares < 1 || shares > 254 {
		return DKEKStatus{}, fmt.Errorf("a key domain takes 1 to 254 DKEK shares, not %d", shares)
	}
	r, err := d.manageDKEK(0x01, dom, []byte{byte(shares)}, "CREATE KEY DOMAIN")
	if err != nil {
		return DKEKStatus{}, err
	}
	switch r.SW {
	case apdu.SWOK:
		return parseDKEKStatus(r.Data)
	case apdu.SWWrongP1P2:
		// Set up already, or beyond the device's domains: the status
		// tells which.
		if _, serr := d.DomainStatus(dom); errors.Is(serr, ErrNoSuchDomain) {
			return DKEKStatus{}, serr
		}
		return DKEKStatus{}, &DomainError{Domain: dom, Err: ErrDomainExists, SW: r.SW}
	}
	return DKEKStatus{}, d.domainRefusal("create", dom, r)
}

// DeleteKeyDomain frees key domain dom (80 52 03 dom). The firmware
// reports success as 6A88, "referenced data not found" (transcripts/61
// [20]), refuses a domain that holds keys with 6A89 ([10]) and one not
// set up with 6A86 ([22]). Success is returned as nil.
func (d *Device) DeleteKeyDomain(dom int) error {
	r, err := d.manageDKEK(0x03, dom, nil, "DELETE KEY DOMAIN")
	if err != nil {
		return err
	}
	switch r.SW {
	case apdu.SWReferenceNotFound, apdu.SWOK:
		return nil
	case apdu.SWFileExists:
		return &DomainError{Domain: dom, Err: ErrDomainInUse, SW: r.SW}
	case apdu.SWWrongP1P2:
		if _, serr := d.DomainStatus(dom); errors.Is(serr, ErrNoSuchDomain) {
			return serr
		}
		return &DomainError{Domain: dom, Err: ErrDomainNotSetUp, SW: r.SW}
	}
	return d.domainRefusal("delete", dom, r)
}

// ClearKeyDomain forgets the shares imported into key domain dom and its
// DKEK (80 52 04 dom; transcripts/61 [11], [12]); the domain stays set up
// for the same number of shares. Keys in it stay but cannot be wrapped
// until every share is imported again.
func (d *Device) ClearKeyDomain(dom int) (DKEKStatus, error) {
	r, err := d.manageDKEK(0x04, dom, nil, "CLEAR KEY DOMAIN")
	if err != nil {
		return DKEKStatus{}, err
	}
	if r.SW == apdu.SWOK {
		return parseDKEKStatus(r.Data)
	}
	return DKEKStatus{}, d.domainRefusal("clear", dom, r)
}

func (d *Device) domainRefusal(op string, dom int, r apdu.Response) error {
	switch r.SW {
	case apdu.SWConditionsNotSatisfied:
		return &DomainError{Domain: dom, Err: ErrDomainNeedsPIN, SW: r.SW}
	case apdu.SWWrongP1P2Plain, apdu.SWINSNotSupported:
		return fmt.Errorf("%w (SW %04X)", ErrNoDKEK, r.SW)
	}
	return fmt.Errorf("%s key domain %d: %w", op, dom, r.Err())
}

// KeyDomain returns the key domain in a key file's metadata (tag 92;
// pico-hsm cmd_key_domain.c get_key_domain): 0 without the tag.
func (f FileInfo) KeyDomain() int {
	if v, ok := findTLV(f.Meta, 0x92); ok && len(v) == 1 {
		return int(v[0])
	}
	return 0
}
