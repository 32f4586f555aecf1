package sim

// Tests of key generation, WRAP, UNWRAP and SIGN (keys.md sections 3-9),
// with the recorded wrap files, public keys and signatures of device A
// (testdata/pico-hsm/vectors) as ground truth.

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"fmt"
	"math/big"
	"os"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// TestDeviceFiles checks the device-authentication key's files after
// INITIALIZE: CE00 is the device's own CV request and 2F02 starts with it
// and continues with a self-signed certificate, all made with the
// emulator's secp256k1 key (d = 32 x BE, Q = 04 3359F523...; core.md 9.4).
func TestDeviceFiles(t *testing.T) {
	t.Parallel()
	d := initialized(t, 3)
	k1 := ecc.ByName("secp256k1")
	want, err := k1.PublicKey(bytes.Repeat([]byte{0xBE}, 32))
	if err != nil {
		t.Fatal(err)
	}
	ce00 := d.readAll(0xCE00)
	cv := parseCV(t, ce00)
	pub := ecPoint(t, cv.pub)
	if !bytes.Equal(pub, want) || !bytes.Equal(pub[:5], hx("04 33 59 F5 23")) {
		t.Fatalf("CE00 public key % X is not the emulator's device key", pub[:8])
	}
	if !bytes.Equal(cv.car, testCHR) || !bytes.Equal(cv.chr, testCHR) {
		t.Errorf("CE00 CAR %q CHR %q, want ESPICOHSMTR00001", cv.car, cv.chr)
	}
	if !bytes.Equal(cv.outerCAR, []byte{0x42, 0x00}) {
		t.Errorf("CE00 outer CAR % X, want 42 00 (empty at first init)", cv.outerCAR)
	}
	if a, _ := findTLV(cv.pub, 0x82); !bytes.Equal(a.val, []byte{0}) {
		t.Errorf("CE00 A = % X, want 00 for secp256k1", a.val)
	}
	checkCVSignatures(t, cv, pub)

	termca := d.readAll(0x2F02)
	if !bytes.HasPrefix(termca, ce00) {
		t.Fatalf("2F02 does not start with CE00")
	}
	cert, err := parseTLVs(termca[len(ce00):])
	if err != nil || len(cert) != 1 || cert[0].tag != 0x7F21 {
		t.Fatalf("2F02 after CE00 is not one 7F21 certificate: %v", err)
	}
	inner, err := parseTLVs(cert[0].val)
	if err != nil || len(inner) != 2 || inner[0].tag != 0x7F4E || inner[1].tag != 0x5F37 {
		t.Fatalf("certificate: %v %v", tags(inner), err)
	}
	if !verifyRaw(k1, want, inner[0].raw, inner[1].val) {
		t.Errorf("the device certificate in 2F02 is not self-signed by the device key")
	}
	if got := d.readAll(0xC400); !bytes.Equal(got, cat(hx("A0 38 30 0D 0C 0B"), []byte("ESPICOHSMTR"), hx("30 1B 04 14"), make([]byte, 20),
		hx("03 03 07 20 80 A1 0A 30 08 30 02 04 00 02 02 01 00"))) {
		t.Errorf("C400 % X is not the recorded device PRKD", got)
	}
	// The device key signs (keys.md 9: SIGN finds ref 0 in the static list).
	h := sha256.Sum256([]byte("device"))
	d.ok("VERIFY", verifyPIN(userPIN))
	der := d.ok("SIGN ref 0", sign(0, 0x70, h[:]))
	if !verifyDER(k1, want, h[:], der) {
		t.Errorf("signature by key reference 0 does not verify with the device key")
	}
}

// TestGenerateKeyPair covers GENERATE ASYMMETRIC KEY PAIR (00 46) for RSA
// and every supported curve: the CV request answered, its inner signature
// (the new key) and outer signature (the device key), the files written,
// and that the generated key signs.
func TestGenerateKeyPair(t *testing.T) {
	t.Parallel()
	type kcase struct {
		name  string
		curve string // "" for RSA
		bits  int
	}
	cases := []kcase{
		{"RSA-1024", "", 1024},
		{"RSA-2048", "", 2048},
		{"P-256", "secp256r1", 0},
		{"P-384", "secp384r1", 0},
		{"P-521", "secp521r1", 0},
		{"P-192", "secp192r1", 0},
		{"secp192k1", "secp192k1", 0},
		{"secp256k1", "secp256k1", 0},
		{"brainpoolP256r1", "brainpoolP256r1", 0},
		{"brainpoolP384r1", "brainpoolP384r1", 0},
		{"brainpoolP512r1", "brainpoolP512r1", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := loggedIn(t, 0)
			devPub := d.devicePub()
			var tmpl []byte
			var c *ecc.Curve
			if tc.curve == "" {
				tmpl = rsaTemplate(tc.bits)
			} else {
				c = ecc.ByName(tc.curve)
				if c == nil {
					t.Fatalf("no curve %s", tc.curve)
				}
				tmpl = ecTemplate(c)
			}
			resp := d.ok("GENERATE", genKeyPair(3, gakp(tmpl)))
			cv := parseCV(t, resp)
			if !bytes.Equal(cv.car, testCAR) || !bytes.Equal(cv.chr, testCHR) {
				t.Errorf("CAR %q CHR %q, want the request's", cv.car, cv.chr)
			}
			if !bytes.Equal(cv.outerCAR, t1(0x42, testCHR)) {
				t.Errorf("outer CAR % X, want 42 10 ESPICOHSMTR00001", cv.outerCAR)
			}
			checkCVSignatures(t, cv, devPub)
			if got := d.readAll(0xCE03); !bytes.Equal(got, resp) {
				t.Errorf("CE03 is not the answered request")
			}
			if got := d.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 03 C4 03")) {
				t.Errorf("LIST KEYS % X", got)
			}
			prkd := d.readAll(0xC403)
			msg := []byte("key generation test")
			if c == nil {
				pub := rsaPub(t, cv.pub)
				if pub.N.BitLen() != tc.bits || pub.E != 65537 {
					t.Errorf("RSA key of %d bits, e=%d", pub.N.BitLen(), pub.E)
				}
				if oid, _ := findTLV(cv.pub, 0x06); !bytes.Equal(oid.val, wrap.OIDRSA) {
					t.Errorf("RSA OID % X", oid.val)
				}
				// cvc.c asn1_build_prkd_generic (keys.md 8b)
				want := cat(hx("30 19 30 02 0C 00 30 07 04 01 33 03 02 02 74 A1 0A 30 08 30 02 04 00 02 02"), []byte{byte(tc.bits >> 8), byte(tc.bits)})
				if !bytes.Equal(prkd, want) {
					t.Errorf("C403 % X, want % X", prkd, want)
				}
				sig := d.ok("SIGN", sign(3, 0x20, pkcs1Block(tc.bits/8, msg)))
				h := sha256.Sum256(msg)
				if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
					t.Errorf("signature by the new key: %v", err)
				}
				return
			}
			fields := map[uint16][]byte{
				0x81: c.P.FillBytes(make([]byte, c.ByteLen())),
				// B at its minimal length (transcripts/differential/fw-p3.txt
				// [295] secp521r1, [456] secp256k1).
				0x83: c.B.Bytes(),
				0x84: c.Marshal(c.Gx, c.Gy),
				0x85: c.N.FillBytes(make([]byte, c.ScalarLen())),
				0x87: {byte(c.H)},
			}
			// A full length, or one zero byte when it is 0 (keys.md 5).
			if c.A.Sign() == 0 {
				fields[0x82] = []byte{0}
			} else {
				fields[0x82] = c.A.FillBytes(make([]byte, c.ByteLen()))
			}
			for tag, want := range fields {
				if got, ok := findTLV(cv.pub, tag); !ok || !bytes.Equal(got.val, want) {
					t.Errorf("7F49 tag %02X = % X, want % X", tag, got.val, want)
				}
			}
			q := ecPoint(t, cv.pub)
			x, y, err := c.Unmarshal(q)
			if err != nil || !c.IsOnCurve(x, y) {
				t.Errorf("public point not on %s: %v", c.Name, err)
			}
			if prkd[0] != 0xA0 || !bytes.Contains(prkd, hx("04 01 33 03 03 07 20 80")) {
				t.Errorf("C403 % X is not the firmware's EC PRKD for ref 3", prkd)
			}
			der := d.ok("SIGN", sign(3, 0x73, msg))
			h := sha256.Sum256(msg)
			if !verifyDER(c, q, h[:], der) {
				t.Errorf("ECDSA signature by the new key does not verify")
			}
		})
	}
}

// TestGenerateKeyPairRecorded sends the recorded requests of
// transcripts/other/12 and 13 and checks the recorded answer sizes and
// the firmware's PRKDs (FCP sizes 001B and 001C).
func TestGenerateKeyPairRecorded(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	rsaReq := hx("00 46 01 00 00 00 3A 5F 29 01 00 42 09 55 54 43 41 30 30 30 30 31 7F 49 15 06 0A 04 00 7F 00 07" +
		"02 02 02 01 02 82 03 01 00 01 02 02 08 00 5F 20 10 45 53 50 49 43 4F 48 53 4D 54 52 30 30 30 30 31 00 00")
	ecReq := hx("00 46 02 00 00 01 00 5F 29 01 00 42 09 55 54 43 41 30 30 30 30 31 7F 49 81 DA 06 0A 04 00 7F 00" +
		"07 02 02 02 02 03 81 20 FF FF FF FF 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 FF FF FF FF" +
		"FF FF FF FF FF FF FF FF 82 20 FF FF FF FF 00 00 00 01 00 00 00 00 00 00 00 00 00 00 00 00 FF FF" +
		"FF FF FF FF FF FF FF FF FF FC 83 20 5A C6 35 D8 AA 3A 93 E7 B3 EB BD 55 76 98 86 BC 65 1D 06 B0" +
		"CC 53 B0 F6 3B CE 3C 3E 27 D2 60 4B 84 41 04 6B 17 D1 F2 E1 2C 42 47 F8 BC E6 E5 63 A4 40 F2 77" +
		"03 7D 81 2D EB 33 A0 F4 A1 39 45 D8 98 C2 96 4F E3 42 E2 FE 1A 7F 9B 8E E7 EB 4A 7C 0F 9E 16 2B" +
		"CE 33 57 6B 31 5E CE CB B6 40 68 37 BF 51 F5 85 20 FF FF FF FF 00 00 00 00 FF FF FF FF FF FF FF" +
		"FF BC E6 FA AD A7 17 9E 84 F3 B9 CA C2 FC 63 25 51 87 01 01 5F 20 10 45 53 50 49 43 4F 48 53 4D" +
		"54 52 30 30 30 30 31 00 00")
	if r := d.ok("RSA-2048", rsaReq); len(r) != 676 || !bytes.HasPrefix(r, hx("67 82 02 A0 7F 21 82 02 46 7F 4E 82 01 3C")) {
		t.Errorf("RSA-2048 answer %d bytes % X..., recorded 676 bytes 67 82 02 A0", len(r), trunc(r)[:8])
	}
	if r := d.ok("EC-256", ecReq); len(r) != 490 || !bytes.HasPrefix(r, hx("67 82 01 E6 7F 21 82 01 8C 7F 4E 82 01 44")) {
		t.Errorf("EC-256 answer %d bytes % X..., recorded 490 bytes 67 82 01 E6", len(r), trunc(r)[:8])
	}
	if got := d.readAll(0xC401); !bytes.Equal(got, hx("30 19 30 02 0C 00 30 07 04 01 31 03 02 02 74 A1 0A 30 08 30 02 04 00 02 02 08 00")) {
		t.Errorf("C401 % X", got)
	}
	if got := d.readAll(0xC402); !bytes.Equal(got, hx("A0 1A 30 02 0C 00 30 08 04 01 32 03 03 07 20 80 A1 0A 30 08 30 02 04 00 02 02 01 00")) {
		t.Errorf("C402 % X", got)
	}
	for f, n := range map[uint16]int{0xCE01: 676, 0xCE02: 490, 0xC401: 27, 0xC402: 28} {
		if got := d.fileSize(f); got != n {
			t.Errorf("%04X is %d bytes, recorded %d", f, got, n)
		}
	}
}

// TestGenerateKeyPairErrors covers the failures of 00 46 (keys.md 5).
func TestGenerateKeyPairErrors(t *testing.T) {
	t.Parallel()
	p256 := ecc.ByName("secp256r1")
	// secp224r1 is not supported by the firmware (keys.md 5).
	p224 := hx("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001")
	badCurve := t2(0x7F49, cat(t1(0x06, wrap.OIDEC), t1(0x81, p224), t1(0x82, make([]byte, 28))))
	noPrime := t2(0x7F49, cat(t1(0x06, wrap.OIDEC), t1(0x82, p256.A.FillBytes(make([]byte, 32)))))
	noTemplate := cat(t2(0x5F29, []byte{0}), t1(0x42, testCAR), t2(0x5F20, testCHR))
	li := func(t *testing.T) *dev { return loggedIn(t, 0) }
	runScenarios(t, []scenario{
		{"no login answers 6982", func(t *testing.T) *dev { return initialized(t, 0) }, []call{
			{"EC", genKeyPair(1, gakp(ecTemplate(p256))), apdu.SWSecurityStatus, nil},
			{"nothing written", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		{"missing or empty 7F49 answers 6700", li, []call{
			{"no 7F49", genKeyPair(1, noTemplate), apdu.SWWrongLength, nil},
			{"empty 7F49", genKeyPair(1, gakp(t2(0x7F49, nil))), apdu.SWWrongLength, nil},
			{"no data", genKeyPair(1, nil), apdu.SWWrongLength, nil},
			{"nothing written", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		{"EC without the prime answers 6700", li, []call{
			{"no 81", genKeyPair(1, gakp(noPrime)), apdu.SWWrongLength, nil},
		}},
		{"unknown prime answers 6A81", li, []call{
			{"secp224r1", genKeyPair(1, gakp(badCurve)), apdu.SWFuncNotSupported, nil},
			{"nothing written", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		// keys.md 5: any other OID generates nothing, writes an empty CE
		// file and answers 9000 without data.
		{"another OID generates nothing", li, []call{
			{"OID of AES", genKeyPair(4, gakp(t2(0x7F49, t1(0x06, wrap.OIDAES)))), apdu.SWOK, none()},
			{"no key", selectFID(0xCC04), apdu.SWFileNotFound, nil},
			{"empty CE04", selectFID(0xCE04), apdu.SWOK, fcpEF(0xCE04, 0, 0x01)},
		}},
	})

	t.Run("an occupied reference is overwritten", func(t *testing.T) {
		d := loggedIn(t, 0)
		first := d.genEC(1, "secp256r1")
		pub := d.genRSA(1, 1024)
		if got := d.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 01 C4 01")) {
			t.Errorf("LIST KEYS % X", got)
		}
		d.expect("ECDSA with the old key's algorithm", sign(1, 0x73, []byte("m")), apdu.SWExecError)
		sig := d.ok("RSA raw", sign(1, 0x20, pkcs1Block(128, []byte("m"))))
		h := sha256.Sum256([]byte("m"))
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
			t.Errorf("the new key does not sign: %v", err)
		}
		if len(first) != 65 {
			t.Errorf("first key's point is %d bytes", len(first))
		}
	})
}

// TestGenerateAESKey covers GENERATE SYMMETRIC KEY (80 48): the size from
// P2, the firmware's PRKD, no CE file, metadata, and the login check
// (keys.md 6). The key material is checked through WRAP.
func TestGenerateAESKey(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		p2   byte
		size int
	}{{0xB0, 16}, {0xB1, 24}, {0xB2, 32}, {0x00, 32}, {0xB3, 32}} {
		t.Run(fmt.Sprintf("P2=%02X", c.p2), func(t *testing.T) {
			t.Parallel()
			d := withDKEK(t, share1)
			d.expect("GENERATE", genAES(3, c.p2, nil), apdu.SWOK)
			_, bl := d.wrapped(3)
			k, err := bl.Open(share1)
			if err != nil {
				t.Fatalf("blob: %v", err)
			}
			if k.Type != wrap.TypeAES || len(k.Secret) != c.size {
				t.Errorf("wrapped key type %v of %d bytes, want AES of %d", k.Type, len(k.Secret), c.size)
			}
			if !bytes.Equal(bl.AlgorithmOID, wrap.OIDAES) {
				t.Errorf("blob OID % X", bl.AlgorithmOID)
			}
			bits := 8 * c.size
			bitsTLV := []byte{0x02, 0x02, byte(bits >> 8), byte(bits)}
			if bits < 256 {
				bitsTLV = []byte{0x02, 0x02, 0x00, byte(bits)}
			}
			want := cat(hx("A8 1E 30 02 0C 00 30 08 04 01 33 03 03 07 C0 10 A0 06 30 04"), bitsTLV, hx("A1 06 30 04 30 02 04 00"))
			if got := d.readAll(0xC403); !bytes.Equal(got, want) {
				t.Errorf("C403 % X, want % X", got, want)
			}
			if n := d.fileSize(0xCE03); n != -1 {
				t.Errorf("AES key generation wrote CE03")
			}
		})
	}
	t.Run("two keys differ", func(t *testing.T) {
		d := withDKEK(t, share1)
		d.ok("AES 1", genAES(1, 0xB2, nil))
		d.ok("AES 2", genAES(2, 0xB2, nil))
		_, b1 := d.wrapped(1)
		_, b2 := d.wrapped(2)
		k1, _ := b1.Open(share1)
		k2, _ := b2.Open(share1)
		if k1 == nil || k2 == nil || bytes.Equal(k1.Secret, k2.Secret) {
			t.Errorf("two generated AES keys are equal or unreadable")
		}
	})
	runScenarios(t, []scenario{
		{"no login answers 6982", func(t *testing.T) *dev { return initialized(t, 0) }, []call{
			{"GENERATE", genAES(1, 0xB2, nil), apdu.SWSecurityStatus, nil},
			{"nothing", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		{"allowed algorithms from tag 91", func(t *testing.T) *dev { return loggedIn(t, 0) }, []call{
			{"GENERATE with 91 = CMAC only", genAES(1, 0xB2, t1(0x91, []byte{0x18})), apdu.SWOK, none()},
			{"WRAP refused", wrapKey(1), apdu.SWConditionsNotSatisfied, nil},
			{"listed", listKeys(), apdu.SWOK, hx("C4 00 CC 00 CC 01 C4 01")},
		}},
	})
}

// TestWrapKey covers WRAP KEY (80 72 ref 92): the checks in the firmware's
// order and the blob (keys.md 2 and 3; transcripts/19, 20, errors/p05).
func TestWrapKey(t *testing.T) {
	t.Parallel()
	withKeys := func(t *testing.T) *dev {
		d := withDKEK(t, share1, share2, share3)
		d.genEC(2, "secp256r1")
		d.genEC(3, "secp256r1", t1(0x91, []byte{0x73}))
		d.genEC(4, "secp256r1", t1(0x91, []byte{0x73, 0x92}))
		return d
	}
	runScenarios(t, []scenario{
		{"P2 other than 92 answers 6B00, before the login check", func(t *testing.T) *dev { return initialized(t, 3) }, []call{
			{"P2=93", enc(0x80, 0x72, 0x02, 0x93, nil, 65536), apdu.SWWrongP1P2Plain, nil},
			{"P2=00", enc(0x80, 0x72, 0x02, 0x00, nil, 65536), apdu.SWWrongP1P2Plain, nil},
		}},
		{"no login answers 6982", func(t *testing.T) *dev {
			d := withKeys(t)
			d.ok("SELECT", selectAID())
			return d
		}, []call{
			{"WRAP 2", wrapKey(2), apdu.SWSecurityStatus, nil},
			{"WRAP missing 5", wrapKey(5), apdu.SWSecurityStatus, nil},
			// transcripts/errors/p06: a wrong PIN never logs in.
			{"wrong PIN", verifyPIN([]byte("111111")), apdu.SWVerifyFailed | 2, nil},
			{"WRAP 2 after it", wrapKey(2), apdu.SWSecurityStatus, nil},
		}},
		// transcripts/errors/p05: 80 72 05 92 00 00 00 -> 6A82
		{"empty reference answers 6A82", withKeys, []call{
			{"recorded", hx("80 72 05 92 00 00 00"), apdu.SWFileNotFound, nil},
			{"ref 0 (device key)", wrapKey(0), apdu.SWFileNotFound, nil},
			{"ref FF", wrapKey(0xFF), apdu.SWFileNotFound, nil},
		}},
		{"no DKEK answers 6A88", func(t *testing.T) *dev {
			d := loggedIn(t, -1)
			d.genEC(2, "secp256r1")
			return d
		}, []call{
			{"WRAP", wrapKey(2), apdu.SWReferenceNotFound, nil},
			{"missing key still 6A82 first", wrapKey(5), apdu.SWFileNotFound, nil},
		}},
		{"shares outstanding answer 6A88", func(t *testing.T) *dev {
			d := initialized(t, 3)
			d.ok("share 1", importShare(share1))
			d.ok("VERIFY", verifyPIN(userPIN))
			d.genEC(2, "secp256r1", t1(0x91, []byte{0x73}))
			d.genEC(3, "secp256r1")
			return d
		}, []call{
			{"WRAP not allowed key: domain checked first", wrapKey(2), apdu.SWReferenceNotFound, nil},
			{"WRAP", wrapKey(3), apdu.SWReferenceNotFound, nil},
			{"share 2", importShare(share2), apdu.SWOK, nil},
			{"WRAP still", wrapKey(3), apdu.SWReferenceNotFound, nil},
			{"share 3", importShare(share3), apdu.SWOK, cat([]byte{3, 0}, kcvA)},
			{"WRAP now", wrapKey(3), apdu.SWOK, nil},
		}},
		{"allowed list without 92 answers 6985", withKeys, []call{
			{"WRAP 3", wrapKey(3), apdu.SWConditionsNotSatisfied, nil},
			{"WRAP 4 (92 listed)", wrapKey(4), apdu.SWOK, nil},
			{"WRAP 2 (no list)", wrapKey(2), apdu.SWOK, nil},
		}},
		{"missing PRKD answers 6A82", withKeys, []call{
			{"DELETE C402", deleteFID(0xC402), apdu.SWOK, nil},
			{"WRAP 2", wrapKey(2), apdu.SWFileNotFound, nil},
		}},
	})

	t.Run("blobs open under the DKEK and hold the key", func(t *testing.T) {
		t.Parallel()
		d := withDKEK(t, share1, share2, share3)
		d.genEC(2, "secp256r1")
		devRSA := d.genRSA(1, 1024, t1(0x91, []byte{0x20, 0x92}))
		cases := []struct {
			ref     byte
			curve   string
			allowed []byte
		}{
			{1, "", []byte{0x20, 0x92}},
			{2, "secp256r1", nil},
			{5, "secp256k1", nil},
			{6, "brainpoolP256r1", nil},
			{7, "secp384r1", nil},
			{8, "secp521r1", []byte{0x92, 0x73, 0x70}},
		}
		pubs := map[byte][]byte{}
		for _, c := range cases {
			if c.ref > 2 {
				var meta [][]byte
				if c.allowed != nil {
					meta = append(meta, t1(0x91, c.allowed))
				}
				pubs[c.ref] = d.genEC(c.ref, c.curve, meta...)
			}
		}
		pubs[2] = ecPoint(t, parseCV(t, d.readAll(0xCE02)).pub)
		for _, c := range cases {
			raw, bl := d.wrapped(c.ref)
			if !bytes.Equal(bl.KCV[:], kcvA) {
				t.Errorf("ref %d: blob KCV %X, want %X", c.ref, bl.KCV, kcvA)
			}
			if !bytes.Equal(bl.Allowed, c.allowed) {
				t.Errorf("ref %d: allowed field % X, want % X", c.ref, bl.Allowed, c.allowed)
			}
			if len(bl.AccessConditions) != 0 || len(bl.KeyOID) != 0 {
				t.Errorf("ref %d: access conditions or key OID not empty", c.ref)
			}
			k, err := bl.Open(dkekA)
			if err != nil {
				t.Fatalf("ref %d: blob does not open under DKEK A: %v", c.ref, err)
			}
			if c.curve == "" {
				if bl.Type != wrap.TypeRSA || !bytes.Equal(bl.AlgorithmOID, wrap.OIDRSA) {
					t.Errorf("RSA blob type %v OID % X", bl.Type, bl.AlgorithmOID)
				}
				n := new(big.Int).SetBytes(k.N)
				if n.Cmp(devRSA.N) != 0 || !bytes.Equal(k.E, []byte{1, 0, 1}) || k.Bits != 1024 {
					t.Errorf("RSA blob N/E/size do not match the generated key")
				}
				// D must invert E: m^(e*d) = m mod n.
				m := big.NewInt(0x1234567)
				s := new(big.Int).Exp(m, new(big.Int).SetBytes(k.D), n)
				if new(big.Int).Exp(s, big.NewInt(65537), n).Cmp(m) != 0 {
					t.Errorf("RSA blob D does not match E")
				}
				continue
			}
			cv := ecc.ByName(c.curve)
			if bl.Type != wrap.TypeEC || !bytes.Equal(bl.AlgorithmOID, wrap.OIDEC) {
				t.Errorf("%s blob type %v OID % X", c.curve, bl.Type, bl.AlgorithmOID)
			}
			if k.Bits != 8*cv.ByteLen() || !bytes.Equal(k.ECP, cv.P.Bytes()) || !bytes.Equal(k.ECN, cv.N.Bytes()) ||
				!bytes.Equal(k.B, cv.B.Bytes()) || !bytes.Equal(k.G, cv.Marshal(cv.Gx, cv.Gy)) {
				t.Errorf("%s blob domain parameters wrong", c.curve)
			}
			// keys.md 2: A is empty where mbedtls leaves it unset (a = -3
			// or 0), the minimal bytes otherwise.
			wantA := cv.A.Bytes()
			if cv.A.Sign() == 0 || new(big.Int).Add(cv.A, big.NewInt(3)).Cmp(cv.P) == 0 {
				wantA = nil
			}
			if !bytes.Equal(k.A, wantA) {
				t.Errorf("%s blob A % X, want % X", c.curve, k.A, wantA)
			}
			if !bytes.Equal(k.ECQ, pubs[c.ref]) {
				t.Errorf("%s blob Q is not the generated public key", c.curve)
			}
			if q, err := cv.PublicKey(new(big.Int).SetBytes(k.D).FillBytes(make([]byte, cv.ScalarLen()))); err != nil || !bytes.Equal(q, k.ECQ) {
				t.Errorf("%s blob d·G != Q", c.curve)
			}
			if c.curve == "secp256r1" && len(raw) != 331 {
				t.Errorf("P-256 blob is %d bytes; recorded 331 (vectors/wrap-key-ec256-ref2.bin)", len(raw))
			}
		}
		// Each WRAP draws fresh random bytes: two blobs differ.
		a, _ := d.wrapped(2)
		b, _ := d.wrapped(2)
		if bytes.Equal(a, b) {
			t.Errorf("two wraps of one key are identical")
		}
	})
}

// TestUnwrapKey covers UNWRAP KEY (80 74 ref 93) (keys.md 4;
// transcripts/21, 35, 36, errors/p09).
func TestUnwrapKey(t *testing.T) {
	t.Parallel()
	// Device A makes the keys; device B has the same DKEK.
	a := withDKEK(t, share1, share2, share3)
	aRSA := a.genRSA(1, 1024)
	aEC := a.genEC(2, "secp256r1")
	a.ok("AES", genAES(3, 0xB2, nil))
	a.genEC(4, "secp256r1", t1(0x91, []byte{0x73, 0x92}))
	rsaBlob, _ := a.wrapped(1)
	ecBlob, _ := a.wrapped(2)
	aesBlob, aesBl := a.wrapped(3)
	allowBlob, _ := a.wrapped(4)
	msg := []byte("restore check")

	t.Run("RSA restores and signs identically", func(t *testing.T) {
		b := withDKEK(t, share1, share2, share3)
		b.expect("UNWRAP", unwrapKey(1, rsaBlob), apdu.SWOK)
		block := pkcs1Block(128, msg)
		sa := a.ok("SIGN on A", sign(1, 0x20, block))
		sb := b.ok("SIGN on B", sign(1, 0x20, block))
		if !bytes.Equal(sa, sb) {
			t.Errorf("restored RSA key signs differently")
		}
		h := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(aRSA, crypto.SHA256, h[:], sb); err != nil {
			t.Errorf("B's signature does not verify with A's key: %v", err)
		}
		cv := parseCV(t, b.readAll(0xCE01))
		if got := rsaPub(t, cv.pub); got.N.Cmp(aRSA.N) != 0 {
			t.Errorf("CE01 on B does not carry the restored key")
		}
		// keys.md 4: the firmware's request after unwrap names the device
		// as CAR and CHR.
		if !bytes.Equal(cv.car, testCHR) || !bytes.Equal(cv.chr, testCHR) {
			t.Errorf("CE01 CAR %q CHR %q, want the device's name", cv.car, cv.chr)
		}
		checkCVSignatures(t, cv, b.devicePub())
		if got := b.readAll(0xC401); !bytes.Equal(got, hx("30 19 30 02 0C 00 30 07 04 01 31 03 02 02 74 A1 0A 30 08 30 02 04 00 02 02 04 00")) {
			t.Errorf("C401 % X is not the firmware's PRKD", got)
		}
		if got := b.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 01 C4 01")) {
			t.Errorf("LIST KEYS % X", got)
		}
	})

	t.Run("EC restores with the same public key", func(t *testing.T) {
		b := withDKEK(t, share1, share2, share3)
		b.expect("UNWRAP", unwrapKey(7, ecBlob), apdu.SWOK)
		cv := parseCV(t, b.readAll(0xCE07))
		if !bytes.Equal(ecPoint(t, cv.pub), aEC) {
			t.Errorf("restored EC key has another public key")
		}
		checkCVSignatures(t, cv, b.devicePub())
		der := b.ok("SIGN", sign(7, 0x73, msg))
		h := sha256.Sum256(msg)
		if !verifyDER(ecc.ByName("secp256r1"), aEC, h[:], der) {
			t.Errorf("B's ECDSA signature does not verify with A's key")
		}
	})

	t.Run("AES restores the same secret and writes no CE file", func(t *testing.T) {
		b := withDKEK(t, share1, share2, share3)
		b.expect("UNWRAP", unwrapKey(3, aesBlob), apdu.SWOK)
		if n := b.fileSize(0xCE03); n != -1 {
			t.Errorf("UNWRAP of an AES key wrote CE03")
		}
		_, again := b.wrapped(3)
		k1, err1 := aesBl.Open(dkekA)
		k2, err2 := again.Open(dkekA)
		if err1 != nil || err2 != nil || !bytes.Equal(k1.Secret, k2.Secret) {
			t.Errorf("restored AES key differs (%v %v)", err1, err2)
		}
	})

	t.Run("the allowed algorithms travel with the blob", func(t *testing.T) {
		b := withDKEK(t, share1, share2, share3)
		b.expect("UNWRAP", unwrapKey(4, allowBlob), apdu.SWOK)
		h := sha256.Sum256(msg)
		b.expect("ECDSA raw hash not allowed", sign(4, 0x70, h[:]), apdu.SWConditionsNotSatisfied)
		b.expect("ECDSA SHA-256 allowed", sign(4, 0x73, msg), apdu.SWOK)
		_, bl := b.wrapped(4)
		if !bytes.Equal(bl.Allowed, []byte{0x73, 0x92}) {
			t.Errorf("re-wrapped allowed list % X", bl.Allowed)
		}
	})

	t.Run("an occupied reference is overwritten", func(t *testing.T) {
		b := withDKEK(t, share1, share2, share3)
		b.genEC(1, "secp384r1")
		b.expect("UNWRAP RSA into 1", unwrapKey(1, rsaBlob), apdu.SWOK)
		if got := b.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 01 C4 01")) {
			t.Errorf("LIST KEYS % X", got)
		}
		sig := b.ok("SIGN", sign(1, 0x20, pkcs1Block(128, msg)))
		h := sha256.Sum256(msg)
		if err := rsa.VerifyPKCS1v15(aRSA, crypto.SHA256, h[:], sig); err != nil {
			t.Errorf("ref 1 does not hold the unwrapped key: %v", err)
		}
		if got := rsaPub(t, parseCV(t, b.readAll(0xCE01)).pub); got.N.Cmp(aRSA.N) != 0 {
			t.Errorf("CE01 still describes the old key")
		}
	})

	tamper := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		return c
	}
	unknownType := bytes.Clone(ecBlob)
	unknownType[8] = 0x07
	withB := func(t *testing.T) *dev { return withDKEK(t, share1, share2, share3) }
	runScenarios(t, []scenario{
		// transcripts/errors/p09
		{"blob under another DKEK answers 6400", func(t *testing.T) *dev { return withDKEK(t, shareNofM) }, []call{
			{"UNWRAP", unwrapKey(1, rsaBlob), apdu.SWExecError, nil},
			{"nothing written", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		{"tampered blobs answer 6400", withB, []call{
			{"encrypted part", unwrapKey(1, tamper(ecBlob, 40)), apdu.SWExecError, nil},
			{"CMAC", unwrapKey(1, tamper(ecBlob, len(ecBlob)-1)), apdu.SWExecError, nil},
			{"KCV", unwrapKey(1, tamper(ecBlob, 0)), apdu.SWExecError, nil},
			{"algorithm OID", unwrapKey(1, tamper(ecBlob, 12)), apdu.SWExecError, nil},
			{"truncated", unwrapKey(1, ecBlob[:len(ecBlob)-16]), apdu.SWExecError, nil},
			{"nothing written", selectFID(0xCC01), apdu.SWFileNotFound, nil},
		}},
		{"unknown key type answers 6984", withB, []call{
			{"type 07", unwrapKey(1, unknownType), apdu.SWDataInvalid, nil},
		}},
		{"type is checked before the DKEK", func(t *testing.T) *dev { return loggedIn(t, -1) }, []call{
			{"type 07, no DKEK", unwrapKey(1, unknownType), apdu.SWDataInvalid, nil},
			{"valid blob, no DKEK", unwrapKey(1, ecBlob), apdu.SWExecError, nil},
		}},
		{"no login answers 6982", func(t *testing.T) *dev {
			d := withB(t)
			d.ok("SELECT", selectAID())
			return d
		}, []call{
			{"UNWRAP", unwrapKey(1, ecBlob), apdu.SWSecurityStatus, nil},
			{"unknown type", unwrapKey(1, unknownType), apdu.SWSecurityStatus, nil},
		}},
		{"P2 other than 93 answers 6B00 first", func(t *testing.T) *dev { return initialized(t, 3) }, []call{
			{"P2=92", enc(0x80, 0x74, 0x01, 0x92, ecBlob, 0), apdu.SWWrongP1P2Plain, nil},
		}},
		{"shares outstanding answer 6400", func(t *testing.T) *dev {
			d := initialized(t, 3)
			d.ok("share 1", importShare(share1))
			d.ok("share 2", importShare(share2))
			d.ok("VERIFY", verifyPIN(userPIN))
			return d
		}, []call{
			{"UNWRAP", unwrapKey(1, ecBlob), apdu.SWExecError, nil},
			{"share 3", importShare(share3), apdu.SWOK, nil},
			{"UNWRAP now", unwrapKey(1, ecBlob), apdu.SWOK, none()},
		}},
	})
}

// TestUnwrapRecordedBlobs restores the key blobs sc-hsm-tool wrote on
// device A (vectors/wrap-key-*.bin) into a simulated device with DKEK A, as
// device B did (transcripts/35, 36, other/38, 40): the RSA key reproduces
// the recorded signature byte for byte, the EC key's signature verifies
// with the recorded public key, and the files have the recorded sizes.
func TestUnwrapRecordedBlobs(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(repoRoot + "testdata/pico-hsm/vectors/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsaFile, err := wrap.ParseFile(read("wrap-key-rsa2048-ref1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	ecFile, err := wrap.ParseFile(read("wrap-key-ec256-ref2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	k1any, err := x509.ParsePKIXPublicKey(read("k1-pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	k1 := k1any.(*rsa.PublicKey)
	k2der := read("k2-pub.der")
	k2 := k2der[len(k2der)-65:]
	// keys.md 9: the recorded signatures are over this message (msg.txt
	// in vectors/ is stale).
	msg := []byte("harness test message for restore check\n")
	h := sha256.Sum256(msg)

	d := withDKEK(t, share1, share2, share3)
	d.expect("UNWRAP RSA into 1", unwrapKey(1, rsaFile.Blob), apdu.SWOK)
	d.expect("UNWRAP EC into 2", unwrapKey(2, ecFile.Blob), apdu.SWOK)
	d.expect("UNWRAP RSA into 10", unwrapKey(10, rsaFile.Blob), apdu.SWOK)

	// transcripts/21 [7] and 35/36: the firmware's PRKD and request sizes.
	for f, n := range map[uint16]int{0xC401: 27, 0xC402: 28, 0xC40A: 28, 0xCE01: 683, 0xCE02: 497, 0xCE0A: 683} {
		if got := d.fileSize(f); got != n {
			t.Errorf("%04X is %d bytes after UNWRAP; recorded %d", f, got, n)
		}
	}
	if got := d.ok("LIST", listKeys()); !bytes.Equal(got, hx("C4 00 CC 00 CC 01 CC 02 CC 0A C4 01 C4 02 C4 0A")) {
		t.Errorf("LIST KEYS % X; recorded C4 00 CC 00 CC 01 CC 02 CC 0A C4 01 C4 02 C4 0A (transcripts/errors/p01 [17])", got)
	}
	if got := rsaPub(t, parseCV(t, d.readAll(0xCE01)).pub); got.N.Cmp(k1.N) != 0 {
		t.Errorf("CE01 does not carry k1")
	}
	if got := ecPoint(t, parseCV(t, d.readAll(0xCE02)).pub); !bytes.Equal(got, k2) {
		t.Errorf("CE02 does not carry k2")
	}

	sigA := read("sig-A-k1.bin")
	if err := rsa.VerifyPKCS1v15(k1, crypto.SHA256, h[:], sigA); err != nil {
		t.Fatalf("recorded sig-A-k1.bin does not verify over the message: %v", err)
	}
	for _, ref := range []byte{1, 10} {
		got := d.ok("SIGN RSA raw", sign(ref, 0x20, pkcs1Block(256, msg)))
		if !bytes.Equal(got, sigA) {
			t.Errorf("ref %d: RSA raw signature differs from the recorded sig-A-k1.bin", ref)
		}
	}
	if got := d.ok("SIGN RSA SHA-256", sign(1, 0x33, msg)); !bytes.Equal(got, sigA) {
		t.Errorf("RSA PKCS#1 SHA-256 (33) signature differs from the recorded one")
	}
	der := d.ok("SIGN ECDSA SHA-256", sign(2, 0x73, msg))
	if !verifyDER(ecc.ByName("secp256r1"), k2, h[:], der) {
		t.Errorf("ECDSA signature does not verify with the recorded k2")
	}
	if !verifyDER(ecc.ByName("secp256r1"), k2, h[:], read("sig-B-k2.der")) {
		t.Errorf("recorded sig-B-k2.der does not verify (harness check)")
	}

	// Restoring the host's PRKD and request as sc-hsm-tool does
	// (transcripts/35): they replace the firmware's.
	d.ok("UPDATE C401", updateBin(0xC401, 0, rsaFile.PRKD))
	if got := d.readAll(0xC401); !bytes.Equal(got, rsaFile.PRKD) || len(got) != 39 {
		t.Errorf("C401 after restore: % X", got)
	}
	_, bl := d.wrapped(2)
	if k, err := bl.Open(dkekA); err != nil || !bytes.Equal(k.ECQ, k2) {
		t.Errorf("re-wrapping the restored EC key: %v", err)
	}
}

// TestSign covers SIGNATURE (80 68 ref alg) (keys.md 9): the algorithms,
// the DER answer of ECDSA, and the checks in the firmware's order.
func TestSign(t *testing.T) {
	t.Parallel()
	d := loggedIn(t, 0)
	rsaK := d.genRSA(1, 1024)
	ecK := d.genEC(2, "secp256r1")
	d.genEC(3, "secp256r1", t1(0x91, []byte{0x73}))
	k384 := d.genEC(4, "secp384r1")
	p256, p384 := ecc.ByName("secp256r1"), ecc.ByName("secp384r1")
	msg := []byte("the message")
	s1 := sha1.Sum(msg)
	s256 := sha256.Sum256(msg)
	s384 := sha512.Sum384(msg)
	s512 := sha512.Sum512(msg)

	rsaOK := func(h crypto.Hash, digest []byte) func([]byte) error {
		return func(sig []byte) error { return rsa.VerifyPKCS1v15(rsaK, h, digest, sig) }
	}
	pssOK := func(h crypto.Hash, digest []byte) func([]byte) error {
		return func(sig []byte) error {
			return rsa.VerifyPSS(rsaK, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
	}
	ecOK := func(c *ecc.Curve, pub, digest []byte) func([]byte) error {
		return func(der []byte) error {
			if !verifyDER(c, pub, digest, der) {
				return errBadSig
			}
			return nil
		}
	}
	cases := []struct {
		name   string
		ref    byte
		alg    byte
		data   []byte
		verify func([]byte) error
	}{
		{"RSA raw 20 with a PKCS#1 block", 1, 0x20, pkcs1Block(128, msg), rsaOK(crypto.SHA256, s256[:])},
		{"RSA 30 over a DigestInfo", 1, 0x30, cat(hx("3031300D060960864801650304020105000420"), s256[:]), rsaOK(crypto.SHA256, s256[:])},
		{"RSA 31 SHA-1", 1, 0x31, msg, rsaOK(crypto.SHA1, s1[:])},
		{"RSA 33 SHA-256", 1, 0x33, msg, rsaOK(crypto.SHA256, s256[:])},
		{"RSA 35 SHA-512", 1, 0x35, msg, rsaOK(crypto.SHA512, s512[:])},
		{"RSA-PSS 40 over a SHA-256 hash", 1, 0x40, s256[:], pssOK(crypto.SHA256, s256[:])},
		{"RSA-PSS 43 SHA-256", 1, 0x43, msg, pssOK(crypto.SHA256, s256[:])},
		{"ECDSA 70 over a hash", 2, 0x70, s256[:], ecOK(p256, ecK, s256[:])},
		{"ECDSA 71 SHA-1", 2, 0x71, msg, ecOK(p256, ecK, s1[:])},
		{"ECDSA 73 SHA-256 (pkcs11-tool)", 2, 0x73, msg, ecOK(p256, ecK, s256[:])},
		{"ECDSA 75 SHA-512", 2, 0x75, msg, ecOK(p256, ecK, s512[:])},
		{"ECDSA 73 with an allowed list naming it", 3, 0x73, msg, nil},
		{"ECDSA P-384 74 SHA-384", 4, 0x74, msg, ecOK(p384, k384, s384[:])},
	}
	for _, c := range cases {
		sig := d.ok(c.name, sign(c.ref, c.alg, c.data))
		if c.verify != nil {
			if err := c.verify(sig); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		if c.alg >= 0x70 && (len(sig) < 8 || sig[0] != 0x30) {
			t.Errorf("%s: ECDSA answer is not DER: % X", c.name, trunc(sig))
		}
	}
	// RSA raw is deterministic (transcripts/17 and 38 give equal bytes).
	a := d.ok("raw 1", sign(1, 0x20, pkcs1Block(128, msg)))
	b := d.ok("raw 2", sign(1, 0x20, pkcs1Block(128, msg)))
	if !bytes.Equal(a, b) || len(a) != 128 {
		t.Errorf("RSA raw signatures differ or have the wrong length")
	}

	runScenarios(t, []scenario{
		{"errors", func(*testing.T) *dev { return d }, []call{
			{"missing key 6A82", sign(9, 0x73, msg), apdu.SWFileNotFound, nil},
			{"missing key with an unknown algorithm still 6A82", sign(9, 0x99, msg), apdu.SWFileNotFound, nil},
			{"not in the allowed list 6985", sign(3, 0x70, s256[:]), apdu.SWConditionsNotSatisfied, nil},
			{"unknown algorithm not allowed: 6985 first", sign(3, 0x99, msg), apdu.SWConditionsNotSatisfied, nil},
			// cmd_signature.c loads the key as the algorithm's kind,
			// which fails: 6400.
			{"ECDSA with an RSA key 6400", sign(1, 0x73, msg), apdu.SWExecError, nil},
			{"RSA with an EC key 6400", sign(2, 0x20, make([]byte, 32)), apdu.SWExecError, nil},
			{"unknown algorithm 6A86", sign(2, 0x99, msg), apdu.SWWrongP1P2, nil},
			{"wrap algorithm is no signature 6A86", sign(2, 0x92, msg), apdu.SWWrongP1P2, nil},
			{"logout", selectAID(), apdu.SWOK, nil},
			{"no login 6982", sign(2, 0x73, msg), apdu.SWSecurityStatus, nil},
			{"no login and missing key: 6982 first", sign(9, 0x73, msg), apdu.SWSecurityStatus, nil},
		}},
	})
}

type sigError string

func (e sigError) Error() string { return string(e) }

const errBadSig = sigError("signature does not verify")
