package sim

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

func TestParseFault(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Fault
		err  string
	}{
		{in: "removed:before:1", want: Fault{AtAPDU: 1, When: Before, Kind: FaultRemoved}},
		{in: "removed:after:12", want: Fault{AtAPDU: 12, When: After, Kind: FaultRemoved}},
		{in: "reset:after:3", want: Fault{AtAPDU: 3, When: After, Kind: FaultReset}},
		{in: "noservice:before:2", want: Fault{AtAPDU: 2, When: Before, Kind: FaultNoService}},
		{in: "sw=6581:before:4", want: Fault{AtAPDU: 4, When: Before, Kind: FaultSW, SW: 0x6581}},
		{in: "sw=6F00:after:4", want: Fault{AtAPDU: 4, When: After, Kind: FaultSW, SW: 0x6F00}},
		{in: "truncate:after:5", want: Fault{AtAPDU: 5, When: After, Kind: FaultTruncate}},
		{in: "truncate:before:5", err: "use truncate:after:N"},
		{in: "sw=65:before:1", err: "four hex digits"},
		{in: "sw:before:1", err: "four hex digits"},
		{in: "removed=1:before:1", err: "takes no argument"},
		{in: "melted:before:1", err: "unknown kind"},
		{in: "removed:during:1", err: "say before or after"},
		{in: "removed:before:0", err: "1 or more"},
		{in: "removed:before", err: "want KIND"},
	} {
		t.Run(c.in, func(t *testing.T) {
			f, err := ParseFault(c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %+v, %v; want error with %q", f, err, c.err)
				}
				return
			}
			if err != nil || f != c.want {
				t.Fatalf("got %+v, %v; want %+v", f, err, c.want)
			}
			if f.String() != c.in {
				t.Errorf("String() = %q, want %q", f.String(), c.in)
			}
		})
	}
}

// TestInject checks each fault kind against the firmware state it must
// leave: a command faulted "before" is not executed, one faulted "after"
// is; removal loses the RAM, a reset only the session, and both, like a
// lost pcscd, fail every later APDU.
func TestInject(t *testing.T) {
	wrongPIN := verifyPIN([]byte("000000"))
	for _, c := range []struct {
		name  string
		fault string
		// pending sets up a DKEK commit still pending (last share imported
		// without a PIN session) before the fault is armed.
		pending bool
		// The APDUs sent after Inject; the fault strikes one of them.
		cmds [][]byte
		// wantLast is the answer to the last command, or wantErr its error.
		wantLast []byte
		wantErr  error
		// After the fault is disarmed: the PIN tries left, whether the
		// application is still selected, and whether the DKEK commit is
		// still pending.
		tries     int
		selected  bool
		stillPend bool
	}{
		{name: "sw before: not executed", fault: "sw=6581:before:1", cmds: [][]byte{wrongPIN},
			wantLast: []byte{0x65, 0x81}, tries: 3, selected: true},
		{name: "sw after: executed", fault: "sw=6F00:after:1", cmds: [][]byte{wrongPIN},
			wantLast: []byte{0x6F, 0x00}, tries: 2, selected: true},
		{name: "truncate after: one byte", fault: "truncate:after:2", cmds: [][]byte{querySO(), wrongPIN},
			wantLast: []byte{0x63}, tries: 2, selected: true},
		{name: "removed before: not executed, RAM lost", fault: "removed:before:1", pending: true, cmds: [][]byte{wrongPIN},
			wantErr: ErrCardRemoved, tries: 3},
		{name: "removed after: executed, RAM lost", fault: "removed:after:1", pending: true, cmds: [][]byte{wrongPIN},
			wantErr: ErrCardRemoved, tries: 2},
		{name: "removed stays removed", fault: "removed:before:1", cmds: [][]byte{wrongPIN, wrongPIN},
			wantErr: ErrCardRemoved, tries: 3},
		{name: "reset after: session ends, pending commit stays", fault: "reset:after:1", pending: true, cmds: [][]byte{wrongPIN, querySO()},
			wantErr: ErrCardReset, tries: 2, stillPend: true},
		{name: "noservice before: device untouched", fault: "noservice:before:2", pending: true, cmds: [][]byte{wrongPIN, wrongPIN, wrongPIN},
			wantErr: ErrNoService, tries: 2, selected: true, stillPend: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := initialized(t, 1)
			if c.pending {
				d.ok("import share", importShare(share1))
				if !d.st.RAM.PendingSaveDKEK {
					t.Fatal("no DKEK commit pending after the last share")
				}
			}
			f, err := ParseFault(c.fault)
			if err != nil {
				t.Fatal(err)
			}
			d.Inject(f)
			var last []byte
			for _, cmd := range c.cmds {
				last, err = d.Transmit(cmd)
			}
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("last answer %X, %v; want %v", last, err, c.wantErr)
				}
			} else if err != nil || !bytes.Equal(last, c.wantLast) {
				t.Fatalf("last answer %X, %v; want %X", last, err, c.wantLast)
			}
			d.Fault = nil
			if d.st.PINTries != c.tries {
				t.Errorf("PIN tries %d, want %d", d.st.PINTries, c.tries)
			}
			if d.sess.Selected != c.selected {
				t.Errorf("application selected %v, want %v", d.sess.Selected, c.selected)
			}
			if d.st.RAM.PendingSaveDKEK != c.stillPend {
				t.Errorf("DKEK commit pending %v, want %v", d.st.RAM.PendingSaveDKEK, c.stillPend)
			}
			// The device works again once the host selects it.
			d.ok("SELECT AID", selectAID())
			d.expect("PIN status", queryPIN(), apdu.SWVerifyFailed|uint16(c.tries))
		})
	}
}

func TestPublicKey(t *testing.T) {
	d := withDKEK(t, share1)
	if d.PublicKey(1) != nil {
		t.Fatal("public key of an empty reference")
	}
	d.ok("generate EC key", genKeyPair(1, gakp(ecTemplate(ecc.ByName("secp256r1")))))
	if pub := d.PublicKey(1); len(pub) != 65 || pub[0] != 4 || !bytes.Equal(pub, d.st.Keys[1].Pub) {
		t.Fatalf("EC public key %X", pub)
	}
}
