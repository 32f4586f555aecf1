package wrap

import (
	"bytes"
	"errors"
	"fmt"

	tlvpkg "github.com/pico-hsm-tool/pico-hsm-tool/internal/tlv"
)

// File is sc-hsm-tool's wrapped-key file (sc-hsm-tool.c wrap_key and
// unwrap_key):
//
//	30 L { 04 L <key blob>, <PRKD as stored in EF C4xx>, <certificate or
//	CV request as stored in EF CExx> }
//
// The PRKD and the certificate are optional and kept as raw TLVs, exactly
// as read from the device, so that they can be written back unchanged.
type File struct {
	Blob []byte
	PRKD []byte
	Cert []byte
}

// ErrFile is wrapped by every error about a malformed wrapped-key file.
var ErrFile = errors.New("not a wrapped-key file")

// maxFile bounds what ParseFile accepts (sc-hsm-tool.c MAX_WRAPPED_KEY is
// 4096 + 256 + 1024; we allow more for large certificates).
const maxFile = 64 * 1024

// ParseFile parses a wrapped-key file. Trailing bytes after the outer
// SEQUENCE, or inside it after the three elements, are errors.
func ParseFile(b []byte) (*File, error) {
	if len(b) > maxFile {
		return nil, fmt.Errorf("%w: %d bytes is too large", ErrFile, len(b))
	}
	tag, body, rest, err := readTLV(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFile, err)
	}
	if tag != 0x30 {
		return nil, fmt.Errorf("%w: starts with tag %02X, not a SEQUENCE", ErrFile, tag)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the SEQUENCE", ErrFile, len(rest))
	}
	tag, blob, body, err := readTLV(body)
	if err != nil {
		return nil, fmt.Errorf("%w: key blob: %v", ErrFile, err)
	}
	if tag != 0x04 {
		return nil, fmt.Errorf("%w: first element has tag %02X, not an OCTET STRING key blob", ErrFile, tag)
	}
	f := &File{Blob: bytes.Clone(blob)}
	for _, dst := range []*[]byte{&f.PRKD, &f.Cert} {
		if len(body) == 0 {
			break
		}
		_, _, next, err := readTLV(body)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFile, err)
		}
		*dst = bytes.Clone(body[:len(body)-len(next)])
		body = next
	}
	if len(body) != 0 {
		return nil, fmt.Errorf("%w: %d unexpected bytes after the certificate", ErrFile, len(body))
	}
	return f, nil
}

// Marshal encodes f as sc-hsm-tool writes it.
func (f *File) Marshal() []byte {
	inner := tlv(0x04, f.Blob)
	inner = append(inner, f.PRKD...)
	inner = append(inner, f.Cert...)
	return tlv(0x30, inner)
}

// readTLV reads one BER-TLV (internal/tlv.Read), never reading past b.
func readTLV(b []byte) (tag int, value, rest []byte, err error) {
	e, rest, err := tlvpkg.Read(b)
	var oe *tlvpkg.OverflowError
	if errors.As(err, &oe) {
		return 0, nil, nil, fmt.Errorf("length %d exceeds the %d bytes left", oe.Length, oe.Left)
	}
	if err != nil {
		return 0, nil, nil, err
	}
	return int(e.Tag), e.Value, rest, nil
}

func tlv(tag byte, v []byte) []byte { return tlvpkg.Append(nil, uint32(tag), v) }
