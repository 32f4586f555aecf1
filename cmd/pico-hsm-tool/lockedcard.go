package main

import (
	"sync"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// lockedCard serialises the vpcd server and the SIGHUP power cycle on one
// simulated device.
type lockedCard struct {
	mu sync.Mutex
	d  *sim.Device
}

func (c *lockedCard) ATR() []byte { c.mu.Lock(); defer c.mu.Unlock(); return c.d.ATR() }
func (c *lockedCard) PowerOn()    { c.mu.Lock(); defer c.mu.Unlock(); c.d.PowerOn() }
func (c *lockedCard) PowerOff()   { c.mu.Lock(); defer c.mu.Unlock(); c.d.PowerOff() }
func (c *lockedCard) Reset()      { c.mu.Lock(); defer c.mu.Unlock(); c.d.Reset() }
func (c *lockedCard) Transmit(cmd []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.d.Transmit(cmd)
}
func (c *lockedCard) powerCycle() error { c.mu.Lock(); defer c.mu.Unlock(); return c.d.PowerCycle() }
