package main

import (
	"fmt"
	"time"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/secret"
)

// waitTimeout bounds --wait so that a script never waits forever.
const waitTimeout = 5 * time.Minute

func (g *globals) open() (*device.Conn, error) {
	o := device.Options{Reader: g.reader}
	if g.wait {
		o.Wait = waitTimeout
	}
	if g.verbose {
		o.Trace = g.stderr
	}
	return device.Open(o)
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

// note prints an informational line to stderr.
func (g *globals) note(format string, args ...any) {
	fmt.Fprintf(g.stderr, "pico-hsm-tool: "+format+"\n", args...)
}
