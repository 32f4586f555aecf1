package keystore

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
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

// A new key's label or ID that another key has is a DuplicateError; the
// key it replaces (same reference) and empty labels do not count, and IDs
// compare in any case.
func TestCheckDuplicate(t *testing.T) {
	tests := []struct {
		ref       int
		label, id string
		want      string
	}{
		{20, "new", "20", ""},
		{20, "", "20", ""},
		{1, "signing", "01", ""}, // replaces key 1 itself
		{20, "signing", "20", `key reference 1 already has the label "signing": a second key with the same label would make --label ambiguous`},
		{20, "new", "0a0b", "key reference 2 already has the ID 0A0B: a second key with the same ID would make --id ambiguous"},
		{20, "tls", "20", `key references 2, 3 already have the label "tls": a second key with the same label would make --label ambiguous`},
		{20, "backup", "02", `key reference 10 already has the label "backup" and the ID 02: a second key with the same label and ID would make --label and --id ambiguous`},
		{20, "signing", "03", `key reference 1 already has the label "signing", and key reference 3 the ID 03: a second key with the same label and ID would make --label and --id ambiguous`},
		{3, "tls", "20", `key reference 2 already has the label "tls": `},
	}
	for _, tt := range tests {
		err := CheckDuplicate(keys, tt.ref, tt.label, tt.id)
		var de *DuplicateError
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt, err)
		case tt.want != "" && (!errors.As(err, &de) || !strings.HasPrefix(err.Error(), tt.want)):
			t.Errorf("%+v: %v, want %q", tt, err, tt.want)
		}
	}
}

// simDevice opens a simulated device initialized with the user PIN 648219
// and a random DKEK.
func simDevice(t *testing.T) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), "d.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SelectApplication()
	if err := c.Initialize(&hsm.InitParams{SOPIN: []byte{0x35, 0x37, 0x36, 0x32, 0x31, 0x38, 0x38, 0x30}, PIN: []byte("648219"), Retries: 3, DKEKShares: 0}); err != nil {
		t.Fatal(err)
	}
	return c
}

// generate-key refuses a label or ID another key has, the default ID (the
// key reference) included, unless AllowDuplicate.
func TestGenerateDuplicate(t *testing.T) {
	c := simDevice(t)
	gen := func(s GenSpec) error {
		s.PIN = []byte("648219")
		_, err := Generate(c, s)
		return err
	}
	if err := gen(GenSpec{Type: "aes", Bits: 128, Label: "data", ID: []byte{0x05}, Ref: 1}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s    GenSpec
		want string
	}{
		{GenSpec{Type: "aes", Bits: 128, Label: "data", Ref: -1}, `key reference 1 already has the label "data": a second key with the same label would make --label ambiguous: choose another label, or add --allow-duplicate`},
		{GenSpec{Type: "aes", Bits: 128, Label: "x", ID: []byte{0x05}, Ref: -1}, "key reference 1 already has the ID 05: a second key with the same ID would make --id ambiguous: choose another ID, or add --allow-duplicate"},
		{GenSpec{Type: "aes", Bits: 128, Label: "x", Ref: 5}, "key reference 1 already has the ID 05: a second key with the same ID would make --id ambiguous: choose another ID with --id (the default ID is the key reference), or add --allow-duplicate"},
		{GenSpec{Type: "aes", Bits: 128, Label: "data", Ref: 5}, `key reference 1 already has the label "data" and the ID 05: a second key with the same label and ID would make --label and --id ambiguous: choose another label and another ID with --id (the default ID is the key reference), or add --allow-duplicate`},
	} {
		if err := gen(tc.s); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v", tc.s, err)
		}
	}
	c.SelectApplication()
	if got, _ := List(c.Device); len(got) != 1 {
		t.Fatalf("refused keys were made: %+v", got)
	}
	if err := gen(GenSpec{Type: "aes", Bits: 128, Label: "data", ID: []byte{0x05}, Ref: -1, AllowDuplicate: true}); err != nil {
		t.Fatal(err)
	}
}

// ListFrom reads only the files asked for: one APDU per key and part.
func TestListFromParts(t *testing.T) {
	c := simDevice(t)
	for _, l := range []string{"a", "b"} {
		if _, err := Generate(c, GenSpec{Type: "ec", Curve: "secp256r1", Label: l, Ref: -1, PIN: []byte("648219")}); err != nil {
			t.Fatal(err)
		}
	}
	fids, err := c.ListObjects()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		parts Parts
		apdus int
		check func(k Key) bool
	}{
		{ReadAll, 6, func(k Key) bool { return k.Label != "" && k.Curve == "secp256r1" && k.Cert != nil }},
		{ReadPRKD, 2, func(k Key) bool { return k.Label != "" && k.Cert == nil }},
		{ReadPRKD | ReadCert, 4, func(k Key) bool { return k.Label != "" && k.Cert != nil }},
	} {
		n := 0
		c.Sim.Fault = func([]byte) ([]byte, error) { n++; return nil, nil }
		keys, err := ListFrom(c.Device, fids, tc.parts)
		c.Sim.Fault = nil
		if err != nil || len(keys) != 2 || n != tc.apdus || !tc.check(keys[0]) || !tc.check(keys[1]) {
			t.Errorf("parts %b: %d APDUs, %+v, %v", tc.parts, n, keys, err)
		}
	}
}
