package sim

import (
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
)

// TestResetRetryEmptyPIN: RESET RETRY COUNTER P1=02 with no data stores a
// user PIN of length 0, as pico-hsm cmd_reset_retry.c does (it refuses
// only more than 16 bytes): the user PIN then reads as never set, and
// CHANGE PIN on it would hang the firmware.
func TestResetRetryEmptyPIN(t *testing.T) {
	t.Parallel()
	opts := func(t *testing.T) *dev {
		return initializedWith(t, cat(t1(0x80, []byte{0x00, 0x01}), t1(0x81, userPIN), t1(0x82, soPIN), t1(0x91, []byte{3})))
	}
	runScenarios(t, []scenario{
		{"P1=02 no data", opts, []call{
			{"VERIFY SO", verifySO(soPIN), apdu.SWOK, nil},
			{"RESET P1=02 empty", []byte{0x00, 0x2C, 0x02, 0x81}, apdu.SWOK, none()},
			{"SELECT", selectAID(), apdu.SWOK, nil},
			{"user PIN reads as never set", queryPIN(), apdu.SWReferenceNotFound, nil},
			{"old PIN gone", verifyPIN(userPIN), apdu.SWReferenceNotFound, nil},
		}},
	})
}
