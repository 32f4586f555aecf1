package keyimport

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// Errors of Import, matched with errors.Is.
var (
	// ErrWrongDKEK is shares that make another DKEK than the device's.
	ErrWrongDKEK = errors.New("the DKEK shares do not make the device's DKEK")
	// ErrOccupied is a --key-reference that holds a key.
	ErrOccupied = errors.New("key reference in use")
	// ErrMismatch is a key on the device that is not the software key.
	ErrMismatch = errors.New("the imported key does not match the software key")
)

// ImportOptions are the inputs of Import.
type ImportOptions struct {
	// Name names the key file in messages.
	Name string
	// Label and ID go into the PKCS#15 description; a nil ID is
	// DefaultID.
	Label string
	ID    []byte
	// Ref is the key reference to import into, or -1 for the lowest free.
	Ref int
	// NoExport leaves WRAP out of the key's allowed algorithms.
	NoExport bool
	// AllowDuplicate imports the key even when another key has its label
	// or ID (keystore.DuplicateError).
	AllowDuplicate bool
	PIN            []byte
	AllowLastTry   bool
	// Rand supplies the blob's random bytes and the test digest.
	Rand io.Reader
	// Replace lets the key replace another key at Ref (--force), once
	// Backup proves a backup of the key replaced (keystore.CheckBackup, as
	// delete-key), or with NoBackupCheck.
	Replace       bool
	Backup        *keystore.Proof
	NoBackupCheck bool
	// Domain is the key domain the key must land in, or -1 for the one
	// UNWRAP KEY picks: the first whose DKEK check value is the shares'
	// (pico-hsm cmd_key_unwrap.c).
	Domain int
}

// ImportResult tells what Import did.
type ImportResult struct {
	Ref    int    `json:"key_reference"`
	Key    string `json:"key"`
	Format string `json:"format"`
	Label  string `json:"label"`
	ID     string `json:"id"`
	KCV    string `json:"dkek_kcv"`
	// Exportable is false with NoExport.
	Exportable bool `json:"exportable"`
	// Domain is the key domain the key landed in; DomainsOnDevice tells
	// a device known to have key domains beyond domain 0.
	Domain          int  `json:"key_domain"`
	DomainsOnDevice bool `json:"-"`
	// PublicKeyMatches tells that the public key read back from the
	// device's CV request is the software key's (RSA and EC).
	PublicKeyMatches bool `json:"public_key_matches"`
	// SignatureVerified tells that a signature made by the device over a
	// random digest verifies with the software public key (RSA and EC).
	SignatureVerified bool `json:"signature_verified"`
	// Certificate is the subject of the X.509 certificate written to EF
	// CExx in place of the CV request, "" when the key has none.
	Certificate string `json:"certificate,omitempty"`
	// CertificateIssuer is its issuer.
	CertificateIssuer string `json:"certificate_issuer,omitempty"`
	// AlreadyPresent tells that Ref held this very key (same public key)
	// already: nothing was imported.
	AlreadyPresent bool `json:"already_present"`
	// Replaced describes the key that Ref held and the import replaced.
	Replaced string `json:"replaced,omitempty"`
	// BackupVerified tells that a backup of the replaced key was proven.
	BackupVerified bool `json:"replaced_backup_proven"`
}

// noExportAlgorithms is the allowed-algorithm list a blob carries for a key
// that must never leave the device: every signing, decryption and
// derivation algorithm of its type, without WRAP (92); the list
// generate-key --no-export sets (keystore signingAlgorithms; pico-hsm
// sc_hsm.h ALGO_*). The firmware stores a blob's list as the key's
// metadata 91 (cmd_key_unwrap.c).
func noExportAlgorithms(t wrap.KeyType) []byte {
	switch t {
	case wrap.TypeRSA:
		return []byte{0x20, 0x21, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45}
	case wrap.TypeEC:
		return []byte{0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x80}
	}
	return []byte{0x10, 0x11, 0x18}
}

// Import puts software key k into the device under dkek, checking cheap
// things first and changing nothing until every check has passed:
//
//   - log in, then compare the DKEK check value of the shares with the
//     device's (the firmware only answers 6400 to a foreign blob);
//   - pick the reference: the lowest free one, or o.Ref, which must be
//     free;
//   - refuse a label or ID another key has, unless o.AllowDuplicate;
//   - UNWRAP KEY with the blob Seal makes (kek.c dkek_encode_key), then
//     read back the CV request the firmware writes into EF CExx and compare
//     its public key with the software key's, and, for RSA and EC, sign a
//     random digest on the device and verify it with the software key;
//   - when k has an X.509 certificate, write it to EF CExx in place of
//     the CV request, as OpenSC does when it stores a certificate for a
//     key (pkcs15init/pkcs15-sc-hsm.c sc_hsm_emu_store_cert: a
//     certificate whose ID is a key's goes to EE_CERTIFICATE_PREFIX and
//     the key reference, with no certificate description: OpenSC's
//     pkcs15-sc-hsm.c sc_pkcs15emu_sc_hsm_add_prkd lists an X.509 CExx
//     as the key's certificate under the key's label and ID);
//   - only then write the PKCS#15 description (EF C4xx) with the reference
//     used, so that a key that fails the checks is never listed under its
//     label.
func Import(conn *device.Conn, k *Key, dkek []byte, o ImportOptions) (*ImportResult, error) {
	id := o.ID
	if id == nil {
		id = k.DefaultID()
	}
	var allowed []byte
	if o.NoExport {
		allowed = noExportAlgorithms(k.Wrap.Type)
	}
	blob, err := wrap.Seal(dkek, k.Wrap, allowed, o.Rand)
	if err != nil {
		return nil, err
	}
	kcv := hsm.KCV(dkek)
	res := &ImportResult{Key: k.String(), Format: k.Format, Label: o.Label, ID: fmt.Sprintf("%X", id),
		KCV: fmt.Sprintf("%X", kcv), Exportable: !o.NoExport}
	err = conn.Transaction(func() error {
		fids, dom, many, err := login(conn, o.PIN, o.AllowLastTry, kcv, o.Domain)
		if err != nil {
			return nothingImported(err)
		}
		res.Domain, res.DomainsOnDevice = dom, many
		if o.Ref >= 1 && o.Ref <= 255 && keystore.Occupied(fids, o.Ref) {
			done, err := occupied(conn, k, o, res)
			if err != nil || done {
				return err
			}
			fids = slices.DeleteFunc(slices.Clone(fids), func(f uint16) bool { return byte(f) == byte(o.Ref) })
		}
		ref, err := chooseRef(fids, o.Ref)
		if err != nil {
			return err
		}
		if !o.AllowDuplicate {
			keys, err := keystore.ListFrom(conn.Device, fids, keystore.ReadPRKD)
			if err != nil {
				return nothingImported(err)
			}
			if err := keystore.CheckDuplicate(keys, ref, o.Label, hex.EncodeToString(id)); err != nil {
				return fmt.Errorf("%s: %w: add --allow-duplicate to import it anyway, give another --label or --id, or delete the other key first; nothing was imported", o.Name, err)
			}
		}
		res.Ref = ref
		return put(conn, k, blob, ref, o, id, res)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// login is keystore.LoginForUnwrapDomain with import-key's words for a
// device whose DKEK, or none of whose key domains' DKEKs, is the one the
// shares make. It returns the file list, the key domain the key will land
// in, and whether the device is known to have key domains beyond 0. With
// want >= 0 the key must land in key domain want.
func login(conn *device.Conn, pin []byte, allowLastTry bool, kcv [8]byte, want int) ([]uint16, int, bool, error) {
	if want >= 0 {
		// The key can land in domain want only if no lower domain has the
		// same DKEK: the domains read tell.
		doms, err := keystore.LoginForUnwrapAll(conn, pin, allowLastTry)
		if err != nil {
			return nil, 0, false, err
		}
		if want > 0 && !doms.All {
			// Only domain 0 was read (it is complete): read them all.
			list, err := conn.KeyDomains()
			if err != nil {
				return nil, 0, false, err
			}
			doms = &keystore.Domains{List: list, All: true}
		}
		return chosenDomain(conn, doms, kcv, want)
	}
	fids, dom, doms, err := keystore.LoginForUnwrapDomain(conn, pin, allowLastTry, kcv)
	var dm *keystore.DKEKMismatch
	var nm *keystore.NoDomainMatch
	switch {
	case err == nil:
		return fids, dom, doms.Many(), nil
	case errors.As(err, &nm):
		return nil, 0, false, fmt.Errorf("%w: they make DKEK %X, which no key domain of this device has (%s): give the --dkek-share files (and passwords) of one of the device's domains; nothing was imported", ErrWrongDKEK, kcv, keystore.DescribeDomains(nm.Domains))
	case !errors.As(err, &dm):
		return nil, 0, false, err
	case dm.None():
		return nil, 0, false, fmt.Errorf("%w: importing a key needs a DKEK; nothing was imported", hsm.ErrNoDKEK)
	case dm.Incomplete():
		return nil, 0, false, fmt.Errorf("%v: import the remaining shares first; nothing was imported", dm)
	}
	return nil, 0, false, fmt.Errorf("%w: the shares make DKEK %X, the device has %s: give the --dkek-share files (and passwords) of the device's DKEK; nothing was imported", ErrWrongDKEK, kcv, dm.Status.KCVHex())
}

// chosenDomain checks that a key made under kcv lands in key domain want:
// UNWRAP KEY takes the first complete domain with that check value.
func chosenDomain(conn *device.Conn, doms *keystore.Domains, kcv [8]byte, want int) ([]uint16, int, bool, error) {
	var wantDom *hsm.KeyDomain
	for i := range doms.List {
		if doms.List[i].Domain == want {
			wantDom = &doms.List[i]
		}
	}
	switch {
	case wantDom == nil:
		return nil, 0, false, fmt.Errorf("%w; nothing was imported", &hsm.DomainError{Domain: want, Err: hsm.ErrNoSuchDomain})
	case !wantDom.SetUp:
		return nil, 0, false, fmt.Errorf("%w; nothing was imported", &hsm.DomainError{Domain: want, Err: hsm.ErrDomainNotSetUp})
	case wantDom.Status.Shares == 0:
		return nil, 0, false, fmt.Errorf("key domain %d has no DKEK: %w; nothing was imported", want, hsm.ErrNoDKEK)
	case !wantDom.Status.Complete():
		return nil, 0, false, fmt.Errorf("key domain %d waits for DKEK shares (%d of %d imported): import the remaining shares first (import-dkek-share --key-domain %d); nothing was imported",
			want, wantDom.Status.Shares-wantDom.Status.Outstanding, wantDom.Status.Shares, want)
	case wantDom.Status.KCV != kcv:
		return nil, 0, false, fmt.Errorf("%w: they make DKEK %X, key domain %d has %s: give the --dkek-share files (and passwords) of key domain %d; nothing was imported", ErrWrongDKEK, kcv, want, wantDom.Status.KCVHex(), want)
	}
	if got := doms.Match(kcv); got != want {
		return nil, 0, false, fmt.Errorf("key domain %d has the same DKEK as key domain %d, and the device puts the key into the first: it cannot land in key domain %d; nothing was imported", want, got, want)
	}
	fids, err := conn.ListObjects()
	if err != nil {
		return nil, 0, false, err
	}
	return fids, want, doms.Many(), nil
}

func nothingImported(err error) error {
	if device.OutcomeUnknown(err) {
		return fmt.Errorf("%w; nothing was imported, the device is unchanged%s", err, device.Again(err))
	}
	return err
}

// chooseRef picks the lowest free reference when ref < 0, else ref, which
// must be free: import-key never replaces a key.
// occupied decides what to do with a --key-reference that holds a key:
// the same key (same public key) is already there, and nothing is done
// (done), so that an import can run twice; another key is refused, unless
// o.Replace, and then only once a backup of it is proven (or
// o.NoBackupCheck), as delete-key asks: UNWRAP KEY replaces the key for
// good (pico-hsm cmd_key_unwrap.c writes over the key file).
func occupied(conn *device.Conn, k *Key, o ImportOptions, res *ImportResult) (done bool, err error) {
	held, err := keystore.Read(conn.Device, byte(o.Ref))
	if err != nil {
		return false, nothingImported(err)
	}
	if held.PublicKey != nil && k.SamePublicKey(held.PublicKey) {
		res.Ref, res.AlreadyPresent, res.Label, res.ID = o.Ref, true, held.Label, held.ID
		res.Domain, res.Exportable = held.Domain, held.Exportable
		return true, nil
	}
	desc := fmt.Sprintf("%s %q, ID %s", held.Describe(), held.Label, held.ID)
	if !o.Replace {
		return false, fmt.Errorf("%w: key reference %d holds another key (%s): choose a free reference, omit --key-reference to take the lowest free one, or replace it with --force (after a proven backup of it: --backup FILE, or --no-backup-check); nothing was imported", ErrOccupied, o.Ref, desc)
	}
	st, err := conn.DomainStatus(held.Domain)
	if errors.Is(err, hsm.ErrDomainNotSetUp) {
		st, err = hsm.DKEKStatus{}, nil
	}
	if err != nil {
		return false, nothingImported(err)
	}
	exportable := held.Exportable && st.Shares > 0
	proven, err := keystore.CheckBackup(held, exportable, st.KCV, o.Backup, o.NoBackupCheck)
	if err != nil {
		return false, fmt.Errorf("--force would destroy key reference %d (%s): %w; nothing was imported", o.Ref, desc, err)
	}
	res.Replaced, res.BackupVerified = desc, proven
	return false, nil
}

func chooseRef(fids []uint16, ref int) (int, error) {
	switch {
	case ref < 0:
		return keystore.FreeRef(fids)
	case ref < 1 || ref > 255:
		return 0, errors.New("--key-reference must be from 1 to 255 (0 is the device's own key)")
	case keystore.Occupied(fids, ref):
		return 0, fmt.Errorf("%w: key reference %d holds a key: choose a free reference, or omit --key-reference to take the lowest free one; nothing was imported", ErrOccupied, ref)
	}
	return ref, nil
}

// put unwraps the blob into ref, checks the key and writes its description.
func put(conn *device.Conn, k *Key, blob []byte, ref int, o ImportOptions, id []byte, res *ImportResult) error {
	r := byte(ref)
	if err := conn.UnwrapKey(r, blob); err != nil {
		if device.Refused(err) {
			return fmt.Errorf("%w; nothing was imported", err)
		}
		return fmt.Errorf("%w; key reference %d is either still free or holds the imported key without its label: check with list-keys", err, ref)
	}
	// From here on the key is on the device, without its description.
	left := fmt.Sprintf("the key is at reference %d without its label and ID: delete it (key files CC%02X and CE%02X) before importing again", ref, r, r)
	if k.Wrap.Type != wrap.TypeAES {
		req, err := conn.ReadFile(hsm.KeyFID(hsm.PrefixEECert, r))
		if err != nil {
			return fmt.Errorf("reading the imported key back failed: %w; %s", err, left)
		}
		c, err := cvc.Parse(req)
		if err != nil {
			return fmt.Errorf("the imported key's CV request does not parse: %w; %s", err, left)
		}
		if !k.SamePublicKey(&c.PublicKey) {
			return fmt.Errorf("%w: the public key the device shows for reference %d is another: do not use it; %s", ErrMismatch, ref, left)
		}
		res.PublicKeyMatches = true
		if err := signCheck(conn, k, r, o.Rand); err != nil {
			return fmt.Errorf("%w; %s", err, left)
		}
		res.SignatureVerified = true
	}
	if k.Cert != nil {
		if err := conn.UpdateFile(hsm.KeyFID(hsm.PrefixEECert, r), k.Cert.DER); err != nil {
			return fmt.Errorf("the key was imported at reference %d and checked, but writing its certificate failed: %w; %s", ref, err, left)
		}
		res.Certificate, res.CertificateIssuer = k.Cert.Subject, k.Cert.Issuer
	}
	d, err := pkcs15.New(k.Kind(), o.Label, id, ref, k.Bits())
	if err != nil {
		return err
	}
	if err := conn.UpdateFile(hsm.KeyFID(hsm.PrefixPRKD, r), d.Marshal()); err != nil {
		return fmt.Errorf("the key was imported at reference %d and checked, but writing its description (label and ID) failed: %w", ref, err)
	}
	return nil
}

// SamePublicKey tells whether p, read from the device, is k's public key.
func (k *Key) SamePublicKey(p *cvc.PublicKey) bool {
	switch k.Wrap.Type {
	case wrap.TypeRSA:
		return p.N != nil && p.E != nil && p.N.Cmp(new(big.Int).SetBytes(k.Wrap.N)) == 0 && p.E.Cmp(new(big.Int).SetBytes(k.Wrap.E)) == 0
	case wrap.TypeEC:
		return len(p.Q) > 0 && bytes.Equal(p.Q, k.Wrap.ECQ)
	}
	return false
}

// signCheck has the device sign a random SHA-256 digest with key ref and
// verifies the signature with k's public key. RSA uses PKCS#1 v1.5 over
// the message (algorithm 33, the firmware hashes it), EC plain ECDSA over
// the digest (algorithm 70); the firmware answers ECDSA as a DER
// ECDSA-Sig-Value (cmd_signature.c, mbedtls_ecdsa_write_signature).
func signCheck(conn *device.Conn, k *Key, ref byte, rnd io.Reader) error {
	msg := make([]byte, 32)
	if _, err := io.ReadFull(rnd, msg); err != nil {
		return err
	}
	digest := sha256.Sum256(msg)
	switch k.Wrap.Type {
	case wrap.TypeRSA:
		sig, err := conn.Sign(ref, hsm.AlgRSAPKCS1SHA256, msg)
		if err != nil {
			return fmt.Errorf("test signature with the imported key: %w", err)
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(k.Wrap.N), E: int(new(big.Int).SetBytes(k.Wrap.E).Int64())}
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
			return fmt.Errorf("%w: a test signature made by the device does not verify with the software key", ErrMismatch)
		}
		return nil
	case wrap.TypeEC:
		sig, err := conn.Sign(ref, hsm.AlgECDSA, digest[:])
		if err != nil {
			return fmt.Errorf("test signature with the imported key: %w", err)
		}
		r, s, ok := parseECDSA(sig)
		if !ok || !k.Curve.Verify(k.Wrap.ECQ, digest[:], r, s) {
			return fmt.Errorf("%w: a test signature made by the device does not verify with the software key", ErrMismatch)
		}
		return nil
	}
	return nil
}

// parseECDSA reads a DER ECDSA-Sig-Value (RFC 3279 2.2.3).
func parseECDSA(sig []byte) (r, s *big.Int, ok bool) {
	var v struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(sig, &v)
	if err != nil || len(rest) != 0 || v.R == nil || v.S == nil {
		return nil, nil, false
	}
	return v.R, v.S, true
}
