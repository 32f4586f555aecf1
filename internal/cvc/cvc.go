// Package cvc reads and writes the card-verifiable certificates and
// certificate requests of BSI TR-03110 part 3 (appendix C, certificate and
// request profiles; appendix D, data objects and public keys) as a
// SmartCard-HSM and the Pico HSM use them:
//
//   - EF CExx holds the authenticated request the firmware answers to
//     GENERATE ASYMMETRIC KEY PAIR (and builds on unwrap), signed inside with
//     the new key and outside with the device key;
//   - EF CE00 holds the same kind of request for the device key itself;
//   - EF 2F02 (C_DevAut) holds that request followed by a self-signed
//     certificate for the device key.
//
// It also builds the command data OpenSC sends with GENERATE ASYMMETRIC KEY
// PAIR (see GAKPRequestRSA and GAKPRequestEC).
//
// Layouts (TR-03110 part 3, C.1 and C.2):
//
//	authenticated request  67 { 7F21 certificate, 42 outer CAR, 5F37 outer signature }
//	certificate / request  7F21 { 7F4E body, 5F37 inner signature }
//	body                   7F4E { 5F29 CPI, 42 CAR, 7F49 public key, 5F20 CHR,
//	                              7F4C CHAT?, 5F25 effective date?, 5F24 expiry date?, 65 extensions? }
//
// The inner signature covers the complete 7F4E TLV, tag and length
// included; the outer signature covers the 7F21 TLV followed by the outer
// 42 TLV (asn1_cvc_cert and asn1_cvc_aut in the firmware's src/hsm/cvc.c).
// ECDSA signatures are the plain concatenation r‖s, each half as long as the
// field (TR-03111 section 5.2.1), not DER.
package cvc

import (
	"bytes"
	"encoding/asn1"
	"errors"
	"fmt"
	"time"
)

// Tags of the TR-03110 data objects (part 3, table D.1).
const (
	TagAuthentication = 0x67   // authenticated request
	TagCertificate    = 0x7f21 // CV certificate (or request)
	TagBody           = 0x7f4e // certificate body
	TagPublicKey      = 0x7f49 // public key
	TagProfile        = 0x5f29 // certificate profile identifier (CPI)
	TagCAR            = 0x42   // certification authority reference
	TagCHR            = 0x5f20 // certificate holder reference
	TagCHAT           = 0x7f4c // certificate holder authorization template
	TagEffectiveDate  = 0x5f25 // certificate effective date
	TagExpirationDate = 0x5f24 // certificate expiration date
	TagExtensions     = 0x65   // certificate extensions
	TagSignature      = 0x5f37 // signature
)

// Certificate is a decoded CV certificate, certificate request or
// authenticated request.
type Certificate struct {
	// Profile is the certificate profile identifier (5F29), 0 for
	// TR-03110 version 1 profiles and everything the firmware writes.
	Profile int
	// CAR and CHR are the certification authority and certificate holder
	// references of the body. A SmartCard-HSM CHR is a serial number
	// followed by a five-digit sequence number ("ESPICOHSMTR00001").
	CAR, CHR string
	// PublicKey is the body's public key (7F49).
	PublicKey PublicKey
	// CHAT is the certificate holder authorization template (7F4C), nil
	// when absent (requests have none).
	CHAT *CHAT
	// EffectiveDate and ExpirationDate (5F25, 5F24) are midnight UTC of the
	// encoded day, zero when absent.
	EffectiveDate, ExpirationDate time.Time
	// Extensions is the contents of the extensions object (65), nil when
	// absent.
	Extensions []byte
	// InnerSignature is the signature inside 7F21 (5F37), made over Body.
	InnerSignature []byte

	// Authenticated reports an authenticated request (67 wrapper); the
	// outer fields below are only meaningful then.
	Authenticated bool
	// OuterCAR names the key that made the outer signature; the firmware
	// writes the device CHR, or nothing (42 00) before the device name is
	// known, as in the CE00 of a freshly initialised device.
	OuterCAR string
	// OuterSignature is the outer signature (5F37 inside 67) over the 7F21
	// TLV followed by the outer 42 TLV; see OuterSignedData.
	OuterSignature []byte

	// Body is the raw 7F4E TLV, the data the inner signature covers.
	Body []byte
	// Outer is the raw 7F21 TLV (certificate or request without the 67
	// wrapper).
	Outer []byte
	// Raw is the whole object as parsed: the 67 TLV for an authenticated
	// request, else the 7F21 TLV.
	Raw []byte

	noCAR       bool   // the body had no 42 (allowed in requests)
	outerSigned []byte // raw 7F21 TLV ‖ 42 TLV of an authenticated request
}

// CHAT is a certificate holder authorization template (TR-03110 part 3,
// C.1.5): a role OID and a discretionary data object (53) holding the
// relative authorization bits. The Pico HSM device certificate carries
// 7F4C 0E { 06 09 04007F000703010202 (id-AT), 53 01 00 }.
type CHAT struct {
	OID      asn1.ObjectIdentifier
	Template []byte
}

// Parse decodes one certificate, request or authenticated request that
// fills b exactly: the contents of an EF CExx or one object of EF 2F02.
func Parse(b []byte) (*Certificate, error) {
	e, rest, err := readTLV(b)
	if err != nil {
		return nil, fmt.Errorf("cv certificate: %w", err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("cv certificate: %d bytes of trailing data", len(rest))
	}
	return parseElement(e)
}

// ParseAll decodes consecutive objects, as EF 2F02 holds them: the device's
// authenticated request followed by its self-signed certificate.
func ParseAll(b []byte) ([]*Certificate, error) {
	if len(b) == 0 {
		return nil, errors.New("cv certificate: no data")
	}
	var out []*Certificate
	for len(b) > 0 {
		e, rest, err := readTLV(b)
		if err != nil {
			return nil, fmt.Errorf("cv certificate %d: %w", len(out)+1, err)
		}
		c, err := parseElement(e)
		if err != nil {
			return nil, fmt.Errorf("cv certificate %d: %w", len(out)+1, err)
		}
		out = append(out, c)
		b = rest
	}
	return out, nil
}

func parseElement(e tlv) (*Certificate, error) {
	c := &Certificate{Raw: bytes.Clone(e.full)}
	switch e.tag {
	case TagAuthentication:
		if err := c.parseAuthenticated(e.val); err != nil {
			return nil, err
		}
	case TagCertificate:
		if err := c.parseCertificate(e); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unexpected tag 0x%x, want 67 or 7f21", e.tag)
	}
	return c, nil
}

// parseAuthenticated reads 67 { 7F21, 42, 5F37 } (TR-03110 part 3, C.2).
func (c *Certificate) parseAuthenticated(b []byte) error {
	els, err := readAll(b)
	if err != nil {
		return fmt.Errorf("authenticated request: %w", err)
	}
	if len(els) != 3 || els[0].tag != TagCertificate || els[1].tag != TagCAR || els[2].tag != TagSignature {
		return errors.New("authenticated request: want 7f21, 42 and 5f37")
	}
	if err := c.parseCertificate(els[0]); err != nil {
		return err
	}
	car, err := reference(els[1].val)
	if err != nil {
		return fmt.Errorf("outer car: %w", err)
	}
	c.Authenticated = true
	c.OuterCAR = car
	c.OuterSignature = bytes.Clone(els[2].val)
	c.outerSigned = bytes.Clone(b[:len(els[0].full)+len(els[1].full)])
	return nil
}

// parseCertificate reads 7F21 { 7F4E, 5F37 }. The signature may be missing,
// as in the unsigned template OpenSC encodes before it strips the wrapper.
func (c *Certificate) parseCertificate(e tlv) error {
	els, err := readAll(e.val)
	if err != nil {
		return fmt.Errorf("certificate: %w", err)
	}
	if len(els) == 0 || len(els) > 2 || els[0].tag != TagBody || (len(els) == 2 && els[1].tag != TagSignature) {
		return errors.New("certificate: want 7f4e and 5f37")
	}
	c.Outer = bytes.Clone(e.full)
	c.Body = bytes.Clone(els[0].full)
	if len(els) == 2 {
		c.InnerSignature = bytes.Clone(els[1].val)
	}
	if err := c.parseBody(els[0].val); err != nil {
		return fmt.Errorf("certificate body: %w", err)
	}
	return nil
}

// parseBody reads the body's data objects. Each may appear once; the
// profile, public key and holder reference are required, the authority
// reference may be missing in a request (TR-03110 part 3, C.2.1).
func (c *Certificate) parseBody(b []byte) error {
	els, err := readAll(b)
	if err != nil {
		return err
	}
	seen := map[uint32]bool{}
	for _, e := range els {
		if seen[e.tag] {
			return fmt.Errorf("duplicate tag 0x%x", e.tag)
		}
		seen[e.tag] = true
		switch e.tag {
		case TagProfile:
			if len(e.val) != 1 {
				return errors.New("profile identifier must be one byte")
			}
			c.Profile = int(e.val[0])
		case TagCAR:
			if c.CAR, err = reference(e.val); err != nil {
				return fmt.Errorf("car: %w", err)
			}
		case TagPublicKey:
			pk, err := parsePublicKey(e)
			if err != nil {
				return err
			}
			c.PublicKey = *pk
		case TagCHR:
			if c.CHR, err = reference(e.val); err != nil {
				return fmt.Errorf("chr: %w", err)
			}
		case TagCHAT:
			if c.CHAT, err = parseCHAT(e.val); err != nil {
				return err
			}
		case TagEffectiveDate:
			if c.EffectiveDate, err = parseDate(e.val); err != nil {
				return fmt.Errorf("effective date: %w", err)
			}
		case TagExpirationDate:
			if c.ExpirationDate, err = parseDate(e.val); err != nil {
				return fmt.Errorf("expiration date: %w", err)
			}
		case TagExtensions:
			c.Extensions = bytes.Clone(e.val)
		default:
			return fmt.Errorf("unexpected tag 0x%x", e.tag)
		}
	}
	for _, tag := range []uint32{TagProfile, TagPublicKey, TagCHR} {
		if !seen[tag] {
			return fmt.Errorf("missing tag 0x%x", tag)
		}
	}
	c.noCAR = !seen[TagCAR]
	return nil
}

// reference checks a CAR or CHR: printable ASCII, at most 16 characters
// (TR-03110 part 3, A.6.1: country code, holder mnemonic and sequence
// number; OpenSC keeps them in char[17]).
func reference(b []byte) (string, error) {
	if len(b) > 16 {
		return "", fmt.Errorf("%d characters, at most 16 allowed", len(b))
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return "", errors.New("not printable")
		}
	}
	return string(b), nil
}

func parseCHAT(b []byte) (*CHAT, error) {
	els, err := readAll(b)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	if len(els) != 2 || els[0].tag != 0x06 || els[1].tag != 0x53 {
		return nil, errors.New("chat: want 06 and 53")
	}
	oid, err := parseOID(els[0].full)
	if err != nil {
		return nil, fmt.Errorf("chat: %w", err)
	}
	return &CHAT{OID: oid, Template: bytes.Clone(els[1].val)}, nil
}

// parseDate reads a date as six unpacked BCD digits YYMMDD, year 20YY
// (TR-03110 part 3, D.2.1.3). The device certificate carries 5F25
// 020300030201 (2023-03-21) and 5F24 070001020301 (2070-12-31).
func parseDate(b []byte) (time.Time, error) {
	if len(b) != 6 {
		return time.Time{}, fmt.Errorf("%d bytes, want 6", len(b))
	}
	for _, d := range b {
		if d > 9 {
			return time.Time{}, errors.New("not unpacked bcd")
		}
	}
	y := 2000 + int(b[0])*10 + int(b[1])
	m := int(b[2])*10 + int(b[3])
	d := int(b[4])*10 + int(b[5])
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if m < 1 || m > 12 || t.Day() != d {
		return time.Time{}, fmt.Errorf("invalid date %02d%02d%02d", y-2000, m, d)
	}
	return t, nil
}

func appendDate(dst []byte, tag uint32, t time.Time) []byte {
	y, m, d := t.Date()
	y -= 2000
	return appendTLV(dst, tag, []byte{byte(y / 10), byte(y % 10), byte(m / 10), byte(m % 10), byte(d / 10), byte(d % 10)})
}

// OuterSignedData returns the bytes the outer signature covers: the 7F21
// TLV followed by the outer 42 TLV, as the firmware's asn1_cvc_aut hashes
// them. It is nil unless Authenticated.
func (c *Certificate) OuterSignedData() []byte {
	if !c.Authenticated {
		return nil
	}
	if c.outerSigned != nil {
		return c.outerSigned
	}
	return appendTLV(c.marshalCertificate(), TagCAR, []byte(c.OuterCAR))
}

// MarshalBody encodes the 7F4E TLV from the fields, in the order of
// TR-03110 part 3, table C.1 (the firmware's asn1_cvc_cert_body).
func (c *Certificate) MarshalBody() []byte {
	var b []byte
	b = appendTLV(b, TagProfile, []byte{byte(c.Profile)})
	if c.CAR != "" || !c.noCAR {
		b = appendTLV(b, TagCAR, []byte(c.CAR))
	}
	b = append(b, c.PublicKey.Marshal()...)
	b = appendTLV(b, TagCHR, []byte(c.CHR))
	if c.CHAT != nil {
		oid, _ := asn1.Marshal(c.CHAT.OID)
		b = appendTLV(b, TagCHAT, appendTLV(oid, 0x53, c.CHAT.Template))
	}
	if !c.EffectiveDate.IsZero() {
		b = appendDate(b, TagEffectiveDate, c.EffectiveDate)
	}
	if !c.ExpirationDate.IsZero() {
		b = appendDate(b, TagExpirationDate, c.ExpirationDate)
	}
	if c.Extensions != nil {
		b = appendTLV(b, TagExtensions, c.Extensions)
	}
	return appendTLV(nil, TagBody, b)
}

func (c *Certificate) marshalCertificate() []byte {
	b := c.MarshalBody()
	if c.InnerSignature != nil {
		b = appendTLV(b, TagSignature, c.InnerSignature)
	}
	return appendTLV(nil, TagCertificate, b)
}

// Marshal encodes the certificate from its fields: 7F21 { body, 5F37 }, in
// a 67 wrapper with the outer reference and signature when Authenticated.
// For a parsed object with unchanged fields the result equals Raw.
func (c *Certificate) Marshal() []byte {
	cert := c.marshalCertificate()
	if !c.Authenticated {
		return cert
	}
	b := appendTLV(cert, TagCAR, []byte(c.OuterCAR))
	b = appendTLV(b, TagSignature, c.OuterSignature)
	return appendTLV(nil, TagAuthentication, b)
}

// IsSelfSigned reports whether the body names its own holder as authority,
// as the device certificate in EF 2F02 does.
func (c *Certificate) IsSelfSigned() bool { return c.CAR != "" && c.CAR == c.CHR }

func parseOID(full []byte) (asn1.ObjectIdentifier, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(full, &oid)
	if err != nil {
		return nil, fmt.Errorf("object identifier: %w", err)
	}
	if len(rest) != 0 {
		return nil, errors.New("object identifier: trailing data")
	}
	return oid, nil
}
