package hsm

import (
	"encoding/hex"
	"strings"
	"testing"
)

// TestImportDKEKShareTraceMasked imports a share into the simulated device
// with the -v trace on: the trace must show IMPORT DKEK SHARE as its header
// 80 52 00 00 and the length of the masked share, and no part of the share.
// Guards against ImportDKEKShare building its command without Secret (the
// 32-byte share would be printed in full) and against a trace that drops
// the line altogether.
func TestImportDKEKShareTraceMasked(t *testing.T) {
	d, trace := newDevice(t)
	initialize(t, d)
	if _, err := d.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	share := mustHex(t, "C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077")
	trace.Reset()
	if _, err := d.ImportDKEKShare(share); err != nil {
		t.Fatal(err)
	}
	out := trace.String()
	const want = "> IMPORT DKEK SHARE: 80 52 00 00 [32 secret bytes masked] Ne=256\n"
	if !strings.HasPrefix(out, want) {
		t.Errorf("trace does not start with the masked import:\n%s\nwant %s", out, want)
	}
	// Any 4 bytes of the share, as the trace spells bytes or run together.
	for i := 0; i+4 <= len(share); i++ {
		h := strings.ToUpper(hex.EncodeToString(share[i : i+4]))
		spaced := h[0:2] + " " + h[2:4] + " " + h[4:6] + " " + h[6:8]
		if strings.Contains(strings.ToUpper(out), h) || strings.Contains(out, spaced) {
			t.Fatalf("trace shows share bytes %s at offset %d:\n%s", spaced, i, out)
		}
	}
}
