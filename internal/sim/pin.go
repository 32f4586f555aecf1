package sim

import (
	"bytes"
	"crypto/subtle"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

const (
	soPINRetries      = 15 // recorded: VERIFY 88 answers 63CF (transcripts/05)
	defaultPINRetries = 3
)

// cmdVerify implements VERIFY (00 20 00 P2) as pico-hsm cmd_verify.c does.
//
// P2=81 user PIN: a transport-PIN device answers 6984; a status query (no
// data) in a PIN session answers 9000; a device never initialized answers
// 6A88; a blocked PIN 6983; otherwise the query answers 63Cx.
// P2=88 SO-PIN: never initialized 6A88; blocked 6983; SO session 9000;
// otherwise 63Cx. Any other reference answers 6A88 (transcripts/errors/p01
// [15], [16]), and P1 != 0 or P2 bits 0x60 answer 6B00.
func (d *Device) cmdVerify(c apdu.Command) uint16 {
	if c.P1 != 0 || c.P2&0x60 != 0 {
		return apdu.SWWrongP1P2Plain
	}
	switch c.P2 {
	case 0x81:
		if d.st.Initialized && d.st.Options&optTransportPIN != 0 {
			return apdu.SWDataInvalid
		}
		if d.sess.PINSession && len(c.Data) == 0 {
			return apdu.SWOK
		}
		if !d.st.Initialized || len(d.st.PIN) == 0 {
			return apdu.SWReferenceNotFound
		}
		if len(c.Data) > 0 {
			return d.checkPIN(c.Data, false)
		}
		if d.st.PINTries == 0 {
			return apdu.SWPINBlocked
		}
		return apdu.SWVerifyFailed | uint16(d.st.PINTries)
	case 0x88:
		if !d.st.Initialized || len(d.st.SOPIN) == 0 {
			return apdu.SWReferenceNotFound
		}
		if len(c.Data) > 0 {
			return d.checkPIN(c.Data, true)
		}
		if d.st.SOPINTries == 0 {
			return apdu.SWPINBlocked
		}
		if d.sess.SOSession {
			return apdu.SWOK
		}
		return apdu.SWVerifyFailed | uint16(d.st.SOPINTries)
	}
	return apdu.SWReferenceNotFound
}

// checkPIN is sc_hsm.c check_pin: it ends any PIN session first; a wrong
// value uses up a try and answers 63Cx, or 6983 when that was the last one;
// a blocked PIN answers 6983 even for the right value; success restores the
// tries, opens the session, and commits a DKEK left pending by the last
// share import (kek.c pending_save_dkek).
func (d *Device) checkPIN(pin []byte, so bool) uint16 {
	d.sess.UserAuth, d.sess.PINSession, d.sess.SOSession = false, false, false
	want, tries := d.st.PIN, &d.st.PINTries
	max := d.st.PINRetryMax
	if so {
		want, tries, max = d.st.SOPIN, &d.st.SOPINTries, soPINRetries
	}
	if subtle.ConstantTimeCompare(pin, want) != 1 {
		if *tries == 0 {
			return apdu.SWPINBlocked
		}
		*tries--
		d.flashDirty = true
		if *tries == 0 {
			return apdu.SWPINBlocked
		}
		return apdu.SWVerifyFailed | uint16(*tries)
	}
	if *tries == 0 {
		return apdu.SWPINBlocked
	}
	if *tries != max {
		*tries = max
		d.flashDirty = true
	}
	d.sess.UserAuth = true
	if so {
		d.sess.SOSession = true
	} else {
		d.sess.PINSession = true
	}
	if d.st.RAM.PendingSaveDKEK {
		d.saveDKEK(0)
		d.st.RAM.PendingSaveDKEK = false
	}
	return apdu.SWOK
}

// cmdChangePIN implements CHANGE REFERENCE DATA (00 24 00 P2) with the old
// and the new value concatenated. The split follows the stored PIN's length
// (the SO-PIN is always 8 bytes); the data must be longer than the old PIN
// and the new one at most 16 bytes (6700), checked first
// (cmd_change_pin.c).
//
// Without a stored PIN (a device never initialized, or one initialized
// without this PIN) the firmware's PIN file holds zeros, a PIN of length
// 0: no data or more than 16 bytes answer 6700, and anything else hangs
// the firmware (hazard.go). Unless FirmwareHangs is set, the simulator
// answers that 6A88, as VERIFY answers on such a device.
func (d *Device) cmdChangePIN(c apdu.Command) uint16 {
	if c.P1 != 0 || (c.P2 != 0x81 && c.P2 != 0x88) {
		return apdu.SWWrongP1P2Plain
	}
	so := c.P2 == 0x88
	old := d.st.PIN
	if so {
		old = d.st.SOPIN
	}
	if len(c.Data) <= len(old) || len(c.Data)-len(old) > 16 {
		return apdu.SWWrongLength
	}
	if !d.st.Initialized || len(old) == 0 {
		return apdu.SWReferenceNotFound
	}
	if s := d.checkPIN(c.Data[:len(old)], so); s != apdu.SWOK {
		return s
	}
	nv := bytes.Clone(c.Data[len(old):])
	if so {
		d.st.SOPIN = nv
	} else {
		d.st.PIN = nv
		if d.st.Options&optTransportPIN != 0 {
			d.st.Options &^= optTransportPIN
		}
	}
	d.flashDirty = true
	return apdu.SWOK
}

// cmdResetRetry implements RESET RETRY COUNTER (00 2C P1 81, pico-hsm
// cmd_reset_retry.c). Another P2 answers 6A88. It needs the option "user
// PIN reset with SO-PIN" (6986 otherwise), which is checked before
// anything else: the SO-PIN file exists with zeros from the first start,
// so a device never initialized answers 6986 to every P1
// (transcripts/differential/fw-p1.txt, the "risky: 002C…" steps). P1=00:
// SO-PIN then a new user PIN; P1=01: SO-PIN only, unblock (needs option
// 0020); P1=02: new PIN in an SO session; P1=03: unblock in an SO session
// (needs option 0020). An SO-PIN never set (the option given without tag
// 82) answers 6A88. P1=00 needs at least 2 bytes after the SO-PIN and
// P1=02 at most 16 (cmd_reset_retry.c: neither bounds the other side).
func (d *Device) cmdResetRetry(c apdu.Command) uint16 {
	if c.P2 != 0x81 {
		return apdu.SWReferenceNotFound
	}
	if d.st.Options&optResetRetryCounter == 0 {
		return apdu.SWCommandNotAllowed
	}
	if !d.st.Initialized || len(d.st.SOPIN) == 0 {
		return apdu.SWReferenceNotFound
	}
	var newPIN []byte
	setPIN := false
	switch c.P1 {
	case 0x00:
		if len(c.Data) <= len(d.st.SOPIN)+1 {
			return apdu.SWWrongLength
		}
		if s := d.checkPIN(c.Data[:len(d.st.SOPIN)], true); s != apdu.SWOK {
			return s
		}
		newPIN, setPIN = c.Data[len(d.st.SOPIN):], true
	case 0x02:
		if !d.sess.SOSession {
			return apdu.SWConditionsNotSatisfied
		}
		// Only more than 16 bytes is refused: with no data the firmware
		// stores a PIN of length 0, after which the user PIN reads as
		// never set (VERIFY answers 6A88, and CHANGE PIN hangs).
		if len(c.Data) > 16 {
			return apdu.SWWrongLength
		}
		newPIN, setPIN = c.Data, true
	case 0x01, 0x03:
		if d.st.Options&optUnblockOnly == 0 {
			return apdu.SWCommandNotAllowed
		}
		if c.P1 == 0x03 {
			if !d.sess.SOSession {
				return apdu.SWConditionsNotSatisfied
			}
			if len(c.Data) != 0 {
				return apdu.SWWrongLength
			}
		} else {
			if len(c.Data) != len(d.st.SOPIN) {
				return apdu.SWWrongLength
			}
			if s := d.checkPIN(c.Data, true); s != apdu.SWOK {
				return s
			}
		}
	default:
		return apdu.SWWrongP1P2
	}
	if setPIN {
		d.st.PIN = append([]byte{}, newPIN...)
		d.sess.PINSession = true
	}
	d.st.PINTries = d.st.PINRetryMax
	d.flashDirty = true
	return apdu.SWOK
}

// Initialization options (sc_hsm.h HSM_OPT_*).
const (
	optResetRetryCounter uint16 = 0x0001
	optTransportPIN      uint16 = 0x0002
	optUnblockOnly       uint16 = 0x0020
)

// initTLV is one tag of INITIALIZE's data.
type initTLV struct {
	tag byte
	v   []byte
}

// cmdInitialize implements INITIALIZE DEVICE (80 50 00 00) as pico-hsm
// cmd_initialize.c does. The data is a list of TLVs (card-sc-hsm.c
// sc_hsm_initialize builds them; transcripts/04-initialize.txt [4]):
//
//	80 options (2)       81 user PIN          82 SO-PIN (8)
//	91 user PIN retries  92 DKEK shares       93 public key auth (n, m)
//	97 key domains       other tags (95/96 biometric servers) ignored
//
// It wipes every key and file except the device's own, writes the PINs
// and opens their sessions, keeps the MKEK if the previous session or the
// new PINs can load it (otherwise a new MKEK and device key), and sets up
// the DKEK domain: n shares expected for 92 n>0, a random DKEK for 92 00,
// none without 92. Options stay as they were without tag 80.
//
// Like the firmware, it does not check the old SO-PIN: the Pico HSM, unlike
// a CardContact SmartCard-HSM, lets anyone re-initialize. The tool guards
// against that by verifying the SO-PIN before it sends INITIALIZE.
//
// With no data it answers the free memory and the version:
// 00 10 00 00 00 06 06 in the emulator.
func (d *Device) cmdInitialize(c apdu.Command) ([]byte, uint16) {
	if len(c.Data) == 0 {
		return []byte{0x00, 0x10, 0x00, 0x00, 0x00, VersionMajor, VersionMinor}, apdu.SWOK
	}
	var items []initTLV
	for b := c.Data; len(b) > 0; {
		if len(b) < 2 {
			return nil, apdu.SWWrongLength
		}
		n, hl, ok := berLen(b[1:])
		if !ok || 1+hl+n > len(b) {
			return nil, apdu.SWWrongLength
		}
		items = append(items, initTLV{b[0], b[1+hl : 1+hl+n]})
		b = b[1+hl+n:]
	}
	st := d.st
	oldPIN, oldSO := st.PIN, st.SOPIN
	keepMKEK := d.hasSession()
	st.Initialized = true
	st.PIN, st.SOPIN = nil, nil
	st.PINRetryMax, st.PINTries, st.SOPINTries = defaultPINRetries, defaultPINRetries, soPINRetries
	st.KeyDomains = []byte{0, 0}
	st.DKEK, st.DomainDKEK = nil, nil
	st.PubKeyAuth = nil
	st.RAM.PendingSaveDKEK = false
	*d.sess = session{Selected: true}
	var dkeks, kds []byte
	for _, it := range items {
		switch it.tag {
		case 0x80:
			if len(it.v) >= 2 {
				st.Options = uint16(it.v[0])<<8 | uint16(it.v[1])
			} else if len(it.v) == 1 {
				st.Options = uint16(it.v[0])
			}
		case 0x81:
			st.PIN = bytes.Clone(it.v)
			d.sess.PINSession = true
		case 0x82:
			st.SOPIN = bytes.Clone(it.v)
			d.sess.SOSession = true
		case 0x91:
			if len(it.v) >= 1 {
				st.PINRetryMax, st.PINTries = int(it.v[0]), int(it.v[0])
			}
		case 0x92:
			dkeks = it.v
		case 0x93:
			if len(it.v) >= 2 {
				st.PubKeyAuth = []byte{min(it.v[0], 8), it.v[1]}
			}
		case 0x97:
			kds = it.v
		}
	}
	if !keepMKEK {
		keepMKEK = (len(oldPIN) > 0 && bytes.Equal(oldPIN, st.PIN)) || (len(oldSO) > 0 && bytes.Equal(oldSO, st.SOPIN))
	}
	if !keepMKEK {
		if err := d.newMKEK(); err != nil {
			return nil, apdu.SWExecError
		}
	}
	// Every dynamic file and key goes; the device's own entries stay.
	files := map[string][]byte{}
	for _, f := range []uint16{fidDevCert, fidDevPRKD, fidDevEE} {
		files[fidKey(f)] = st.Files[fidKey(f)]
	}
	st.Files = files
	dev := st.Keys[0]
	st.Keys = map[byte]*key{}
	st.Order = nil
	d.initializeFlash(items)
	d.sess.UserAuth = true // "when initialized, it has all credentials"
	if dev != nil && keepMKEK {
		st.Keys[0] = dev
	} else {
		d.installDeviceKey()
	}
	switch {
	case len(dkeks) > 0 && dkeks[0] > 0:
		st.KeyDomains = []byte{dkeks[0], 0}
	case len(dkeks) > 0:
		dk, err := randomBytes(d.rand, 32)
		if err != nil {
			return nil, apdu.SWExecError
		}
		st.DKEK = d.mkekCrypt(dk, true)
		clear(dk)
		st.KeyDomains = []byte{1, 1}
	}
	if len(kds) > 0 {
		k := min(int(kds[0]), 16)
		st.KeyDomains = bytes.Repeat([]byte{0xFF}, 2*k)
	}
	// EF 10A0 is written after the tags (and a random DKEK before it).
	if len(dkeks) > 0 && dkeks[0] == 0 {
		d.flashPut(fidDKEK, 32)
	}
	d.flashPut(fidKeyDomain, 2)
	if len(kds) > 0 {
		d.flashPut(fidKeyDomain, len(st.KeyDomains))
	}
	d.flashDirty = true
	return nil, apdu.SWOK
}

// initializeFlash is what cmd_initialize.c does to the data pool before
// the key domains: it wipes it (file.c initialize_flash), the first-start
// files come back (scan_files), then the tags are written in the order
// they come: the PINs, the retry counters, an empty EF_DKEK for tag 92,
// and EF_PUKAUT with the empty PUK slots for tag 93.
func (d *Device) initializeFlash(items []initTLV) {
	d.setPool(nil)
	d.rescanFiles()
	d.dyn = []uint16{}
	d.bootFiles()
	for _, it := range items {
		switch it.tag {
		case 0x81:
			d.flashPut(fidPIN1, pinFileSize)
		case 0x82:
			d.flashPut(fidSOPIN, pinFileSize)
		case 0x91:
			d.flashPut(fidPIN1Max, len(it.v))
			d.flashPut(fidPIN1Tries, len(it.v))
		case 0x92:
			d.writeFile(fidDKEK, []byte{})
		case 0x93:
			if n, _, ok := d.pukSlots(); ok {
				d.flashPut(fidPUKAuth, 4)
				for i := range n {
					d.writeFile(fidPUK+uint16(i), []byte{})
				}
			}
		}
	}
}

func (d *Device) newMKEK() error {
	iv, err := randomBytes(d.rand, 16)
	if err != nil {
		return err
	}
	k, err := randomBytes(d.rand, 32)
	if err != nil {
		return err
	}
	d.st.MKEKIV, d.st.MKEK = iv, k
	return nil
}
