package sim

import (
	"encoding/binary"
	"slices"
)

// The firmware's flash, as far as the order of its files shows: LIST KEYS
// (80 58) answers the key files in the order of the firmware's list of
// dynamic files, and that list is rebuilt from the flash at every SELECT
// of the application (sc_hsm.c init_sc_hsm calls scan_all, pico-keys-sdk
// file.c scan_flash walks the files from the top of the data pool down).
// Where a file lands in flash is decided by pico-keys-sdk fs/flash.c
// allocate_free_addr, first fit from the top; a file rewritten longer than
// it was is cleared and allocated again, and a deleted file leaves a gap
// that a later, smaller file may fill. So a key created later usually
// comes later, a reference deleted and written again moves to the end,
// and a small file can land in a gap higher up
// (transcripts/differential/fw-p3.txt: CCC8 between CC02 and CC03, CC3C
// in the gap CC01 left, "list-keys final" CC0D before CC0B).
//
// The pool is modelled block by block: address, FID and length of every
// file in the data pool, the firmware's internal files (PINs, retry
// counters, key domains, metadata, DKEK) included, since they take space
// too. The persistent pool (device key, its certificates, MKEK, options)
// is separate in the firmware and not modelled.

// Geometry of the emulator's flash (fs/flash.c with ENABLE_EMULATION, on a
// 64-bit host): 8 MiB, 4 KiB sectors, the data pool in the upper half
// below the 16 KiB persistent region, and a block header of next and
// previous pointers (8 bytes each), FID (2) and length (2).
const (
	flashSector      = 4096
	flashStartData   = 4 << 20
	flashEndData     = 8<<20 - 12 - 4*flashSector - 12 - 4
	flashBlockHeader = 20
)

// pinFileSize is the size of a PIN file: the PIN's length and its 32-byte
// hash. It fits the recorded LIST KEYS orders of fw-p3.txt.
const pinFileSize = 33

// Internal files of the data pool (pico-hsm files.c, files.h): they are
// static entries, so they take flash but never enter the list of dynamic
// files.
const (
	fidPIN1       uint16 = 0x1081
	fidPIN1Max    uint16 = 0x1082
	fidPIN1Tries  uint16 = 0x1083
	fidSOPIN      uint16 = 0x1088
	fidSOPINMax   uint16 = 0x1089
	fidSOPINTries uint16 = 0x108A
	fidDKEK       uint16 = 0x1090
	fidKeyDomain  uint16 = 0x10A0
	fidPUKAuth    uint16 = 0x10C0
	fidMeta       uint16 = 0xE010
)

var flashStatic = map[uint16]bool{
	fidPIN1: true, fidPIN1Max: true, fidPIN1Tries: true, fidSOPIN: true, fidSOPINMax: true,
	fidSOPINTries: true, fidKeyDomain: true, fidPUKAuth: true, fidMeta: true,
}

// flashBlock is one file in the data pool, in the chain from the top.
type flashBlock struct {
	addr int
	fid  uint16
	n    int
}

func (b flashBlock) end() int { return b.addr + flashBlockHeader + b.n }

// pool reads the chain from the state (state.Flash). A state written
// before the pool was modelled gets one built from its files in creation
// order.
func (d *Device) pool() []flashBlock {
	raw := d.st.Flash
	if raw == nil {
		return d.rebuildPool()
	}
	var out []flashBlock
	for ; len(raw) >= 8; raw = raw[8:] {
		out = append(out, flashBlock{
			addr: int(binary.BigEndian.Uint32(raw)),
			fid:  binary.BigEndian.Uint16(raw[4:]),
			n:    int(binary.BigEndian.Uint16(raw[6:])),
		})
	}
	return out
}

func (d *Device) setPool(p []flashBlock) {
	raw := make([]byte, 0, 8*len(p))
	for _, b := range p {
		raw = binary.BigEndian.AppendUint32(raw, uint32(b.addr))
		raw = binary.BigEndian.AppendUint16(raw, b.fid)
		raw = binary.BigEndian.AppendUint16(raw, uint16(b.n))
	}
	d.st.Flash = raw
	d.flashDirty = true
}

// rebuildPool lays out a pool for a state that has none: the files of the
// first start, then every dynamic file in creation order.
func (d *Device) rebuildPool() []flashBlock {
	d.setPool(nil)
	d.bootFiles()
	for _, fid := range d.st.Order {
		d.flashPut(fid, d.fileSize(fid))
	}
	return d.pool()
}

// fileSize is the length of a file as the firmware stores it.
func (d *Device) fileSize(fid uint16) int {
	if byte(fid>>8) == prefixKey {
		if k, ok := d.st.Keys[byte(fid)]; ok {
			return k.storedSize()
		}
		return 0
	}
	return len(d.st.Files[fidKey(fid)])
}

// bootFiles writes what sc_hsm.c scan_files writes into an empty data
// pool at the first start and after INITIALIZE wipes it: both PINs as
// zeros, then the retry counters and their maxima.
func (d *Device) bootFiles() {
	for _, f := range []struct {
		fid uint16
		n   int
	}{{fidPIN1, pinFileSize}, {fidSOPIN, pinFileSize}, {fidPIN1Tries, 1}, {fidSOPINTries, 1}, {fidPIN1Max, 1}, {fidSOPINMax, 1}} {
		d.flashPut(f.fid, f.n)
	}
}

// flashPut writes n bytes to file fid as fs/flash.c
// flash_write_data_to_file does: in place when it fits the length the
// file has, otherwise the file is cleared and allocated again. A file
// without a block is allocated. A file that does not fit anywhere stays
// where it was (the firmware answers a memory error there; the simulator
// has room enough not to get there in practice).
func (d *Device) flashPut(fid uint16, n int) {
	p := d.pool()
	if i := slices.IndexFunc(p, func(b flashBlock) bool { return b.fid == fid }); i >= 0 {
		if n <= p[i].n {
			p[i].n = n
			d.setPool(p)
			return
		}
		p = slices.Delete(p, i, i+1)
	}
	if np, ok := allocate(p, fid, n); ok {
		p = np
	}
	d.setPool(p)
	d.fileNew(fid)
}

// flashClear frees the block of file fid (fs/flash.c flash_clear_file).
func (d *Device) flashClear(fid uint16) {
	p := d.pool()
	if i := slices.IndexFunc(p, func(b flashBlock) bool { return b.fid == fid }); i >= 0 {
		d.setPool(slices.Delete(p, i, i+1))
	}
}

// allocate is fs/flash.c allocate_free_addr: walk the chain from the top
// of the pool; place the block right below the first block (or the top)
// whose gap to the next block is larger than the block and in the same
// sector, unless that next block is an internal 1xxx file; at the end of
// the chain place it below the last block if it fits in that sector,
// otherwise at the top of the next sector down.
func allocate(p []flashBlock, fid uint16, n int) ([]flashBlock, bool) {
	real := n + flashBlockHeader
	if n > flashSector {
		return nil, false
	}
	base := flashEndData
	for i := 0; ; i++ {
		sector := base &^ (flashSector - 1)
		at := base - real
		if i == len(p) {
			switch {
			case sector <= at:
			case sector-flashSector >= flashStartData:
				at = sector - real
			default:
				return nil, false
			}
			return append(p, flashBlock{addr: at, fid: fid, n: n}), true
		}
		next := p[i]
		if sector <= at && base-next.end() > real && next.fid&0x1000 != 0x1000 {
			return slices.Insert(p, i, flashBlock{addr: at, fid: fid, n: n}), true
		}
		base = next.addr
	}
}

// fileNew adds fid to the session's list of dynamic files, as
// pico-keys-sdk file.c file_new does for a file it does not know: at the
// end. Internal files are static and never listed.
func (d *Device) fileNew(fid uint16) {
	if flashStatic[fid] {
		return
	}
	dyn := d.dynFiles()
	if !slices.Contains(dyn, fid) {
		d.dyn = append(dyn, fid)
	}
}

// fileDelete removes fid from the list of dynamic files and frees its
// block (file.c delete_dynamic_file, flash_clear_file).
func (d *Device) fileDelete(fid uint16) {
	d.flashClear(fid)
	dyn := d.dynFiles()
	if i := slices.Index(dyn, fid); i >= 0 {
		d.dyn = slices.Delete(dyn, i, i+1)
	}
}

// dynFiles is the firmware's list of dynamic files for this session. At
// SELECT of the application it is the chain of the data pool from the top
// (rescanFiles); files created since are at the end. Files the simulator
// holds without a block (created by UPDATE BINARY without data, which
// writes nothing to flash) follow, in creation order: the firmware would
// forget them at the next scan.
func (d *Device) dynFiles() []uint16 {
	if d.dyn != nil {
		return d.dyn
	}
	d.dyn = []uint16{}
	for _, b := range d.pool() {
		if !flashStatic[b.fid] && !slices.Contains(d.dyn, b.fid) {
			d.dyn = append(d.dyn, b.fid)
		}
	}
	for _, fid := range d.st.Order {
		if !slices.Contains(d.dyn, fid) {
			d.dyn = append(d.dyn, fid)
		}
	}
	return d.dyn
}

// rescanFiles is scan_flash at SELECT of the application: the list of
// dynamic files is read from the flash again.
func (d *Device) rescanFiles() { d.dyn = nil }

// metaSize is the size of EF_META (E010): one TLV per key with metadata,
// tag the low bits of the FID, value the FID and the key's meta tags 90 to
// 93 (file.c meta_add).
func (d *Device) metaSize() int {
	n := 0
	for ref, k := range d.st.Keys {
		if ref == 0 || len(k.Meta) == 0 {
			continue
		}
		n += 1 + len(berLenBytes(2+len(k.Meta))) + 2 + len(k.Meta)
	}
	return n
}

// flashMeta rewrites EF_META after a key's metadata changed: longer, it
// moves; empty, it is cleared (file.c meta_add, meta_delete).
func (d *Device) flashMeta() {
	if n := d.metaSize(); n > 0 {
		d.flashPut(fidMeta, n)
	} else {
		d.flashClear(fidMeta)
	}
}
