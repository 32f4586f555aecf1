package sim

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
)

func decrypt(ref, alg byte, data []byte) []byte { return enc(0x80, 0x62, ref, alg, data, 65536) }
func cipherSym(ref, alg byte, data []byte) []byte {
	return enc(0x80, 0x78, ref, alg, data, 65536)
}

// TestDecrypt covers DECRYPT ASYM (80 62): RSA raw, PKCS#1 v1.5 and OAEP
// decryption, and ECDH, as pkcs11-tool --decrypt and --derive use them
// (transcripts/differential/fw-p3.txt [2374], [2500]).
func TestDecrypt(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	pub := d.genRSA(1, 1024)
	q := d.genEC(2, "secp256r1")
	d.genEC(3, "secp256r1", t1(0x91, []byte{algECDSA}))
	msg := []byte("hello differential\n")

	t.Run("RSA raw answers the padded block", func(t *testing.T) {
		ct, err := rsa.EncryptPKCS1v15(rand.Reader, pub, msg)
		if err != nil {
			t.Fatal(err)
		}
		pt := d.ok("DECRYPT 21", decrypt(1, 0x21, ct))
		if len(pt) != 128 || pt[0] != 0 || pt[1] != 2 || !bytes.HasSuffix(pt, append([]byte{0}, msg...)) {
			t.Errorf("raw decryption % X", pt)
		}
		if got := d.ok("DECRYPT 22", decrypt(1, 0x22, ct)); !bytes.Equal(got, msg) {
			t.Errorf("PKCS#1 decryption % X", got)
		}
		oaep, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, msg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.ok("DECRYPT 23", decrypt(1, 0x23, oaep)); !bytes.Equal(got, msg) {
			t.Errorf("OAEP decryption % X", got)
		}
		d.expect("PKCS#1 of an OAEP block", decrypt(1, 0x22, oaep), apdu.SWExecError)
		d.expect("input not below the modulus", decrypt(1, 0x21, bytes.Repeat([]byte{0xFF}, 128)), apdu.SWExecError)
		// Short data is padded with zeros after it.
		short := d.ok("short input", decrypt(1, 0x21, []byte{0x01}))
		m := new(big.Int).Lsh(big.NewInt(1), 127*8)
		if c := new(big.Int).Exp(new(big.Int).SetBytes(short), big.NewInt(int64(pub.E)), pub.N); c.Cmp(m) != 0 {
			t.Errorf("short input was not padded after the data")
		}
	})

	t.Run("ECDH answers 04 and the shared X", func(t *testing.T) {
		peer, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		simPub, err := ecdh.P256().NewPublicKey(q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := peer.ECDH(simPub)
		if err != nil {
			t.Fatal(err)
		}
		got := d.ok("ECDH", decrypt(2, 0x80, peer.PublicKey().Bytes()))
		if !bytes.Equal(got, append([]byte{0x04}, want...)) {
			t.Errorf("ECDH % X, want 04 % X", got, want)
		}
	})

	runScenarios(t, []scenario{
		{"errors", func(*testing.T) *dev { return d }, []call{
			{"ECDH point off the curve", decrypt(2, 0x80, append([]byte{4}, make([]byte, 64)...)), apdu.SWDataInvalid, nil},
			{"ECDH with an RSA key", decrypt(1, 0x80, q), apdu.SWDataInvalid, nil},
			{"RSA with an EC key", decrypt(2, 0x21, make([]byte, 32)), apdu.SWExecError, nil},
			{"XKEK", decrypt(2, 0x84, q), apdu.SWDataInvalid, nil},
			{"not allowed", decrypt(3, 0x80, q), apdu.SWConditionsNotSatisfied, nil},
			{"unknown algorithm", decrypt(2, 0x70, q), apdu.SWWrongP1P2Plain, nil},
			{"the device key is not found", decrypt(0, 0x80, q), apdu.SWFileNotFound, nil},
			{"missing key", decrypt(9, 0x21, q), apdu.SWFileNotFound, nil},
			{"logout", selectAID(), apdu.SWOK, nil},
			{"no login", decrypt(2, 0x80, q), apdu.SWSecurityStatus, nil},
		}},
		// Recorded: 80 62 00 00 on a factory-new device answers 6982.
		{"factory-new", factory, []call{
			{"no data", hx("80 62 00 00"), apdu.SWSecurityStatus, nil},
		}},
	})
}

// TestSignPSSDigestInfo covers RSA-PSS as OpenSC sends it: algorithm 40
// with a DigestInfo, whose hash is signed (fw-p3.txt [1614]).
func TestSignPSSDigestInfo(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	pub := d.genRSA(1, 1024)
	h := sha256.Sum256([]byte("m"))
	di := cat(hx("3031300D060960864801650304020105000420"), h[:])
	for _, tc := range []struct {
		name string
		data []byte
	}{{"DigestInfo", di}, {"bare SHA-256 hash", h[:]}} {
		sig := d.ok(tc.name, sign(1, algRSAPSS, tc.data))
		if err := rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// 43 hashes the data itself; 30 signs a DigestInfo with PKCS#1 v1.5.
	sig := d.ok("43", sign(1, 0x43, []byte("m")))
	if err := rsa.VerifyPSS(pub, crypto.SHA256, h[:], sig, nil); err != nil {
		t.Errorf("43: %v", err)
	}
	sig = d.ok("30", sign(1, 0x30, di))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		t.Errorf("30: %v", err)
	}
	d.expect("30 without a DigestInfo", sign(1, 0x30, h[:]), apdu.SWExecError)
	// Data that is no hash and no DigestInfo: the raw RSA operation.
	raw := d.ok("40 raw", sign(1, algRSAPSS, []byte{1, 2, 3}))
	m := new(big.Int).Exp(new(big.Int).SetBytes(raw), big.NewInt(int64(pub.E)), pub.N)
	if want := new(big.Int).SetBytes(append([]byte{1, 2, 3}, make([]byte, 125)...)); m.Cmp(want) != 0 {
		t.Errorf("40 on 3 bytes is not the raw operation on them padded after")
	}
	d.expect("BIP key (A0) never derived", sign(1, 0xA0, h[:]), apdu.SWConditionsNotSatisfied)
}

// TestCipherSym covers CIPHER SYM (80 78) with an AES key.
func TestCipherSym(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	d.ok("AES-128", genAES(1, 0xB0, nil))
	d.genEC(2, "secp256r1")
	k := d.st.Keys[1].Secret
	blk, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte("0123456789abcdef"), 2)
	ct := d.ok("CBC encrypt", cipherSym(1, 0x10, pt))
	want := make([]byte, len(pt))
	cipher.NewCBCEncrypter(blk, make([]byte, 16)).CryptBlocks(want, pt)
	if !bytes.Equal(ct, want) {
		t.Errorf("CBC % X, want % X", ct, want)
	}
	if got := d.ok("CBC decrypt", cipherSym(1, 0x11, ct)); !bytes.Equal(got, pt) {
		t.Errorf("CBC decrypt % X", got)
	}
	info := []byte("context")
	okm, err := hkdf.Key(sha256.New, d.mkekCrypt(k, true), nil, string(info), len(info))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.ok("derive", cipherSym(1, 0x99, info)); !bytes.Equal(got, okm) {
		t.Errorf("derive % X, want % X", got, okm)
	}
	runScenarios(t, []scenario{
		{"errors", func(*testing.T) *dev { return d }, []call{
			{"not whole blocks", cipherSym(1, 0x10, pt[:17]), apdu.SWWrongLength, nil},
			{"extended cipher", cipherSym(1, 0x51, pt), apdu.SWWrongData, nil},
			{"unknown algorithm", cipherSym(1, 0x12, pt), apdu.SWWrongP1P2Plain, nil},
			{"EC key for AES", cipherSym(2, 0x10, pt), apdu.SWExecError, nil},
			{"CMAC with an EC key", cipherSym(2, 0x18, pt), apdu.SWWrongData, nil},
			{"the device key is not found", cipherSym(0, 0x10, pt), apdu.SWFileNotFound, nil},
			{"logout", selectAID(), apdu.SWOK, nil},
			{"no login", cipherSym(1, 0x10, pt), apdu.SWSecurityStatus, nil},
		}},
		{"factory-new", factory, []call{
			{"recorded 80 78 00 00", hx("80 78 00 00"), apdu.SWSecurityStatus, nil},
		}},
	})
}

// TestCMAC checks AES-CMAC against RFC 4493 section 4.
func TestCMAC(t *testing.T) {
	blk, err := aes.NewCipher(hx("2b7e151628aed2a6abf7158809cf4f3c"))
	if err != nil {
		t.Fatal(err)
	}
	msg := hx("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710")
	for _, tc := range []struct {
		n    int
		want string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		if got := cmac(blk, msg[:tc.n]); !bytes.Equal(got, hx(tc.want)) {
			t.Errorf("CMAC of %d bytes % X, want %s", tc.n, got, tc.want)
		}
	}
}

// TestDeriveAsym covers DERIVE ASYM (80 76): the new private value is d
// plus the data, modulo the field prime, stored at P2.
func TestDeriveAsym(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	d.genEC(1, "secp256r1")
	c := ecc.ByName("secp256r1")
	a := []byte{0x01, 0x02, 0x03}
	d.ok("DERIVE", enc(0x80, 0x76, 1, 5, cat([]byte{algECDerive}, a), 0))
	nd := new(big.Int).Add(new(big.Int).SetBytes(d.st.Keys[1].D), new(big.Int).SetBytes(a))
	nd.Mod(nd, c.P)
	want, err := c.PublicKey(nd.FillBytes(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.PublicKey(5); !bytes.Equal(got, want) {
		t.Errorf("derived key % X, want % X", got, want)
	}
	if got := d.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 01 CC 05 C4 01 C4 05")) {
		t.Errorf("LIST KEYS % X", got)
	}
	d.genRSA(2, 1024)
	d.genEC(3, "secp256r1", t1(0x91, []byte{algECDSA}))
	runScenarios(t, []scenario{
		{"errors", func(*testing.T) *dev { return d }, []call{
			{"no data", enc(0x80, 0x76, 1, 5, nil, 0), apdu.SWWrongLength, nil},
			{"not 98", enc(0x80, 0x76, 1, 5, []byte{0x99, 1}, 0), apdu.SWWrongData, nil},
			{"RSA key", enc(0x80, 0x76, 2, 5, []byte{algECDerive, 1}, 0), apdu.SWExecError, nil},
			{"not allowed", enc(0x80, 0x76, 3, 5, []byte{algECDerive, 1}, 0), apdu.SWConditionsNotSatisfied, nil},
			{"missing key", enc(0x80, 0x76, 9, 5, []byte{algECDerive, 1}, 0), apdu.SWFileNotFound, nil},
		}},
		{"factory-new", factory, []call{
			{"recorded 80 76 00 00", hx("80 76 00 00"), apdu.SWSecurityStatus, nil},
		}},
	})
}

// TestAuthCommands covers the public key authentication, secure messaging,
// BIP/SLIP and extra commands, as recorded on a factory-new device
// (fw-p1.txt, the "risky:" steps) and as cmd_*.c answer otherwise.
func TestAuthCommands(t *testing.T) {
	t.Parallel()
	pka := func(t *testing.T) *dev {
		d := factory(t)
		d.ok("INITIALIZE with PKA 2 of 2", initialize(cat(initData(0), t1(0x93, []byte{2, 2}))))
		return d
	}
	cert := t2(0x7F21, t2(0x7F4E, cat(t2(0x5F29, []byte{0}), t2(0x5F20, []byte("PUKCHR00001")))))
	runScenarios(t, []scenario{
		{"factory-new, as recorded", factory, []call{
			{"EXTRAS", hx("80 64 00 00"), apdu.SWWrongP1P2, nil},
			{"EXTRAS P1=0A", hx("80 64 0A 00"), apdu.SWWrongP1P2, nil},
			{"PUK AUTH", hx("80 54 00 00"), apdu.SWWrongP1P2, nil},
			{"PUK AUTH with data", enc(0x80, 0x54, 0, 0, cert, 0), apdu.SWFileNotFound, nil},
			{"MSE", hx("00 22 41 81"), apdu.SWWrongP1P2, nil},
			{"PSO", hx("80 2A 9E 9A"), apdu.SWWrongP1P2, nil},
			{"EXTERNAL AUTHENTICATE", hx("00 82 00 00"), apdu.SWReferenceNotFound, nil},
			{"GENERAL AUTHENTICATE", hx("00 86 00 00"), apdu.SWOK, none()},
			{"BIP/SLIP", hx("80 4A 00 00"), apdu.SWOK, none()},
		}},
		{"PUK registration", pka, []call{
			{"status", hx("80 54 00 00"), apdu.SWOK, []byte{2, 2, 2, 0}},
			{"add without Le: the status waits", enc(0x80, 0x54, 0, 0, cert, 0), apdu.SWBytesRemaining | 4, none()},
			{"CHR of slot 0", hx("80 54 02 00"), apdu.SWOK, []byte("PUKCHR00001")},
			{"slot 1 empty", hx("80 54 02 01"), apdu.SWReferenceNotFound, nil},
			{"slot 2 past the end", hx("80 54 02 02"), apdu.SWWrongP1P2, nil},
			{"replace needs option 0008", enc(0x80, 0x54, 1, 0, cert, 0), apdu.SWConditionsNotSatisfied, nil},
			{"add with P2", enc(0x80, 0x54, 0, 1, cert, 0), apdu.SWWrongP1P2, nil},
			{"add", enc(0x80, 0x54, 0, 0, cert, 256), apdu.SWOK, []byte{2, 0, 2, 0}},
			{"full", enc(0x80, 0x54, 0, 0, cert, 0), apdu.SWFileFull, nil},
			{"MSE A4 selects the PUK", enc(0x00, 0x22, 0x81, 0xA4, t1(0x83, []byte("PUKCHR00001")), 0), apdu.SWOK, nil},
			{"EXTERNAL AUTHENTICATE without data", hx("00 82 00 00"), apdu.SWWrongLength, nil},
			{"without a challenge", enc(0x00, 0x82, 0, 0, []byte{1}, 0), apdu.SWConditionsNotSatisfied, nil},
			{"MSE A4 unknown CHR", enc(0x00, 0x22, 0x81, 0xA4, t1(0x83, []byte("NOBODY")), 0), apdu.SWReferenceNotFound, nil},
			{"logout", selectAID(), apdu.SWOK, nil},
			{"add without a session", enc(0x80, 0x54, 0, 0, cert, 0), apdu.SWSecurityStatus, nil},
		}},
		{"PSO needs a certificate selected", func(t *testing.T) *dev { return initialized(t, 0) }, []call{
			{"without data", enc(0x00, 0x2A, 0x00, 0xBE, nil, 0), apdu.SWWrongLength, nil},
			{"nothing selected", enc(0x00, 0x2A, 0x00, 0xBE, cert, 0), apdu.SWReferenceNotFound, nil},
			{"MSE B6 the device certificate", enc(0x00, 0x22, 0x81, 0xB6, t1(0x83, devName), 0), apdu.SWOK, nil},
			{"never verifies", enc(0x00, 0x2A, 0x00, 0xBE, cert, 0), apdu.SWConditionsNotSatisfied, nil},
		}},
		{"BIP/SLIP master nodes", func(t *testing.T) *dev { return loggedIn(t, 0) }, []call{
			{"P2 10", hx("80 4A 01 0A"), apdu.SWWrongP1P2, nil},
			{"derive without a master", enc(0x80, 0x4A, 0x03, 0x00, hx("02 01 00"), 0), apdu.SWExecError, nil},
			{"derive, malformed path", enc(0x80, 0x4A, 0x03, 0x00, hx("02 02 00 00"), 0), apdu.SWWrongData, nil},
			{"derive, no data", hx("80 4A 03 00"), apdu.SWWrongLength, nil},
			{"master", hx("80 4A 01 00"), apdu.SWOK, none()},
			{"logout", selectAID(), apdu.SWOK, nil},
			{"master without a session", hx("80 4A 02 01"), apdu.SWExecError, nil},
		}},
		{"GENERAL AUTHENTICATE chip authentication is not simulated", factory, []call{
			{"7C", enc(0x00, 0x86, 0, 0, hx("7C 02 80 00"), 0), apdu.SWExecError, nil},
			{"other P1", enc(0x00, 0x86, 1, 0, hx("7C 02 80 00"), 0), apdu.SWOK, none()},
		}},
	})
}
