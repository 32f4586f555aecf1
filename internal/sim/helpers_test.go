package sim

// Shared harness for the command tests: a device wrapper that sends APDUs
// and checks status words, APDU builders in the shapes OpenSC sends
// (testdata/pico-hsm/transcripts), a BER-TLV reader, and the recorded test
// vectors (testdata/pico-hsm/VECTORS.txt).

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// The recording's test PINs (testdata/pico-hsm/README.md): user PIN 648219,
// SO-PIN 3537363231383830 (the 8 bytes "57621880" as OpenSC sends them).
var (
	userPIN = []byte("648219")
	soPIN   = []byte("57621880")
)

// Plain DKEK shares and the key check values the real device reported,
// from testdata/pico-hsm/VECTORS.txt sections 1 and 3.
// TestVectorsMatchRecording checks these constants against the file.
var (
	share1     = hx("C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077")
	share2     = hx("FDC9CC9D09EBB7374E4763818ABC20E2F40C5D0BDE156D4FEBFE3333586C7434")
	share3     = hx("F8615DB573D128CEBC558ADD95D1E44739B9144DDAA540AE0F5CE3E7E036ACF1")
	shareUTF8  = hx("A3D4F8C54E383569E8D6BD29750B8C1246449767CC68EA339CDEAB6C134AF4D8")
	share1char = hx("551820E99F7F338FB82CB55152F90A6F9FC8949FBA49A32F7A5F058DE4989B20")
	shareEmpty = hx("08A2E4796DC36245109622289BFF0D323476AB2CD789FC219F10967FB993E031")
	shareNofM  = hx("AB02C88E707130AB42F7D3315219150AB67DE96D8F8C7BB95520E79C2F6BA8A1")

	dkekA = hx("CCA90B3A41CC892109535829354821FFDCD666F33E9AC9C855ECF3D45A13E8B2")
	dkekC = hx("AB02C88E707130AB42F7D3315219150AB67DE96D8F8C7BB95520E79C2F6BA8A1")
	dkekD = hx("FE6E3C55BC8464A3406C2A50BC0D8B4FEDFAA8D4A1A8B53D7991389E4E418FC9")
	dkekE = hx("C9019A123BF616D8FB41B1752A25E55A11632FB53A2AE429B14E2300E2493077")

	kcvA = hx("440B48E7FAEBC853")
	kcvC = hx("204BB504EAE22108")
	kcvD = hx("D94ACF67A9BC2B7F")
	kcvE = hx("01B9858437B91648")
)

// repoRoot is the repository root, relative to this package.
const repoRoot = "../../"

// hx decodes hex with optional spaces; it panics on bad input (constants).
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		panic(err)
	}
	return b
}

func xorAll(shares ...[]byte) []byte {
	out := make([]byte, 32)
	for _, s := range shares {
		for i := range out {
			out[i] ^= s[i]
		}
	}
	return out
}

func kcvOf(dkek []byte) []byte {
	s := sha256.Sum256(dkek)
	return s[:8]
}

// dev wraps a simulated device for tests.
type dev struct {
	t *testing.T
	*Device
}

// newDev is a factory-new device with nothing selected (the emulator just
// started).
func newDev(t *testing.T) *dev {
	t.Helper()
	d, err := NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	return &dev{t: t, Device: d}
}

// raw sends wire bytes and splits the answer.
func (d *dev) raw(cmd []byte) ([]byte, uint16) {
	d.t.Helper()
	r, err := d.Transmit(cmd)
	if err != nil {
		d.t.Fatalf("Transmit(% X): %v", cmd, err)
	}
	if len(r) < 2 {
		d.t.Fatalf("Transmit(% X): answer %X has no status word", cmd, r)
	}
	return r[:len(r)-2], uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
}

// expect sends cmd and fails the test unless the status word is want.
// Error status words must come without data (pico-keys-sdk set_res_sw).
func (d *dev) expect(what string, cmd []byte, want uint16) []byte {
	d.t.Helper()
	data, sw := d.raw(cmd)
	if sw != want {
		d.t.Fatalf("%s: SW %04X, want %04X (command % X, data % X)", what, sw, want, trunc(cmd), trunc(data))
	}
	if sw != apdu.SWOK && sw&0xFF00 != apdu.SWBytesRemaining && len(data) != 0 {
		d.t.Fatalf("%s: error SW %04X carries %d data bytes", what, sw, len(data))
	}
	return data
}

func (d *dev) ok(what string, cmd []byte) []byte { d.t.Helper(); return d.expect(what, cmd, apdu.SWOK) }

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

// enc encodes a command APDU (short when it fits, extended otherwise).
func enc(cla, ins, p1, p2 byte, data []byte, ne int) []byte {
	b, err := apdu.Command{CLA: cla, INS: ins, P1: p1, P2: p2, Data: data, Ne: ne}.Encode()
	if err != nil {
		panic(err)
	}
	return b
}

// APDU builders, in the forms OpenSC sends them (transcripts).
func selectAID() []byte         { return enc(0x00, 0xA4, 0x04, 0x00, AID, 256) }
func selectFID(f uint16) []byte { return enc(0x00, 0xA4, 0x00, 0x00, fid2(f), 256) }
func verifyPIN(pin []byte) []byte {
	return enc(0x00, 0x20, 0x00, 0x81, pin, 0)
}
func verifySO(pin []byte) []byte { return enc(0x00, 0x20, 0x00, 0x88, pin, 0) }
func queryPIN() []byte           { return []byte{0x00, 0x20, 0x00, 0x81} }
func querySO() []byte            { return []byte{0x00, 0x20, 0x00, 0x88} }
func listKeys() []byte           { return enc(0x80, 0x58, 0x00, 0x00, nil, 65536) }
func dkekStatus() []byte         { return enc(0x80, 0x52, 0x00, 0x00, nil, 256) }
func importShare(s []byte) []byte {
	return enc(0x80, 0x52, 0x00, 0x00, s, 256)
}

// readBin is READ BINARY B1 with a 2-byte offset in tag 54 and Le.
func readBin(f uint16, off int, ne int) []byte {
	return enc(0x00, 0xB1, byte(f>>8), byte(f), []byte{0x54, 0x02, byte(off >> 8), byte(off)}, ne)
}

// updateBin is UPDATE BINARY D7 with offset tag 54 and data tag 53.
func updateBin(f uint16, off int, data []byte) []byte {
	body := append([]byte{0x54, 0x02, byte(off >> 8), byte(off)}, t1(0x53, data)...)
	return enc(0x00, 0xD7, byte(f>>8), byte(f), body, 0)
}

func deleteFID(f uint16) []byte { return enc(0x00, 0xE4, 0x02, 0x00, fid2(f), 0) }

func genKeyPair(ref byte, data []byte) []byte { return enc(0x00, 0x46, ref, 0x00, data, 65536) }
func genAES(ref, p2 byte, data []byte) []byte { return enc(0x80, 0x48, ref, p2, data, 0) }
func wrapKey(ref byte) []byte                 { return enc(0x80, 0x72, ref, 0x92, nil, 65536) }
func unwrapKey(ref byte, blob []byte) []byte  { return enc(0x80, 0x74, ref, 0x93, blob, 0) }
func sign(ref, alg byte, data []byte) []byte  { return enc(0x80, 0x68, ref, alg, data, 65536) }

func fid2(f uint16) []byte { return []byte{byte(f >> 8), byte(f)} }

// t1 and t2 encode a TLV with a one- or two-byte tag and a BER length.
func t1(tag byte, v []byte) []byte { return append(append([]byte{tag}, berL(len(v))...), v...) }
func t2(tag uint16, v []byte) []byte {
	return append(append([]byte{byte(tag >> 8), byte(tag)}, berL(len(v))...), v...)
}

func berL(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	}
	return []byte{0x82, byte(n >> 8), byte(n)}
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// initData is the INITIALIZE payload sc-hsm-tool sends
// (transcripts/04-initialize.txt): options 0001, the PINs, 3 retries and,
// when shares >= 0, tag 92 with the number of DKEK shares.
func initData(shares int) []byte {
	b := cat(t1(0x80, []byte{0x00, 0x01}), t1(0x81, userPIN), t1(0x82, soPIN), t1(0x91, []byte{3}))
	if shares >= 0 {
		b = append(b, t1(0x92, []byte{byte(shares)})...)
	}
	return b
}

func initialize(data []byte) []byte { return enc(0x80, 0x50, 0x00, 0x00, data, 0) }

// factory is a factory-new device with the application selected.
func factory(t *testing.T) *dev {
	t.Helper()
	d := newDev(t)
	d.ok("SELECT AID", selectAID())
	return d
}

// initialized is a device initialized as sc-hsm-tool does, in a new
// session (nobody logged in). shares < 0 leaves tag 92 out.
func initialized(t *testing.T, shares int) *dev {
	t.Helper()
	return initializedWith(t, initData(shares))
}

func initializedWith(t *testing.T, data []byte) *dev {
	t.Helper()
	d := factory(t)
	d.ok("INITIALIZE", initialize(data))
	d.ok("SELECT AID", selectAID())
	return d
}

// loggedIn is an initialized device with the user PIN verified.
func loggedIn(t *testing.T, shares int) *dev {
	t.Helper()
	d := initialized(t, shares)
	d.ok("VERIFY", verifyPIN(userPIN))
	return d
}

// withDKEK is a device whose DKEK is the XOR of shares, imported the way
// sc-hsm-tool does (no PIN session), then committed by VERIFY; the user is
// logged in.
func withDKEK(t *testing.T, shares ...[]byte) *dev {
	t.Helper()
	d := initialized(t, len(shares))
	for i, s := range shares {
		d.ok(fmt.Sprintf("import share %d", i+1), importShare(s))
	}
	d.ok("VERIFY", verifyPIN(userPIN))
	st := d.ok("DKEK status", dkekStatus())
	if want := kcvOf(xorAll(shares...)); !bytes.Equal(st[2:], want) {
		t.Fatalf("DKEK KCV %X, want %X", st[2:], want)
	}
	return d
}

// readAll reads a whole file with one extended READ BINARY.
func (d *dev) readAll(f uint16) []byte {
	d.t.Helper()
	return d.ok(fmt.Sprintf("READ BINARY %04X", f), readBin(f, 0, 65536))
}

// fileSize is the size in the FCP that SELECT answers, or -1 for 6A82.
func (d *dev) fileSize(f uint16) int {
	d.t.Helper()
	data, sw := d.raw(selectFID(f))
	if sw == apdu.SWFileNotFound {
		return -1
	}
	if sw != apdu.SWOK || len(data) < 6 || data[0] != 0x62 || data[2] != 0x81 {
		d.t.Fatalf("SELECT %04X: % X %04X", f, data, sw)
	}
	return int(data[4])<<8 | int(data[5])
}

// --- BER-TLV ---------------------------------------------------------------

type tlvItem struct {
	tag uint16
	val []byte
	raw []byte // the whole TLV
}

// parseTLVs splits b into its top-level TLVs (one- or two-byte tags, BER
// lengths up to 3 bytes).
func parseTLVs(b []byte) ([]tlvItem, error) {
	var out []tlvItem
	for len(b) > 0 {
		start := b
		tag := uint16(b[0])
		i := 1
		if b[0]&0x1F == 0x1F {
			if len(b) < 2 {
				return nil, fmt.Errorf("truncated tag")
			}
			tag = tag<<8 | uint16(b[1])
			i = 2
		}
		if len(b) <= i {
			return nil, fmt.Errorf("tag %X without length", tag)
		}
		n := int(b[i])
		i++
		if n >= 0x80 {
			k := n & 0x7F
			if k == 0 || k > 3 || len(b) < i+k {
				return nil, fmt.Errorf("tag %X: bad length", tag)
			}
			n = 0
			for _, c := range b[i : i+k] {
				n = n<<8 | int(c)
			}
			i += k
		}
		if len(b) < i+n {
			return nil, fmt.Errorf("tag %X: length %d exceeds %d bytes", tag, n, len(b)-i)
		}
		out = append(out, tlvItem{tag: tag, val: b[i : i+n], raw: start[:i+n]})
		b = b[i+n:]
	}
	return out, nil
}

func findTLV(b []byte, tag uint16) (tlvItem, bool) {
	items, err := parseTLVs(b)
	if err != nil {
		return tlvItem{}, false
	}
	for _, it := range items {
		if it.tag == tag {
			return it, true
		}
	}
	return tlvItem{}, false
}

// cvRequest is an authenticated CV certificate request as the firmware
// answers key generation (keys.md section 5):
// 67 { 7F21 { 7F4E { 5F29, 42, 7F49, 5F20 }, 5F37 }, 42, 5F37 }.
type cvRequest struct {
	aut      []byte // the whole 7F21 TLV
	body     []byte // the whole 7F4E TLV
	car, chr []byte
	pub      []byte // value of 7F49
	innerSig []byte
	outerCAR []byte // the whole 42 TLV after 7F21
	outerSig []byte
}

func parseCV(t *testing.T, b []byte) *cvRequest {
	t.Helper()
	top, err := parseTLVs(b)
	if err != nil || len(top) != 1 || top[0].tag != 0x67 {
		t.Fatalf("not a CV request (67): % X", trunc(b))
	}
	outer, err := parseTLVs(top[0].val)
	if err != nil || len(outer) != 3 || outer[0].tag != 0x7F21 || outer[1].tag != 0x42 || outer[2].tag != 0x5F37 {
		t.Fatalf("CV request: want 7F21 42 5F37 inside 67, got %v (%v)", tags(outer), err)
	}
	cv := &cvRequest{aut: outer[0].raw, outerCAR: outer[1].raw, outerSig: outer[2].val}
	aut, err := parseTLVs(outer[0].val)
	if err != nil || len(aut) != 2 || aut[0].tag != 0x7F4E || aut[1].tag != 0x5F37 {
		t.Fatalf("CV request: want 7F4E 5F37 inside 7F21, got %v (%v)", tags(aut), err)
	}
	cv.body, cv.innerSig = aut[0].raw, aut[1].val
	body, err := parseTLVs(aut[0].val)
	if err != nil || len(body) != 4 || body[0].tag != 0x5F29 || body[1].tag != 0x42 || body[2].tag != 0x7F49 || body[3].tag != 0x5F20 {
		t.Fatalf("CV request body: want 5F29 42 7F49 5F20, got %v (%v)", tags(body), err)
	}
	if !bytes.Equal(body[0].val, []byte{0}) {
		t.Errorf("CV request profile identifier 5F29 = % X, want 00", body[0].val)
	}
	cv.car, cv.pub, cv.chr = body[1].val, body[2].val, body[3].val
	return cv
}

func tags(items []tlvItem) []string {
	var s []string
	for _, it := range items {
		s = append(s, fmt.Sprintf("%X", it.tag))
	}
	return s
}

// ecPoint returns the public point (tag 86) of an EC 7F49 value.
func ecPoint(t *testing.T, pub []byte) []byte {
	t.Helper()
	q, ok := findTLV(pub, 0x86)
	if !ok {
		t.Fatalf("7F49 has no public point 86: % X", trunc(pub))
	}
	return q.val
}

// rsaPub returns the RSA public key (81 N, 82 E) of a 7F49 value.
func rsaPub(t *testing.T, pub []byte) *rsa.PublicKey {
	t.Helper()
	n, ok1 := findTLV(pub, 0x81)
	e, ok2 := findTLV(pub, 0x82)
	if !ok1 || !ok2 {
		t.Fatalf("7F49 lacks 81 or 82: % X", trunc(pub))
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n.val), E: int(new(big.Int).SetBytes(e.val).Int64())}
}

// devicePub is the device-authentication public key, read from CE00.
func (d *dev) devicePub() []byte {
	d.t.Helper()
	cv := parseCV(d.t, d.readAll(fidDevEE))
	return ecPoint(d.t, cv.pub)
}

// verifyRaw checks a raw r||s ECDSA-SHA-256 signature.
func verifyRaw(c *ecc.Curve, pub, msg, sig []byte) bool {
	if len(sig)%2 != 0 || len(sig) == 0 {
		return false
	}
	h := sha256.Sum256(msg)
	n := len(sig) / 2
	return c.Verify(pub, h[:], new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:]))
}

// verifyDER checks a DER ECDSA signature over a digest.
func verifyDER(c *ecc.Curve, pub, digest, der []byte) bool {
	var sig struct{ R, S *big.Int }
	rest, err := asn1.Unmarshal(der, &sig)
	if err != nil || len(rest) != 0 {
		return false
	}
	return c.Verify(pub, digest, sig.R, sig.S)
}

// checkCVSignatures verifies the inner signature of a CV request with the
// new key's public key and the outer one with the device key (keys.md
// section 5: inner over the 7F4E TLV, outer ECDSA-SHA-256 by the device key
// over 7F21 || 42, both raw r||s for EC).
func checkCVSignatures(t *testing.T, cv *cvRequest, devPub []byte) {
	t.Helper()
	oid, ok := findTLV(cv.pub, 0x06)
	if !ok {
		t.Fatalf("7F49 has no OID")
	}
	switch {
	case bytes.Equal(oid.val, wrap.OIDRSA):
		pub := rsaPub(t, cv.pub)
		h := sha256.Sum256(cv.body)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], cv.innerSig); err != nil {
			t.Errorf("inner RSA signature does not verify with the new public key: %v", err)
		}
	case bytes.Equal(oid.val, wrap.OIDEC):
		p, _ := findTLV(cv.pub, 0x81)
		c := ecc.ByPrime(p.val)
		if c == nil {
			t.Fatalf("unknown curve prime % X", p.val)
		}
		if len(cv.innerSig) != 2*c.ByteLen() {
			t.Errorf("inner EC signature is %d bytes, want r||s of %d", len(cv.innerSig), 2*c.ByteLen())
		}
		if !verifyRaw(c, ecPoint(t, cv.pub), cv.body, cv.innerSig) {
			t.Errorf("inner EC signature does not verify with the new public key")
		}
	default:
		t.Fatalf("unexpected key OID % X", oid.val)
	}
	k1 := ecc.ByName("secp256k1")
	if len(cv.outerSig) != 64 {
		t.Errorf("outer signature is %d bytes, want 64 (secp256k1 r||s)", len(cv.outerSig))
	}
	if !verifyRaw(k1, devPub, cat(cv.aut, cv.outerCAR), cv.outerSig) {
		t.Errorf("outer signature does not verify with the device key from CE00")
	}
}

// pkcs1Block is the 00 01 FF.. 00 DigestInfo(SHA-256) block pkcs11-tool
// sends with RSA raw (transcripts/other/17-sign-A-k1.txt).
func pkcs1Block(k int, msg []byte) []byte {
	h := sha256.Sum256(msg)
	di := cat(hx("3031300D060960864801650304020105000420"), h[:])
	b := make([]byte, k)
	b[1] = 0x01
	for i := 2; i < k-len(di)-1; i++ {
		b[i] = 0xFF
	}
	copy(b[k-len(di):], di)
	return b
}

// cfbDecrypt is AES-256-CFB128 decryption, the firmware's mkek_decrypt.
func cfbDecrypt(key, iv, b []byte) []byte {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	out := make([]byte, len(b))
	cipher.NewCFBDecrypter(blk, iv).XORKeyStream(out, b)
	return out
}

// ecTemplate is the 7F49 template OpenSC sends for an EC key
// (transcripts/other/13-keygen-ec256.txt): OID, 81 P, 82 A, 83 B, 84 G,
// 85 order, 87 cofactor.
func ecTemplate(c *ecc.Curve) []byte {
	n := c.ByteLen()
	v := cat(t1(0x06, wrap.OIDEC),
		t1(0x81, c.P.FillBytes(make([]byte, n))),
		t1(0x82, c.A.FillBytes(make([]byte, n))),
		t1(0x83, c.B.FillBytes(make([]byte, n))),
		t1(0x84, c.Marshal(c.Gx, c.Gy)),
		t1(0x85, c.N.FillBytes(make([]byte, c.ScalarLen()))),
		t1(0x87, []byte{byte(c.H)}))
	return t2(0x7F49, v)
}

// rsaTemplate is OpenSC's RSA template (transcripts/other/12).
func rsaTemplate(bits int) []byte {
	return t2(0x7F49, cat(t1(0x06, wrap.OIDRSA), t1(0x82, []byte{1, 0, 1}), t1(0x02, []byte{byte(bits >> 8), byte(bits)})))
}

var (
	testCAR = []byte("UTCA00001")
	testCHR = []byte("ESPICOHSMTR00001")
)

// gakp is the data of GENERATE ASYMMETRIC KEY PAIR: 5F29, 42 CAR, the
// template, 5F20 CHR, then any metadata tags.
func gakp(tmpl []byte, meta ...[]byte) []byte {
	return cat(t2(0x5F29, []byte{0}), t1(0x42, testCAR), tmpl, t2(0x5F20, testCHR), cat(meta...))
}

// genEC generates an EC key on curve name into ref and returns its public
// point.
func (d *dev) genEC(ref byte, curve string, meta ...[]byte) []byte {
	d.t.Helper()
	c := ecc.ByName(curve)
	if c == nil {
		d.t.Fatalf("no curve %s", curve)
	}
	r := d.ok("GENERATE "+curve, genKeyPair(ref, gakp(ecTemplate(c), meta...)))
	return ecPoint(d.t, parseCV(d.t, r).pub)
}

// genRSA generates an RSA key into ref and returns its public key.
func (d *dev) genRSA(ref byte, bits int, meta ...[]byte) *rsa.PublicKey {
	d.t.Helper()
	r := d.ok(fmt.Sprintf("GENERATE RSA-%d", bits), genKeyPair(ref, gakp(rsaTemplate(bits), meta...)))
	return rsaPub(d.t, parseCV(d.t, r).pub)
}

// wrapped wraps ref and parses the blob.
func (d *dev) wrapped(ref byte) ([]byte, *wrap.Blob) {
	d.t.Helper()
	b := d.ok(fmt.Sprintf("WRAP %d", ref), wrapKey(ref))
	bl, err := wrap.ParseBlob(b)
	if err != nil {
		d.t.Fatalf("WRAP %d answered no blob: %v", ref, err)
	}
	return b, bl
}
