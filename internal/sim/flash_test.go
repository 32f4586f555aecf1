package sim

import (
	"bytes"
	"testing"
)

// TestAllocate covers the allocator of fs/flash.c allocate_free_addr on
// hand-made chains.
func TestAllocate(t *testing.T) {
	top := flashEndData
	sector := top &^ (flashSector - 1)
	t.Run("empty pool: right below the top", func(t *testing.T) {
		p, ok := allocate(nil, 0xCC01, 10)
		if !ok || len(p) != 1 || p[0].addr != top-30 {
			t.Fatalf("%+v", p)
		}
	})
	t.Run("first gap larger than the block, from the top", func(t *testing.T) {
		p := []flashBlock{{top - 100, 0xCC01, 80}, {top - 200, 0xCC02, 10}, {top - 400, 0xCC03, 10}}
		// Gaps: 0 above CC01, 70 above CC02 (top-100 to top-170), 170 above CC03.
		got, _ := allocate(p, 0xCC04, 49) // 69 bytes: fits the 70 gap
		if got[1].fid != 0xCC04 || got[1].addr != top-100-69 {
			t.Errorf("%+v", got)
		}
		got, _ = allocate(p, 0xCC04, 50) // 70 bytes: the gap must be larger
		if got[2].fid != 0xCC04 || got[2].addr != top-200-70 {
			t.Errorf("%+v", got)
		}
	})
	t.Run("no gap before an internal 1xxx file", func(t *testing.T) {
		p := []flashBlock{{top - 100, 0x1081, 10}}
		got, _ := allocate(p, 0xCC01, 10)
		if got[1].fid != 0xCC01 || got[1].addr != top-130 {
			t.Errorf("%+v", got)
		}
	})
	t.Run("a block that does not fit the sector goes to the next one", func(t *testing.T) {
		// One block fills the top sector down to 30 bytes above its start.
		p := []flashBlock{{sector + 30, 0xCC01, top - sector - 30 - flashBlockHeader}}
		got, _ := allocate(p, 0xCC02, 20)
		if got[1].addr != sector-40 {
			t.Fatalf("%+v", got)
		}
		// CC02 shrinks in place: 50 bytes free between the blocks, but
		// only 30 of them in the sector of the block above, where a gap
		// must be used.
		got[1].n = 0
		got, _ = allocate(got, 0xCC03, 20)
		if got[1].fid == 0xCC03 || got[2].fid != 0xCC03 {
			t.Errorf("a block crossed into the lower sector: %+v", got)
		}
		got, _ = allocate(got, 0xCC04, 5)
		if got[1].fid != 0xCC04 || got[1].addr != sector+5 {
			t.Errorf("a block that fits the sector's gap: %+v", got)
		}
	})
}

// TestListKeysAfterPowerCycle checks that the order survives the state
// file: the pool is saved with the other files. (Within a session a new
// file is listed last; from the next SELECT of the application on, at its
// place in flash.)
func TestListKeysAfterPowerCycle(t *testing.T) {
	d := loggedIn(t, 0)
	d.genRSA(1, 1024)
	d.genEC(2, "secp256r1")
	d.ok("DELETE CC01", deleteFID(0xCC01))
	d.ok("AES 3", genAES(3, 0xB0, nil))
	d.ok("SELECT", selectAID())
	want := d.ok("LIST", listKeys())
	b, err := marshalState(d.st)
	if err != nil {
		t.Fatal(err)
	}
	r, err := restoreDevice(b)
	if err != nil {
		t.Fatal(err)
	}
	r2 := &dev{t: t, Device: r}
	r2.ok("SELECT", selectAID())
	if got := r2.ok("LIST", listKeys()); !bytes.Equal(got, want) {
		t.Errorf("after reload % X, want % X", got, want)
	}
}

// TestPoolFromOlderState checks that a state saved before the pool was
// modelled gets one, in creation order.
func TestPoolFromOlderState(t *testing.T) {
	d := loggedIn(t, 0)
	d.genEC(5, "secp256r1")
	d.genEC(2, "secp256r1")
	d.st.Flash = nil
	d.rescanFiles()
	if got := d.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 05 CC 02 C4 05 C4 02")) {
		t.Errorf("LIST % X", got)
	}
}
