package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/version"
)

func newStatusCmd(g *globals) *cobra.Command {
	var asJSON bool
	var p pinFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the device's version, options, PIN tries left and DKEK state, as sc-hsm-tool does",
		Long: `Print the device status with sc-hsm-tool's lines.

The Pico HSM reports the DKEK key check value only after the user PIN was
verified in the same session: without --pin the value reads as zeros, as it
does in sc-hsm-tool. Give --pin to read the real one.

On a device initialized with key domains (initialize --key-domains N) the
lines above describe key domain 0, and one line per key domain follows:
its DKEK shares, those still missing, its check value (known with --pin
only) and the number of keys it holds. Counting them reads each key's
metadata: one more APDU per key, on such devices only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStatus(g, asJSON, cmd.Flags().Changed("pin"), p)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status as JSON")
	cmd.Flags().StringVar(&p.pin, "pin", "", "user `PIN` (or env:VAR, file:PATH, -), verified first so that the real DKEK key check value is shown")
	cmd.Flags().BoolVar(&p.lastTry, "last-try", false, "allow using a PIN that has only one try left")
	return cmd
}

func runStatus(g *globals, asJSON, pinGiven bool, p pinFlags) error {
	var pin []byte
	if pinGiven {
		var err error
		if pin, err = g.userPIN(p.pin); err != nil {
			return err
		}
		defer secret.Wipe(pin)
	}
	conn, err := g.open()
	if err != nil {
		return err
	}
	defer conn.Close()
	var st *hsm.Status
	err = conn.Transaction(func() error {
		if st, err = conn.ReadStatus(pin, p.lastTry); err != nil {
			return err
		}
		return keystore.CountDomainKeys(conn.Device, st)
	})
	if err != nil {
		return err
	}
	if asJSON {
		// The tool's version goes into the ceremony record with the
		// device's state.
		return writeDeviceJSON(g, conn.Reader, "status", struct {
			*hsm.Status
			Tool version.Info `json:"tool"`
		}{st, version.Get()})
	}
	st.WriteText(g.stdout)
	if hint := st.BlockedHint(strings.TrimSpace(conn.Suggest(""))); hint != "" {
		g.note("%s", hint)
	}
	if st.KCVVerified && st.KCV == hsm.ZeroDKEKKCV {
		g.note("WARNING: the DKEK is all zeros (key check value %s): its shares cancelled each other out, a share imported twice for instance, so it protects nothing; re-initialize the device and have each custodian import their own share once", st.KCV)
	}
	if st.KCV != "" && !st.KCVVerified {
		g.note("note: a Pico HSM shows the DKEK key check value only after user PIN verification; add --pin to see the real value")
	}
	return nil
}
