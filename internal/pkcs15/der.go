package pkcs15

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/tlv"
)

// This file holds the small DER reader and writer the PRKD codec needs. Only
// what PKCS#15 descriptions use is supported: single-byte tags (universal or
// context class) and definite lengths of up to four bytes (X.690 8.1.2 and
// 8.1.3). Every read is bounds-checked, so hostile input yields an error.

var errTruncated = tlv.ErrTruncated

// element is one decoded TLV: its tag byte, its contents and the complete
// encoding (tag, length and contents).
type element struct {
	tag  byte
	val  []byte
	full []byte
}

// readElement splits the first TLV off b (internal/tlv.Read). Multi-byte
// tags are rejected: PKCS#15 descriptions use none.
func readElement(b []byte) (element, []byte, error) {
	if len(b) > 0 && b[0]&0x1f == 0x1f {
		return element{}, nil, fmt.Errorf("unsupported multi-byte tag 0x%02x", b[0])
	}
	e, rest, err := tlv.Read(b)
	if err != nil {
		return element{}, nil, err
	}
	return element{tag: byte(e.Tag), val: e.Value, full: e.Full}, rest, nil
}

// readAll splits b into its consecutive TLVs.
func readAll(b []byte) ([]element, error) {
	var out []element
	for len(b) > 0 {
		e, rest, err := readElement(b)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		b = rest
	}
	return out, nil
}

// appendTLV appends tag, a minimal DER length (X.690 10.1) and content.
func appendTLV(dst []byte, tag byte, content []byte) []byte {
	return tlv.Append(dst, uint32(tag), content)
}

// encodeInt returns the minimal two's-complement contents of an INTEGER
// (X.690 8.3), the form OpenSC's asn1_encode_integer produces.
func encodeInt(v int) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		next := v >> 8
		if (next == 0 && b[0]&0x80 == 0) || (next == -1 && b[0]&0x80 != 0) {
			return b
		}
		v = next
	}
}

// decodeInt decodes INTEGER contents of at most four significant octets.
// Redundant leading octets are accepted (the caller keeps the original
// spelling for round trips).
func decodeInt(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("empty integer")
	}
	// Strip redundant sign octets before checking the size.
	for len(b) > 1 && ((b[0] == 0 && b[1]&0x80 == 0) || (b[0] == 0xff && b[1]&0x80 != 0)) {
		b = b[1:]
	}
	if len(b) > 4 {
		return 0, errors.New("integer out of range")
	}
	v := int64(int8(b[0]))
	for _, c := range b[1:] {
		v = v<<8 | int64(c)
	}
	return int(v), nil
}

// encodeBits returns the contents of a DER BIT STRING for a named-bit list
// (X.690 11.2.2: trailing zero bits removed), with bit i of v as the i-th
// bit of the string, counted from the most significant bit of the first
// octet. This is what OpenSC's encode_bit_field produces.
func encodeBits(v uint32) []byte {
	n := 0 // number of significant bits
	for i := 31; i >= 0; i-- {
		if v&(1<<uint(i)) != 0 {
			n = i + 1
			break
		}
	}
	nbytes := (n + 7) / 8
	out := make([]byte, 1+nbytes)
	out[0] = byte(nbytes*8 - n)
	for i := 0; i < n; i++ {
		if v&(1<<uint(i)) != 0 {
			out[1+i/8] |= 0x80 >> uint(i%8)
		}
	}
	return out
}

// decodeBits decodes BIT STRING contents into a named-bit value (the
// inverse of encodeBits). Bits declared unused by the first octet are
// ignored even when they are set, as X.690 8.6.2 requires; the firmware
// sets one in its AES description (see NewFirmware).
func decodeBits(b []byte) (uint32, error) {
	if len(b) == 0 {
		return 0, errors.New("empty bit string")
	}
	unused := int(b[0])
	if unused > 7 {
		return 0, fmt.Errorf("bit string with %d unused bits", unused)
	}
	if len(b) == 1 && unused != 0 {
		return 0, errors.New("empty bit string with unused bits")
	}
	if len(b) > 5 {
		return 0, errors.New("bit string too long")
	}
	total := (len(b)-1)*8 - unused
	var v uint32
	for i := 0; i < total; i++ {
		if b[1+i/8]&(0x80>>uint(i%8)) != 0 {
			v |= 1 << uint(i)
		}
	}
	return v, nil
}

func validUTF8(b []byte) bool { return utf8.Valid(b) }
