package wrap

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

// recordedRandom decrypts the first block of a blob's key part and returns
// the 8 random bytes the firmware put there (kek.c dkek_encode_key).
func recordedRandom(t *testing.T, bl *Blob, dkek []byte) []byte {
	t.Helper()
	k := Derive(dkek)
	blk, err := aes.NewCipher(k.Enc[:])
	if err != nil {
		t.Fatal(err)
	}
	first := make([]byte, 16)
	cipher.NewCBCDecrypter(blk, make([]byte, 16)).CryptBlocks(first, bl.Encrypted[:16])
	return first[:8]
}

// TestSealKnownAnswer rebuilds the blobs the real firmware wrote
// (wrap-key-*.bin under DKEK A) from the key numbers alone, with RSAKey and
// ECKey, and seals them with the firmware's own 8 random bytes: the result
// is byte-identical, header, padding and CMAC included.
func TestSealKnownAnswer(t *testing.T) {
	for _, name := range []string{"wrap-key-rsa2048-ref1.bin", "wrap-key-ec256-ref2.bin"} {
		t.Run(name, func(t *testing.T) {
			f, err := ParseFile(readVector(t, name))
			if err != nil {
				t.Fatal(err)
			}
			bl, err := ParseBlob(f.Blob)
			if err != nil {
				t.Fatal(err)
			}
			opened, err := bl.Open(dkekA)
			if err != nil {
				t.Fatal(err)
			}
			var key *Key
			switch opened.Type {
			case TypeRSA:
				key, err = RSAKey(new(big.Int).SetBytes(opened.N), new(big.Int).SetBytes(opened.E), new(big.Int).SetBytes(opened.D))
			case TypeEC:
				key, err = ECKey(ecc.ByPrime(opened.ECP), opened.D)
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := Seal(dkekA, key, bl.Allowed, bytes.NewReader(recordedRandom(t, bl, dkekA)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, f.Blob) {
				t.Fatalf("sealed blob differs from the firmware's:\n% X\n% X", got, f.Blob)
			}
		})
	}
}

// TestSealRoundTrip seals a key of every type and curve the device holds
// and opens it again.
func TestSealRoundTrip(t *testing.T) {
	var keys []*Key
	for _, bits := range []int{1024, 2048} {
		rk, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		k, err := RSAKey(rk.N, big.NewInt(int64(rk.E)), rk.D)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, name := range []string{"secp256r1", "secp384r1", "secp521r1", "secp256k1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1"} {
		c := ecc.ByName(name)
		if c == nil {
			t.Fatalf("no curve %s", name)
		}
		d, _, err := c.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		k, err := ECKey(c, d)
		if err != nil {
			t.Fatal(err)
		}
		if name == "secp521r1" && k.Bits != 528 {
			t.Fatalf("P-521 key size %d, the firmware writes 528", k.Bits)
		}
		if strings.HasPrefix(name, "secp") != (len(k.A) == 0) {
			t.Fatalf("%s: A is %d bytes", name, len(k.A))
		}
		keys = append(keys, k)
	}
	for _, n := range []int{16, 24, 32} {
		k, err := AESKey(bytes.Repeat([]byte{byte(n)}, n))
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	for _, k := range keys {
		blob, err := Seal(dkekA, k, nil, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		bl, err := ParseBlob(blob)
		if err != nil {
			t.Fatal(err)
		}
		got, err := bl.Open(dkekA)
		if err != nil {
			t.Fatalf("%v %d: %v", k.Type, k.Bits, err)
		}
		if got.Type != k.Type || got.Bits != k.Bits || !bytes.Equal(got.D, k.D) || !bytes.Equal(got.N, k.N) ||
			!bytes.Equal(got.E, k.E) || !bytes.Equal(got.ECQ, k.ECQ) || !bytes.Equal(got.A, k.A) ||
			!bytes.Equal(got.ECP, k.ECP) || !bytes.Equal(got.Secret, k.Secret) {
			t.Fatalf("%v %d: round trip differs", k.Type, k.Bits)
		}
	}
	if _, err := AESKey(make([]byte, 20)); err == nil {
		t.Fatal("a 20-byte AES key was accepted")
	}
}
