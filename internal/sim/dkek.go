package sim

import "github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"

// cmdImportDKEK implements MANAGE DKEK / KEY DOMAIN (80 52; pico-hsm
// cmd_key_domain.c). P1=00 imports a DKEK share, or without data answers
// the status of key domain P2:
//
//	total(1) outstanding(1) KCV(8)
//
// Checks, in the firmware's order: data for anything but P1=P2=00 needs a
// PIN session (6985); P2 >= 16 answers 6B00; an empty EF 10A0 (a device
// never initialized) answers 6B00. Then for P1=00: a share shorter than 32
// bytes answers 6700, a share when all are in 6986; a status beyond the
// configured domains 6A86, of a domain not configured (FF FF) 6A88.
//
// P1=01 creates domain P2 for the number of shares in its one data byte
// (any other length: 6700; a domain already set up: 6A86); P1=03 deletes
// it (6A89 while a file is in it, 6A86 if it is not set up; done, it
// answers 6A88); P1=04 forgets its imported shares. All three drop the
// domain's DKEK. P1=02 (an XKEK domain) needs a certificate signed for
// this device: the simulator has none, so data without tag 54 answers
// 6A80 and any other data 6985, as a signature that does not verify; no
// data answers the status. Another P1 answers 6A86.
//
// After the last share the accumulator is committed under the MKEK only if
// a PIN session exists; otherwise the RAM flag pending_save_dkek is set and
// the next successful VERIFY commits it (sc_hsm.c check_pin). A power cycle
// in between loses the flag and leaves the plain DKEK in flash.
//
// Each domain has its own DKEK file, EF_DKEK+P2 (kek.c load_dkek(id)).
// Shares for a domain other than 0 need the PIN session (the check above),
// so their last share is always committed at once.
func (d *Device) cmdImportDKEK(c apdu.Command) ([]byte, uint16) {
	if len(c.Data) > 0 && !(c.P1 == 0 && c.P2 == 0) && !(d.sess.PINSession && d.sess.UserAuth) {
		return nil, apdu.SWConditionsNotSatisfied
	}
	if c.P2 >= 16 {
		return nil, apdu.SWWrongP1P2Plain
	}
	kd := d.st.KeyDomains
	if len(kd) == 0 {
		return nil, apdu.SWWrongP1P2Plain
	}
	i := 2 * int(c.P2)
	var total, cur byte
	if i+1 < len(kd) {
		total, cur = kd[i], kd[i+1]
	}
	switch c.P1 {
	case 0x00:
		if i+1 >= len(kd) {
			return nil, apdu.SWWrongP1P2
		}
		if len(c.Data) > 0 {
			return d.importShare(c, total, cur)
		}
		if total == 0xFF && cur == 0xFF {
			return nil, apdu.SWReferenceNotFound
		}
	case 0x01, 0x03, 0x04:
		if c.P1 == 0x01 && len(c.Data) != 1 {
			return nil, apdu.SWWrongLength
		}
		if c.P1 == 0x03 && d.domainInUse(c.P2) {
			return nil, apdu.SWFileExists
		}
		unset := i+1 < len(kd) && kd[i] == 0xFF && kd[i+1] == 0xFF
		switch c.P1 {
		case 0x01:
			if !unset {
				return nil, apdu.SWWrongP1P2
			}
			total, cur = c.Data[0], 0
		case 0x03:
			if unset {
				return nil, apdu.SWWrongP1P2
			}
			total, cur = 0xFF, 0xFF
		case 0x04:
			cur = 0
		}
		if i+1 < len(kd) {
			kd[i], kd[i+1] = total, cur
		}
		d.dropDKEK(c.P2)
		if c.P1 == 0x03 {
			return nil, apdu.SWReferenceNotFound
		}
	case 0x02:
		if len(c.Data) > 0 {
			if _, ok := tlvValue(c.Data, 0x54); !ok {
				return nil, apdu.SWWrongData
			}
			return nil, apdu.SWConditionsNotSatisfied
		}
	default:
		return nil, apdu.SWWrongP1P2
	}
	return d.domainStatus(c.P2, total, cur), apdu.SWOK
}

// domainStatus is the answer of 80 52: total, outstanding, KCV.
func (d *Device) domainStatus(dom, total, cur byte) []byte {
	out := []byte{total, 0}
	if total > cur {
		out[1] = total - cur
	}
	return append(out, d.dkekKCV(dom)...)
}

// domainInUse reports whether a file belongs to key domain dom, as
// cmd_key_domain.c get_key_domain sees it: a key's domain is its meta tag
// 92, and every other file, having none, counts as domain 0.
func (d *Device) domainInUse(dom byte) bool {
	for ref, k := range d.st.Keys {
		if ref != 0 && k.Domain == dom {
			return true
		}
	}
	if dom != 0 {
		return false
	}
	for f := range d.st.Files {
		if f != fidKey(fidDevCert) && f != fidKey(fidDevPRKD) && f != fidKey(fidDevEE) {
			return true
		}
	}
	return false
}

// importShare adds one share to the DKEK of domain P2 (kek.c
// import_dkek_share: the plain XOR accumulator in EF_DKEK+P2).
func (d *Device) importShare(c apdu.Command, total, cur byte) ([]byte, uint16) {
	if len(c.Data) < 32 {
		return nil, apdu.SWWrongLength
	}
	if cur == total {
		return nil, apdu.SWCommandNotAllowed
	}
	acc := make([]byte, 32)
	if f, ok := d.dkekFile(c.P2); ok && len(f) == 32 {
		copy(acc, f)
	}
	for i := range acc {
		acc[i] ^= c.Data[i]
	}
	d.setDKEKFile(c.P2, acc)
	d.flashPut(fidDKEK+uint16(c.P2), 32) // kek.c import_dkek_share: EF_DKEK grows from 0
	cur++
	if cur >= total {
		if d.hasSession() {
			d.saveDKEK(c.P2)
		} else {
			d.st.RAM.PendingSaveDKEK = true
		}
	}
	d.st.KeyDomains[2*int(c.P2)+1] = cur
	d.flashDirty = true
	return d.domainStatus(c.P2, total, cur), apdu.SWOK
}
