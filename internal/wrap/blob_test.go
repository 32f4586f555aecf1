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
	"reflect"
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

// TestResealLimits checks, at the size limits, that a blob ParseBlob
// rejects is refused and that a key Open accepted wraps again into a blob
// ParseBlob accepts and that opens to the same key. Regression: ParseBlob
// bounded the whole blob to 8192 bytes, but Seal writes the 10-byte default
// OID that a blob may lack, so the largest blobs re-sealed over the bound
// (FuzzOpen's round-trip property; corpus entry
// testdata/fuzz/FuzzOpen/largest-rsa-blob-reseals-over-bound).
func TestResealLimits(t *testing.T) {
	// plain is what the firmware encrypts: 8 random bytes, the key size,
	// then the fields, each with its 2-byte length, padded with 80 00.. to
	// the block boundary.
	plain := func(size int, fields ...[]byte) []byte {
		p := append(bytes.Repeat([]byte{'A'}, 8), byte(size>>8), byte(size))
		for _, f := range fields {
			p = append(p, byte(len(f)>>8), byte(len(f)))
			p = append(p, f...)
		}
		if len(p)%16 != 0 {
			p = append(p, 0x80)
			for len(p)%16 != 0 {
				p = append(p, 0)
			}
		}
		return p
	}
	aes512 := append(bytes.Repeat([]byte{'A'}, 8), 0, 64)
	aes512 = append(aes512, bytes.Repeat([]byte{7}, 64)...)
	aes512 = append(aes512, 0x80, 0, 0, 0, 0, 0)
	tests := []struct {
		name string
		bl   Blob
		// parseErr is set when ParseBlob must refuse the blob.
		parseErr bool
	}{
		{"largest RSA key, 15-byte allowed list, no OID", Blob{Type: TypeRSA, Allowed: bytes.Repeat([]byte{'A'}, 15),
			Encrypted: plain(2048, bytes.Repeat([]byte{'A'}, 8128), nil, nil)}, false},
		{"largest EC key, long lists", Blob{Type: TypeEC, AlgorithmOID: []byte{1}, Allowed: bytes.Repeat([]byte{0x70}, 300),
			AccessConditions: make([]byte, 100), KeyOID: make([]byte, 100),
			Encrypted: plain(256, nil, nil, nil, nil, nil, bytes.Repeat([]byte{1}, maxEncrypted-26), nil)}, false},
		{"AES-512 without OID", Blob{Type: TypeAES, Encrypted: aes512}, false},
		{"encrypted part one block too long", Blob{Type: TypeRSA,
			Encrypted: plain(2048, bytes.Repeat([]byte{'A'}, maxEncrypted), nil, nil)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := reseal(t, &tt.bl, dkekA)
			bl, err := ParseBlob(raw)
			if tt.parseErr {
				if !errors.Is(err, ErrBlob) {
					t.Fatalf("%d-byte blob: %v, want ErrBlob", len(raw), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%d-byte blob: %v", len(raw), err)
			}
			key, err := bl.Open(dkekA)
			if err != nil {
				t.Fatal(err)
			}
			sealed, err := Seal(dkekA, key, bl.Allowed, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			bl2, err := ParseBlob(sealed)
			if err != nil {
				t.Fatalf("re-sealed %d-byte blob (from %d bytes): %v", len(sealed), len(raw), err)
			}
			key2, err := bl2.Open(dkekA)
			if err != nil || !reflect.DeepEqual(key2, key) {
				t.Fatalf("re-sealed blob opens to another key: %v", err)
			}
		})
	}
}
