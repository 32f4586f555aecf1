package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
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
	if len(g.readers) > 1 || g.allReaders {
		return runStatusMany(g, asJSON, pin, p.lastTry)
	}
	conn, err := g.open()
	if err != nil {
		return err
	}
	defer conn.Close()
	st, err := readStatus(conn, pin, p.lastTry)
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
	statusNotes(g, conn, st)
	return nil
}

func readStatus(conn *device.Conn, pin []byte, lastTry bool) (*hsm.Status, error) {
	var st *hsm.Status
	err := conn.Transaction(func() error {
		var err error
		if st, err = conn.ReadStatus(pin, lastTry); err != nil {
			return err
		}
		return keystore.CountDomainKeys(conn.Device, st)
	})
	return st, err
}

// statusNotes says on stderr what the status lines imply: what unblocks
// a blocked PIN, an all-zero DKEK, a check value that needs the PIN.
func statusNotes(g *globals, conn *device.Conn, st *hsm.Status) {
	if hint := st.BlockedHint(strings.TrimSpace(conn.Suggest(""))); hint != "" {
		g.note("%s", hint)
	}
	if st.KCVVerified && st.KCV == hsm.ZeroDKEKKCV {
		g.note("WARNING: the DKEK is all zeros (key check value %s): its shares cancelled each other out, a share imported twice for instance, so it protects nothing; re-initialize the device and have each custodian import their own share once", st.KCV)
	}
	if st.KCV != "" && !st.KCVVerified {
		g.note("note: a Pico HSM shows the DKEK key check value only after user PIN verification; add --pin to see the real value")
	}
}

// deviceStatus is one device of status with several readers: its status,
// or why it could not be read.
type deviceStatus struct {
	Reader string `json:"reader"`
	*hsm.Status
	Error string `json:"error,omitempty"`
}

// runStatusMany is status of several devices (--reader more than once,
// or --all-readers), side by side: each device's lines under the name of
// its reader, then whether their DKEKs (in every key domain) are the same, which a
// primary and its spare must hold. A device that cannot be read is named
// with its error and the others are still shown; the exit status is then
// 1.
func runStatusMany(g *globals, asJSON bool, pin []byte, lastTry bool) error {
	conns, err := g.openAll()
	if err != nil {
		return err
	}
	defer closeAll(conns)
	var devs []deviceStatus
	failed := 0
	for _, c := range conns {
		st, err := readStatus(c, pin, lastTry)
		d := deviceStatus{Reader: c.Reader, Status: st}
		if err != nil {
			d.Error, d.Status = err.Error(), nil
			failed++
			if pin != nil && errors.Is(err, apdu.ErrWrongPIN) {
				// A wrong PIN costs a try on each device it is sent to:
				// the others are read without it.
				g.note("%s: the PIN is wrong there, so it is not tried on the other devices", c.Reader)
				pin = nil
			}
		}
		devs = append(devs, d)
	}
	same := sameDKEK(devs)
	if asJSON {
		out := struct {
			Devices  []deviceStatus `json:"devices"`
			SameDKEK *bool          `json:"same_dkek"`
			Tool     version.Info   `json:"tool"`
		}{devs, same, version.Get()}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(g.stdout, "%s\n", b)
	} else {
		for i, d := range devs {
			if i > 0 {
				fmt.Fprintln(g.stdout)
			}
			fmt.Fprintf(g.stdout, "Reader               : %s\n", d.Reader)
			if d.Status == nil {
				fmt.Fprintf(g.stdout, "Error                : %s\n", d.Error)
				continue
			}
			d.Status.WriteText(g.stdout)
		}
		fmt.Fprintln(g.stdout)
		switch {
		case same == nil:
			fmt.Fprintf(g.stdout, "DKEKs                : not compared (%s)\n", whyNotCompared(devs, pin != nil))
		case *same:
			fmt.Fprintf(g.stdout, "DKEKs                : all %d devices hold %s\n", len(devs), describeDKEKs(devs[0]))
		default:
			fmt.Fprintf(g.stdout, "DKEKs                : the devices hold different DKEKs\n")
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d devices could not be read: see their Error lines", failed, len(devs))
	}
	return nil
}

// dkeks is what a device holds to back keys up: the check value of each
// complete DKEK by key domain (domain 0 alone on a device without key
// domains). ok is false when a complete DKEK's check value is not known
// (read without the user PIN) or the device could not be read.
func dkeks(d deviceStatus) (m map[int]string, ok bool) {
	if d.Status == nil {
		return nil, false
	}
	m = map[int]string{}
	if len(d.KeyDomains) == 0 {
		if d.DKEK != nil && d.DKEK.Complete() {
			if d.KnownKCV == nil || !d.KCVVerified {
				return nil, false
			}
			m[0] = *d.KnownKCV
		}
		return m, true
	}
	for _, kd := range d.KeyDomains {
		if kd.SetUp && kd.Shares > 0 && kd.Outstanding == 0 {
			if kd.KCV == nil {
				return nil, false
			}
			m[kd.Domain] = *kd.KCV
		}
	}
	return m, true
}

// sameDKEK tells whether every device holds the same DKEKs, in the same
// key domains, by check values read with the PIN verified; nil when that
// cannot be known.
func sameDKEK(devs []deviceStatus) *bool {
	var first map[int]string
	same := true
	for i, d := range devs {
		m, ok := dkeks(d)
		if !ok {
			return nil
		}
		if i == 0 {
			first = m
			continue
		}
		same = same && maps.Equal(m, first)
	}
	if !slices.ContainsFunc(devs, hasCompleteDKEK) {
		return nil
	}
	return &same
}

// hasCompleteDKEK tells whether the device holds a complete DKEK, in any
// key domain.
func hasCompleteDKEK(d deviceStatus) bool {
	if d.Status == nil {
		return false
	}
	if len(d.KeyDomains) == 0 {
		return d.DKEK != nil && d.DKEK.Complete()
	}
	return slices.ContainsFunc(d.KeyDomains, func(kd hsm.DomainState) bool { return kd.SetUp && kd.Shares > 0 && kd.Outstanding == 0 })
}

// describeDKEKs is "DKEK X" or "key domain 1: X, key domain 2: Y".
func describeDKEKs(d deviceStatus) string {
	m, _ := dkeks(d)
	if len(d.KeyDomains) == 0 {
		return "DKEK " + m[0]
	}
	var parts []string
	for _, dom := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("key domain %d: %s", dom, m[dom]))
	}
	return "the same DKEKs (" + strings.Join(parts, ", ") + ")"
}

func whyNotCompared(devs []deviceStatus, pinGiven bool) string {
	for _, d := range devs {
		if d.Status == nil {
			return "a device could not be read"
		}
	}
	if !slices.ContainsFunc(devs, hasCompleteDKEK) {
		return "no device has a complete DKEK"
	}
	if !pinGiven {
		return "give --pin: a Pico HSM shows its check values only after the user PIN"
	}
	return "a check value could not be read"
}
