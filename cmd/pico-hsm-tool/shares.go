package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/custodian"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/dkekshare"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/shamir"
)

// progress returns a progress indicator for the key derivation: a
// percentage on stderr when stderr is a terminal, nothing otherwise.
func (g *globals) progress() func(done, total int) { return g.progressFor(1) }

// progressFor is progress for the derivations of n share files at once
// (ceremony.OpenShares): one line for them all.
func (g *globals) progressFor(n int) func(done, total int) {
	f, ok := g.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	what := "the key from the password"
	if n > 1 {
		what = fmt.Sprintf("the keys from the %d passwords", n)
	}
	last := -1
	return func(done, total int) {
		if done >= total {
			fmt.Fprint(f, "\r\x1b[K")
			last = -1
			return
		}
		if pct := done * 100 / total; pct != last {
			last = pct
			fmt.Fprintf(f, "\rderiving %s: %3d%%", what, pct)
		}
	}
}

// nofmFlags are the n-of-m password share options.
type nofmFlags struct {
	threshold, total int
	out              string
	files            []string
	shares           []string
}

// sharesGiven reports whether password shares were given for import.
func (n *nofmFlags) sharesGiven() bool {
	return n.total > 0 || len(n.files) > 0 || len(n.shares) > 0
}

var errNoShareTerminal = errors.New("no terminal to show the password shares on: give --pwd-shares-out DIR (one file per custodian) or --pwd-shares-out - (standard output)")

// checkSplit checks, before any custodian screen or key derivation, what
// splitPassword needs: valid counts, and a terminal for the screens or a
// --pwd-shares-out that is a writable directory without share files of
// shareFile in it (or - for standard output).
func (g *globals) checkSplit(n *nofmFlags, shareFile string) error {
	if n.threshold == 0 || n.total == 0 {
		return errors.New("give both --pwd-shares-threshold and --pwd-shares-total")
	}
	if err := shamir.CheckParams(n.threshold, n.total); err != nil {
		return err
	}
	switch n.out {
	case "":
		t, err := g.secrets().TTY()
		if err != nil {
			return errNoShareTerminal
		}
		t.Close()
	case "-":
	default:
		if fi, err := os.Stat(n.out); err != nil || !fi.IsDir() {
			return fmt.Errorf("--pwd-shares-out %s: not a directory: create it first, or give - for standard output", n.out)
		}
		for id := 1; id <= n.total; id++ {
			if _, err := os.Lstat(n.sharePath(shareFile, id)); err == nil {
				return fmt.Errorf("%s: %w: password shares are never replaced; choose another directory or share file name", n.sharePath(shareFile, id), atomicfile.ErrExists)
			}
		}
		if err := atomicfile.CheckWritable(n.sharePath(shareFile, 1)); err != nil {
			return err
		}
	}
	return nil
}

// sharePath is where --pwd-shares-out DIR puts share id of shareFile's
// password.
func (n *nofmFlags) sharePath(shareFile string, id int) string {
	return filepath.Join(n.out, fmt.Sprintf("%s.share-%d-of-%d.txt", filepath.Base(shareFile), id, n.total))
}

// splitPassword makes a random n-of-m password and hands the shares to the
// custodians: on the terminal, one screen each; without a terminal, to
// --pwd-shares-out (a directory, one 0600 file per custodian, or - for
// stdout). Its callers run checkSplit first, before anything slow; it
// runs it again, as the files may have changed since.
//
// It returns the password and the files it wrote, which the caller removes
// if the share file then cannot be written: they would protect nothing.
func (g *globals) splitPassword(n *nofmFlags, shareFile string) ([]byte, []string, error) {
	if err := g.checkSplit(n, shareFile); err != nil {
		return nil, nil, err
	}
	sharePath := func(id int) string { return n.sharePath(shareFile, id) }
	var tty secret.Terminal
	if n.out == "" {
		t, err := g.secrets().TTY()
		if err != nil {
			return nil, nil, errNoShareTerminal
		}
		tty = t
		defer t.Close()
	}
	pw, set, err := shamir.Split(rand.Reader, n.threshold, n.total)
	if err != nil {
		return nil, nil, err
	}
	defer wipeSet(set)
	var written []string
	switch {
	case tty != nil:
		err = custodian.ShowShares(tty, set, n.threshold)
	case n.out == "-":
		err = set.Format(g.stdout)
	default:
		for _, sh := range set.Shares {
			one, _ := set.Single(sh.ID)
			var b bytes.Buffer
			b.Grow(1024) // one allocation: no copy of the share left behind
			one.Format(&b)
			err = atomicfile.Write(sharePath(sh.ID), b.Bytes(), 0o600, false)
			secret.Wipe(b.Bytes())
			if err != nil {
				break
			}
			written = append(written, sharePath(sh.ID))
		}
	}
	if err != nil {
		secret.Wipe(pw)
		removeAll(written)
		return nil, nil, err
	}
	return pw, written, nil
}

// wipeSet zeroes the share values of set; the prime is public.
func wipeSet(set *shamir.Set) {
	if set == nil {
		return
	}
	for _, sh := range set.Shares {
		if sh.Value != nil {
			clear(sh.Value.Bits())
		}
	}
}

func removeAll(paths []string) {
	for _, p := range paths {
		os.Remove(p)
	}
}

// combinePassword rebuilds an n-of-m password from --pwd-shares-file
// (every file given, merged: each custodian may hand in their own),
// --pwd-share, or the custodians at the terminal.
func (g *globals) combinePassword(n *nofmFlags, path string) ([]byte, error) {
	if len(n.files) == 0 && len(n.shares) == 0 {
		if n.total == 0 {
			return nil, fmt.Errorf("%s: give its password shares with --pwd-shares-file or --pwd-share", path)
		}
		t, err := g.secrets().TTY()
		if err != nil {
			return nil, noCustodianTerminal(path)
		}
		defer t.Close()
		set, err := custodian.AskShares(t, n.total)
		if err != nil {
			return nil, err
		}
		defer wipeSet(set)
		return combineSet(set, n, path)
	}
	// The shares are collected in one buffer allocated once, so that no
	// outgrown copy of them is left unwiped.
	files := make([][]byte, len(n.files))
	defer func() {
		for _, b := range files {
			secret.Wipe(b)
		}
	}()
	size := 0
	for i, name := range n.files {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--pwd-shares-file %s: %w: check the path", name, errors.Unwrap(err))
		}
		files[i] = b
		size += len(b) + 1
	}
	for _, sh := range n.shares {
		size += len(sh) + 1
	}
	var text bytes.Buffer
	text.Grow(size)
	defer func() { secret.Wipe(text.Bytes()) }()
	var where sourceLines
	for i, b := range files {
		// Each file may start with a byte order mark, not only the first.
		b = bytes.TrimPrefix(b, []byte("\ufeff"))
		text.Write(b)
		text.WriteByte('\n')
		where.add(n.files[i], bytes.Count(b, []byte("\n"))+1, false)
	}
	for i, sh := range n.shares {
		text.WriteString(sh)
		text.WriteByte('\n')
		where.add(fmt.Sprintf("--pwd-share #%d", i+1), strings.Count(sh, "\n")+1, true)
	}
	set, err := shamir.ParseSet(bytes.NewReader(text.Bytes()))
	if err != nil {
		return nil, fmt.Errorf("password shares for %s: %w", path, redactInput(where.relabel(err), text.String()))
	}
	defer wipeSet(set)
	return combineSet(set, n, path)
}

func combineSet(set *shamir.Set, n *nofmFlags, path string) ([]byte, error) {
	if n.total > 0 && len(set.Shares) != n.total {
		return nil, fmt.Errorf("%s: %d password shares given, --pwd-shares-total says %d", path, len(set.Shares), n.total)
	}
	return shamir.Combine(set)
}

func noCustodianTerminal(path string) error {
	return fmt.Errorf("%s: no terminal for the custodians: give the password shares with --pwd-shares-file PATH or --pwd-share PRIME/ID/VALUE", path)
}

// sourceLines maps the lines of the password shares combinePassword
// merges, from every --pwd-shares-file and --pwd-share, back to where each
// came from, so that an error names the file and its own line number.
type sourceLines struct {
	names []string
	ends  []int // the last merged line of each source
	one   []bool
}

func (s *sourceLines) add(name string, lines int, value bool) {
	end := lines
	if k := len(s.ends); k > 0 {
		end += s.ends[k-1]
	}
	s.names = append(s.names, name)
	s.ends = append(s.ends, end)
	s.one = append(s.one, value && lines == 1)
}

// at names merged line n: "FILE line L", or "--pwd-share #K" for a
// one-line --pwd-share value.
func (s *sourceLines) at(n int) string {
	start := 0
	for i, end := range s.ends {
		if n <= end {
			if s.one[i] {
				return s.names[i]
			}
			return fmt.Sprintf("%s line %d", s.names[i], n-start)
		}
		start = end
	}
	return fmt.Sprintf("line %d", n)
}

// onLine finds shamir's references to another line of the same input.
var onLine = regexp.MustCompile(`\bon line (\d+)\b`)

// relabel rewrites a shamir.ParseError, whose line numbers count over the
// merged input, so that each names its source and the line in it.
func (s *sourceLines) relabel(err error) error {
	var pe *shamir.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	inner := onLine.ReplaceAllStringFunc(pe.Err.Error(), func(m string) string {
		n, _ := strconv.Atoi(onLine.FindStringSubmatch(m)[1])
		return "in " + s.at(n)
	})
	return &redactedError{s.at(pe.Line) + ": " + inner, err}
}

// notShown stands for a piece of input an error message leaves out.
const notShown = "[not shown]"

// redactInput keeps the password shares given out of an error about them:
// internal/shamir quotes the line or value it cannot read, and a password
// given to --pwd-share or --pwd-shares-file by mistake would otherwise be
// printed, and end up in a log. Every line of input, each of its fields,
// and each share value in the form shamir prints it, are replaced with
// [not shown]; the line number and the explanation stay.
func redactInput(err error, input string) error {
	var quoted, plain []string
	for _, line := range strings.Split(input, "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(line, "\ufeff"))
		if line == "" {
			continue
		}
		quoted = append(quoted, line)
		fields := strings.Split(line, "/")
		value := ""
		if len(fields) == 3 {
			value = fields[2]
		} else if label, v, ok := strings.Cut(line, ":"); ok && len(fields) == 1 {
			fields = []string{label, v}
			if strings.EqualFold(strings.Join(strings.Fields(label), " "), "share value") {
				value = v
			}
		}
		for _, f := range fields {
			f = strings.TrimSpace(f)
			quoted = append(quoted, f)
			quoted = append(quoted, strings.Split(f, ":")...)
		}
		if v, err := shamir.ParseHex(value); err == nil {
			plain = append(plain, shamir.FormatHex(v))
		}
	}
	msg := err.Error()
	byLength := func(a, b string) int { return len(b) - len(a) }
	slices.SortFunc(quoted, byLength)
	slices.SortFunc(plain, byLength)
	for _, q := range quoted {
		if q != "" {
			msg = strings.ReplaceAll(msg, strconv.Quote(q), notShown)
		}
	}
	for _, p := range plain {
		msg = strings.ReplaceAll(msg, p, notShown)
	}
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg, err}
}

// redactedError is an error with a message that leaves input out.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// sharePassword is the password of one share file: read before any key
// derivation when a script gives it (pw), or asked for at the terminal
// when the file's turn comes (ask).
type sharePassword struct {
	pw   []byte
	ask  func() ([]byte, error)
	nofm bool
}

// get returns the password; the caller wipes it.
func (p *sharePassword) get() ([]byte, error) {
	if p.ask != nil {
		return p.ask()
	}
	pw := p.pw
	p.pw = nil
	return pw, nil
}

func wipePasswords(pws []sharePassword) {
	for _, p := range pws {
		secret.Wipe(p.pw)
	}
}

// sharePasswords finds the password of each share file before anything
// slow happens: --password values go to the files in order; password
// shares, if given, belong to the one file after them; the rest are
// prompted for. What a script gives is read now, so that a missing
// variable or a bad password share fails before any key derivation; for
// a prompt, a terminal must be there now, and the question comes when
// the file's turn does.
func (g *globals) sharePasswords(paths []string, f *importFlags) ([]sharePassword, error) {
	src := g.secrets()
	pws := make([]sharePassword, len(paths))
	n := &f.nofm
	for i, path := range paths {
		var err error
		switch {
		case i < len(f.passwords):
			pws[i].pw, err = src.Get("password", f.passwords[i], "")
		case n.sharesGiven():
			if len(paths)-len(f.passwords) > 1 {
				err = errors.New("password shares can rebuild the password of one file per run: give --password for the others, or import the n-of-m file on its own")
				break
			}
			pws[i].nofm = true
			if len(n.files) > 0 || len(n.shares) > 0 || n.total == 0 {
				pws[i].pw, err = g.combinePassword(n, path)
				break
			}
			if !g.hasTerminal() {
				err = noCustodianTerminal(path)
				break
			}
			pws[i].ask = func() ([]byte, error) { return g.combinePassword(n, path) }
		default:
			if !g.hasTerminal() {
				err = noPasswordTerminal()
				break
			}
			pws[i].ask = func() ([]byte, error) {
				return src.Prompt("password", fmt.Sprintf("Enter password to decrypt DKEK share %s : ", path))
			}
		}
		if err != nil {
			wipePasswords(pws)
			return nil, err
		}
	}
	return pws, nil
}

// hasTerminal reports whether there is a terminal to prompt on.
func (g *globals) hasTerminal() bool {
	src := g.secrets()
	if src.TTY == nil {
		return false
	}
	t, err := src.TTY()
	if err != nil {
		return false
	}
	t.Close()
	return true
}

// noPasswordTerminal is the error a --password prompt gives without a
// terminal (secret.Source.Prompt), for a check made before the prompt.
func noPasswordTerminal() error {
	_, err := (&secret.Source{}).Prompt("password", "")
	return err
}

// decryptShares decrypts share files read by ceremony.ReadShareFiles,
// with the passwords sharePasswords found, checks that the shares make a
// DKEK nobody knows alone (ceremony.CheckShares), then that they have the
// check values expected (ceremony.Expect). Every password is collected
// first, the prompts one after the other in the order of the files; then
// the files are decrypted at the same time, one key derivation per core
// (ceremony.OpenShares), under one progress line. With deciphering,
// sc-hsm-tool's "Deciphering DKEK share, please wait..." is printed once
// per file, as sc-hsm-tool prints it before each file, so that scripts
// that count those lines still see one per share. The shares come back
// in the order of the files; the caller wipes them, also after an error.
func (g *globals) decryptShares(paths []string, files [][]byte, pws []sharePassword, expect *ceremony.Expect, deciphering bool) ([][]byte, error) {
	passwords := make([][]byte, len(paths))
	defer func() {
		for _, pw := range passwords {
			secret.Wipe(pw)
		}
	}()
	for i := range paths {
		pw, err := pws[i].get()
		if err != nil {
			return nil, err
		}
		passwords[i] = pw
	}
	if deciphering {
		for range paths {
			fmt.Fprintln(g.stdout, "Deciphering DKEK share, please wait...")
		}
	}
	shares, err := ceremony.OpenShares(paths, files, passwords, g.progressFor(len(paths)))
	if err != nil {
		var se *ceremony.ShareError
		if errors.As(err, &se) {
			return nil, nofmErr(pws[se.Index].nofm, se.Name, err)
		}
		return nil, err
	}
	if err := ceremony.CheckShares(paths, shares); err != nil {
		return shares, err
	}
	if expect != nil {
		return shares, expect.Check(paths, shares)
	}
	return shares, nil
}

func newCreateShareCmd(g *globals) *cobra.Command {
	var password string
	var force bool
	n := &nofmFlags{}
	cmd := &cobra.Command{
		Use:   "create-dkek-share FILE",
		Short: "Create a password-protected DKEK share file (.pbe), without a device",
		Long: `Create a new random DKEK share and save it encrypted under a password, in
sc-hsm-tool's format. It needs no device: the share and the salt come from this
machine's random source, so custodians can work on an air-gapped machine.

The last line is the share's own check value: the custodian writes it down
with the file's name, and gives it back to import-dkek-share (or dkek-share
kcv) with --expect-share-kcv, which then refuses another file: a .pbe file
has no MAC, so an older share file with the same password, or another
custodian's, decrypts without error (and about one wrong password in 256
passes sc-hsm-tool's padding check; this tool checks the whole padding
block). sc-hsm-tool's --create-dkek-share syntax prints
sc-hsm-tool's two lines only.

The password can be split n-of-m among custodians with --pwd-shares-threshold
and --pwd-shares-total; each custodian then sees one screen with the prime,
their share ID and value. Without a terminal, --pwd-shares-out writes one
file per custodian (or standard output with -).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kcv, err := createShare(g, args[0], password, n, force)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, shareKCVLine, kcv, args[0])
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&password, "password", "", "share password (or env:VAR, file:PATH, -); prompted twice when omitted")
	decimalVar(fl, &n.threshold, "pwd-shares-threshold", "", 0, "split a random password: shares needed to rebuild it")
	decimalVar(fl, &n.total, "pwd-shares-total", "", 0, "split a random password: number of shares")
	fl.StringVar(&n.out, "pwd-shares-out", "", "without a terminal, where the password shares go: a directory, or - for standard output")
	fl.BoolVarP(&force, "force", "f", false, "replace FILE if it exists")
	return cmd
}

// runCreateShare is sc-hsm-tool's --create-dkek-share (the drop-in
// syntax): its two lines, verbatim, and nothing more.
func runCreateShare(g *globals, path, pwSpec string, n *nofmFlags, force bool) error {
	_, err := createShare(g, path, pwSpec, n, force)
	return err
}

// shareKCVLine is the last line create-dkek-share prints: the share's own
// check value, for its custodian to write down with the file's name and
// to give later to --expect-share-kcv. Its label is not "DKEK key check
// value", which is the whole DKEK's.
const shareKCVLine = "Share check value    : %s (write it down with the file name %s)\n"

// createShare writes a new share file (create-dkek-share) and returns
// the share's own check value.
func createShare(g *globals, path, pwSpec string, n *nofmFlags, force bool) (string, error) {
	nofm := n.threshold > 0 || n.total > 0
	if nofm && pwSpec != "" {
		return "", errors.New("--password and --pwd-shares-* exclude each other: the n-of-m password is random")
	}
	// Everything that can fail without a secret is checked before any
	// password is asked for, custodian screen shown or key derived.
	if err := ceremony.CheckOutput(path, force); err != nil {
		return "", err
	}
	if nofm {
		if err := g.checkSplit(n, path); err != nil {
			return "", err
		}
	}
	var pw []byte
	var written []string
	var err error
	switch {
	case nofm:
		pw, written, err = g.splitPassword(n, path)
	case pwSpec == "":
		pw, err = g.secrets().NewSecret("password", "Enter password to encrypt DKEK share : ", "Please retype password to confirm : ", ceremony.MinPasswordLength)
	default:
		if pw, err = g.secrets().Get("password", pwSpec, ""); err == nil {
			err = ceremony.CheckNewPassword(pw)
		}
	}
	if err != nil {
		return "", err
	}
	defer secret.Wipe(pw)
	fmt.Fprintln(g.stdout, "Enciphering DKEK share, please wait...")
	kcv, err := ceremony.CreateShare(path, pw, force, g.progress())
	if err != nil {
		removeAll(written)
		return "", err
	}
	fmt.Fprintf(g.stdout, "DKEK share created and saved to %s\n", path)
	return kcv, nil
}

// importFlags are import-dkek-share's options.
type importFlags struct {
	passwords []string
	pin       string
	lastTry   bool
	nofm      nofmFlags
	// domain is the key domain the shares go into (--key-domain).
	domain int
	// expectKCV and expectShareKCVs are --expect-kcv and
	// --expect-share-kcv, as typed.
	expectKCV       string
	expectShareKCVs []string
	// resume is --resume: the files are the last shares of the DKEK, and
	// each device takes only those it still expects.
	resume bool
}

// registerExpect adds --expect-kcv and --expect-share-kcv to cmd.
func (f *importFlags) registerExpect(cmd *cobra.Command, whole string) {
	fl := cmd.Flags()
	fl.StringVar(&f.expectKCV, "expect-kcv", "", whole)
	fl.StringArrayVar(&f.expectShareKCVs, "expect-share-kcv", nil, "the check value of the next FILE alone, as create-dkek-share printed it (16 hex digits); repeat for each file, in order: a mismatch refuses")
}

// expect reads --expect-kcv and --expect-share-kcv for files share files,
// before any password is asked for.
func (f *importFlags) expect(files int) (*ceremony.Expect, error) {
	e := &ceremony.Expect{}
	if f.expectKCV != "" {
		v, err := ceremony.ParseKCV("--expect-kcv", f.expectKCV)
		if err != nil {
			return nil, err
		}
		e.KCV = v
	}
	for _, s := range f.expectShareKCVs {
		v, err := ceremony.ParseKCV("--expect-share-kcv", s)
		if err != nil {
			return nil, err
		}
		e.ShareKCVs = append(e.ShareKCVs, v)
	}
	return e, e.CheckCount(files)
}

func newImportShareCmd(g *globals) *cobra.Command {
	f := &importFlags{}
	cmd := &cobra.Command{
		Use:   "import-dkek-share FILE...",
		Short: "Import DKEK share files into the device, and commit the DKEK",
		Long: `Import one or more DKEK share files, in order. Each custodian types their
password in turn (or give --password once per file, or password shares for an
n-of-m file). Once every password is in, the files are decrypted at the same
time, one per core, before the first share goes to the device.

--expect-share-kcv (one per file, in order) checks each share against the
check value create-dkek-share printed for it; --expect-kcv checks the whole
DKEK's, and so needs every share of the DKEK in this run. A mismatch refuses
before any share, or the PIN, reaches the device.

After each share this prints sc-hsm-tool's lines. The Pico HSM keeps the
complete DKEK unprotected until the next user-PIN verification, and loses it if
unplugged before: give --pin (verified before the first import) so that the
DKEK is committed, and its real key check value shown, before this exits.

On a device with key domains (initialize --key-domains), --key-domain D
imports into domain D, which key-domain create D set up; the device takes
shares for a domain other than 0 only once the user PIN is verified, so
--pin is needed there. Each share is then reported as "DKEK share imported
into key domain D", followed by the same lines.

--resume finishes a run that stopped before the DKEK was complete (a card
pulled, a reader gone): give that run's files in the same order, the last
shares of the DKEK. Every file is decrypted, and each device imports only the
last ones it still counts as missing, so no share goes in twice; a device that
needs none only has its DKEK committed. The DKEK each device completes is then
compared with the one all the files make, or, when fewer files than the
DKEK's shares are given, with --expect-kcv, which is then needed. --pin is
needed too. The report of a run that stopped prints this command.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runImportShares(g, args, f, cmd.Flags().Changed("pin"))
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.passwords, "password", nil, "password of the next FILE (or env:VAR, file:PATH, -); repeat for each file")
	decimalVar(fl, &f.nofm.total, "pwd-shares-total", "", 0, "the files' passwords are n-of-m shares: number of custodians who present theirs")
	fl.StringArrayVar(&f.nofm.files, "pwd-shares-file", nil, "password shares, in sc-hsm-tool's Prime/Share ID/Share value lines or PRIME/ID/VALUE lines; repeat for each custodian's file")
	fl.StringArrayVar(&f.nofm.shares, "pwd-share", nil, "one password share PRIME/ID/VALUE (ID in decimal); repeat for each custodian")
	fl.StringVar(&f.pin, "pin", "", "user PIN (or env:VAR, file:PATH, -): commits the DKEK and shows its real key check value")
	fl.BoolVar(&f.lastTry, "last-try", false, "allow using a PIN that has only one try left")
	decimalVar(fl, &f.domain, "key-domain", "", 0, "key domain to import into, 0 to 15 (default 0); a domain other than 0 needs --pin")
	f.registerExpect(cmd, "the key check value of the whole DKEK (16 hex digits): needs every share in this run, and a mismatch refuses before anything is imported; with --resume and fewer files, the DKEK each device completes is compared with it")
	fl.BoolVar(&f.resume, "resume", false, "finish a run that stopped: the FILEs are the last shares of the DKEK in the first run's order, and each device takes only those it still expects (none twice)")
	return cmd
}

func runImportShares(g *globals, paths []string, f *importFlags, pinGiven bool) error {
	// Everything is checked before the first key derivation, cheapest
	// first: the files, the PIN, every password a script gives (and a
	// terminal for the others), then the device.
	if err := ceremony.CheckDomainNumber(f.domain); err != nil {
		return err
	}
	many := len(g.readers) > 1 || g.allReaders
	if !pinGiven {
		// Asked for at the terminal with the other secrets; a script
		// learns it before any file is read.
		var why error
		switch {
		case f.domain != 0:
			why = ceremony.ErrDomainNeedsPIN(f.domain)
		case f.resume:
			why = errors.New("--resume needs the user PIN: the DKEK the device completes is checked against the shares, and a Pico HSM shows its check value only after the PIN; give --pin (or --pin env:VAR, file:PATH, -)")
		case many:
			why = errors.New("importing into several devices needs the user PIN, so that each device's DKEK is committed and their check values compared before the run ends; give --pin (or --pin env:VAR, file:PATH, -)")
		}
		if why != nil {
			if !g.hasTerminal() {
				return why
			}
			pinGiven = true
		}
	}
	if len(f.passwords) > len(paths) {
		return tooManyPasswords(len(f.passwords), len(paths))
	}
	expect, err := f.expect(len(paths))
	if err != nil {
		return err
	}
	files, err := ceremony.ReadShareFiles(paths)
	if err != nil {
		return err
	}
	src := g.secrets()
	var pin []byte
	if pinGiven {
		if pin, err = g.userPIN(f.pin); err != nil {
			return err
		}
		defer secret.Wipe(pin)
	}
	pws, err := g.sharePasswords(paths, f)
	if err != nil {
		return err
	}
	defer wipePasswords(pws)
	if many {
		return importSharesMany(g, paths, files, pws, pin, f, expect)
	}
	conn, err := g.open()
	if err != nil {
		return err
	}
	defer conn.Close()
	checked, from, err := checkImport(conn, paths, f, expect)
	if err != nil {
		return err
	}
	shares, err := g.decryptExpected(paths, files, pws, expectFor(expect, checked, len(paths)), "nothing was imported")
	defer wipeShares(shares)
	if err != nil {
		return err
	}
	o := ceremony.ImportOptions{Shares: shares[from:], Names: paths[from:], Domain: f.domain, Checked: &checked, PIN: pin, AllowLastTry: f.lastTry, Out: g.stdout,
		Resume: f.resume, Run: paths, RunKCV: resumeTarget(expect, checked, shares).KCV, Warn: func(format string, args ...any) { g.note(format, args...) }}
	if pin == nil && g.hasTerminal() {
		o.AskPIN = func() ([]byte, error) {
			return src.Prompt("pin", "All shares are imported. Enter the user PIN to commit the DKEK: ")
		}
	}
	res, err := ceremony.ImportShares(conn, o)
	if errors.Is(err, ceremony.ErrNotCommitted) {
		return nil // imported, as sc-hsm-tool would; the warning is printed
	}
	if err == nil && f.resume {
		return resumeTarget(expect, checked, shares).CheckDevice(res.Status)
	}
	return err
}

// checkImport checks, before any file is decrypted, that the device can
// take the share files, and returns its DKEK status and the index of the
// first file it takes: 0, or with --resume the first it still expects
// (ceremony.ResumeFrom). --expect-kcv needs every share of the DKEK in
// the run, except with --resume, where the device's complete DKEK is
// compared with it at the end; and --resume needs either every share file
// of the DKEK or --expect-kcv, since the device's count cannot tell which
// shares it holds.
func checkImport(conn *device.Conn, paths []string, f *importFlags, expect *ceremony.Expect) (hsm.DKEKStatus, int, error) {
	if f.resume {
		st, from, err := ceremony.ResumeFrom(conn, f.domain, len(paths))
		if err == nil && len(paths) < st.Shares && expect.KCV == "" {
			err = fmt.Errorf("--resume was given %d of the %d share files of the DKEK: from those alone the tool cannot tell whether the shares the device took before are the right ones; give every share file of the DKEK, in the order of the first run, or add --expect-kcv with the DKEK's check value ('pico-hsm-tool dkek-share kcv' prints it from all its files); nothing was imported", len(paths), st.Shares)
		}
		return st, from, err
	}
	st, err := ceremony.CheckImportInto(conn, f.domain, len(paths))
	if err == nil && expect.KCV != "" {
		err = ceremony.CheckExpectComplete(st, f.domain, len(paths))
	}
	return st, 0, err
}

// expectFor is what the n files are checked against before they reach a
// device: every value expected, except the whole DKEK's when the files are
// not all of its shares (with --resume; the device holds the others, and
// resumeTarget checks the completed DKEK).
func expectFor(expect *ceremony.Expect, st hsm.DKEKStatus, n int) *ceremony.Expect {
	return expect.From(0, n == st.Shares)
}

// resumeTarget is what a DKEK completed with --resume must be: the
// --expect-kcv given, or the check value of the files when they are all
// of its shares.
func resumeTarget(expect *ceremony.Expect, st hsm.DKEKStatus, shares [][]byte) *ceremony.Expect {
	if expect.KCV == "" && len(shares) == st.Shares {
		return &ceremony.Expect{KCV: ceremony.CombinedKCV(shares)}
	}
	return expect
}

// importSharesMany imports the same share files into several devices in
// one run (--reader more than once, or --all-readers): a primary and its
// spares get the same DKEK from one typing of each password. Every device
// is checked first (reachable, initialized with the key domain set up for
// the same number of shares, enough shares outstanding, and the user PIN
// verified), so that nothing changes anywhere when one of them cannot
// take the shares; then each file is decrypted once; then the shares go
// into each device in turn. A device that fails does not stop the others:
// the report says each device's state, the command that finishes the ones
// left behind (import-dkek-share --resume with this run's files), and
// whether the devices hold the same DKEK. With --resume each device takes
// the files it still lacks, which may differ from one to another.
func importSharesMany(g *globals, paths []string, files [][]byte, pws []sharePassword, pin []byte, f *importFlags, expect *ceremony.Expect) error {
	conns, err := g.openAll()
	if err != nil {
		return err
	}
	defer closeAll(conns)
	checked := make([]hsm.DKEKStatus, len(conns))
	from := make([]int, len(conns))
	for i, c := range conns {
		st, k, err := checkImport(c, paths, f, expect)
		if err == nil && i > 0 && st.Shares != checked[0].Shares {
			err = fmt.Errorf("its DKEK is set up for %d shares, and that of %s for %d: the devices of one import must be set up alike; initialize the one set up wrongly again with the right --dkek-shares (which destroys its keys), or import into each device alone", st.Shares, conns[0].Reader, checked[0].Shares)
		}
		if err == nil {
			// The PIN is verified on every device before any share goes
			// anywhere; a wrong one stops here, tried on this device only.
			err = c.Login(pin, f.lastTry)
		}
		if err != nil {
			return fmt.Errorf("%s: %w; nothing was imported into any device", c.Reader, err)
		}
		checked[i], from[i] = st, k
	}
	shares, err := g.decryptExpected(paths, files, pws, expectFor(expect, checked[0], len(paths)), "nothing was imported into any device")
	defer wipeShares(shares)
	if err != nil {
		return err
	}
	// whole is the DKEK's check value when it is known: given, or this
	// run's files are all of its shares; the commands that finish a device
	// left behind carry it.
	whole := resumeTarget(expect, checked[0], shares).KCV
	type outcome struct {
		reader string
		res    *ceremony.ImportResult
		err    error
	}
	var outs []outcome
	for i, c := range conns {
		fmt.Fprintf(g.stdout, "Reader               : %s\n", c.Reader)
		o := ceremony.ImportOptions{Shares: shares[from[i]:], Names: paths[from[i]:], Domain: f.domain, Checked: &checked[i], PIN: pin, AllowLastTry: f.lastTry, Out: g.stdout,
			Resume: f.resume, Run: paths, RunKCV: whole, Warn: func(format string, args ...any) { g.note(format, args...) }}
		res, err := ceremony.ImportShares(c, o)
		if err == nil && f.resume {
			err = resumeTarget(expect, checked[i], shares).CheckDevice(res.Status)
		}
		if err != nil && !errors.Is(err, ceremony.ErrNotCommitted) {
			g.note("%s: %v", c.Reader, err)
		}
		outs = append(outs, outcome{reader: c.Reader, res: res, err: err})
		fmt.Fprintln(g.stdout)
	}
	failed, incomplete := 0, 0
	kcvs := map[string]bool{}
	for i, o := range outs {
		switch {
		case o.err != nil && !errors.Is(o.err, ceremony.ErrNotCommitted):
			failed++
			fmt.Fprintf(g.stdout, "Device %s: %s\n", o.reader, resumeAdvice(o.reader, paths, checked[i], from[i], o.res, o.err, f.domain, whole))
		case o.res != nil && o.res.Committed:
			kcvs[o.res.Status.KCVHex()] = true
			fmt.Fprintf(g.stdout, "Device %s: DKEK key check value %s\n", o.reader, o.res.Status.KCVHex())
		default:
			incomplete++
			missing := 0
			if o.res != nil {
				missing = o.res.Status.Outstanding
			}
			fmt.Fprintf(g.stdout, "Device %s: shares imported; its DKEK is not complete yet (%d share(s) still missing)\n", o.reader, missing)
		}
	}
	switch {
	case failed == 0 && incomplete == 0 && len(kcvs) == 1:
		for k := range kcvs {
			fmt.Fprintf(g.stdout, "All %d devices hold DKEK %s\n", len(outs), k)
		}
	case len(kcvs) > 1:
		return errors.New("the devices hold different DKEKs after this run: check each device's earlier shares with status --pin")
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d devices did not end with the DKEK: see the line for each", failed, len(outs))
	}
	return nil
}

// resumeAdvice says how far a device that failed got, and what finishes
// it: when its completed DKEK is wrong (ceremony.ErrWrongDKEK),
// re-initializing; when this run was to finish the DKEK,
// import-dkek-share --resume with this run's files, which imports only
// those the device still lacks (a share whose answer was lost is never
// imported twice) and checks the DKEK they make; otherwise the files it
// has not taken, by the count status shows when an answer was lost.
func resumeAdvice(reader string, paths []string, st hsm.DKEKStatus, from int, res *ceremony.ImportResult, err error, dom int, kcv string) string {
	k, unsure := from, false // files of this run the device holds
	if res != nil {
		k, unsure = from+res.Imported, res.Unsure
	}
	n := len(paths)
	held := st.Shares - st.Outstanding + k - from // the DKEK's shares the device holds
	suggest := func(args string) string { return "pico-hsm-tool --reader " + device.ShellQuote(reader) + " " + args }
	var b strings.Builder
	switch {
	case errors.Is(err, ceremony.ErrWrongDKEK):
		return fmt.Sprintf("wrong DKEK: all %d shares are in, but its DKEK is not the one expected (the error above says why); do not use it for backups: re-initialize it and import every share again", st.Shares)
	case unsure:
		fmt.Fprintf(&b, "not done, %d of %d shares are in, and %s may be: its answer was lost (the card was pulled or the reader failed); put the device back and ", held, st.Shares, paths[k])
	default:
		fmt.Fprintf(&b, "not done, %d of %d shares are in; ", held, st.Shares)
	}
	switch {
	case st.Outstanding == n-from:
		// This run was to finish the DKEK: --resume does.
		b.WriteString("finish with: " + suggest(ceremony.ResumeCommand(paths, dom, kcv, n < st.Shares)))
		if n < st.Shares && kcv == "" {
			b.WriteString(" (KCV: the DKEK's check value, which 'pico-hsm-tool dkek-share kcv' prints from all its share files)")
		}
	case unsure:
		b.WriteString("run '" + suggest("status") + "': " + ceremony.UnsureAdvice(suggest, paths[from:], k-from, st.Outstanding, dom))
	case k < n:
		b.WriteString("go on with: " + suggest(ceremony.ImportCommand(paths[k:], dom)))
	default:
		b.WriteString("this run's shares are all in: run '" + suggest("status --pin") + "' to see its state")
	}
	return b.String()
}

// decryptExpected decrypts the share files (each once, on every core) and
// checks them against the check values expected (--expect-share-kcv,
// --expect-kcv); a mismatch ends with unchanged, which says what was not
// done. The caller wipes the shares, also on error.
func (g *globals) decryptExpected(paths []string, files [][]byte, pws []sharePassword, expect *ceremony.Expect, unchanged string) ([][]byte, error) {
	shares, err := g.decryptShares(paths, files, pws, nil, true)
	if err != nil {
		return shares, err
	}
	if err := expect.Check(paths, shares); err != nil {
		return shares, fmt.Errorf("%w; %s", err, unchanged)
	}
	return shares, nil
}

func wipeShares(shares [][]byte) {
	for _, s := range shares {
		secret.Wipe(s)
	}
}

func newShareToolsCmd(g *globals) *cobra.Command {
	cmd := groupCmd("dkek-share", "Offline tools for DKEK share files: inspect, kcv, reshare, print, from-paper (no device)", false)
	cmd.AddCommand(newShareInspectCmd(g), newShareKCVCmd(g), newReshareCmd(g), newSharePrintCmd(g), newShareFromPaperCmd(g))
	return cmd
}

func newShareInspectCmd(g *globals) *cobra.Command {
	var password string
	var asJSON bool
	n := &nofmFlags{}
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Check a share file's format; with its password, also print the share's own check value",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			file, err := ceremony.ReadShareFile(path)
			if err != nil {
				return err
			}
			salt, _ := dkekshare.Check(file)
			info := struct {
				File       string `json:"file"`
				Format     string `json:"format"`
				Salt       string `json:"salt"`
				Iterations int    `json:"iterations"`
				ShareKCV   string `json:"share_kcv,omitempty"`
			}{path, "sc-hsm-tool DKEK share: OpenSSL salted AES-256-CBC, EVP_BytesToKey MD5", fmt.Sprintf("%X", salt), dkekshare.Iterations, ""}
			var pw []byte
			switch {
			case cmd.Flags().Changed("password"):
				pw, err = g.secrets().Get("password", password, "Enter password to decrypt DKEK share : ")
			case n.sharesGiven():
				pw, err = g.combinePassword(n, path)
			}
			if err != nil {
				return err
			}
			if pw != nil {
				share, err := ceremony.OpenShare(path, file, pw, g.progress())
				secret.Wipe(pw)
				if err != nil {
					return err
				}
				info.ShareKCV = ceremony.ShareKCV(share)
				secret.Wipe(share)
			}
			if asJSON {
				return writeJSON(g, info)
			}
			fmt.Fprintf(g.stdout, "File                 : %s\nFormat               : %s, %d iterations\nSalt                 : %s\n", info.File, info.Format, info.Iterations, info.Salt)
			if info.ShareKCV != "" {
				fmt.Fprintf(g.stdout, "Share check value    : %s\n", info.ShareKCV)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&password, "password", "", "password (or env:VAR, file:PATH, -): decrypt and print the share's check value")
	decimalVar(cmd.Flags(), &n.total, "pwd-shares-total", "", 0, "the password is n-of-m shared: number of custodians")
	cmd.Flags().StringArrayVar(&n.files, "pwd-shares-file", nil, "password shares file")
	cmd.Flags().StringArrayVar(&n.shares, "pwd-share", nil, "one password share PRIME/ID/VALUE")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

func newShareKCVCmd(g *globals) *cobra.Command {
	f := &importFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "kcv FILE...",
		Short: "Print the key check value of the DKEK the share files make together (XOR), without a device",
		Long: `Decrypt every share file and print the key check value of the DKEK they make:
the XOR of the shares, SHA-256, first 8 bytes. Compare it with
'pico-hsm-tool status --pin' before and after a ceremony: the device holds exactly
these shares when the two agree. With --expect-kcv (or --expect-share-kcv per
file) it exits 1 when a value differs. The files are decrypted at the same time,
one per core.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			shares, err := g.decryptAll(args, f)
			defer func() {
				for _, s := range shares {
					secret.Wipe(s)
				}
			}()
			if err != nil {
				return err
			}
			kcv := ceremony.CombinedKCV(shares)
			if asJSON {
				return writeJSON(g, struct {
					Files []string `json:"files"`
					KCV   string   `json:"kcv"`
				}{args, kcv})
			}
			fmt.Fprintf(g.stdout, "DKEK shares          : %d\nDKEK key check value : %s\n", len(args), kcv)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.passwords, "password", nil, "password of the next FILE (or env:VAR, file:PATH, -); repeat for each file")
	decimalVar(fl, &f.nofm.total, "pwd-shares-total", "", 0, "the files' passwords are n-of-m shares: number of custodians")
	fl.StringArrayVar(&f.nofm.files, "pwd-shares-file", nil, "password shares of the next n-of-m FILE")
	fl.StringArrayVar(&f.nofm.shares, "pwd-share", nil, "one password share PRIME/ID/VALUE")
	fl.BoolVar(&asJSON, "json", false, "print as JSON")
	f.registerExpect(cmd, "the key check value the DKEK of these files must have (16 hex digits): a mismatch exits 1")
	return cmd
}

// decryptAll decrypts share files with passwords or password shares, as
// import-dkek-share takes them, without a device. The caller wipes the
// shares, also after an error.
func (g *globals) decryptAll(paths []string, f *importFlags) ([][]byte, error) {
	if len(f.passwords) > len(paths) {
		return nil, tooManyPasswords(len(f.passwords), len(paths))
	}
	expect, err := f.expect(len(paths))
	if err != nil {
		return nil, err
	}
	files, err := ceremony.ReadShareFiles(paths)
	if err != nil {
		return nil, err
	}
	pws, err := g.sharePasswords(paths, f)
	if err != nil {
		return nil, err
	}
	defer wipePasswords(pws)
	return g.decryptShares(paths, files, pws, expect, false)
}

func newReshareCmd(g *globals) *cobra.Command {
	var password, newPassword, out string
	var force bool
	n := &nofmFlags{}
	old := &nofmFlags{}
	cmd := &cobra.Command{
		Use:   "reshare FILE --out NEWFILE",
		Short: "Re-encrypt a share under a new password or a new n-of-m split (custodian rotation), without a device",
		Long: `Decrypt a share file with its current password (or password shares) and save the
same share under a new password, or under a new random password split n-of-m.
The new file is decrypted once more before it is written, and the DKEK does not
change: the device needs nothing.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			if out == "" {
				return errors.New("--out is required: the new share file (use --out " + path + " --force to replace the old one)")
			}
			file, err := ceremony.ReadShareFile(path)
			if err != nil {
				return err
			}
			if err := ceremony.CheckOutput(out, force); err != nil {
				return err
			}
			newNofm := n.threshold > 0 || n.total > 0
			if newNofm {
				if err := g.checkSplit(n, out); err != nil {
					return err
				}
			}
			src := g.secrets()
			var oldPW []byte
			if old.sharesGiven() {
				oldPW, err = g.combinePassword(old, path)
			} else {
				oldPW, err = src.Get("password", password, "Enter the current password of "+path+" : ")
			}
			if err != nil {
				return err
			}
			defer secret.Wipe(oldPW)
			// A new password a script gives is read, and checked, before
			// the key derivation; one typed at the terminal after it, once
			// the old password has proved right.
			var newPW []byte
			if !newNofm && newPassword != "" {
				if newPW, err = src.Get("new-password", newPassword, ""); err == nil {
					err = ceremony.CheckNewPassword(newPW)
				}
				defer func() { secret.Wipe(newPW) }()
				if err != nil {
					return err
				}
			}
			share, err := ceremony.OpenShare(path, file, oldPW, g.progress())
			if err != nil {
				return nofmErr(old.sharesGiven(), path, err)
			}
			secret.Wipe(share) // checked: the password opens it

			switch {
			case newNofm:
				var written []string
				newPW, written, err = g.splitPassword(n, out)
				defer func() {
					if err != nil {
						removeAll(written)
					}
				}()
			case newPW == nil:
				newPW, err = src.NewSecret("new-password", "Enter the new password : ", "Please retype the new password : ", ceremony.MinPasswordLength)
			}
			if err != nil {
				return err
			}
			defer secret.Wipe(newPW)
			fmt.Fprintln(g.stdout, "Enciphering DKEK share, please wait...")
			if err = ceremony.Reshare(file, oldPW, newPW, out, force, g.progress()); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "DKEK share re-encrypted and saved to %s\n", out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&password, "password", "", "current password (or env:VAR, file:PATH, -)")
	decimalVar(fl, &old.total, "pwd-shares-total", "", 0, "the current password is n-of-m shared: number of custodians")
	fl.StringArrayVar(&old.files, "pwd-shares-file", nil, "the current password's shares")
	fl.StringArrayVar(&old.shares, "pwd-share", nil, "one share of the current password PRIME/ID/VALUE")
	fl.StringVar(&newPassword, "new-password", "", "new password (or env:VAR, file:PATH, -); prompted twice when omitted")
	decimalVar(fl, &n.threshold, "new-pwd-shares-threshold", "", 0, "split a new random password: shares needed")
	decimalVar(fl, &n.total, "new-pwd-shares-total", "", 0, "split a new random password: number of shares")
	fl.StringVar(&n.out, "pwd-shares-out", "", "without a terminal, where the new password shares go: a directory, or -")
	fl.StringVar(&out, "out", "", "the new share file")
	fl.BoolVarP(&force, "force", "f", false, "replace --out if it exists")
	return cmd
}

func tooManyPasswords(passwords, files int) error {
	return fmt.Errorf("%d --password given for %d file(s): give one --password per share file, in the order of the files", passwords, files)
}

// nofmErr explains a wrong password rebuilt from password shares.
func nofmErr(nofm bool, path string, err error) error {
	if nofm && errors.Is(err, dkekshare.ErrWrongPassword) {
		return fmt.Errorf("%s: the password shares do not rebuild this file's password: check the prime, each share ID (decimal, as shown at creation) and value, and that the shares belong to this file", path)
	}
	return err
}

func writeJSON(g *globals, v any) error {
	e := json.NewEncoder(g.stdout)
	e.SetIndent("", "  ")
	return e.Encode(v)
}
