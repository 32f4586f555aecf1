package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/attest"
)

func newAttestCmd(g *globals) *cobra.Command {
	var k keyFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "attest",
		Short: "Tell whether a key was generated inside the device, from its CV request and the device certificate",
		Long: `Read the CV request of the key named by --key-reference, --label or --id
(EF CExx), check the key's own signature in it and the device's signature over
it with the device key of EF 2F02 (C_DevAut), and print the chain: key, device,
issuer.

The device signs the request of every key it generates, and also of every key
it unwraps (unwrap-key, restore, import-key). attest tells the two apart by
the marks UNWRAP KEY leaves; when they do not decide, it says the origin cannot
be known rather than guess. A key restored from a backup carries the request
of the device that made it: another device's request is reported as such.

--json prints "generated_on_device": true, false or null (cannot be known).
No PIN is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := k.spec()
			if err != nil {
				return err
			}
			conn, err := g.open()
			if err != nil {
				return err
			}
			defer conn.Close()
			var res attest.Result
			err = conn.Transaction(func() error {
				if _, err := conn.SelectApplication(); err != nil {
					return err
				}
				res, err = attest.Attest(conn.Device, spec)
				return err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeDeviceJSON(g, conn.Reader, "result", res)
			}
			printAttest(g.stdout, res)
			return nil
		},
	}
	k.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func printAttest(w io.Writer, r attest.Result) {
	fmt.Fprintf(w, "Key reference %d: %s, label %q, ID %s\n", r.KeyReference, r.Key, r.Label, r.ID)
	verdict := "cannot be known"
	if r.GeneratedOnDevice != nil {
		verdict = map[bool]string{true: "yes", false: "no"}[*r.GeneratedOnDevice]
	}
	fmt.Fprintf(w, "Generated on this device: %s\n", verdict)
	fmt.Fprintf(w, "Why: %s\n", r.Reason)
	fmt.Fprintf(w, "Certificate (CE%02X): %s\n", r.KeyReference, r.Certificate)
	if r.Certificate == attest.CertRequest {
		fmt.Fprintf(w, "Device signature: %s (signer named: %s)\n", r.DeviceSignature, r.OuterCAR)
	}
	if len(r.Chain) > 0 {
		fmt.Fprintln(w, "Chain:")
	}
	for _, l := range r.Chain {
		where := ""
		if !l.OnDevice {
			where = ", not on the device"
		}
		switch {
		case l.Role == "root":
			fmt.Fprintf(w, "  %-7s %s%s\n", l.Role, l.CHR, where)
		default:
			fmt.Fprintf(w, "  %-7s CHR %s, CAR %s, signed by %s: %s%s\n", l.Role, l.CHR, l.CAR, l.SignedBy, l.Signature, where)
		}
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}
