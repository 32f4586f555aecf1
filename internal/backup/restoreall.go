package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// What RestoreAll plans for a key, before the device changes.
const (
	// ActionRestore: the key reference is free.
	ActionRestore = "restore"
	// ActionSkip: the key reference holds the backup's key already.
	ActionSkip = "skip"
	// ActionReplace: the key reference holds another key, and the person
	// named it to be replaced.
	ActionReplace = "replace"
	// ActionRefuse: the key reference holds another key, or one that
	// cannot be compared with the backup's, and was not named.
	ActionRefuse = "refuse"
	// ActionNotRestorable: no key domain of the device has the DKEK the
	// key was wrapped under; nothing is done for it, while the other keys
	// are restored.
	ActionNotRestorable = "not restorable"
)

// What became of a key of RestoreAll.
const (
	StatusRestored = "restored"
	StatusReplaced = "replaced"
	StatusPresent  = "present"
	StatusFailed   = "failed"
	// StatusNotRestored: the restore stopped before this key, or before
	// the device changed.
	StatusNotRestored = "not restored"
	// StatusNotRestorable: the key's plan was ActionNotRestorable.
	StatusNotRestorable = "not restorable"
)

// KeyResult is one key of RestoreAll: the plan, then what became of it.
type KeyResult struct {
	File string `json:"file"`
	Ref  int    `json:"key_reference"`
	// Action is the plan (ActionRestore, ...); Reason says what the key
	// reference held that decided it.
	Action string `json:"action"`
	Reason string `json:"reason"`
	// Domain is the key domain the key lands in (the first whose DKEK has
	// the blob's check value, as UNWRAP KEY picks it: pico-hsm
	// cmd_key_unwrap.c), null when none has it.
	Domain *int `json:"key_domain"`
	// ShowDomain tells that the device has key domains beyond domain 0,
	// so that the plan names each key's.
	ShowDomain bool `json:"-"`
	// Status is the outcome (StatusRestored, ...).
	Status string         `json:"status"`
	Result *RestoreResult `json:"result,omitempty"`
	Error  string         `json:"error,omitempty"`
	// kcv is the blob's DKEK check value, for messages.
	kcv string
}

// RestoreAllOptions are the inputs of RestoreAll.
type RestoreAllOptions struct {
	Dir          string
	PIN          []byte
	AllowLastTry bool
	// Replace names the key references whose keys the backup's may replace
	// (restore --force --key-reference N); each must be one of the
	// backup's. Each replacement keeps the old key if it fails, as Restore
	// does.
	Replace []int
	// AllowDuplicate restores keys whose label or ID another key has.
	AllowDuplicate bool
	// OnPlan, when set, receives the plan once every key is checked,
	// before the device changes (and before a plan that cannot go ahead
	// is refused).
	OnPlan func([]KeyResult)
}

// RestoreAll restores every key of a backup directory into the key
// reference the manifest records, in one session, with Restore's safety
// rules, and can be run again: it changes the device only where the
// backup's keys are missing.
//
// Before the device is touched, every file is checked against its SHA-256
// and all must share one DKEK. Then, after the PIN, every key is planned:
// a free reference is restored; one that holds the same key (the same
// public key as the backup's certificate) is skipped; one that holds
// another key, or a key that cannot be compared (an AES key has no public
// key), is replaced only if named in o.Replace. Otherwise, and when a new
// key would share a label or ID with another (unless o.AllowDuplicate),
// nothing is restored.
//
// The error is ErrPartial when some keys were restored and others failed
// (or may have been restored in part: an interrupted UNWRAP KEY, or a key
// restored without its label), and another error when the device is
// certainly unchanged.
func RestoreAll(conn *device.Conn, o RestoreAllOptions) ([]KeyResult, error) {
	m, err := ReadManifest(o.Dir)
	if err != nil {
		return nil, err
	}
	if len(m.Keys) == 0 {
		return nil, fmt.Errorf("%s: the backup holds no key", o.Dir)
	}
	// The plan goes by key reference, whatever order the manifest lists
	// (a manifest written from a firmware's unsorted LIST KEYS, or by hand).
	sort.SliceStable(m.Keys, func(i, j int) bool { return m.Keys[i].Ref < m.Keys[j].Ref })
	byRef := map[int]string{}
	for _, e := range m.Keys {
		if e.Ref < 1 || e.Ref > 255 {
			return nil, fmt.Errorf("%s: the manifest gives %s key reference %d, not one from 1 to 255", o.Dir, e.File, e.Ref)
		}
		if f, ok := byRef[e.Ref]; ok {
			return nil, fmt.Errorf("%s: the manifest gives key reference %d to both %s and %s", o.Dir, e.Ref, f, e.File)
		}
		byRef[e.Ref] = e.File
	}
	replace := map[int]bool{}
	for _, r := range o.Replace {
		if _, ok := byRef[r]; !ok {
			return nil, fmt.Errorf("--key-reference %d: the backup has no key for key reference %d: name the references to replace among the backup's (%s)", r, r, refsOf(m.Keys))
		}
		replace[r] = true
	}
	preps := make([]*prepared, len(m.Keys))
	var kcvs [][8]byte
	seen := map[[8]byte]bool{}
	// An entry without "key_domain" comes from a manifest written before
	// key domains, when a backup held the keys of one DKEK: the
	// manifest's "dkek_kcv", or else the first such file's.
	var one *[8]byte
	if k, err := hex.DecodeString(m.KCV); err == nil && len(k) == 8 {
		one = (*[8]byte)(k)
	}
	for i, e := range m.Keys {
		path := filepath.Join(o.Dir, e.File)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, errors.Unwrap(err))
		}
		if sum := sha256.Sum256(b); fmt.Sprintf("%x", sum) != e.SHA256 {
			return nil, fmt.Errorf("%s: its SHA-256 differs from the manifest's: the file was changed or damaged; nothing was restored", path)
		}
		if preps[i], err = prepare(b, path); err != nil {
			return nil, err
		}
		kcv := preps[i].bl.KCV
		switch {
		case e.Domain != nil:
			if e.KCV != "" && !strings.EqualFold(e.KCV, fmt.Sprintf("%X", kcv)) {
				return nil, fmt.Errorf("%s: made under DKEK %X, the manifest says %s: nothing was restored", path, kcv, e.KCV)
			}
		case one == nil:
			one = &kcv
		case *one != kcv:
			return nil, fmt.Errorf("%s: made under DKEK %X, the other files under %X: nothing was restored", path, kcv, *one)
		}
		if !seen[kcv] {
			seen[kcv] = true
			kcvs = append(kcvs, kcv)
		}
	}
	results := make([]KeyResult, len(m.Keys))
	for i, e := range m.Keys {
		results[i] = KeyResult{File: e.File, Ref: e.Ref, Status: StatusNotRestored}
	}
	failed, restored, present, unrestorable := 0, 0, 0, 0
	// changed: a key that failed may have been restored in part, so the
	// device cannot be said to be unchanged.
	changed := false
	stoppedAt := -1
	planned := false
	err = conn.Transaction(func() error {
		doms, err := keystore.LoginForUnwrapAll(conn, o.PIN, o.AllowLastTry, kcvs...)
		if err != nil {
			return nothingRestored(err)
		}
		if !doms.Many() {
			// A device without key domains: a backup none of whose keys
			// its DKEK takes is refused as before key domains.
			any := false
			for _, k := range kcvs {
				any = any || doms.Match(k) >= 0
			}
			if !any {
				return restoreMismatch(doms.Mismatch(kcvs[0]), kcvs[0])
			}
		}
		fids, err := conn.ListObjects()
		if err != nil {
			return nothingRestored(err)
		}
		onDevice, err := plan(conn, preps, results, fids, replace, doms)
		if err != nil {
			return nothingRestored(err)
		}
		planned = true
		if o.OnPlan != nil {
			o.OnPlan(results)
		}
		if err := refusal(results); err != nil {
			return err
		}
		if !o.AllowDuplicate {
			if err := checkDuplicates(onDevice, preps, results); err != nil {
				return err
			}
		}
		for i, e := range m.Keys {
			r := &results[i]
			if r.Action == ActionSkip {
				present++
				continue
			}
			if r.Action == ActionNotRestorable {
				unrestorable++
				continue
			}
			if stoppedAt >= 0 {
				r.Error = "not restored: the restore was interrupted before this key"
				failed++
				continue
			}
			if err := restoreOne(conn, preps[i], e.Ref, r.Action == ActionReplace, o.AllowDuplicate); err != nil {
				r.Status, r.Error = StatusFailed, err.Error()
				failed++
				if !errors.As(err, new(keptDevice)) {
					changed = true
				}
				if device.Interrupted(err) {
					// The session is gone: no later key can be restored now.
					stoppedAt = i
				}
				continue
			}
			r.Status, r.Result = StatusRestored, &preps[i].res
			if r.Action == ActionReplace {
				r.Status = StatusReplaced
			}
			restored++
		}
		return nil
	})
	if err != nil && !planned {
		return nil, err
	}
	if err != nil {
		return results, err
	}
	var msg string
	switch {
	case stoppedAt >= 0:
		msg = fmt.Sprintf("%d of %d keys were not restored: the restore was interrupted at %s (its state and how to finish it are above)", failed+unrestorable, len(m.Keys), m.Keys[stoppedAt].File)
		if stoppedAt+1 < len(m.Keys) {
			msg += "; then run the same restore again: it skips the keys already restored"
		}
	case failed+unrestorable > 0:
		msg = fmt.Sprintf("%d of %d keys were not restored", failed+unrestorable, len(m.Keys))
	default:
		return results, nil
	}
	if unrestorable > 0 {
		msg += fmt.Sprintf(" (%s: %s)", notRestorable(results, unrestorable), howToRestore)
	}
	if restored > 0 || changed {
		return results, fmt.Errorf("%w: %s", ErrPartial, msg)
	}
	if present > 0 {
		msg += fmt.Sprintf(" (%d already present)", present)
	}
	return results, fmt.Errorf("nothing was restored: %s", msg)
}

// howToRestore says what makes a key that no key domain takes restorable.
const howToRestore = "import that DKEK's shares into a key domain of this device, or restore on the device that holds that DKEK"

// notRestorable names the n keys no key domain takes: "key-002-b.bin
// needs DKEK X".
func notRestorable(results []KeyResult, n int) string {
	var s []string
	for _, r := range results {
		if r.Action == ActionNotRestorable {
			s = append(s, fmt.Sprintf("%s needs DKEK %s", r.File, r.kcv))
		}
	}
	verb := "is"
	if n > 1 {
		verb = "are"
	}
	return fmt.Sprintf("%d %s not restorable here: %s", n, verb, strings.Join(s, ", "))
}

// refsOf lists the key references of a manifest, for messages.
func refsOf(keys []Entry) string {
	s := make([]string, len(keys))
	for i, e := range keys {
		s[i] = fmt.Sprint(e.Ref)
	}
	return strings.Join(s, ", ")
}

// plan decides each key's action from what its reference holds, and
// returns the keys on the device. Their descriptions cost a READ BINARY
// each (they say which keys they are, and hold the labels and IDs that
// checkDuplicates needs); a reference of the backup that holds a key
// costs one more, of its certificate, to compare public keys.
//
// Each key lands in the first key domain whose DKEK has its blob's check
// value (doms.Match); a key that none has is not restorable, unless its
// reference holds it already.
func plan(conn *device.Conn, preps []*prepared, results []KeyResult, fids []uint16, replace map[int]bool, doms *keystore.Domains) ([]keystore.Key, error) {
	keys, err := keystore.ListFrom(conn.Device, fids, keystore.ReadPRKD)
	if err != nil {
		return nil, err
	}
	onDevice := map[int]keystore.Key{}
	for _, k := range keys {
		onDevice[k.Ref] = k
	}
	for i := range results {
		r := &results[i]
		r.ShowDomain = doms.Many()
		r.kcv = fmt.Sprintf("%X", preps[i].bl.KCV)
		dom := doms.Match(preps[i].bl.KCV)
		if dom >= 0 {
			r.Domain = &dom
			preps[i].res.Domain = dom
		}
		occupied := keystore.Occupied(fids, r.Ref)
		if dom < 0 && !occupied {
			r.Action, r.Reason, r.Status = ActionNotRestorable, noDomain(r.kcv), StatusNotRestorable
			continue
		}
		if !occupied {
			r.Action, r.Reason = ActionRestore, "free"
			continue
		}
		same, why, err := holdsSame(conn, preps[i], r.Ref, onDevice)
		if err != nil {
			return nil, err
		}
		switch {
		case same:
			r.Action, r.Reason = ActionSkip, "holds this key already"
			res := preps[i].res
			res.Ref, res.Verified = r.Ref, true
			r.Status, r.Result = StatusPresent, &res
		case dom < 0:
			r.Action, r.Reason, r.Status = ActionNotRestorable, noDomain(r.kcv), StatusNotRestorable
		case replace[r.Ref]:
			r.Action, r.Reason = ActionReplace, why
		default:
			r.Action, r.Reason = ActionRefuse, why
		}
	}
	return keys, nil
}

// noDomain is the reason a key wrapped under DKEK kcv is not restorable.
func noDomain(kcv string) string {
	return "no key domain on this device has DKEK check value " + kcv
}

// holdsSame tells whether key reference ref holds the backup's key, and
// otherwise says what it holds. Keys are compared by their public key:
// the one in the backup's certificate or CV request, and the one in CExx,
// which the firmware writes when it makes or unwraps a key (pico-hsm
// cmd_keypair_gen.c, cmd_key_unwrap.c). AES keys have none, and are never
// taken for the same.
func holdsSame(conn *device.Conn, p *prepared, ref int, onDevice map[int]keystore.Key) (bool, string, error) {
	k, ok := onDevice[ref]
	if !ok {
		return false, "holds a key description but no key", nil
	}
	held := heldDesc(k)
	switch {
	case p.bl.Type == wrap.TypeAES:
		return false, fmt.Sprintf("holds a key (%s) that cannot be compared with the backup's, as AES keys have no public key", held), nil
	case p.pub == nil:
		return false, fmt.Sprintf("holds a key (%s) that cannot be compared with the backup's, which carries no public key", held), nil
	}
	b, err := conn.ReadFile(hsm.KeyFID(hsm.PrefixEECert, byte(ref)))
	if apdu.IsStatus(err, apdu.SWFileNotFound) {
		return false, fmt.Sprintf("holds a key (%s) whose public key cannot be read", held), nil
	}
	if err != nil {
		return false, "", err
	}
	pub, err := cvc.CertPublicKey(b)
	if err != nil {
		return false, fmt.Sprintf("holds a key (%s) whose public key cannot be read", held), nil
	}
	if samePublicKey(pub, p.pub) {
		return true, "", nil
	}
	return false, fmt.Sprintf("holds another key (%s)", held), nil
}

// heldDesc describes a key on the device from its description: type and
// size, label, ID.
func heldDesc(k keystore.Key) string {
	s := k.Describe()
	if k.Label != "" {
		s += fmt.Sprintf(" %q", k.Label)
	}
	if k.ID != "" {
		s += ", ID " + k.ID
	}
	return s
}

// refusal is the error of a plan that refuses some keys: the references
// that hold other keys, and how to replace them.
func refusal(results []KeyResult) error {
	var why, flags []string
	for _, r := range results {
		if r.Action == ActionRefuse {
			why = append(why, fmt.Sprintf("key reference %d %s", r.Ref, r.Reason))
			flags = append(flags, fmt.Sprintf("--key-reference %d", r.Ref))
		}
	}
	if len(why) == 0 {
		return nil
	}
	them, free := "it with the backup's key", "it is"
	if len(why) > 1 {
		them, free = "them with the backup's keys", "they are"
	}
	return &msgError{fmt.Sprintf("nothing was restored: %s: to replace %s, add --force %s; or restore into a device where %s free",
		strings.Join(why, "; "), them, strings.Join(flags, " "), free), []error{ErrOtherKeys}}
}

// ErrOtherKeys is a restore refused because key references of the backup
// hold other keys.
var ErrOtherKeys = errors.New("key references of the backup hold other keys")

// checkDuplicates refuses a plan whose new keys would share a label or ID
// with another key: one that stays on the device, or another new one.
func checkDuplicates(keys []keystore.Key, preps []*prepared, results []KeyResult) error {
	gone := map[int]bool{}
	for _, r := range results {
		if r.Action == ActionReplace {
			gone[r.Ref] = true
		}
	}
	var pool []keystore.Key
	for _, k := range keys {
		if !gone[k.Ref] {
			pool = append(pool, k)
		}
	}
	for i, r := range results {
		if r.Action == ActionRestore || r.Action == ActionReplace {
			pool = append(pool, keystore.Key{Ref: r.Ref, Label: preps[i].res.Label, ID: preps[i].res.ID})
		}
	}
	var msgs []string
	var first error
	for i, r := range results {
		if r.Action != ActionRestore && r.Action != ActionReplace {
			continue
		}
		if err := keystore.CheckDuplicate(pool, r.Ref, preps[i].res.Label, preps[i].res.ID); err != nil {
			msgs = append(msgs, fmt.Sprintf("%s for key reference %d: %v", r.File, r.Ref, err))
			if first == nil {
				first = err
			}
		}
	}
	if first == nil {
		return nil
	}
	return &msgError{fmt.Sprintf("nothing was restored: %s: add --allow-duplicate to restore anyway, or restore into a device without those keys", strings.Join(msgs, "; ")), []error{first}}
}
