package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
)

func newListReadersCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list-readers",
		Short: "List the PC/SC readers, whether a card is present, and whether it is a SmartCard-HSM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := device.ListReaders()
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(g.stdout)
				e.SetIndent("", "  ")
				return e.Encode(rs)
			}
			if len(rs) == 0 {
				fmt.Fprintln(g.stdout, "No readers found")
				return nil
			}
			fmt.Fprintln(g.stdout, "Nr.  Card  HSM  Name")
			for _, r := range rs {
				card, hsm := "No", "-"
				if r.CardPresent {
					card = "Yes"
				}
				if r.SmartCardHSM != nil {
					hsm = map[bool]string{true: "Yes", false: "No"}[*r.SmartCardHSM]
				}
				fmt.Fprintf(g.stdout, "%-4d %-5s %-4s %s\n", r.Index, card, hsm, r.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the readers as JSON")
	return cmd
}
