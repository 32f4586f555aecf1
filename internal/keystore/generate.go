package keystore

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
)

// GenSpec says what key to generate.
type GenSpec struct {
	// Type is "rsa", "ec" or "aes".
	Type string
	// Bits is the RSA modulus size (1024 to 4096) or AES key size.
	Bits int
	// Curve is the EC curve name (see internal/ecc).
	Curve string
	// Label and ID go to the PKCS#15 description; ID defaults to the key
	// reference.
	Label string
	ID    []byte
	// Ref is the key reference, or -1 to take the lowest free one.
	Ref int
	// NoExport leaves WRAP out of the key's allowed algorithms, so the key
	// can never leave the device. By default keys are exportable under the
	// DKEK, as OpenSC generates them (no algorithm list).
	NoExport bool
	// AllowDuplicate lets the key have a label or ID that another key has
	// already (see DuplicateError).
	AllowDuplicate bool
	// Domain is the key domain the key goes into, 0 to 15. Keys of domain
	// 0 carry no domain tag, as before key domains (and as OpenSC
	// generates them); the firmware counts a key without one as domain 0.
	Domain int
	// Warn, if set, receives what the user should know but that does not
	// stop the generation: a key domain whose DKEK still waits for shares.
	Warn func(msg string)
	// PIN is the user PIN; AllowLastTry lets it be tried with one try left.
	PIN          []byte
	AllowLastTry bool
}

// Curves the SmartCard-HSM generates keys on (pico-hsm cmd_keypair_gen.c
// picks the curve by its prime).
var Curves = []string{"secp256r1", "secp384r1", "secp521r1", "secp256k1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"}

// Validate checks the spec before the device is touched.
func (s *GenSpec) Validate() error {
	switch strings.ToLower(s.Type) {
	case "rsa":
		if s.Bits < 1024 || s.Bits > 4096 || s.Bits%256 != 0 {
			return fmt.Errorf("RSA keys are 1024 to 4096 bits, in steps of 256, not %d", s.Bits)
		}
	case "ec":
		c := ecc.ByName(s.Curve)
		if c == nil {
			return fmt.Errorf("unknown curve %q: use one of %s", s.Curve, strings.Join(Curves, ", "))
		}
		s.Curve = c.Name
	case "aes":
		if s.Bits != 128 && s.Bits != 192 && s.Bits != 256 {
			return fmt.Errorf("AES keys are 128, 192 or 256 bits, not %d", s.Bits)
		}
	default:
		return fmt.Errorf("key type %q: use rsa, ec or aes", s.Type)
	}
	if s.Ref == 0 || s.Ref > 255 {
		return errors.New("--key-reference must be from 1 to 255 (0 is the device's own key)")
	}
	if len(s.Label) > 100 {
		return errors.New("--label must not be longer than 100 characters")
	}
	if len(s.ID) > 64 {
		return errors.New("--id must not be longer than 64 bytes")
	}
	if s.Domain < 0 || s.Domain >= hsm.MaxKeyDomains {
		return fmt.Errorf("--key-domain must be from 0 to %d, not %d (status lists the device's key domains)", hsm.MaxKeyDomains-1, s.Domain)
	}
	return nil
}

// checkDomain refuses to generate into key domain dom unless it is set up:
// the firmware would put the key into a free slot, or one the device does
// not have, all the same (pico-hsm cmd_keypair_gen.c copies tag 92 as it
// is; transcripts/61-key-domains-keys.txt [3]), and such a key could never
// be wrapped. A domain whose DKEK still waits for shares is fine, with a
// warning: its keys work, but cannot be wrapped (6A88) until every share is
// in. Domain 0 is not refused: keys without a domain tag have always been
// generated whatever its state; but on a device with key domains whose
// domain 0 is free, the key could never be wrapped, and a warning says so.
// The status query needs no PIN, so a refusal costs no PIN try.
func checkDomain(conn *device.Conn, dom int, warn func(string)) error {
	if dom == 0 {
		_, err := conn.DomainStatus(0)
		if errors.Is(err, hsm.ErrDomainNotSetUp) && warn != nil {
			warn("key domain 0 is not set up on this device: this key can never be backed up; to back it up, delete it and generate it with --key-domain D, a domain status lists as set up")
		}
		return nil
	}
	st, err := conn.DomainStatus(dom)
	var de *hsm.DomainError
	switch {
	case errors.As(err, &de):
		return err
	case errors.Is(err, hsm.ErrNoDKEK):
		// 6B00: a device never initialized has no key domains.
		return fmt.Errorf("cannot generate a key in key domain %d: %w", dom, hsm.ErrNotInitialized)
	case err != nil:
		return err
	}
	if st.Outstanding > 0 && warn != nil {
		warn(fmt.Sprintf("key domain %d still waits for %d of its %d DKEK shares: the key can be used but not backed up until its domain's shares are all imported (import-dkek-share)", dom, st.Outstanding, st.Shares))
	}
	return nil
}

// signingAlgorithms is the allowed-algorithm list (metadata 91) of a key
// that must not be exported: every signing, decryption and derivation
// algorithm of its type, without WRAP (92).
func signingAlgorithms(typ string) []byte {
	switch typ {
	case "rsa":
		return []byte{0x20, 0x21, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45}
	case "ec":
		return []byte{0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x80}
	}
	return []byte{0x10, 0x11, 0x18}
}

// Generate makes a key on the device and writes its PKCS#15 description as
// OpenSC does (pkcs15-sc-hsm.c), so that pkcs15-tool -D and pkcs11-tool -O
// list it with its label, ID and size. It refuses an occupied reference.
func Generate(conn *device.Conn, s GenSpec) (Key, error) {
	if err := s.Validate(); err != nil {
		return Key{}, err
	}
	typ := strings.ToLower(s.Type)
	var out Key
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := checkDomain(conn, s.Domain, s.Warn); err != nil {
			return err
		}
		if err := conn.Login(s.PIN, s.AllowLastTry); err != nil {
			return err
		}
		fids, err := conn.ListObjects()
		if err != nil {
			return err
		}
		if s.Ref < 0 {
			if s.Ref, err = FreeRef(fids); err != nil {
				return err
			}
		} else if Occupied(fids, s.Ref) {
			return fmt.Errorf("key reference %d is in use: choose another, or let the tool pick a free one", s.Ref)
		}
		ref := byte(s.Ref)
		id := s.ID
		if id == nil {
			id = []byte{ref}
		}
		if !s.AllowDuplicate {
			// One READ BINARY per key: the descriptions hold the labels
			// and IDs.
			keys, err := ListFrom(conn.Device, fids, ReadPRKD)
			if err != nil {
				return err
			}
			if err := CheckDuplicate(keys, s.Ref, s.Label, hex.EncodeToString(id)); err != nil {
				return fmt.Errorf("%w: %s, or add --allow-duplicate", err, renameHint(err.(*DuplicateError), s.ID == nil))
			}
		}
		var meta []byte
		if s.NoExport {
			algs := signingAlgorithms(typ)
			meta = append([]byte{0x91, byte(len(algs))}, algs...)
		}
		if s.Domain != 0 {
			// Key metadata tag 92 puts the key in a key domain
			// (pico-hsm cmd_keypair_gen.c and cmd_key_gen.c store it
			// with the key; transcripts/61-key-domains-keys.txt [1]
			// ends its data with 92 01 01). Domain 0 sends none.
			meta = append(meta, 0x92, 0x01, byte(s.Domain))
		}
		var kind pkcs15.Kind
		bits := s.Bits
		switch typ {
		case "rsa":
			kind = pkcs15.RSA
			data := append(cvc.GAKPRequestRSA(s.Bits, 65537, defaultCAR, deviceCHR), meta...)
			if _, err := conn.GenerateKeyPair(ref, data); err != nil {
				return err
			}
		case "ec":
			kind = pkcs15.EC
			c := ecc.ByName(s.Curve)
			bits = c.BitSize()
			n := c.ByteLen()
			a := c.A.FillBytes(make([]byte, n))
			data := cvc.GAKPRequestEC(c.P.FillBytes(make([]byte, n)), a, c.B.FillBytes(make([]byte, n)),
				c.Marshal(c.Gx, c.Gy), c.N.FillBytes(make([]byte, c.ScalarLen())), c.H, defaultCAR, deviceCHR)
			if _, err := conn.GenerateKeyPair(ref, append(data, meta...)); err != nil {
				return err
			}
		case "aes":
			kind = pkcs15.AES
			if err := conn.GenerateAESKey(ref, s.Bits, meta); err != nil {
				return err
			}
		}
		prkd, err := pkcs15.New(kind, s.Label, id, int(ref), bits)
		if err != nil {
			return err
		}
		if err := conn.UpdateFile(hsm.KeyFID(hsm.PrefixPRKD, ref), prkd.Marshal()); err != nil {
			return fmt.Errorf("the key was generated at key reference %d, but writing its description failed: %w", ref, err)
		}
		if out, err = Read(conn.Device, ref); err != nil {
			return err
		}
		if out.Domain != s.Domain {
			return fmt.Errorf("the key was generated at key reference %d, but the device put it in key domain %d, not %d: delete it (delete-key --key-reference %d) and report this device's firmware version", ref, out.Domain, s.Domain, ref)
		}
		return nil
	})
	return out, err
}

// renameHint says which of --label and --id to change after a
// DuplicateError; defaultID tells that the ID was the key reference.
func renameHint(e *DuplicateError, defaultID bool) string {
	id := "another ID"
	if defaultID {
		id = "another ID with --id (the default ID is the key reference)"
	}
	switch {
	case e.LabelRefs != nil && e.IDRefs != nil:
		return "choose another label and " + id
	case e.LabelRefs != nil:
		return "choose another label"
	}
	return "choose " + id
}

// The CAR and CHR OpenSC puts in a key generation request
// (transcripts/other/12 [29]); the device signs the request as itself.
const (
	defaultCAR = "UTCA00001"
	deviceCHR  = "ESPICOHSMTR00001"
)
