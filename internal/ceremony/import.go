package ceremony

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
)

// ImportOptions are the inputs of ImportShares.
type ImportOptions struct {
	// Shares are the decrypted 32-byte DKEK shares, in import order.
	Shares [][]byte
	// PIN, when set, is verified before the first share is imported, so
	// that the firmware commits the DKEK at the last share and reports its
	// real key check value.
	PIN []byte
	// AskPIN, when set and PIN is not, asks for the user PIN after the last
	// share to commit the DKEK (a terminal is attached).
	AskPIN func() ([]byte, error)
	// AllowLastTry lets the user PIN be tried when it has one try left.
	AllowLastTry bool
	// Out receives sc-hsm-tool's result lines.
	Out io.Writer
	// Warn receives warnings and notes for the person or the log.
	Warn func(format string, args ...any)
	// Names are the shares' files, for messages; "share N" when empty.
	Names []string
	// Domain is the key domain the shares go into (MANAGE DKEK P2;
	// pico-hsm cmd_key_domain.c). A domain other than 0 takes shares only
	// in a user-PIN session (6985), so it needs PIN.
	Domain int
	// Checked is the DKEK status CheckImport read on this connection, so
	// that it is not asked again where nothing else can have changed it
	// in between: on the simulated device, locked for the whole run, or
	// for a single share, which the device checks itself (6986, 6B00).
	Checked *hsm.DKEKStatus
	// Run are all the share files of the run, for the command that
	// finishes it when a share's answer is lost (Names when empty), and
	// RunKCV the DKEK's check value when known, for that command.
	Run    []string
	RunKCV string
	// Resume allows no Shares at all, for a device that holds every share
	// already (import-dkek-share --resume after a run that stopped at its
	// last share): then only the PIN is verified, which commits the DKEK,
	// and the DKEK is reported and checked as after the last share.
	Resume bool
}

// ImportResult tells the DKEK state after ImportShares.
type ImportResult struct {
	Status hsm.DKEKStatus
	// Committed is true when the DKEK is complete and a user-PIN
	// verification has stored it under the device's master key.
	Committed bool
	// Expected is the KCV of the shares imported in this run when they
	// are all the device's shares, so that it could be checked.
	Expected string
	// Imported counts the shares the device confirmed in this run; when
	// ImportShares fails, the shares after them were not imported, except
	// that the one in flight may have been when Unsure is set.
	Imported int
	// Unsure is set when the answer to share Imported+1 was lost (card
	// pulled, reader gone): the device may or may not count it.
	Unsure bool
}

// CheckImport checks, before any share file is decrypted (seconds of key
// derivation per file, and a password typed for each), that the device
// can take n shares: it is initialized with DKEK shares, and at least n
// of them are outstanding. It returns the DKEK status for ImportOptions.
func CheckImport(conn *device.Conn, n int) (hsm.DKEKStatus, error) {
	return CheckImportInto(conn, 0, n)
}

// ErrNotCommitted is returned by ImportShares when the DKEK is complete but
// uncommitted and no PIN was available; the shares are imported.
var ErrNotCommitted = errors.New("the DKEK is complete but not committed")

// ImportShares imports DKEK shares (card-sc-hsm.c
// sc_hsm_import_dkek_share; sc-hsm-tool.c import_dkek_share) and prints
// sc-hsm-tool's lines after each: "DKEK share imported", "DKEK shares
// : N", then "DKEK import pending, K share(s) still missing" or "DKEK key
// check value : ...".
//
// Before anything is imported it checks that the device expects at least
// as many shares as given (or takes CheckImport's answer, o.Checked), and
// verifies the PIN if one is given. Once the DKEK is complete and its real
// check value known, it looks for a share imported twice across runs
// (checkCommitted); when that cannot be checked, Warn says so.
//
// The Pico HSM keeps the combined DKEK unprotected after the last share
// and stores it properly only at the next successful user-PIN VERIFY; if
// the device loses power before that, the DKEK is silently corrupted
// (../shared/pico-hsm/VECTORS.txt section 7, device E). So with a PIN the
// imports happen inside a PIN session and the firmware commits at once;
// without one, AskPIN is used after the last share, and failing that the
// result is ErrNotCommitted with a warning saying what to do.
func ImportShares(conn *device.Conn, o ImportOptions) (*ImportResult, error) {
	if len(o.Shares) == 0 && !o.Resume {
		return nil, errors.New("no DKEK share to import")
	}
	for i, s := range o.Shares {
		if len(s) != 32 {
			return nil, fmt.Errorf("DKEK share %d is %d bytes, not 32", i+1, len(s))
		}
	}
	if err := CheckDomainNumber(o.Domain); err != nil {
		return nil, err
	}
	if o.Domain != 0 && o.PIN == nil {
		return nil, ErrDomainNeedsPIN(o.Domain)
	}
	res := &ImportResult{}
	var uncommitted bool
	// imported counts the shares the device confirmed in this run; sent is
	// set while a share is on its way.
	imported, sent, before := 0, false, 0
	// On the simulated device nothing can come between CheckImport and
	// the imports: its state file is locked for the whole run. Through
	// PC/SC another program may have used the card while the files were
	// decrypted, so the application is selected again.
	exclusive := o.Checked != nil && conn.Sim != nil
	err := conn.Transaction(func() error {
		if !exclusive {
			if _, err := conn.SelectApplication(); err != nil {
				return err
			}
		}
		// One share is checked by the device itself (6986, 6B00), which
		// saves an APDU; several are checked before the first goes in.
		var st hsm.DKEKStatus
		allHere := false
		if len(o.Shares) == 0 {
			var err error
			if st, err = domainStatus(conn, o.Domain); err != nil {
				return err
			}
			if st.Shares == 0 {
				return checkOutstandingIn(o.Domain, st, 1)
			}
			if st.Outstanding > 0 {
				return fmt.Errorf("the device still expects %d DKEK share(s): give their files; nothing was imported", st.Outstanding)
			}
		} else if o.Checked != nil && (exclusive || len(o.Shares) == 1) {
			st = *o.Checked
			allHere = st.Outstanding == st.Shares && len(o.Shares) == st.Shares
		} else if len(o.Shares) > 1 || o.PIN != nil {
			var err error
			if st, err = domainStatus(conn, o.Domain); err != nil {
				return err
			}
			if err := checkOutstandingIn(o.Domain, st, len(o.Shares)); err != nil {
				return err
			}
			allHere = st.Outstanding == st.Shares && len(o.Shares) == st.Shares
		}
		// start is the DKEK's state before this run's first share, when
		// known (Shares 0 when not): what a lost answer is judged by.
		start := st
		pinSession := false
		if o.PIN != nil {
			if err := conn.Login(o.PIN, o.AllowLastTry); err != nil {
				return err
			}
			pinSession = true
		}
		if len(o.Shares) == 0 {
			if pinSession {
				var err error
				if st, err = domainStatus(conn, o.Domain); err != nil {
					return err
				}
			}
			fmt.Fprintf(o.Out, "No DKEK share left to import: all %d are in\n", st.Shares)
			printDKEK(o.Out, st)
		}
		for i, s := range o.Shares {
			var err error
			sent = true
			st, err = importShare(conn, o.Domain, s)
			if err != nil && !refused(err) {
				return fmt.Errorf("%w; %s", err, shareUnknown(conn, i, pinSession, o, start))
			}
			sent = false
			if errors.Is(err, hsm.ErrAllSharesImported) {
				// Say which: no shares configured, or all of them in.
				if st2, err2 := conn.DomainStatus(o.Domain); err2 == nil {
					if cerr := checkOutstandingIn(o.Domain, st2, 1); cerr != nil {
						return cerr
					}
				}
				return err
			}
			if err != nil {
				return err
			}
			imported++
			if o.Domain == 0 {
				fmt.Fprintln(o.Out, "DKEK share imported")
			} else {
				fmt.Fprintf(o.Out, "DKEK share imported into key domain %d\n", o.Domain)
			}
			printDKEK(o.Out, st)
		}
		res.Status = st
		// before counts the shares imported in earlier runs: one of them
		// imported again in this run cancels out of the DKEK.
		before = st.Shares - st.Outstanding - imported
		if st.Outstanding > 0 {
			if before > 0 && o.Warn != nil {
				o.Warn("note: %d share(s) were imported before this run; whether one of them was imported again now can only be checked when the DKEK is complete: import the last share with --pin", before)
			}
			return nil
		}
		if !pinSession && o.AskPIN != nil {
			pin, err := o.AskPIN()
			if err != nil {
				return err
			}
			err = conn.Login(pin, o.AllowLastTry)
			clear(pin)
			if err != nil {
				return fmt.Errorf("all shares are imported, but the DKEK is not committed: %w; run '%s' before unplugging the device", err, conn.Suggest("status --pin"))
			}
			pinSession = true
			if res.Status, err = conn.DomainStatus(o.Domain); err != nil {
				return err
			}
			if o.Warn != nil {
				o.Warn("DKEK committed; DKEK key check value %s", res.Status.KCVHex())
			}
		}
		if !pinSession {
			uncommitted = true
			return nil
		}
		res.Committed = true
		if err := checkCommitted(res.Status, o.Shares, o.Names, before); err != nil {
			return err
		}
		if allHere {
			k := hsm.KCV(xorShares(o.Shares))
			res.Expected = fmt.Sprintf("%X", k[:])
			if subtle.ConstantTimeCompare(k[:], res.Status.KCV[:]) != 1 {
				return WrongDKEK(fmt.Sprintf("the device's DKEK key check value %s differs from the shares' %s: do not use this device for backups; re-initialize it and import the shares again", res.Status.KCVHex(), res.Expected))
			}
		}
		return nil
	})
	res.Imported, res.Unsure = imported, sent
	if err != nil {
		if !sent && imported == 0 && device.OutcomeUnknown(err) {
			return res, fmt.Errorf("%w; no share was imported, the device is as it was%s", err, device.Again(err))
		}
		return res, err
	}
	if uncommitted {
		if o.Warn != nil {
			o.Warn("WARNING: the DKEK is complete but NOT committed: the Pico HSM stores it only at the next user-PIN verification, and unplugging the device before that corrupts it silently. Commit it now, before unplugging: %s (or pass --pin to import-dkek-share)", conn.Suggest("status --pin env:VAR"))
			if before > 0 {
				o.Warn("note: %d share(s) were imported before this run, and without the user PIN the tool could not check that none of them was imported again now: if '%s' shows the DKEK key check value %s, the DKEK is all zeros: re-initialize the device", before, conn.Suggest("status --pin"), zeroKCV)
			}
		}
		return res, ErrNotCommitted
	}
	return res, nil
}

// ErrDomainNeedsPIN is the refusal of shares for key domain dom without
// the user PIN: the firmware takes a share for a domain other than 0 only
// in a PIN session (cmd_key_domain.c; 6985).
func ErrDomainNeedsPIN(dom int) error {
	return &refusal{fmt.Sprintf("importing into key domain %d needs the user PIN: the device takes shares for a domain other than 0 only once the PIN is verified; give --pin (or --pin env:VAR, file:PATH, -)", dom), hsm.ErrDomainNeedsPIN}
}

// importShare sends one share for key domain dom. Domain 0 goes through
// ImportDKEKShare, whose APDU (80 52 00 00) and words are those of a
// device without key domains.
func importShare(conn *device.Conn, dom int, share []byte) (hsm.DKEKStatus, error) {
	if dom == 0 {
		return conn.ImportDKEKShare(share)
	}
	return conn.ImportDKEKShareInto(dom, share)
}

// refused reports whether err is the device refusing a share, which then
// was not imported: a refusal status word (device.Refused), or one of
// hsm's key domain errors, which carry the status word they came from.
func refused(err error) bool {
	var de *hsm.DomainError
	return device.Refused(err) || errors.As(err, &de) && de.SW != 0
}

// checkCommitted looks, once the DKEK is complete and its real key check
// value known, for a share imported twice across runs (before shares came
// in earlier runs). The device cannot show it sooner: until the last
// share its check value is that of the plain XOR accumulator decrypted
// under the master key (pico-hsm kek.c dkek_kcv reads EF_DKEK through
// load_dkek even while import_dkek_share keeps it plain; recorded as
// device E in ../shared/pico-hsm/VECTORS.txt section 3), which no share's
// own check value can match. So the shares are in by now; the check says
// that the DKEK must not be used.
func checkCommitted(st hsm.DKEKStatus, shares [][]byte, names []string, before int) error {
	kcv := st.KCVHex()
	const fix = "do not generate or back up keys on this device: re-initialize it (which destroys its keys) and have each custodian import their own share once"
	if kcv == zeroKCV {
		return WrongDKEK(fmt.Sprintf("the device's DKEK is all zeros (key check value %s): a share was imported twice, and the two cancelled out, so the DKEK protects nothing; %s", kcv, fix))
	}
	if before == 0 {
		return nil // every share came in this run: CheckShares saw them
	}
	for i, s := range shares {
		if ShareKCV(s) == kcv {
			return WrongDKEK(fmt.Sprintf("the device's DKEK is the share of %s alone (key check value %s): the shares imported before this run cancel out (one was imported twice), so %s's custodian alone knows the DKEK; %s", shareName(names, i), kcv, shareName(names, i), fix))
		}
	}
	if len(shares) > 1 && CombinedKCV(shares) == kcv {
		return WrongDKEK(fmt.Sprintf("the device's DKEK is made of this run's shares alone (key check value %s): the shares imported before this run cancel out (one was imported twice); %s", kcv, fix))
	}
	return nil
}

func shareName(names []string, i int) string {
	if i < len(names) {
		return names[i]
	}
	return fmt.Sprintf("share %d", i+1)
}

// shareUnknown says what state an import is in when the answer to share
// i (from 0) of n was lost. Importing a share twice makes a wrong DKEK, so
// the person must look before importing again.
func shareUnknown(conn *device.Conn, i int, pinSession bool, o ImportOptions, start hsm.DKEKStatus) string {
	n := len(o.Shares)
	var b strings.Builder
	fmt.Fprintf(&b, "share %d of %d may or may not have been imported", i+1, n)
	if i > 0 {
		fmt.Fprintf(&b, " (the %d before it were)", i)
	}
	fmt.Fprintf(&b, ": run '%s' to see how many shares the device still expects, then import only those", conn.Suggest("status"))
	run := o.Run
	if len(run) == 0 {
		run = o.Names
	}
	switch {
	case start.Shares > 0 && start.Outstanding == n && len(run) > 0:
		// The run was to finish the DKEK: --resume finishes it.
		need := len(run) < start.Shares
		fmt.Fprintf(&b, " ('%s' does: it imports only the shares the device still lacks and checks the DKEK they make", conn.Suggest(ResumeCommand(run, o.Domain, o.RunKCV, need)))
		if need && o.RunKCV == "" {
			b.WriteString(", with KCV the DKEK's check value, which 'pico-hsm-tool dkek-share kcv' prints from all its share files")
		}
		b.WriteString(")")
	case start.Shares > 0 && len(o.Names) == n:
		// Shares would still be missing after this run: --resume, which
		// takes the files as the DKEK's last, does not apply; the count
		// tells which way the share went.
		b.WriteString(" (" + UnsureAdvice(conn.Suggest, o.Names, i, start.Outstanding, o.Domain) + ")")
	}
	if i == n-1 && !pinSession {
		// Without a PIN session the firmware commits the DKEK only at the
		// next VERIFY, and a device unplugged before it has lost it.
		fmt.Fprintf(&b, "; if none is missing, run '%s' at once, which commits the DKEK, and compare its check value with the shares' ('pico-hsm-tool dkek-share kcv'): if they differ, the device lost the DKEK when it was unplugged, so re-initialize it and import every share again (import with --pin to avoid this)", conn.Suggest("status --pin"))
	}
	return b.String()
}

// UnsureAdvice says, for a run that was not to finish the DKEK, what
// to import after the answer to share i (from 0) of the run's files names
// was lost, by the count status will show: outstanding shares were missing
// before the run. suggest turns a command's arguments into the full
// command for the device.
func UnsureAdvice(suggest func(string) string, names []string, i, outstanding, dom int) string {
	rest := func(from int) string {
		if from >= len(names) {
			return "nothing more from this run"
		}
		return "'" + suggest(ImportCommand(names[from:], dom)) + "'"
	}
	return fmt.Sprintf("if it shows %d share(s) still missing, %s went in: import %s; if %d, it did not: import %s",
		outstanding-i-1, names[i], rest(i+1), outstanding-i, rest(i))
}

// ImportCommand is the plain import-dkek-share command for names, after
// "pico-hsm-tool --reader R".
func ImportCommand(names []string, dom int) string {
	var b strings.Builder
	b.WriteString("import-dkek-share")
	for _, n := range names {
		b.WriteString(" " + fileArg(n))
	}
	if dom != 0 {
		fmt.Fprintf(&b, " --key-domain %d", dom)
	}
	b.WriteString(" --pin …")
	return b.String()
}

// fileArg is a file name as a command's argument: quoted for a shell,
// and never read as an option.
func fileArg(n string) string {
	if strings.HasPrefix(n, "-") {
		n = "./" + n
	}
	return device.ShellQuote(n)
}

// ResumeCommand is the import-dkek-share command, after "pico-hsm-tool
// --reader R", that finishes an import that stopped: the run's files with
// --resume (which imports only those the device still lacks, ResumeFrom),
// the key domain, and --expect-kcv with kcv, or with the placeholder KCV
// when needKCV and kcv is not known (the files are not all the DKEK's
// shares, so the result can only be checked against its value).
func ResumeCommand(names []string, dom int, kcv string, needKCV bool) string {
	var b strings.Builder
	b.WriteString("import-dkek-share")
	for _, n := range names {
		b.WriteString(" " + fileArg(n))
	}
	b.WriteString(" --resume")
	if dom != 0 {
		fmt.Fprintf(&b, " --key-domain %d", dom)
	}
	switch {
	case kcv != "":
		b.WriteString(" --expect-kcv " + kcv)
	case needKCV:
		b.WriteString(" --expect-kcv KCV")
	}
	b.WriteString(" --pin …")
	return b.String()
}

// checkOutstanding refuses shares the device does not expect.
func checkOutstanding(st hsm.DKEKStatus, n int) error {
	switch {
	case st.Shares == 0:
		return fmt.Errorf("cannot import DKEK shares: %w", hsm.ErrNoDKEK)
	case st.Outstanding == 0:
		return fmt.Errorf("%w (%d of %d imported)", hsm.ErrAllSharesImported, st.Shares, st.Shares)
	case n > st.Outstanding:
		return fmt.Errorf("the device expects %d more DKEK share(s), but %d were given: nothing was imported", st.Outstanding, n)
	}
	return nil
}

// printDKEK prints sc-hsm-tool.c print_dkek_info's lines.
func printDKEK(w io.Writer, st hsm.DKEKStatus) {
	fmt.Fprintf(w, "DKEK shares          : %d\n", st.Shares)
	if st.Outstanding > 0 {
		fmt.Fprintf(w, "DKEK import pending, %d share(s) still missing\n", st.Outstanding)
	} else {
		fmt.Fprintf(w, "DKEK key check value : %s\n", st.KCVHex())
	}
}

// xorShares combines shares as the device does.
func xorShares(shares [][]byte) []byte {
	out := make([]byte, 32)
	for _, s := range shares {
		for i := range out {
			out[i] ^= s[i]
		}
	}
	return out
}

// CombinedKCV returns the key check value of the DKEK the shares make.
func CombinedKCV(shares [][]byte) string {
	d := xorShares(shares)
	defer clear(d)
	k := hsm.KCV(d)
	return fmt.Sprintf("%X", k[:])
}

// CheckExpectComplete refuses --expect-kcv for an import that does not
// give every share of the DKEK. --expect-kcv is the key check value of
// the whole DKEK, and the tool can only compute it from the shares it
// decrypts: the device keeps the shares of earlier runs only as their XOR
// and shows no check value until the last one (checkCommitted). st is the
// status CheckImportInto read for key domain dom, n the files given.
func CheckExpectComplete(st hsm.DKEKStatus, dom, n int) error {
	if st.Outstanding == st.Shares && n == st.Shares {
		return nil
	}
	whose := "the device's"
	if dom != 0 {
		whose = fmt.Sprintf("key domain %d's", dom)
	}
	held := ""
	if k := st.Shares - st.Outstanding; k > 0 {
		held = fmt.Sprintf("%d of them %s already imported and ", k, wasWere(k))
	}
	return fmt.Errorf("--expect-kcv is the key check value of the whole DKEK, so it needs all of %s %d DKEK shares in one run, but %s%d share file(s) were given: give every share file in one run, or check each file alone with --expect-share-kcv and the value create-dkek-share printed for it (to finish an import with --expect-kcv, use --resume)", whose, st.Shares, held, n)
}

func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// DKEKState is a device's DKEK state as CheckImportInto read it.
type DKEKState = hsm.DKEKStatus

// CheckPINTries checks, before anything changes on any device of a run
// that imports into several, that the user PIN of conn can be tried: not
// blocked, and not at its last try unless allowLastTry (hsm.CheckTries,
// the guard every verification goes through).
func CheckPINTries(conn *device.Conn, allowLastTry bool) error {
	st, err := conn.PINStatus(hsm.UserPIN)
	if err != nil {
		return err
	}
	return hsm.CheckTries(st, hsm.UserPIN, allowLastTry)
}
