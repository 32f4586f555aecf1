package sim

import (
	"bytes"
	"io"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// File identifiers of the firmware's static entries (pico-hsm files.h).
const (
	fidDir       uint16 = 0x2F00 // EF.DIR, built on each read
	fidDevCert   uint16 = 0x2F02 // EF_TERMCA: device CV request and certificate
	fidTokenInfo uint16 = 0x2F03 // EF.TokenInfo, built on each read
	fidDevPRKD   uint16 = 0xC400 // PRKD of the device key
	fidDevKey    uint16 = 0xCC00 // device key
	fidDevEE     uint16 = 0xCE00 // device CV request
	prefixKey    byte   = 0xCC
	maxFileSize         = 4032 // cmd_update_ef.c: offset+length limit
)

// factoryState is the device as it comes up the first time, with an empty
// flash: a master key (MKEK) and the static entries, which are empty until
// INITIALIZE creates the device key and its certificates.
func factoryState(rnd io.Reader) (*state, error) {
	st := &state{
		Version:    stateVersion,
		PINTries:   defaultPINRetries,
		SOPINTries: soPINRetries,
		Files: map[string][]byte{
			fidKey(fidDevCert): {},
			fidKey(fidDevPRKD): {},
			fidKey(fidDevEE):   {},
		},
		Keys: map[byte]*key{},
	}
	d := &Device{st: st, rand: rnd}
	if err := d.newMKEK(); err != nil {
		return nil, err
	}
	d.setPool(nil)
	d.bootFiles()
	return st, nil
}

func fidKey(fid uint16) string {
	const hexd = "0123456789ABCDEF"
	return string([]byte{hexd[fid>>12], hexd[fid>>8&15], hexd[fid>>4&15], hexd[fid&15]})
}

// dispatch routes a command by INS as pico-hsm sc_hsm.c's command table
// does; the class byte is not checked there. A handler may raise Ne, as
// the firmware's do: key-pair generation sent without Le answers the whole
// CV request (cmd_keypair_gen.c), and an RSA signature always answers the
// whole signature (cmd_signature.c sets apdu.ne to the key size).
func (d *Device) dispatch(cp *apdu.Command) ([]byte, uint16) {
	c := *cp
	switch c.INS {
	case 0xA4:
		return d.cmdSelect(c)
	case 0x20:
		return nil, d.cmdVerify(c)
	case 0x24:
		return nil, d.cmdChangePIN(c)
	case 0x2C:
		return nil, d.cmdResetRetry(c)
	case 0x84:
		return d.cmdChallenge(c)
	case 0xB0, 0xB1:
		return d.cmdReadBinary(c)
	case 0xD7:
		return nil, d.cmdUpdateBinary(c)
	case 0xE4:
		return nil, d.cmdDeleteFile(c)
	case 0x50:
		return d.cmdInitialize(c)
	case 0x52:
		return d.cmdImportDKEK(c)
	case 0x58:
		return d.cmdListKeys(c)
	case 0x46:
		data, s := d.cmdKeyPairGen(c)
		if cp.Ne == 0 {
			cp.Ne = len(data)
		}
		return data, s
	case 0x48:
		return nil, d.cmdKeyGen(c)
	case 0x72:
		return d.cmdWrapKey(c)
	case 0x74:
		return nil, d.cmdUnwrapKey(c)
	case 0x68:
		data, s := d.cmdSign(c)
		if k := d.st.Keys[c.P1]; s == apdu.SWOK && k != nil && k.Kind == "rsa" {
			cp.Ne = len(data)
		}
		return data, s
	case 0x62:
		return d.cmdDecrypt(c)
	case 0x78:
		return d.cmdCipherSym(c)
	case 0x76:
		return d.cmdDeriveAsym(c)
	case 0x64:
		return d.cmdExtras(c)
	case 0x54:
		return d.cmdPUKAuth(c)
	case 0x22:
		return d.cmdMSE(c)
	case 0x2A:
		return d.cmdPSO(c)
	case 0x82:
		return d.cmdExternalAuth(c)
	case 0x86:
		return d.cmdGeneralAuth(c)
	case 0x4A:
		return d.cmdBIPSLIP(c)
	}
	return nil, apdu.SWINSNotSupported
}

// selectApplication is SELECT of the SmartCard-HSM AID with P2 00 or 04,
// which the SDK handles before the application (main.c select_app): it
// starts a new session (sc_hsm.c init_sc_hsm clears the PIN sessions) and
// answers the application's FCP. Another AID answers 6A82 and leaves the
// current application selected.
func (d *Device) selectApplication(c apdu.Command) ([]byte, uint16) {
	if len(c.Data) < len(AID) || !bytes.Equal(c.Data[:len(AID)], AID) {
		return nil, apdu.SWFileNotFound
	}
	*d.sess = session{Selected: true}
	d.auth = authRAM{}
	d.rescanFiles()
	if len(c.Data) != len(AID) {
		return nil, apdu.SWOK
	}
	return d.selectFCP(), apdu.SWOK
}

// cmdSelect implements SELECT (A4) inside the application
// (pico-keys-sdk file.c, pico-hsm cmd_select.c). A 2-byte FID is looked up
// first, whatever P1 says (a DF such as 3F00 is not found that way); then
// P1 decides: 00 without data selects the MF, 04 a DF by name, 08 and 09 a
// path. Only then is P2 checked: (P2 & FC) must be 00 or 04, otherwise 6A86
// and nothing changes, which is how SELECT of the AID with P2=0C answers
// 6A86 while the application stays selected (transcripts/errors/p08).
func (d *Device) cmdSelect(c apdu.Command) ([]byte, uint16) {
	var fid uint16
	found, isDF := false, false
	if len(c.Data) == 2 {
		f := uint16(c.Data[0])<<8 | uint16(c.Data[1])
		if f != 0 {
			if _, ok := d.file(f); !ok {
				return nil, apdu.SWFileNotFound
			}
			fid, found = f, true
		}
	}
	if !found {
		switch c.P1 {
		case 0x00:
			if len(c.Data) != 0 {
				return nil, apdu.SWFileNotFound
			}
			fid, isDF = 0x3F00, true
		case 0x04:
			if !bytes.Equal(c.Data, AID) {
				return nil, apdu.SWFileNotFound
			}
			fid, isDF = 0x0000, true
		case 0x08, 0x09:
			if len(c.Data) == 0 || len(c.Data)%2 != 0 {
				return nil, apdu.SWFileNotFound
			}
			for i := 0; i < len(c.Data); i += 2 {
				f := uint16(c.Data[i])<<8 | uint16(c.Data[i+1])
				if _, ok := d.file(f); !ok {
					return nil, apdu.SWFileNotFound
				}
				fid = f
			}
		case 0x01, 0x02, 0x03:
			return nil, apdu.SWFileNotFound
		default:
			return nil, apdu.SWWrongP1P2
		}
	}
	if c.P2&0xFC != 0x00 && c.P2&0xFC != 0x04 {
		return nil, apdu.SWWrongP1P2
	}
	var fcp []byte
	switch {
	case isDF && fid == 0x0000:
		fcp = d.selectFCP()
	case isDF:
		fcp = []byte{0x62, 0x0E, 0x81, 0x02, 0x00, 0x00, 0x82, 0x01, 0x38, 0x83, 0x02, 0x3F, 0x00, 0x8A, 0x01, 0x05}
	default:
		body, _ := d.file(fid)
		fcp = fileFCP(fid, len(body))
		if k, ok := d.st.Keys[byte(fid)]; ok && byte(fid>>8) == prefixKey && len(k.Meta) > 0 {
			// Key metadata rides in the FCP (pico-keys-sdk file.c
			// process_fci: A5 81 len, the key's meta TLVs from EF E010).
			fcp = append(fcp, 0xA5, 0x81, byte(len(k.Meta)))
			fcp = append(fcp, k.Meta...)
			fcp[1] = byte(len(fcp) - 2)
		}
		d.sess.CurFID, d.sess.HasCur = fid, true
	}
	return fcp, apdu.SWOK
}

// selectFCP is the FCP template of the application, as recorded in
// transcripts/00-status-factory.txt [3] and 05-status-after-initialize.txt [3]:
//
//	62 22 81 02 00 00 82 01 01 83 02 00 00 84 0B 2B 06 01 04 01 81 C3 1F 02 01 00
//	      8A 01 05 85 05 <options hi> <options lo> FF <major> <minor>
//
// Tag 84 is the firmware's: its copy of the name starts one byte late.
func (d *Device) selectFCP() []byte {
	opts := d.st.Options
	inner := []byte{0x81, 0x02, 0x00, 0x00, 0x82, 0x01, 0x01, 0x83, 0x02, 0x00, 0x00, 0x84, byte(len(AID))}
	inner = append(inner, AID[1:]...)
	inner = append(inner, 0x00, 0x8A, 0x01, 0x05, 0x85, 0x05, byte(opts>>8), byte(opts), 0xFF, VersionMajor, VersionMinor)
	return append([]byte{0x62, byte(len(inner))}, inner...)
}

// fileFCP is the FCP of an elementary file, as recorded in
// transcripts/errors/p01-token-info.txt: 62 0E 81 02 <size> 82 01 <type>
// 83 02 <fid> 8A 01 05. The descriptor byte is 08 for the firmware's
// internal entries (the device key's files) and 01 for working files.
func fileFCP(fid uint16, size int) []byte {
	desc := byte(0x01)
	if fid == fidDevPRKD || fid == fidDevEE || fid == fidDevKey {
		desc = 0x08
	}
	return []byte{0x62, 0x0E, 0x81, 0x02, byte(size >> 8), byte(size), 0x82, 0x01, desc,
		0x83, 0x02, byte(fid >> 8), byte(fid), 0x8A, 0x01, 0x05}
}

// emptyStatic are the firmware's static working EFs that never hold data
// (pico-hsm files.c file_entries): EF.ATR 2F01 and the PKCS#15 files ODF
// 5031, TokenInfo 5032 and UnusedSpace 5033. They exist from the first
// start: SELECT answers an FCP of size 0 and READ BINARY 9000 without data
// (transcripts/differential/fw-p1.txt [28], [89], [93]; fw-p4.txt [18] to
// [23]), which is what lets OpenSC bind PKCS#15 on a factory-new device.
var emptyStatic = map[uint16]bool{0x2F01: true, 0x5031: true, 0x5032: true, 0x5033: true}

// file returns a file's content and whether it exists. EF.DIR and
// EF.TokenInfo are built on each read (the firmware's function files); the
// empty static EFs always exist; key files exist while their key does,
// except the device key's CC00, a static entry that exists even before
// INITIALIZE creates the key, and they never show their content.
func (d *Device) file(fid uint16) ([]byte, bool) {
	switch fid {
	case fidDir:
		return efDIR, true
	case fidTokenInfo:
		return efTokenInfo, true
	}
	if b, ok := d.st.Files[fidKey(fid)]; ok {
		return b, true
	}
	if emptyStatic[fid] {
		return nil, true
	}
	if byte(fid>>8) == prefixKey {
		k, ok := d.st.Keys[byte(fid)]
		if !ok {
			return nil, fid == fidDevKey
		}
		return make([]byte, k.storedSize()), true
	}
	b, ok := d.st.Files[fidKey(fid)]
	return b, ok
}

// maxChallenge is the most GET CHALLENGE hands out: Ne 0400 answers 1,024
// random bytes, Ne 0000 (65,536) answers 6700
// (transcripts/differential/fw-p1.txt [48], [49]).
const maxChallenge = 1024

// cmdChallenge implements GET CHALLENGE (84, pico-hsm cmd_challenge.c): Ne
// random bytes, 1 to maxChallenge, else 6700.
func (d *Device) cmdChallenge(c apdu.Command) ([]byte, uint16) {
	if c.Ne == 0 || c.Ne > maxChallenge {
		return nil, apdu.SWWrongLength
	}
	b, err := randomBytes(d.rand, c.Ne)
	if err != nil {
		return nil, apdu.SWExecError
	}
	d.auth.challenge = true
	return b, apdu.SWOK
}

// cmdReadBinary implements READ BINARY (pico-hsm cmd_read_binary.c at
// 08e7d74a). The odd form B1 names the file in P1-P2 (0000: the current
// EF) and the offset in tag 54; B0 reads the current EF at offset P1-P2.
// The file is looked up first (6A82), then tag 54 must open the data
// (6A80). The firmware reads the tag from its data pointer whatever Lc
// says, so a B1 without data reads the previous APDU's (see receive). The
// answer is the whole rest of the file from the offset, which the APDU
// layer cuts to Ne with 61xx. Key files (CCxx) are never readable (6982);
// an offset past the end answers 6282 (6B00 for the built-on-read files).
// Right after SELECT of the application the current EF is the application
// itself, which has no data: B0 and B1 0000 answer 9000 and nothing
// (transcripts/differential/fw-p1.txt [31], [36]).
func (d *Device) cmdReadBinary(c apdu.Command) ([]byte, uint16) {
	var fid uint16
	if c.INS == 0xB1 {
		if c.P1 == 0 && c.P2&0xE0 == 0 && c.P2&0x1F != 0 && c.P2&0x1F != 0x1F {
			return nil, apdu.SWFileNotFound // short EF identifier: none exist
		}
		fid = uint16(c.P1)<<8 | uint16(c.P2)
	} else if c.P1&0x80 != 0 {
		return nil, apdu.SWFileNotFound
	}
	if fid == 0 && !d.sess.HasCur {
		if c.INS == 0xB1 && d.dataView(c, 1)[0] != 0x54 {
			return nil, apdu.SWWrongData
		}
		return nil, apdu.SWOK
	}
	if fid == 0 {
		fid = d.sess.CurFID
	}
	body, ok := d.file(fid)
	if !ok {
		return nil, apdu.SWFileNotFound
	}
	off := int(c.P1&0x7F)<<8 | int(c.P2)
	if c.INS == 0xB1 {
		v := d.dataView(c, 2)
		if v[0] != 0x54 {
			return nil, apdu.SWWrongData
		}
		off = offsetValue(d.dataView(c, 2+int(v[1]))[2 : 2+int(v[1])])
	}
	if byte(fid>>8) == prefixKey {
		return nil, apdu.SWSecurityStatus
	}
	if len(body) == 0 {
		return nil, apdu.SWOK // a file without data reads empty at any offset
	}
	if off > len(body) {
		if fid == fidDir || fid == fidTokenInfo {
			return nil, apdu.SWWrongP1P2Plain
		}
		return nil, apdu.SWWarningEOF
	}
	// Reading does not select: the current EF stays (cmd_read_binary.c).
	return append([]byte(nil), body[off:]...), apdu.SWOK
}

// cmdUpdateBinary implements UPDATE BINARY (D7, pico-hsm cmd_update_ef.c):
// P1-P2 names the file (0000: the current EF), tag 54 the offset and tag 53
// the data. It needs a login (6982). A missing file is created; an empty
// write at offset 0 only creates and selects it (transcripts/other/12
// [32]); a write at offset 0 replaces the content; a write at an offset
// needs existing content (6984), stays within 4032 bytes (6700), and cuts
// the file after what it wrote. Writes to the built-on-read files are
// accepted and change nothing: the firmware's EF.TokenInfo cannot take a
// label. Key files cannot be written this way (6982).
func (d *Device) cmdUpdateBinary(c apdu.Command) uint16 {
	if !d.sess.UserAuth {
		return apdu.SWSecurityStatus
	}
	fid := uint16(c.P1)<<8 | uint16(c.P2)
	if fid == 0 {
		if !d.sess.HasCur {
			return apdu.SWFileNotFound
		}
		fid = d.sess.CurFID
		if fid == fidDevPRKD || fid == fidDevCert {
			return apdu.SWSecurityStatus
		}
	}
	var off int
	var data []byte
	for b := c.Data; len(b) > 0; {
		if len(b) < 2 {
			return apdu.SWWrongLength
		}
		n, hl, ok := berLen(b[1:])
		if !ok || 1+hl+n > len(b) {
			return apdu.SWWrongLength
		}
		v := b[1+hl : 1+hl+n]
		switch b[0] {
		case 0x54:
			off = offsetValue(v)
		case 0x53:
			data = v
		}
		b = b[1+hl+n:]
	}
	switch {
	case byte(fid>>8) == prefixKey:
		return apdu.SWSecurityStatus
	case fid == fidDir || fid == fidTokenInfo:
		return apdu.SWOK
	}
	k := fidKey(fid)
	body, exists := d.st.Files[k]
	if !exists {
		d.st.Files[k] = []byte{}
		d.st.Order = append(d.st.Order, fid)
		d.fileNew(fid)
		d.flashDirty = true
	}
	switch {
	case len(data) == 0 && off == 0:
		// The "create" form selects the file (cmd_update_ef.c) and
		// writes nothing to flash; a write does not change the current
		// EF.
		d.sess.CurFID, d.sess.HasCur = fid, true
		return apdu.SWOK
	case off == 0:
		d.st.Files[k] = bytes.Clone(data)
		d.flashPut(fid, len(data))
	default:
		if len(body) == 0 {
			return apdu.SWDataInvalid
		}
		if off+len(data) > maxFileSize {
			return apdu.SWWrongLength
		}
		nb := make([]byte, off+len(data))
		copy(nb, body)
		copy(nb[off:], data)
		d.st.Files[k] = nb
		d.flashPut(fid, len(nb))
	}
	d.flashDirty = true
	return apdu.SWOK
}

// cmdDeleteFile implements DELETE FILE (E4, pico-hsm cmd_delete_file.c):
// the FID is in the data (OpenSC sends E4 02 00 with 2 bytes), or the
// current EF. It needs a login (6982). The device key's entries cannot be
// deleted (6982); deleting a built-in entry frees its data and answers
// 6400; deleting a key file deletes the key.
func (d *Device) cmdDeleteFile(c apdu.Command) uint16 {
	if !d.sess.UserAuth {
		return apdu.SWSecurityStatus
	}
	var fid uint16
	switch {
	case len(c.Data) >= 2:
		fid = uint16(c.Data[0])<<8 | uint16(c.Data[1])
	case d.sess.HasCur:
		fid = d.sess.CurFID
	default:
		return apdu.SWFileNotFound
	}
	if _, ok := d.file(fid); !ok {
		return apdu.SWFileNotFound
	}
	switch fid {
	case fidDevKey, fidDevPRKD, fidDevEE:
		return apdu.SWSecurityStatus
	case fidDevCert:
		d.st.Files[fidKey(fid)] = []byte{}
		d.flashDirty = true
		return apdu.SWExecError
	case fidDir, fidTokenInfo:
		return apdu.SWExecError
	}
	if byte(fid>>8) == prefixKey {
		_, hadMeta := d.st.Keys[byte(fid)]
		hadMeta = hadMeta && len(d.st.Keys[byte(fid)].Meta) > 0
		delete(d.st.Keys, byte(fid))
		if hadMeta {
			d.flashMeta() // file.c meta_delete, before the file goes
		}
	} else {
		delete(d.st.Files, fidKey(fid))
	}
	d.fileDelete(fid)
	d.dropOrder(fid)
	if d.sess.HasCur && d.sess.CurFID == fid {
		d.sess.HasCur = false
	}
	d.flashDirty = true
	return apdu.SWOK
}

func (d *Device) dropOrder(fid uint16) {
	out := d.st.Order[:0]
	for _, f := range d.st.Order {
		if f != fid {
			out = append(out, f)
		}
	}
	d.st.Order = out
}

// cmdListKeys implements ENUMERATE OBJECTS (80 58, pico-hsm
// cmd_list_keys.c): C400 and CC00 (static, always listed), then the key
// files CCxx, then the description files C4xx, C8xx and C9xx, each group in
// the order of the firmware's list of dynamic files, which is the order of
// the files in flash (flash.go), not the order of the references
// (transcripts/differential/fw-p3.txt, every LIST KEYS). Certificates
// (CExx) and data files are not listed. Recorded:
// transcripts/errors/p01 [17] C400 CC00 CC01 CC02 CC0A C401 C402 C40A.
func (d *Device) cmdListKeys(c apdu.Command) ([]byte, uint16) {
	out := []byte{0xC4, 0x00, 0xCC, 0x00}
	for _, prefix := range []byte{prefixKey, 0xC4, 0xC8, 0xC9} {
		for _, f := range d.dynFiles() {
			if byte(f>>8) == prefix && byte(f) != 0 && d.exists(f) {
				out = append(out, byte(f>>8), byte(f))
			}
		}
	}
	return out, apdu.SWOK
}

// exists reports whether the simulator holds file fid.
func (d *Device) exists(fid uint16) bool {
	if byte(fid>>8) == prefixKey {
		_, ok := d.st.Keys[byte(fid)]
		return ok
	}
	_, ok := d.st.Files[fidKey(fid)]
	return ok
}

// maxOffset is past the end of every file (4 MiB): offsets from tag 54
// saturate there. It is small enough that shifting it by 8 fits a 32-bit
// int.
const maxOffset = 1 << 22

// offsetValue reads the big-endian offset in the value of tag 54 (READ
// BINARY B1, UPDATE BINARY). The firmware keeps it in 32 bits
// (cmd_read_binary.c) or 16 (cmd_update_ef.c); here a longer value
// saturates at maxOffset, which every handler refuses as past the end or
// too long, instead of overflowing int into a negative offset, which
// crashed the device (a slice with a negative start, make with a negative
// length: testdata/fuzz/FuzzTransmit/*-negative-offset).
func offsetValue(v []byte) int {
	off := 0
	for _, x := range v {
		if off = off<<8 | int(x); off >= maxOffset {
			return maxOffset
		}
	}
	return off
}

// tlvValue finds a one-byte-tag BER-TLV in b, never reading past its end.
func tlvValue(b []byte, tag byte) ([]byte, bool) {
	for len(b) >= 2 {
		t := b[0]
		n, hl, ok := berLen(b[1:])
		if !ok || 1+hl+n > len(b) {
			return nil, false
		}
		if t == tag {
			return b[1+hl : 1+hl+n], true
		}
		b = b[1+hl+n:]
	}
	return nil, false
}

func berLen(b []byte) (n, size int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	k := int(b[0] & 0x7F)
	if k == 0 || k > 3 || len(b) < 1+k {
		return 0, 0, false
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	return n, 1 + k, true
}
