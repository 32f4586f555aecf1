package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pico-hsm-tool/pico-hsm-tool/internal/transcript"
)

// The differential recordings of ../shared/pico-hsm (README there): the
// same operations run against the real firmware from factory-new, each
// file on one device, except the steps named "risky: …", which each ran on
// a factory-new device of their own.
var differential = []string{"fw-p1", "fw-p2", "fw-p3", "fw-p4"}

// TestReplayDifferential replays the firmware's side of the differential
// runs (issue 9) against simulated devices: every status word must be the
// firmware's, and every answer that does not depend on the device's
// randomness or its own keys must be byte-identical. A recorded hang (no
// answer) must be a hang of a device whose FirmwareHangs switch is on.
func TestReplayDifferential(t *testing.T) {
	seen := map[string]int{}
	for _, name := range differential {
		t.Run(name, func(t *testing.T) {
			ex, err := transcript.ReadFile(filepath.Join(transcripts, "differential", name+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			for p, n := range replayDifferential(t, name, ex) {
				seen[p] += n
			}
		})
	}
	for p := range pendingDiff {
		if seen[p] == 0 && !t.Failed() {
			t.Errorf("pending difference %q no longer occurs: drop it from pendingDiff", p)
		}
	}
}

// pendingDiff are the differences the simulator does not fix yet, by
// issue 9 section: an exchange that differs in one of these ways is
// logged, not failed. Each must still occur, or it is stale.
//
// The flash model (flash.go) gives the firmware's LIST KEYS order in every
// listing of fw-p1..p4 up to the forced restore over existing keys in
// fw-p3; in the five listings from [3903] on (after it, and after the
// re-initialisation and restore that follow), one or two files land in a
// different gap than on the firmware: C408 after C40A and C40B instead of
// before them, C40C before C40D instead of after. What the model misses
// there is not known. Ruled out, each by replaying fw-p1..p4 with the
// change (every one leaves these five listings wrong, most break earlier
// ones): a different size of EF_META (E010) or of its entries; another
// size of the PRKD that UNWRAP writes, or none; UNWRAP writing the CV
// request before the metadata, or the PRKD after it; rewriting a file in
// place only at its own length; allocating a file's new block before its
// old one is freed (as the newest pico-keys-sdk fs/flash.c does); taking
// a gap of exactly the block's size. In the model the forced restore is
// full of ties: C408 finds four gaps of exactly its 61 bytes and C40A and
// C40B take gaps one byte larger than theirs, so a one-byte difference in
// a file the recordings never show the size of (a CV request's position,
// a gap left earlier) would explain it. The unwraps of 05 to 08 are also
// the only commands in the recordings whose writes touch four flash
// sectors; low_flash.c caches four (older SDKs) or six pages per command.
var pendingDiff = map[string]func(file string, n int, c []byte) bool{
	"1 LIST KEYS order after fw-p3's forced restore": func(file string, n int, c []byte) bool {
		return file == "fw-p3" && n >= 3903 && c[1] == 0x58
	},
}

func replayDifferential(t *testing.T, file string, ex []transcript.Exchange) (pending map[string]int) {
	pending = map[string]int{}
	var d *Device
	var tr diffTracker
	prev := ""
	exact, loose := 0, 0
	for _, e := range ex {
		risky := strings.HasPrefix(e.Title, "risky:")
		if d == nil || (risky && e.Title != prev) {
			var err error
			if d, err = NewMemory(); err != nil {
				t.Fatal(err)
			}
			d.FirmwareHangs = true
			d.rand = newDetRand(diffSeed)
			tr = diffTracker{}
		}
		prev = e.Title
		cmd := tr.adapt(d, e.Command)
		got, err := d.Transmit(cmd)
		if len(e.Response) == 0 {
			// The firmware hung: no answer ever came.
			if !errors.Is(err, ErrHung) {
				t.Errorf("[%d] %s: the firmware hung, the simulator answered % X (%v)", e.N, e.Title, got, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("[%d] %s: %v", e.N, e.Title, err)
		}
		switch kind := tr.compare(e.Command, got, e.Response); {
		case kind == "":
			exact++
		case kind == "loose":
			loose++
		default:
			if p := pendingFor(file, e.N, e.Command); p != "" {
				pending[p]++
				if testing.Verbose() {
					t.Logf("[%d] %s: pending %s\n  got      % X\n  recorded % X", e.N, e.Title, p, got, e.Response)
				}
				break
			}
			t.Errorf("[%d] %s: %s\n  command  %s\n  got      %s\n  recorded %s", e.N, e.Title, kind, short(e.Command), short(got), short(e.Response))
		}
		tr.update(e.Command, e.Response)
	}
	t.Logf("%d exchanges: %d byte-identical, %d compared by status word and length", len(ex), exact, loose)
	for p, n := range pending {
		t.Logf("pending (issue 9 section %s): %d exchanges differ", p, n)
	}
	return pending
}

func pendingFor(file string, n int, c []byte) string {
	for p, f := range pendingDiff {
		if f(file, n, c) {
			return p
		}
	}
	return ""
}

// diffSeed seeds the simulated devices of the replay, so that their keys,
// and so the sizes of their key files, are the same on every run. The
// firmware's EC keys in fw-p3.txt all have private values of full length
// (their key files' FCPs); with this seed the simulator's do too.
const diffSeed = 5

// detRand is a deterministic random stream: SHA-256 of the seed and a
// counter.
type detRand struct {
	seed, n uint64
	buf     []byte
}

func newDetRand(seed uint64) *detRand { return &detRand{seed: seed} }

func (r *detRand) Read(p []byte) (int, error) {
	for i := range p {
		if len(r.buf) == 0 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:], r.seed)
			binary.BigEndian.PutUint64(b[8:], r.n)
			r.n++
			h := sha256.Sum256(b[:])
			r.buf = h[:]
		}
		p[i], r.buf = r.buf[0], r.buf[1:]
	}
	return len(p), nil
}

// diffTracker follows what the recorded commands did to the device, to
// tell which answers depend on the device's own randomness or keys.
type diffTracker struct {
	// cur is the current EF (0 for the application itself).
	cur uint16
	// own holds the files whose content the device generated: the CV
	// requests of the keys it generated or unwrapped, and the device
	// certificate and request that INITIALIZE signs anew.
	own map[uint16]bool
	// randomDKEK is set after an INITIALIZE that asked for a random DKEK:
	// its check value is the device's own.
	randomDKEK bool
}

func (tr *diffTracker) setOwn(fid uint16, v bool) {
	if tr.own == nil {
		tr.own = map[uint16]bool{}
	}
	tr.own[fid] = v
}

// adapt rewrites the one kind of command whose input only makes sense for
// the firmware's own key: an RSA ciphertext for DECRYPT (80 62 ref 21) was
// made with the firmware's public key, so it is reduced modulo the
// simulated key's modulus, which keeps its length and makes it a valid
// input to the raw RSA operation.
func (tr *diffTracker) adapt(d *Device, c []byte) []byte {
	if len(c) < 8 || c[1] != 0x62 || c[3] != algRSADecrypt {
		return c
	}
	n := new(big.Int).SetBytes(d.PublicKey(c[2]))
	if n.Sign() == 0 || len(c) < 7+len(n.Bytes()) {
		return c
	}
	k := len(n.Bytes())
	m := new(big.Int).SetBytes(c[7 : 7+k])
	out := bytes.Clone(c)
	m.Mod(m, n).FillBytes(out[7 : 7+k])
	return out
}

// update records the effect of a command the firmware answered.
func (tr *diffTracker) update(c, r []byte) {
	if len(c) < 4 || len(r) < 2 {
		return
	}
	ok := r[len(r)-2] == 0x90 || r[len(r)-2] == 0x61
	if !ok {
		return
	}
	data := cmdData(c)
	switch c[1] {
	case 0xA4:
		if c[2] == 0x04 {
			tr.cur = 0
		} else if len(data) == 2 {
			tr.cur = uint16(data[0])<<8 | uint16(data[1])
		}
	case 0xD7:
		fid := uint16(c[2])<<8 | uint16(c[3])
		if fid == 0 {
			fid = tr.cur
		}
		if v, ok := tlvValue(data, 0x53); !ok || len(v) == 0 {
			if off, _ := tlvValue(data, 0x54); offsetValue(off) == 0 {
				tr.cur = fid
			}
		}
		tr.setOwn(fid, false)
	case 0xE4:
		if len(data) >= 2 {
			tr.setOwn(uint16(data[0])<<8|uint16(data[1]), false)
		}
	case 0x46, 0x74:
		tr.setOwn(0xCE00|uint16(c[2]), true)
	case 0x50:
		if len(data) > 0 {
			tr.setOwn(fidDevCert, true)
			tr.setOwn(fidDevEE, true)
			v, ok := tlvValue(data, 0x92)
			tr.randomDKEK = ok && len(v) == 1 && v[0] == 0
		}
	}
}

// compare says how got differs from the recorded answer r: "" when they
// are identical, "loose" when they may differ and agree in what must
// agree, otherwise what is wrong.
func (tr *diffTracker) compare(c, got, r []byte) string {
	if bytes.Equal(got, r) {
		return ""
	}
	if len(got) < 2 || !bytes.Equal(got[len(got)-2:], r[len(r)-2:]) {
		return "status word differs"
	}
	dg, dr := got[:len(got)-2], r[:len(r)-2]
	sameLen := len(dg) == len(dr)
	switch c[1] {
	case 0x84, 0x46, 0x62:
		// Random bytes; a new key's CV request; RSA decryption and ECDH
		// with the simulator's own key.
		if sameLen {
			return "loose"
		}
	case 0x68:
		// Signatures: RSA has the modulus length; ECDSA in DER varies by
		// a few bytes with the leading zeros of r and s.
		dl := len(dg) - len(dr)
		if sameLen || (c[3] >= algECDSA && c[3] <= algECDSA+5 && dl >= -3 && dl <= 3) {
			return "loose"
		}
	case 0x72:
		// A key blob starts with the DKEK's check value; the encrypted
		// key inside has random padding and the key's own lengths.
		dl := len(dg) - len(dr)
		if len(dg) >= 8 && len(dr) >= 8 && bytes.Equal(dg[:8], dr[:8]) && (dl == 0 || dl == 16 || dl == -16) {
			return "loose"
		}
	case 0x52:
		if tr.randomDKEK && sameLen && len(dg) >= 2 && bytes.Equal(dg[:2], dr[:2]) {
			return "loose"
		}
	case 0xB0, 0xB1:
		fid := tr.cur
		if c[1] == 0xB1 && (c[2] != 0 || c[3] != 0) {
			fid = uint16(c[2])<<8 | uint16(c[3])
		}
		if tr.own[fid] && sameLen {
			return "loose"
		}
	}
	if !sameLen {
		return "length differs"
	}
	return "data differs"
}

// cmdData is the data field of a well-formed command APDU (short or
// extended), or nil.
func cmdData(c []byte) []byte {
	switch {
	case len(c) <= 5:
		return nil
	case c[4] != 0 && len(c) >= 5+int(c[4]):
		return c[5 : 5+int(c[4])]
	case c[4] == 0 && len(c) > 7:
		n := int(c[5])<<8 | int(c[6])
		if len(c) >= 7+n {
			return c[7 : 7+n]
		}
	}
	return nil
}
