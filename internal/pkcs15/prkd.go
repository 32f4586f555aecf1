// Package pkcs15 reads and writes the PKCS#15 key descriptions a SmartCard-HSM
// (and so a Pico HSM) keeps in the elementary files C4xx, one per key
// reference xx.
//
// Three writers produce these files, and the package reproduces each of them
// byte for byte:
//
//   - OpenSC's pkcs15init (src/pkcs15init/pkcs15-sc-hsm.c
//     sc_hsm_emu_update_prkd, which calls sc_pkcs15_encode_prkdf_entry in
//     src/libopensc/pkcs15-prkey.c) after pkcs11-tool --keypairgen, and
//     sc-hsm-tool --unwrap-key, which writes back the description carried in
//     the wrap file. See New.
//   - The Pico HSM firmware (asn1_build_prkd_generic in src/hsm/cvc.c), which
//     writes a minimal description whenever it stores a key: at key
//     generation, unwrap, AES key generation and for the device key C400.
//     See NewFirmware.
//   - Anything else is parsed tolerantly: elements the package does not model
//     are skipped, and Raw keeps the original bytes.
//
// The layout, common to all three (PKCS#15 v1.1 section 6.1 and 6.3, ISO/IEC
// 7816-15; OpenSC's asn1_encode_p15_object in src/libopensc/asn1.c):
//
//	PrivateKeyType  30 (RSA) | A0 (EC) | A8 (AES, see Kind)
//	  CommonObjectAttributes   30 { 0C label?, 03 flags?, 04 authId? }
//	  CommonKeyAttributes      30 { 04 iD, 03 usage, 01 native?, 03 accessFlags?, 02 keyReference? }
//	  SubClassAttributes       A0 { ... }?          (AES: A0 { 30 { 02 keyLen } })
//	  TypeAttributes           A1 { 30 { 30 { 04 path }, 02 modulusLength | fieldSize } }
//	                                                 (AES: A1 { 30 { 30 { 04 path } } })
package pkcs15

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the key type, encoded as the tag of the PrivateKeyType choice.
type Kind int

const (
	// RSA is privateRSAKey, tag 30 (universal SEQUENCE).
	RSA Kind = iota + 1
	// EC is privateECCKey, tag A0 ([0] constructed); OpenSC's c_asn1_prkey
	// in pkcs15-prkey.c.
	EC
	// AES is the secret-key description the SmartCard-HSM convention keeps
	// in the same C4xx files with tag A8 ([8] constructed); the firmware's
	// P15_KEYTYPE_AES in src/hsm/sc_hsm.h. OpenSC never writes it: its
	// sc_pkcs15_encode_skdf_entry (src/libopensc/pkcs15-skey.c) only knows
	// genericSecretKey (30) and the DES choices A2..A4, and
	// src/pkcs15init/pkcs15-sc-hsm.c has no secret-key path at all
	// (sc_hsm_emu_update_any_df handles private keys, public keys,
	// certificates and data objects only). Its sc-hsm emulator reads C4xx
	// with sc_pkcs15_decode_prkdf_entry, which has no [8] choice, so an A8
	// file is skipped. The layout here is the firmware's.
	AES
)

// Tag returns the tag byte of the PrivateKeyType choice for k.
func (k Kind) Tag() byte {
	switch k {
	case RSA:
		return 0x30
	case EC:
		return 0xa0
	case AES:
		return 0xa8
	}
	return 0
}

func (k Kind) String() string {
	switch k {
	case RSA:
		return "RSA"
	case EC:
		return "EC"
	case AES:
		return "AES"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// ObjectFlags is PKCS#15 CommonObjectFlags ::= BIT STRING { private(0),
// modifiable(1) }. Bit i of the value is named bit i, as in OpenSC's
// SC_PKCS15_CO_FLAG_* constants; on the wire private is 0x80 of the first
// octet, so private|modifiable is 03 02 06 C0.
type ObjectFlags uint32

const (
	FlagPrivate    ObjectFlags = 1 << 0
	FlagModifiable ObjectFlags = 1 << 1
)

func (f ObjectFlags) String() string {
	return bitNames(uint32(f), []string{"private", "modifiable"})
}

// KeyUsage is PKCS#15 KeyUsageFlags ::= BIT STRING { encrypt(0),
// decrypt(1), sign(2), signRecover(3), wrap(4), unwrap(5), verify(6),
// verifyRecover(7), derive(8), nonRepudiation(9) }. Bit i of the value is
// named bit i, as in OpenSC's SC_PKCS15_PRKEY_USAGE_* constants. On the wire
// the named bits run from the most significant bit of the first content
// octet, after the unused-bits octet:
//
//	03 02 04 70     decrypt, sign, signRecover           (OpenSC, RSA key)
//	03 03 07 30 80  sign, signRecover, derive            (OpenSC, EC key)
//	03 02 02 74     decrypt, sign, signRecover, unwrap   (firmware, RSA key)
//	03 03 07 20 80  sign, derive                         (firmware, EC key and C400)
//	03 03 07 C0 10  encrypt, decrypt (+ a set unused bit) (firmware, AES key)
type KeyUsage uint32

const (
	UsageEncrypt KeyUsage = 1 << iota
	UsageDecrypt
	UsageSign
	UsageSignRecover
	UsageWrap
	UsageUnwrap
	UsageVerify
	UsageVerifyRecover
	UsageDerive
	UsageNonRepudiation
)

var usageNames = []string{"encrypt", "decrypt", "sign", "signRecover", "wrap",
	"unwrap", "verify", "verifyRecover", "derive", "nonRepudiation"}

func (u KeyUsage) String() string { return bitNames(uint32(u), usageNames) }

// AccessFlags is PKCS#15 KeyAccessFlags ::= BIT STRING { sensitive(0),
// extractable(1), alwaysSensitive(2), neverExtractable(3), local(4) }.
// Neither OpenSC (for this card) nor the firmware writes it; it is parsed so
// that descriptions from other tools survive a round trip.
type AccessFlags uint32

const (
	AccessSensitive AccessFlags = 1 << iota
	AccessExtractable
	AccessAlwaysSensitive
	AccessNeverExtractable
	AccessLocal
)

func (a AccessFlags) String() string {
	return bitNames(uint32(a), []string{"sensitive", "extractable", "alwaysSensitive", "neverExtractable", "local"})
}

func bitNames(v uint32, names []string) string {
	var parts []string
	for i := 0; i < 32; i++ {
		if v&(1<<uint(i)) == 0 {
			continue
		}
		if i < len(names) {
			parts = append(parts, names[i])
		} else {
			parts = append(parts, "bit"+strconv.Itoa(i))
		}
	}
	return strings.Join(parts, ",")
}

// PrivateKey is one key description from an EF C4xx.
type PrivateKey struct {
	Kind Kind
	// Label is the CommonObjectAttributes label (CKA_LABEL).
	Label string
	// Flags are the CommonObjectAttributes flags.
	Flags ObjectFlags
	// AuthID names the PIN object guarding the key; OpenSC writes 01, the
	// user PIN. Empty when absent.
	AuthID []byte
	// ID is the CommonKeyAttributes iD (CKA_ID).
	ID []byte
	// Usage is the CommonKeyAttributes usage.
	Usage KeyUsage
	// NotNative is set when the optional native BOOLEAN is present and
	// FALSE (it defaults to TRUE and OpenSC only writes it when FALSE).
	NotNative bool
	// AccessFlags is the optional CommonKeyAttributes accessFlags.
	AccessFlags AccessFlags
	// KeyReference is the key reference (the xx of CCxx), -1 when absent.
	KeyReference int
	// Path is the efidOrPath of the key value's Path; empty for this card.
	Path []byte
	// Bits is modulusLength for RSA, fieldSize for EC and keyLen for AES,
	// in bits; 0 when absent.
	Bits int
	// Raw is the encoding the description was parsed from.
	Raw []byte

	spell spelling
}

// spelling remembers how Raw spelled values that have more than one valid
// encoding, so that Marshal reproduces the parsed bytes while the value is
// unchanged. Each entry is used only when the field still holds the value
// it was decoded to.
type spelling struct {
	emptyLabel bool // 0C 00 present although Label is empty
	flags      bitSpelling
	usage      bitSpelling
	access     bitSpelling
	keyRef     intSpelling
	bits       intSpelling
	bitsAbsent bool // RSA/EC size element missing (Bits == 0)
	aesDirect  bool // AES keyLen as A0 { 02 } instead of A0 { 30 { 02 } }
}

type bitSpelling struct {
	raw []byte
	val uint32
}

type intSpelling struct {
	raw []byte
	val int
}

func (s bitSpelling) encode(v uint32) []byte {
	if s.raw != nil && s.val == v {
		return s.raw
	}
	return encodeBits(v)
}

func (s intSpelling) encode(v int) []byte {
	if s.raw != nil && s.val == v {
		return s.raw
	}
	return encodeInt(v)
}

// DefaultUsage returns the usage OpenSC's pkcs15init records for a key made
// with pkcs11-tool --keypairgen (recorded in
// testdata/pico-hsm/transcripts/other/12 and 13): decrypt, sign and
// signRecover for RSA (03 02 04 70); sign, signRecover and derive for EC
// (03 03 07 30 80). For AES, which OpenSC cannot create on this card, it
// returns encrypt and decrypt, the usage the firmware records.
func DefaultUsage(kind Kind) KeyUsage {
	switch kind {
	case RSA:
		return UsageDecrypt | UsageSign | UsageSignRecover
	case EC:
		return UsageSign | UsageSignRecover | UsageDerive
	case AES:
		return UsageEncrypt | UsageDecrypt
	}
	return 0
}

// New returns the description OpenSC's pkcs15init writes to C4<keyRef>
// after pkcs11-tool --keypairgen --label label --id id
// (sc_hsm_emu_update_prkd, src/pkcs15init/pkcs15-sc-hsm.c): the label,
// flags private and modifiable (03 02 06 C0), authId 01 (the user PIN), the
// iD, the usage of DefaultUsage, the key reference, an empty path and the
// key size. For RSA and EC, Marshal of the result is byte for byte what
// OpenSC 0.23 wrote for k1 and k2 on the recorded device.
//
// For AES New uses the same common attributes with the firmware's A8
// layout; OpenSC has no counterpart (see AES).
func New(kind Kind, label string, id []byte, keyRef, bits int) (*PrivateKey, error) {
	if kind.Tag() == 0 {
		return nil, fmt.Errorf("unsupported key kind %d", int(kind))
	}
	if keyRef < 0 || keyRef > 255 {
		return nil, fmt.Errorf("key reference %d out of range", keyRef)
	}
	if bits <= 0 {
		return nil, fmt.Errorf("invalid key size %d", bits)
	}
	if !validUTF8([]byte(label)) {
		return nil, errors.New("label is not valid utf-8")
	}
	return &PrivateKey{
		Kind:         kind,
		Label:        label,
		Flags:        FlagPrivate | FlagModifiable,
		AuthID:       []byte{0x01},
		ID:           bytes.Clone(id),
		Usage:        DefaultUsage(kind),
		KeyReference: keyRef,
		Bits:         bits,
	}, nil
}

// FirmwareUsage returns the usage the firmware's asn1_build_prkd_generic
// records: decrypt, sign, signRecover and unwrap for RSA (03 02 02 74); sign
// and derive for EC (03 03 07 20 80); encrypt and decrypt for AES, which it
// spells 03 03 07 C0 10, leaving a bit set in the unused-bits area.
func FirmwareUsage(kind Kind) KeyUsage {
	switch kind {
	case RSA:
		return UsageDecrypt | UsageSign | UsageSignRecover | UsageUnwrap
	case EC:
		return UsageSign | UsageDerive
	case AES:
		return UsageEncrypt | UsageDecrypt
	}
	return 0
}

// firmwareAESUsage is the firmware's spelling of the AES usage: 9 bits
// declared (7 unused), but the octet 10 sets bit 11.
var firmwareAESUsage = []byte{0x07, 0xc0, 0x10}

// FirmwareID returns the iD the firmware gives a key it stores: the key
// reference in ASCII decimal ("1" is 31, "10" is 31 30), from the
// sprintf("%u") in store_keys (src/hsm/sc_hsm.c).
func FirmwareID(keyRef int) []byte { return []byte(strconv.Itoa(keyRef)) }

// NewFirmware returns the description the Pico HSM firmware writes itself
// (asn1_build_prkd_generic, src/hsm/cvc.c): a label that is always present,
// even when empty (30 02 0C 00); no flags, authId or key reference; the
// fixed FirmwareUsage; an empty path; and the size as a two-octet INTEGER.
//
// For a key it stores at key reference r (store_keys in src/hsm/sc_hsm.c)
// the firmware uses an empty label, FirmwareID(r) and bits = the key's byte
// length × 8: 2048 for RSA-2048, 256 for P-256, but 528 for P-521 where
// OpenSC writes the field size 521. RSA-2048 ref 1:
//
//	30 19 30 02 0C 00 30 07 04 01 31 03 02 02 74 A1 0A 30 08 30 02 04 00 02 02 08 00
//
// (27 bytes, the size the recorded FCP of C401 shows after keygen). The
// device key C400 is NewFirmware(EC, "ESPICOHSMTR", 20 zero bytes, 256).
// AES keys get the A8 layout with keyLen in the subclass attributes:
//
//	A8 L 30 02 0C 00 30 L 04 <id> 03 03 07 C0 10 A0 06 30 04 02 02 <bits> A1 06 30 04 30 02 04 00
//
// bits must be between 128 and 32767, where the firmware's fixed
// two-octet size equals the DER encoding.
func NewFirmware(kind Kind, label string, id []byte, bits int) (*PrivateKey, error) {
	if kind.Tag() == 0 {
		return nil, fmt.Errorf("unsupported key kind %d", int(kind))
	}
	if bits < 128 || bits > 0x7fff {
		return nil, fmt.Errorf("key size %d out of range", bits)
	}
	if !validUTF8([]byte(label)) {
		return nil, errors.New("label is not valid utf-8")
	}
	k := &PrivateKey{
		Kind:         kind,
		Label:        label,
		ID:           bytes.Clone(id),
		Usage:        FirmwareUsage(kind),
		KeyReference: -1,
		Bits:         bits,
	}
	k.spell.emptyLabel = true
	if kind == AES {
		k.spell.usage = bitSpelling{raw: firmwareAESUsage, val: uint32(k.Usage)}
	}
	return k, nil
}

// Marshal encodes the description. A description from New or NewFirmware
// encodes exactly as OpenSC or the firmware would write it; one from Parse
// encodes back to Raw as long as the modelled fields are unchanged and Raw
// held no elements the package skips. Fields are written in OpenSC's order
// (sc_pkcs15_encode_prkdf_entry and asn1_encode_p15_object): label only when
// non-empty, flags only when non-zero, authId only when non-empty, native
// only when false, accessFlags only when non-zero, keyReference only when
// not negative.
func (k *PrivateKey) Marshal() []byte {
	var coa []byte
	if k.Label != "" || k.spell.emptyLabel {
		coa = appendTLV(coa, 0x0c, []byte(k.Label))
	}
	if k.Flags != 0 {
		coa = appendTLV(coa, 0x03, k.spell.flags.encode(uint32(k.Flags)))
	}
	if len(k.AuthID) > 0 {
		coa = appendTLV(coa, 0x04, k.AuthID)
	}

	var cka []byte
	cka = appendTLV(cka, 0x04, k.ID)
	cka = appendTLV(cka, 0x03, k.spell.usage.encode(uint32(k.Usage)))
	if k.NotNative {
		cka = appendTLV(cka, 0x01, []byte{0x00})
	}
	if k.AccessFlags != 0 {
		cka = appendTLV(cka, 0x03, k.spell.access.encode(uint32(k.AccessFlags)))
	}
	if k.KeyReference >= 0 {
		cka = appendTLV(cka, 0x02, k.spell.keyRef.encode(k.KeyReference))
	}

	path := appendTLV(nil, 0x30, appendTLV(nil, 0x04, k.Path))
	var sub, typ []byte
	switch k.Kind {
	case AES:
		if k.Bits != 0 {
			keyLen := appendTLV(nil, 0x02, k.spell.bits.encode(k.Bits))
			if !k.spell.aesDirect {
				keyLen = appendTLV(nil, 0x30, keyLen)
			}
			sub = appendTLV(nil, 0xa0, keyLen)
		}
		typ = appendTLV(nil, 0xa1, appendTLV(nil, 0x30, path))
	default:
		attrs := path
		if k.Bits != 0 || !k.spell.bitsAbsent {
			attrs = appendTLV(attrs, 0x02, k.spell.bits.encode(k.Bits))
		}
		typ = appendTLV(nil, 0xa1, appendTLV(nil, 0x30, attrs))
	}

	var body []byte
	body = appendTLV(body, 0x30, coa)
	body = appendTLV(body, 0x30, cka)
	body = append(body, sub...)
	body = append(body, typ...)
	return appendTLV(nil, k.Kind.Tag(), body)
}

// Parse decodes the description at the start of b, the content of an EF
// C4xx. Like OpenSC's sc_pkcs15_decode_prkdf_entry it decodes the first
// element and ignores what follows (an UPDATE BINARY of a shorter
// description leaves the old tail in the file). Elements the package does
// not model (userConsent, accessControlRules, algReference, subjectName,
// path index and length, keyInfo) are skipped.
func Parse(b []byte) (*PrivateKey, error) {
	outer, _, err := readElement(b)
	if err != nil {
		return nil, fmt.Errorf("private key description: %w", err)
	}
	k := &PrivateKey{KeyReference: -1, Raw: bytes.Clone(outer.full)}
	switch outer.tag {
	case 0x30:
		k.Kind = RSA
	case 0xa0:
		k.Kind = EC
	case 0xa8:
		k.Kind = AES
	default:
		return nil, fmt.Errorf("unsupported private key description tag 0x%02x", outer.tag)
	}
	parts, err := readAll(outer.val)
	if err != nil {
		return nil, fmt.Errorf("private key description: %w", err)
	}
	if len(parts) < 2 {
		return nil, errors.New("private key description: missing attributes")
	}
	if parts[0].tag != 0x30 {
		return nil, fmt.Errorf("common object attributes: unexpected tag 0x%02x", parts[0].tag)
	}
	if err := k.parseCommonObject(parts[0].val); err != nil {
		return nil, fmt.Errorf("common object attributes: %w", err)
	}
	if parts[1].tag != 0x30 {
		return nil, fmt.Errorf("common key attributes: unexpected tag 0x%02x", parts[1].tag)
	}
	if err := k.parseCommonKey(parts[1].val); err != nil {
		return nil, fmt.Errorf("common key attributes: %w", err)
	}
	rest := parts[2:]
	if len(rest) > 0 && rest[0].tag == 0xa0 {
		if k.Kind == AES {
			if err := k.parseSecretSubclass(rest[0].val); err != nil {
				return nil, fmt.Errorf("secret key attributes: %w", err)
			}
		}
		rest = rest[1:]
	}
	if len(rest) == 0 || rest[0].tag != 0xa1 {
		return nil, errors.New("private key description: missing type attributes")
	}
	if err := k.parseTypeAttributes(rest[0].val); err != nil {
		return nil, fmt.Errorf("type attributes: %w", err)
	}
	return k, nil
}

func (k *PrivateKey) parseCommonObject(b []byte) error {
	els, err := readAll(b)
	if err != nil {
		return err
	}
	for _, e := range els {
		switch e.tag {
		case 0x0c:
			if !validUTF8(e.val) {
				return errors.New("label is not valid utf-8")
			}
			k.Label = string(e.val)
			k.spell.emptyLabel = len(e.val) == 0
		case 0x03:
			v, err := decodeBits(e.val)
			if err != nil {
				return fmt.Errorf("flags: %w", err)
			}
			k.Flags = ObjectFlags(v)
			k.spell.flags = bitSpelling{raw: bytes.Clone(e.val), val: v}
		case 0x04:
			k.AuthID = bytes.Clone(e.val)
		}
	}
	return nil
}

func (k *PrivateKey) parseCommonKey(b []byte) error {
	els, err := readAll(b)
	if err != nil {
		return err
	}
	if len(els) < 2 || els[0].tag != 0x04 || els[1].tag != 0x03 {
		return errors.New("missing iD or usage")
	}
	k.ID = bytes.Clone(els[0].val)
	v, err := decodeBits(els[1].val)
	if err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	k.Usage = KeyUsage(v)
	k.spell.usage = bitSpelling{raw: bytes.Clone(els[1].val), val: v}
	for _, e := range els[2:] {
		switch e.tag {
		case 0x01:
			if len(e.val) != 1 {
				return errors.New("malformed native flag")
			}
			k.NotNative = e.val[0] == 0
		case 0x03:
			v, err := decodeBits(e.val)
			if err != nil {
				return fmt.Errorf("access flags: %w", err)
			}
			k.AccessFlags = AccessFlags(v)
			k.spell.access = bitSpelling{raw: bytes.Clone(e.val), val: v}
		case 0x02:
			ref, err := decodeInt(e.val)
			if err != nil {
				return fmt.Errorf("key reference: %w", err)
			}
			// OpenSC 0.11.4 and older wrote references above 127 as
			// negative one-octet integers; sc_pkcs15_decode_prkdf_entry
			// adds 256 back, and so do we.
			if ref < -1 && ref >= -128 {
				ref += 256
			}
			if ref < 0 {
				return fmt.Errorf("invalid key reference %d", ref)
			}
			k.KeyReference = ref
			k.spell.keyRef = intSpelling{raw: bytes.Clone(e.val), val: ref}
		}
	}
	return nil
}

// parseSecretSubclass reads keyLen from A0. The firmware writes
// A0 { 30 { 02 keyLen } }; a bare A0 { 02 keyLen } is accepted too.
func (k *PrivateKey) parseSecretSubclass(b []byte) error {
	els, err := readAll(b)
	if err != nil {
		return err
	}
	if len(els) == 0 {
		return nil
	}
	if els[0].tag == 0x02 {
		k.spell.aesDirect = true
	} else if els[0].tag == 0x30 {
		if els, err = readAll(els[0].val); err != nil {
			return err
		}
	}
	if len(els) > 0 && els[0].tag == 0x02 {
		return k.setBits(els[0].val)
	}
	return nil
}

func (k *PrivateKey) setBits(b []byte) error {
	n, err := decodeInt(b)
	if err != nil {
		return fmt.Errorf("key size: %w", err)
	}
	if n < 0 {
		return fmt.Errorf("invalid key size %d", n)
	}
	k.Bits = n
	k.spell.bits = intSpelling{raw: bytes.Clone(b), val: n}
	return nil
}

func (k *PrivateKey) parseTypeAttributes(b []byte) error {
	seq, _, err := readElement(b)
	if err != nil {
		return err
	}
	if seq.tag != 0x30 {
		return fmt.Errorf("unexpected tag 0x%02x", seq.tag)
	}
	els, err := readAll(seq.val)
	if err != nil {
		return err
	}
	if len(els) == 0 || els[0].tag != 0x30 {
		return errors.New("missing path")
	}
	path, err := readAll(els[0].val)
	if err != nil {
		return fmt.Errorf("path: %w", err)
	}
	if len(path) == 0 || path[0].tag != 0x04 {
		return errors.New("path: missing efidOrPath")
	}
	k.Path = bytes.Clone(path[0].val)
	if k.Kind == AES {
		return nil
	}
	if len(els) > 1 && els[1].tag == 0x02 {
		return k.setBits(els[1].val)
	}
	k.spell.bitsAbsent = true
	return nil
}
