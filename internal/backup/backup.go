// Package backup exports keys wrapped under the DKEK and restores them,
// one at a time (sc-hsm-tool's --wrap-key and --unwrap-key, with the same
// files) or a whole device with a manifest, and verifies backups offline.
// Nothing already on disk or on the device is lost: files are written
// atomically and never replaced without force, and a restore checks all it
// can before the device changes.
package backup

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// Export wraps key ref and returns sc-hsm-tool's wrapped-key file: the
// blob, the PKCS#15 description and the certificate (sc-hsm-tool.c
// wrap_key). The caller has logged in. READ BINARY with the FID in P1-P2
// and an extended Le reads each file in one APDU.
func Export(d *hsm.Device, ref byte) (*wrap.File, error) {
	blob, err := wrapBlob(d, ref)
	if err != nil {
		return nil, err
	}
	f := &wrap.File{Blob: blob}
	if f.PRKD, err = readOptional(d, hsm.KeyFID(hsm.PrefixPRKD, ref)); err != nil {
		return nil, err
	}
	if f.Cert, err = readOptional(d, hsm.KeyFID(hsm.PrefixEECert, ref)); err != nil {
		return nil, err
	}
	return f, nil
}

// wrapBlob is WRAP KEY, with a check that the answer is a key blob.
func wrapBlob(d *hsm.Device, ref byte) ([]byte, error) {
	blob, err := d.WrapKey(ref)
	if err != nil {
		return nil, err
	}
	if _, err := wrap.ParseBlob(blob); err != nil {
		return nil, fmt.Errorf("the device answered WRAP KEY with something that is not a key blob: %w", err)
	}
	return blob, nil
}

// ErrNoDKEK is a device initialized without --dkek-shares: the firmware
// refuses WRAP KEY for every key (pico-hsm cmd_key_wrap.c answers 6A88
// when the key domain has no DKEK shares), and only INITIALIZE DEVICE with
// DKEK shares (cmd_initialize.c), which deletes every key, gives it one.
var ErrNoDKEK = errors.New("the device has no DKEK: it was initialized without --dkek-shares, so no key can ever leave it; only re-initializing with --dkek-shares gives it one, and that destroys every key on it")

// whyNoWrap explains a WRAP KEY refused with 6A88, which the firmware
// answers both without a DKEK and while DKEK shares are outstanding in
// the key's domain (cmd_key_wrap.c): the domain's status (cmd_key_domain.c)
// tells which. On a device without key domains (many false, dom 0) the
// words are those of before key domains.
func whyNoWrap(d *hsm.Device, ref, dom int, many bool, err error) error {
	st, serr := d.DomainStatus(dom)
	switch {
	case errors.Is(serr, hsm.ErrDomainNotSetUp) && many:
		return &msgError{fmt.Sprintf("cannot wrap key reference %d: it belongs to key domain %d, which is not set up and has no DKEK: set it up and import its shares first%s", ref, dom, swSuffix(err)), []error{serr, err}}
	case serr != nil:
		return err
	case st.Shares == 0 && !many:
		return &msgError{fmt.Sprintf("cannot wrap key reference %d: %v%s", ref, ErrNoDKEK, swSuffix(err)), []error{ErrNoDKEK, err}}
	case st.Outstanding > 0 && !many:
		return &msgError{fmt.Sprintf("cannot wrap key reference %d: the device's DKEK is incomplete (%d of %d shares imported): import the remaining shares first%s",
			ref, st.Shares-st.Outstanding, st.Shares, swSuffix(err)), []error{err}}
	case !st.Complete():
		return &msgError{fmt.Sprintf("cannot wrap key reference %d: %s%s", ref, domainIncomplete(dom, st), swSuffix(err)), []error{hsm.ErrDKEKIncomplete, err}}
	}
	return err
}

// domainIncomplete says that key domain dom, set up with status st, cannot
// wrap: its DKEK waits for shares, and how many.
func domainIncomplete(dom int, st hsm.DKEKStatus) string {
	if st.Shares == 0 {
		return fmt.Sprintf("it belongs to key domain %d, which has no DKEK", dom)
	}
	return fmt.Sprintf("it belongs to key domain %d, whose DKEK is incomplete (%d of %d shares imported, %d missing): import the remaining shares of key domain %d first",
		dom, st.Shares-st.Outstanding, st.Shares, st.Outstanding, dom)
}

// keyDomain reads the key domain of key ref from its key file's FCP
// (metadata tag 92, pico-hsm cmd_key_domain.c get_key_domain) and tells
// whether the device has key domains beyond domain 0: for a key of domain
// 0 it asks the status of domain 1, which a device without key domains
// answers 6A86 (hsm.ErrNoSuchDomain). found is false when the key file is
// missing: WRAP KEY then says so in its own words.
func keyDomain(d *hsm.Device, ref int) (dom int, many, found bool, err error) {
	fi, err := d.SelectFile(hsm.KeyFID(hsm.PrefixKey, byte(ref)))
	if apdu.IsStatus(err, apdu.SWFileNotFound) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, err
	}
	dom = fi.KeyDomain()
	if dom != 0 {
		return dom, true, true, nil
	}
	_, err = d.DomainStatus(1)
	switch {
	case err == nil, errors.Is(err, hsm.ErrDomainNotSetUp):
		return 0, true, true, nil
	case errors.Is(err, hsm.ErrNoSuchDomain), errors.Is(err, hsm.ErrNoDKEK):
		return 0, false, true, nil
	}
	return 0, false, false, err
}

// msgError is a message of its own that still matches the errors it
// explains: for example one that ends with the status word of the
// device's answer (" (SW 6A88)") instead of repeating the answer's
// generic meaning.
type msgError struct {
	msg  string
	errs []error
}

func (e *msgError) Error() string   { return e.msg }
func (e *msgError) Unwrap() []error { return e.errs }

// swSuffix is " (SW XXXX)" for an error that carries a status word.
func swSuffix(err error) string {
	var se *apdu.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf(" (SW %04X)", se.SW)
	}
	return ""
}

func readOptional(d *hsm.Device, fid uint16) ([]byte, error) {
	b, err := d.ReadFile(fid)
	if apdu.IsStatus(err, apdu.SWFileNotFound) {
		return nil, nil
	}
	return b, err
}

// WrapOptions are the inputs of WrapToFile.
type WrapOptions struct {
	Key          keystore.Spec
	PIN          []byte
	AllowLastTry bool
	Path         string
	Force        bool
}

// WrapResult describes a written backup.
type WrapResult struct {
	Ref int `json:"key_reference"`
	// Domain is the key domain the key belongs to (its FCP's tag 92); the
	// blob is wrapped under that domain's DKEK, whose check value is KCV.
	Domain int `json:"key_domain"`
	// ManyDomains tells a device with key domains beyond domain 0.
	ManyDomains bool   `json:"-"`
	Path        string `json:"file"`
	SHA256      string `json:"sha256"`
	KCV         string `json:"dkek_kcv"`
	Size        int    `json:"size"`
}

// WrapToFile exports one key to a file sc-hsm-tool can unwrap: PIN first
// (a wrong one shows the tries left), then WRAP KEY, the description and
// the certificate. The file is written atomically with mode 0600 and never
// over an existing one without Force.
func WrapToFile(conn *device.Conn, o WrapOptions) (*WrapResult, error) {
	if !o.Force {
		if err := atomicfile.CheckAbsent(o.Path); err != nil {
			return nil, err
		}
	}
	var f *wrap.File
	var ref, dom int
	var many bool
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
			return err
		}
		var err error
		if ref, err = resolve(conn.Device, o.Key); err != nil {
			return err
		}
		dom, many, _, err = keyDomain(conn.Device, ref)
		if err != nil {
			return err
		}
		if dom != 0 {
			// WRAP KEY uses the key's domain DKEK and answers 6A88 while
			// it waits for shares (pico-hsm cmd_key_wrap.c): say so first.
			st, err := conn.DomainStatus(dom)
			switch {
			case errors.Is(err, hsm.ErrDomainNotSetUp):
				return &msgError{fmt.Sprintf("cannot wrap key reference %d: it belongs to key domain %d, which is not set up and has no DKEK: set it up and import its shares first", ref, dom), []error{err, hsm.ErrDKEKIncomplete}}
			case err != nil:
				return err
			case !st.Complete():
				return &msgError{fmt.Sprintf("cannot wrap key reference %d: %s", ref, domainIncomplete(dom, st)), []error{hsm.ErrDKEKIncomplete}}
			}
		}
		f, err = Export(conn.Device, byte(ref))
		if errors.Is(err, hsm.ErrDKEKIncomplete) {
			return whyNoWrap(conn.Device, ref, dom, many, err)
		}
		return err
	})
	if err != nil {
		// WRAP KEY and READ BINARY change nothing on the device, and the
		// file is written only after the device has answered everything.
		if device.OutcomeUnknown(err) {
			return nil, fmt.Errorf("%w; %s and the device is unchanged%s", err, notWritten(o.Path), device.Again(err))
		}
		return nil, err
	}
	data := f.Marshal()
	if err := atomicfile.Write(o.Path, data, 0o600, o.Force); err != nil {
		return nil, err
	}
	bl, _ := wrap.ParseBlob(f.Blob)
	sum := sha256.Sum256(data)
	return &WrapResult{Ref: ref, Domain: dom, ManyDomains: many, Path: o.Path, SHA256: fmt.Sprintf("%x", sum), KCV: fmt.Sprintf("%X", bl.KCV), Size: len(data)}, nil
}

// notWritten says that path was not written, and that the file there, if
// any, keeps its content.
func notWritten(path string) string {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Sprintf("nothing was written: %s keeps its earlier content", path)
	}
	return fmt.Sprintf("nothing was written to %s", path)
}

// resolve turns a key spec into a key reference; a bare reference needs no
// APDU, a label or ID reads the key list.
func resolve(d *hsm.Device, s keystore.Spec) (int, error) {
	if s.Label == "" && s.ID == nil {
		if s.Ref < 1 || s.Ref > 255 {
			return 0, errors.New("key reference must be from 1 to 255 (0 is the device's own key and is never exported)")
		}
		return s.Ref, nil
	}
	keys, err := keystore.List(d)
	if err != nil {
		return 0, err
	}
	k, err := keystore.Resolve(keys, s)
	return k.Ref, err
}

// RestoreOptions are the inputs of Restore.
type RestoreOptions struct {
	// File is the wrapped-key file's content; Name names it in messages.
	File []byte
	Name string
	// Ref is the key reference to restore into, or -1 for the lowest free.
	Ref   int
	Force bool
	// AllowDuplicate restores the key even when another key has its label
	// or ID (keystore.DuplicateError), as sc-hsm-tool does.
	AllowDuplicate bool
	PIN            []byte
	AllowLastTry   bool
}

// RestoreResult tells what Restore did.
type RestoreResult struct {
	Ref  int    `json:"key_reference"`
	Type string `json:"type"`
	// Bits is the RSA modulus or AES key size, or the EC field size, as
	// list-keys gives it; Curve names the EC curve.
	Bits  int    `json:"bits,omitempty"`
	Curve string `json:"curve,omitempty"`
	Label string `json:"label"`
	ID    string `json:"id"`
	KCV   string `json:"dkek_kcv"`
	// Domain is the key domain the key lands in: the first whose DKEK
	// has the blob's check value (pico-hsm cmd_key_unwrap.c).
	Domain  int  `json:"key_domain"`
	Replace bool `json:"replaced"`
	// Verified tells that the key read back matches the backup's public
	// key (RSA and EC keys with a certificate in the backup).
	Verified bool `json:"verified"`
	// HasPRKD and HasCert tell what the backup carried besides the blob.
	HasPRKD bool `json:"has_description"`
	HasCert bool `json:"has_certificate"`
}

// Errors of Restore.
var (
	ErrWrongDKEK = errors.New("wrong DKEK")
	ErrOccupied  = errors.New("key reference in use")
	// ErrShareFile is a DKEK share file (.pbe) given where a wrapped key
	// belongs: both are small binary files that people mix up.
	ErrShareFile = errors.New("this is a DKEK share file, not a wrapped key")
	// ErrDamagedBlob is a key blob that names the device's DKEK but that the
	// device refuses: its CMAC or its structure does not check out.
	ErrDamagedBlob = errors.New("the device refused the key blob, which names this device's DKEK: the file is damaged or was changed after it was written")
)

// Restore unwraps a backup into the device, losing nothing:
//
//   - the file is parsed, and the blob's structure checked, before the
//     device is touched;
//   - after the PIN, the blob's KCV is compared with the device's DKEK
//     (the firmware itself only answers 6400 to a foreign blob);
//   - an occupied reference is refused without Force. With Force the old
//     key is not deleted first: the firmware replaces it only when the
//     blob decodes under the DKEK, so a restore that fails keeps it;
//   - after UNWRAP KEY, the key's new CV request is read back and its
//     public key compared with the backup's (OpenSC issue 3567 reports a
//     4096-bit restore that "succeeded" with an incomplete key), and only
//     then are the backup's description and certificate written, as
//     sc-hsm-tool does (EF C4xx and CExx).
func Restore(conn *device.Conn, o RestoreOptions) (*RestoreResult, error) {
	p, err := prepare(o.File, o.Name)
	if err != nil {
		return nil, err
	}
	err = conn.Transaction(func() error {
		fids, dom, err := loginForRestore(conn, o.PIN, o.AllowLastTry, p.bl.KCV)
		if err != nil {
			return nothingRestored(err)
		}
		p.res.Domain = dom
		ref, replace, err := chooseRef(fids, o.Ref, o.Force)
		if err != nil {
			return err
		}
		if !o.AllowDuplicate {
			// One READ BINARY per key: the descriptions hold the labels
			// and IDs.
			keys, err := keystore.ListFrom(conn.Device, fids, keystore.ReadPRKD)
			if err != nil {
				return nothingRestored(err)
			}
			if err := keystore.CheckDuplicate(keys, ref, p.res.Label, p.res.ID); err != nil {
				return fmt.Errorf("%s: %w: add --allow-duplicate to restore it anyway, or delete the other key first; nothing was restored", p.name, err)
			}
		}
		return restoreOne(conn, p, ref, replace, o.AllowDuplicate)
	})
	if err != nil {
		return nil, err
	}
	return &p.res, nil
}

// chooseRef picks the reference a single restore goes to: the lowest free
// one when ref < 0, else ref, which must be free unless force.
func chooseRef(fids []uint16, ref int, force bool) (int, bool, error) {
	switch {
	case ref < 0:
		r, err := keystore.FreeRef(fids)
		return r, false, err
	case ref < 1 || ref > 255:
		return 0, false, errors.New("key reference must be from 1 to 255 (0 is the device's own key)")
	case keystore.Occupied(fids, ref) && !force:
		return 0, false, fmt.Errorf("%w: key reference %d holds a key: choose a free reference, omit --key-reference to take one, or add --force to replace it", ErrOccupied, ref)
	}
	return ref, keystore.Occupied(fids, ref), nil
}

// nothingRestored adds to a failure before the first UNWRAP KEY that the
// device is as it was, when the failure itself does not make that clear.
func nothingRestored(err error) error {
	if device.OutcomeUnknown(err) {
		return fmt.Errorf("%w; nothing was restored, the device is unchanged%s", err, device.Again(err))
	}
	return err
}

// prepared is a parsed backup, checked as far as it can be without the
// device.
type prepared struct {
	// name is the file's name as given, for messages.
	name string
	f    *wrap.File
	bl   *wrap.Blob
	pub  *cvc.PublicKey
	res  RestoreResult
}

func prepare(file []byte, name string) (*prepared, error) {
	if IsShareFile(file) {
		return nil, fmt.Errorf("%s: %w: give a file that wrap-key, backup or sc-hsm-tool --wrap-key wrote", name, ErrShareFile)
	}
	f, err := wrap.ParseFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	bl, err := wrap.ParseBlob(f.Blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	r, pub := describe(f, bl)
	p := &prepared{name: name, f: f, bl: bl, pub: pub, res: RestoreResult{KCV: r.KCV, Type: r.Type, Bits: r.Bits, Curve: r.Curve,
		Label: r.Label, ID: r.ID, HasPRKD: len(f.PRKD) > 0, HasCert: len(f.Cert) > 0}}
	return p, nil
}

// IsShareFile tells a DKEK share file (.pbe) by its start: OpenSSL's
// "Salted__" and the salt (sc-hsm-tool.c create_dkek_share; package
// dkekshare). A wrapped-key file starts with a SEQUENCE tag, 30.
func IsShareFile(b []byte) bool { return bytes.HasPrefix(b, []byte("Salted__")) }

// loginForRestore is keystore.LoginForUnwrapDomain with restore's words
// for a device whose DKEKs cannot take the backup. It returns the file
// list and the key domain the key will land in.
func loginForRestore(conn *device.Conn, pin []byte, allowLastTry bool, kcv [8]byte) ([]uint16, int, error) {
	fids, dom, _, err := keystore.LoginForUnwrapDomain(conn, pin, allowLastTry, kcv)
	if err != nil {
		return nil, 0, restoreMismatch(err, kcv)
	}
	return fids, dom, nil
}

// restoreMismatch gives restore's words to a device whose DKEKs cannot
// take a blob made under kcv; other errors pass unchanged.
func restoreMismatch(err error, kcv [8]byte) error {
	var dm *keystore.DKEKMismatch
	var nd *keystore.NoDomainMatch
	switch {
	case errors.As(err, &nd):
		return &msgError{fmt.Sprintf("%v: %v: the backup was made under DKEK %X: import that DKEK's shares into a key domain of this device, or restore on the device that holds that DKEK", ErrWrongDKEK, nd, kcv), []error{ErrWrongDKEK, nd}}
	case !errors.As(err, &dm):
		return err
	case dm.None():
		return fmt.Errorf("%w: restoring needs the DKEK the backup was made under", hsm.ErrNoDKEK)
	case dm.Incomplete():
		return fmt.Errorf("%v: import the remaining shares first", dm)
	}
	return fmt.Errorf("%w: backup was made under DKEK %X, device has %s: import the shares of the DKEK %X, or restore into the device that holds it", ErrWrongDKEK, kcv, dm.Status.KCVHex(), kcv)
}

// restoreOne unwraps one prepared backup into ref after loginForRestore;
// replace tells that ref holds a key, which the restore replaces.
// allowDuplicate goes into the command that finishes an interrupted
// restore.
func restoreOne(conn *device.Conn, p *prepared, ref int, replace, allowDuplicate bool) error {
	res, f, bl := &p.res, p.f, p.bl
	res.Replace = replace
	res.Ref = ref
	r := byte(ref)
	// finish is the command that completes an interrupted restore of this
	// key whatever state it left: the reference was free or --force was
	// given, and UNWRAP KEY replaces a key only with one that decodes, so
	// running it again can only put the backup's key there.
	dup := ""
	if allowDuplicate {
		dup = " --allow-duplicate"
	}
	finish := fmt.Sprintf("finish with '%s'", conn.Suggest(fmt.Sprintf("unwrap-key %s --key-reference %d --force%s", p.name, ref, dup)))
	if err := conn.UnwrapKey(r, f.Blob); err != nil {
		// Only a status word that refuses (6400 the blob does not decode,
		// 6982 no PIN session, ...) says the firmware did nothing.
		refused := device.Refused(err)
		kept := "nothing was restored"
		if res.Replace {
			kept = fmt.Sprintf("the key at reference %d is unchanged", ref)
		}
		switch {
		case !refused && res.Replace:
			return fmt.Errorf("%w; key reference %d holds either its old key or the restored one (without its label and certificate): %s", err, ref, finish)
		case !refused:
			return fmt.Errorf("%w; key reference %d is either still free or holds the restored key (without its label and certificate): %s", err, ref, finish)
		case errors.Is(err, hsm.ErrUnwrapRefused):
			// The blob's KCV is the device's (loginForRestore compared
			// them), so the firmware's 6400 means that the blob does not
			// decode under that DKEK: its CMAC or its content is damaged
			// (pico-hsm cmd_key_unwrap.c, dkek_decode_key).
			return keptDevice{&msgError{fmt.Sprintf("unwrap into key reference %d: %v: use another copy of the backup; %s%s", ref, ErrDamagedBlob, kept, swSuffix(err)), []error{ErrDamagedBlob, err}}}
		case res.Replace:
			return keptDevice{fmt.Errorf("%w; %s", err, kept)}
		}
		return keptDevice{err}
	}
	// From here on the key is in place, replacing the old one if any; what
	// fails leaves it without its label or certificate, or unverified.
	done := fmt.Sprintf("the key was restored at reference %d,", ref)
	if res.Replace {
		done = fmt.Sprintf("the key was restored at reference %d, replacing the old key,", ref)
	}
	// Read the key back: the firmware made a new CV request for it.
	if bl.Type != wrap.TypeAES {
		req, err := conn.ReadFile(hsm.KeyFID(hsm.PrefixEECert, r))
		if err != nil {
			return fmt.Errorf("%s but reading it back failed: %w; %s", done, err, finish)
		}
		if p.pub != nil {
			c, err := cvc.Parse(req)
			if err != nil {
				return fmt.Errorf("%s but its public key cannot be read back: %w; %s", done, err, finish)
			}
			if !samePublicKey(&c.PublicKey, p.pub) {
				return fmt.Errorf("the key restored at reference %d does not match the backup's public key: do not use it; restore again or investigate the device", ref)
			}
			res.Verified = true
		}
	}
	prkd := f.PRKD
	if d, err := pkcs15.Parse(f.PRKD); err == nil && d.KeyReference >= 0 && d.KeyReference != ref {
		d.KeyReference = ref
		prkd = d.Marshal()
	}
	if len(prkd) > 0 {
		if err := conn.UpdateFile(hsm.KeyFID(hsm.PrefixPRKD, r), prkd); err != nil {
			return fmt.Errorf("%s but writing its description (label and ID) failed: %w; %s", done, err, finish)
		}
	}
	if len(f.Cert) > 0 {
		if err := conn.UpdateFile(hsm.KeyFID(hsm.PrefixEECert, r), f.Cert); err != nil {
			return fmt.Errorf("%s but writing its certificate failed: %w; %s", done, err, finish)
		}
	}
	return nil
}

// keptDevice marks an error of restoreOne after which the device is as it
// was: the firmware refused UNWRAP KEY. After any other error the key may
// be in place, in full or without its label or certificate.
type keptDevice struct{ error }

func (u keptDevice) Unwrap() error { return u.error }

func samePublicKey(a, b *cvc.PublicKey) bool {
	switch {
	case a.N != nil && b.N != nil:
		return a.N.Cmp(b.N) == 0 && a.E.Cmp(b.E) == 0
	case len(a.Q) > 0 && len(b.Q) > 0:
		return bytes.Equal(a.Q, b.Q) && bytes.Equal(trimZeros(a.Prime), trimZeros(b.Prime))
	}
	return false
}

func trimZeros(b []byte) []byte { return bytes.TrimLeft(b, "\x00") }
