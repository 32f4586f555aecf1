package keystore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// DKEKMismatch is a device without key domains whose DKEK cannot take a
// key blob made under Want: it has none (Status.Shares 0), waits for
// shares, or has another one. UNWRAP KEY would only answer 6400 or 6A88
// (pico-hsm cmd_key_unwrap.c), so callers check first and say which it
// is. A device with key domains gets a *NoDomainMatch instead.
type DKEKMismatch struct {
	Status hsm.DKEKStatus
	Want   [8]byte
}

// None tells a device without a DKEK; Incomplete one that waits for
// shares; otherwise the DKEK is another one.
func (e *DKEKMismatch) None() bool       { return e.Status.Shares == 0 }
func (e *DKEKMismatch) Incomplete() bool { return !e.None() && !e.Status.Complete() }

func (e *DKEKMismatch) Error() string {
	switch {
	case e.None():
		return hsm.ErrNoDKEK.Error()
	case e.Incomplete():
		return fmt.Sprintf("the device's DKEK is incomplete (%d of %d shares imported)", e.Status.Shares-e.Status.Outstanding, e.Status.Shares)
	}
	return fmt.Sprintf("the device's DKEK is %s, not %X", e.Status.KCVHex(), e.Want)
}

// Unwrap makes errors.Is(err, hsm.ErrNoDKEK) hold for a device without one.
func (e *DKEKMismatch) Unwrap() error {
	if e.None() {
		return hsm.ErrNoDKEK
	}
	return nil
}

// ErrNoDomainMatch is matched by every *NoDomainMatch.
var ErrNoDomainMatch = errors.New("no key domain on this device has the DKEK")

// NoDomainMatch is a device with key domains none of which can take a key
// blob made under Want: no set-up domain with every share imported has
// that check value. UNWRAP KEY tries domains 0 to 15 in order and answers
// 6400 when none matches (pico-hsm cmd_key_unwrap.c).
type NoDomainMatch struct {
	Want    [8]byte
	Domains []hsm.KeyDomain
}

func (e *NoDomainMatch) Error() string {
	return fmt.Sprintf("no key domain on this device has DKEK check value %X (%s)", e.Want, DescribeDomains(e.Domains))
}

func (e *NoDomainMatch) Unwrap() error { return ErrNoDomainMatch }

// DescribeDomains lists the set-up key domains with their check values,
// and those still waiting for shares, whose check value means nothing
// yet: "key domain 0: 1A2B..., key domain 2: 1 of 2 shares imported".
func DescribeDomains(doms []hsm.KeyDomain) string {
	var s []string
	for _, d := range doms {
		switch {
		case !d.SetUp:
		case d.Status.Shares == 0:
			s = append(s, fmt.Sprintf("key domain %d: no DKEK", d.Domain))
		case !d.Status.Complete():
			s = append(s, fmt.Sprintf("key domain %d: %d of %d shares imported", d.Domain, d.Status.Shares-d.Status.Outstanding, d.Status.Shares))
		default:
			s = append(s, fmt.Sprintf("key domain %d: %s", d.Domain, d.Status.KCVHex()))
		}
	}
	if len(s) == 0 {
		return "no key domain is set up"
	}
	return strings.Join(s, ", ")
}

// Domains are the key domains of a device as far as UNWRAP KEY needs
// them, read with the user PIN verified (the check values are zeros
// otherwise).
type Domains struct {
	// List holds the domains read: every slot when All, otherwise only
	// domain 0.
	List []hsm.KeyDomain
	// All tells that List holds every slot the device has.
	All bool
}

// Many tells a device known to have key domains beyond domain 0. It is
// false when only domain 0 was read.
func (d *Domains) Many() bool { return d.All && len(d.List) > 1 }

// Match returns the domain UNWRAP KEY puts a blob made under kcv into:
// the first set-up domain with every share imported whose check value is
// kcv, as the firmware tries domains 0 to 15 in order (pico-hsm
// cmd_key_unwrap.c); -1 if none.
func (d *Domains) Match(kcv [8]byte) int {
	for _, k := range d.List {
		if k.SetUp && k.Status.Complete() && k.Status.KCV == kcv {
			return k.Domain
		}
	}
	return -1
}

// Mismatch is the error for a blob made under kcv that no domain takes: a
// *DKEKMismatch on a device without key domains (as before they
// existed), a *NoDomainMatch otherwise.
func (d *Domains) Mismatch(kcv [8]byte) error {
	if d.Many() {
		return &NoDomainMatch{Want: kcv, Domains: d.List}
	}
	var st hsm.DKEKStatus
	if len(d.List) > 0 {
		st = d.List[0].Status
	}
	return &DKEKMismatch{Status: st, Want: kcv}
}

// ReadDomains reads the key domains UNWRAP KEY of blobs made under kcvs
// can use; the caller has verified the PIN. Domain 0 is read first: the
// firmware tries it first, so when it is complete and takes every blob,
// no other domain is read (one APDU, as on a device without key domains).
// Otherwise every slot is read (hsm.KeyDomains).
func ReadDomains(conn *device.Conn, kcvs ...[8]byte) (*Domains, error) {
	st, err := conn.DomainStatus(0)
	switch {
	case err == nil:
		zero := &Domains{List: []hsm.KeyDomain{{Domain: 0, SetUp: true, Status: st}}}
		all := st.Complete()
		for _, k := range kcvs {
			all = all && k == st.KCV
		}
		if all {
			return zero, nil
		}
	case errors.Is(err, hsm.ErrDomainNotSetUp):
	default:
		return nil, err
	}
	list, err := conn.KeyDomains()
	if err != nil {
		return nil, err
	}
	return &Domains{List: list, All: true}, nil
}

// LoginForUnwrap prepares an UNWRAP KEY of a blob made under the DKEK
// want: it selects the application, verifies the user PIN (Login, with the
// tries-left guard), and checks, with the PIN verified so that a Pico HSM
// shows the real check values, that a key domain with every share
// imported has want (a *DKEKMismatch on a device without key domains, a
// *NoDomainMatch on one with them). It returns the device's file list.
func LoginForUnwrap(conn *device.Conn, pin []byte, allowLastTry bool, want [8]byte) ([]uint16, error) {
	fids, _, _, err := LoginForUnwrapDomain(conn, pin, allowLastTry, want)
	return fids, err
}

// LoginForUnwrapDomain is LoginForUnwrap that also returns the key domain
// the blob will land in, and the domains read.
func LoginForUnwrapDomain(conn *device.Conn, pin []byte, allowLastTry bool, want [8]byte) ([]uint16, int, *Domains, error) {
	doms, err := LoginForUnwrapAll(conn, pin, allowLastTry, want)
	if err != nil {
		return nil, 0, nil, err
	}
	dom := doms.Match(want)
	if dom < 0 {
		return nil, 0, doms, doms.Mismatch(want)
	}
	fids, err := conn.ListObjects()
	if err != nil {
		return nil, 0, nil, err
	}
	return fids, dom, doms, nil
}

// LoginForUnwrapAll selects the application, verifies the user PIN and
// reads the key domains blobs made under kcvs can use (ReadDomains),
// without refusing any: a restore of many keys plans each.
func LoginForUnwrapAll(conn *device.Conn, pin []byte, allowLastTry bool, kcvs ...[8]byte) (*Domains, error) {
	if _, err := conn.SelectApplication(); err != nil {
		return nil, err
	}
	if err := conn.Login(pin, allowLastTry); err != nil {
		return nil, err
	}
	return ReadDomains(conn, kcvs...)
}
