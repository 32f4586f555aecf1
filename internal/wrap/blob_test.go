package wrap

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"math/big"
	"os"
	"testing"
)

const vectors = "../../testdata/pico-hsm/vectors/"

// DKEK A of ../shared/pico-hsm/VECTORS.txt section 3.
var dkekA, _ = hex.DecodeString("CCA90B3A41CC892109535829354821FFDCD666F33E9AC9C855ECF3D45A13E8B2")

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(vectors + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRecordedWrapFiles(t *testing.T) {
	tests := []struct {
		file, pub  string
		typ        KeyType
		bits       int
		blobLen    int
		prkdPrefix string
	}{
		{"wrap-key-rsa2048-ref1.bin", "k1-pub.der", TypeRSA, 2048, 587, "3025"},
		{"wrap-key-ec256-ref2.bin", "k2-pub.der", TypeEC, 256, 331, "A026"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw := readVector(t, tt.file)
			f, err := ParseFile(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(f.Marshal(), raw) {
				t.Fatal("Marshal does not reproduce the file sc-hsm-tool wrote")
			}
			if len(f.Blob) != tt.blobLen || hex.EncodeToString(f.PRKD[:2]) != toLower(tt.prkdPrefix) || f.Cert[0] != 0x67 {
				t.Fatalf("blob %d bytes, PRKD % X…, cert %02X", len(f.Blob), f.PRKD[:2], f.Cert[0])
			}
			bl, err := ParseBlob(f.Blob)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(bl.KCV[:]) != "440b48e7faebc853" || bl.Type != tt.typ {
				t.Fatalf("KCV %X type %v", bl.KCV, bl.Type)
			}
			key, err := bl.Open(dkekA)
			if err != nil {
				t.Fatal(err)
			}
			if key.Bits != tt.bits {
				t.Fatalf("bits %d", key.Bits)
			}
			pub, err := x509.ParsePKIXPublicKey(readVector(t, tt.pub))
			if err != nil {
				t.Fatal(err)
			}
			switch p := pub.(type) {
			case *rsa.PublicKey:
				if new(big.Int).SetBytes(key.N).Cmp(p.N) != 0 {
					t.Fatal("modulus differs from k1-pub")
				}
				// d works: (m^e)^d = m mod n.
				m := big.NewInt(0x1234567)
				c := new(big.Int).Exp(m, big.NewInt(int64(p.E)), p.N)
				if new(big.Int).Exp(c, new(big.Int).SetBytes(key.D), p.N).Cmp(m) != 0 {
					t.Fatal("D does not invert E")
				}
			case *ecdsa.PublicKey:
				x, y := elliptic.P256().ScalarBaseMult(key.D)
				if x.Cmp(p.X) != 0 || y.Cmp(p.Y) != 0 {
					t.Fatal("d·G differs from k2-pub")
				}
				if !bytes.Equal(key.ECQ, elliptic.Marshal(elliptic.P256(), p.X, p.Y)) {
					t.Fatal("blob Q differs from k2-pub")
				}
				if len(key.A) != 0 {
					t.Fatalf("P-256 A field should be empty as the firmware writes it, got %d bytes", len(key.A))
				}
			}
			// Re-seal with the same DKEK: the result opens to the same key.
			again, err := Seal(dkekA, key, bl.Allowed, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if len(again) != len(f.Blob) || !bytes.Equal(again[:27], f.Blob[:27]) {
				t.Fatalf("re-sealed header differs:\n% X\n% X", again[:27], f.Blob[:27])
			}
			bl2, _ := ParseBlob(again)
			k2, err := bl2.Open(dkekA)
			if err != nil || !bytes.Equal(k2.D, key.D) {
				t.Fatalf("re-sealed blob: %v", err)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	f, err := ParseFile(readVector(t, "wrap-key-ec256-ref2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	bl, _ := ParseBlob(f.Blob)
	other := bytes.Repeat([]byte{1}, 32)
	if _, err := bl.Open(other); !errors.Is(err, ErrWrongDKEK) {
		t.Errorf("other DKEK: %v", err)
	}
	tampered := bytes.Clone(f.Blob)
	tampered[40] ^= 1
	bt, _ := ParseBlob(tampered)
	if _, err := bt.Open(dkekA); !errors.Is(err, ErrBadMAC) {
		t.Errorf("tampered: %v", err)
	}
}

func TestParseRejects(t *testing.T) {
	good := readVector(t, "wrap-key-rsa2048-ref1.bin")
	f, _ := ParseFile(good)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"truncated file": good[:len(good)-1],
		"trailing byte":  append(bytes.Clone(good), 0),
		"not a sequence": append([]byte{0x31}, good[1:]...),
		"a .pbe share":   []byte("Salted__0123456789abcdef0123456789abcdef0123456789abcdef01234567"),
	} {
		if _, err := ParseFile(b); !errors.Is(err, ErrFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, b := range map[string][]byte{
		"short":        f.Blob[:30],
		"bad type":     append(append(bytes.Clone(f.Blob[:8]), 7), f.Blob[9:]...),
		"huge OID len": append(append(bytes.Clone(f.Blob[:9]), 0xFF, 0xFF), f.Blob[11:]...),
		"unaligned":    append(bytes.Clone(f.Blob[:len(f.Blob)-16]), append([]byte{0}, f.Blob[len(f.Blob)-16:]...)...),
	} {
		if _, err := ParseBlob(b); !errors.Is(err, ErrBlob) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func toLower(s string) string { return string(bytes.ToLower([]byte(s))) }
