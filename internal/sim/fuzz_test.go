package sim

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/apdu"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/ecc"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/transcript"
	"github.com/pico-hsm-tool/pico-hsm-tool/internal/wrap"
)

// Fuzz input layout of FuzzTransmit: one byte choosing the starting device
// (its low bits are an index into fuzzDevices) and the mode, then APDUs,
// each preceded by its length: one byte below FF, or FF and two big-endian
// bytes. A length longer than what is left takes what is left. At most
// maxFuzzAPDUs APDUs are sent. In raw mode each APDU is sent as it is; in
// encoded mode (device byte bit encodedMode set) each is a header and the
// command data, sent with Lc and an extended Le of 65536 (encodeCommand),
// so that mutations of the data need not keep Lc right to reach the
// command handlers.
const (
	maxFuzzAPDUs = 32
	encodedMode  = 0x80
)

// encodeCommand makes a well-formed APDU of header and data b: the case 4
// encoding of b[:4] with data b[4:] and Ne 65536. Shorter b is sent as it is.
func encodeCommand(b []byte) []byte {
	if len(b) < 4 {
		return b
	}
	data := b[4:]
	if len(data) > apdu.MaxExtendedNc {
		data = data[:apdu.MaxExtendedNc]
	}
	cmd, err := apdu.Command{CLA: b[0], INS: b[1], P1: b[2], P2: b[3], Data: data, Ne: apdu.MaxExtendedNe}.Encode()
	if err != nil {
		panic(err)
	}
	return cmd
}

// encodeAPDUs writes a FuzzTransmit input.
func encodeAPDUs(device byte, cmds ...[]byte) []byte {
	b := []byte{device}
	for _, c := range cmds {
		if len(c) < 0xFF {
			b = append(b, byte(len(c)))
		} else {
			b = append(b, 0xFF)
			b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
		}
		b = append(b, c...)
	}
	return b
}

// splitAPDUs reads the APDUs of a FuzzTransmit input (after the device
// byte).
func splitAPDUs(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 && len(out) < maxFuzzAPDUs {
		n := int(b[0])
		b = b[1:]
		if n == 0xFF && len(b) >= 2 {
			n = int(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// fuzzDevices builds the starting devices once, as state snapshots (the
// JSON of the state file): each fuzz run restores one, which is much
// cheaper than replaying the APDUs that made it.
//
//	0  factory-new, nothing selected
//	1  initialized, DKEK A imported and committed, user PIN verified; an
//	   RSA-2048 key at reference 1 (the recorded blob unwrapped, so that no
//	   RSA key is generated), a P-256 key at 2 and an AES-256 key at 3
//	2  device 1 after a power cycle: nothing selected, nobody logged in
//	3  initialized for 3 DKEK shares, one imported, nobody logged in
func fuzzDevices(f *testing.F) [][]byte {
	f.Helper()
	send := func(d *Device, what string, cmd []byte) {
		f.Helper()
		r, err := d.Transmit(cmd)
		if err != nil || len(r) < 2 || r[len(r)-2] != 0x90 || r[len(r)-1] != 0 {
			f.Fatalf("setting up the fuzz devices: %s: % X %v", what, r, err)
		}
	}
	snapshot := func(d *Device) []byte {
		f.Helper()
		b, err := marshalState(d.st)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	factory, err := NewMemory()
	if err != nil {
		f.Fatal(err)
	}
	var snaps [][]byte
	snaps = append(snaps, snapshot(factory))

	raw, err := os.ReadFile(filepath.Join(repoRoot, "testdata", "pico-hsm", "vectors", "wrap-key-rsa2048-ref1.bin"))
	if err != nil {
		f.Fatal(err)
	}
	file, err := wrap.ParseFile(raw)
	if err != nil {
		f.Fatal(err)
	}
	d, err := NewMemory()
	if err != nil {
		f.Fatal(err)
	}
	send(d, "SELECT", selectAID())
	send(d, "INITIALIZE", initialize(initData(3)))
	send(d, "SELECT", selectAID())
	for _, s := range [][]byte{share1, share2, share3} {
		send(d, "IMPORT DKEK share", importShare(s))
	}
	send(d, "VERIFY", verifyPIN(userPIN))
	send(d, "UNWRAP RSA", unwrapKey(1, file.Blob))
	send(d, "GENERATE EC", genKeyPair(2, gakp(ecTemplate(ecc.ByName("secp256r1")))))
	send(d, "GENERATE AES", genAES(3, 0xB2, nil))
	for ref, kind := range map[byte]string{1: "rsa", 2: "ec", 3: "aes"} {
		if k := d.st.Keys[ref]; k == nil || k.Kind != kind {
			f.Fatalf("setting up the fuzz devices: key %d is %+v, want %s", ref, k, kind)
		}
	}
	snaps = append(snaps, snapshot(d))
	if err := d.PowerCycle(); err != nil {
		f.Fatal(err)
	}
	snaps = append(snaps, snapshot(d))

	p, err := NewMemory()
	if err != nil {
		f.Fatal(err)
	}
	send(p, "SELECT", selectAID())
	send(p, "INITIALIZE", initialize(initData(3)))
	send(p, "SELECT", selectAID())
	send(p, "IMPORT DKEK share", importShare(share1))
	snaps = append(snaps, snapshot(p))
	return snaps
}

// restoreDevice is a memory device with the state of a snapshot, read the
// way a state file is.
func restoreDevice(snap []byte) (*Device, error) {
	var st state
	if err := json.Unmarshal(snap, &st); err != nil {
		return nil, err
	}
	st.upgrade()
	return &Device{st: &st, sess: &st.RAM.Session, rand: rand.Reader}, nil
}

// noRSAKeyGen keeps RSA key generation, which takes up to seconds, out of
// the fuzz loop: a GENERATE ASYMMETRIC KEY PAIR whose template (with any
// chained data before it, looked up as the firmware looks it up) asks for
// RSA gets INS 47 instead, which the device does not support. The chained
// data is consumed either way.
func noRSAKeyGen(d *Device, cmd []byte) []byte {
	c, err := parseCommand(cmd)
	if err != nil || c.INS != 0x46 || c.CLA&0x10 != 0 {
		return cmd
	}
	full := append(bytes.Clone(d.sess.Chain), c.Data...)
	tmpl, _ := tlvValue2(full, 0x7F49)
	if oid, _ := tlvValue2(tmpl, 0x06); !bytes.Equal(oid, wrap.OIDRSA) {
		return cmd
	}
	cmd = bytes.Clone(cmd)
	cmd[1] = 0x47
	return cmd
}

// FuzzTransmit plays a hostile host: it sends arbitrary APDU sequences
// (see encodeAPDUs and encodedMode) to one of the fuzzDevices and checks that the device
// never panics, that every answer is a status word with at most Ne bytes of
// data before it, that only 9000 and 61xx carry data, and that the state
// it is left in can still be saved and loaded. RSA key generation is
// filtered out (noRSAKeyGen). Seeds: the commands of every recorded
// transcript, sent to the factory-new and to the prepared device, a few
// sequences of each command on device 1, and testdata/fuzz/FuzzTransmit.
func FuzzTransmit(f *testing.F) {
	snaps := fuzzDevices(f)
	for _, seed := range transmitSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		d, err := restoreDevice(snaps[int(data[0]&^encodedMode)%len(snaps)])
		if err != nil {
			t.Fatal(err)
		}
		for i, cmd := range splitAPDUs(data[1:]) {
			if data[0]&encodedMode != 0 {
				cmd = encodeCommand(cmd)
			}
			cmd = noRSAKeyGen(d, cmd)
			r, err := d.Transmit(cmd)
			if err != nil {
				t.Fatalf("APDU %d % X: %v", i, trunc(cmd), err)
			}
			if len(r) < 2 {
				t.Fatalf("APDU %d % X: answer % X has no status word", i, trunc(cmd), r)
			}
			sw := uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
			n := len(r) - 2
			if n > 0 && sw != apdu.SWOK && sw&0xFF00 != apdu.SWBytesRemaining {
				t.Fatalf("APDU %d % X: error SW %04X carries %d data bytes", i, trunc(cmd), sw, n)
			}
			if c, err := parseCommand(cmd); err != nil {
				if n != 0 {
					t.Fatalf("APDU %d % X: malformed, yet %d data bytes", i, trunc(cmd), n)
				}
			} else if n > c.Ne && !raisesNe(d, c) {
				t.Fatalf("APDU %d % X: %d data bytes for Ne %d", i, trunc(cmd), n, c.Ne)
			}
		}
		b, err := marshalState(d.st)
		if err != nil {
			t.Fatalf("state cannot be saved: %v", err)
		}
		if _, err := restoreDevice(b); err != nil {
			t.Fatalf("saved state cannot be loaded: %v", err)
		}
	})
}

// raisesNe tells the commands whose handler raises Ne as the firmware's
// does (see dispatch): key-pair generation without Le, and RSA signatures.
func raisesNe(d *Device, c apdu.Command) bool {
	if c.INS == 0x46 && c.Ne == 0 {
		return true
	}
	k := d.st.Keys[c.P1]
	return c.INS == 0x68 && k != nil && k.Kind == "rsa"
}

// transmitSeeds are the seed inputs of FuzzTransmit.
func transmitSeeds(f *testing.F) [][]byte {
	f.Helper()
	var seeds [][]byte
	for _, pat := range []string{"*.txt", "*/*.txt"} {
		files, err := filepath.Glob(filepath.Join(repoRoot, "testdata", "pico-hsm", "transcripts", pat))
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			ex, err := transcript.ReadFile(name)
			if err != nil {
				f.Fatalf("%s: %v", name, err)
			}
			var cmds [][]byte
			for _, e := range ex {
				cmds = append(cmds, e.Command)
			}
			for len(cmds) > 0 {
				n := min(len(cmds), maxFuzzAPDUs)
				seeds = append(seeds, encodeAPDUs(0, cmds[:n]...), encodeAPDUs(1, cmds[:n]...))
				cmds = cmds[n:]
			}
		}
	}
	msg := bytes.Repeat([]byte{0x5A}, 32)
	for _, cmds := range [][][]byte{
		{listKeys(), selectFID(0xCC02), readBin(0xCE02, 0, 65536)},
		{sign(2, algECDSA, msg), sign(1, algRSARaw, make([]byte, 256)), sign(3, 0x10, msg)},
		{wrapKey(1), wrapKey(2), wrapKey(3), wrapKey(9)},
		{readBin(0xCE01, 0, 16), {0x00, 0xC0, 0x00, 0x00, 0x10}, {0x00, 0xC0, 0x00, 0x00}},
		{enc(0x10, 0x68, 2, algECDSA, msg[:16], 0), enc(0x00, 0x68, 2, algECDSA, msg[16:], 65536)},
		{updateBin(0x0401, 0, msg), readBin(0x0401, 0, 65536), deleteFID(0x0401)},
		{genKeyPair(4, gakp(ecTemplate(ecc.ByName("secp256k1")))), unwrapKey(5, msg)},
		{genKeyPair(6, gakp(rsaTemplate(1024)))},
		{dkekStatus(), importShare(share2), queryPIN(), querySO()},
		{selectAID(), verifyPIN([]byte("000000")), verifyPIN(userPIN), verifySO(soPIN)},
		{initialize(initData(0)), selectAID(), verifyPIN(userPIN), dkekStatus()},
	} {
		for dev := range byte(4) {
			seeds = append(seeds, encodeAPDUs(dev, cmds...))
		}
		// The same in encoded mode: header and data only.
		var bare [][]byte
		for _, c := range cmds {
			if parsed, _, err := apdu.ParseCommand(c); err == nil {
				bare = append(bare, append([]byte{parsed.CLA, parsed.INS, parsed.P1, parsed.P2}, parsed.Data...))
			}
		}
		seeds = append(seeds, encodeAPDUs(1|encodedMode, bare...))
	}
	return seeds
}
