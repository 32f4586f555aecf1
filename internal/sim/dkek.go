package sim

import "github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"

// cmdImportDKEK implements IMPORT DKEK SHARE and the DKEK status query
// (80 52; pico-hsm cmd_key_domain.c), for P1=00. The answer is
//
//	total(1) outstanding(1) KCV(8)
//
// Checks, in the firmware's order: data for a key domain other than 0
// needs a PIN session (6985); P2 >= 16 answers 6B00; an empty EF 10A0 (a
// device never initialized) answers 6B00; a domain not configured answers
// 6A86 or 6A88; a share shorter than 32 bytes answers 6700; a share when
// all are in answers 6986.
//
// After the last share the accumulator is committed under the MKEK only if
// a PIN session exists; otherwise the RAM flag pending_save_dkek is set and
// the next successful VERIFY commits it (sc_hsm.c check_pin). A power cycle
// in between loses the flag and leaves the plain DKEK in flash.
func (d *Device) cmdImportDKEK(c apdu.Command) ([]byte, uint16) {
	if len(c.Data) > 0 && !(c.P1 == 0 && c.P2 == 0) && !(d.sess.PINSession && d.sess.UserAuth) {
		return nil, apdu.SWConditionsNotSatisfied
	}
	if c.P2 >= 16 {
		return nil, apdu.SWWrongP1P2Plain
	}
	if len(d.st.KeyDomains) == 0 {
		return nil, apdu.SWWrongP1P2Plain
	}
	if c.P1 != 0 {
		// Key domain management (P1 01..04) is not simulated: the tool
		// does not use it. Answer like a firmware without the feature.
		return nil, apdu.SWWrongP1P2
	}
	if 2*int(c.P2)+1 >= len(d.st.KeyDomains) {
		return nil, apdu.SWWrongP1P2
	}
	total, cur := d.st.KeyDomains[2*int(c.P2)], d.st.KeyDomains[2*int(c.P2)+1]
	// Only domain 0 can hold a DKEK here: creating other domains (P1=01)
	// is not simulated, so their pair stays FF FF (after tag 97).
	if len(c.Data) > 0 {
		if len(c.Data) < 32 {
			return nil, apdu.SWWrongLength
		}
		if cur == total || c.P2 != 0 {
			return nil, apdu.SWCommandNotAllowed
		}
		acc := make([]byte, 32)
		copy(acc, d.st.DKEK)
		for i := range acc {
			acc[i] ^= c.Data[i]
		}
		d.st.DKEK = acc
		cur++
		if cur >= total {
			if d.hasSession() {
				d.saveDKEK()
			} else {
				d.st.RAM.PendingSaveDKEK = true
			}
		}
		d.st.KeyDomains[2*int(c.P2)+1] = cur
		d.flashDirty = true
	} else if total == 0xFF && cur == 0xFF {
		return nil, apdu.SWReferenceNotFound
	}
	out := []byte{total, 0}
	if total > cur {
		out[1] = total - cur
	}
	return append(out, d.dkekKCV()...), apdu.SWOK
}
