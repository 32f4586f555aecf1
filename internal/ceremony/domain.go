package ceremony

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
)

// A key domain is a DKEK slot of its own: its keys are wrapped under its
// DKEK, made of its own custodians' shares (pico-hsm cmd_key_domain.c;
// EF 10A0 holds [total shares, imported] per slot, FF FF for a free one).
// The steps here check everything they can, cheapest first and before
// the user PIN spends a try, then verify the PIN (hsm.Login), then send
// one MANAGE DKEK command.

// DomainOptions are the inputs of CreateDomain, DeleteDomain and
// ClearDomain.
type DomainOptions struct {
	Domain int
	// Shares is the number of DKEK shares CreateDomain sets the domain up
	// for.
	Shares int
	// PIN is the user PIN. The firmware asks for it to create a domain,
	// and not to delete or clear one (cmd_key_domain.c checks the PIN
	// session only for commands with data): the tool verifies it for all
	// three, so that nobody without it changes a domain.
	PIN          []byte
	AllowLastTry bool
	// Yes lets ClearDomain forget a complete DKEK that keys of the
	// domain need.
	Yes bool
}

// DomainResult is what a key-domain command did; its fields are the
// commands' --json fields.
type DomainResult struct {
	// Action is "create", "delete" or "clear".
	Action string `json:"action"`
	Domain int    `json:"domain"`
	// SetUp is false once the domain is deleted.
	SetUp           bool `json:"set_up"`
	DKEKShares      int  `json:"dkek_shares"`
	DKEKOutstanding int  `json:"dkek_outstanding"`
	// Keys is the number of keys in the domain (key metadata tag 92).
	Keys int `json:"keys"`
}

// MaxDomainShares is the most DKEK shares a key domain takes: EF 10A0
// keeps the count in one byte, and FF marks a free slot.
const MaxDomainShares = 254

// CheckDomainNumber refuses a key domain number no device has, before
// anything reaches the device.
func CheckDomainNumber(dom int) error {
	if dom < 0 || dom >= hsm.MaxKeyDomains {
		return fmt.Errorf("key domain %d does not exist: key domains are numbered 0 to %d", dom, hsm.MaxKeyDomains-1)
	}
	return nil
}

// CheckDomainShares refuses a share count a key domain cannot take.
func CheckDomainShares(shares int) error {
	if shares < 1 || shares > MaxDomainShares {
		return fmt.Errorf("--dkek-shares %d: a key domain takes 1 to %d DKEK shares: give the number of custodians who will import a share", shares, MaxDomainShares)
	}
	return nil
}

// refusal is an error with its own words that errors.Is matches to one
// of hsm's key domain errors.
type refusal struct {
	msg  string
	kind error
}

func (r *refusal) Error() string { return r.msg }
func (r *refusal) Unwrap() error { return r.kind }

// describeShares says how far a domain's shares are: "2 DKEK shares, all
// imported", "3 DKEK shares, 2 still missing".
func describeShares(st hsm.DKEKStatus) string {
	s := fmt.Sprintf("%d DKEK share%s", st.Shares, plural(st.Shares))
	if st.Outstanding == 0 {
		if st.Shares == 1 {
			return s + ", imported"
		}
		return s + ", all imported"
	}
	return fmt.Sprintf("%s, %d still missing", s, st.Outstanding)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// domainStatus reads the status of key domain dom for a key-domain
// command, with the refusals in that command's words: a slot the device
// lacks names how many it has (noSuchDomain).
func domainStatus(conn *device.Conn, dom int) (hsm.DKEKStatus, error) {
	st, err := conn.DomainStatus(dom)
	if errors.Is(err, hsm.ErrNoSuchDomain) {
		return st, noSuchDomain(conn, dom, err)
	}
	return st, err
}

// noSuchDomain explains a key domain beyond the device's slots (6A86 to
// the status; transcripts/60-key-domains-setup.txt [6]): how many it has,
// read slot by slot (hsm.KeyDomains), and that only initialize sets that.
func noSuchDomain(conn *device.Conn, dom int, err error) error {
	doms, kerr := conn.KeyDomains()
	if kerr != nil || len(doms) == 0 {
		return err
	}
	const fix = "the number of key domains is set by initialize --key-domains N, which destroys every key"
	if len(doms) == 1 {
		return &refusal{fmt.Sprintf("the device has no key domain %d: it was initialized without key domains, so it has domain 0 only; %s", dom, fix), hsm.ErrNoSuchDomain}
	}
	return &refusal{fmt.Sprintf("the device has no key domain %d: it has %d key domains, 0 to %d; %s", dom, len(doms), len(doms)-1, fix), hsm.ErrNoSuchDomain}
}

// keysInDomain lists the keys whose key file names key domain dom (key
// metadata tag 92 in the FCP; no tag is domain 0), reading one FCP per
// key, and, when labels is set, the PKCS#15 descriptions of those keys.
func keysInDomain(conn *device.Conn, dom int, labels bool) ([]keystore.Key, error) {
	fids, err := conn.ListObjects()
	if err != nil {
		return nil, err
	}
	all, err := keystore.ListFrom(conn.Device, fids, keystore.ReadMeta)
	if err != nil {
		return nil, err
	}
	var in []keystore.Key
	var theirs []uint16
	present := map[uint16]bool{}
	for _, f := range fids {
		present[f] = true
	}
	for _, k := range all {
		if k.Domain != dom {
			continue
		}
		in = append(in, k)
		theirs = append(theirs, hsm.KeyFID(hsm.PrefixKey, byte(k.Ref)))
		if prkd := hsm.KeyFID(hsm.PrefixPRKD, byte(k.Ref)); present[prkd] {
			theirs = append(theirs, prkd)
		}
	}
	if !labels || len(in) == 0 {
		return in, nil
	}
	return keystore.ListFrom(conn.Device, theirs, keystore.ReadPRKD)
}

// describeKeys names keys for a message: `3 "signing", 7 "backup-ec"`.
func describeKeys(keys []keystore.Key) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %q", k.Ref, k.Label)
	}
	return strings.Join(parts, ", ")
}

// unknownOutcome is the message of a MANAGE DKEK command whose answer was
// lost: the domain may or may not have changed. Running the same command
// again is safe for all three: it says so if the change was made.
func unknownOutcome(conn *device.Conn, err error, what string) error {
	return fmt.Errorf("%w; %s may or may not have been done: run the same command again, which says so if it was, or check with '%s'", err, what, conn.Suggest("status"))
}

// runDomain runs a key-domain step in one transaction: select, check
// (the refusals, before the PIN spends a try), Login, then act, which
// sends the one command that changes the device, and after, which reads
// the result back. Only a lost answer to act's command leaves the domain
// in a state the tool cannot know.
func runDomain(conn *device.Conn, o DomainOptions, what string, check, act, after func() error) error {
	sent := false
	var actErr error
	err := conn.Transaction(func() error {
		if _, err := conn.SelectApplication(); err != nil {
			return err
		}
		if err := check(); err != nil {
			return err
		}
		if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
			return err
		}
		sent = true
		if actErr = act(); actErr != nil {
			return actErr
		}
		if after != nil {
			return after()
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case !sent && device.OutcomeUnknown(err):
		return fmt.Errorf("%w; nothing was changed, the device is as it was%s", err, device.Again(err))
	case actErr != nil && device.OutcomeUnknown(actErr):
		return unknownOutcome(conn, actErr, what)
	}
	return err
}

// CreateDomain sets up free key domain o.Domain for o.Shares DKEK shares
// (MANAGE DKEK 80 52 01 P2=domain, one data byte; pico-hsm
// cmd_key_domain.c; transcripts/60-key-domains-setup.txt [11], [12]).
// Before the PIN spends a try it refuses a domain the device lacks (6A86
// to the status, [6]) and one already set up (the firmware's 6A86 to
// create, [13], would not say which).
func CreateDomain(conn *device.Conn, o DomainOptions) (*DomainResult, error) {
	if err := CheckDomainNumber(o.Domain); err != nil {
		return nil, err
	}
	if err := CheckDomainShares(o.Shares); err != nil {
		return nil, err
	}
	dom := o.Domain
	res := &DomainResult{Action: "create", Domain: dom}
	err := runDomain(conn, o, fmt.Sprintf("setting up key domain %d", dom), func() error {
		st, err := domainStatus(conn, dom)
		switch {
		case err == nil:
			return &refusal{fmt.Sprintf("key domain %d is already set up, for %s: to set it up for another number of shares delete it first (key-domain delete %d, once it holds no keys); to import its shares again clear it (key-domain clear %d)", dom, describeShares(st), dom, dom), hsm.ErrDomainExists}
		case errors.Is(err, hsm.ErrDomainNotSetUp):
			return nil
		}
		return err
	}, func() error {
		st, err := conn.CreateKeyDomain(dom, o.Shares)
		if err != nil {
			return err
		}
		res.SetUp, res.DKEKShares, res.DKEKOutstanding = true, st.Shares, st.Outstanding
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// DeleteDomain frees key domain o.Domain (MANAGE DKEK 80 52 03
// P2=domain). The firmware refuses while any file belongs to the domain
// (6A89; transcripts/61-key-domains-keys.txt [10]), and a key's domain is
// its metadata tag 92, with every file without one counted as domain 0
// (cmd_key_domain.c get_key_domain). So the keys in the domain are listed
// first, and named in the refusal. The firmware reports success as 6A88
// ([20]); the status is read again to confirm that the slot is free.
func DeleteDomain(conn *device.Conn, o DomainOptions) (*DomainResult, error) {
	if err := CheckDomainNumber(o.Domain); err != nil {
		return nil, err
	}
	dom := o.Domain
	res := &DomainResult{Action: "delete", Domain: dom}
	err := runDomain(conn, o, fmt.Sprintf("deleting key domain %d", dom), func() error {
		st, err := domainStatus(conn, dom)
		if errors.Is(err, hsm.ErrDomainNotSetUp) {
			return &refusal{fmt.Sprintf("key domain %d is not set up: there is nothing to delete", dom), hsm.ErrDomainNotSetUp}
		}
		if err != nil {
			return err
		}
		res.DKEKShares, res.DKEKOutstanding = st.Shares, st.Outstanding
		keys, err := keysInDomain(conn, dom, true)
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			return &refusal{fmt.Sprintf("key domain %d holds %d key%s (reference and label: %s): the device deletes a domain only once it holds none; delete them first with delete-key --key-reference N (back them up first if they are still needed: a key deleted without a backup is lost)", dom, len(keys), plural(len(keys)), describeKeys(keys)), hsm.ErrDomainInUse}
		}
		return nil
	}, func() error {
		err := conn.DeleteKeyDomain(dom)
		if errors.Is(err, hsm.ErrDomainInUse) {
			return domainInUse(dom)
		}
		return err
	}, func() error {
		// 6A88 is the firmware's success; the status must now say so.
		st, serr := conn.DomainStatus(dom)
		switch {
		case errors.Is(serr, hsm.ErrDomainNotSetUp):
			res.DKEKShares, res.DKEKOutstanding = 0, 0
			return nil
		case serr == nil:
			return fmt.Errorf("the device answered the delete of key domain %d as done, but the domain is still set up (%s): run '%s' to see its state", dom, describeShares(st), conn.Suggest("status"))
		}
		return fmt.Errorf("key domain %d was deleted, but reading its status again failed: %w; check with '%s'", dom, serr, conn.Suggest("status"))
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// domainInUse explains the firmware's 6A89 when no key was found in the
// domain: for domain 0, every file without a domain tag counts (the
// PKCS#15 descriptions, certificates and data objects as well as keys).
func domainInUse(dom int) error {
	if dom == 0 {
		return &refusal{"key domain 0 cannot be deleted: the firmware counts every file without a key domain tag as domain 0 (certificates, PKCS#15 descriptions and data objects, not only keys), so it refuses while any remains (SW 6A89); keep domain 0, or clear its shares (key-domain clear 0)", hsm.ErrDomainInUse}
	}
	return &refusal{fmt.Sprintf("key domain %d still holds files, though no key was found in it (SW 6A89): run list-keys to see each key's domain, delete them, then run this again", dom), hsm.ErrDomainInUse}
}

// ClearDomain forgets the shares imported into key domain o.Domain and
// its DKEK (MANAGE DKEK 80 52 04 P2=domain; transcripts/61 [11], [12]):
// the domain stays set up for the same number of shares. The keys in it
// stay, but cannot be wrapped or backed up until every share is imported
// again. A free slot is refused before anything is sent: clearing one
// turns its FF FF into FF 00, a domain of 255 shares (cmd_key_domain.c
// sets the imported count without looking). A domain without shares
// (domain 0 of a device without a DKEK) has nothing to clear.
func ClearDomain(conn *device.Conn, o DomainOptions) (*DomainResult, error) {
	if err := CheckDomainNumber(o.Domain); err != nil {
		return nil, err
	}
	dom := o.Domain
	res := &DomainResult{Action: "clear", Domain: dom, SetUp: true}
	err := runDomain(conn, o, fmt.Sprintf("clearing key domain %d", dom), func() error {
		st, err := domainStatus(conn, dom)
		if errors.Is(err, hsm.ErrDomainNotSetUp) {
			return &refusal{fmt.Sprintf("key domain %d is not set up: there are no shares to clear (set it up with key-domain create %d --dkek-shares N)", dom, dom), hsm.ErrDomainNotSetUp}
		}
		if err != nil {
			return err
		}
		if st.Shares == 0 {
			return &refusal{fmt.Sprintf("key domain %d has no DKEK shares: there is nothing to clear", dom), hsm.ErrNoDKEK}
		}
		keys, err := keysInDomain(conn, dom, false)
		if err != nil {
			return err
		}
		res.Keys = len(keys)
		if st.Complete() && len(keys) > 0 && !o.Yes {
			// The only copy of the DKEK may be this one: a DKEK the
			// device made (initialize --dkek-shares 0) has no shares, and
			// shares get lost. Without it the keys can never be wrapped.
			return &refusal{fmt.Sprintf("key domain %d holds %s and its DKEK is complete: clearing forgets the DKEK, and the keys cannot be wrapped or backed up until the domain's shares (%d) are imported again; a DKEK the device made itself (initialize --dkek-shares 0) has no shares and is lost for good: make sure the share files are at hand, then add --yes", dom, countOf(len(keys), "key"), st.Shares), hsm.ErrDomainInUse}
		}
		return nil
	}, func() error {
		st, err := conn.ClearKeyDomain(dom)
		if err != nil {
			return err
		}
		res.DKEKShares, res.DKEKOutstanding = st.Shares, st.Outstanding
		return nil
	}, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// CheckImportInto is CheckImport for key domain dom: before any share
// file is decrypted it checks that the domain exists, is set up, and
// expects at least n more shares. Domain 0 is checked, and refused, in
// the words of a device without key domains.
func CheckImportInto(conn *device.Conn, dom, n int) (hsm.DKEKStatus, error) {
	if err := CheckDomainNumber(dom); err != nil {
		return hsm.DKEKStatus{}, err
	}
	st, err := func() (hsm.DKEKStatus, error) {
		if _, err := conn.SelectApplication(); err != nil {
			return hsm.DKEKStatus{}, err
		}
		return domainStatus(conn, dom)
	}()
	if err != nil {
		if device.OutcomeUnknown(err) {
			return st, fmt.Errorf("%w; no share was imported, the device is as it was%s", err, device.Again(err))
		}
		return st, err
	}
	return st, checkOutstandingIn(dom, st, n)
}

// ResumeFrom is CheckImportInto for import-dkek-share --resume: the n
// files given are the last shares of the DKEK (at most all of them), in
// the order of the run that stopped, and the device imports only those it
// still expects. The count alone cannot tell which shares the device
// holds: the caller checks the completed DKEK against the files (all of
// them given) or an expected check value. More files than the DKEK has
// shares are refused, even on a device whose DKEK is complete. The
// device counts its outstanding shares (MANAGE DKEK's answer,
// card-sc-hsm.c sc_hsm_import_dkek_share), and shares go in in order, so
// the first file it needs is n minus that count; a share whose answer
// was lost is then counted or not, as the device took it. It returns the
// status read and that index (n when the device needs none); a device
// that expects more shares than given is refused, nothing imported.
func ResumeFrom(conn *device.Conn, dom, n int) (hsm.DKEKStatus, int, error) {
	st, err := CheckImportInto(conn, dom, 0)
	complete := errors.Is(err, hsm.ErrAllSharesImported) && st.Shares > 0
	switch {
	case err != nil && !complete:
		return st, 0, err
	case n > st.Shares:
		return st, 0, fmt.Errorf("--resume was given %d share files, but %s DKEK has %d shares: give its share files only, in the order of the first run; nothing was imported", n, whoseDKEK(dom), st.Shares)
	case complete:
		return st, n, nil
	case st.Outstanding > n:
		return st, 0, fmt.Errorf("%s %d more DKEK share(s), but --resume was given %d file(s): give every file from the first share it lacks, in the order of the first run; nothing was imported", expectsWho(dom), st.Outstanding, n)
	}
	return st, n - st.Outstanding, nil
}

func whoseDKEK(dom int) string {
	if dom == 0 {
		return "the device's"
	}
	return fmt.Sprintf("key domain %d's", dom)
}

func expectsWho(dom int) string {
	if dom == 0 {
		return "the device expects"
	}
	return fmt.Sprintf("key domain %d expects", dom)
}

// checkOutstandingIn refuses shares key domain dom does not expect. For
// domain 0 the words are checkOutstanding's, as on a device without key
// domains.
func checkOutstandingIn(dom int, st hsm.DKEKStatus, n int) error {
	if dom == 0 || st.Shares == 0 {
		return checkOutstanding(st, n)
	}
	switch {
	case st.Outstanding == 0:
		return &refusal{fmt.Sprintf("all %s of key domain %d are already imported: it accepts no more (to import them again, clear it first: key-domain clear %d)", fmt.Sprintf("%d DKEK share%s", st.Shares, plural(st.Shares)), dom, dom), hsm.ErrAllSharesImported}
	case n > st.Outstanding:
		return fmt.Errorf("key domain %d expects %d more DKEK share(s), but %d were given: nothing was imported", dom, st.Outstanding, n)
	}
	return nil
}

// countOf is "1 key", "3 keys".
func countOf(n int, noun string) string { return fmt.Sprintf("%d %s%s", n, noun, plural(n)) }
