package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// initFlags are initialize's options, shared with the legacy --initialize.
type initFlags struct {
	soPIN, pin             string
	retry                  int
	dkekShares             int
	label                  string
	pubKeyAuth, requiredPK int
	bio1, bio2             string
	noRRC, transportPIN    bool
	keyDomains             int
	yes, lastTry           bool
	// legacy is set for sc-hsm-tool's --initialize, which prints nothing
	// on success and never asks (sc-hsm-tool.c initialize).
	legacy bool
}

func (f *initFlags) register(cmd *cobra.Command, legacy bool) {
	f.legacy = legacy
	fl := cmd.Flags()
	if !legacy {
		fl.StringVar(&f.soPIN, "so-pin", "", "SO-PIN, 16 hexadecimal digits (or env:VAR, file:PATH, -)")
		fl.StringVar(&f.pin, "pin", "", "user PIN, 6 to 16 characters (or env:VAR, file:PATH, -)")
	}
	decimalVar(fl, &f.retry, "pin-retry", "", 3, "user PIN retry counter (at most 3 for a 6-character PIN, 5 for 7, 10 otherwise)")
	decimalVar(fl, &f.dkekShares, "dkek-shares", "s", -1, "number of DKEK shares the custodians will import (0: the device makes a random DKEK; default: no DKEK, no backups)")
	fl.StringVar(&f.label, "label", "", "token label written to EF.TokenInfo (not supported by the Pico HSM)")
	decimalVar(fl, &f.pubKeyAuth, "public-key-auth", "", 0, "number of public keys for public key authentication (n of n-of-m)")
	decimalVar(fl, &f.requiredPK, "required-pub-keys", "", 0, "number of public keys required to authenticate (m of n-of-m)")
	fl.StringVar(&f.bio1, "bio-server1", "", "AID of the biometric server for template 1 (hex)")
	fl.StringVar(&f.bio2, "bio-server2", "", "AID of the biometric server for template 2 (hex)")
	fl.BoolVar(&f.noRRC, "no-rrc", false, "disable resetting the user PIN with the SO-PIN")
	fl.BoolVar(&f.transportPIN, "transport-pin", false, "make the user PIN a transport PIN that must be changed before first use")
	decimalVar(fl, &f.keyDomains, "key-domains", "", 0, "number of key domain slots, 1 to 16: domain 0 is set up for --dkek-shares, the others with key-domain create")
	fl.BoolVarP(&f.yes, "yes", "y", false, "do not ask before wiping an initialized device")
	fl.BoolVar(&f.lastTry, "last-try", false, "allow using a PIN that has only one try left")
}

func newInitializeCmd(g *globals) *cobra.Command {
	f := &initFlags{}
	cmd := &cobra.Command{
		Use:   "initialize",
		Short: "Initialize the device: SO-PIN, user PIN, number of DKEK shares (destroys every key)",
		Long: `Initialize the device as sc-hsm-tool --initialize does, with the same APDU.

On a device that was initialized before, the current SO-PIN is verified first
(the Pico HSM itself does not check it), and on a terminal you are shown how
many keys will be destroyed and asked to confirm; --yes skips the question.

Without --dkek-shares the device gets no DKEK, and its keys can never be backed
up: on a terminal you are asked to confirm that (--yes skips the question), a
script gets a warning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runInitialize(g, f, f.soPIN, f.pin) },
	}
	f.register(cmd, false)
	return cmd
}

func runInitialize(g *globals, f *initFlags, soSpec, pinSpec string) error {
	src := g.secrets()
	p := hsm.InitParams{Retries: f.retry, DKEKShares: f.dkekShares, PublicKeyAuth: f.pubKeyAuth,
		RequiredPubKeys: f.requiredPK, KeyDomains: f.keyDomains, Options: hsm.OptResetRetryCounter}
	if f.noRRC {
		p.Options &^= hsm.OptResetRetryCounter
	}
	if f.transportPIN {
		p.Options |= hsm.OptTransportPIN
	}
	var err error
	for _, b := range []struct {
		spec string
		dst  *[]byte
		name string
	}{{f.bio1, &p.BioServer1, "bio-server1"}, {f.bio2, &p.BioServer2, "bio-server2"}} {
		if b.spec == "" {
			continue
		}
		if *b.dst, err = hex.DecodeString(b.spec); err != nil {
			return fmt.Errorf("--%s %s: not a hexadecimal AID: give the AID in hex, whole bytes, e.g. --%s A000000397", b.name, b.spec, b.name)
		}
		p.Options |= hsm.OptSessionPIN
	}
	so, err := src.Get("so-pin", soSpec, "Enter SO-PIN (16 hexadecimal characters): ")
	if err != nil {
		return err
	}
	defer secret.Wipe(so)
	// Decoded in place, without a string copy that could not be wiped.
	soHex := bytes.TrimSpace(so)
	p.SOPIN = make([]byte, 8)
	defer secret.Wipe(p.SOPIN)
	if len(soHex) != 16 {
		return fmt.Errorf("--so-pin must be 16 hexadecimal digits")
	}
	if _, err := hex.Decode(p.SOPIN, soHex); err != nil {
		return fmt.Errorf("--so-pin must be 16 hexadecimal digits")
	}
	if pinSpec == "" {
		p.PIN, err = src.NewSecret("pin", "Enter initial user PIN (6 - 16 characters): ", "Enter the user PIN again: ", 6)
	} else {
		p.PIN, err = src.Get("pin", pinSpec, "")
	}
	if err != nil {
		return err
	}
	defer secret.Wipe(p.PIN)
	if err := p.Validate(); err != nil {
		return err
	}
	// With key domains, a device without a DKEK now gets one later: each
	// domain is set up with key-domain create.
	if p.DKEKShares < 0 && p.KeyDomains == 0 && !f.legacy {
		if err := g.confirmNoDKEK(f.yes); err != nil {
			return err
		}
	}
	if len(g.readers) > 1 || g.allReaders {
		return initializeMany(g, f, p)
	}
	conn, err := g.open()
	if err != nil {
		return err
	}
	defer conn.Close()
	o := ceremony.InitOptions{Params: p, Label: f.label, AllowLastTry: f.lastTry}
	if !f.yes {
		if t, err := src.TTY(); err == nil {
			o.Confirm = func(keys int) (bool, error) {
				defer t.Close()
				fmt.Fprintf(t, "The device in %s is initialized and holds %d key(s).\nInitializing destroys every key and the DKEK. Type 'yes' to go on: ", conn.Reader, keys)
				ans, err := t.ReadLine()
				return strings.TrimSpace(ans) == "yes", err
			}
		}
	}
	res, err := ceremony.Initialize(conn, o)
	if err != nil {
		return err
	}
	if res.WasInitialized {
		g.note("device re-initialized; %d key(s) destroyed", res.KeysDestroyed)
	}
	if !f.legacy {
		fmt.Fprintln(g.stdout, initialized(&p))
	}
	return nil
}

// initializeMany initializes several devices alike in one run (--reader
// more than once, or --all-readers): a primary and its spares. Each is
// checked first (reachable; an initialized one has SO-PIN tries to spare
// and its keys are counted), one question covers every device that holds
// keys, then each is initialized in turn. A device that fails does not
// stop the others; the report names each with its state.
func initializeMany(g *globals, f *initFlags, p hsm.InitParams) error {
	conns, err := g.openAll()
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var holding []string
	for _, c := range conns {
		st, err := ceremony.CheckInitialize(c, f.lastTry, p.SOPIN)
		if err != nil {
			return fmt.Errorf("%s: %w; no device was initialized", c.Reader, err)
		}
		if st.Initialized {
			holding = append(holding, fmt.Sprintf("%s (initialized, %d key(s))", c.Reader, st.Keys))
		}
	}
	if len(holding) > 0 && !f.yes {
		if t, err := g.secrets().TTY(); err == nil {
			fmt.Fprintf(t, "Initializing destroys every key and the DKEK of: %s.\nType 'yes' to go on: ", strings.Join(holding, ", "))
			ans, err := t.ReadLine()
			t.Close()
			if err != nil {
				return err
			}
			if strings.TrimSpace(ans) != "yes" {
				return ceremony.ErrAborted
			}
		}
	}
	failed := 0
	for _, c := range conns {
		res, err := ceremony.Initialize(c, ceremony.InitOptions{Params: p, Label: f.label, AllowLastTry: f.lastTry})
		switch {
		case err != nil:
			failed++
			g.note("%s: %v", c.Reader, err)
			fmt.Fprintf(g.stdout, "%s: not initialized: run initialize for it alone (--reader %s) once the cause is fixed\n", c.Reader, device.ShellQuote(c.Reader))
		default:
			if res.WasInitialized {
				g.note("%s: device re-initialized; %d key(s) destroyed", c.Reader, res.KeysDestroyed)
			}
			fmt.Fprintf(g.stdout, "%s: %s\n", c.Reader, initialized(&p))
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d devices were not initialized: see their lines", failed, len(conns))
	}
	return nil
}

// noDKEK says what a device initialized without DKEK shares cannot do.
const noDKEK = "the device gets no DKEK, so its keys can never be backed up (wrap-key, backup) and a DKEK can be added only by re-initializing, which destroys them"

// confirmNoDKEK asks, on a terminal and without --yes, before a device is
// initialized without a DKEK; otherwise it warns on stderr, so that a
// script is never blocked.
func (g *globals) confirmNoDKEK(yes bool) error {
	var t secret.Terminal
	if !yes {
		t, _ = g.secrets().TTY()
	}
	if t == nil {
		g.note("WARNING: without --dkek-shares %s; give --dkek-shares N for N custodians' shares, or --dkek-shares 0 for a random DKEK that never leaves the device", noDKEK)
		return nil
	}
	defer t.Close()
	fmt.Fprintf(t, "Without --dkek-shares %s.\nGive --dkek-shares N for N custodians' shares, or --dkek-shares 0 for a random DKEK.\nType 'yes' to initialize without a DKEK: ", noDKEK)
	ans, err := t.ReadLine()
	if err != nil {
		return err
	}
	if strings.TrimSpace(ans) != "yes" {
		return ceremony.ErrAborted
	}
	return nil
}

// initialized is the line initialize prints on success. With key domains
// it says which are set up: hsm.Initialize sets domain 0 up again for
// --dkek-shares (tag 97 frees every slot; pico-hsm cmd_initialize.c,
// transcripts/60-key-domains-setup.txt [2], [3]).
func initialized(p *hsm.InitParams) string {
	var dkek string
	switch {
	case p.KeyDomains > 0 && p.DKEKShares < 0:
		dkek = fmt.Sprintf("key domains %d (none set up yet: set them up with key-domain create D --dkek-shares K)", p.KeyDomains)
	case p.KeyDomains > 0:
		others := "; set up the others with key-domain create"
		if p.KeyDomains == 1 {
			others = ""
		}
		dkek = fmt.Sprintf("DKEK shares %d (import them with import-dkek-share), key domains %d (domain 0 set up for %s%s)", p.DKEKShares, p.KeyDomains, nounCount(p.DKEKShares, "share"), others)
	case p.DKEKShares < 0:
		dkek = "no DKEK (keys can never be backed up)"
	case p.DKEKShares == 0:
		dkek = "a random DKEK made by the device (no shares to import)"
	default:
		dkek = fmt.Sprintf("DKEK shares %d (import them with import-dkek-share)", p.DKEKShares)
	}
	s := fmt.Sprintf("Device initialized: user PIN retry counter %d, %s", p.Retries, dkek)
	if p.Options&hsm.OptTransportPIN != 0 {
		s += "; the user PIN is a transport PIN: change it before first use"
	}
	return s
}
