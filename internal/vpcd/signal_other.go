//go:build !unix

package vpcd

import (
	"context"
	"os"
)

// RemoveSignal and InsertSignal are nil where SIGUSR1 and SIGUSR2 do not
// exist; HandleSignals does nothing there.
var (
	RemoveSignal os.Signal
	InsertSignal os.Signal
)

// HandleSignals is a no-op on systems without SIGUSR1 and SIGUSR2.
func (s *Server) HandleSignals(ctx context.Context) {}
