package hsm

import (
	"errors"
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// InitParams are the INITIALIZE DEVICE parameters (card-sc-hsm.h
// sc_cardctl_sc_hsm_init_param_t, as sc-hsm-tool --initialize fills them).
type InitParams struct {
	// SOPIN is the 8-byte initialization code (16 hex digits on the command line).
	SOPIN []byte
	// PIN is the user PIN, 6 to 16 bytes.
	PIN []byte
	// Retries is the user PIN retry counter.
	Retries int
	// Options is tag 80: OptResetRetryCounter and friends.
	Options uint16
	// DKEKShares is the number of DKEK shares; negative sends no tag 92
	// (no DKEK), 0 asks the device for a random DKEK.
	DKEKShares int
	// PublicKeyAuth is the number of public keys for public key
	// authentication (tag 93, n and m); 0 sends no tag.
	PublicKeyAuth, RequiredPubKeys int
	// BioServer1 and BioServer2 are AIDs of biometric servers (tags 95, 96).
	BioServer1, BioServer2 []byte
	// KeyDomains is the number of key domains (tag 97); 0 sends no tag.
	KeyDomains int
}

// Validate applies sc-hsm-tool's checks (sc-hsm-tool.c initialize).
func (p *InitParams) Validate() error {
	switch {
	case len(p.SOPIN) != 8:
		return errors.New("the SO-PIN must be 16 hexadecimal digits (8 bytes)")
	case len(p.PIN) < 6:
		return errors.New("the user PIN must be at least 6 characters long")
	case len(p.PIN) > 16:
		return errors.New("the user PIN must not be longer than 16 characters")
	case p.Retries < 1:
		return errors.New("--pin-retry must be at least 1")
	case len(p.PIN) == 6 && p.Retries > 3:
		return errors.New("--pin-retry must not exceed 3 for a 6-character PIN: use a longer PIN for a higher retry counter")
	case len(p.PIN) == 7 && p.Retries > 5:
		return errors.New("--pin-retry must not exceed 5 for a 7-character PIN: use a longer PIN for a higher retry counter")
	case p.Retries > 10:
		return errors.New("--pin-retry must not exceed 10")
	case p.DKEKShares > 255:
		return errors.New("--dkek-shares must not exceed 255")
	case p.PublicKeyAuth < 0 || p.PublicKeyAuth > 90:
		return errors.New("--public-key-auth must be between 1 and 90")
	case p.PublicKeyAuth > 0 && (p.RequiredPubKeys < 1 || p.RequiredPubKeys > p.PublicKeyAuth):
		return errors.New("--required-pub-keys must be between 1 and --public-key-auth")
	case p.PublicKeyAuth == 0 && p.RequiredPubKeys != 0:
		return errors.New("--required-pub-keys needs --public-key-auth")
	case p.KeyDomains < 0 || p.KeyDomains > 16:
		return errors.New("--key-domains must be between 1 and 16")
	case p.KeyDomains > 0 && p.DKEKShares == 0:
		// cmd_initialize.c writes the random DKEK of tag 92 00, then
		// tag 97 frees every domain slot, and setting up domain 0 again
		// deletes that DKEK (cmd_key_domain.c).
		return errors.New("--dkek-shares 0 (a random DKEK) cannot be combined with --key-domains: the firmware frees domain 0 and loses that DKEK; give --dkek-shares N (1 or more) for domain 0")
	case len(p.BioServer1) > 16 || len(p.BioServer2) > 16:
		return errors.New("a biometric server AID is at most 16 bytes")
	}
	return nil
}

// Data encodes the TLVs in the order card-sc-hsm.c sc_hsm_initialize
// sends them (transcripts/04-initialize.txt [4]):
//
//	80 02 options | 81 PIN | 82 08 SO-PIN | 91 01 retries | [92 01 shares]
//	[93 02 n m] | [95 AID] | [96 AID] | [97 01 domains]
func (p *InitParams) Data() []byte {
	b := []byte{0x80, 0x02, byte(p.Options >> 8), byte(p.Options)}
	b = append(b, 0x81, byte(len(p.PIN)))
	b = append(b, p.PIN...)
	b = append(b, 0x82, byte(len(p.SOPIN)))
	b = append(b, p.SOPIN...)
	b = append(b, 0x91, 0x01, byte(p.Retries))
	if p.DKEKShares >= 0 {
		b = append(b, 0x92, 0x01, byte(p.DKEKShares))
	}
	if p.PublicKeyAuth > 0 {
		b = append(b, 0x93, 0x02, byte(p.PublicKeyAuth), byte(p.RequiredPubKeys))
	}
	if len(p.BioServer1) > 0 {
		b = append(b, 0x95, byte(len(p.BioServer1)))
		b = append(b, p.BioServer1...)
	}
	if len(p.BioServer2) > 0 {
		b = append(b, 0x96, byte(len(p.BioServer2)))
		b = append(b, p.BioServer2...)
	}
	if p.KeyDomains > 0 {
		b = append(b, 0x97, 0x01, byte(p.KeyDomains))
	}
	return b
}

// Initialize sends INITIALIZE DEVICE (80 50 00 00). The PINs in the data
// are masked in traces.
func (d *Device) Initialize(p *InitParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data := p.Data()
	defer clear(data)
	if _, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x50, Data: data, Secret: true, Name: "INITIALIZE"}); err != nil {
		if apdu.IsStatus(err, apdu.SWSecurityStatus) {
			return fmt.Errorf("initialize: the device refuses to be re-initialized (secure lock): %w", err)
		}
		return fmt.Errorf("initialize: %w", err)
	}
	if p.KeyDomains > 0 && p.DKEKShares > 0 {
		// Tag 97 rewrites the key domain table to FF FF per domain, so
		// domain 0 loses tag 92's share count
		// (transcripts/60-key-domains-setup.txt [2], [3]). Set it up
		// again, in INITIALIZE's session, which has the user PIN ([7]).
		if _, err := d.CreateKeyDomain(0, p.DKEKShares); err != nil {
			return fmt.Errorf("the device is initialized with %d key domains, but key domain 0 could not be set up for %d DKEK shares: run key-domain create 0 --dkek-shares %d --pin ... before importing shares: %w", p.KeyDomains, p.DKEKShares, p.DKEKShares, err)
		}
	}
	return nil
}

// CountKeys returns the number of keys on the device, the device's own
// authentication key (reference 0) excepted.
func (d *Device) CountKeys() (int, error) {
	fids, err := d.ListObjects()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, f := range fids {
		if byte(f>>8) == PrefixKey && byte(f) != 0 {
			n++
		}
	}
	return n, nil
}
