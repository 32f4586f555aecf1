// Package tlv reads and writes BER-TLV elements with definite lengths, the
// encoding shared by CV certificates (BSI TR-03110 part 3 appendix D.2),
// PKCS#15 descriptions (X.690 DER) and sc-hsm-tool's wrapped-key files.
// Every read is bounds-checked, so hostile input yields an error, never a
// panic or a read past the input.
package tlv

import (
	"errors"
	"fmt"
)

// ErrTruncated means the input ends inside an element.
var ErrTruncated = errors.New("truncated tlv")

// OverflowError is an element whose length runs past the end of the input.
// It matches ErrTruncated.
type OverflowError struct {
	Length, Left int
}

func (e *OverflowError) Error() string {
	return fmt.Sprintf("truncated tlv: length %d exceeds the %d bytes left", e.Length, e.Left)
}

func (e *OverflowError) Unwrap() error { return ErrTruncated }

// TLV is one element: its tag (one to three octets, as a number), its
// contents and its complete encoding.
type TLV struct {
	Tag   uint32
	Value []byte
	Full  []byte
}

// Read splits the first element off b (X.690 8.1.2 and 8.1.3). Tags of up
// to three octets and lengths of up to four octets are accepted;
// indefinite lengths are refused: neither OpenSC nor the firmware writes
// them.
func Read(b []byte) (TLV, []byte, error) {
	if len(b) < 2 {
		return TLV{}, nil, ErrTruncated
	}
	tag := uint32(b[0])
	off := 1
	if b[0]&0x1f == 0x1f {
		for {
			if off >= len(b) {
				return TLV{}, nil, ErrTruncated
			}
			if off == 3 {
				return TLV{}, nil, errors.New("tag longer than three octets")
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
		return TLV{}, nil, ErrTruncated
	}
	n := int(b[off])
	off++
	if n&0x80 != 0 {
		k := n & 0x7f
		if k == 0 {
			return TLV{}, nil, errors.New("indefinite length not allowed")
		}
		if k > 4 {
			return TLV{}, nil, fmt.Errorf("length of %d octets not supported", k)
		}
		if len(b)-off < k {
			return TLV{}, nil, ErrTruncated
		}
		n = 0
		for _, c := range b[off : off+k] {
			if n > (1<<23)-1 {
				return TLV{}, nil, errors.New("length too large")
			}
			n = n<<8 | int(c)
		}
		off += k
	}
	if n > len(b)-off {
		return TLV{}, nil, &OverflowError{Length: n, Left: len(b) - off}
	}
	end := off + n
	return TLV{Tag: tag, Value: b[off:end:end], Full: b[:end:end]}, b[end:], nil
}

// Append appends the tag (one to three octets), the minimal length
// (X.690 10.1) and the contents.
func Append(dst []byte, tag uint32, content []byte) []byte {
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
