// Package wrap reads and writes SmartCard-HSM key blobs (a key encrypted
// under the DKEK) and sc-hsm-tool's wrapped-key files that carry them.
package wrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// KeyType is the key type byte of a blob (pico-hsm kek.c dkek_encode_key).
type KeyType byte

const (
	TypeRSA    KeyType = 5  // D, N, E
	TypeRSACRT KeyType = 6  // DP, DQ, P, PQ, Q, N, E (decoded only)
	TypeEC     KeyType = 12 // A, B, P, N, G, D, Q
	TypeAES    KeyType = 15 // raw key
)

func (t KeyType) String() string {
	switch t {
	case TypeRSA:
		return "RSA"
	case TypeRSACRT:
		return "RSA-CRT"
	case TypeEC:
		return "EC"
	case TypeAES:
		return "AES"
	}
	return fmt.Sprintf("unknown type %d", byte(t))
}

// Default algorithm OIDs the firmware writes for each type (kek.c): the
// TR-03110 id-TA-RSA-v1-5-SHA-256 and id-TA-ECDSA-SHA-256, and the NIST AES
// arc 2.16.840.1.101.3.4.1.
var (
	OIDRSA = []byte{0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x01, 0x02}
	OIDEC  = []byte{0x04, 0x00, 0x7F, 0x00, 0x07, 0x02, 0x02, 0x02, 0x02, 0x03}
	OIDAES = []byte{0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01}
)

// Blob is a parsed SmartCard-HSM key blob (pico-hsm src/hsm/kek.c
// dkek_encode_key and dkek_decode_key; SmartCard-HSM key backup format):
//
//	KCV(8) | type(1) | len(2) default algorithm OID | len(2) allowed
//	algorithms | len(2) access conditions | len(2) key OID |
//	AES-256-CBC(Kenc, IV=0)(8 random | key size(2) | key fields | 80 00..) |
//	AES-CMAC(Kmac) over everything before it (16)
//
// Kenc = SHA-256(DKEK || 00000001), Kmac = SHA-256(DKEK || 00000002), and
// the KCV is SHA-256(DKEK)[0:8]. The lengths are big-endian.
type Blob struct {
	KCV              [8]byte
	Type             KeyType
	AlgorithmOID     []byte
	Allowed          []byte
	AccessConditions []byte
	KeyOID           []byte
	Encrypted        []byte
	MAC              [16]byte
	// Raw is the whole blob as parsed.
	Raw []byte
}

// ErrBlob is wrapped by every error about a malformed blob.
var ErrBlob = errors.New("not a valid SmartCard-HSM key blob")

// maxEncrypted bounds the encrypted part of a blob: the largest key the
// device holds (RSA-4096 with CRT parts) is well under 4 KiB. The four
// lists before it are bounded by their 2-byte lengths, so maxBlob bounds a
// whole blob. The bound is on the key part, which Seal writes back at the
// same size, and not on the whole blob: Seal writes the default algorithm
// OID, up to 10 bytes more than a blob may have had, and a key that Open
// accepted must wrap again into a blob that ParseBlob accepts.
const (
	maxEncrypted = 8192
	maxBlob      = 8 + 1 + 4*(2+0xFFFF) + maxEncrypted + 16
)

// ParseBlob parses b without decrypting it. Every length is checked against
// what is left, so a hostile blob gives an error, never a panic.
func ParseBlob(b []byte) (*Blob, error) {
	if len(b) > maxBlob {
		return nil, fmt.Errorf("%w: %d bytes is larger than any key blob", ErrBlob, len(b))
	}
	if len(b) < 8+1+4*2+16+16 {
		return nil, fmt.Errorf("%w: only %d bytes", ErrBlob, len(b))
	}
	bl := &Blob{Raw: bytes.Clone(b)}
	copy(bl.KCV[:], b)
	bl.Type = KeyType(b[8])
	switch bl.Type {
	case TypeRSA, TypeRSACRT, TypeEC, TypeAES:
	default:
		return nil, fmt.Errorf("%w: unknown key type %d", ErrBlob, b[8])
	}
	rest := b[9 : len(b)-16]
	fields := []*[]byte{&bl.AlgorithmOID, &bl.Allowed, &bl.AccessConditions, &bl.KeyOID}
	names := []string{"algorithm OID", "allowed algorithms", "access conditions", "key OID"}
	for i, f := range fields {
		if len(rest) < 2 {
			return nil, fmt.Errorf("%w: truncated before the %s", ErrBlob, names[i])
		}
		n := int(binary.BigEndian.Uint16(rest))
		if n > len(rest)-2 {
			return nil, fmt.Errorf("%w: %s length %d exceeds the %d bytes left", ErrBlob, names[i], n, len(rest)-2)
		}
		*f = rest[2 : 2+n]
		rest = rest[2+n:]
	}
	if len(rest) == 0 || len(rest)%aes.BlockSize != 0 {
		return nil, fmt.Errorf("%w: encrypted part of %d bytes is not a whole number of AES blocks", ErrBlob, len(rest))
	}
	if len(rest) > maxEncrypted {
		return nil, fmt.Errorf("%w: encrypted part of %d bytes is larger than any key", ErrBlob, len(rest))
	}
	bl.Encrypted = rest
	copy(bl.MAC[:], b[len(b)-16:])
	return bl, nil
}

// Keys derived from a DKEK (kek.c).
type Keys struct {
	KCV [8]byte
	Enc [32]byte
	MAC [32]byte
}

// Derive returns the KCV, Kenc and Kmac of dkek.
func Derive(dkek []byte) Keys {
	var k Keys
	s := sha256.Sum256(dkek)
	copy(k.KCV[:], s[:8])
	buf := append(bytes.Clone(dkek), 0, 0, 0, 1)
	defer clear(buf)
	k.Enc = sha256.Sum256(buf)
	buf[len(buf)-1] = 2
	k.MAC = sha256.Sum256(buf)
	return k
}

// Wipe zeroes the derived keys.
func (k *Keys) Wipe() {
	k.Enc = [32]byte{}
	k.MAC = [32]byte{}
}

// Errors of Open, in the order the firmware checks (kek.c dkek_decode_key).
var (
	ErrWrongDKEK = errors.New("the key blob was made under another DKEK")
	ErrBadMAC    = errors.New("the key blob's CMAC does not verify: the backup is damaged or was tampered with")
)

// CheckMAC verifies the blob's CMAC with Kmac.
func (bl *Blob) CheckMAC(k Keys) error {
	m, err := cmac(k.MAC[:], bl.Raw[:len(bl.Raw)-16])
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(m[:], bl.MAC[:]) != 1 {
		return ErrBadMAC
	}
	return nil
}

// Key is decrypted key material. Integers are minimal big-endian.
type Key struct {
	Type KeyType
	// Bits is the key size field: the modulus or field size in bits for
	// RSA and EC; for AES the firmware stores the key length in bytes,
	// which Open turns into bits.
	Bits int
	// RSA (type 5): D, N, E. RSA-CRT (type 6) also fills P, Q, DP, DQ, PQ.
	D, N, E, P, Q, DP, DQ, PQ []byte
	// EC: curve A, B, prime P (ECP), order (ECN), base point G, private
	// scalar (D above) and public point Q (ECQ), as the blob carries them.
	A, B, ECP, ECN, G, ECQ []byte
	// AES key.
	Secret []byte
}

// Wipe zeroes the private parts of k.
func (k *Key) Wipe() {
	for _, b := range [][]byte{k.D, k.P, k.Q, k.DP, k.DQ, k.PQ, k.Secret} {
		clear(b)
	}
}

// Open checks the KCV and the CMAC, decrypts the blob and parses the key
// fields, in the order the firmware does.
func (bl *Blob) Open(dkek []byte) (*Key, error) {
	k := Derive(dkek)
	defer k.Wipe()
	if subtle.ConstantTimeCompare(k.KCV[:], bl.KCV[:]) != 1 {
		return nil, fmt.Errorf("%w: blob KCV %X, DKEK KCV %X", ErrWrongDKEK, bl.KCV, k.KCV)
	}
	if err := bl.CheckMAC(k); err != nil {
		return nil, err
	}
	blk, err := aes.NewCipher(k.Enc[:])
	if err != nil {
		return nil, err
	}
	plain := make([]byte, len(bl.Encrypted))
	cipher.NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(plain, bl.Encrypted)
	defer clear(plain)
	return parsePlain(bl.Type, plain)
}

func parsePlain(t KeyType, p []byte) (*Key, error) {
	if len(p) < 10 {
		return nil, fmt.Errorf("%w: decrypted part too short", ErrBlob)
	}
	key := &Key{Type: t, Bits: int(binary.BigEndian.Uint16(p[8:10]))}
	r := p[10:]
	next := func(name string) ([]byte, error) {
		if len(r) < 2 {
			return nil, fmt.Errorf("%w: truncated before %s", ErrBlob, name)
		}
		n := int(binary.BigEndian.Uint16(r))
		if n > len(r)-2 {
			return nil, fmt.Errorf("%w: %s length %d exceeds the %d bytes left", ErrBlob, name, n, len(r)-2)
		}
		v := bytes.Clone(r[2 : 2+n])
		r = r[2+n:]
		return v, nil
	}
	var err error
	fill := func(names []string, dst []*[]byte) error {
		for i, d := range dst {
			if *d, err = next(names[i]); err != nil {
				return err
			}
		}
		return nil
	}
	switch t {
	case TypeRSA:
		err = fill([]string{"D", "N", "E"}, []*[]byte{&key.D, &key.N, &key.E})
	case TypeRSACRT:
		err = fill([]string{"DP", "DQ", "P", "PQ", "Q", "N", "E"}, []*[]byte{&key.DP, &key.DQ, &key.P, &key.PQ, &key.Q, &key.N, &key.E})
	case TypeEC:
		err = fill([]string{"A", "B", "P", "order", "G", "D", "Q"}, []*[]byte{&key.A, &key.B, &key.ECP, &key.ECN, &key.G, &key.D, &key.ECQ})
	case TypeAES:
		n := key.Bits
		if n != 16 && n != 24 && n != 32 && n != 64 {
			return nil, fmt.Errorf("%w: AES key length %d", ErrBlob, n)
		}
		if len(r) < n {
			return nil, fmt.Errorf("%w: AES key truncated", ErrBlob)
		}
		key.Secret = bytes.Clone(r[:n])
		key.Bits = 8 * n
		r = r[n:]
	}
	if err != nil {
		key.Wipe()
		return nil, err
	}
	if !validPadding(r) {
		key.Wipe()
		return nil, fmt.Errorf("%w: bad padding after the key fields", ErrBlob)
	}
	return key, nil
}

// validPadding accepts what the firmware appends: nothing, or 80 then
// zeros up to the block boundary.
func validPadding(r []byte) bool {
	if len(r) == 0 {
		return true
	}
	if len(r) >= 16 || r[0] != 0x80 {
		return false
	}
	for _, c := range r[1:] {
		if c != 0 {
			return false
		}
	}
	return true
}

// Seal encodes key as a blob under dkek, as the firmware's WRAP KEY does:
// 8 random bytes, then the key size and fields, padded with 80 00.. only
// when not block aligned; the default OID of the type; allowed as the
// allowed-algorithms list; empty access conditions and key OID.
func Seal(dkek []byte, key *Key, allowed []byte, rnd io.Reader) ([]byte, error) {
	k := Derive(dkek)
	defer k.Wipe()
	var oid []byte
	plain := make([]byte, 8, 1024)
	if _, err := io.ReadFull(rnd, plain); err != nil {
		return nil, err
	}
	defer func() { clear(plain) }()
	put := func(v []byte) {
		plain = binary.BigEndian.AppendUint16(plain, uint16(len(v)))
		plain = append(plain, v...)
	}
	switch key.Type {
	case TypeRSA:
		oid = OIDRSA
		plain = binary.BigEndian.AppendUint16(plain, uint16(key.Bits))
		put(key.D)
		put(key.N)
		put(key.E)
	case TypeEC:
		oid = OIDEC
		plain = binary.BigEndian.AppendUint16(plain, uint16(key.Bits))
		for _, v := range [][]byte{key.A, key.B, key.ECP, key.ECN, key.G, key.D, key.ECQ} {
			put(v)
		}
	case TypeAES:
		oid = OIDAES
		plain = binary.BigEndian.AppendUint16(plain, uint16(len(key.Secret)))
		plain = append(plain, key.Secret...)
	default:
		return nil, fmt.Errorf("cannot wrap a key of %v", key.Type)
	}
	if len(plain)%16 != 0 {
		plain = append(plain, 0x80)
		for len(plain)%16 != 0 {
			plain = append(plain, 0)
		}
	}
	out := append([]byte{}, k.KCV[:]...)
	out = append(out, byte(key.Type))
	out = binary.BigEndian.AppendUint16(out, uint16(len(oid)))
	out = append(out, oid...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(allowed)))
	out = append(out, allowed...)
	out = append(out, 0, 0, 0, 0)
	blk, err := aes.NewCipher(k.Enc[:])
	if err != nil {
		return nil, err
	}
	enc := make([]byte, len(plain))
	cipher.NewCBCEncrypter(blk, make([]byte, 16)).CryptBlocks(enc, plain)
	out = append(out, enc...)
	m, err := cmac(k.MAC[:], out)
	if err != nil {
		return nil, err
	}
	return append(out, m[:]...), nil
}
