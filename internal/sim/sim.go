// Package sim is a simulated Pico HSM: it answers the SmartCard-HSM APDUs the
// way the Pico HSM firmware (polhenarejos/pico-hsm v6.6, src/hsm/*.c, on
// pico-keys-sdk) does, byte for byte where the recordings in
// testdata/pico-hsm/transcripts show bytes. It is never more lenient than
// the firmware: every failure answers the firmware's status word.
//
// The device keeps its flash, and the part of its RAM that outlives a card
// session, in a state file, so that separate invocations of the tool see one
// device. PowerCycle models unplugging the device: the RAM is lost, which is
// how the firmware's pending DKEK commit gets lost (see import.go).
package sim

import (
	"bytes"
	"crypto/rand"
	_ "embed"
	"errors"
	"io"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// ATR is the answer to reset of the Pico HSM
// (../shared/pico-hsm/VECTORS.txt, header): OpenSC recognises it as a
// SmartCard-HSM by its historical bytes.
var ATR = []byte{
	0x3B, 0xFE, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x45, 0x80, 0x31, 0x81,
	0x54, 0x48, 0x53, 0x4D, 0x31, 0x73, 0x80, 0x21, 0x40, 0x81, 0x07, 0xFA,
}

// AID is the SmartCard-HSM application identifier.
var AID = []byte{0xE8, 0x2B, 0x06, 0x01, 0x04, 0x01, 0x81, 0xC3, 0x1F, 0x02, 0x01}

// Firmware version reported in the SELECT answer (tag 85, last two bytes).
const (
	VersionMajor = 6
	VersionMinor = 6
)

// Files the firmware creates at its first start, as read from the real
// device (transcripts/errors/p01-token-info.txt): EF.DIR, the device
// certificate chain, EF.TokenInfo, and the PRKD and CV certificate of the
// device-authentication key at key reference 0.
var (
	//go:embed assets/2F00.bin
	efDIR []byte
	//go:embed assets/2F02.bin
	efDevCert []byte
	//go:embed assets/2F03.bin
	efTokenInfo []byte
	//go:embed assets/C400.bin
	devKeyPRKD []byte
	//go:embed assets/CE00.bin
	devKeyCert []byte
)

// Device is one simulated Pico HSM. It is not safe for concurrent use; the
// state file lock keeps other processes out.
type Device struct {
	store *store
	st    *state
	sess  *session
	rand  io.Reader
	// saved is the state as last written, to skip writes that change nothing.
	saved []byte
	// flashDirty is set by handlers that changed the flash: that write is
	// synced to disk, a RAM-only change is not.
	flashDirty bool
	// Fault, when set, is consulted before each APDU (fault injection for
	// tests): a non-nil answer or error is returned instead of processing.
	// Inject sets it from a Fault plan.
	Fault func(cmd []byte) ([]byte, error)
	// FirmwareHangs makes the device hang where the firmware does
	// (hazard.go): the APDU gets no answer, Transmit returns ErrHung, and
	// so does every later APDU until PowerCycle. Off, the simulator
	// answers those APDUs with a status word instead.
	FirmwareHangs bool
	hung          bool
	// rx is the receive buffer and rxData the offset the firmware's data
	// pointer was last set to (see receive). Like the rest of the
	// firmware's RAM that no recording shows surviving a card session,
	// they are not saved.
	rx     []byte
	rxData int
	// auth is the RAM of public key authentication (auth.go).
	auth authRAM
	// dyn is the firmware's list of dynamic files in this session, nil
	// until it is read from the flash (flash.go dynFiles).
	dyn []uint16
}

// Open opens (or creates, as a factory-new device) the simulated device whose
// state lives in path. It holds an exclusive lock on the state until Close,
// waiting up to 30 s for another process to release it.
func Open(path string) (*Device, error) {
	return OpenWait(path, 30*time.Second)
}

// OpenWait is Open with a bound on how long to wait for the lock.
func OpenWait(path string, wait time.Duration) (*Device, error) {
	s, err := openStore(path, wait)
	if err != nil {
		return nil, err
	}
	st, err := s.load()
	if err != nil {
		s.close()
		return nil, err
	}
	d := &Device{store: s, st: st, rand: rand.Reader}
	if d.st == nil {
		d.st, err = factoryState(d.rand)
		if err == nil {
			err = d.save(true)
		}
		if err != nil {
			s.close()
			return nil, err
		}
	}
	d.sess = &d.st.RAM.Session
	return d, nil
}

// NewMemory returns a factory-new device that keeps its state in memory only.
func NewMemory() (*Device, error) {
	st, err := factoryState(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Device{st: st, sess: &st.RAM.Session, rand: rand.Reader}, nil
}

// Close releases the state file.
func (d *Device) Close() error {
	if d.store == nil {
		return nil
	}
	return d.store.close()
}

// ATR returns the answer to reset.
func (d *Device) ATR() []byte { return append([]byte(nil), ATR...) }

// PowerOn, PowerOff and Reset are the reader's power events. The Pico HSM
// emulator ignores them (pico-keys-sdk src/usb/emulation/emulation.c): the
// selected application, the PIN session and a pending answer all survive.
// Only SELECT of the application starts a new session. ResetSession is
// what a reset does to a USB Pico HSM instead, for fault injection.
func (d *Device) PowerOn()  {}
func (d *Device) PowerOff() {}
func (d *Device) Reset()    {}

// PowerCycle models unplugging the device and plugging it in again: all RAM
// is lost. If the last DKEK share was imported and no VERIFY has committed
// it yet, the firmware later reads the plain DKEK from flash as if it were
// encrypted, and the DKEK is silently corrupted
// (../shared/pico-hsm/VECTORS.txt section 7, device E).
func (d *Device) PowerCycle() error {
	d.st.RAM = ram{}
	d.hung, d.rx, d.rxData, d.auth, d.dyn = false, nil, 0, authRAM{}, nil
	return d.save(false)
}

// save writes the state if it changed; sync makes the write durable.
func (d *Device) save(sync bool) error {
	if d.store == nil {
		return nil
	}
	b, err := marshalState(d.st)
	if err != nil {
		return err
	}
	if bytes.Equal(b, d.saved) {
		return nil
	}
	if err := d.store.write(b, sync); err != nil {
		return err
	}
	d.saved = b
	return nil
}

// Transmit processes one command APDU and returns the response APDU. The
// error is reserved for the simulator's own failures (its state file) and
// for injected faults (Inject); every protocol error is a status word.
func (d *Device) Transmit(cmd []byte) ([]byte, error) {
	if d.hung {
		return nil, ErrHung
	}
	if d.Fault != nil {
		if r, err := d.Fault(cmd); r != nil || err != nil {
			return r, err
		}
	}
	return d.execute(cmd)
}

// execute is Transmit without the fault hook: the firmware processes the
// command and the state is saved.
func (d *Device) execute(cmd []byte) ([]byte, error) {
	if d.FirmwareHangs && d.hangs(cmd) {
		d.hung = true
		return nil, ErrHung
	}
	out := d.process(cmd)
	dirty := d.flashDirty
	d.flashDirty = false
	if err := d.save(dirty); err != nil {
		return nil, err
	}
	return out, nil
}

// process is the APDU layer of pico-keys-sdk (apdu.c apdu_process and
// apdu_next): parse, serve GET RESPONSE, collect chained data, dispatch,
// and cut the answer to Ne.
func (d *Device) process(raw []byte) []byte {
	c, ok := d.receive(raw)
	if !ok {
		return sw(apdu.SWWrongLength)
	}
	// GET RESPONSE hands out what an earlier answer could not fit into its
	// Ne; it is any APDU with INS C0, whatever its class.
	if c.INS == 0xC0 {
		return d.getResponse(c)
	}
	d.sess.Pending = nil
	// Command chaining (CLA bit 10): collect up to 2038 bytes.
	if c.CLA&0x10 != 0 {
		if len(d.sess.Chain)+len(c.Data) >= 2038 {
			d.sess.Chain = nil
			return sw(apdu.SWCLANotSupported)
		}
		d.sess.Chain = append(d.sess.Chain, c.Data...)
		return sw(apdu.SWOK)
	}
	if len(d.sess.Chain) > 0 {
		c.Data = append(d.sess.Chain, c.Data...)
		d.sess.Chain = nil
	}
	var data []byte
	var status uint16
	switch {
	case c.INS == 0xA4 && c.P1 == 0x04 && (c.P2 == 0x00 || c.P2 == 0x04):
		data, status = d.selectApplication(c)
	case !d.sess.Selected:
		// No application selected yet: the SDK answers every command 6A82.
		status = apdu.SWFileNotFound
	case c.CLA&0x0C != 0:
		// Secure messaging without an SM session (sc_hsm.c sm_unwrap).
		status = apdu.SWDataInvalid
	default:
		data, status = d.dispatch(&c)
	}
	return d.respond(data, status, c.Ne)
}

// receive copies an APDU into the receive buffer and decodes it as
// pico-keys-sdk apdu.c apdu_process does, which is lenient in ways the
// recordings show (transcripts/differential/fw-p1.txt [34] to [63]):
//
//   - 4 bytes: no data, Ne 256. 5 bytes: no data, Ne from the fifth byte
//     (00 is 256). 7 bytes with a zero fifth byte: no data, an extended
//     Ne (0000 is 65536).
//   - A zero fifth byte and 8 or more bytes: an extended Lc; the extended
//     Le counts only if the length is exactly Lc+9, otherwise Ne is 0.
//     Otherwise the fifth byte is Lc, and the last byte is Le only if the
//     length is exactly Lc+6, otherwise Ne is 0.
//   - Lc is never checked against the bytes received: the data runs on
//     into what the buffer still holds from earlier APDUs. A 3-byte APDU
//     takes its P2 and Lc from there too.
//   - Only the forms that carry Lc set the data pointer; the others keep
//     the previous one, so a handler that reads data it was not sent reads
//     the earlier APDU's (fw-p1 [34]-[35]: READ BINARY with Lc 0004 and no
//     Le answers 61 1C; the next READ BINARY, without data, finds the same
//     offset tag there and answers the 28 bytes).
//
// Fewer than 3 bytes are refused (6700); the firmware hangs on a 1-byte
// APDU (see FirmwareHangs).
func (d *Device) receive(raw []byte) (apdu.Command, bool) {
	if len(raw) < 3 {
		return apdu.Command{}, false
	}
	if len(d.rx) < len(raw) {
		d.rx = append(d.rx, make([]byte, len(raw)-len(d.rx))...)
	}
	copy(d.rx, raw)
	if d.rxData == 0 {
		d.rxData = 5
	}
	c, off, nc := sdkParse(d.rx, len(raw))
	if off != 0 {
		d.rxData = off
	}
	c.Data = make([]byte, nc)
	if d.rxData < len(d.rx) {
		copy(c.Data, d.rx[d.rxData:])
	}
	return c, true
}

// dataView is the command data as a handler that reads past Lc sees it:
// the data, then what the receive buffer holds after it, then zeros, at
// least n bytes in all (see receive).
func (d *Device) dataView(c apdu.Command, n int) []byte {
	v := c.Data
	if len(v) >= n {
		return v
	}
	v = bytes.Clone(v)
	if at := d.rxData + len(c.Data); at < len(d.rx) {
		v = append(v, d.rx[at:]...)
	}
	if len(v) < n {
		v = append(v, make([]byte, n-len(v))...)
	}
	return v
}

// sdkParse decodes the header, Ne and Lc of the APDU in the first size
// bytes of buf as apdu_process does (see receive). off is where the data
// starts for the forms that carry Lc, and 0 for the others. Bytes past
// the end of buf read as zeros.
func sdkParse(buf []byte, size int) (c apdu.Command, off, nc int) {
	at := func(i int) byte {
		if i < len(buf) {
			return buf[i]
		}
		return 0
	}
	c = apdu.Command{CLA: at(0), INS: at(1), P1: at(2), P2: at(3)}
	switch {
	case size == 4:
		c.Ne = 256
	case size == 5:
		if c.Ne = int(at(4)); c.Ne == 0 {
			c.Ne = 256
		}
	case at(4) == 0 && size >= 7:
		if size == 7 {
			if c.Ne = int(at(5))<<8 | int(at(6)); c.Ne == 0 {
				c.Ne = 65536
			}
			break
		}
		nc, off = int(at(5))<<8|int(at(6)), 7
		if nc+9 == size {
			if c.Ne = int(at(size-2))<<8 | int(at(size-1)); c.Ne == 0 {
				c.Ne = 65536
			}
		}
	default:
		nc, off = int(at(4)), 5
		if nc+6 == size {
			if c.Ne = int(at(size - 1)); c.Ne == 0 {
				c.Ne = 256
			}
		}
	}
	return c, off, nc
}

// parseCommand is sdkParse on an APDU alone, without the receive buffer:
// the header and Ne are the firmware's, the data is what raw holds of it.
// It fails for fewer than 3 bytes, which the simulator refuses.
func parseCommand(raw []byte) (apdu.Command, error) {
	if len(raw) < 3 {
		return apdu.Command{}, errors.New("APDU shorter than 3 bytes")
	}
	c, off, nc := sdkParse(raw, len(raw))
	if nc > 0 && off < len(raw) {
		c.Data = bytes.Clone(raw[off:min(len(raw), off+nc)])
	}
	return c, nil
}

// respond cuts an answer to the host's Ne. When the answer is longer, the
// firmware sends Ne bytes and 61xx, xx being the bytes left (00 for 256 or
// more), and keeps the rest for GET RESPONSE: SELECT without Le answers
// 61 24 (transcripts/10-kcv-query-A.txt [4]) and READ BINARY of 418 bytes
// with Le=256 answers 256 bytes and 61A2 (transcripts/errors/p01 [22]).
// Error status words never carry data.
func (d *Device) respond(data []byte, status uint16, ne int) []byte {
	if status != apdu.SWOK {
		return sw(status)
	}
	if len(data) <= ne {
		return apdu.Response{Data: data, SW: status}.Bytes()
	}
	d.sess.Pending = append([]byte(nil), data[ne:]...)
	left := len(d.sess.Pending)
	if left > 255 {
		left = 0
	}
	return apdu.Response{Data: data[:ne], SW: apdu.SWBytesRemaining | uint16(left)}.Bytes()
}

func (d *Device) getResponse(c apdu.Command) []byte {
	if len(d.sess.Pending) == 0 {
		return sw(apdu.SWConditionsNotSatisfied)
	}
	rest := d.sess.Pending
	d.sess.Pending = nil
	return d.respond(rest, apdu.SWOK, c.Ne)
}

func sw(s uint16) []byte { return []byte{byte(s >> 8), byte(s)} }
