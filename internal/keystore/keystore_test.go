package keystore

import (
	"errors"
	"strings"
	"testing"
)

var keys = []Key{
	{Ref: 1, Label: "signing", ID: "01"},
	{Ref: 2, Label: "tls", ID: "0A0B"},
	{Ref: 3, Label: "tls", ID: "03"},
	{Ref: 10, Label: "backup", ID: "02"},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		spec Spec
		ref  int
		err  error
		msg  string
	}{
		{Spec{Ref: 1}, 1, nil, ""},
		{Spec{Ref: -1, Label: "signing"}, 1, nil, ""},
		{Spec{Ref: -1, ID: []byte{0x0a, 0x0b}}, 2, nil, ""},
		{Spec{Ref: -1, Label: "tls"}, 0, ErrAmbiguous, `label "tls" matches key references 2, 3: use --key-reference`},
		{Spec{Ref: -1, Label: "nope"}, 0, ErrNoSuchKey, `label "nope"; list them with list-keys`},
		// Key reference 2 does not hold ID 02: say where that ID lives
		// (OpenSC issue 2685: references and IDs get mixed up).
		{Spec{Ref: 5}, 0, ErrNoSuchKey, "key reference 5; list them with list-keys"},
		{Spec{Ref: 7}, 0, ErrNoSuchKey, ""},
	}
	for _, tt := range tests {
		k, err := Resolve(keys, tt.spec)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%+v: %v", tt.spec, err)
			}
			continue
		}
		if err != nil || k.Ref != tt.ref {
			t.Errorf("%+v: ref %d, %v", tt.spec, k.Ref, err)
		}
	}
	// A reference that is really an ID points the user to the key.
	_, err := Resolve([]Key{{Ref: 10, ID: "02"}}, Spec{Ref: 2})
	if err == nil || !strings.Contains(err.Error(), "the key with ID 02 is at key reference 10") {
		t.Errorf("reference mistaken for an ID: %v", err)
	}
}

func TestFreeRefAndOccupied(t *testing.T) {
	fids := []uint16{0xC400, 0xCC00, 0xCC01, 0xC401, 0xC402, 0xCE03}
	if r, err := FreeRef(fids); err != nil || r != 4 {
		t.Fatalf("FreeRef = %d, %v", r, err)
	}
	for ref, want := range map[int]bool{1: true, 2: true, 3: false, 4: false} {
		if Occupied(fids, ref) != want {
			t.Errorf("Occupied(%d) = %v", ref, !want)
		}
	}
	var all []uint16
	for r := 0; r < 256; r++ {
		all = append(all, 0xCC00|uint16(r))
	}
	if _, err := FreeRef(all); err == nil {
		t.Error("a full device has a free reference")
	}
}

func TestGenSpecValidate(t *testing.T) {
	tests := []struct {
		s   GenSpec
		err string
	}{
		{GenSpec{Type: "rsa", Bits: 2048, Ref: -1}, ""},
		{GenSpec{Type: "RSA", Bits: 4096, Ref: 5}, ""},
		{GenSpec{Type: "rsa", Bits: 1000, Ref: -1}, "RSA keys are 1024 to 4096 bits"},
		{GenSpec{Type: "ec", Curve: "P-256", Ref: -1}, ""},
		{GenSpec{Type: "ec", Curve: "brainpoolP512r1", Ref: -1}, ""},
		{GenSpec{Type: "ec", Curve: "x25519", Ref: -1}, "unknown curve"},
		{GenSpec{Type: "aes", Bits: 192, Ref: -1}, ""},
		{GenSpec{Type: "aes", Bits: 512, Ref: -1}, "AES keys are 128, 192 or 256 bits"},
		{GenSpec{Type: "dsa", Ref: -1}, "use rsa, ec or aes"},
		{GenSpec{Type: "aes", Bits: 128, Ref: 0}, "0 is the device's own key"},
		{GenSpec{Type: "aes", Bits: 128, Ref: 256}, "from 1 to 255"},
		{GenSpec{Type: "aes", Bits: 128, Ref: -1, Label: strings.Repeat("x", 101)}, "--label"},
	}
	for _, tt := range tests {
		err := tt.s.Validate()
		if (tt.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: %v, want %q", tt.s, err, tt.err)
		}
	}
	s := GenSpec{Type: "ec", Curve: "prime256v1", Ref: -1}
	if s.Validate(); s.Curve != "secp256r1" {
		t.Errorf("curve alias not canonicalised: %s", s.Curve)
	}
}
