package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// waitTimeout bounds --wait so that a script never waits forever.
const waitTimeout = 5 * time.Minute

func (g *globals) open() (*device.Conn, error) {
	if len(g.readers) > 1 || g.allReaders {
		return nil, fmt.Errorf("%s names several devices, and this command acts on one: give --reader once (status, initialize and import-dkek-share take several)", g.manyFlag())
	}
	reader := ""
	if len(g.readers) == 1 {
		reader = g.readers[0]
	}
	return g.openReader(reader)
}

// manyFlag names what asked for several devices, for messages.
func (g *globals) manyFlag() string {
	if g.allReaders {
		return "--all-readers"
	}
	return fmt.Sprintf("--reader (given %d times)", len(g.readers))
}

// openAll opens every device --reader names (in order; once each), or
// with --all-readers every PC/SC reader that holds a SmartCard-HSM, and
// says which it opened. With neither, it opens the one device open would.
// The caller closes them.
func (g *globals) openAll() ([]*device.Conn, error) {
	names := g.readers
	if g.allReaders {
		if len(g.readers) > 0 {
			return nil, errors.New("--all-readers and --reader contradict each other: give one")
		}
		rs, err := device.ListReaders()
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			switch {
			case r.CardPresent && r.SmartCardHSM == nil:
				// A device another program holds would silently be left
				// out of a ceremony meant for every device.
				return nil, fmt.Errorf("--all-readers: the card in %s could not be asked whether it is a SmartCard-HSM (another program holds it?): close that program, or name the devices with --reader", r.Name)
			case r.SmartCardHSM != nil && *r.SmartCardHSM:
				names = append(names, r.Name)
			}
		}
		if len(names) == 0 {
			return nil, errors.New("--all-readers: no reader holds a SmartCard-HSM: insert the devices (list-readers shows what each reader holds)")
		}
	}
	if len(names) == 0 {
		names = []string{""}
	}
	given := map[string]bool{}
	for _, n := range names {
		if given[n] {
			return nil, fmt.Errorf("--reader %q is given twice: give each device once", n)
		}
		given[n] = true
	}
	var conns []*device.Conn
	seen := map[string]string{}
	for _, n := range names {
		c, err := g.openReader(n)
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		if first, ok := seen[c.Reader]; ok {
			c.Close()
			closeAll(conns)
			return nil, fmt.Errorf("--reader %q and --reader %q name the same device (%s): give each device once", first, n, c.Reader)
		}
		seen[c.Reader] = n
		conns = append(conns, c)
	}
	return conns, nil
}

// closeAll closes what openAll opened.
func closeAll(conns []*device.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

func (g *globals) openReader(reader string) (*device.Conn, error) {
	o := device.Options{Reader: reader}
	if g.wait {
		o.Wait = waitTimeout
	}
	if g.verbose {
		o.Trace = g.stderr
	}
	conn, err := device.Open(o)
	if err != nil {
		return nil, err
	}
	// As OpenSC's tools do (src/tools/util.c, util_connect_card_ex), so
	// that the device a command acts on is never a surprise: a forgotten
	// --reader sim:PATH would otherwise reach real hardware silently.
	fmt.Fprintf(g.stderr, "Using reader with a card: %s\n", conn.Reader)
	return conn, nil
}

// secrets is the one source of secrets of this run: "-" reads successive
// lines of stdin, in the order the options are read.
func (g *globals) secrets() *secret.Source {
	if g.src == nil {
		g.src = secret.Default()
		g.src.Stdin = g.stdin
	}
	return g.src
}

// userPIN reads the user PIN given to --pin (spec) and refuses one that
// cannot be right before anything reaches the device (hsm.CheckPIN).
// The caller wipes it.
func (g *globals) userPIN(spec string) ([]byte, error) {
	pin, err := g.secrets().Get("pin", spec, "Enter user PIN: ")
	if err != nil {
		return nil, err
	}
	if err := hsm.CheckPIN(pin, pinFlagName(spec)); err != nil {
		secret.Wipe(pin)
		return nil, err
	}
	return pin, nil
}

// pinFlagName is how an error names where the PIN came from: "--pin
// env:VAR", "--pin file:PATH", "--pin -", or "--pin" for a literal PIN
// (never repeated) or a prompt.
func pinFlagName(spec string) string {
	switch {
	case spec == "-", strings.HasPrefix(spec, "env:"), strings.HasPrefix(spec, "file:"):
		return "--pin " + spec
	}
	return "--pin"
}

// writeDeviceJSON prints the --json result of a command that opened the
// device in reader, with the reader named in it as "reader": an object
// gets the field first; a list is put under name beside it, as in
// {"reader": "...", "keys": [...]}. Scripts can then tell which device a
// result came from (sc-hsm-tool and OpenSC say it on stderr only).
func writeDeviceJSON(g *globals, reader, name string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r, _ := json.Marshal(reader)
	var out []byte
	switch trimmed := bytes.TrimSpace(body); {
	case bytes.HasPrefix(trimmed, []byte("{")):
		var fields map[string]json.RawMessage
		if json.Unmarshal(trimmed, &fields) == nil && fields["reader"] != nil {
			out = trimmed // it names the reader itself (the backup manifest)
			break
		}
		out = append([]byte(`{"reader":`), r...)
		if rest := bytes.TrimSpace(trimmed[1:]); !bytes.Equal(rest, []byte("}")) {
			out = append(out, ',')
		}
		out = append(out, trimmed[1:]...)
	default:
		if bytes.Equal(trimmed, []byte("null")) {
			trimmed = []byte("[]")
		}
		n, _ := json.Marshal(name)
		out = append([]byte(`{"reader":`), r...)
		out = append(out, ',')
		out = append(out, n...)
		out = append(out, ':')
		out = append(out, trimmed...)
		out = append(out, '}')
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, out, "", "  "); err != nil {
		return err
	}
	ind.WriteByte('\n')
	_, err = g.stdout.Write(ind.Bytes())
	return err
}

// note prints an informational line to stderr.
func (g *globals) note(format string, args ...any) {
	fmt.Fprintf(g.stderr, "pico-hsm-tool: "+format+"\n", args...)
}
