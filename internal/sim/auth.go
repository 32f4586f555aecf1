package sim

import (
	"crypto/hmac"
	"crypto/sha512"
	"math/big"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// The commands of public key authentication, secure messaging, BIP/SLIP
// and the device's extra settings. The tool uses none of them; the
// simulator answers them with the firmware's status words, and simulates
// what needs no certificate signed for the device (which it never has).

// fidPUK is EF_PUK (pico-hsm files.h): the public key authentication
// certificates, one file per slot, created empty by INITIALIZE tag 93.
const fidPUK uint16 = 0x10D0

// authRAM is the firmware's RAM for public key authentication: the
// certificate selected by MSE for PSO (current_puk), the PUK selected for
// EXTERNAL AUTHENTICATE (ef_puk_aut), and a pending GET CHALLENGE. SELECT
// of the application clears it; it is not saved.
type authRAM struct {
	pukSelected bool
	pukAut      int // slot + 1; 0 for none
	challenge   bool
}

// cmdExtras implements EXTRAS (80 64, pico-hsm cmd_extras.c). The
// emulator answers 6A86 to P1 00 and 0A (the date and time)
// (transcripts/differential/fw-p1.txt, "risky: 8064…"); the device
// options, the secure lock and the PHY settings are not simulated, and
// answer the same.
func (d *Device) cmdExtras(c apdu.Command) ([]byte, uint16) {
	return nil, apdu.SWWrongP1P2
}

// pukSlots is EF_PUKAUT: the number of PUK slots and of PUKs needed, or
// ok false when INITIALIZE set up no public key authentication.
func (d *Device) pukSlots() (n, m byte, ok bool) {
	if len(d.st.PubKeyAuth) < 2 {
		return 0, 0, false
	}
	return d.st.PubKeyAuth[0], d.st.PubKeyAuth[1], true
}

func (d *Device) puk(i byte) []byte { return d.st.Files[fidKey(fidPUK+uint16(i))] }

// cmdPUKAuth implements PUK AUTH (80 54, pico-hsm cmd_puk_auth.c).
// Without public key authentication (no INITIALIZE tag 93) data answers
// 6A82 and anything else 6A86 (recorded: 80 54 00 00 on a factory-new
// device, fw-p1.txt). Otherwise P1=00 with data registers a PUK
// certificate in the first free slot (P2 must be 00: 6A86; no free slot:
// 6A84), P1=01 replaces slot P2 (needs option 0008: 6985; P2 past the
// slots: 6A86), both in a PIN or SO-PIN session (6982); P1=02 answers the
// CHR of slot P2 (6A86 past the slots, 6A88 for an empty one) with 9000,
// the slot never being authenticated here; anything else answers the
// status: slots, slots still free, PUKs needed, PUKs authenticated (0).
func (d *Device) cmdPUKAuth(c apdu.Command) ([]byte, uint16) {
	n, m, ok := d.pukSlots()
	if !ok {
		if len(c.Data) > 0 {
			return nil, apdu.SWFileNotFound
		}
		return nil, apdu.SWWrongP1P2
	}
	if len(c.Data) > 0 {
		if c.P1 > 1 {
			return nil, apdu.SWWrongP1P2
		}
		if !d.hasSession() {
			return nil, apdu.SWSecurityStatus
		}
		slot := c.P2
		if c.P1 == 0 {
			if c.P2 != 0 {
				return nil, apdu.SWWrongP1P2
			}
			for slot = 0; slot < n && len(d.puk(slot)) > 0; slot++ {
			}
			if slot == n {
				return nil, apdu.SWFileFull
			}
		} else {
			if d.st.Options&optReplacePKA == 0 {
				return nil, apdu.SWConditionsNotSatisfied
			}
			if slot >= n {
				return nil, apdu.SWWrongP1P2
			}
		}
		d.writeFile(fidPUK+uint16(slot), append([]byte(nil), c.Data...))
		d.flashDirty = true
	}
	if c.P1 == 0x02 {
		if c.P2 >= n {
			return nil, apdu.SWWrongP1P2
		}
		cert := d.puk(c.P2)
		if len(cert) == 0 {
			return nil, apdu.SWReferenceNotFound
		}
		return cvCHR(cert), apdu.SWOK
	}
	free := n
	for i := byte(0); i < n; i++ {
		if len(d.puk(i)) > 0 {
			free--
		}
	}
	return []byte{n, free, m, 0}, apdu.SWOK
}

// optReplacePKA is HSM_OPT_REPLACE_PKA: PUKs may be replaced.
const optReplacePKA uint16 = 0x0008

// cvCHR is the certificate holder reference of a CV certificate (tag 5F20
// in the body 7F4E of 7F21), or nil.
func cvCHR(cert []byte) []byte {
	body, ok := tlvValue2(cert, 0x7F21)
	if !ok {
		body = cert
	}
	inner, ok := tlvValue2(body, 0x7F4E)
	if !ok {
		return nil
	}
	chr, _ := tlvValue2(inner, 0x5F20)
	return chr
}

// cmdMSE implements MANAGE SECURITY ENVIRONMENT (00 22, pico-hsm
// cmd_mse.c): P2 must be A4, A6, AA, B4, B6 or B8 and P1 must have bit 01
// (SET), else 6A86 (recorded: 00 22 41 81, fw-p1.txt). In the data, tag 83
// with a CHR selects, for B6, a certificate of the device's chain (EF
// 2F02) for PSO, and for A4 a registered PUK for EXTERNAL AUTHENTICATE;
// a CHR found nowhere answers 6A88.
func (d *Device) cmdMSE(c apdu.Command) ([]byte, uint16) {
	switch c.P2 {
	case 0xA4, 0xA6, 0xAA, 0xB4, 0xB6, 0xB8:
	default:
		return nil, apdu.SWWrongP1P2
	}
	if c.P1&0x01 == 0 {
		return nil, apdu.SWWrongP1P2
	}
	for b := c.Data; len(b) >= 2; {
		l, hl, ok := berLen(b[1:])
		if !ok || 1+hl+l > len(b) {
			break
		}
		tag, v := b[0], b[1+hl:1+hl+l]
		b = b[1+hl+l:]
		if tag != 0x83 || len(v) == 1 {
			continue
		}
		switch c.P2 {
		case 0xB6:
			for chain := d.st.Files[fidKey(fidDevCert)]; len(chain) >= 2; {
				_, size, ok := tlvSize(chain)
				if !ok {
					break
				}
				if chr := cvCHR(chain[:size]); len(chr) > 0 && len(v) >= len(chr) && string(v[:len(chr)]) == string(chr) {
					d.auth.pukSelected = true
					return nil, apdu.SWOK
				}
				chain = chain[size:]
			}
		case 0xA4:
			n, _, _ := d.pukSlots()
			for i := byte(0); i < n; i++ {
				chr := cvCHR(d.puk(i))
				if len(d.puk(i)) == 0 {
					break
				}
				if len(v) >= len(chr) && string(v[:len(chr)]) == string(chr) {
					d.auth.pukAut = int(i) + 1
					return nil, apdu.SWOK
				}
			}
		}
		return nil, apdu.SWReferenceNotFound
	}
	return nil, apdu.SWOK
}

// tlvSize is the total size of the TLV at the start of b (one- or
// two-byte tag).
func tlvSize(b []byte) (tag uint16, size int, ok bool) {
	i := 1
	tag = uint16(b[0])
	if b[0]&0x1F == 0x1F {
		if len(b) < 2 {
			return 0, 0, false
		}
		tag, i = tag<<8|uint16(b[1]), 2
	}
	l, hl, ok := berLen(b[i:])
	if !ok || i+hl+l > len(b) {
		return 0, 0, false
	}
	return tag, i + hl + l, true
}

// cmdPSO implements PERFORM SECURITY OPERATION, verify certificate (00 2A
// 00 92/AE/BE, pico-hsm cmd_pso.c); any other P1-P2 answers 6A86
// (recorded: 80 2A 9E 9A, fw-p1.txt). Without data it answers 6700,
// without a certificate selected by MSE 6A88. Verifying the certificate
// is not simulated: it never verifies (6985).
func (d *Device) cmdPSO(c apdu.Command) ([]byte, uint16) {
	if c.P1 != 0 || (c.P2 != 0x92 && c.P2 != 0xAE && c.P2 != 0xBE) {
		return nil, apdu.SWWrongP1P2
	}
	if len(c.Data) == 0 {
		return nil, apdu.SWWrongLength
	}
	if !d.auth.pukSelected {
		return nil, apdu.SWReferenceNotFound
	}
	return nil, apdu.SWConditionsNotSatisfied
}

// cmdExternalAuth implements EXTERNAL AUTHENTICATE (00 82, pico-hsm
// cmd_external_authenticate.c): P1-P2 other than 0000 answers 6A86,
// without a PUK selected by MSE 6A88 (recorded on a factory-new device,
// fw-p1.txt), without data 6700, without a challenge from GET CHALLENGE
// 6985. Verifying the signature is not simulated: it never verifies
// (6985).
func (d *Device) cmdExternalAuth(c apdu.Command) ([]byte, uint16) {
	if c.P1 != 0 || c.P2 != 0 {
		return nil, apdu.SWWrongP1P2
	}
	if d.auth.pukAut == 0 {
		return nil, apdu.SWReferenceNotFound
	}
	if len(c.Data) == 0 {
		return nil, apdu.SWWrongLength
	}
	if !d.auth.challenge {
		return nil, apdu.SWConditionsNotSatisfied
	}
	return nil, apdu.SWConditionsNotSatisfied
}

// cmdGeneralAuth implements GENERAL AUTHENTICATE (00 86, pico-hsm
// cmd_general_authenticate.c). Only P1-P2 0000 with data that starts with
// tag 7C (read from the data pointer, whatever Lc says: see dataView)
// does anything: chip authentication, which opens secure messaging. That
// is not simulated: it answers 6400. Everything else answers 9000 without
// data (recorded: 00 86 00 00 on a factory-new device, fw-p1.txt).
func (d *Device) cmdGeneralAuth(c apdu.Command) ([]byte, uint16) {
	if c.P1 == 0 && c.P2 == 0 && d.dataView(c, 1)[0] == 0x7C {
		return nil, apdu.SWExecError
	}
	return nil, apdu.SWOK
}

// cmdBIPSLIP implements BIP/SLIP (80 4A, pico-hsm cmd_bip_slip.c). P1=01
// and 02 create the master node P2 (below 10, else 6A86) on secp256k1 or
// secp256r1 from the data as seed, or 64 random bytes: HMAC-SHA-512 with
// "Bitcoin seed" or "Nist256p1 seed" until the left half is a valid key;
// stored under the MKEK, which needs a session (6400 without). P1=03
// derives a node from a path of INTEGERs (6700 without data, 6A80 for a
// malformed path, 6400 without the master node): the derivation itself
// is not simulated and answers 6400. Any other P1 answers 9000 without
// data (recorded: 80 4A 00 00, fw-p1.txt).
func (d *Device) cmdBIPSLIP(c apdu.Command) ([]byte, uint16) {
	switch c.P1 {
	case 0x01, 0x02:
		if c.P2 >= 10 {
			return nil, apdu.SWWrongP1P2
		}
		if !d.hasSession() {
			return nil, apdu.SWExecError
		}
		curve, key := ecc.ByName("secp256k1"), []byte("Bitcoin seed")
		if c.P1 == 0x02 {
			curve, key = ecc.ByName("secp256r1"), []byte("Nist256p1 seed")
		}
		seed := c.Data
		if len(seed) == 0 {
			var err error
			if seed, err = randomBytes(d.rand, 64); err != nil {
				return nil, apdu.SWExecError
			}
		}
		seed = seed[:min(len(seed), 64)]
		for {
			mac := hmac.New(sha512.New, key)
			mac.Write(seed)
			seed = mac.Sum(nil)
			il := new(big.Int).SetBytes(seed[:32])
			if il.Sign() != 0 && il.Cmp(curve.N) < 0 {
				break
			}
		}
		d.st.Files[bipSeed(c.P2)] = d.mkekCrypt(append([]byte{c.P1}, seed...), true)
		d.flashDirty = true
		return nil, apdu.SWOK
	case 0x03:
		if len(c.Data) == 0 {
			return nil, apdu.SWWrongLength
		}
		var master byte
		pos := 0
		for b := c.Data; len(b) > 0; pos++ {
			if len(b) < 2 {
				return nil, apdu.SWWrongData
			}
			l, hl, ok := berLen(b[1:])
			if !ok || 1+hl+l > len(b) || b[0] != 0x02 || (pos == 0 && l != 1) || (pos != 0 && l != 4) {
				return nil, apdu.SWWrongData
			}
			if pos == 0 {
				master = b[1+hl]
			}
			b = b[1+hl+l:]
		}
		if _, ok := d.st.Files[bipSeed(master)]; !ok {
			return nil, apdu.SWExecError
		}
		return nil, apdu.SWExecError
	}
	return nil, apdu.SWOK
}

// bipSeed names the file of BIP/SLIP master node i in the state: the
// firmware's EF_MASTER_SEED files are not reachable by SELECT, so the
// name is not a FID.
func bipSeed(i byte) string { return "bip-seed-" + itoa(int(i)) }
