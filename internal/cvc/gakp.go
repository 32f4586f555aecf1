package cvc

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
)

// GAKPCAR is the authority reference OpenSC puts into every GENERATE
// ASYMMETRIC KEY PAIR request: sc_hsm_generate_key in
// src/pkcs15init/pkcs15-sc-hsm.c copies the literal "UTCA00001" into
// cvc.car. The firmware copies it into the request it answers
// (asn1_cvc_cert_body), so every key's CExx names "UTCA00001" as CAR.
const GAKPCAR = "UTCA00001"

// HolderReference returns the holder reference OpenSC puts into a GENERATE
// ASYMMETRIC KEY PAIR request: the token serial number followed by
// "00001", cut to 16 characters (sc_hsm_generate_key: strlcpy and strlcat
// into char chr[17]). The sequence number is always 00001, whatever the
// key reference, so all keys' requests share one CHR.
// HolderReference("ESPICOHSMTR") is "ESPICOHSMTR00001".
//
// Older OpenSC releases used the literal "UTTM00001" instead.
func HolderReference(serial string) string {
	chr := serial + "00001"
	if len(chr) > 16 {
		chr = chr[:16]
	}
	return chr
}

// SerialNumber returns the token serial number OpenSC derives from the
// device: the CHR of the first object in EF 2F02 (C_DevAut) without its
// last five characters, the sequence number (sc_pkcs15emu_sc_hsm_init in
// src/libopensc/pkcs15-sc-hsm.c, which asserts at least 8 characters).
// For "ESPICOHSMTR00001" it is "ESPICOHSMTR".
func SerialNumber(deviceCHR string) (string, error) {
	if len(deviceCHR) < 8 {
		return "", fmt.Errorf("device chr %q shorter than 8 characters", deviceCHR)
	}
	return deviceCHR[:len(deviceCHR)-5], nil
}

// requestBody returns the contents of the body OpenSC encodes for GENERATE
// ASYMMETRIC KEY PAIR: sc_pkcs15emu_sc_hsm_encode_cvc builds
// 7F21 { 7F4E { 5F29, 42, 7F49, 5F20 } } without a signature, and
// sc_hsm_generate_key skips the 7F21 and 7F4E headers, so the command data
// is the body's contents. The profile is INTEGER 0 (5F29 01 00).
func requestBody(pub *PublicKey, car, chr string) []byte {
	var b []byte
	b = appendTLV(b, TagProfile, []byte{0x00})
	b = appendTLV(b, TagCAR, []byte(car))
	b = append(b, pub.Marshal()...)
	return appendTLV(b, TagCHR, []byte(chr))
}

// GAKPRequestRSA returns the command data of GENERATE ASYMMETRIC KEY PAIR
// (00 46 <key ref> 00) for an RSA key as OpenSC sends it
// (sc_hsm_encode_gakp_rsa in src/pkcs15init/pkcs15-sc-hsm.c):
//
//	5F29 01 00
//	42 <car>
//	7F49 { 06 0A 04007F00070202020102   id-TA-RSA-v1-5-SHA-256
//	       82 <exponent>                 big-endian, no leading zeros: 01 00 01
//	       02 <bits> }                   INTEGER key size: 02 02 08 00 for 2048
//	5F20 <chr>
//
// With bits 2048, exponent 65537, car GAKPCAR and chr
// HolderReference(serial) this is byte for byte the data recorded in
// testdata/pico-hsm/transcripts/other/12-keygen-rsa2048.txt [29]. OpenSC
// always sends exponent 65537 (pubexp in pkcs15-sc-hsm.c).
func GAKPRequestRSA(bits, exponent int, car, chr string) []byte {
	pub := &PublicKey{OID: OIDRSAv15SHA256, E: big.NewInt(int64(exponent)), KeySize: bits}
	return requestBody(pub, car, chr)
}

// GAKPRequestEC returns the command data of GENERATE ASYMMETRIC KEY PAIR for
// an EC key as OpenSC sends it (sc_hsm_encode_gakp_ec in
// src/pkcs15init/pkcs15-sc-hsm.c), the curve given by its domain parameters:
//
//	5F29 01 00
//	42 <car>
//	7F49 { 06 0A 04007F00070202020203   id-TA-ECDSA-SHA-256
//	       81 p, 82 a, 83 b, 84 G, 85 order, 87 cofactor }
//	5F20 <chr>
//
// There is no public point (86). The parameters are written as given;
// OpenSC's curve table has them full length (a of P-256 is the 32-byte
// FFFFFFFF00000001…FFFC; G is 04‖x‖y) and the cofactor as one octet.
// With internal/ecc, p = c.P.FillBytes(make([]byte, c.ByteLen())), and so
// on, G = c.Marshal(c.Gx, c.Gy), cofactor = c.H. For P-256, GAKPCAR and
// "ESPICOHSMTR00001" this is byte for byte the data recorded in
// testdata/pico-hsm/transcripts/other/13-keygen-ec256.txt [37]. The
// firmware picks the curve by p alone.
func GAKPRequestEC(p, a, b, g, order []byte, cofactor int, car, chr string) []byte {
	pub := &PublicKey{
		OID:      OIDECDSASHA256,
		Prime:    nonNil(p),
		A:        nonNil(a),
		B:        nonNil(b),
		G:        nonNil(g),
		Order:    nonNil(order),
		Cofactor: max(cofactor, 0),
	}
	return requestBody(pub, car, chr)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// GAKPRequest is the decoded command data of GENERATE ASYMMETRIC KEY PAIR,
// as the firmware reads it (cmd_keypair_gen in src/hsm/cmd_keypair_gen.c):
// it looks the tags up among the top-level elements and needs only 7F49.
type GAKPRequest struct {
	// Profile is the 5F29 value, -1 when absent.
	Profile int
	// CAR and CHR are copied into the answer; when absent or empty the
	// firmware uses the device name instead.
	CAR, CHR string
	// PublicKey carries the algorithm OID and the requested parameters: for
	// RSA E and KeySize, for EC the domain parameters.
	PublicKey PublicKey
	// Meta holds the firmware's key metadata tags 90 (use counter), 91
	// (allowed algorithms), 92 (key domain) and 93 when present.
	Meta map[byte][]byte
}

// ParseGAKPRequest decodes GENERATE ASYMMETRIC KEY PAIR command data.
// Unknown top-level elements are ignored, as the firmware ignores them.
func ParseGAKPRequest(data []byte) (*GAKPRequest, error) {
	els, err := readAll(data)
	if err != nil {
		return nil, fmt.Errorf("key pair request: %w", err)
	}
	r := &GAKPRequest{Profile: -1}
	var havePK bool
	for _, e := range els {
		switch e.tag {
		case TagProfile:
			if len(e.val) != 1 {
				return nil, errors.New("key pair request: profile identifier must be one byte")
			}
			r.Profile = int(e.val[0])
		case TagCAR:
			if r.CAR, err = reference(e.val); err != nil {
				return nil, fmt.Errorf("key pair request: car: %w", err)
			}
		case TagCHR:
			if r.CHR, err = reference(e.val); err != nil {
				return nil, fmt.Errorf("key pair request: chr: %w", err)
			}
		case TagPublicKey:
			if havePK {
				return nil, errors.New("key pair request: duplicate public key")
			}
			pk, err := parsePublicKey(e)
			if err != nil {
				return nil, fmt.Errorf("key pair request: %w", err)
			}
			r.PublicKey = *pk
			havePK = true
		case 0x90, 0x91, 0x92, 0x93:
			if r.Meta == nil {
				r.Meta = map[byte][]byte{}
			}
			r.Meta[byte(e.tag)] = bytes.Clone(e.val)
		}
	}
	if !havePK {
		return nil, errors.New("key pair request: missing public key")
	}
	return r, nil
}
