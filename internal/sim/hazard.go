package sim

import "errors"

// ErrHung is what the transport sees from a device whose firmware hangs:
// no answer at all. A reader times out on it; vpcd waits for ever. The
// simulator only answers this way when Device.FirmwareHangs is set.
var ErrHung = errors.New("simulated device: no answer, the firmware hangs (restart the device)")

// hangs reports whether the firmware would hang on cmd, never answering
// and spinning at full CPU until it is restarted (recorded in
// testdata/pico-hsm/transcripts/differential/fw-p1.txt, step "risky:
// 002400810C…", and in testdata/pico-hsm/README.md, "Firmware hazards"):
//
//   - a 1-byte APDU;
//   - CHANGE REFERENCE DATA (00 24 00 81 or 88) with 1 to 16 bytes when
//     that PIN was never set (a device never initialized). The PIN file
//     then holds the 33 zero bytes sc_hsm.c scan_files writes at the first
//     start, so cmd_change_pin.c reads a stored PIN length of 0 and goes
//     on to check a PIN of length 0; the recording shows it never answers,
//     the source does not show where it spins. With no data, or more than
//     16 bytes, the length checks answer 6700 before that (cmdChangePIN).
func (d *Device) hangs(cmd []byte) bool {
	if len(cmd) == 1 {
		return true
	}
	if len(cmd) < 5 || cmd[1] != 0x24 || cmd[2] != 0 || (cmd[3] != 0x81 && cmd[3] != 0x88) || !d.sess.Selected {
		return false
	}
	pin := d.st.PIN
	if cmd[3] == 0x88 {
		pin = d.st.SOPIN
	}
	if d.st.Initialized && len(pin) > 0 {
		return false
	}
	_, _, nc := sdkParse(cmd, len(cmd))
	return nc >= 1 && nc <= 16
}

// Hung reports whether the device hangs (FirmwareHangs), answering nothing
// until PowerCycle.
func (d *Device) Hung() bool { return d.hung }
