package sim

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"io"
)

// key is a key file CCxx. The material is kept in the clear in the state
// file: the simulator is a rehearsal device, never a place for real keys
// (the README says so), and the state file is written with mode 0600.
type key struct {
	// Kind is "rsa", "ec" or "aes".
	Kind string `json:"kind"`
	// Curve names the EC curve (see curves.go).
	Curve string `json:"curve,omitempty"`
	// RSA: modulus N, public exponent E, private exponent D and primes P, Q.
	N, E, D, P, Q []byte `json:",omitempty"`
	// EC: private scalar D (above) and uncompressed public point.
	Pub []byte `json:"pub,omitempty"`
	// AES: the key.
	Secret []byte `json:"secret,omitempty"`
	// Allowed is key meta tag 91, the allowed algorithm list; HasAllowed
	// tells whether the tag exists (without it every algorithm is allowed,
	// including WRAP 0x92: pico-hsm cmd_key_wrap.c).
	Allowed    []byte `json:"allowed,omitempty"`
	HasAllowed bool   `json:"has_allowed"`
	// Domain is key meta tag 92, the key domain.
	Domain byte `json:"domain"`
	// Meta is the key's metadata as the firmware stores it (tags 90 to
	// 93), shown in the key file's FCP.
	Meta []byte `json:"meta,omitempty"`
}

// mkekCrypt runs AES-256-CFB128 with the MKEK and its fixed IV, as pico-hsm
// kek.c mkek_encrypt/mkek_decrypt do.
func (d *Device) mkekCrypt(b []byte, encrypt bool) []byte {
	blk, err := aes.NewCipher(d.st.MKEK)
	if err != nil {
		panic("sim: bad MKEK in state: " + err.Error())
	}
	out := make([]byte, len(b))
	if encrypt {
		cipher.NewCFBEncrypter(blk, d.st.MKEKIV).XORKeyStream(out, b)
	} else {
		cipher.NewCFBDecrypter(blk, d.st.MKEKIV).XORKeyStream(out, b)
	}
	return out
}

// hasSession reports whether a PIN or SO-PIN session exists, which the
// firmware needs to load the MKEK (kek.c load_mkek answers NO_LOGIN without).
func (d *Device) hasSession() bool { return d.sess.PINSession || d.sess.SOSession }

// dkekFile returns EF_DKEK+dom, the DKEK file of key domain dom, and
// whether it exists.
func (d *Device) dkekFile(dom byte) ([]byte, bool) {
	if dom == 0 {
		return d.st.DKEK, len(d.st.DKEK) > 0
	}
	b, ok := d.st.DomainDKEK[int(dom)]
	return b, ok && len(b) > 0
}

// setDKEKFile writes EF_DKEK+dom.
func (d *Device) setDKEKFile(dom byte, b []byte) {
	if dom == 0 {
		d.st.DKEK = b
	} else {
		if d.st.DomainDKEK == nil {
			d.st.DomainDKEK = map[int][]byte{}
		}
		d.st.DomainDKEK[int(dom)] = b
	}
	d.flashDirty = true
}

// dropDKEK deletes EF_DKEK+dom, as creating, deleting or clearing a key
// domain does (cmd_key_domain.c).
func (d *Device) dropDKEK(dom byte) {
	fid := fidDKEK + uint16(dom)
	if dom == 0 {
		d.st.DKEK = nil
		d.st.RAM.PendingSaveDKEK = false
	} else {
		delete(d.st.DomainDKEK, int(dom))
	}
	if _, ok := d.st.Files[fidKey(fid)]; ok || dom != 0 {
		delete(d.st.Files, fidKey(fid))
		d.fileDelete(fid)
		d.dropOrder(fid)
	}
	d.flashDirty = true
}

// loadDKEK returns the DKEK of key domain dom as the firmware's load_dkek
// does: the MKEK decryption of EF_DKEK+dom, whatever it holds. ok is false
// without a session or without the file.
func (d *Device) loadDKEK(dom byte) (dkek []byte, ok bool) {
	f, ok := d.dkekFile(dom)
	if !d.hasSession() || !ok {
		return nil, false
	}
	return d.mkekCrypt(f, false), true
}

// saveDKEK commits the plain accumulator of domain dom: EF_DKEK+dom
// becomes its encryption under the MKEK (kek.c save_dkek_key).
func (d *Device) saveDKEK(dom byte) {
	f, _ := d.dkekFile(dom)
	d.setDKEKFile(dom, d.mkekCrypt(f, true))
}

// dkekKCV returns the check value the status of domain dom answers:
// SHA-256 of its loaded DKEK, first 8 bytes, or zeros when it cannot be
// loaded (kek.c dkek_kcv).
func (d *Device) dkekKCV(dom byte) []byte {
	dk, ok := d.loadDKEK(dom)
	if !ok {
		return make([]byte, 8)
	}
	defer clear(dk)
	s := sha256.Sum256(dk)
	return s[:8]
}

func randomBytes(r io.Reader, n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
