package cvc

import (
	"errors"
	"fmt"
)

// This file holds the BER-TLV reader and writer for CV certificates
// (BSI TR-03110 part 3, appendix D.2: tags of one or two octets such as 42,
// 5F20 and 7F21, definite lengths). The firmware writes lengths with
// format_tlv_len (src/hsm/cvc.c callers, pico-keys-sdk asn1.c): one octet
// below 128, 81 xx up to 255 and 82 xx xx above, which is also the DER
// minimum that appendTLV produces.

var errTruncated = errors.New("truncated tlv")

// tlv is one decoded element: its tag (one to three octets, as a number),
// its contents and its complete encoding.
type tlv struct {
	tag  uint32
	val  []byte
	full []byte
}

// readTLV splits the first element off b. Tags of up to three octets and
// lengths of up to four octets are accepted; every slice is bounds-checked.
func readTLV(b []byte) (tlv, []byte, error) {
	if len(b) < 2 {
		return tlv{}, nil, errTruncated
	}
	tag := uint32(b[0])
	off := 1
	if b[0]&0x1f == 0x1f {
		for {
			if off >= len(b) {
				return tlv{}, nil, errTruncated
			}
			if off == 3 {
				return tlv{}, nil, errors.New("tag longer than three octets")
			}
			c := b[off]
			tag = tag<<8 | uint32(c)
			off++
			if c&0x80 == 0 {
				break
			}
		}
	}
	if off >= len(b) {
		return tlv{}, nil, errTruncated
	}
	n := int(b[off])
	off++
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 {
			return tlv{}, nil, errors.New("indefinite length not allowed")
		}
		if k > 4 {
			return tlv{}, nil, fmt.Errorf("length of %d octets not supported", k)
		}
		if len(b)-off < k {
			return tlv{}, nil, errTruncated
		}
		n = 0
		for _, c := range b[off : off+k] {
			if n > (1<<23)-1 {
				return tlv{}, nil, errors.New("length too large")
			}
			n = n<<8 | int(c)
		}
		off += k
	}
	if n > len(b)-off {
		return tlv{}, nil, errTruncated
	}
	end := off + n
	return tlv{tag: tag, val: b[off:end:end], full: b[:end:end]}, b[end:], nil
}

// readAll splits b into consecutive elements.
func readAll(b []byte) ([]tlv, error) {
	var out []tlv
	for len(b) > 0 {
		e, rest, err := readTLV(b)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		b = rest
	}
	return out, nil
}

// appendTLV appends the tag (one to three octets), a minimal length and the
// contents.
func appendTLV(dst []byte, tag uint32, content []byte) []byte {
	switch {
	case tag > 0xffff:
		dst = append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xff:
		dst = append(dst, byte(tag>>8), byte(tag))
	default:
		dst = append(dst, byte(tag))
	}
	n := len(content)
	switch {
	case n < 0x80:
		dst = append(dst, byte(n))
	case n <= 0xff:
		dst = append(dst, 0x81, byte(n))
	case n <= 0xffff:
		dst = append(dst, 0x82, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, content...)
}

// minimalInt returns the big-endian octets of v without leading zeros (one
// zero octet for 0): the unsigned encoding TR-03110 uses for exponents and
// cofactors, and mbedtls_mpi_write_binary with mbedtls_mpi_size.
func minimalInt(v uint64) []byte {
	var b []byte
	for {
		b = append([]byte{byte(v)}, b...)
		v >>= 8
		if v == 0 {
			return b
		}
	}
}

// derInt returns the minimal two's-complement contents of an ASN.1 INTEGER
// (X.690 8.3), as OpenSC's asn1_encode_integer writes the key size.
func derInt(v int) []byte {
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
