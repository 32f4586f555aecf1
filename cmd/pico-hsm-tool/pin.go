package main

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/pinops"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// PIN commands after the ceremony: change-pin, change-so-pin, unblock-pin.
// The logic and the checks live in internal/pinops; these read the secrets
// and print the result.

const pinSources = "(or env:VAR, file:PATH, -; asked on the terminal without echo when not given)"

func newChangePINCmd(g *globals) *cobra.Command {
	var pin, newPIN string
	var lastTry bool
	cmd := &cobra.Command{
		Use:   "change-pin",
		Short: "Change the user PIN (the keys and the DKEK stay)",
		Long: `Change the user PIN with CHANGE REFERENCE DATA, as pkcs11-tool --change-pin does.

The current PIN is verified first, with the tries-left guard of every command
(one try left needs --last-try), and the DKEK key check value is read with it;
after the change the new PIN is verified and the check value compared, so a
change that lost the DKEK cannot go unnoticed. The new PIN has 6 to 16
characters, differs from the current one, and on a terminal is asked twice.
A 6-character PIN allows at most 3 tries and a 7-character one at most 5, as
initialize requires; a blocked PIN is refused (see unblock-pin).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err := g.userPIN(pin)
			if err != nil {
				return err
			}
			defer secret.Wipe(old)
			nw, err := g.newUserPIN(newPIN)
			if err != nil {
				return err
			}
			defer secret.Wipe(nw)
			if err := hsm.CheckNewPIN(nw, old, secretFlagName(newPIN, "--new-pin")); err != nil {
				return err
			}
			conn, err := g.open()
			if err != nil {
				return err
			}
			defer conn.Close()
			res, err := pinops.ChangePIN(conn, old, nw, lastTry)
			if err != nil {
				return err
			}
			if res.TransportPIN {
				fmt.Fprintln(g.stdout, "Transport PIN replaced by the new user PIN")
			} else {
				fmt.Fprintln(g.stdout, "User PIN changed: the new PIN verifies")
			}
			printKCV(g, res, " (unchanged)")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&pin, "pin", "", "current user `PIN` "+pinSources)
	fl.StringVar(&newPIN, "new-pin", "", "new user `PIN`, 6 to 16 characters "+pinSources)
	fl.BoolVar(&lastTry, "last-try", false, "allow using a PIN that has only one try left")
	return cmd
}

func newChangeSOPINCmd(g *globals) *cobra.Command {
	var so, newSO string
	var lastTry bool
	cmd := &cobra.Command{
		Use:   "change-so-pin",
		Short: "Change the SO-PIN (16 hexadecimal digits)",
		Long: `Change the SO-PIN with CHANGE REFERENCE DATA.

The current SO-PIN is verified first (one try left needs --last-try), and the
new one afterwards. Both are 16 hexadecimal digits, as initialize takes them;
the new one is asked twice on a terminal. Keep the new SO-PIN where the old
one was kept: initialize and unblock-pin need it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			old, err := g.soPIN("so-pin", so, "Enter SO-PIN (16 hexadecimal characters): ")
			if err != nil {
				return err
			}
			defer secret.Wipe(old)
			var nw []byte
			if newSO == "" {
				nw, err = g.newSOPIN()
			} else {
				nw, err = g.soPIN("new-so-pin", newSO, "")
			}
			if err != nil {
				return err
			}
			defer secret.Wipe(nw)
			if bytes.Equal(old, nw) {
				return errors.New("--new-so-pin: the new SO-PIN is the same as the current one: choose a different one; nothing was sent to the device")
			}
			conn, err := g.open()
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := pinops.ChangeSOPIN(conn, old, nw, lastTry); err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "SO-PIN changed: the new SO-PIN verifies")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&so, "so-pin", "", "current SO-PIN, 16 hexadecimal digits "+pinSources)
	fl.StringVar(&newSO, "new-so-pin", "", "new SO-PIN, 16 hexadecimal digits "+pinSources)
	fl.BoolVar(&lastTry, "last-try", false, "allow using an SO-PIN that has only one try left")
	return cmd
}

func newUnblockPINCmd(g *globals) *cobra.Command {
	var so, newPIN string
	var lastTry bool
	cmd := &cobra.Command{
		Use:   "unblock-pin",
		Short: "Unblock the user PIN with the SO-PIN, setting a new one",
		Long: `Reset the user PIN's retry counter with the SO-PIN (RESET RETRY COUNTER), as
pkcs11-tool --init-pin logged in as SO does.

With --new-pin the user PIN becomes the new PIN (6 to 16 characters; give
--new-pin '' to be asked twice on the terminal), and it is verified afterwards
with the DKEK key check value read. Without --new-pin only the counter is
reset, which the device allows only when it was initialized with that option;
initialize and sc-hsm-tool do not set it, so give --new-pin.

The device must have been initialized with "User PIN reset with SO-PIN" (the
default of initialize; status lists it under Config options). Without it the
firmware refuses, and only initializing again, which destroys every key, gives
a usable user PIN. A wrong SO-PIN spends one of its tries; one try left needs
--last-try.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			sop, err := g.soPIN("so-pin", so, "Enter SO-PIN (16 hexadecimal characters): ")
			if err != nil {
				return err
			}
			defer secret.Wipe(sop)
			var nw []byte
			if cmd.Flags().Changed("new-pin") {
				if nw, err = g.newUserPIN(newPIN); err != nil {
					return err
				}
				defer secret.Wipe(nw)
				if err := hsm.CheckNewPIN(nw, nil, secretFlagName(newPIN, "--new-pin")); err != nil {
					return err
				}
			}
			conn, err := g.open()
			if err != nil {
				return err
			}
			defer conn.Close()
			res, err := pinops.Unblock(conn, sop, nw, lastTry)
			if err != nil {
				return err
			}
			if nw == nil {
				fmt.Fprintf(g.stdout, "User PIN retry counter reset: %d tries left\n", res.TriesLeft)
				return nil
			}
			fmt.Fprintln(g.stdout, "User PIN unblocked and set to the new PIN: the new PIN verifies")
			printKCV(g, res, "")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&so, "so-pin", "", "SO-PIN, 16 hexadecimal digits "+pinSources)
	fl.StringVar(&newPIN, "new-pin", "", "new user `PIN`, 6 to 16 characters (or env:VAR, file:PATH, -; '' asks on the terminal); without it only the retry counter is reset")
	fl.BoolVar(&lastTry, "last-try", false, "allow using an SO-PIN that has only one try left")
	return cmd
}

// printKCV prints the DKEK key check value read with the new PIN, in
// status's words so that scripts find it the same way.
func printKCV(g *globals, res *pinops.Result, suffix string) {
	if res.KCV == "" {
		return
	}
	if !res.KCVUnchanged {
		suffix = ""
	}
	fmt.Fprintf(g.stdout, "DKEK key check value : %s%s\n", res.KCV, suffix)
}

// newUserPIN reads a new user PIN: asked twice on the terminal when spec
// is empty, otherwise from spec like every secret. Its rules are checked
// by pinops before anything is sent.
func (g *globals) newUserPIN(spec string) ([]byte, error) {
	if spec == "" {
		return g.secrets().NewSecret("new-pin", "Enter new user PIN (6 - 16 characters): ", "Enter the new user PIN again: ", hsm.MinPINLength)
	}
	return g.secrets().Get("new-pin", spec, "")
}

// secretFlagName is how an error names where a secret came from: the flag
// with env:VAR, file:PATH or -, the flag alone for a literal value (never
// repeated) or a prompt.
func secretFlagName(spec, flag string) string {
	switch {
	case spec == "-", strings.HasPrefix(spec, "env:"), strings.HasPrefix(spec, "file:"):
		return flag + " " + spec
	}
	return flag
}

// soPIN reads an SO-PIN typed as 16 hexadecimal digits and returns its 8
// bytes (hsm.ParseSOPIN). The caller wipes them.
func (g *globals) soPIN(flag, spec, prompt string) ([]byte, error) {
	typed, err := g.secrets().Get(flag, spec, prompt)
	if err != nil {
		return nil, err
	}
	defer secret.Wipe(typed)
	return hsm.ParseSOPIN(typed, "--"+flag)
}

// newSOPIN asks for a new SO-PIN twice on the terminal.
func (g *globals) newSOPIN() ([]byte, error) {
	typed, err := g.secrets().NewSecret("new-so-pin", "Enter new SO-PIN (16 hexadecimal characters): ", "Enter the new SO-PIN again: ", 2*hsm.SOPINLength)
	if err != nil {
		return nil, err
	}
	defer secret.Wipe(typed)
	return hsm.ParseSOPIN(typed, "--new-so-pin")
}
