// Package keystore knows the keys on a device: it lists them with what
// their files say (type, size or curve, label, ID, exportability, a
// certificate), resolves a key reference, label or ID to one key, and
// generates keys with the PKCS#15 description OpenSC writes, so that
// OpenSC's pkcs15-tool and pkcs11-tool list them.
package keystore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pkcs15"
)

// Key is one key on the device.
type Key struct {
	// Ref is the key reference, the xx of the key file CCxx.
	Ref int `json:"key_reference"`
	// Type is "RSA", "EC" or "AES"; "unknown" when no description says.
	Type string `json:"type"`
	// Bits is the RSA modulus or AES key size, or the EC field size.
	Bits int `json:"bits,omitempty"`
	// Curve names the EC curve when the public key shows it.
	Curve string `json:"curve,omitempty"`
	// Label and ID come from the PKCS#15 description in C4xx; ID is hex.
	Label string `json:"label"`
	ID    string `json:"id"`
	// Exportable tells whether the key may be wrapped under the DKEK: its
	// allowed algorithm list (metadata 91) is absent or names WRAP (92).
	Exportable bool `json:"exportable"`
	// Domain is the key domain the key belongs to (key metadata tag 92 in
	// the key file's FCP; pico-hsm cmd_key_domain.c get_key_domain): 0
	// without the tag. Known only when the key file was selected
	// (ReadMeta).
	Domain int `json:"key_domain"`
	// Certificate is "cv-request", "certificate" (X.509 or CV) or "".
	Certificate string `json:"certificate,omitempty"`

	// PRKD and Cert are the raw contents of C4xx and CExx.
	PRKD []byte `json:"-"`
	Cert []byte `json:"-"`
	// PublicKey is the public key of the CV request or certificate.
	PublicKey *cvc.PublicKey `json:"-"`
}

// Describe is a one-line human description: "RSA 2048" or "EC secp256r1".
func (k Key) Describe() string {
	switch {
	case k.Curve != "":
		return k.Type + " " + k.Curve
	case k.Bits > 0:
		return fmt.Sprintf("%s %d", k.Type, k.Bits)
	}
	return k.Type
}

// List reads every key on the device except the device's own (reference
// 0): for each, the key file's FCP (its metadata), its PKCS#15
// description and its certificate. It needs no PIN.
func List(d *hsm.Device) ([]Key, error) {
	fids, err := d.ListObjects()
	if err != nil {
		return nil, err
	}
	return ListFrom(d, fids, ReadAll)
}

// CountDomainKeys fills in the number of keys of each key domain of st, a
// status read from d, on a device with key domains (st.KeyDomains not
// empty; nothing is sent otherwise). Each key's domain is its metadata tag
// 92 (ReadMeta): one LIST KEYS and one SELECT per key, no PIN.
func CountDomainKeys(d *hsm.Device, st *hsm.Status) error {
	if len(st.KeyDomains) == 0 {
		return nil
	}
	fids, err := d.ListObjects()
	if err != nil {
		return err
	}
	keys, err := ListFrom(d, fids, ReadMeta)
	if err != nil {
		return err
	}
	n := map[int]int{}
	for _, k := range keys {
		n[k.Domain]++
	}
	for i := range st.KeyDomains {
		st.KeyDomains[i].Keys = n[st.KeyDomains[i].Domain]
	}
	st.KeysCounted = true
	return nil
}

// Parts says which of a key's files ListFrom reads; each costs one APDU
// per key.
type Parts int

const (
	// ReadMeta selects the key file CCxx for its FCP: the allowed
	// algorithms, which say whether the key is exportable.
	ReadMeta Parts = 1 << iota
	// ReadPRKD reads the PKCS#15 description C4xx: label, ID, type, size.
	ReadPRKD
	// ReadCert reads CExx: the certificate or CV request, with the public
	// key and, for EC, the curve.
	ReadCert
	ReadAll = ReadMeta | ReadPRKD | ReadCert
)

// ListFrom reads the keys of a LIST KEYS answer (fids), reading only the
// parts asked for. Without ReadMeta, Exportable is left true: only WRAP
// KEY, or the key file's FCP, can tell. A description the list does not
// name is not read (the list names every C4xx; it never names CExx).
func ListFrom(d *hsm.Device, fids []uint16, parts Parts) ([]Key, error) {
	present := map[uint16]bool{}
	for _, f := range fids {
		present[f] = true
	}
	var keys []Key
	for _, f := range fids {
		if byte(f>>8) != hsm.PrefixKey || byte(f) == 0 {
			continue
		}
		p := parts
		if !present[hsm.KeyFID(hsm.PrefixPRKD, byte(f))] {
			p &^= ReadPRKD
		}
		k, err := read(d, byte(f), p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	// By key reference: the firmware answers LIST KEYS in its file order
	// (a key written later, or deleted and written again, comes later;
	// pico-keys-sdk's file system), so sorting here keeps every listing,
	// backup manifest and restore plan the same on every device.
	sort.SliceStable(keys, func(i, j int) bool { return keys[i].Ref < keys[j].Ref })
	return keys, nil
}

// Read reads one key's files.
func Read(d *hsm.Device, ref byte) (Key, error) {
	return read(d, ref, ReadAll)
}

func read(d *hsm.Device, ref byte, parts Parts) (Key, error) {
	k := Key{Ref: int(ref), Type: "unknown", Exportable: true}
	if parts&ReadMeta != 0 {
		fi, err := d.SelectFile(hsm.KeyFID(hsm.PrefixKey, ref))
		if err != nil {
			if apdu.IsStatus(err, apdu.SWFileNotFound) {
				return k, fmt.Errorf("key reference %d not found: %w", ref, hsm.ErrKeyNotFound)
			}
			return k, err
		}
		if allowed, ok := fi.AllowedAlgorithms(); ok {
			k.Exportable = bytes.IndexByte(allowed, hsm.AlgWrap) >= 0
		}
		k.Domain = fi.KeyDomain()
	}
	if parts&ReadPRKD != 0 {
		prkd, err := d.ReadFile(hsm.KeyFID(hsm.PrefixPRKD, ref))
		switch {
		case err == nil:
			k.PRKD = prkd
			k.describePRKD()
		case !apdu.IsStatus(err, apdu.SWFileNotFound):
			return k, err
		}
	}
	if parts&ReadCert == 0 {
		return k, nil
	}
	cert, err := d.ReadFile(hsm.KeyFID(hsm.PrefixEECert, ref))
	switch {
	case err == nil && len(cert) > 0:
		k.Cert = cert
		k.describeCert()
	case err != nil && !apdu.IsStatus(err, apdu.SWFileNotFound):
		return k, err
	}
	return k, nil
}

func (k *Key) describePRKD() {
	p, err := pkcs15.Parse(k.PRKD)
	if err != nil {
		return
	}
	k.Label = p.Label
	k.ID = strings.ToUpper(hex.EncodeToString(p.ID))
	k.Bits = p.Bits
	switch p.Kind {
	case pkcs15.RSA:
		k.Type = "RSA"
	case pkcs15.EC:
		k.Type = "EC"
	case pkcs15.AES:
		k.Type = "AES"
	}
}

func (k *Key) describeCert() {
	c, err := cvc.Parse(k.Cert)
	if err != nil {
		if len(k.Cert) > 0 && k.Cert[0] == 0x30 {
			k.Certificate = "certificate" // X.509
			if pub, err := cvc.X509PublicKey(k.Cert); err == nil {
				k.describePublicKey(pub)
			}
		}
		return
	}
	k.Certificate = "certificate"
	if c.Authenticated || c.CAR == "" || c.CAR != c.CHR && c.OuterCAR != "" {
		k.Certificate = "cv-request"
	}
	pub := c.PublicKey
	k.describePublicKey(&pub)
}

// describePublicKey sets the key's public key, type and size or curve.
func (k *Key) describePublicKey(pub *cvc.PublicKey) {
	k.PublicKey = pub
	switch {
	case pub.N != nil:
		k.Type = "RSA"
		k.Bits = pub.N.BitLen()
	case len(pub.Prime) > 0:
		k.Type = "EC"
		if cv := ecc.ByPrime(pub.Prime); cv != nil {
			k.Curve = cv.Name
			k.Bits = cv.BitSize()
		}
	}
}

// Spec names a key by reference, label or ID; the zero value names none.
type Spec struct {
	Ref   int // -1 when not given
	Label string
	ID    []byte
}

// Errors of Resolve.
var (
	ErrNoSuchKey = errors.New("no such key")
	ErrAmbiguous = errors.New("more than one key matches")
)

// Resolve picks the one key s names. Users mix up key reference and ID
// (OpenSC issue 2685), so a reference that does not exist but is also an
// ID says so.
func Resolve(keys []Key, s Spec) (Key, error) {
	var match []Key
	for _, k := range keys {
		switch {
		case s.Ref >= 0 && k.Ref == s.Ref,
			s.Label != "" && k.Label == s.Label,
			s.ID != nil && strings.EqualFold(k.ID, hex.EncodeToString(s.ID)):
			match = append(match, k)
		}
	}
	switch len(match) {
	case 1:
		return match[0], nil
	case 0:
		what := describeSpec(s)
		if s.Ref >= 0 {
			for _, k := range keys {
				if k.ID == fmt.Sprintf("%02X", s.Ref) {
					return Key{}, fmt.Errorf("%w: %s (the key with ID %s is at key reference %d: key references and IDs differ)", ErrNoSuchKey, what, k.ID, k.Ref)
				}
			}
		}
		return Key{}, fmt.Errorf("%w: %s; list them with list-keys", ErrNoSuchKey, what)
	}
	refs := make([]string, len(match))
	for i, k := range match {
		refs[i] = fmt.Sprint(k.Ref)
	}
	return Key{}, fmt.Errorf("%w: %s matches key references %s: use --key-reference", ErrAmbiguous, describeSpec(s), strings.Join(refs, ", "))
}

func describeSpec(s Spec) string {
	switch {
	case s.Ref >= 0:
		return fmt.Sprintf("key reference %d", s.Ref)
	case s.Label != "":
		return fmt.Sprintf("label %q", s.Label)
	}
	return fmt.Sprintf("ID %X", s.ID)
}

// FreeRef returns the lowest key reference from 1 to 255 with neither a
// key file nor a key description (newer sc-hsm-tool picks a free one too).
func FreeRef(fids []uint16) (int, error) {
	used := map[byte]bool{}
	for _, f := range fids {
		switch byte(f >> 8) {
		case hsm.PrefixKey, hsm.PrefixPRKD, hsm.PrefixEECert:
			used[byte(f)] = true
		}
	}
	for r := 1; r <= 255; r++ {
		if !used[byte(r)] {
			return r, nil
		}
	}
	return 0, errors.New("the device has no free key reference: delete a key first")
}

// Occupied reports whether ref has a key file or a key description.
func Occupied(fids []uint16, ref int) bool {
	for _, f := range fids {
		if int(byte(f)) == ref && (byte(f>>8) == hsm.PrefixKey || byte(f>>8) == hsm.PrefixPRKD) {
			return true
		}
	}
	return false
}

// DuplicateError is a new key's label or ID that keys already on the
// device have. Labels and IDs name keys (--label, --id, and PKCS#11's
// CKA_LABEL and CKA_ID in pkcs11-tool and OpenSC), so a second key with
// the same one makes every later use of that name ambiguous.
type DuplicateError struct {
	Label     string
	LabelRefs []int // the keys that have Label already
	ID        string
	IDRefs    []int // the keys that have ID already
}

func (e *DuplicateError) Error() string {
	var what string
	switch {
	case len(e.IDRefs) == 0:
		what = fmt.Sprintf("%s already %s the label %q: a second key with the same label would make --label ambiguous", refList(e.LabelRefs), has(e.LabelRefs), e.Label)
	case len(e.LabelRefs) == 0:
		what = fmt.Sprintf("%s already %s the ID %s: a second key with the same ID would make --id ambiguous", refList(e.IDRefs), has(e.IDRefs), e.ID)
	case slices.Equal(e.LabelRefs, e.IDRefs):
		what = fmt.Sprintf("%s already %s the label %q and the ID %s: a second key with the same label and ID would make --label and --id ambiguous", refList(e.LabelRefs), has(e.LabelRefs), e.Label, e.ID)
	default:
		what = fmt.Sprintf("%s already %s the label %q, and %s the ID %s: a second key with the same label and ID would make --label and --id ambiguous", refList(e.LabelRefs), has(e.LabelRefs), e.Label, refList(e.IDRefs), e.ID)
	}
	return what
}

func refList(refs []int) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = fmt.Sprint(r)
	}
	if len(refs) == 1 {
		return "key reference " + s[0]
	}
	return "key references " + strings.Join(s, ", ")
}

func has(refs []int) string {
	if len(refs) == 1 {
		return "has"
	}
	return "have"
}

// CheckDuplicate returns a *DuplicateError when one of keys, other than the
// one at ref (which the new key replaces), has the label or the ID (hex,
// in any case) of a new key at ref. An empty label or ID is none.
func CheckDuplicate(keys []Key, ref int, label, id string) error {
	e := &DuplicateError{Label: label, ID: strings.ToUpper(id)}
	for _, k := range keys {
		if k.Ref == ref {
			continue
		}
		if label != "" && k.Label == label {
			e.LabelRefs = append(e.LabelRefs, k.Ref)
		}
		if id != "" && strings.EqualFold(k.ID, id) {
			e.IDRefs = append(e.IDRefs, k.Ref)
		}
	}
	if len(e.LabelRefs) == 0 && len(e.IDRefs) == 0 {
		return nil
	}
	return e
}

// MarkUnexportable clears Exportable for the keys whose key domain has no
// DKEK: a device initialized without --dkek-shares (pico-hsm's
// cmd_initialize.c writes 00 00 to EF 10A0, and the status query,
// cmd_key_domain.c 80 52 00 D, answers 0 shares), a key domain slot that
// is not set up (6A88), or a device never initialized (6B00). WRAP KEY
// refuses such keys with 6A88 (cmd_key_wrap.c), whatever their algorithm
// list says. A domain that still waits for shares has a DKEK. One query
// per key domain the keys use, no PIN. A domain whose query the device
// answers with another status word leaves its keys as their algorithm
// lists say; a failure of the device or the reader is returned. all
// tells that no key's domain has a DKEK.
func MarkUnexportable(d *hsm.Device, keys []Key) (all bool, err error) {
	none := map[int]bool{}
	for _, k := range keys {
		if _, done := none[k.Domain]; done {
			continue
		}
		st, err := d.DomainStatus(k.Domain)
		switch {
		case errors.Is(err, hsm.ErrNoDKEK), errors.Is(err, hsm.ErrDomainNotSetUp):
			none[k.Domain] = true
		case errors.Is(err, hsm.ErrNoSuchDomain):
			none[k.Domain] = true
		case err != nil:
			var se *apdu.StatusError
			if !errors.As(err, &se) {
				return false, err // the device or the reader failed
			}
			none[k.Domain] = false
		default:
			none[k.Domain] = st.Shares == 0
		}
	}
	all = len(keys) > 0
	for i := range keys {
		if none[keys[i].Domain] {
			keys[i].Exportable = false
		} else {
			all = false
		}
	}
	return all, nil
}

// bigBytes returns the minimal big-endian bytes of v.
func bigBytes(v *big.Int) []byte { return v.Bytes() }
