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
	c, err := parseCommand(raw)
	if err != nil {
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
		data, status = d.dispatch(c)
	}
	return d.respond(data, status, c.Ne)
}

// parseCommand decodes an APDU as pico-keys-sdk apdu_process does: a bare
// 4-byte header expects 256 bytes (case 1 is treated as Ne=256), and data
// without Le expects none. Malformed lengths are refused here rather than
// read past, as the firmware would.
func parseCommand(raw []byte) (apdu.Command, error) {
	c, _, err := apdu.ParseCommand(raw)
	if err != nil {
		return c, err
	}
	if len(raw) == 4 {
		c.Ne = 256
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
