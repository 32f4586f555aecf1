package hsm

import (
	"fmt"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// File identifier prefixes of the SmartCard-HSM (card-sc-hsm.h).
const (
	PrefixKey      byte   = 0xCC // private or secret key
	PrefixPRKD     byte   = 0xC4 // PKCS#15 private key description
	PrefixCD       byte   = 0xC8 // PKCS#15 certificate description
	PrefixDCOD     byte   = 0xC9 // PKCS#15 data container description
	PrefixEECert   byte   = 0xCE // end-entity certificate or CV request
	PrefixCACert   byte   = 0xCA
	PrefixData     byte   = 0xCD
	FIDTokenInfo   uint16 = 0x2F03
	FIDDir         uint16 = 0x2F00
	FIDDeviceCert  uint16 = 0x2F02
	maxReadChunk          = 65536
	maxUpdateChunk        = 0xFF00 // keeps the extended Lc in range with the tags
)

// KeyFID returns the file ID of key reference ref with the given prefix.
func KeyFID(prefix, ref byte) uint16 { return uint16(prefix)<<8 | uint16(ref) }

// ListObjects lists the file IDs on the device with ENUMERATE OBJECTS
// (80 58 00 00, Le extended; card-sc-hsm.c sc_hsm_list_files). The answer is
// a sequence of 2-byte FIDs (transcripts/errors/p01-token-info.txt [17]).
func (d *Device) ListObjects() ([]uint16, error) {
	data, err := d.ch.Do(apdu.Command{CLA: 0x80, INS: 0x58, Ne: 65536, Name: "LIST KEYS"})
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	if len(data)%2 != 0 {
		return nil, fmt.Errorf("list objects: odd-length answer of %d bytes", len(data))
	}
	fids := make([]uint16, 0, len(data)/2)
	for i := 0; i < len(data); i += 2 {
		fids = append(fids, uint16(data[i])<<8|uint16(data[i+1]))
	}
	return fids, nil
}

// offsetTLV is the offset data object 54 02 hi lo that READ BINARY (B1) and
// UPDATE BINARY (D7) carry in the odd-instruction form (ISO 7816-4 section
// 11.3.3; card-sc-hsm.c sc_hsm_read_binary and sc_hsm_update_binary).
func offsetTLV(off int) []byte { return []byte{0x54, 0x02, byte(off >> 8), byte(off)} }

// ReadFile reads the whole transparent file fid with READ BINARY (B1),
// P1-P2 = fid, asking for as much as an extended APDU allows so that most
// files take one command.
func (d *Device) ReadFile(fid uint16) ([]byte, error) {
	var out []byte
	for {
		if len(out) > 0xFFFF {
			return nil, fmt.Errorf("read file %04X: larger than the 65535 bytes an offset can address", fid)
		}
		r, err := d.ch.Transmit(apdu.Command{INS: 0xB1, P1: byte(fid >> 8), P2: byte(fid), Data: offsetTLV(len(out)), Ne: maxReadChunk, Name: "READ BINARY"})
		if err != nil {
			return nil, err
		}
		if r.SW == apdu.SWWarningEOF {
			return append(out, r.Data...), nil
		}
		if err := r.Err(); err != nil {
			return nil, fileErr("read", fid, err)
		}
		out = append(out, r.Data...)
		if len(r.Data) == 0 || len(r.Data) < maxReadChunk {
			return out, nil
		}
	}
}

// UpdateFile writes data to fid from offset 0 with UPDATE BINARY (D7) and
// the tags 54 (offset) and 53 (data), creating the file if needed, in
// chunks that fit one extended APDU (card-sc-hsm.c sc_hsm_update_binary).
func (d *Device) UpdateFile(fid uint16, data []byte) error {
	off := 0
	for {
		n := min(len(data)-off, maxUpdateChunk)
		body := append(offsetTLV(off), berTLV(0x53, data[off:off+n])...)
		if _, err := d.ch.Do(apdu.Command{INS: 0xD7, P1: byte(fid >> 8), P2: byte(fid), Data: body, Name: "UPDATE BINARY"}); err != nil {
			return fileErr("write", fid, err)
		}
		off += n
		if off >= len(data) {
			return nil
		}
	}
}

// DeleteFile deletes fid with DELETE FILE (E4 02 00, data = FID; recorded
// in transcripts/other/12-keygen-rsa2048.txt [31]).
func (d *Device) DeleteFile(fid uint16) error {
	if _, err := d.ch.Do(apdu.Command{INS: 0xE4, P1: 0x02, Data: []byte{byte(fid >> 8), byte(fid)}, Name: "DELETE FILE"}); err != nil {
		return fileErr("delete", fid, err)
	}
	return nil
}

// GetChallenge returns n random bytes from the device (84).
func (d *Device) GetChallenge(n int) ([]byte, error) {
	data, err := d.ch.Do(apdu.Command{INS: 0x84, Ne: n, Name: "GET CHALLENGE"})
	if err != nil {
		return nil, fmt.Errorf("get challenge: %w", err)
	}
	if len(data) != n {
		return nil, fmt.Errorf("get challenge: asked for %d bytes, got %d", n, len(data))
	}
	return data, nil
}

func fileErr(op string, fid uint16, err error) error {
	if apdu.IsStatus(err, apdu.SWFileNotFound) {
		return fmt.Errorf("%s file %04X: %s not found: %w", op, fid, describeFID(fid), err)
	}
	return fmt.Errorf("%s file %04X (%s): %w", op, fid, describeFID(fid), err)
}

func describeFID(fid uint16) string {
	ref := byte(fid)
	switch byte(fid >> 8) {
	case PrefixKey:
		return fmt.Sprintf("key reference %d", ref)
	case PrefixPRKD:
		return fmt.Sprintf("private key description of key reference %d", ref)
	case PrefixEECert:
		return fmt.Sprintf("certificate of key reference %d", ref)
	}
	switch fid {
	case FIDTokenInfo:
		return "EF.TokenInfo"
	case FIDDir:
		return "EF.DIR"
	case FIDDeviceCert:
		return "device certificate"
	}
	return "file"
}

// berTLV encodes tag, BER length (X.690 section 8.1.3) and value.
func berTLV(tag byte, v []byte) []byte {
	n := len(v)
	var b []byte
	switch {
	case n < 0x80:
		b = []byte{tag, byte(n)}
	case n < 0x100:
		b = []byte{tag, 0x81, byte(n)}
	case n < 0x10000:
		b = []byte{tag, 0x82, byte(n >> 8), byte(n)}
	default:
		b = []byte{tag, 0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
	return append(b, v...)
}

// FileInfo is what SELECT of a file tells (its FCP).
type FileInfo struct {
	Size int
	// Meta holds the key metadata TLVs of a key file (tag A5 of the FCP;
	// pico-keys-sdk file.c process_fci): 91 allowed algorithms, 92 key
	// domain, 90 use counter.
	Meta []byte
}

// AllowedAlgorithms returns the key's allowed algorithm list (meta tag 91)
// and whether it has one; without one every algorithm is allowed.
func (f FileInfo) AllowedAlgorithms() ([]byte, bool) {
	return findTLV(f.Meta, 0x91)
}

// SelectFile selects fid (00 A4 00 00 with the FID, Le 256) and parses its FCP.
func (d *Device) SelectFile(fid uint16) (FileInfo, error) {
	fcp, err := d.ch.Do(apdu.Command{INS: 0xA4, Data: []byte{byte(fid >> 8), byte(fid)}, Ne: 256, Name: "SELECT FILE"})
	if err != nil {
		return FileInfo{}, fileErr("select", fid, err)
	}
	body, ok := findTLV(fcp, 0x62)
	if !ok {
		return FileInfo{}, fmt.Errorf("select file %04X: answer is not an FCP: % X", fid, fcp)
	}
	var fi FileInfo
	if v, ok := findTLV(body, 0x81); ok && len(v) == 2 {
		fi.Size = int(v[0])<<8 | int(v[1])
	}
	fi.Meta, _ = findTLV(body, 0xA5)
	return fi, nil
}
