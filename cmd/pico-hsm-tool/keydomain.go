package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ceremony"
)

func newKeyDomainCmd(g *globals) *cobra.Command {
	cmd := groupCmd("key-domain", "Key domains, one DKEK each: create, delete, clear", false)
	cmd.Long = `A device initialized with --key-domains N has N key domain slots, 0 to N-1.
Each set-up domain has its own DKEK, made of its own custodians' shares
(import-dkek-share --key-domain D), and keys generated in it are wrapped and
backed up under that DKEK only: two teams can share a device without sharing
a DKEK. initialize sets domain 0 up for --dkek-shares; key-domain create sets
up the others.

Each command checks the domain first, so that a refusal spends no PIN try,
then verifies the user PIN before it changes anything (the firmware asks for
the PIN only to create a domain; the tool asks for it for all three).`
	cmd.AddCommand(newKeyDomainActionCmd(g, "create"), newKeyDomainActionCmd(g, "delete"), newKeyDomainActionCmd(g, "clear"))
	return cmd
}

// keyDomainFlags are the options of the key-domain commands, and of the
// legacy --create-dkek-key-domain, --delete-key-domain and --clear-kek.
type keyDomainFlags struct {
	shares int
	pin    pinFlags
	json   bool
	// yes confirms clearing a domain whose complete DKEK its keys need.
	yes bool
}

var keyDomainHelp = map[string]struct{ use, short, long string }{
	"create": {"create D --dkek-shares K", "Set up free key domain D for K DKEK shares",
		`Set up key domain D (0 to 15, and below the device's number of key domains)
for K DKEK shares, which its custodians then import with
import-dkek-share --key-domain D. A domain that is set up is refused with its
state: delete it first (once it holds no keys), or clear its shares.`},
	"delete": {"delete D", "Free key domain D (it must hold no keys)",
		`Free key domain D and forget its DKEK. The device refuses while any key is in
the domain: they are listed (reference and label), to be deleted first with
delete-key. Domain 0 is special: the firmware counts every file without a
domain tag as domain 0 (certificates and descriptions too), so it cannot be
deleted while any remains.`},
	"clear": {"clear D", "Forget the DKEK shares imported into key domain D, to import them again",
		`Forget the shares imported into key domain D and its DKEK; the domain stays set
up for the same number of shares. Its keys stay on the device, but cannot be
wrapped or backed up until all the domain's shares are imported again
(import-dkek-share --key-domain D). A free slot is refused: clearing one would
corrupt it. Clearing a complete DKEK that keys need asks for --yes: if its
shares are lost, or it was made by the device (initialize --dkek-shares 0),
those keys can never be backed up again.`},
}

func newKeyDomainActionCmd(g *globals, action string) *cobra.Command {
	f := &keyDomainFlags{}
	h := keyDomainHelp[action]
	cmd := &cobra.Command{
		Use:   h.use,
		Short: h.short,
		Long:  h.long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dom, err := parseDecimal(args[0])
			if err != nil {
				return fmt.Errorf("key domain %q: %v", args[0], err)
			}
			return runKeyDomain(g, action, dom, f, false)
		},
	}
	fl := cmd.Flags()
	if action == "create" {
		decimalVar(fl, &f.shares, "dkek-shares", "s", -1, "number of DKEK shares the domain's custodians will import, 1 to 254")
	}
	fl.BoolVar(&f.json, "json", false, "print the result as JSON")
	if action == "clear" {
		fl.BoolVar(&f.yes, "yes", false, "clear a complete DKEK even though keys of the domain need it")
	}
	f.pin.register(cmd)
	return cmd
}

// runKeyDomain runs key-domain create, delete or clear on domain dom. The
// checks that need no device come first, then the PIN is read, then
// internal/ceremony checks the domain and verifies the PIN.
func runKeyDomain(g *globals, action string, dom int, f *keyDomainFlags, legacy bool) error {
	if err := ceremony.CheckDomainNumber(dom); err != nil {
		return err
	}
	if action == "create" {
		if f.shares < 0 {
			flag := "--dkek-shares K"
			if legacy {
				flag = "--dkek-shares K with --create-dkek-key-domain"
			}
			return fmt.Errorf("give %s: the number of DKEK shares the domain's custodians will import", flag)
		}
		if err := ceremony.CheckDomainShares(f.shares); err != nil {
			return err
		}
	}
	conn, pin, done, err := g.openWithPIN(f.pin.pin)
	if err != nil {
		return err
	}
	defer done()
	o := ceremony.DomainOptions{Domain: dom, Shares: f.shares, PIN: pin, AllowLastTry: f.pin.lastTry, Yes: f.yes}
	var res *ceremony.DomainResult
	switch action {
	case "create":
		res, err = ceremony.CreateDomain(conn, o)
	case "delete":
		res, err = ceremony.DeleteDomain(conn, o)
	case "clear":
		res, err = ceremony.ClearDomain(conn, o)
	default:
		err = errors.New("unknown key-domain action " + action)
	}
	if err != nil {
		return err
	}
	if f.json {
		return writeDeviceJSON(g, conn.Reader, "", res)
	}
	fmt.Fprintln(g.stdout, keyDomainLine(res))
	return nil
}

// keyDomainLine is what a key-domain command prints on success.
func keyDomainLine(r *ceremony.DomainResult) string {
	importCmd := "import-dkek-share"
	if r.Domain != 0 {
		importCmd = fmt.Sprintf("import-dkek-share --key-domain %d", r.Domain)
	}
	switch r.Action {
	case "create":
		return fmt.Sprintf("Key domain %d set up for %s (import them with %s)", r.Domain, nounCount(r.DKEKShares, "DKEK share"), importCmd)
	case "delete":
		return fmt.Sprintf("Key domain %d deleted", r.Domain)
	}
	keys := "it holds no keys"
	switch {
	case r.Keys == 1:
		keys = "its 1 key stays on the device, but cannot be wrapped or backed up until then"
	case r.Keys > 1:
		keys = fmt.Sprintf("its %d keys stay on the device, but cannot be wrapped or backed up until then", r.Keys)
	}
	return fmt.Sprintf("Key domain %d cleared: import its %s again (%s); %s", r.Domain, nounCount(r.DKEKShares, "DKEK share"), importCmd, keys)
}

// nounCount is "1 key", "3 keys".
func nounCount(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
