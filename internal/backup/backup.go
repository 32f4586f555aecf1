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
	blob, err := d.WrapKey(ref)
	if err != nil {
		return nil, err
	}
	if _, err := wrap.ParseBlob(blob); err != nil {
		return nil, fmt.Errorf("the device answered WRAP KEY with something that is not a key blob: %w", err)
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
	Ref    int    `json:"key_reference"`
	Path   string `json:"file"`
	SHA256 string `json:"sha256"`
	KCV    string `json:"dkek_kcv"`
	Size   int    `json:"size"`
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
	var ref int
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
		f, err = Export(conn.Device, byte(ref))
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
	return &WrapResult{Ref: ref, Path: o.Path, SHA256: fmt.Sprintf("%x", sum), KCV: fmt.Sprintf("%X", bl.KCV), Size: len(data)}, nil
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
	Ref          int
	Force        bool
	PIN          []byte
	AllowLastTry bool
}

// RestoreResult tells what Restore did.
type RestoreResult struct {
	Ref     int    `json:"key_reference"`
	Type    string `json:"type"`
	Label   string `json:"label"`
	ID      string `json:"id"`
	KCV     string `json:"dkek_kcv"`
	Replace bool   `json:"replaced"`
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
		fids, err := loginForRestore(conn, o.PIN, o.AllowLastTry, p.bl.KCV)
		if err != nil {
			return nothingRestored(err)
		}
		return restoreOne(conn, p, fids, o.Ref, o.Force)
	})
	if err != nil {
		return nil, err
	}
	return &p.res, nil
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
	f, err := wrap.ParseFile(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	bl, err := wrap.ParseBlob(f.Blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	p := &prepared{name: name, f: f, bl: bl, res: RestoreResult{KCV: fmt.Sprintf("%X", bl.KCV), Type: bl.Type.String(), HasPRKD: len(f.PRKD) > 0, HasCert: len(f.Cert) > 0}}
	if len(f.Cert) > 0 {
		if c, err := cvc.Parse(f.Cert); err == nil {
			p.pub = &c.PublicKey
		}
	}
	if d, err := pkcs15.Parse(f.PRKD); err == nil {
		p.res.Label = d.Label
		p.res.ID = fmt.Sprintf("%X", d.ID)
	}
	return p, nil
}

// loginForRestore selects, logs in and checks that the device's DKEK is
// complete and is the one kcv names. It returns the device's file list.
func loginForRestore(conn *device.Conn, pin []byte, allowLastTry bool, kcv [8]byte) ([]uint16, error) {
	if _, err := conn.SelectApplication(); err != nil {
		return nil, err
	}
	if err := conn.Login(pin, allowLastTry); err != nil {
		return nil, err
	}
	st, err := conn.DKEKStatus()
	if err != nil {
		return nil, err
	}
	if !st.Complete() {
		if st.Shares == 0 {
			return nil, fmt.Errorf("%w: restoring needs the DKEK the backup was made under", hsm.ErrNoDKEK)
		}
		return nil, fmt.Errorf("the device's DKEK is incomplete (%d of %d shares imported): import the remaining shares first", st.Shares-st.Outstanding, st.Shares)
	}
	if st.KCV != kcv {
		return nil, fmt.Errorf("%w: backup was made under DKEK %X, device has %s: import the shares of the DKEK %X, or restore into the device that holds it", ErrWrongDKEK, kcv, st.KCVHex(), kcv)
	}
	return conn.ListObjects()
}

// restoreOne unwraps one prepared backup after loginForRestore.
func restoreOne(conn *device.Conn, p *prepared, fids []uint16, ref int, force bool) error {
	res, f, bl := &p.res, p.f, p.bl
	var err error
	if ref < 0 {
		if ref, err = keystore.FreeRef(fids); err != nil {
			return err
		}
	} else if ref < 1 || ref > 255 {
		return errors.New("key reference must be from 1 to 255 (0 is the device's own key)")
	} else if keystore.Occupied(fids, ref) {
		if !force {
			return fmt.Errorf("%w: key reference %d holds a key: choose a free reference, omit --key-reference to take one, or add --force to replace it", ErrOccupied, ref)
		}
		res.Replace = true
	}
	res.Ref = ref
	r := byte(ref)
	// finish is the command that completes an interrupted restore of this
	// key whatever state it left: the reference was free or --force was
	// given, and UNWRAP KEY replaces a key only with one that decodes, so
	// running it again can only put the backup's key there.
	finish := fmt.Sprintf("finish with 'pico-hsm-tool unwrap-key %s --key-reference %d --force'", p.name, ref)
	if err := conn.UnwrapKey(r, f.Blob); err != nil {
		// Only a status word that refuses (6400 the blob does not decode,
		// 6982 no PIN session, ...) says the firmware did nothing.
		refused := device.Refused(err)
		switch {
		case !refused && res.Replace:
			return fmt.Errorf("%w; key reference %d holds either its old key or the restored one (without its label and certificate): %s", err, ref, finish)
		case !refused:
			return fmt.Errorf("%w; key reference %d is either still free or holds the restored key (without its label and certificate): %s", err, ref, finish)
		case res.Replace:
			return fmt.Errorf("%w; the key at reference %d is unchanged", err, ref)
		}
		return err
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
