package keyimport

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/cvc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/device"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/hsm"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/keystore"
)

var testPIN = []byte("648219")

// simWithDKEK opens a simulated device initialized with one DKEK share,
// which is the DKEK.
func simWithDKEK(t *testing.T, dkek []byte) *device.Conn {
	t.Helper()
	c, err := device.Open(device.Options{Reader: "sim:" + filepath.Join(t.TempDir(), "d.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	p := hsm.InitParams{SOPIN: []byte{0x35, 0x37, 0x36, 0x32, 0x31, 0x38, 0x38, 0x30}, PIN: testPIN, Retries: 3, DKEKShares: 1, Options: hsm.OptResetRetryCounter}
	if _, err := c.SelectApplication(); err != nil {
		t.Fatal(err)
	}
	if err := c.Initialize(&p); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ImportDKEKShare(dkek); err != nil {
		t.Fatal(err)
	}
	return c
}

func randomDKEK(t *testing.T) []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func parseFile(t *testing.T, name string) *Key {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	k, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func listKeys(t *testing.T, c *device.Conn) []keystore.Key {
	t.Helper()
	keys, err := keystore.List(c.Device)
	if err != nil {
		t.Fatal(err)
	}
	for i := range keys {
		keys[i].PRKD, keys[i].Cert, keys[i].PublicKey = nil, nil, nil
	}
	return keys
}

func TestImport(t *testing.T) {
	dkek := randomDKEK(t)
	c := simWithDKEK(t, dkek)
	for i, tc := range []struct {
		file, want string
		signed     bool
	}{
		{"rsa2048-pkcs8.pem", "RSA 2048", true},
		{"ec-prime256v1-sec1.pem", "EC secp256r1", true},
		{"ec-secp256k1-pkcs8.der", "EC secp256k1", true},
		{"ec-brainpoolP256r1-sec1.pem", "EC brainpoolP256r1", true},
		{"ec-secp521r1-pkcs8.pem", "EC secp521r1", true},
		{"aes256.bin", "AES 256", false},
	} {
		k := parseFile(t, tc.file)
		res, err := Import(c, k, dkek, ImportOptions{Name: tc.file, Label: tc.file, Ref: -1, NoExport: i == 1, PIN: testPIN, Rand: rand.Reader})
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if res.Ref != i+1 || res.Key != tc.want || res.PublicKeyMatches != tc.signed || res.SignatureVerified != tc.signed || res.Exportable != (i != 1) {
			t.Errorf("%s: got %+v", tc.file, res)
		}
	}
	keys := listKeys(t, c)
	if len(keys) != 6 {
		t.Fatalf("list-keys: %d keys, want 6", len(keys))
	}
	for i, k := range keys {
		if k.Ref != i+1 || k.Exportable != (i != 1) || k.Label == "" {
			t.Errorf("key %d: %+v", i+1, k)
		}
	}
}

func TestImportRefusals(t *testing.T) {
	dkek := randomDKEK(t)
	c := simWithDKEK(t, dkek)
	k := parseFile(t, "ec-prime256v1-pkcs8.pem")
	if _, err := Import(c, k, dkek, ImportOptions{Name: "k", Label: "taken", ID: []byte{1}, Ref: 5, PIN: testPIN, Rand: rand.Reader}); err != nil {
		t.Fatal(err)
	}
	before := listKeys(t, c)
	other := parseFile(t, "ec-secp256k1-sec1.pem")
	for _, tc := range []struct {
		name string
		dkek []byte
		o    ImportOptions
		is   error
		dup  bool
	}{
		{"wrong DKEK", randomDKEK(t), ImportOptions{Label: "other", ID: []byte{2}, Ref: -1}, ErrWrongDKEK, false},
		{"occupied", dkek, ImportOptions{Label: "other", ID: []byte{2}, Ref: 5}, ErrOccupied, false},
		{"force without proof", dkek, ImportOptions{Label: "other", ID: []byte{2}, Ref: 5, Replace: true}, keystore.ErrNoProof, false},
		{"duplicate label", dkek, ImportOptions{Label: "taken", ID: []byte{2}, Ref: -1}, nil, true},
		{"duplicate ID", dkek, ImportOptions{Label: "other", ID: []byte{1}, Ref: -1}, nil, true},
	} {
		tc.o.PIN, tc.o.Rand, tc.o.Name = testPIN, rand.Reader, "k"
		_, err := Import(c, other, tc.dkek, tc.o)
		var de *keystore.DuplicateError
		switch {
		case err == nil:
			t.Errorf("%s: imported", tc.name)
		case tc.is != nil && !errors.Is(err, tc.is):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		case tc.dup && !errors.As(err, &de):
			t.Errorf("%s: %v, want a DuplicateError", tc.name, err)
		}
		if after := listKeys(t, c); !slices.EqualFunc(before, after, func(a, b keystore.Key) bool { return a.Ref == b.Ref && a.Label == b.Label && a.ID == b.ID }) {
			t.Errorf("%s: the device changed: %+v", tc.name, after)
		}
	}
	// The same key at the same reference again: nothing to do.
	res, err := Import(c, k, dkek, ImportOptions{Name: "k", Label: "again", ID: []byte{9}, Ref: 5, PIN: testPIN, Rand: rand.Reader})
	if err != nil || !res.AlreadyPresent || res.Label != "taken" {
		t.Errorf("the same key again: %+v, %v", res, err)
	}
	if after := listKeys(t, c); !slices.EqualFunc(before, after, func(a, b keystore.Key) bool { return a.Ref == b.Ref && a.Label == b.Label && a.ID == b.ID }) {
		t.Errorf("the same key again changed the device: %+v", after)
	}
	// --allow-duplicate takes the lowest free reference.
	res, err = Import(c, k, dkek, ImportOptions{Name: "k", Label: "taken", ID: []byte{1}, Ref: -1, AllowDuplicate: true, PIN: testPIN, Rand: rand.Reader})
	if err != nil || res.Ref != 1 {
		t.Fatalf("allow duplicate: %+v, %v", res, err)
	}
}

func TestSamePublicKey(t *testing.T) {
	rk := parseFile(t, "rsa2048-pkcs8.pem")
	ek := parseFile(t, "ec-secp256k1-sec1.pem")
	n := new(big.Int).SetBytes(rk.Wrap.N)
	e := new(big.Int).SetBytes(rk.Wrap.E)
	if !rk.SamePublicKey(&cvc.PublicKey{N: n, E: e}) {
		t.Error("RSA key does not match its own public key")
	}
	if rk.SamePublicKey(&cvc.PublicKey{N: new(big.Int).Add(n, big.NewInt(2)), E: e}) {
		t.Error("RSA key matches another modulus")
	}
	if rk.SamePublicKey(&cvc.PublicKey{N: n, E: big.NewInt(3)}) {
		t.Error("RSA key matches another exponent")
	}
	if rk.SamePublicKey(&cvc.PublicKey{Q: ek.Wrap.ECQ}) || ek.SamePublicKey(&cvc.PublicKey{N: n, E: e}) {
		t.Error("a key of one type matches one of another")
	}
	if !ek.SamePublicKey(&cvc.PublicKey{Q: bytes.Clone(ek.Wrap.ECQ)}) {
		t.Error("EC key does not match its own point")
	}
	q := bytes.Clone(ek.Wrap.ECQ)
	q[len(q)-1] ^= 1
	if ek.SamePublicKey(&cvc.PublicKey{Q: q}) {
		t.Error("EC key matches another point")
	}
	if parseFile(t, "aes256.bin").SamePublicKey(&cvc.PublicKey{}) {
		t.Error("an AES key matches a public key")
	}
}

func TestNoExportAlgorithms(t *testing.T) {
	for _, f := range []string{"rsa2048-pkcs8.pem", "ec-prime256v1-sec1.pem", "aes256.bin"} {
		algs := noExportAlgorithms(parseFile(t, f).Wrap.Type)
		if len(algs) == 0 || slices.Contains(algs, hsm.AlgWrap) {
			t.Errorf("%s: %X", f, algs)
		}
	}
}
