// Package custodian runs the screens key custodians see in an n-of-m
// ceremony, as sc-hsm-tool shows them (sc-hsm-tool.c generate_pwd_shares
// and recreate_password_from_shares; recorded in
// testdata/pico-hsm/screens/): one screen per custodian, cleared before and
// after, so that no custodian sees another's share.
package custodian

import (
	"fmt"
	"strings"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/shamir"
)

// clear is the sequence the "clear" command writes: home, erase the screen
// and the scrollback (recorded in screens/nofm-shares.txt's source).
const clear = "\x1b[H\x1b[2J\x1b[3J"

// ShowShares presents each custodian's share on the terminal: clear, wait
// for enter, show the prime, ID and value, wait for enter, clear.
func ShowShares(t secret.Terminal, set *shamir.Set, threshold int) error {
	total := len(set.Shares)
	fmt.Fprintf(t, "\nThe DKEK will be enciphered using a randomly generated 64 bit password.\n")
	fmt.Fprintf(t, "This password is split using a (%d-of-%d) threshold scheme.\n\n", threshold, total)
	fmt.Fprintf(t, "Please keep the generated and encrypted DKEK file in a safe location. We also recommend\n")
	fmt.Fprintf(t, "to keep a paper printout, in case the electronic version becomes unavailable. A printable version\n")
	fmt.Fprintf(t, "of the file can be generated using \"openssl base64 -in <filename>\".\n\n\n")
	if err := waitEnter(t, "Press <enter> to continue"); err != nil {
		return err
	}
	for i, sh := range set.Shares {
		fmt.Fprint(t, clear)
		if err := waitEnter(t, fmt.Sprintf("Press <enter> to display key share %d of %d\n\n", i+1, total)); err != nil {
			return err
		}
		fmt.Fprint(t, clear)
		fmt.Fprintf(t, "Share %d of %d\n\n\n", i+1, total)
		one := &shamir.Set{Prime: set.Prime, Shares: []shamir.Share{sh}}
		if err := one.Format(t); err != nil {
			return err
		}
		if err := waitEnter(t, "\n\nPlease note ALL values above and press <enter> when finished"); err != nil {
			return err
		}
	}
	fmt.Fprint(t, clear)
	return nil
}

// AskShares asks n custodians for their shares: the first one also enters
// the prime. Share IDs are decimal, as sc-hsm-tool prints them (it reads
// them back as hex, which breaks IDs of 10 and more). Values are read
// without echo.
func AskShares(t secret.Terminal, n int) (*shamir.Set, error) {
	fmt.Fprintf(t, "\nDeciphering the DKEK for import into the SmartCard-HSM requires %d key custodians", n)
	fmt.Fprintf(t, "\nto present their share. Only the first key custodian needs to enter the public prime.")
	fmt.Fprintf(t, "\nPlease remember to present the share id as well as the share value.")
	set := &shamir.Set{}
	for {
		fmt.Fprintf(t, "\n\nPlease enter prime: ")
		line, err := t.ReadLine()
		if err != nil {
			return nil, fmt.Errorf("reading the prime: %w", err)
		}
		if set.Prime, err = shamir.ParseHex(line); err == nil {
			break
		}
		fmt.Fprintf(t, "%v. Please retry.", err)
	}
	for i := 0; i < n; i++ {
		fmt.Fprint(t, clear)
		if err := waitEnter(t, fmt.Sprintf("Press <enter> to enter share %d of %d\n\n", i+1, n)); err != nil {
			return nil, err
		}
		fmt.Fprint(t, clear)
		fmt.Fprintf(t, "Share %d of %d\n\n", i+1, n)
		var sh shamir.Share
		for {
			fmt.Fprint(t, "Please enter share ID: ")
			line, err := t.ReadLine()
			if err != nil {
				return nil, fmt.Errorf("reading share %d: %w", i+1, err)
			}
			if sh.ID, err = shamir.ParseID(line); err == nil {
				break
			}
			fmt.Fprintf(t, "%v. Please retry.\n", err)
		}
		for {
			b, err := t.ReadPassword("Please enter share value: ")
			if err != nil {
				return nil, fmt.Errorf("reading share %d: %w", i+1, err)
			}
			sh.Value, err = shamir.ParseHex(strings.TrimSpace(string(b)))
			secret.Wipe(b)
			if err == nil {
				break
			}
			// Not the parser's message: it would echo what was typed
			// without echo.
			fmt.Fprintln(t, "That is not a share value: type the colon-separated hexadecimal shown at creation. Please retry.")
		}
		set.Shares = append(set.Shares, sh)
	}
	fmt.Fprint(t, clear)
	if err := set.Validate(); err != nil {
		return nil, err
	}
	return set, nil
}

func waitEnter(t secret.Terminal, prompt string) error {
	fmt.Fprint(t, prompt)
	_, err := t.ReadLine()
	return err
}
