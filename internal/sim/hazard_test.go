package sim

import (
	"errors"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// TestFirmwareHangs checks the switch for the firmware's hangs
// (testdata/pico-hsm/README.md, "Firmware hazards"): off, the hazardous
// APDUs get a status word; on, they get no answer, and neither does any
// later APDU until the device is power-cycled.
func TestFirmwareHangs(t *testing.T) {
	changePIN := enc(0x00, 0x24, 0x00, 0x81, append(append([]byte{}, userPIN...), userPIN...), 0)
	hazards := []struct {
		name string
		cmd  []byte
		off  uint16 // the status word with the switch off
	}{
		{"1-byte APDU", []byte{0x00}, apdu.SWWrongLength},
		{"CHANGE PIN on a factory-new device", changePIN, apdu.SWReferenceNotFound},
		{"CHANGE SO-PIN on a factory-new device", enc(0x00, 0x24, 0x00, 0x88, make([]byte, 16), 0), apdu.SWReferenceNotFound},
	}
	for _, h := range hazards {
		t.Run(h.name+" switch off", func(t *testing.T) {
			d := factory(t)
			d.expect(h.name, h.cmd, h.off)
			d.ok("SELECT afterwards", selectAID())
		})
		t.Run(h.name+" switch on", func(t *testing.T) {
			d := factory(t)
			d.FirmwareHangs = true
			if r, err := d.Transmit(h.cmd); !errors.Is(err, ErrHung) || r != nil {
				t.Fatalf("answer % X, error %v; want no answer and ErrHung", r, err)
			}
			if _, err := d.Transmit(selectAID()); !errors.Is(err, ErrHung) {
				t.Fatalf("the next APDU: error %v, want ErrHung", err)
			}
			if !d.Hung() {
				t.Error("Hung() = false on a hung device")
			}
			if err := d.PowerCycle(); err != nil {
				t.Fatal(err)
			}
			if d.Hung() {
				t.Error("Hung() = true after a power cycle")
			}
			d.ok("SELECT after a power cycle", selectAID())
		})
	}

	t.Run("not hazards", func(t *testing.T) {
		d := factory(t)
		d.FirmwareHangs = true
		// cmd_change_pin.c checks the lengths against the stored PIN's,
		// 0 here, before it checks the PIN.
		d.expect("CHANGE PIN without data", []byte{0x00, 0x24, 0x00, 0x81}, apdu.SWWrongLength)
		d.expect("CHANGE PIN with 17 bytes", enc(0x00, 0x24, 0x00, 0x81, make([]byte, 17), 0), apdu.SWWrongLength)
		d.expect("2-byte APDU", []byte{0x00, 0xA4}, apdu.SWWrongLength)
		li := loggedIn(t, 0)
		li.FirmwareHangs = true
		li.ok("CHANGE PIN on an initialized device", changePIN)
	})
}
