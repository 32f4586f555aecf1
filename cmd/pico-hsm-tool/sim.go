package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/vpcd"
)

// newSimCmd groups the commands that manage the simulated device. They are
// for rehearsals and tests, so they are hidden from the main help.
func newSimCmd(g *globals) *cobra.Command {
	cmd := groupCmd("sim", "Manage the simulated Pico HSM (rehearsals and tests)", true)
	var addr string
	var blank, hangs bool
	bridge := &cobra.Command{
		Use:   "bridge STATE",
		Short: "Attach the simulated device in STATE to vsmartcard's vpcd reader in pcscd",
		Long: `Attach the simulated device to vpcd (a virtual reader inside pcscd), so that
pcscd, OpenSC and this tool reach it through the real PC/SC stack.

Signals: SIGUSR1 removes the card from the reader, SIGUSR2 inserts it again,
SIGHUP power-cycles the device (its RAM is lost, as when it is unplugged).

With --firmware-hangs the device hangs where the Pico HSM firmware does (CHANGE
PIN on a device never initialized, a 1-byte APDU): it answers nothing, and vpcd
keeps the reader waiting, until SIGHUP power-cycles it, which also takes it out
of the reader and puts it back, as unplugging the real one does.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if blank {
				return serveBlank(addr)
			}
			d, err := sim.Open(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			d.FirmwareHangs = hangs
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			logf := func(format string, a ...any) {
				if g.verbose {
					fmt.Fprintf(g.stderr, "pico-hsm-tool: "+format+"\n", a...)
				}
			}
			card := &lockedCard{d: d}
			srv := &vpcd.Server{Addr: addr, Card: silentHang{card}, Logf: logf}
			srv.HandleSignals(ctx)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			go func() {
				for range hup {
					// vpcd still waits for the answer to the APDU the
					// device hung on: only closing the connection ends
					// that wait, as unplugging the device does.
					hung := card.hung()
					if hung {
						srv.Remove()
					}
					if err := card.powerCycle(); err != nil {
						fmt.Fprintf(g.stderr, "pico-hsm-tool: power cycle: %v\n", err)
					} else {
						logf("simulated device power-cycled")
					}
					if hung {
						srv.Insert()
					}
				}
			}()
			return srv.Run(ctx)
		},
	}
	defAddr := vpcd.DefaultAddr
	if a := os.Getenv("PICO_HSM_VPCD_ADDR"); a != "" {
		defAddr = a
	}
	bridge.Flags().BoolVar(&blank, "blank", false, "serve a card without the SmartCard-HSM application instead (STATE is ignored)")
	bridge.Flags().BoolVar(&hangs, "firmware-hangs", false, "hang, answering nothing, on the APDUs that hang the Pico HSM firmware (until SIGHUP)")
	bridge.Flags().StringVar(&addr, "addr", defAddr, "vpcd `host:port`; PICO_HSM_VPCD_ADDR sets the default")

	power := &cobra.Command{
		Use:   "power-cycle STATE",
		Short: "Power-cycle the simulated device in STATE: its RAM is lost, as when it is unplugged",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := sim.Open(args[0])
			if err != nil {
				return err
			}
			defer d.Close()
			return d.PowerCycle()
		},
	}
	cmd.AddCommand(bridge, power)
	return cmd
}

// silentHang passes a hang of the simulated device (sim.ErrHung) on to vpcd
// as no answer at all, as the hung firmware gives.
type silentHang struct{ *lockedCard }

func (c silentHang) Transmit(cmd []byte) ([]byte, error) {
	r, err := c.lockedCard.Transmit(cmd)
	if errors.Is(err, sim.ErrHung) {
		return nil, fmt.Errorf("%w: %w", vpcd.ErrNoAnswer, err)
	}
	return r, err
}

// hung reports whether the simulated device hangs.
func (c *lockedCard) hung() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.d.Hung() }

// serveBlank attaches a card that has no SmartCard-HSM application: it
// answers every SELECT with 6A82 and every other command with 6D00, so that
// the tool's "not a SmartCard-HSM" handling can be rehearsed and tested.
func serveBlank(addr string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &vpcd.Server{Addr: addr, Card: blankCard{}}
	srv.HandleSignals(ctx)
	return srv.Run(ctx)
}

type blankCard struct{}

// ATR of a generic T=1 card with no historical bytes.
func (blankCard) ATR() []byte { return []byte{0x3B, 0x80, 0x80, 0x01, 0x01} }
func (blankCard) PowerOn()    {}
func (blankCard) PowerOff()   {}
func (blankCard) Reset()      {}
func (blankCard) Transmit(cmd []byte) ([]byte, error) {
	if len(cmd) >= 2 && cmd[1] == 0xA4 {
		return []byte{0x6A, 0x82}, nil
	}
	return []byte{0x6D, 0x00}, nil
}
