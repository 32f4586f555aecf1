package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/atomicfile"
)

// legacyFlags are sc-hsm-tool's options (OpenSC src/tools/sc-hsm-tool.c,
// options[]), accepted on the bare command so that existing scripts work
// with pico-hsm-tool in place of sc-hsm-tool:
//
//	pico-hsm-tool --initialize --so-pin … --pin … --dkek-shares 3
//	pico-hsm-tool --create-dkek-share f.pbe --password …
//	pico-hsm-tool --import-dkek-share f.pbe --password …
//
// (which takes import-dkek-share's --expect-kcv and --expect-share-kcv
// too), and the key domain options of OpenSC pull request 3786:
//
//	pico-hsm-tool --initialize … --dkek-shares 1 --key-domain 4
//	pico-hsm-tool --create-dkek-key-domain --key-domain 1 --dkek-shares 2 --pin …
//	pico-hsm-tool --import-dkek-share f.pbe --key-domain 1 --pin …
//	pico-hsm-tool --delete-key-domain --key-domain 1 --pin …
//	pico-hsm-tool --clear-kek --key-domain 1 --pin …
//
// Each action maps onto its subcommand and prints the same result lines.
// One difference from the subcommands: --create-dkek-share and --wrap-key
// write over an existing file, as sc-hsm-tool does (it opens the file
// with fopen "wb"), because scripts written for it count on that; but the
// old file is kept as FILE.~N~ (see aside), never lost.
type legacyFlags struct {
	initialize    bool
	createShare   string
	importShare   string
	wrapKey       string
	unwrapKey     string
	keyRef        int
	soPIN, pin    string
	password      string
	pwdThreshold  int
	pwdTotal      int
	force         bool
	json          bool
	init          initFlags
	pwdSharesOut  string
	pwdSharesFile []string
	// keyDomain is --key-domain: with --initialize the number of key
	// domain slots, otherwise the domain acted on; -1 when not given.
	keyDomain    int
	createDomain bool
	deleteDomain bool
	clearKEK     bool
	// expect holds --expect-kcv and --expect-share-kcv for
	// --import-dkek-share, registered by importFlags.registerExpect so
	// that they read as they do on import-dkek-share.
	expect importFlags
}

func (l *legacyFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.BoolVarP(&l.initialize, "initialize", "X", false, "sc-hsm-tool compatible: initialize the device (see the initialize command)")
	fl.StringVarP(&l.createShare, "create-dkek-share", "C", "", "sc-hsm-tool compatible: create a DKEK share `FILE` (see create-dkek-share)")
	fl.StringVarP(&l.importShare, "import-dkek-share", "I", "", "sc-hsm-tool compatible: import a DKEK share `FILE` (see import-dkek-share)")
	fl.StringVarP(&l.wrapKey, "wrap-key", "W", "", "sc-hsm-tool compatible: wrap the key --key-reference into `FILE` (see wrap-key)")
	fl.StringVarP(&l.unwrapKey, "unwrap-key", "U", "", "sc-hsm-tool compatible: unwrap `FILE` into --key-reference (see unwrap-key)")
	decimalVar(fl, &l.keyRef, "key-reference", "i", -1, "key reference for --wrap-key and --unwrap-key")
	fl.StringVar(&l.soPIN, "so-pin", "", "SO-PIN for --initialize (or env:VAR, file:PATH, -)")
	fl.StringVar(&l.pin, "pin", "", "user PIN (or env:VAR, file:PATH, -); with no action, verified to show the real DKEK key check value")
	fl.StringVar(&l.password, "password", "", "DKEK share password (or env:VAR, file:PATH, -)")
	decimalVar(fl, &l.pwdThreshold, "pwd-shares-threshold", "", 0, "n-of-m password shares: threshold")
	decimalVar(fl, &l.pwdTotal, "pwd-shares-total", "", 0, "n-of-m password shares: total (or, for import, custodians presenting)")
	fl.StringVar(&l.pwdSharesOut, "pwd-shares-out", "", "without a terminal, where new password shares go: a directory, or -")
	fl.StringArrayVar(&l.pwdSharesFile, "pwd-shares-file", nil, "password shares for --import-dkek-share")
	fl.BoolVarP(&l.force, "force", "f", false, "replace existing files")
	fl.BoolVar(&l.json, "json", false, "with no action: print the status as JSON; with a key domain action, its result")
	fl.BoolVar(&l.createDomain, "create-dkek-key-domain", false, "sc-hsm-tool compatible: set up key domain --key-domain for --dkek-shares shares (see key-domain create)")
	fl.BoolVar(&l.deleteDomain, "delete-key-domain", false, "sc-hsm-tool compatible: delete key domain --key-domain (see key-domain delete)")
	fl.BoolVar(&l.clearKEK, "clear-kek", false, "sc-hsm-tool compatible: clear the DKEK shares of key domain --key-domain (see key-domain clear)")
	decimalVar(fl, &l.keyDomain, "key-domain", "", -1, "with --initialize: the number of key domains (as --key-domains); with --import-dkek-share, --create-dkek-key-domain, --delete-key-domain, --clear-kek: the key domain")
	l.expect.registerExpect(cmd, "with --import-dkek-share: the key check value of the whole DKEK (16 hex digits), so only for a DKEK of one share; a mismatch refuses before anything is imported")
	l.init.register(cmd, true)
	// Keep the main help about the subcommands: the legacy options work
	// but are documented under the subcommands they map onto.
	fl.VisitAll(func(f *pflag.Flag) {
		if f.Name != "json" && f.Name != "pin" {
			f.Hidden = true
		}
	})
}

// help lists every legacy option with its usage, for the root command's
// help: they are hidden from the flag list, which is about the
// subcommands, but a script's author must find each of them.
func (l *legacyFlags) help(cmd *cobra.Command) string {
	fs := pflag.NewFlagSet("sc-hsm-tool", pflag.ContinueOnError)
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			c := *f
			c.Hidden = false
			fs.AddFlag(&c)
		}
	})
	return "\n\nsc-hsm-tool options (each maps onto the command named in its line; an\nexisting --create-dkek-share or --wrap-key FILE is kept as FILE.~N~, or\nreplaced with --force):\n" + fs.FlagUsages()
}

// run dispatches a legacy action; ok is false when none was given.
func (l *legacyFlags) run(g *globals, cmd *cobra.Command) (ok bool, err error) {
	actions := 0
	for _, set := range []bool{l.initialize, l.createShare != "", l.importShare != "", l.wrapKey != "", l.unwrapKey != "", l.createDomain, l.deleteDomain, l.clearKEK} {
		if set {
			actions++
		}
	}
	if l.keyDomain >= 0 && !(l.initialize || l.importShare != "" || l.createDomain || l.deleteDomain || l.clearKEK) {
		return true, errors.New("--key-domain goes with --initialize (the number of key domains), --import-dkek-share, --create-dkek-key-domain, --delete-key-domain or --clear-kek (the key domain)")
	}
	if (l.expect.expectKCV != "" || len(l.expect.expectShareKCVs) > 0) && l.importShare == "" {
		return true, errors.New("--expect-kcv and --expect-share-kcv go with --import-dkek-share: give the share file they check")
	}
	if actions == 0 {
		return false, nil
	}
	if actions > 1 {
		if l.createDomain || l.deleteDomain || l.clearKEK {
			return true, errors.New("give one of --initialize, --create-dkek-share, --import-dkek-share, --wrap-key, --unwrap-key, --create-dkek-key-domain, --delete-key-domain and --clear-kek at a time")
		}
		return true, errors.New("give one of --initialize, --create-dkek-share, --import-dkek-share, --wrap-key and --unwrap-key at a time")
	}
	changed := cmd.Flags().Changed
	switch {
	case l.initialize:
		if l.keyDomain >= 0 {
			if changed("key-domains") && l.init.keyDomains != l.keyDomain {
				return true, fmt.Errorf("--key-domain %d and --key-domains %d disagree: with --initialize both give the number of key domains; give one", l.keyDomain, l.init.keyDomains)
			}
			l.init.keyDomains = l.keyDomain
		}
		return true, runInitialize(g, &l.init, l.soPIN, l.pin)
	case l.createDomain || l.deleteDomain || l.clearKEK:
		action, flag := "create", "--create-dkek-key-domain"
		switch {
		case l.deleteDomain:
			action, flag = "delete", "--delete-key-domain"
		case l.clearKEK:
			action, flag = "clear", "--clear-kek"
		}
		if l.keyDomain < 0 {
			return true, fmt.Errorf("%s needs --key-domain D: the key domain, 0 to 15", flag)
		}
		f := &keyDomainFlags{shares: l.init.dkekShares, pin: pinFlags{pin: l.pin, lastTry: l.init.lastTry}, json: l.json, yes: l.force}
		return true, runKeyDomain(g, action, l.keyDomain, f, true)
	case l.createShare != "":
		n := &nofmFlags{threshold: l.pwdThreshold, total: l.pwdTotal, out: l.pwdSharesOut}
		return true, l.aside(g, l.createShare, func() error {
			return runCreateShare(g, l.createShare, l.password, n, l.force)
		})
	case l.wrapKey != "":
		if l.keyRef < 0 {
			return true, errors.New("--wrap-key needs --key-reference")
		}
		k := &keyFlags{ref: l.keyRef}
		return true, l.aside(g, l.wrapKey, func() error {
			return runWrapKey(g, l.wrapKey, k, pinFlags{pin: l.pin, lastTry: l.init.lastTry}, l.force, false, true)
		})
	case l.unwrapKey != "":
		return true, runUnwrapKey(g, l.unwrapKey, l.keyRef, pinFlags{pin: l.pin, lastTry: l.init.lastTry}, l.force, false, true)
	default:
		f := &importFlags{nofm: nofmFlags{total: l.pwdTotal, files: l.pwdSharesFile},
			expectKCV: l.expect.expectKCV, expectShareKCVs: l.expect.expectShareKCVs}
		if changed("password") {
			f.passwords = []string{l.password}
		}
		f.pin, f.lastTry = l.pin, l.init.lastTry
		if l.keyDomain > 0 {
			f.domain = l.keyDomain
		}
		return true, runImportShares(g, []string{l.importShare}, f, changed("pin"))
	}
}

// aside runs write, an action that creates path, the way sc-hsm-tool's
// scripts expect: where sc-hsm-tool overwrites an existing file (pico-hsm
// tests/scripts/backup.sh creates dkek.1.pbe twice and wrap-key.bin once
// per key type), the old file is first moved aside to the first free
// path.~N~ (atomicfile.MoveAside: an older copy is never replaced), and
// the user told so before anything else happens, so that even a run cut
// short leaves them knowing where it is. If write then fails, the old
// file goes back to its name: a failed run changes no file, as everywhere
// else. With --force, write replaces the file itself, atomically.
//
// A directory of that name is left alone: write refuses it, as the
// subcommands do.
func (l *legacyFlags) aside(g *globals, path string, write func() error) error {
	if l.force || path == "-" {
		return write()
	}
	if fi, err := os.Lstat(path); err != nil || fi.IsDir() {
		return write()
	}
	old, err := atomicfile.MoveAside(path)
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("%w: you may not write in that directory: choose another one, or change its permissions; nothing was written", err)
	}
	if err != nil {
		return err
	}
	if old == "" { // gone since the check
		return write()
	}
	g.note("%s exists: kept as %s", path, old)
	werr := write()
	if werr == nil {
		return nil
	}
	// A hard link puts the old file back without replacing one that
	// another program may have written at path meanwhile.
	if err := os.Link(old, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			g.note("%s was written meanwhile by another program: the old file stays as %s", path, old)
		} else {
			g.note("cannot put %s back as %s: %v: it stays as %s", old, path, unwrapLinkErr(err), old)
		}
		return werr
	}
	os.Remove(old)
	g.note("%s put back as %s", old, path)
	return werr
}

// unwrapLinkErr is the system's reason of a failed link, without the two
// paths the user was just told.
func unwrapLinkErr(err error) error {
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}
