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

func (g *globals) secrets() *secret.Source {
	s := secret.Default()
	s.Stdin = g.stdin
	return s
}

// note prints an informational line to stderr.
func (g *globals) note(format string, args ...any) {
	fmt.Fprintf(g.stderr, "pico-hsm-tool: "+format+"\n", args...)
}
