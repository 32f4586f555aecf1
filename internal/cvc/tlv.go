package cvc

import (
	tlvpkg "github.com/pico-hsm-tool/pico-hsm-tool/internal/tlv"
)

// This file holds the BER-TLV reader and writer for CV certificates
// (BSI TR-03110 part 3, appendix D.2: tags of one or two octets such as 42,
// 5F20 and 7F21, definite lengths). The firmware writes lengths with
// format_tlv_len (src/hsm/cvc.c callers, pico-keys-sdk asn1.c): one octet
// below 128, 81 xx up to 255 and 82 xx xx above, which is also the DER
// minimum that appendTLV produces.

var errTruncated = tlvpkg.ErrTruncated

// tlv is one decoded element: its tag (one to three octets, as a number),
// its contents and its complete encoding.
type tlv struct {
	tag  uint32
	val  []byte
	full []byte
}

// readTLV splits the first element off b (internal/tlv.Read).
func readTLV(b []byte) (tlv, []byte, error) {
	e, rest, err := tlvpkg.Read(b)
	if err != nil {
		return tlv{}, nil, err
	}
	return tlv{tag: e.Tag, val: e.Value, full: e.Full}, rest, nil
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
	return tlvpkg.Append(dst, tag, content)
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
