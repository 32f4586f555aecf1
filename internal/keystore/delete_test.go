package keystore

import (
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/sim"
)

// CheckBackup: which keys may go, and against which proof.
func TestCheckBackup(t *testing.T) {
	pubA := &cvc.PublicKey{N: big.NewInt(0xA1), E: big.NewInt(65537)}
	pubB := &cvc.PublicKey{N: big.NewInt(0xB2), E: big.NewInt(65537)}
	same := func(want *cvc.PublicKey) func(*cvc.PublicKey) bool {
		return func(k *cvc.PublicKey) bool { return k != nil && k.N.Cmp(want.N) == 0 }
	}
	kcv := [8]byte{1, 2, 3, 4, 5, 6, 7, 8}
	rsa := Key{Ref: 1, Type: "RSA", Bits: 2048, Exportable: true, PublicKey: pubA}
	aes := Key{Ref: 2, Type: "AES", Bits: 256, Exportable: true}
	pinned := Key{Ref: 3, Type: "RSA", Bits: 2048, Exportable: false, PublicKey: pubA}
	good := &Proof{Name: "a.bin", Type: "RSA-CRT", KCV: kcv, SameKey: same(pubA), Verified: true}
	tests := []struct {
		name       string
		k          Key
		exportable bool
		p          *Proof
		noCheck    bool
		proven     bool
		err        error
		msg        string
	}{
		{"proven", rsa, true, good, false, true, nil, ""},
		{"proven without the DKEK", rsa, true, &Proof{Name: "a.bin", Type: "RSA", KCV: kcv, SameKey: same(pubA)}, false, true, nil, ""},
		{"no proof", rsa, true, nil, false, false, ErrNoProof, "key reference 1 is exportable, so back it up first"},
		{"no proof, no check", rsa, true, nil, true, false, nil, ""},
		{"another key", rsa, true, &Proof{Name: "b.bin", Type: "RSA", KCV: kcv, SameKey: same(pubB)}, false, false, ErrNotProven, "b.bin: the backup does not prove this key: it is the backup of another key"},
		{"another DKEK", rsa, true, &Proof{Name: "a.bin", Type: "RSA", KCV: [8]byte{9}, SameKey: same(pubA)}, false, false, ErrNotProven, "it was made under DKEK 0900000000000000, the device has 0102030405060708"},
		{"another type", rsa, true, &Proof{Name: "e.bin", Type: "EC", KCV: kcv}, false, false, ErrNotProven, "it holds an EC key, key reference 1 is RSA 2048"},
		{"no certificate in the backup", rsa, true, &Proof{Name: "s.bin", Type: "RSA", KCV: kcv}, false, false, ErrNotProven, "it carries no CV request or certificate"},
		{"AES", aes, true, &Proof{Name: "k.bin", Type: "AES", KCV: kcv}, false, false, ErrNotProven, "key reference 2 has no public key on the device"},
		{"AES, no check", aes, true, nil, true, false, nil, ""},
		{"not exportable", pinned, false, nil, false, false, ErrCannotBackUp, "its algorithm list lacks WRAP"},
		// A backup file proves nothing about a key that cannot leave the
		// device: it is the backup of some other key.
		{"not exportable, with a file", pinned, false, good, false, false, ErrCannotBackUp, "add --no-backup-check to delete it anyway"},
		{"no DKEK", rsa, false, nil, false, false, ErrCannotBackUp, "the device has no DKEK"},
		{"not exportable, no check", pinned, false, nil, true, false, nil, ""},
	}
	for _, tt := range tests {
		proven, err := CheckBackup(tt.k, tt.exportable, kcv, tt.p, tt.noCheck)
		switch {
		case tt.err == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.err != nil && (!errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg)):
			t.Errorf("%s: %v, want %v and %q", tt.name, err, tt.err, tt.msg)
		case proven != tt.proven:
			t.Errorf("%s: proven %v, want %v", tt.name, proven, tt.proven)
		}
	}
}

// onDelete arms a fault on the k-th DELETE FILE: the transport fails with
// err or the device answers ans, before the firmware sees the command or,
// with after, once it has executed it.
func onDelete(c *device.Conn, k int, after bool, ans []byte, err error) {
	seen := 0
	var hook func([]byte) ([]byte, error)
	hook = func(cmd []byte) ([]byte, error) {
		if len(cmd) < 2 || cmd[1] != 0xE4 {
			return nil, nil
		}
		if seen++; seen != k {
			return nil, nil
		}
		if after {
			c.Sim.Fault = nil
			if _, err := c.Sim.Transmit(cmd); err != nil {
				return nil, err
			}
			c.Sim.Fault = hook
		}
		return ans, err
	}
	c.Sim.Fault = hook
}

// A delete broken off at each DELETE FILE says truthfully what is left,
// and the command it suggests finishes the job.
func TestDeleteFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		k     int
		after bool
		ans   []byte
		err   error
		left  []uint16 // the files left on the device
		want  string
	}{
		{"card removed before the description", 1, false, nil, sim.ErrCardRemoved, []uint16{0xC401, 0xCE01, 0xCC01},
			"key reference 1 is partly deleted (left: certificate CE01, key CC01, and perhaps description C401): the key itself is still on the device; finish with 'pico-hsm-tool --reader sim:"},
		{"card removed after the description", 1, true, nil, sim.ErrCardRemoved, []uint16{0xCE01, 0xCC01},
			"(left: certificate CE01, key CC01, and perhaps description C401): the key itself is still on the device"},
		{"refused description", 1, false, []byte{0x69, 0x82}, nil, []uint16{0xC401, 0xCE01, 0xCC01}, "; nothing was deleted"},
		{"card removed before the certificate", 2, false, nil, sim.ErrCardRemoved, []uint16{0xCE01, 0xCC01},
			"(deleted: description C401; left: key CC01, and perhaps certificate CE01): the key itself is still on the device; finish with"},
		{"flash failure at the key", 3, false, []byte{0x65, 0x81}, nil, []uint16{0xCC01},
			"(deleted: description C401, certificate CE01; left: perhaps key CC01): run list-keys; if it still shows key reference 1, finish with"},
		{"card removed after the key", 3, true, nil, sim.ErrCardRemoved, nil, "left: perhaps key CC01"},
		{"refused key", 3, false, []byte{0x69, 0x82}, nil, []uint16{0xCC01},
			"(deleted: description C401, certificate CE01; left: key CC01): the key itself is still on the device"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := simDevice(t)
			if _, err := Generate(c, GenSpec{Type: "ec", Curve: "secp256r1", Label: "doomed", Ref: -1, PIN: []byte("648219")}); err != nil {
				t.Fatal(err)
			}
			onDelete(c, tc.k, tc.after, tc.ans, tc.err)
			_, err := Delete(c, DeleteOptions{Key: Spec{Ref: -1, Label: "doomed"}, PIN: []byte("648219"), NoBackupCheck: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "finish with") && !strings.Contains(err.Error(), "delete-key --key-reference 1 --no-backup-check --yes") {
				t.Errorf("no command to finish: %v", err)
			}
			c.Sim.Fault = nil
			c.Sim.PowerCycle()
			c.SelectApplication()
			c.Login([]byte("648219"), false)
			var left []uint16
			for _, fid := range []uint16{0xC401, 0xCE01, 0xCC01} {
				if _, err := c.ReadFile(fid); err == nil || fid == 0xCC01 && keyThere(c) {
					left = append(left, fid)
				}
			}
			if !sameFIDs(left, tc.left) {
				t.Errorf("left %04X, want %04X", left, tc.left)
			}
			// The suggested command finishes the job.
			if len(left) > 0 && left[len(left)-1] == 0xCC01 {
				if _, err := Delete(c, DeleteOptions{Key: Spec{Ref: 1}, PIN: []byte("648219"), NoBackupCheck: true}); err != nil {
					t.Fatalf("finishing: %v", err)
				}
			}
			c.SelectApplication()
			if keys, _ := List(c.Device); len(keys) != 0 {
				t.Errorf("keys left: %+v", keys)
			}
		})
	}
}

func keyThere(c *device.Conn) bool {
	fids, _ := c.ListObjects()
	for _, f := range fids {
		if f == hsm.KeyFID(hsm.PrefixKey, 1) {
			return true
		}
	}
	return false
}

func sameFIDs(a, b []uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
