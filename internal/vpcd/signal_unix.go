//go:build unix

package vpcd

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// RemoveSignal and InsertSignal are the signals a bridge process handles to
// take its card out of the reader and put it back without losing the card's
// state. internal/testbed sends them from Bed.RemoveCard and Bed.InsertCard.
var (
	RemoveSignal os.Signal = syscall.SIGUSR1
	InsertSignal os.Signal = syscall.SIGUSR2
)

// HandleSignals calls s.Remove on RemoveSignal and s.Insert on InsertSignal
// until ctx ends. Call it before Run so that no signal is missed.
func (s *Server) HandleSignals(ctx context.Context) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, RemoveSignal, InsertSignal)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-ch:
				if sig == RemoveSignal {
					s.logf("vpcd: %v: removing the card", sig)
					s.Remove()
				} else {
					s.logf("vpcd: %v: inserting the card", sig)
					s.Insert()
				}
			}
		}
	}()
}
