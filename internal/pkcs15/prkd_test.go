package pkcs15

import (
	"bytes"
	"encoding/asn1"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func readVector(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fields is the comparable part of a PrivateKey.
type fields struct {
	Kind         Kind
	Label        string
	Flags        ObjectFlags
	AuthID       []byte
	ID           []byte
	Usage        KeyUsage
	AccessFlags  AccessFlags
	KeyReference int
	Path         []byte
	Bits         int
}

func fieldsOf(k *PrivateKey) fields {
	f := fields{k.Kind, k.Label, k.Flags, k.AuthID, k.ID, k.Usage, k.AccessFlags, k.KeyReference, k.Path, k.Bits}
	if len(f.AuthID) == 0 {
		f.AuthID = nil
	}
	if len(f.Path) == 0 {
		f.Path = nil
	}
	return f
}

// TestRecorded parses every recorded description and the firmware's
// derived ones, checks the decoded fields and that Marshal gives the same
// bytes back.
func TestRecorded(t *testing.T) {
	tests := []struct {
		file string
		want fields
	}{
		{"c401-k1-rsa2048-opensc.bin", fields{RSA, "k1", FlagPrivate | FlagModifiable, []byte{1}, []byte{1},
			UsageDecrypt | UsageSign | UsageSignRecover, 0, 1, nil, 2048}},
		{"c402-k2-ec256-opensc.bin", fields{EC, "k2", FlagPrivate | FlagModifiable, []byte{1}, []byte{2},
			UsageSign | UsageSignRecover | UsageDerive, 0, 2, nil, 256}},
		{"c400-device-key.bin", fields{EC, "ESPICOHSMTR", 0, nil, make([]byte, 20),
			UsageSign | UsageDerive, 0, -1, nil, 256}},
		{"fw-rsa2048-ref1.bin", fields{RSA, "", 0, nil, []byte("1"),
			UsageDecrypt | UsageSign | UsageSignRecover | UsageUnwrap, 0, -1, nil, 2048}},
		{"fw-rsa2048-ref10.bin", fields{RSA, "", 0, nil, []byte("10"),
			UsageDecrypt | UsageSign | UsageSignRecover | UsageUnwrap, 0, -1, nil, 2048}},
		{"fw-ec256-ref2.bin", fields{EC, "", 0, nil, []byte("2"), UsageSign | UsageDerive, 0, -1, nil, 256}},
		{"fw-aes256-ref3.bin", fields{AES, "", 0, nil, []byte("3"), UsageEncrypt | UsageDecrypt, 0, -1, nil, 256}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readVector(t, tt.file)
			k, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got := fieldsOf(k); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("fields\n got %+v\nwant %+v", got, tt.want)
			}
			if !bytes.Equal(k.Raw, raw) {
				t.Errorf("Raw = % X", k.Raw)
			}
			if got := k.Marshal(); !bytes.Equal(got, raw) {
				t.Errorf("Marshal\n got % X\nwant % X", got, raw)
			}
		})
	}
}

// TestNew checks that New reproduces what OpenSC 0.23 wrote after
// pkcs11-tool --keypairgen (transcripts/other/12 [37] and 13).
func TestNew(t *testing.T) {
	tests := []struct {
		kind   Kind
		label  string
		id     []byte
		keyRef int
		bits   int
		want   string
	}{
		{RSA, "k1", []byte{1}, 1, 2048, "c401-k1-rsa2048-opensc.bin"},
		{EC, "k2", []byte{2}, 2, 256, "c402-k2-ec256-opensc.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			k, err := New(tt.kind, tt.label, tt.id, tt.keyRef, tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := k.Marshal(), readVector(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Marshal\n got % X\nwant % X", got, want)
			}
		})
	}
}

func TestNewOtherSizes(t *testing.T) {
	tests := []struct {
		kind   Kind
		label  string
		id     []byte
		keyRef int
		bits   int
		want   string
	}{
		// A key reference above 127 needs a leading zero octet in DER.
		{RSA, "big", []byte{0xab, 0xcd}, 200, 4096,
			"30 28 30 0C 0C 03 626967 03 02 06 C0 04 01 01 30 0C 04 02 ABCD 03 02 04 70 02 02 00 C8 A1 0A 30 08 30 02 04 00 02 02 10 00"},
		// An empty label is left out, as asn1_encode_p15_object does.
		{EC, "", []byte{9}, 9, 521,
			"A0 22 30 07 03 02 06 C0 04 01 01 30 0B 04 01 09 03 03 07 30 80 02 01 09 A1 0A 30 08 30 02 04 00 02 02 02 09"},
		{AES, "aes", []byte{3}, 3, 128,
			"A8 2A 30 0C 0C 03 616573 03 02 06 C0 04 01 01 30 0A 04 01 03 03 02 06 C0 02 01 03 A0 06 30 04 02 02 00 80 A1 06 30 04 30 02 04 00"},
	}
	for _, tt := range tests {
		t.Run(tt.kind.String(), func(t *testing.T) {
			k, err := New(tt.kind, tt.label, tt.id, tt.keyRef, tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			got := k.Marshal()
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Marshal\n got % X\nwant % X", got, want)
			}
			back, err := Parse(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fieldsOf(back), fieldsOf(k)) {
				t.Errorf("round trip\n got %+v\nwant %+v", fieldsOf(back), fieldsOf(k))
			}
		})
	}
}

func TestNewFirmware(t *testing.T) {
	tests := []struct {
		kind  Kind
		label string
		id    []byte
		bits  int
		want  string
	}{
		{RSA, "", FirmwareID(1), 2048, "fw-rsa2048-ref1.bin"},
		{RSA, "", FirmwareID(10), 2048, "fw-rsa2048-ref10.bin"},
		{EC, "", FirmwareID(2), 256, "fw-ec256-ref2.bin"},
		{AES, "", FirmwareID(3), 256, "fw-aes256-ref3.bin"},
		{EC, "ESPICOHSMTR", make([]byte, 20), 256, "c400-device-key.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			k, err := NewFirmware(tt.kind, tt.label, tt.id, tt.bits)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := k.Marshal(), readVector(t, tt.want); !bytes.Equal(got, want) {
				t.Errorf("Marshal\n got % X\nwant % X", got, want)
			}
		})
	}
	// The recorded FCPs give the sizes of the firmware's own files: C401
	// 00 1B after RSA keygen, C402 00 1C after EC keygen, C40A 00 1C after
	// unwrap into reference 10 (keys.md section 8b).
	for _, s := range []struct {
		kind Kind
		ref  int
		size int
	}{{RSA, 1, 0x1b}, {EC, 2, 0x1c}, {RSA, 10, 0x1c}} {
		bits := 2048
		if s.kind == EC {
			bits = 256
		}
		k, _ := NewFirmware(s.kind, "", FirmwareID(s.ref), bits)
		if n := len(k.Marshal()); n != s.size {
			t.Errorf("%v ref %d: %d bytes, FCP says %d", s.kind, s.ref, n, s.size)
		}
	}
}

func TestConstructorErrors(t *testing.T) {
	tests := []struct {
		name string
		fn   func() error
		want string
	}{
		{"kind", func() error { _, err := New(Kind(9), "", nil, 1, 2048); return err }, "unsupported key kind"},
		{"ref low", func() error { _, err := New(RSA, "", nil, -1, 2048); return err }, "key reference -1 out of range"},
		{"ref high", func() error { _, err := New(RSA, "", nil, 256, 2048); return err }, "out of range"},
		{"bits", func() error { _, err := New(EC, "", nil, 1, 0); return err }, "invalid key size"},
		{"label", func() error { _, err := New(EC, "\xff", nil, 1, 256); return err }, "utf-8"},
		{"fw kind", func() error { _, err := NewFirmware(Kind(0), "", nil, 256); return err }, "unsupported key kind"},
		{"fw bits", func() error { _, err := NewFirmware(RSA, "", nil, 64); return err }, "out of range"},
		{"fw big", func() error { _, err := NewFirmware(RSA, "", nil, 0x8000); return err }, "out of range"},
		{"fw label", func() error { _, err := NewFirmware(RSA, "\xc3", nil, 2048); return err }, "utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWrapFiles checks that the PRKD inside the files sc-hsm-tool
// --wrap-key wrote is the one in C4xx and the one New builds.
func TestWrapFiles(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"wrap-key-rsa2048-ref1.bin", "c401-k1-rsa2048-opensc.bin"},
		{"wrap-key-ec256-ref2.bin", "c402-k2-ec256-opensc.bin"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "pico-hsm", "vectors", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var outer asn1.RawValue
			if _, err := asn1.Unmarshal(b, &outer); err != nil {
				t.Fatal(err)
			}
			var blob, prkd asn1.RawValue
			rest, err := asn1.Unmarshal(outer.Bytes, &blob)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := asn1.Unmarshal(rest, &prkd); err != nil {
				t.Fatal(err)
			}
			if want := readVector(t, tt.want); !bytes.Equal(prkd.FullBytes, want) {
				t.Fatalf("wrap file PRKD % X", prkd.FullBytes)
			}
			k, err := Parse(prkd.FullBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Marshal(), prkd.FullBytes) {
				t.Fatal("round trip differs")
			}
		})
	}
}

// TestSpelling checks that non-canonical spellings survive a round trip
// only while the value is unchanged.
func TestSpelling(t *testing.T) {
	aes := readVector(t, "fw-aes256-ref3.bin")
	tests := []struct {
		name   string
		in     []byte
		modify func(*PrivateKey)
		want   string
	}{
		{"aes unchanged", aes, func(*PrivateKey) {}, hex.EncodeToString(aes)},
		{"aes usage changed", aes, func(k *PrivateKey) { k.Usage |= UsageDerive },
			"A8 1E 30 02 0C 00 30 08 04 01 33 03 03 07 C0 80 A0 06 30 04 02 02 01 00 A1 06 30 04 30 02 04 00"},
		{"aes usage changed back", aes, func(k *PrivateKey) { k.Usage |= UsageDerive; k.Usage &^= UsageDerive },
			hex.EncodeToString(aes)},
		{"label set", aes, func(k *PrivateKey) { k.Label = "x" },
			"A8 1F 30 03 0C 01 78 30 08 04 01 33 03 03 07 C0 10 A0 06 30 04 02 02 01 00 A1 06 30 04 30 02 04 00"},
		{"old negative key reference", unhex(t, "30 1A 30 00 30 0A 04 01 01 03 02 04 70 02 01 C8 A1 0A 30 08 30 02 04 00 02 02 08 00"),
			func(k *PrivateKey) {
				if k.KeyReference != 200 {
					t.Errorf("KeyReference = %d", k.KeyReference)
				}
			}, ""},
		{"key reference changed", unhex(t, "30 1A 30 00 30 0A 04 01 01 03 02 04 70 02 01 C8 A1 0A 30 08 30 02 04 00 02 02 08 00"),
			func(k *PrivateKey) { k.KeyReference = 201 },
			"30 1B 30 00 30 0B 04 01 01 03 02 04 70 02 02 00 C9 A1 0A 30 08 30 02 04 00 02 02 08 00"},
		{"ec without field size", unhex(t, "A0 13 30 00 30 07 04 01 02 03 02 07 80 A1 06 30 04 30 02 04 00"),
			nil, ""},
		{"native false", unhex(t, "30 1C 30 00 30 0E 04 01 01 03 02 04 70 01 01 00 03 02 07 80 A1 08 30 06 30 04 04 02 3F 00"),
			func(k *PrivateKey) {
				if !k.NotNative || k.AccessFlags != AccessSensitive || !bytes.Equal(k.Path, []byte{0x3f, 0}) || k.Bits != 0 {
					t.Errorf("decoded %+v", fieldsOf(k))
				}
			}, ""},
		{"aes bare keyLen", unhex(t, "A8 19 30 00 30 07 04 01 03 03 02 06 C0 A0 04 02 02 00 80 A1 06 30 04 30 02 04 00"),
			func(k *PrivateKey) {
				if k.Bits != 128 {
					t.Errorf("Bits = %d", k.Bits)
				}
			}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := Parse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.in
			if tt.want != "" {
				want = unhex(t, tt.want)
			}
			if tt.modify != nil {
				tt.modify(k)
			}
			if got := k.Marshal(); !bytes.Equal(got, want) {
				t.Errorf("Marshal\n got % X\nwant % X", got, want)
			}
		})
	}
}

func TestTrailingDataIgnored(t *testing.T) {
	raw := readVector(t, "fw-rsa2048-ref1.bin")
	k, err := Parse(append(bytes.Clone(raw), 0x02, 0x02, 0x08, 0x00))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.Raw, raw) || !bytes.Equal(k.Marshal(), raw) {
		t.Fatalf("Raw % X", k.Raw)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "truncated"},
		{"one byte", "30", "truncated"},
		{"bad tag", "A1 00", "unsupported private key description tag 0xa1"},
		{"multi-byte tag", "BF 21 00", "multi-byte tag"},
		{"indefinite", "30 80 00 00", "indefinite length"},
		{"long length", "30 85 00 00 00 00 01", "length of 5 octets"},
		{"length past end", "30 05 30 00", "truncated"},
		{"long form past end", "30 82 01", "truncated"},
		{"huge length", "30 84 FF FF FF FF", "length too large"},
		{"big length", "30 83 01 00 00 00", "truncated"},
		{"no attributes", "30 02 30 00", "missing attributes"},
		{"coa not sequence", "30 04 31 00 30 00", "common object attributes: unexpected tag 0x31"},
		{"cka not sequence", "30 04 30 00 31 00", "common key attributes: unexpected tag 0x31"},
		{"bad label", "30 09 30 03 0C 01 80 30 00 A1 00", "utf-8"},
		{"bad flags", "30 09 30 03 03 01 01 30 00 A1 00", "flags: empty bit string with unused bits"},
		{"missing usage", "30 09 30 00 30 03 04 01 01 A1 00", "missing iD or usage"},
		{"usage unused 8", "30 0C 30 00 30 06 04 00 03 02 08 00 A1 00", "usage: bit string with 8 unused bits"},
		{"usage too long", "30 10 30 00 30 0A 04 00 03 06 00 01 02 03 04 05 A1 00", "bit string too long"},
		{"usage empty", "30 0A 30 00 30 04 04 00 03 00 A1 00", "usage: empty bit string"},
		{"native malformed", "30 0F 30 00 30 09 04 00 03 01 00 01 02 00 00 A1 00", "malformed native flag"},
		{"access flags", "30 0D 30 00 30 07 04 00 03 01 00 03 00 A1 00", "access flags: empty bit string"},
		{"key ref empty", "30 0D 30 00 30 07 04 00 03 01 00 02 00 A1 00", "key reference: empty integer"},
		{"key ref huge", "30 12 30 00 30 0C 04 00 03 01 00 02 05 01 00 00 00 00 A1 00", "integer out of range"},
		{"key ref negative", "30 0E 30 00 30 08 04 00 03 01 00 02 01 FF A1 00", "invalid key reference -1"},
		{"key ref very negative", "30 0F 30 00 30 09 04 00 03 01 00 02 02 FE 00 A1 00", "invalid key reference"},
		{"no type attributes", "30 09 30 00 30 05 04 00 03 01 00", "missing type attributes"},
		{"type attributes empty", "30 0B 30 00 30 05 04 00 03 01 00 A1 00", "type attributes: truncated"},
		{"type attributes not sequence", "30 0D 30 00 30 05 04 00 03 01 00 A1 02 31 00", "type attributes: unexpected tag 0x31"},
		{"no path", "30 0D 30 00 30 05 04 00 03 01 00 A1 02 30 00", "missing path"},
		{"path without efid", "30 0F 30 00 30 05 04 00 03 01 00 A1 04 30 02 30 00", "missing efidOrPath"},
		{"path garbage", "30 10 30 00 30 05 04 00 03 01 00 A1 05 30 03 30 01 04", "path: truncated"},
		{"negative size", "30 14 30 00 30 05 04 00 03 01 00 A1 09 30 07 30 02 04 00 02 01 80", "invalid key size -128"},
		{"aes subclass garbage", "A8 12 30 00 30 05 04 00 03 01 00 A0 01 02 A1 04 30 02 30 00", "secret key attributes: truncated"},
		{"aes keyLen bad", "A8 15 30 00 30 05 04 00 03 01 00 A0 04 30 02 02 00 A1 04 30 02 30 00", "key size: empty integer"},
		{"garbage inside", "30 03 30 02 00", "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(unhex(t, tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestTruncations feeds every proper prefix of every vector to Parse.
func TestTruncations(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.bin")
	if len(files) == 0 {
		t.Fatal("no vectors")
	}
	for _, f := range files {
		raw := readVector(t, filepath.Base(f))
		for i := 0; i < len(raw); i++ {
			if _, err := Parse(raw[:i]); err == nil {
				t.Errorf("%s: prefix of %d bytes parsed", f, i)
			}
		}
	}
}

func TestBitStrings(t *testing.T) {
	tests := []struct {
		v    uint32
		enc  string
		name string
	}{
		{0, "00", ""},
		{uint32(UsageEncrypt), "07 80", "encrypt"},
		{uint32(DefaultUsage(RSA)), "04 70", "decrypt,sign,signRecover"},
		{uint32(DefaultUsage(EC)), "07 30 80", "sign,signRecover,derive"},
		{uint32(FirmwareUsage(RSA)), "02 74", "decrypt,sign,signRecover,unwrap"},
		{uint32(FirmwareUsage(EC)), "07 20 80", "sign,derive"},
		{uint32(UsageNonRepudiation), "06 00 40", "nonRepudiation"},
		{1 << 15, "00 00 01", "bit15"},
		{uint32(FlagPrivate | FlagModifiable), "06 C0", ""},
	}
	for _, tt := range tests {
		got := encodeBits(tt.v)
		if !bytes.Equal(got, unhex(t, tt.enc)) {
			t.Errorf("encodeBits(%#x) = % X, want %s", tt.v, got, tt.enc)
		}
		back, err := decodeBits(got)
		if err != nil || back != tt.v {
			t.Errorf("decodeBits(% X) = %#x, %v", got, back, err)
		}
		if tt.name != "" && KeyUsage(tt.v).String() != tt.name {
			t.Errorf("String(%#x) = %q, want %q", tt.v, KeyUsage(tt.v).String(), tt.name)
		}
	}
	// The firmware's AES spelling: the set bit in the unused area is dropped.
	if v, err := decodeBits(firmwareAESUsage); err != nil || KeyUsage(v) != UsageEncrypt|UsageDecrypt {
		t.Errorf("firmware AES usage decodes to %v, %v", KeyUsage(v), err)
	}
	if s := (FlagPrivate | FlagModifiable).String(); s != "private,modifiable" {
		t.Errorf("flags %q", s)
	}
	if s := (AccessSensitive | AccessLocal).String(); s != "sensitive,local" {
		t.Errorf("access %q", s)
	}
}

func TestIntegers(t *testing.T) {
	tests := []struct {
		v   int
		enc string
	}{
		{0, "00"}, {1, "01"}, {127, "7F"}, {128, "00 80"}, {200, "00 C8"}, {256, "01 00"},
		{521, "02 09"}, {2048, "08 00"}, {32767, "7F FF"}, {32768, "00 80 00"}, {-1, "FF"}, {-128, "80"}, {-129, "FF 7F"},
	}
	for _, tt := range tests {
		got := encodeInt(tt.v)
		if !bytes.Equal(got, unhex(t, tt.enc)) {
			t.Errorf("encodeInt(%d) = % X, want %s", tt.v, got, tt.enc)
		}
		back, err := decodeInt(got)
		if err != nil || back != tt.v {
			t.Errorf("decodeInt(% X) = %d, %v", got, back, err)
		}
	}
	if v, err := decodeInt([]byte{0, 0, 0, 0, 0, 8, 0}); err != nil || v != 2048 {
		t.Errorf("non-minimal: %d, %v", v, err)
	}
}

func TestKindStrings(t *testing.T) {
	for k, want := range map[Kind]string{RSA: "RSA", EC: "EC", AES: "AES", 7: "Kind(7)"} {
		if k.String() != want {
			t.Errorf("%d: %q", int(k), k.String())
		}
	}
	if Kind(7).Tag() != 0 || DefaultUsage(7) != 0 || FirmwareUsage(7) != 0 {
		t.Error("unknown kind")
	}
	if got := DefaultUsage(AES); got != UsageEncrypt|UsageDecrypt {
		t.Errorf("aes usage %v", got)
	}
}
